/**
 * `warden audit verify --skip-non-records`: records captured from the stdout sink come mixed with
 * Warden's log lines. The option skips what is not a record (counted); without it, verify stays
 * strict. A damaged record is still a record: it is checked, not skipped.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog, createStreamSink } from '../../src/audit/index.js';
import { body, verify } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-audit-verify-stdout-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What `warden serve > out` captures: log lines (pino JSON and text), records in between. */
async function mixedStdout(n: number): Promise<{ lines: string[]; records: string[] }> {
  const out = new PassThrough();
  const records: string[] = [];
  out.on('data', (d: Buffer) => records.push(...d.toString().split('\n').filter(Boolean)));
  const log = createAuditLog({ sinks: [createStreamSink(out, 'stdout')] });
  for (let i = 1; i <= n; i++) await log.append(body(i));
  await log.close();
  const lines = ['{"level":"info","time":"2026-01-01T00:00:00.000Z","pid":1,"service":"warden","msg":"warden listening"}'];
  records.forEach((r, i) => {
    lines.push(r);
    if (i % 2 === 0) lines.push(`{"level":"warn","pid":1,"msg":"request ${i}","seq_hint":${i}}`);
  });
  lines.push('2026-01-01T00:00:01.000Z INFO shutdown complete outcome=drained', '[1, 2]', '"text"');
  return { lines, records };
}

describe('warden audit verify --skip-non-records', () => {
  it('verifies the records of a captured stdout, skipping and counting the log lines; strict without it', async () => {
    const { lines } = await mixedStdout(5);
    const file = join(dir, 'stdout.log');
    writeFileSync(file, `${lines.join('\n')}\n`);
    // Strict by default: the first log line is not a record.
    expect(await verify(file)).toMatchObject({ code: 1, out: expect.stringMatching(/BROKEN .*:1: seq 1: /) });
    const ok = await verify('--skip-non-records', file);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^ok .*: 5 record\(s\), chain intact, head seq 5 hash [0-9a-f]{64}, 7 other line\(s\) skipped\n$/);
  });

  it('accepts blank lines and CRLF or CR line ends (a tty or a collector adds them), counted in the summary', async () => {
    const { lines } = await mixedStdout(5);
    const file = join(dir, 'crlf.log');
    // Line ends: LF, then CRLF for lines 2-4, a lone CR after line 5; a blank and a whitespace line.
    const ends = lines.map((_, i) => (i >= 1 && i <= 3 ? '\r\n' : i === 4 ? '\r' : '\n'));
    const text = lines.map((l, i) => `${l}${ends[i]}`).join('');
    writeFileSync(file, `${text.slice(0, -1)}\n\n \n`);
    const ok = await verify('--skip-non-records', file);
    expect(ok).toMatchObject({ code: 0, err: '' });
    expect(ok.out).toMatch(/^ok .*: 5 record\(s\), chain intact, head seq 5 hash [0-9a-f]{64}, 7 other line\(s\) skipped, 2 blank line\(s\) skipped, 3 CRLF line end\(s\), 1 CR line end\(s\)\n$/);
  });

  it('tells a CRLF from a lone CR when the CR ends one chunk of the read and the LF starts the next', async () => {
    const { lines } = await mixedStdout(2);
    const file = join(dir, 'boundary.log');
    // A log line padded so that its CR is byte 65535: the last of the first 64 KiB read.
    const pad = (n: number): string => `{"level":"info","msg":"${'x'.repeat(n - 25)}"}`;
    expect(pad(65535).length).toBe(65535);
    writeFileSync(file, `${pad(65535)}\r\n${lines.join('\n')}\n`);
    expect((await verify('--skip-non-records', file)).out).toMatch(/: 2 record\(s\), .*, 6 other line\(s\) skipped, 1 CRLF line end\(s\)\n$/);
    // The same CR followed by the next line: a lone CR, and no blank line made up between them.
    writeFileSync(file, `${pad(65535)}\r${lines.join('\n')}\n`);
    expect((await verify('--skip-non-records', file)).out).toMatch(/: 2 record\(s\), .*, 6 other line\(s\) skipped, 1 CR line end\(s\)\n$/);
  });

  it('still finds a record deleted, edited or made unreadable among the log lines', async () => {
    const { lines, records } = await mixedStdout(5);
    const file = join(dir, 'tampered.log');
    writeFileSync(file, `${lines.filter((l) => l !== records[2]).join('\n')}\n`);
    expect(await verify('--skip-non-records', file)).toMatchObject({ code: 1, out: expect.stringMatching(/seq 4: expected seq 3, found 4/) });
    writeFileSync(file, `${lines.map((l) => (l === records[1] ? l.replace('"status":"ok"', '"status":"error"') : l)).join('\n')}\n`);
    expect(await verify('--skip-non-records', file)).toMatchObject({ code: 1, out: expect.stringMatching(/seq 2: hash does not match/) });
    // A record whose seq was removed is no longer a record: the chain breaks at the next one.
    writeFileSync(file, `${lines.map((l) => (l === records[1] ? l.replace('"seq":2,', '') : l)).join('\n')}\n`);
    expect(await verify('--skip-non-records', file)).toMatchObject({ code: 1, out: expect.stringMatching(/seq 3: expected seq 2, found 3/) });
  });

  it('calls a line nested a million deep broken rather than parse it to see whether it is a record', async () => {
    // Found: each line was parsed whole to look for seq/prev_hash/hash, a line of nested arrays
    // building every level (the verifier itself checks the depth first).
    const { lines } = await mixedStdout(3);
    const file = join(dir, 'deep-stdout.log');
    lines.splice(3, 0, `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    expect(await verify('--skip-non-records', file)).toMatchObject({
      code: 1,
      out: `BROKEN ${file}:4: seq 2: the record nests too deeply to check (no record Warden writes does)\n`,
    });
  });

  it('is listed in the help', async () => {
    const { runAuditCli } = await import('../../src/audit/index.js');
    let out = '';
    await runAuditCli(['--help'], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => undefined } });
    expect(out).toContain('--skip-non-records');
  });
});
