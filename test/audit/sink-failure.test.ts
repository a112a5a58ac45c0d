/**
 * The audit file sink when its file goes wrong — opened at start, a full file system (a real
 * short write, from a file size limit), a deleted directory, a rotation — and `warden audit verify`
 * on segments, rewritten lines and huge lines. Real files only; nothing here needs root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, existsSync, linkSync, openSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Writable } from 'node:stream';
import { createAuditLog, createFileSink, createStreamSink, readLastLine } from '../../src/audit/index.js';
import { body, verify } from './helpers.js';

const REPO = join(import.meta.dirname, '..', '..');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-audit-sink-'));
});
afterAll(async () => {
  // Retried: CI once saw ENOTEMPTY here, a file made in the directory while it was being removed
  // (every test had passed); the cleanup of a temporary directory is not what is tested.
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
});

const headOf = (out: string) => /head seq (\d+) hash ([0-9a-f]{64})/.exec(out)!.slice(1) as [string, string];
const until = async (check: () => boolean) => {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
};

describe('file sink failure and recovery', () => {
  it('opens the file at open(): a file in a missing directory stops the start, located', async () => {
    const file = join(dir, 'missing-dir', 'audit.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file, { location: 'audit.sinks[0].file' })] });
    await expect(log.open()).rejects.toMatchObject({
      code: 'audit_unavailable',
      location: { path: 'audit.sinks[0].file' },
      message: expect.stringMatching(/cannot open the audit file .*missing-dir.* for appending: ENOENT \(its directory does not exist\)/),
    });
  });

  it('two file sinks that end at different records stop the start (the next record would break one chain); an empty one goes on', async () => {
    const write = async (file: string, n: number, from = 0): Promise<string> => {
      const log = createAuditLog({ sinks: [createFileSink(file)] });
      for (let i = 0; i < n; i++) await log.append(body(from + i));
      await log.close();
      return readFileSync(file, 'utf8');
    };
    const a = join(dir, 'ahead.jsonl');
    const behind = join(dir, 'behind.jsonl');
    const other = join(dir, 'other-chain.jsonl');
    const aText = await write(a, 3);
    writeFileSync(behind, aText.split('\n')[0] + '\n'); // the same chain, one record: it missed two
    const otherText = await write(other, 3, 100); // as many records, another chain
    for (const [second, text, why] of [
      [behind, aText.split('\n')[0] + '\n', /end at different records \(seq 3 and seq 1\)/],
      [other, otherText, /end at different records \(seq 3 and seq 3, another hash\)/],
    ] as const) {
      const log = createAuditLog({ sinks: [createFileSink(a), createFileSink(second)] });
      await expect(log.open()).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(why) });
      await expect(log.append(body(9))).rejects.toMatchObject({ code: 'audit_unavailable' });
      await log.close();
      expect(readFileSync(a, 'utf8')).toBe(aText); // nothing written to either
      expect(readFileSync(second, 'utf8')).toBe(text);
    }
    // The one behind renamed away: its sink starts a new file, a segment from the other's head.
    renameSync(behind, `${behind}.1`);
    const log = createAuditLog({ sinks: [createFileSink(a), createFileSink(behind)] });
    await expect(log.append(body(3))).resolves.toMatchObject({ seq: 4 });
    await log.close();
    expect((await verify(a)).code).toBe(0);
    const head = JSON.parse(aText.trimEnd().split('\n')[2]!) as { hash: string };
    expect(await verify('--from-hash', head.hash, '--from-seq', '3', behind)).toMatchObject({ code: 0 });
  });

  it('refuses two sinks on one file (a hard link), once open', async () => {
    const a = join(dir, 'same-a.jsonl');
    writeFileSync(a, '');
    linkSync(a, join(dir, 'same-b.jsonl'));
    const log = createAuditLog({ sinks: [createFileSink(a), createFileSink(join(dir, 'same-b.jsonl'))] });
    await expect(log.open()).rejects.toThrow(/are the same file/);
    expect(() => createAuditLog({ sinks: [createFileSink(a), createFileSink(a)] })).toThrow(/listed twice/);
  });

  it('a deleted directory fails the sink (available() is false) until it is back; a record that comes meanwhile is kept and written first; the chain goes on', async () => {
    const sub = join(dir, 'gone');
    mkdirSync(sub);
    const file = join(sub, 'audit.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file, { checkMs: 20 })] });
    const changes: boolean[] = [];
    log.onAvailabilityChange((available) => changes.push(available));
    await log.open();
    await log.append(body(1));
    await log.append(body(2));
    const { out } = await verify(file);
    const [seq, hash] = headOf(out);
    rmSync(sub, { recursive: true });
    // The background check sees the file is gone, cannot reopen the path (no directory): failed.
    await until(() => !log.available());
    // A request already in flight when the sink broke: its caller is refused, its record kept.
    await expect(log.append(body(3))).rejects.toMatchObject({ code: 'audit_unavailable', message: 'the audit log is unavailable (ENOENT)' });
    expect(log.head.seq).toBe(3);
    mkdirSync(sub);
    await until(() => log.available());
    // Told once when it broke (the kept record's write changed nothing) and once when it recovered.
    expect(changes).toEqual([false, true]);
    const r = await log.append(body(4));
    expect(r.seq).toBe(4);
    await log.close();
    // The new file starts after the lost one's head (with the kept record) and verifies as a segment.
    const seg = await verify('--from-hash', hash, '--from-seq', seq, file);
    expect(seg).toMatchObject({ code: 0 });
    expect(seg.out).toMatch(/2 record\(s\), chain intact from seq 3 \(prev_hash [0-9a-f]{64}\), head seq 4/);
    expect(readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).request_id)).toEqual(['req-3', 'req-4']);
    expect((await verify(file)).code).toBe(1); // not from genesis
    expect((await verify('--continue', file)).code).toBe(0);
  });

  it('records of requests refused while the sink is failed cannot crowd out the record of a prompt that was already upstream', async () => {
    const sub = join(dir, 'crowd');
    mkdirSync(sub);
    const file = join(sub, 'audit.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file, { checkMs: 20 })] });
    await log.open();
    await log.append(body(1));
    rmSync(sub, { recursive: true });
    await until(() => !log.available());
    // What the audit guard refuses before forward: rendered (a prompt HMAC), nothing sent. Large
    // ones first (a long reason: a few fill the room a burst of thousands would), then ones a
    // little larger than the record below, until there is no room for them either.
    const refused = (i: number, reason: number) => ({ ...body(i), decision: { allow: true, reasons: ['r'.repeat(reason)] }, prompt_hmac: 'a'.repeat(64), status: 'error' as const, error_code: 'audit_unavailable' });
    let i = 2;
    for (const [reason, most] of [[256 * 1024, 40], [64, 4000]] as const) {
      for (let n = 0; ; n++, i++) {
        expect(n).toBeLessThan(most);
        const before = log.head.seq;
        await expect(log.append(refused(i, reason))).rejects.toMatchObject({ code: 'audit_unavailable' });
        if (log.head.seq === before) break; // no room left for them: refused without being linked
      }
    }
    const linkedRefusals = log.head.seq - 1;
    // A stream that was upstream when the sink broke ends now: its record is linked and kept.
    const sent = { ...body(100), prompt_hmac: 'b'.repeat(64), provider: 'openai', stream: true };
    await expect(log.append(sent)).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(log.head.seq).toBe(linkedRefusals + 2);
    mkdirSync(sub);
    await until(() => log.available());
    await log.close();
    const ids = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).request_id);
    expect(ids.at(-1)).toBe('req-100');
    expect(ids).toHaveLength(linkedRefusals + 1);
    expect((await verify('--continue', file)).code).toBe(0);
  });

  it('a closed sink refuses lines instead of reopening its path (a line written after close would never be fsynced)', async () => {
    const file = join(dir, 'closed.jsonl');
    const sink = createFileSink(file);
    await sink.write('{"a":1}');
    const closing = sink.close();
    await expect(sink.write('{"a":2}')).rejects.toThrow(/is closed/);
    await closing;
    await expect(sink.write('{"a":3}')).rejects.toThrow(/is closed/);
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n');
  });

  it('follows a rotation: a renamed file is noticed in the background, and reopen() switches at once', async () => {
    const file = join(dir, 'rot.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file, { checkMs: 20 })] });
    await log.open();
    await log.append(body(1));
    renameSync(file, `${file}.1`);
    await until(() => existsSync(file)); // reopened by the check
    await log.append(body(2));
    renameSync(file, `${file}.2`);
    await log.reopen(); // SIGHUP after logrotate's rename: no wait for the check
    expect(existsSync(file)).toBe(true);
    await log.append(body(3));
    await log.append(body(4));
    await log.close();
    const one = await verify(`${file}.1`);
    expect(one.code).toBe(0);
    let [seq, hash] = headOf(one.out);
    const two = await verify('--from-hash', hash, '--from-seq', seq, `${file}.2`);
    expect(two.code).toBe(0);
    [seq, hash] = headOf(two.out);
    expect(seq).toBe('2');
    const three = await verify('--from-hash', hash, '--from-seq', seq, file);
    expect(three).toMatchObject({ code: 0, out: expect.stringMatching(/2 record\(s\).*head seq 4/) });
    // A restart resumes from the current file's last line.
    const again = createAuditLog({ sinks: [createFileSink(file)] });
    await again.open();
    expect(again.head.seq).toBe(4);
    await again.close();
  });

  // A rename loses nothing (the records went to the renamed file); a deletion takes the records
  // the file held (nothing written after it: see below). The warning must tell them apart, or
  // every logrotate looks like the lossy case.
  const rotations: Array<[string, (file: string) => void, { renamed: boolean; replaced: boolean }, RegExp]> = [
    ['renamed (mv)', (f) => renameSync(f, `${f}.1`), { renamed: true, replaced: false }, /was renamed or moved \(no record lost\)/],
    ['renamed, a new file created in its place', (f) => (renameSync(f, `${f}.1`), writeFileSync(f, '')), { renamed: true, replaced: true }, /was renamed or moved and another file took its path \(no record lost\)/],
    ['deleted (rm)', (f) => rmSync(f), { renamed: false, replaced: false }, /was deleted: the records it held went with it unless it was copied first \(.*use delaycompress\)/],
    ['deleted, a new file created in its place', (f) => (rmSync(f), writeFileSync(f, '')), { renamed: false, replaced: true }, /was deleted and another file took its path: the records it held went with it/],
  ];
  for (const [name, rotate, fields, message] of rotations) {
    it(`the rotation warning says what happened to the file: ${name}`, async () => {
      const file = join(dir, `says-${name.replace(/\W+/g, '-')}.jsonl`);
      const warnings: Array<{ fields: Record<string, unknown>; msg: string }> = [];
      const logger = { error: () => {}, info: () => {}, warn: (o: object, msg?: string) => void warnings.push({ fields: o as Record<string, unknown>, msg: msg ?? '' }) };
      const log = createAuditLog({ sinks: [createFileSink(file, { checkMs: 20, logger })] });
      await log.open();
      await log.append(body(1));
      rotate(file);
      await until(() => warnings.length > 0);
      await log.close();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.fields).toMatchObject(fields);
      expect(warnings[0]!.msg).toMatch(message);
      expect(warnings[0]!.msg).toContain(file);
    });
  }

  // The check's fstat of the open file is taken before its stat of the path: a file deleted and
  // made anew at its path in between was reported as renamed ("no record lost"), 1 time in 4 at
  // random points of a 1 ms check. The link count is read again after the path's stat.
  it('a file deleted and made anew while the check is under way is reported as deleted, never as renamed', async () => {
    const fields: Array<Record<string, unknown>> = [];
    for (let n = 0; n < 60; n++) {
      const file = join(dir, `race-${n}.jsonl`);
      const warnings: Array<Record<string, unknown>> = [];
      const logger = { error: () => {}, info: () => {}, warn: (o: object) => void warnings.push(o as Record<string, unknown>) };
      const log = createAuditLog({ sinks: [createFileSink(file, { checkMs: 1, logger })] });
      await log.open();
      await log.append(body(1));
      await new Promise((r) => setTimeout(r, n % 4));
      rmSync(file);
      writeFileSync(file, '');
      await until(() => warnings.length > 0);
      await log.close();
      fields.push(...warnings);
    }
    expect(fields.filter((f) => f['renamed'] !== false || f['replaced'] !== true)).toEqual([]);
  });

  // A record written to a file with no name left is lost, while its request is answered as
  // audited. The background check is a minute off here: what notices the deletion is the fstat
  // each write already takes (another writer's check), and the path is reopened before the write.
  const deletions: Array<[string, (file: string) => void]> = [
    ['deleted (rm)', (f) => rmSync(f)],
    // logrotate's `compress` without `delaycompress`, with no SIGHUP: the renamed file is copied
    // into its .gz and deleted, before Warden's check has noticed the rename.
    ['renamed, then compressed and deleted', (f) => (renameSync(f, `${f}.1`), writeFileSync(`${f}.1.gz`, readFileSync(`${f}.1`)), rmSync(`${f}.1`))],
  ];
  for (const [name, remove] of deletions) {
    it(`no record is written to a deleted file: the next write reopens the path first (${name})`, async () => {
      const file = join(dir, `gone-${name.replace(/\W+/g, '-')}.jsonl`);
      const warnings: Array<{ fields: Record<string, unknown>; msg: string }> = [];
      const logger = { error: () => {}, info: () => {}, warn: (o: object, msg?: string) => void warnings.push({ fields: o as Record<string, unknown>, msg: msg ?? '' }) };
      const log = createAuditLog({ sinks: [createFileSink(file, { checkMs: 60_000, logger })] });
      await log.open();
      await log.append(body(1));
      const [seq, hash] = headOf((await verify(file)).out);
      remove(file);
      await log.append(body(2));
      // Two in one turn: the batched write takes the same way.
      await Promise.all([log.append(body(3)), log.append(body(4))]);
      await log.close();
      expect(existsSync(file)).toBe(true);
      expect(await verify('--from-hash', hash, '--from-seq', seq, file)).toMatchObject({ code: 0, out: expect.stringMatching(/3 record\(s\).*head seq 4 /) });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.fields).toMatchObject({ renamed: false, replaced: false });
      expect(warnings[0]!.msg).toMatch(/was deleted/);
      expect(warnings[0]!.msg).toContain(file);
    });
  }

  it(
    'a short write (file size limit: EFBIG, as ENOSPC) is truncated away, fails the request, and is written once there is room again',
    { timeout: 30_000 },
    async () => {
      const file = join(dir, 'limited.jsonl');
      const script = join(dir, 'limited.mts');
      writeFileSync(
        script,
        `import { renameSync } from 'node:fs';
import { createAuditLog, createFileSink } from ${JSON.stringify(join(REPO, 'src', 'audit', 'index.ts'))};
const file = process.argv[2];
const body = (i) => (${JSON.stringify(body(0))});
const log = createAuditLog({ sinks: [createFileSink(file, { checkMs: 60_000 })] });
await log.open();
const results = [];
for (let i = 1; i <= 100; i++) {
  await new Promise((r) => setTimeout(r, 3));
  try { await log.append({ ...body(i), request_id: 'req-' + i + '-' + 'x'.repeat(200) }); results.push('ok'); }
  catch (e) { results.push(e.code + ': ' + e.message); break; }
}
const availableAfterFailure = log.available();
const refused = await log.append(body(999)).then(() => 'written', (e) => e.message);
renameSync(file, file + '.1'); // room again: the limit is per file
await log.reopen();
const availableAfterReopen = log.available();
await log.append({ ...body(1000), request_id: 'after' });
await log.close();
console.log(JSON.stringify({ results, availableAfterFailure, refused, availableAfterReopen }));
`,
      );
      // ulimit -f 8: no file of this process may grow past 8 KiB; the write that crosses the
      // limit is short, the next one fails with EFBIG (Node ignores SIGXFSZ).
      const child = spawn('bash', ['-c', `ulimit -f 8 && exec "${process.execPath}" --import tsx "${script}" "${file}"`], { cwd: REPO });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise((resolve) => child.once('close', resolve));
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const r = JSON.parse(stdout) as { results: string[]; availableAfterFailure: boolean; refused: string; availableAfterReopen: boolean };
      const ok = r.results.filter((x) => x === 'ok').length;
      expect(ok).toBeGreaterThan(3);
      expect(r.results.at(-1)).toBe('audit_unavailable: the audit log is unavailable (EFBIG)');
      expect(r.availableAfterFailure).toBe(false);
      expect(r.refused).toBe('the audit log is unavailable (EFBIG)');
      expect(r.availableAfterReopen).toBe(true);
      // No torn record: the old file holds exactly the records that were acknowledged.
      const old = `${file}.1`;
      expect(statSync(old).size).toBeLessThan(8192);
      expect(readFileSync(old, 'utf8').endsWith('\n')).toBe(true);
      const first = await verify(old);
      expect(first.out).toMatch(new RegExp(`${ok} record\\(s\\), chain intact`));
      const [seq, hash] = headOf(first.out);
      // The new file: the record of the failed write first (its request got audit_unavailable,
      // but its prompt had gone upstream), then the one that came while the sink was failed
      // (refused, but kept), then the next one.
      const second = await verify('--from-hash', hash, '--from-seq', seq, file);
      expect(second).toMatchObject({ code: 0, out: expect.stringMatching(/3 record\(s\)/) });
      const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { request_id: string });
      expect(lines.map((l) => l.request_id)).toEqual([`req-${ok + 1}-${'x'.repeat(200)}`, 'req-0', 'after']);
    },
  );
});

/**
 * A FIFO where the audit file should be: opening it for appending would wait for a reader, and
 * writing to it for the reader to drain it, with the event loop stopped. Each FIFO here has its
 * other end held open by the test, so that even the code before the fix returns instead of waiting
 * (and the test fails rather than hangs); without a reader the open fails with ENXIO, which the
 * start-up e2e test covers (test/e2e/start-failure.test.ts).
 */
describe('file sink on a FIFO', () => {
  /** A FIFO at `path`, and a descriptor holding its other end (`mode`) open without waiting. */
  function fifoAt(path: string, mode: 'reader' | 'both'): number {
    execFileSync('mkfifo', [path]);
    return openSync(path, (mode === 'reader' ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NONBLOCK);
  }

  it('refuses it at open(), by what the opened descriptor is, naming the sink', async () => {
    const fifo = join(dir, 'fifo-open');
    const reader = fifoAt(fifo, 'reader');
    try {
      const log = createAuditLog({ sinks: [createFileSink(fifo, { location: 'audit.sinks[0].file' })] });
      await expect(log.open()).rejects.toMatchObject({
        code: 'audit_unavailable',
        location: { path: 'audit.sinks[0].file' },
        message: `cannot open the audit file ${fifo} for appending: not a regular file: a FIFO (to write records to standard output, use the stdout sink)`,
      });
    } finally {
      closeSync(reader);
    }
  });

  it('a FIFO swapped in by a rotation: reopen() refuses it and the sink is failed; a file at the path again recovers it', async () => {
    const file = join(dir, 'fifo-rotated.jsonl');
    const sink = createFileSink(file, { checkMs: 60_000 });
    const log = createAuditLog({ sinks: [sink] });
    await log.open();
    await log.append(body(1));
    renameSync(file, `${file}.1`);
    const reader = fifoAt(file, 'reader');
    try {
      expect(() => sink.reopen!()).toThrow(`cannot open the audit file ${file} for appending: not a regular file: a FIFO`);
      expect(sink.failure?.message).toMatch(/not a regular file: a FIFO/);
      expect(log.available()).toBe(false);
    } finally {
      closeSync(reader);
      rmSync(file);
    }
    sink.reopen!();
    expect(sink.failure).toBeUndefined();
    await log.close();
  });

  it('readLastLine refuses a FIFO instead of reading it', async () => {
    const fifo = join(dir, 'fifo-last-line');
    const both = fifoAt(fifo, 'both');
    try {
      await expect(readLastLine(fifo)).rejects.toMatchObject({ code: 'ENOTREG', message: 'not a regular file: a FIFO' });
    } finally {
      closeSync(both);
    }
  });

  it('a character device is still appended to (/dev/full stands in for a full disk)', async () => {
    const sink = createFileSink('/dev/full');
    expect(() => sink.open!()).not.toThrow();
    await expect(sink.write('x')).rejects.toMatchObject({ code: 'ENOSPC' });
    await sink.close();
  });

  it('a character device gets one warning that it keeps no file (/dev/null would swallow every record)', async () => {
    const warnings: string[] = [];
    const logger = { error: () => {}, info: () => {}, warn: (_o: object, msg?: string) => void warnings.push(msg ?? '') };
    const sink = createFileSink('/dev/null', { logger });
    sink.open!();
    await sink.write('x\n');
    sink.reopen!(); // a SIGHUP: not said again
    expect(warnings).toEqual(['audit sink file:/dev/null is a character device, not a file: its records are not kept where "warden audit verify" can read them, and the hash chain starts afresh at each start']);
    await sink.close();
  });

  it('a character device is written to without O_NONBLOCK (a terminal not being read makes a write wait, not fail)', async () => {
    // Descriptors of this process open for appending on /dev/null, with their open flags (octal).
    const appendingDevNull = (): number[] =>
      readdirSync('/proc/self/fd')
        .filter((n) => {
          try {
            return readlinkSync(`/proc/self/fd/${n}`) === '/dev/null';
          } catch {
            return false;
          }
        })
        .map((n) => Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${n}`, 'utf8'))![1]!, 8))
        .filter((flags) => (flags & constants.O_APPEND) !== 0);
    const before = appendingDevNull().length;
    const sink = createFileSink('/dev/null');
    sink.open!();
    const flags = appendingDevNull();
    expect(flags).toHaveLength(before + 1);
    expect(flags.every((f) => (f & constants.O_NONBLOCK) === 0)).toBe(true);
    await sink.close();
  });

  it('a regular file gives no such warning', async () => {
    const warnings: string[] = [];
    const logger = { error: () => {}, info: () => {}, warn: (_o: object, msg?: string) => void warnings.push(msg ?? '') };
    const sink = createFileSink(join(dir, 'plain.jsonl'), { logger });
    sink.open!();
    await sink.write('x\n');
    expect(warnings).toEqual([]);
    await sink.close();
  });
});

describe('stream sink failure', () => {
  it('a stream that fails (EPIPE) fails the sink, with no unhandled error event; close leaves no listener', async () => {
    const out = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const sink = createStreamSink(out, 'stdout');
    const log = createAuditLog({ sinks: [sink] });
    const changes: boolean[] = [];
    log.onAvailabilityChange((available) => changes.push(available));
    await expect(log.append(body(1))).rejects.toMatchObject({ code: 'audit_unavailable', message: 'the audit log is unavailable (EPIPE)' });
    await new Promise((r) => setImmediate(r)); // the stream's 'error' event comes after the callback
    expect(log.available()).toBe(false);
    await expect(log.append(body(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
    // Failed by the write's callback and again by the 'error' event: one change.
    expect(changes).toEqual([false]);
    expect(out.listenerCount('error')).toBe(1);
    await log.close();
    expect(out.listenerCount('error')).toBe(0);
  });
});

describe('resuming from the last line', () => {
  it('bounds the last line (a crash can leave a long tail without a newline)', async () => {
    const file = join(dir, 'long-tail.jsonl');
    writeFileSync(file, `{"a":1}\n${'x'.repeat(3000)}\n\n`);
    expect(await readLastLine(file, 4096)).toBe('x'.repeat(3000));
    await expect(readLastLine(file, 2048)).rejects.toThrow(/longer than 2048 bytes/);
    writeFileSync(file, 'y'.repeat(17 * 1024 * 1024));
    const log = createAuditLog({ sinks: [createFileSink(file)] });
    await expect(log.open()).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/last line is longer than 16777216 bytes/) });
  });

  it('reads a long last line in linear time', async () => {
    const file = join(dir, 'long-line.jsonl');
    const LINE = 12 * 1024 * 1024;
    writeFileSync(file, `{"a":1}\n${'z'.repeat(LINE)}`);
    // Counted, not timed: the bytes read from the file, joined and decoded on the way. Quadratic
    // (each 64 KiB step re-joined and re-decoded the whole tail, ~2.5 s here) handled ~1 GB.
    const probe = await open(file);
    const fileHandle = Object.getPrototypeOf(probe) as { read: (...a: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const bytes = { read: 0, joined: 0, decoded: 0 };
    const read = countingRead(fileHandle.read, bytes);
    const concat = counting(Buffer.concat, (list: readonly Uint8Array[]) => (bytes.joined += list.reduce((n, b) => n + b.length, 0)));
    const decode = counting(TextDecoder.prototype.decode, (b?: ArrayBufferView | ArrayBuffer | null) => (bytes.decoded += b?.byteLength ?? 0));
    const toString = counting(Buffer.prototype.toString, function (this: unknown) {
      bytes.decoded += (this as Buffer).length;
    });
    const spies = [
      vi.spyOn(fileHandle, 'read').mockImplementation(read),
      vi.spyOn(Buffer, 'concat').mockImplementation(concat),
      vi.spyOn(TextDecoder.prototype, 'decode').mockImplementation(decode),
      vi.spyOn(Buffer.prototype, 'toString').mockImplementation(toString),
    ];
    let line: string | undefined;
    try {
      line = await readLastLine(file);
    } finally {
      for (const s of spies) s.mockRestore();
    }
    expect(line!.length).toBe(LINE);
    expect(bytes.read).toBeGreaterThanOrEqual(LINE);
    expect(bytes.read).toBeLessThanOrEqual(LINE + 128 * 1024);
    expect(bytes.joined + bytes.decoded).toBeLessThanOrEqual(2 * LINE + 128 * 1024);
  });
});

/** `fn`, calling `count` with the same `this` and arguments first. */
function counting<F extends (...a: never[]) => unknown>(fn: F, count: (this: ThisParameterType<F>, ...a: Parameters<F>) => unknown): F {
  return function (this: ThisParameterType<F>, ...a: Parameters<F>) {
    count.apply(this, a);
    return fn.apply(this, a);
  } as F;
}

/** FileHandle.read, adding what it read to `bytes.read`. */
function countingRead(read: (...a: unknown[]) => Promise<{ bytesRead: number }>, bytes: { read: number }) {
  return async function (this: unknown, ...a: unknown[]) {
    const r = await read.apply(this, a);
    bytes.read += r.bytesRead;
    return r;
  };
}

/** A logger that keeps what the sink says, by level (the messages are for the operator). */
function recordingLogger() {
  const said: Array<{ level: 'error' | 'warn' | 'info'; obj: object; msg: string }> = [];
  const at = (level: 'error' | 'warn' | 'info') => (obj: object, msg = '') => void said.push({ level, obj, msg });
  return { said, logger: { error: at('error'), warn: at('warn'), info: at('info') } };
}

/**
 * Two Wardens on one audit file (a rolling update or an overlapping restart on a shared volume):
 * each resumes from the same head, and their records would fork the chain. Two audit logs in one
 * process stand for the two processes: each has its own descriptor and its own head.
 */
describe('one writer per audit file', () => {
  /** An audit log with one file sink on `path`, opened (its chain resumed from the file). */
  async function openLog(path: string, checkMs: number, logger?: ReturnType<typeof recordingLogger>['logger']): Promise<ReturnType<typeof createAuditLog>> {
    const log = createAuditLog({ sinks: [createFileSink(path, { checkMs, ...(logger ? { logger } : {}) })] });
    await log.open();
    return log;
  }
  it('a sink whose file grew by bytes it did not write refuses to write (no fork), fails for good, and says why with the path', async () => {
    const file = join(dir, 'two-writers.jsonl');
    const a = recordingLogger();
    const logA = await openLog(file, 60_000, a.logger);
    await logA.append(body(1));
    const logB = await openLog(file, 60_000);
    expect(logB.head.seq).toBe(1);
    await logB.append(body(2)); // the second writer goes first: seq 2 after A's seq 1
    // A would write its own seq 2: refused before a byte is written.
    await expect(logA.append(body(3))).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(logA.available()).toBe(false);
    const errors = a.said.filter((s) => s.level === 'error' && /another process writes this audit file/.test(s.msg));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toContain(file);
    // Not a failure that heals: a reopen (SIGHUP) does not bring it back, the chain is someone else's now.
    await expect(logA.reopen()).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(logA.available()).toBe(false);
    await logB.append(body(3));
    await logB.close();
    await logA.close().catch(() => undefined);
    expect(await verify(file)).toMatchObject({ code: 0, out: expect.stringMatching(/3 record\(s\), chain intact/) });
  });

  it('an idle sink notices another writer in its background check (/readyz goes 503 before its next request)', async () => {
    const file = join(dir, 'two-writers-idle.jsonl');
    const a = recordingLogger();
    const logA = await openLog(file, 20, a.logger);
    await logA.append(body(1));
    const logB = await openLog(file, 60_000);
    await logB.append(body(2));
    await until(() => !logA.available());
    // The background retry of a failed sink does not write A's kept records over B's.
    await new Promise((r) => setTimeout(r, 100));
    expect(logA.available()).toBe(false);
    await logB.close();
    await logA.close().catch(() => undefined);
    expect(await verify(file)).toMatchObject({ code: 0, out: expect.stringMatching(/2 record\(s\), chain intact/) });
  });

  it('a reopen (SIGHUP) of the same, unrotated file does not take the other writer\'s bytes for its own: it fails instead of forking', async () => {
    const file = join(dir, 'two-writers-reopen.jsonl');
    const logA = await openLog(file, 60_000);
    await logA.append(body(1));
    const logB = await openLog(file, 60_000);
    await logB.append(body(2));
    // A template reload sends SIGHUP: the path still names A's file, which B grew.
    await expect(logA.reopen()).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/another process writes this audit file/) });
    expect(logA.available()).toBe(false);
    await expect(logA.append(body(3))).rejects.toMatchObject({ code: 'audit_unavailable' });
    await logB.close();
    await logA.close().catch(() => undefined);
    expect(await verify(file)).toMatchObject({ code: 0, out: expect.stringMatching(/2 record\(s\), chain intact/) });
  });

  it('a reopen of the same file nobody else wrote keeps going (a SIGHUP that is not a rotation)', async () => {
    const file = join(dir, 'reopen-same.jsonl');
    const log = await openLog(file, 60_000);
    await log.append(body(1));
    await log.reopen();
    await log.append(body(2));
    expect(log.available()).toBe(true);
    await log.close();
    expect(await verify(file)).toMatchObject({ code: 0, out: expect.stringMatching(/2 record\(s\), chain intact/) });
  });

  it('a failed sink whose file came back grown by another writer does not write its kept record over it', async () => {
    const file = join(dir, 'two-writers-recover.jsonl');
    const a = recordingLogger();
    const logA = await openLog(file, 20, a.logger);
    await logA.append(body(1));
    // A directory in the file's place: A's background check cannot reopen the path (EISDIR).
    renameSync(file, `${file}.real`);
    mkdirSync(file);
    await until(() => !logA.available());
    await expect(logA.append(body(2))).rejects.toMatchObject({ code: 'audit_unavailable' }); // linked and kept
    expect(logA.head.seq).toBe(2);
    // B (the replacement Warden) appends to the same file before it is back at the path, so that
    // A's retry cannot come first: then the file comes back in one synchronous step.
    const logB = await openLog(`${file}.real`, 60_000);
    await logB.append(body(2));
    await logB.close();
    rmSync(file, { recursive: true });
    renameSync(`${file}.real`, file);
    await until(() => a.said.some((s) => /another process writes this audit file/.test(s.msg)));
    await new Promise((r) => setTimeout(r, 60)); // more retries: none writes
    expect(logA.available()).toBe(false);
    expect(a.said.some((s) => /recovered/.test(s.msg))).toBe(false);
    // Its kept record is lost, and said so at shutdown.
    expect(logA.unwritten()).toEqual([{ sink: `file:${file}`, records: 1, first_seq: 2, last_seq: 2 }]);
    await logA.close().catch(() => undefined);
    expect(await verify(file)).toMatchObject({ code: 0, out: expect.stringMatching(/2 record\(s\), chain intact/) });
  });

  it('a failed sink whose path came back as another, non-empty file does not write its kept record there', async () => {
    const file = join(dir, 'other-file-recover.jsonl');
    const a = recordingLogger();
    const logA = await openLog(file, 20, a.logger);
    await logA.append(body(1));
    renameSync(file, `${file}.1`);
    mkdirSync(file);
    await until(() => !logA.available());
    await expect(logA.append(body(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
    // Another Warden's new file with its own chain takes the path (in one synchronous step, so
    // that A's retry cannot create the file first).
    const logB = await openLog(`${file}.b`, 60_000);
    await logB.append(body(1));
    await logB.close();
    rmSync(file, { recursive: true });
    renameSync(`${file}.b`, file);
    await until(() => a.said.some((s) => s.level === 'error' && /already holds/.test(s.msg)));
    expect(logA.available()).toBe(false);
    await logA.close().catch(() => undefined);
    expect(await verify(file)).toMatchObject({ code: 0, out: expect.stringMatching(/1 record\(s\), chain intact/) });
  });

  it('a rotation that lands on another, non-empty file fails closed instead of writing after its lines', async () => {
    const file = join(dir, 'rotated-onto-other.jsonl');
    const log = await openLog(file, 60_000);
    await log.append(body(1));
    renameSync(file, `${file}.1`);
    writeFileSync(file, '{"not":"ours"}\n');
    await expect(log.reopen()).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/already holds 15 byte\(s\)/) });
    expect(log.available()).toBe(false);
    await log.close().catch(() => undefined);
    expect(readFileSync(file, 'utf8')).toBe('{"not":"ours"}\n');
  });

  it('the record whose write found another writer is counted as lost (shutdown reports it and exits 1)', async () => {
    const file = join(dir, 'two-writers-lost.jsonl');
    const logA = await openLog(file, 60_000);
    await logA.append(body(1));
    const logB = await openLog(file, 60_000);
    await logB.append(body(2));
    await expect(logA.append(body(3))).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(logA.head.seq).toBe(2); // linked before the write found B's bytes
    expect(logA.unwritten()).toEqual([{ sink: `file:${file}`, records: 1, first_seq: 2, last_seq: 2 }]);
    await logB.close();
    await logA.close().catch(() => undefined);
  });

  it('a file truncated in place (copytruncate) is not taken for another writer', async () => {
    const file = join(dir, 'copytruncate.jsonl');
    const log = await openLog(file, 20);
    await log.append(body(1));
    await log.append(body(2));
    writeFileSync(file, '');
    await new Promise((r) => setTimeout(r, 60));
    await log.append(body(3));
    expect(log.available()).toBe(true);
    await log.close();
    expect(await verify('--continue', file)).toMatchObject({ code: 0, out: expect.stringMatching(/1 record\(s\)/) });
  });
});

/**
 * A last record whose newline is gone (an editor, `head -c`, a copy-based rotation, a crash at the
 * newline): the next record must not be glued onto its line.
 */
describe('a last line without its newline', () => {
  it('when the last record verifies, the missing newline is written before the next record (said at info level)', async () => {
    const file = join(dir, 'no-final-nl.jsonl');
    const first = createAuditLog({ sinks: [createFileSink(file)] });
    await first.append(body(1));
    await first.append(body(2));
    await first.close();
    writeFileSync(file, readFileSync(file, 'utf8').replace(/\n$/, ''));
    const { said, logger } = recordingLogger();
    const log = createAuditLog({ sinks: [createFileSink(file, { logger })] });
    await log.open();
    expect(log.head.seq).toBe(2);
    await log.append(body(3));
    await log.close();
    expect(await verify(file)).toMatchObject({ code: 0, out: expect.stringMatching(/^ok .*3 record\(s\), chain intact/) });
    const told = said.filter((s) => /no trailing newline/.test(s.msg));
    expect(told.map((s) => s.level)).toEqual(['info']);
    expect(told[0]!.msg).toContain(file);
  });

  it('a file emptied in place (copytruncate) before the first write gets no blank line later', async () => {
    const file = join(dir, 'no-final-nl-truncated.jsonl');
    writeFileSync(file, '{"a":1}'); // a last line without its newline: the sink would write one first
    const sink = createFileSink(file, { checkMs: 60_000 });
    sink.open?.();
    expect(await sink.lastLine!()).toBe('{"a":1}');
    truncateSync(file, 0); // rotated away before the sink's first write: nothing to terminate
    await sink.write('{"b":2}');
    await new Promise((r) => setTimeout(r, 20)); // the next line comes in a later turn, alone
    await sink.write('{"c":3}');
    await sink.close();
    expect(readFileSync(file, 'utf8')).toBe('{"b":2}\n{"c":3}\n');
  });

  it('a last line without its newline that does not verify is still refused', async () => {
    const file = join(dir, 'no-final-nl-torn.jsonl');
    const first = createAuditLog({ sinks: [createFileSink(file)] });
    await first.append(body(1));
    await first.close();
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, -20));
    const log = createAuditLog({ sinks: [createFileSink(file)] });
    await expect(log.open()).rejects.toThrow(/last line is not valid JSON/);
  });
});
