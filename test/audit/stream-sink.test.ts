/**
 * The stream (stdout) sink when its reader stops reading: a write that does not complete within
 * the write timeout stalls the sink (audit_unavailable), and it recovers once the stream has
 * written what it holds. What the failure log line says depends on audit.required.
 */
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createAuditLog, createFileSink, createStreamSink } from '../../src/audit/index.js';
import { body } from './helpers.js';

/** A stream whose reader is stopped: it takes lines but calls back only when `drain()` is called. */
function stoppedReader(): { out: Writable; lines: string[]; drain(): void } {
  const lines: string[] = [];
  const held: Array<() => void> = [];
  let reading = false;
  const out = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      if (reading) cb();
      else held.push(() => cb());
    },
  });
  return {
    out,
    lines,
    drain() {
      reading = true;
      for (const cb of held.splice(0)) cb();
    },
  };
}

function logLines(): { logger: { error(o: object, m?: string): void; warn(o: object, m?: string): void; info(o: object, m?: string): void }; messages: string[] } {
  const messages: string[] = [];
  const push = (_o: object, m?: string) => void messages.push(m ?? '');
  return { logger: { error: push, warn: push, info: push }, messages };
}

describe('a stream sink whose reader stops reading', () => {
  it('fails the waiting writes after the write timeout, refuses new ones, recovers when the stream drains', async () => {
    const reader = stoppedReader();
    const { logger, messages } = logLines();
    const sink = createStreamSink(reader.out, 'stdout', logger, { writeTimeoutMs: 100 });
    const log = createAuditLog({ sinks: [sink] });
    const changes: boolean[] = [];
    log.onAvailabilityChange((a) => changes.push(a));
    const t0 = performance.now();
    const first = log.append(body(1));
    const second = log.append(body(2));
    await expect(first).rejects.toMatchObject({ code: 'audit_unavailable', message: 'the audit log is unavailable (ETIMEDOUT)' });
    await expect(second).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    expect(log.available()).toBe(false);
    expect(sink.unwritten!()).toBe(2);
    expect(log.unwritten()).toEqual([{ sink: 'stdout', records: 2, first_seq: 1, last_seq: 2 }]);
    expect(messages.some((m) => m.includes('stalled') && m.includes('requests are refused (audit_unavailable) until the stream drains'))).toBe(true);
    // The record of a request that was upstream when the sink stalled: its caller is refused at
    // once, and the record goes into the stream behind the others (not lost without a trace).
    await expect(log.append({ ...body(3), prompt_hmac: 'b'.repeat(64), provider: 'openai', stream: true })).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(log.head.seq).toBe(3);
    expect(log.unwritten()).toEqual([{ sink: 'stdout', records: 3, first_seq: 1, last_seq: 3 }]);
    await log.flush(); // a stalled sink does not hold a flush

    reader.drain();
    await new Promise((r) => setImmediate(r));
    expect(log.available()).toBe(true);
    expect(changes).toEqual([false, true]);
    expect(sink.unwritten!()).toBe(0);
    await expect(log.append(body(4))).resolves.toMatchObject({ seq: 4 });
    expect(reader.lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2, 3, 4]);
    await log.close();
  });

  it('a stream that keeps up is never failed, however long it runs', async () => {
    const lines: string[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        setTimeout(cb, 5);
      },
    });
    const sink = createStreamSink(out, 'stdout', undefined, { writeTimeoutMs: 50 });
    const log = createAuditLog({ sinks: [sink] });
    for (let i = 1; i <= 30; i++) await log.append(body(i));
    expect(log.available()).toBe(true);
    expect(lines).toHaveLength(30);
    await log.close();
  });

  it('an error after a stall (the reader went away) is final', async () => {
    const reader = stoppedReader();
    const sink = createStreamSink(reader.out, 'stdout', undefined, { writeTimeoutMs: 50 });
    await expect(sink.write('{"a":1}')).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    reader.out.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    reader.drain();
    await new Promise((r) => setImmediate(r));
    expect(sink.failure).toMatchObject({ code: 'EPIPE' });
    await sink.close();
  });
});

describe('a stream sink whose write fails', () => {
  it('a lone waiting write that fails after a stall is a failure, not a recovery (health does not flap)', async () => {
    const held: Array<(err?: Error) => void> = [];
    const out = new Writable({ highWaterMark: 1, write: (_c, _e, cb) => void held.push(cb) });
    out.on('error', () => undefined);
    const { logger, messages } = logLines();
    const log = createAuditLog({ sinks: [createStreamSink(out, 'stdout', logger, { writeTimeoutMs: 50 })] });
    const changes: boolean[] = [];
    log.onAvailabilityChange((available) => changes.push(available));
    await expect(log.append(body(1))).rejects.toMatchObject({ code: 'audit_unavailable' }); // stalled
    held.shift()!(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })); // the reader went away
    await new Promise((r) => setImmediate(r));
    expect(changes).toEqual([false]);
    expect(messages.filter((m) => /recovered/.test(m))).toEqual([]);
    expect(messages.some((m) => /audit sink stdout failed/.test(m))).toBe(true);
    expect(log.available()).toBe(false);
  });

  it('a write() that throws settles its own request, not the one waiting before it', async () => {
    const held: Array<(err?: Error | null) => void> = [];
    let calls = 0;
    const out = {
      write(_line: string, cb: (err?: Error | null) => void) {
        if (++calls === 2) throw Object.assign(new Error('write failed'), { code: 'ERR_TEST' });
        held.push(cb);
        return true;
      },
    };
    const sink = createStreamSink(out, 'stdout', undefined, { writeTimeoutMs: 10_000 });
    const first = sink.write('{"a":1}');
    await expect(sink.write('{"b":2}')).rejects.toMatchObject({ code: 'ERR_TEST' });
    // The first line is still in the stream; the second never got there, and never will (the
    // failure is final): counted as lost, for shutdown to report.
    expect(sink.unwritten!()).toBe(2);
    held.shift()!(null);
    await expect(first).resolves.toBeUndefined();
    expect(sink.unwritten!()).toBe(1);
  });
});

describe('the sink failure log line and audit.required', () => {
  it('says requests are refused with audit.required, and that they are served without it', async () => {
    for (const required of [true, false]) {
      const reader = stoppedReader();
      const { logger, messages } = logLines();
      const sink = createStreamSink(reader.out, 'stdout', logger, { writeTimeoutMs: 20, required });
      await expect(sink.write('{"a":1}')).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      const line = messages.find((m) => m.includes('stalled'))!;
      if (required) expect(line).toContain('requests are refused (audit_unavailable)');
      else expect(line).toMatch(/requests are still served \(audit.required is false\) but their records are lost/);
      reader.drain();
      await sink.close();
    }
  });

  it.skipIf(!existsSync('/dev/full'))('the file sink says the same (a full disk: /dev/full)', async () => {
    for (const required of [true, false]) {
      const { logger, messages } = logLines();
      const sink = createFileSink('/dev/full', { logger, required, checkMs: 60_000 });
      sink.open!();
      await expect(sink.write('{"a":1}')).rejects.toMatchObject({ code: 'ENOSPC' });
      const line = messages.find((m) => m.includes('failed (ENOSPC)'))!;
      if (required) expect(line).toContain('requests are refused (audit_unavailable) until it recovers');
      else {
        expect(line).not.toContain('refused');
        expect(line).toContain('requests are still served');
      }
      expect(sink.unwritten!()).toBe(1);
      await sink.close();
    }
  });
});
