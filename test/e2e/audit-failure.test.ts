/**
 * An audit sink that cannot be written (a file sink whose path turns out to be /dev/full, where
 * every write fails with ENOSPC; stdout whose reader went away): with `audit.required` the request
 * fails closed with `audit_unavailable`, and once the sink is known to be broken nothing more goes
 * upstream and `/readyz` is 503 until it recovers; without it the request is served and the
 * failure is logged. Also: a sink that cannot be opened stops the start; rotation.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAuditCli } from '../../src/audit/index.js';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { REPO, spawnWarden, watchServe } from './helpers/cli.js';
import { healthClient } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, prepareWardenDir, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

async function governed(w: WardenFixture, stream = false) {
  const token = await w.signer.token('support', 'ticket-bot');
  const res = await postChat(w.addresses.http, token, {
    model: 'gpt-4o-mini',
    stream,
    warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hello' } },
  });
  return { status: res.status, text: await res.text() };
}

/**
 * The sink's path is a symlink to /dev/full, made before the start: it opens for appending (so the
 * start succeeds), and every write fails with ENOSPC, like a full disk.
 */
async function wardenWithFullDisk(required: boolean): Promise<{ w: WardenFixture; link: string; linkDir: string }> {
  const linkDir = mkdtempSync(join(tmpdir(), 'warden-full-'));
  const link = join(linkDir, 'full.log');
  symlinkSync('/dev/full', link);
  const w = await startWarden({ upstreamUrl: upstream.url, audit: `audit: { sinks: [{ file: "${link}" }], required: ${String(required)} }` });
  return { w, link, linkDir };
}

async function readyz(w: WardenFixture): Promise<{ status: number; body: any }> {
  const r = await fetch(`${w.addresses.admin}/readyz`);
  return { status: r.status, body: await r.json() };
}

/** `grpc.health.v1.Health/Check` for `service`, over a client of its own. */
async function healthStatus(w: WardenFixture, service = ''): Promise<string> {
  const health = healthClient(w.addresses.grpc);
  try {
    return await new Promise<string>((resolve, reject) => health.Check({ service }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))));
  } finally {
    health.close();
  }
}

async function verify(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runAuditCli(['verify', ...args], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (out += s) } });
  return { code, out };
}

describe('audit sink failure', () => {
  it('audit.required: fails closed; once the sink is known broken nothing goes upstream, /readyz is 503; it recovers', { timeout: 20_000 }, async () => {
    const { w, link, linkDir } = await wardenWithFullDisk(true);
    try {
      expect((await readyz(w)).status).toBe(200);
      // The first write fails (nothing could know before): a stream cannot take back what it
      // already sent, it ends with an error event, no [DONE].
      const s = await governed(w, true);
      expect(s.status).toBe(200);
      expect(s.text).toContain('"code":"audit_unavailable"');
      expect(s.text).not.toContain('[DONE]');
      // Now the sink is known to be broken: refused before forward, and not ready.
      const calls = upstream.calls.length;
      const r = await governed(w);
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text).error.code).toBe('audit_unavailable');
      expect(upstream.calls.length).toBe(calls);
      // The caller is not told where the audit file is; the log is.
      expect(r.text).not.toContain(linkDir);
      expect(s.text).not.toContain(linkDir);
      expect(w.logs.some((l) => l.includes(link) && l.includes('ENOSPC'))).toBe(true);
      const notReady = await readyz(w);
      expect(notReady).toMatchObject({ status: 503, body: { ready: false, reason: 'audit log unavailable', audit: 'unavailable' } });
      const metrics = await (await fetch(`${w.addresses.admin}/metrics`)).text();
      expect(metrics).toMatch(/warden_requests_total\{[^}]*code="audit_unavailable"[^}]*\} [1-9]/);

      // The cause goes away (the path is a regular file again): the sink reopens it by itself,
      // writes the records kept meanwhile first (the failed write's, then the refused request's),
      // and serves again.
      unlinkSync(link);
      await eventually(async () => (await readyz(w)).status === 200, 50);
      const ok = await governed(w);
      expect(ok.status).toBe(200);
      const records = readFileSync(link, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; stream: boolean; error_code: string | null });
      expect(records.map((x) => [x.seq, x.stream, x.error_code])).toEqual([
        [1, true, null], // written as the request ended (the audit's own failure came after)
        [2, false, 'audit_unavailable'], // refused before forward
        [3, false, null],
      ]);
      expect((await verify(link)).code).toBe(0);
      // The refused request's record was kept, not lost: no error line says it could not be
      // written (found: one per request refused during an outage, for records written later).
      const refusedId = (JSON.parse(readFileSync(link, 'utf8').split('\n')[1]!) as { request_id: string }).request_id;
      expect(w.logs.filter((l) => l.includes(refusedId)).map((l) => JSON.parse(l).msg)).toEqual(['audit record kept until the audit sink recovers']);
    } finally {
      await w.close();
      rmSync(linkDir, { recursive: true, force: true });
    }
  });

  it('gRPC health follows: NOT_SERVING while the sink is broken, SERVING once it recovers; Watch is told both', { timeout: 20_000 }, async () => {
    const { w, link, linkDir } = await wardenWithFullDisk(true);
    const health = healthClient(w.addresses.grpc);
    const watch = health.Watch({ service: '' });
    try {
      const seen: string[] = [];
      watch.on('data', (m: { status: string }) => seen.push(m.status));
      watch.on('error', () => {});
      await eventually(() => seen.length === 1);
      expect(seen).toEqual(['SERVING']);
      expect(await healthStatus(w)).toBe('SERVING');

      // The first write fails: the sink is broken, /readyz says so, and so does gRPC health.
      await governed(w);
      expect((await readyz(w)).status).toBe(503);
      expect(await healthStatus(w)).toBe('NOT_SERVING');
      expect(await healthStatus(w, 'warden.v1.PromptGateway')).toBe('NOT_SERVING');
      await eventually(() => seen.length === 2);
      expect(seen).toEqual(['SERVING', 'NOT_SERVING']);

      // The cause goes away: the sink recovers by itself, and health says SERVING again.
      unlinkSync(link);
      await eventually(() => seen.length === 3, 50);
      expect(seen).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
      expect(await healthStatus(w)).toBe('SERVING');
      expect((await readyz(w)).status).toBe(200);
    } finally {
      watch.cancel();
      health.close();
      await w.close();
      rmSync(linkDir, { recursive: true, force: true });
    }
  });

  it('audit.required false: the request is served and the failure is logged', async () => {
    const { w, linkDir } = await wardenWithFullDisk(false);
    try {
      const r = await governed(w);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.text).choices[0].message.content).toContain('upstream saw');
      expect(w.logs.some((l) => l.includes('audit record could not be written') && l.includes('"required":false'))).toBe(true);
      // Still served (the audit is optional), and ready says so.
      expect((await governed(w)).status).toBe(200);
      expect(await readyz(w)).toMatchObject({ status: 200, body: { ready: true, audit: 'unavailable' } });
      // Ready, so gRPC health says SERVING too.
      expect(await healthStatus(w)).toBe('SERVING');
    } finally {
      await w.close();
      rmSync(linkDir, { recursive: true, force: true });
    }
  });

  it('a file sink that cannot be opened stops the start, naming the key and the cause', async () => {
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [stdout, { file: no-such-dir/audit.log }] }' });
    try {
      const config = loadConfig(p.configFile, {});
      await expect(createRuntime(config, { logger: createLogger({ level: 'error' }), configDir: p.dir, watch: false })).rejects.toMatchObject({
        code: 'audit_unavailable',
        location: { path: 'audit.sinks[1].file' },
        message: expect.stringMatching(/cannot open the audit file .*no-such-dir\/audit\.log for appending: ENOENT/),
      });
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('two sinks naming one file are refused', async () => {
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [{ file: r7.log }, { file: ./r7.log }] }' });
    try {
      const config = loadConfig(p.configFile, {});
      await expect(createRuntime(config, { logger: createLogger({ level: 'error' }), configDir: p.dir, watch: false })).rejects.toMatchObject({
        location: { path: 'audit.sinks[1]' },
        message: expect.stringMatching(/same file as audit.sinks\[0\]/),
      });
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('rotation: after a rename, reopenAudit (SIGHUP) continues the chain in a new file', async () => {
    const w = await startWarden({ upstreamUrl: upstream.url });
    try {
      expect((await governed(w)).status).toBe(200);
      renameSync(w.auditFile, `${w.auditFile}.1`);
      expect(await w.runtime.reopenAudit('SIGHUP')).toBe(true);
      expect(existsSync(w.auditFile)).toBe(true);
      expect((await governed(w)).status).toBe(200);
      const first = await verify(`${w.auditFile}.1`);
      expect(first.code).toBe(0);
      const [, seq, hash] = /head seq (\d+) hash ([0-9a-f]{64})/.exec(first.out)!;
      const second = await verify('--from-hash', hash!, '--from-seq', seq!, w.auditFile);
      expect(second).toMatchObject({ code: 0, out: expect.stringMatching(/1 record\(s\)/) });
      // Deleted (rm, or a rotation's compressor deleting the renamed file), with no SIGHUP: the
      // next request's record is not written to the deleted file, where it would be lost while
      // its caller is answered 200. It goes to a new file at the path, which continues the chain.
      const [, seq2, hash2] = /head seq (\d+) hash ([0-9a-f]{64})/.exec(second.out)!;
      unlinkSync(w.auditFile);
      expect((await governed(w)).status).toBe(200);
      expect(existsSync(w.auditFile)).toBe(true);
      expect(await verify('--from-hash', hash2!, '--from-seq', seq2!, w.auditFile)).toMatchObject({ code: 0, out: expect.stringMatching(/1 record\(s\)/) });
      expect(w.logs.some((l) => l.includes('was deleted') && l.includes('"renamed":false'))).toBe(true);
      // A directory that is gone: reopen fails, the sink is failed, requests are refused.
      rmSync(w.dir, { recursive: true, force: true });
      expect(await w.runtime.reopenAudit('SIGHUP')).toBe(false);
      expect((await readyz(w)).status).toBe(503);
      expect(await healthStatus(w)).toBe('NOT_SERVING');
      expect(w.logs.some((l) => l.includes('audit sink could not be reopened'))).toBe(true);
    } finally {
      await w.close();
    }
  });

  it('stdout that is a file, full (a file size limit): a record cut short is its request\'s audit_unavailable, never a 200', { timeout: 60_000 }, async () => {
    // Node writes a stdout that is a file synchronously, through a stream that ignores a short
    // write: the record that crosses the limit is cut, and was reported written. Every request
    // answered 200 must have its whole record in the file.
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [stdout], required: true }' });
    const out = join(p.dir, 'stdout.log');
    const fd = openSync(out, 'w');
    // 16 KiB: the start's log lines, then a dozen records; after the start only records are written.
    const child = spawn('bash', ['-c', `ulimit -f 16 && exec "${process.execPath}" --import tsx "${join(REPO, 'src', 'main.ts')}" serve --config "${p.configFile}"`], {
      cwd: REPO,
      stdio: ['ignore', fd, 'pipe'],
    });
    closeSync(fd);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let listening: string | undefined;
      await eventually(() => (listening = readFileSync(out, 'utf8').split('\n').find((l) => l.includes('"warden listening"'))) !== undefined);
      const addr = JSON.parse(listening!) as { http: string; admin: string };
      const token = await p.signer.token('support', 'ticket-bot');
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++) {
        const res = await postChat(addr.http, token, {
          model: 'gpt-4o-mini',
          warden: { template: 'support/ticket-summary@2', variables: { ticket_id: `T-${i}`, customer_message: 'hello' } },
        });
        statuses.push(res.status);
        if (res.status !== 200) {
          expect(res.status).toBe(503);
          expect(((await res.json()) as any).error.code).toBe('audit_unavailable');
          break;
        }
        await res.arrayBuffer();
      }
      const served = statuses.filter((s) => s === 200).length;
      expect(served).toBeGreaterThan(3);
      expect(statuses.at(-1)).toBe(503);
      const check = await verify('--skip-non-records', out);
      expect(check.code).toBe(0);
      expect(check.out).toContain(`: ${served} record(s), chain intact`);
      expect((await fetch(`${addr.admin}/readyz`)).status).toBe(503);
      // The cut record was linked and its prompt went upstream: lost, and the exit says so.
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.kill('SIGTERM');
      expect(await exited).toBe(1);
      expect(stderr).toContain(`audit sink stdout: 1 record(s) (seq ${served + 1} to ${served + 1}) could not be written before exit and are lost`);
    } finally {
      child.kill('SIGKILL');
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('stdout whose reader went away (EPIPE): audit_unavailable, no crash, nothing more upstream', { timeout: 30_000 }, async () => {
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [stdout], required: true }' });
    const child = spawnWarden(['serve', '--config', p.configFile]);
    try {
      const { listening, exited } = watchServe(child);
      const addr = await listening;
      child.stdout!.destroy(); // the reader goes away
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const token = await p.signer.token('support', 'ticket-bot');
      const body = { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hello' } } };
      const before = upstream.calls.length;
      const first = await postChat(addr.http, token, body);
      expect(first.status).toBe(503);
      expect(((await first.json()) as any).error.code).toBe('audit_unavailable');
      const calls = upstream.calls.length;
      // Its own record's write found the reader gone (the prompt had gone upstream: that record is
      // lost), or a log line's did first (refused before forward: nothing was linked).
      const forwarded = calls > before;
      const second = await postChat(addr.http, token, body);
      expect(second.status).toBe(503);
      await second.arrayBuffer();
      expect(upstream.calls.length).toBe(calls);
      expect((await fetch(`${addr.admin}/readyz`)).status).toBe(503);
      expect(child.exitCode).toBeNull();
      child.kill('SIGTERM');
      expect(await exited).toBe(forwarded ? 1 : 0);
      if (forwarded) expect(stderr).toContain('audit sink stdout: 1 record(s) (seq 1 to 1) could not be written before exit and are lost');
    } finally {
      child.kill('SIGKILL');
      rmSync(p.dir, { recursive: true, force: true });
    }
  });
});
