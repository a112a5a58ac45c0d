/**
 * A stdout audit sink whose reader stops reading (a blocking log driver, a stuck collector): on
 * Linux a pipe on stdout is written asynchronously, so the pipe fills and a write's callback never
 * comes. The write is bounded (audit.write_timeout_ms): the request fails closed with
 * audit_unavailable, /readyz is 503 and gRPC health NOT_SERVING, and the sink recovers once the
 * stream drains, with the chain whole. SIGTERM still ends within the grace period: the records the
 * pipe never took are reported lost and the exit status says so.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { runAuditCli } from '../../src/audit/index.js';
import { spawnWarden, watchServe } from './helpers/cli.js';
import { healthClient } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

const body = { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'x'.repeat(200) } } };

async function healthStatus(grpcAddress: string): Promise<string> {
  const health = healthClient(grpcAddress);
  try {
    return await new Promise<string>((resolve, reject) => health.Check({ service: '' }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))));
  } finally {
    health.close();
  }
}

/** Sends requests one after the other until one is not 200; returns it. */
async function untilRefused(http: string, p: PreparedDir): Promise<{ status: number; code: unknown; served: number }> {
  const token = await p.signer.token('support', 'ticket-bot');
  for (let served = 0; served < 2000; served++) {
    const res = await postChat(http, token, body);
    const json = (await res.json()) as { error?: { code?: unknown } };
    if (res.status !== 200) return { status: res.status, code: json.error?.code, served };
  }
  throw new Error('the pipe never filled');
}

describe('a stdout audit sink whose reader stops reading', () => {
  it('fails the request after audit.write_timeout_ms, is not ready, recovers when read again; SIGTERM exits in time, status 1 for lost records', { timeout: 60_000 }, async () => {
    const p = await prepareWardenDir({
      upstreamUrl: upstream.url,
      audit: 'audit: { sinks: [stdout], required: true, write_timeout_ms: 500 }',
      // No clock in the test: every other deadline lasts far past its 60 s timeout, so a refusal
      // or an exit that waited for anything but the write timeout and the grace period hangs it.
      limits: 'limits: { client_timeout_ms: 600000, upstream_timeout_ms: 600000, shutdown_grace_ms: 1000 }',
    });
    const child = spawnWarden(['serve', '--config', p.configFile]);
    // Also when the test times out (which ends it without its finally): the child would outlive it.
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const { lines, listening, exited } = watchServe(child);
      const addr = await listening;
      child.stdout!.pause(); // the reader stops reading: the pipe fills
      const refused = await untilRefused(addr.http, p);
      expect(refused).toMatchObject({ status: 503, code: 'audit_unavailable' });
      expect(refused.served).toBeGreaterThan(10);
      const ready = await fetch(`${addr.admin}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ audit: 'unavailable' });
      expect(await healthStatus(addr.grpc)).toBe('NOT_SERVING');

      // Read again: the stream drains, the sink recovers, requests are served.
      child.stdout!.resume();
      await eventually(async () => (await fetch(`${addr.admin}/readyz`)).status === 200, 50);
      expect(await healthStatus(addr.grpc)).toBe('SERVING');
      const token = await p.signer.token('support', 'ticket-bot');
      expect((await postChat(addr.http, token, body)).status).toBe(200);
      await eventually(() => lines.some((l) => l.includes('"audit sink stdout recovered')), 50);
      expect(lines.some((l) => l.includes('audit sink stdout stalled') && l.includes('requests are refused (audit_unavailable) until the stream drains'))).toBe(true);
      // The records written are one whole chain: the stall lost none and forked nothing.
      const chainFile = join(p.dir, 'stdout-records.jsonl');
      writeFileSync(chainFile, lines.filter((l) => l.includes('"prev_hash"')).map((l) => `${l}\n`).join(''));
      let out = '';
      const verified = await runAuditCli(['verify', chainFile], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (out += s) } });
      expect(out).toMatch(/^ok /);
      expect(verified).toBe(0);

      // Stall again, then SIGTERM: the reader never comes back, so the exit comes by the grace
      // period or not at all, and its status says records were lost.
      child.stdout!.pause();
      await untilRefused(addr.http, p);
      child.kill('SIGTERM');
      expect(await exited).toBe(1);
      // stdout is full, so its log lines may never come out: the loss is said on stderr too, at once.
      expect(stderr).toMatch(/^warden: audit sink stdout: \d+ record\(s\) \(seq \d+ to \d+\) could not be written before exit and are lost$/m);
      expect(stderr).not.toContain('prev_hash');
    } finally {
      child.kill('SIGKILL');
      rmSync(p.dir, { recursive: true, force: true });
    }
  });
});

describe('audit records lost at shutdown', () => {
  it.skipIf(!existsSync('/dev/full'))('a failed file sink\'s kept records: an error names how many (and their seqs), and the exit status is 1', { timeout: 30_000 }, async () => {
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [{ file: /dev/full }], required: true }' });
    const child = spawnWarden(['serve', '--config', p.configFile]);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const { lines, listening, exited } = watchServe(child);
      const addr = await listening;
      const token = await p.signer.token('support', 'ticket-bot');
      // The first write fails (kept), then two refusals are linked and kept too.
      for (let i = 0; i < 3; i++) {
        const res = await postChat(addr.http, token, body);
        expect(res.status).toBe(503);
        await res.arrayBuffer();
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(1);
      const lost = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => typeof l.lost_records === 'number' && l.msg !== 'shutdown complete');
      expect(lost).toMatchObject({ level: 'error', sink: 'file:/dev/full', lost_records: 3, first_seq: 1, last_seq: 3 });
      expect(lost!.msg).toBe('audit sink file:/dev/full: 3 record(s) (seq 1 to 3) could not be written before exit and are lost');
      expect(lines.some((l) => l.includes('"shutdown complete"') && l.includes('"lost_records":3'))).toBe(true);
      // Never their content: no record text in any log line.
      expect(lines.some((l) => l.includes('"prev_hash"') || l.includes('"prompt_hmac"'))).toBe(false);
      expect(stderr).toContain('warden: audit sink file:/dev/full: 3 record(s) (seq 1 to 3) could not be written before exit and are lost\n');
    } finally {
      child.kill('SIGKILL');
      rmSync(p.dir, { recursive: true, force: true });
    }
  });
});
