/**
 * `warden audit verify`: a line must be the exact canonical text of its record, a rotated segment
 * is verified from the head the previous one ended at, and a huge line is a clear error.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog, createFileSink } from '../../src/audit/index.js';
import { GENESIS, linkRecordLine, type ChainHead } from '../../src/audit/chain.js';
import { body, verify } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-audit-verify-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file of `n` records written by Warden's file sink, and its lines (without their LF). */
async function chain(name: string, n: number): Promise<{ file: string; lines: string[] }> {
  const file = join(dir, name);
  const log = createAuditLog({ sinks: [createFileSink(file)] });
  for (let i = 0; i < n; i++) await log.append(body(i));
  await log.close();
  return { file, lines: readFileSync(file, 'utf8').trimEnd().split('\n') };
}

describe('warden audit verify: the exact text, segments, long lines', () => {

  it('refuses a line rewritten with duplicate members (a parser keeps the last) or other spacing', async () => {
    const { file, lines } = await chain('dup.jsonl', 4);
    expect((await verify(file)).code).toBe(0);
    const forged = [...lines];
    forged[2] = `{"status":"error","error_code":"policy_denied",${lines[2]!.slice(1)}`;
    writeFileSync(file, `${forged.join('\n')}\n`);
    expect(await verify(file)).toMatchObject({ code: 1, out: expect.stringMatching(/:3: seq 3: line is not the canonical text of its record/) });
    const spaced = [...lines];
    spaced[1] = JSON.stringify(JSON.parse(lines[1]!), null, 1).replace(/\n/g, ' ');
    writeFileSync(file, `${spaced.join('\n')}\n`);
    expect(await verify(file)).toMatchObject({ code: 1, out: expect.stringMatching(/:2: seq 2: line is not the canonical text/) });
  });

  it('checks a segment from a given head, and refuses one that does not link to it', async () => {
    const { file, lines } = await chain('seg.jsonl', 5);
    const { out } = await verify(file);
    const first = JSON.parse(lines[2]!) as { prev_hash: string };
    const seg = join(dir, 'seg-tail.jsonl');
    writeFileSync(seg, `${lines.slice(2).join('\n')}\n`);
    expect((await verify('--from-hash', first.prev_hash, '--from-seq', '2', seg)).out).toBe(`ok ${seg}: 3 record(s), chain intact from seq 3 (prev_hash ${first.prev_hash}), ${out.slice(out.indexOf('head seq'))}`);
    expect(await verify('--from-hash', 'a'.repeat(64), seg)).toMatchObject({ code: 1, out: expect.stringMatching(/seq 3: prev_hash does not match/) });
    expect(await verify('--from-hash', first.prev_hash, '--from-seq', '3', seg)).toMatchObject({ code: 1, out: expect.stringMatching(/expected seq 4, found 3/) });
    expect(await verify('--from-hash', 'nothex', seg)).toMatchObject({ code: 2 });
    expect(await verify('--from-seq', '2', seg)).toMatchObject({ code: 2 });
  });

  it('takes --from-hash=HASH and --from-seq=N as it takes the two-argument form', async () => {
    const { file, lines } = await chain('seg-eq.jsonl', 4);
    const first = JSON.parse(lines[1]!) as { prev_hash: string };
    const seg = join(dir, 'seg-eq-tail.jsonl');
    writeFileSync(seg, `${lines.slice(1).join('\n')}\n`);
    const spaced = await verify('--from-hash', first.prev_hash, '--from-seq', '1', seg);
    expect(spaced.code).toBe(0);
    expect(await verify(`--from-hash=${first.prev_hash}`, '--from-seq=1', seg)).toEqual(spaced);
    expect(await verify(`--from-hash=${first.prev_hash}`, '--from-seq', '1', seg)).toEqual(spaced);
    expect(await verify(`--from-hash=${first.prev_hash}`, '--from-seq=2', seg)).toMatchObject({ code: 1, out: expect.stringMatching(/expected seq 3, found 2/) });
    // The same checks as the two-argument form: a bad value, an empty one, the option twice.
    const usage = (message: string): { code: number; out: string; err: string } => ({ code: 2, out: '', err: `warden: ${message}\nRun 'warden audit verify --help' for usage.\n` });
    expect(await verify('--from-hash=nothex', seg)).toEqual(usage('--from-hash takes a hash: 64 lowercase hex digits'));
    expect(await verify('--from-hash=', seg)).toEqual(usage('--from-hash is empty: it needs a value'));
    expect(await verify(`--from-hash=${first.prev_hash}`, '--from-seq=x', seg)).toEqual(usage('--from-seq takes a whole number'));
    expect(await verify(`--from-hash=${first.prev_hash}`, '--from-hash', first.prev_hash, seg)).toEqual(usage('--from-hash is given more than once (it takes one value)'));
    // Flags take no value; an unknown option is named without its value.
    expect(await verify('--continue=yes', seg)).toEqual(usage('--continue takes no value'));
    expect(await verify('--skip-non-records=1', file)).toEqual(usage('--skip-non-records takes no value'));
    expect(await verify('--bogus=some-value', file)).toEqual(usage('unknown option --bogus'));
  });

  it('a chain that reaches seq 2^53 - 1 ends there: a record after it is broken, not a repeated seq read as the next', async () => {
    // Past 2^53 - 1, seq + 1 rounds: 2^53 + 1 is 2^53, so every later record could carry 2^53.
    const head: ChainHead = { seq: Number.MAX_SAFE_INTEGER - 1, hash: 'c'.repeat(64) };
    const lines: string[] = [];
    let link = head;
    for (let i = 0; i < 3; i++) {
      const { record, line } = linkRecordLine(body(i), link);
      lines.push(line);
      // As a writer that counted on past the bound would: 2^53, then 2^53 again.
      link = { seq: record.seq, hash: record.hash };
    }
    const file = join(dir, 'past-safe.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    expect(JSON.parse(lines[2]!).seq).toBe(JSON.parse(lines[1]!).seq);
    expect(await verify('--from-hash', head.hash, '--from-seq', String(head.seq), file)).toMatchObject({
      code: 1,
      out: expect.stringMatching(/:2: seq 9007199254740992: seq past 9007199254740991 \(2\^53 - 1\): a chain cannot count further/),
    });
  });

  it('an empty segment claims no head it was not given', async () => {
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '');
    const h = 'a'.repeat(64);
    // From a hash alone, the seq is not known: none is printed.
    expect(await verify('--from-hash', h, empty)).toEqual({ code: 0, out: `ok ${empty}: 0 record(s), no record after hash ${h} (head seq not known: no --from-seq given)\n`, err: '' });
    // Given both, the head is the one given; from genesis, genesis.
    expect(await verify('--from-hash', h, '--from-seq', '7', empty)).toEqual({ code: 0, out: `ok ${empty}: 0 record(s), chain intact, head seq 7 hash ${h}\n`, err: '' });
    expect(await verify(empty)).toEqual({ code: 0, out: `ok ${empty}: 0 record(s), chain intact, head seq 0 hash ${'0'.repeat(64)}\n`, err: '' });
    // --continue takes its start from the first record: with none, there is no head at all.
    expect(await verify('--continue', empty)).toEqual({ code: 0, out: `ok ${empty}: 0 record(s), no record to continue from (head not known)\n`, err: '' });
    // Only log lines, skipped: the same, with the count.
    writeFileSync(empty, 'a log line\n');
    expect(await verify('--skip-non-records', '--from-hash', h, empty)).toEqual({ code: 0, out: `ok ${empty}: 0 record(s), no record after hash ${h} (head seq not known: no --from-seq given), 1 other line(s) skipped\n`, err: '' });
  });

  it('a last line without its trailing newline: the chain is intact (exit 0), with a warning on stderr', async () => {
    const { file, lines } = await chain('no-final-nl.jsonl', 3);
    writeFileSync(file, lines.join('\n'));
    const r = await verify(file);
    expect(r).toMatchObject({ code: 0, out: expect.stringMatching(/^ok .*3 record\(s\), chain intact/) });
    expect(r.err).toBe(`warning: ${file}:3: the last line has no trailing newline (a writer appending to this file would glue its line onto it; Warden writes the newline before its next record)\n`);
    // With its newline, no warning.
    writeFileSync(file, `${lines.join('\n')}\n`);
    expect(await verify(file)).toMatchObject({ code: 0, err: '' });
  });

  it('a last line cut short with no newline is named a torn write (or one in progress), not only "not valid JSON"', async () => {
    const { file, lines } = await chain('torn-tail.jsonl', 3);
    writeFileSync(file, `${lines[0]}\n${lines[1]}\n${lines[2]!.slice(0, 200)}`);
    expect(await verify(file)).toEqual({
      code: 1,
      out: `BROKEN ${file}:3: seq 3: line is not valid JSON, and it is the last line, with no newline: a torn write (or one still in progress, if Warden is writing this file now)\n`,
      err: '',
    });
    // The same cut inside the file (a newline after it) is only a line that is not JSON.
    writeFileSync(file, `${lines[0]}\n${lines[1]!.slice(0, 200)}\n${lines[2]}\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:2: seq 2: line is not valid JSON\n`, err: '' });
  });

  it('prints a path with its control characters escaped: a file name cannot print a verdict line of its own', async () => {
    const { lines } = await chain('named.jsonl', 2);
    const file = join(dir, 'x\nok forged.jsonl: 2 record(s), chain intact\u001b[1A');
    writeFileSync(file, `${lines[1]}\n`);
    const shown = join(dir, 'x\\u000aok forged.jsonl: 2 record(s), chain intact\\u001b[1A');
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${shown}:1: seq 2: expected seq 1, found 2\n`, err: '' });
    expect(await verify(`${file}.missing`)).toEqual({ code: 2, out: '', err: `${shown}.missing: file_unreadable: cannot read the file (ENOENT)\n` });
  });

  it('a record nested thousands deep is a broken line (exit 1), not a read error', async () => {
    const { file, lines } = await chain('deep.jsonl', 2);
    for (const depth of [20_000, 500_000]) {
      writeFileSync(file, `${lines[0]}\n${lines[1]!.replace('{"action"', `{"a":${'['.repeat(depth)}${']'.repeat(depth)},"action"`)}\n`);
      expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:2: seq 2: the record nests too deeply to check (no record Warden writes does)\n`, err: '' });
    }
  });

  it('a line of nested arrays is called too deep before it is parsed (a parse would build every level: 660 MB for 5 million)', async () => {
    const { file, lines } = await chain('deep-array.jsonl', 2);
    // Found: parsed whole, then called "not a JSON object"; a 16 MiB line of them took verify past a gigabyte.
    writeFileSync(file, `${lines[0]}\n${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:2: seq 2: the record nests too deeply to check (no record Warden writes does)\n`, err: '' });
    // Brackets in strings are text, whatever their number: such a record still verifies.
    const brackets = join(dir, 'brackets.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(brackets)] });
    for (let i = 0; i < 2; i++) await log.append({ ...body(i), request_id: `req-${'[{'.repeat(100)}\\"[${i}` });
    await log.close();
    expect(await verify(brackets)).toMatchObject({ code: 0 });
  });

  it('a line over 16 MiB is a broken record with its line number, not a crash', async () => {
    const { file, lines } = await chain('huge.jsonl', 2);
    writeFileSync(file, `${lines.join('\n')}\n${'x'.repeat(17 * 1024 * 1024)}`);
    expect(await verify(file)).toMatchObject({ code: 1, out: `BROKEN ${file}:3: seq 3: line is longer than 16777216 bytes (no record is)\n` });
  });
});

describe('warden audit verify: blank lines and CR line ends are edits', () => {
  // Warden writes one record per line, each ended by a lone LF: a blank line or a CR anywhere
  // was put there by something else, so the file is not what Warden wrote. A line end is reported
  // with the seq of the record it ends.
  it('a blank line (empty or whitespace only) is broken, with its line number', async () => {
    const { file, lines } = await chain('blank.jsonl', 3);
    writeFileSync(file, `${lines[0]}\n\n${lines.slice(1).join('\n')}\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:2: seq 2: blank line (Warden writes none)\n`, err: '' });
    writeFileSync(file, `${lines.slice(0, 2).join('\n')}\n \t\n${lines[2]}\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:3: seq 3: blank line (whitespace only; Warden writes none)\n`, err: '' });
    // A blank line after the last record, and a file that is only a newline.
    writeFileSync(file, `${lines.join('\n')}\n\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:4: seq 4: blank line (Warden writes none)\n`, err: '' });
    writeFileSync(file, '\n');
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:1: seq 1: blank line (Warden writes none)\n`, err: '' });
  });

  it('a CRLF or a lone CR line end is broken, with the line it ends', async () => {
    const { file, lines } = await chain('crlf.jsonl', 3);
    writeFileSync(file, `${lines.join('\r\n')}\r\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:1: seq 1: CRLF terminator (Warden ends lines with LF only)\n`, err: '' });
    // One line converted: the records before it verify, the break is at that line.
    writeFileSync(file, `${lines[0]}\n${lines[1]}\r\n${lines[2]}\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:2: seq 2: CRLF terminator (Warden ends lines with LF only)\n`, err: '' });
    writeFileSync(file, `${lines[0]}\r${lines[1]}\n${lines[2]}\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:1: seq 1: CR terminator (Warden ends lines with LF only)\n`, err: '' });
    // A CR as the very last byte: nothing follows it to make it a CRLF.
    writeFileSync(file, `${lines.join('\n')}\r`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:3: seq 3: CR terminator (Warden ends lines with LF only)\n`, err: '' });
    // A CR inside a line (a record never holds a raw CR: JSON escapes it) ends that line.
    writeFileSync(file, `${lines[0]}\n${lines[1]!.slice(0, 10)}\r${lines[1]!.slice(10)}\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:2: seq 2: line is not valid JSON\n`, err: '' });
  });

  it('a byte order mark at the start is named as such (an editor saved the file), with or without --skip-non-records', async () => {
    const { file, lines } = await chain('bom.jsonl', 2);
    writeFileSync(file, `\ufeff${lines.join('\n')}\n`);
    const out = `BROKEN ${file}:1: seq 1: the file starts with a byte order mark (the file was edited: Warden writes none)\n`;
    expect(await verify(file)).toEqual({ code: 1, out, err: '' });
    expect(await verify('--skip-non-records', file)).toEqual({ code: 1, out, err: '' });
  });

  it('a compressed rotated segment is a read error that says to decompress it (exit 2), not a broken chain (exit 1)', async () => {
    const { file, lines } = await chain('compressed.jsonl', 2);
    const text = `${lines.join('\n')}\n`;
    const cases: Array<[string, Buffer]> = [
      ['gzip', gzipSync(text)],
      ['zstd', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.from(text)])],
      ['xz', Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.from(text)])],
    ];
    for (const [kind, bytes] of cases) {
      writeFileSync(`${file}.z`, bytes);
      for (const args of [[], ['--skip-non-records'], ['--continue']]) {
        expect(await verify(...args, `${file}.z`)).toEqual({
          code: 2,
          out: '',
          err: `${file}.z: file_unreadable: cannot read the file (a ${kind}-compressed file: decompress it first, e.g. into a file of its own)\n`,
        });
      }
    }
    // Text that merely starts like one is not taken for it.
    writeFileSync(`${file}.z`, `\u001f${text}`);
    expect(await verify(`${file}.z`)).toMatchObject({ code: 1, out: expect.stringMatching(/:1: seq 1: line is not valid JSON/) });
  });

  it('the messages hold no record content', async () => {
    const { file, lines } = await chain('no-content.jsonl', 2);
    for (const text of [`${lines.join('\r\n')}\r\n`, `${lines[0]}\n\n${lines[1]}\n`, `${lines[0]}\r${lines[1]}\n`]) {
      writeFileSync(file, text);
      const r = await verify(file);
      expect(r.code).toBe(1);
      expect(`${r.out}${r.err}`).not.toContain('req-');
      expect(`${r.out}${r.err}`).not.toContain(JSON.parse(lines[0]!).hash as string);
    }
  });

  it('a seq that is not a number is named by its kind, never quoted (a canary, escapes, megabytes)', async () => {
    const { file, lines } = await chain('seq-kinds.jsonl', 1);
    const canary = 'sk-CANARY-7f3a';
    const cases: Array<[string, string]> = [
      [`"${canary}\\u001b[2J\\u009b31m${'x'.repeat(100_000)}"`, 'a string'],
      [`{"secret":"${canary}"}`, 'an object'],
      [`["${canary}"]`, 'an array'],
      ['null', 'null'],
      ['true', 'true'],
      ['7', '7'],
    ];
    for (const [value, kind] of cases) {
      writeFileSync(file, `${lines[0]!.replace('"seq":1', `"seq":${value}`)}\n`);
      expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:1: seq ${kind === '7' ? 7 : 1}: expected seq 1, found ${kind}\n`, err: '' });
    }
    writeFileSync(file, `${lines[0]!.replace('"seq":1,', '')}\n`);
    expect(await verify(file)).toEqual({ code: 1, out: `BROKEN ${file}:1: seq 1: expected seq 1, found no seq member\n`, err: '' });
  });
  it('verifies the file as it was when opened: a writer appending faster than it reads does not keep it reading', async () => {
    const file = join(dir, 'growing.jsonl');
    let head: ChainHead = GENESIS;
    let i = 0;
    /** The next `n` records of the chain, as lines. */
    const next = (n: number): string => {
      let text = '';
      for (const end = i + n; i < end; i++) {
        const { record, line } = linkRecordLine(body(i), head);
        head = { seq: record.seq, hash: record.hash };
        text += `${line}\n`;
      }
      return text;
    };
    const N = 2000;
    writeFileSync(file, next(N));
    let done = false;
    const running = verify(file).finally(() => (done = true));
    // 100 records a turn, more than one read of the file takes: read to its end, the file would
    // not end before the writer stops (at 400 turns, some 20 MB). As opened, it has ~1 MB to read.
    let turns = 0;
    for (; !done && turns < 400; turns++) {
      appendFileSync(file, next(100));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { code, out } = await running;
    expect(code, out).toBe(0);
    const count = Number(/: (\d+) record\(s\)/.exec(out)?.[1]);
    // It read the records of some moment in between, not every one appended: a verify that read
    // to the end would count all `i` (the writer stops at 400 turns, which a loaded machine may
    // reach before the verify ends: how many turns it took is no part of what is checked).
    expect(count).toBeGreaterThanOrEqual(N);
    expect(count).toBeLessThan(i);
  });
});
