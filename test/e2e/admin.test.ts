/**
 * Admin listener: /healthz, /readyz, /metrics — and a real Prometheus (the Debian package) that
 * scrapes a running Warden until `warden_requests_total` is queryable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminServer } from '../../src/server/admin.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

async function governedCall(token: string): Promise<number> {
  const res = await postChat(w.addresses.http, token, {
    model: 'gpt-4o-mini',
    warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-9', customer_message: 'hi' } },
  });
  await res.arrayBuffer();
  return res.status;
}

/** The value of the first sample of `name` carrying all `labels` (in any order), or NaN. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => inside.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}

describe('admin endpoints', () => {
  it('/healthz and /readyz name the active revisions', async () => {
    const h = await fetch(`${w.addresses.admin}/healthz`);
    expect(h.status).toBe(200);
    const r = await fetch(`${w.addresses.admin}/readyz`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as any;
    expect(body.status).toBe('ready');
    expect(body.policy_revision).toBe(w.runtime.live()!.policy.revision);
    expect(body.template_revision).toBe(w.runtime.live()!.templates.revision);
    expect(body.policy_revision).toMatch(/^[0-9a-f]{16,}$/);
    expect(body.audit).toBe('ok');
  });

  it('/readyz while draining: 503 and a body that agrees (ready false, reason draining)', async () => {
    // The runtime's own answer while draining, and an admin server fed a readiness that only says draining.
    const server = createAdminServer({
      registry: { contentType: 'text/plain', metrics: async () => '' },
      readiness: () => ({ ready: true, policy_revision: 'p', template_revision: 't', draining: true }),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`);
      expect(r.status).toBe(503);
      expect(await r.json()).toMatchObject({ status: 'not_ready', ready: false, reason: 'draining', draining: true });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const other = await startWarden({ upstreamUrl: upstream.url });
    const closing = other.close();
    expect(other.runtime.readiness()).toMatchObject({ ready: false, reason: 'draining', draining: true });
    await closing;
  });

  it('/metrics exposes request, stage, decision, upstream and revision metrics', async () => {
    expect(await governedCall(await w.signer.token('support', 'ticket-bot'))).toBe(200);
    expect(await governedCall(await w.signer.token('marketing', 'campaign-bot'))).toBe(403);
    // Refused before it became a request (not JSON, from a caller whose credentials pass: they are
    // checked before the body): counted all the same.
    const bad = await fetch(`${w.addresses.http}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await w.signer.token('support', 'ticket-bot')}` },
      body: '{oops',
    });
    expect(bad.status).toBe(400);
    const res = await fetch(`${w.addresses.admin}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(sample(text, 'warden_requests_total', { protocol: 'openai-http', code: 'ok' })).toBeGreaterThan(0);
    expect(sample(text, 'warden_requests_total', { protocol: 'openai-http', code: 'policy_denied' })).toBeGreaterThan(0);
    expect(sample(text, 'warden_requests_total', { protocol: 'openai-http', code: 'invalid_request' })).toBeGreaterThan(0);
    for (const stage of ['authenticate', 'resolve', 'decide', 'fetch', 'render', 'redact', 'forward', 'respond', 'audit']) {
      expect(sample(text, 'warden_stage_duration_seconds_count', { stage }), stage).toBeGreaterThan(0);
    }
    expect(sample(text, 'warden_policy_decisions_total', { allow: 'true' })).toBeGreaterThan(0);
    expect(sample(text, 'warden_policy_decisions_total', { allow: 'false' })).toBeGreaterThan(0);
    expect(sample(text, 'warden_upstream_requests_total', { provider: 'upstream', outcome: 'ok' })).toBeGreaterThan(0);
    // Every configured provider's outcomes are there from the start, at 0 until the first one.
    expect(sample(text, 'warden_upstream_requests_total', { provider: 'down', outcome: 'timeout' })).toBe(0);
    expect(sample(text, 'warden_upstream_requests_total', { provider: 'echo', outcome: 'error' })).toBe(0);
    expect(sample(text, 'warden_audit_records_total', { outcome: 'ok' })).toBeGreaterThan(0);
    expect(sample(text, 'warden_active_revision_info', { kind: 'policies', revision: w.runtime.live()!.policy.revision })).toBe(1);
    expect(sample(text, 'warden_active_revision_info', { kind: 'templates', revision: w.runtime.live()!.templates.revision })).toBe(1);
    expect(text).toContain('warden_process_cpu_seconds_total');
  });

  it('unknown admin paths are 404', async () => {
    expect((await fetch(`${w.addresses.admin}/debug`)).status).toBe(404);
  });

  it('a method other than GET/HEAD is 405 on the admin paths only, 404 on any other path', async () => {
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      const r = await fetch(`${w.addresses.admin}${path}`, { method: 'POST', body: '{}' });
      expect(r.status, path).toBe(405);
      expect(r.headers.get('allow'), path).toBe('GET, HEAD');
    }
    for (const [method, path] of [['POST', '/v1/chat/completions'], ['DELETE', '/debug'], ['PUT', '/']]) {
      const r = await fetch(`${w.addresses.admin}${path}`, { method, body: method === 'DELETE' ? undefined : '{}' });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.headers.get('allow'), `${method} ${path}`).toBeNull();
    }
  });

  it('CONNECT (no proxy here) is answered 405 and the connection closed, not dropped without a word', async () => {
    const { host } = new URL(w.addresses.admin);
    const answer = await rawRequest(w.addresses.admin, `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 405 /);
    expect(answer).toMatch(/\r\nallow: GET, HEAD\r\n/i);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer).not.toContain(host.split(':')[1]!);
  });

  it('an absolute-form request target is served like the origin-form one', async () => {
    const { host } = new URL(w.addresses.admin);
    const metrics = await rawRequest(w.addresses.admin, `GET http://${host}/metrics?x=1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(metrics).toMatch(/^HTTP\/1\.1 200 /);
    expect(metrics).toContain('warden_requests_total');
    const health = await rawRequest(w.addresses.admin, `GET HTTP://${host}/healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(health).toMatch(/^HTTP\/1\.1 200 /);
    expect(health).toContain('{"status":"ok"}');
    // Only the path selects: the same unknown paths stay unknown, and `//metrics` is not a host.
    for (const target of [`http://${host}/debug`, `http://${host}//metrics`, '//metrics', '*']) {
      const r = await rawRequest(w.addresses.admin, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(r, target).toMatch(/^HTTP\/1\.1 404 /);
    }
  });
});

/** Sends `request` as raw bytes to `base`'s host and port; resolves with the whole answer. */
function rawRequest(base: string, request: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(request));
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString()));
    socket.once('error', reject);
    socket.once('close', () => resolve(out));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('a real Prometheus scrapes /metrics', () => {
  let prom: ChildProcess | undefined;
  let dir: string | undefined;

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r));
      prom.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sees the target up and can query warden_requests_total', { timeout: 60_000 }, async () => {
    expect(await governedCall(await w.signer.token('support', 'ticket-bot'))).toBe(200);
    dir = mkdtempSync(join(tmpdir(), 'warden-prom-'));
    const adminTarget = new URL(w.addresses.admin).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: warden
    static_configs: [{ targets: ["${adminTarget}"] }]
`,
    );
    const port = await freePort();
    prom = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    prom.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const failed = new Promise<never>((_, reject) =>
      prom!.once('exit', (code) => reject(new Error(`prometheus exited with ${String(code)}: ${stderr.slice(-500)}`))),
    );
    const api = `http://127.0.0.1:${port}/api/v1`;
    const get = async (path: string): Promise<any> => {
      try {
        const r = await fetch(`${api}${path}`);
        return r.ok ? await r.json() : undefined;
      } catch {
        return undefined; // not listening yet
      }
    };
    await Promise.race([
      failed,
      eventually(async () => {
        const t = await get('/targets');
        return t?.data?.activeTargets?.some((x: any) => x.health === 'up') === true;
      }, 200),
    ]);
    let result: any[] = [];
    await Promise.race([
      failed,
      eventually(async () => {
        const q = await get(`/query?query=${encodeURIComponent('warden_requests_total{code="ok"} > 0')}`);
        result = q?.data?.result ?? [];
        return result.length > 0;
      }, 200),
    ]);
    expect(result[0].metric.__name__).toBe('warden_requests_total');
    expect(result[0].metric.protocol).toBe('openai-http');
    expect(Number(result[0].value[1])).toBeGreaterThan(0);

    // README's alert on a rejected reload fires on the first one: the error series is scraped at
    // 0 before it, so increase() has a sample to count from (a series born at 1 has none).
    const query = async (promql: string): Promise<any[]> => (await get(`/query?query=${encodeURIComponent(promql)}`))?.data?.result ?? [];
    const errors = 'warden_reload_total{kind="templates",outcome="error"}';
    expect(sample(await (await fetch(`${w.addresses.admin}/metrics`)).text(), 'warden_reload_total', { kind: 'templates', outcome: 'error' })).toBe(0);
    await Promise.race([failed, eventually(async () => (await query(errors)).length > 0, 200)]);
    expect(Number((await query(errors))[0].value[1])).toBe(0);
    const broken = join(w.dir, 'templates', 'ops', 'broken.yaml');
    writeFileSync(broken, 'id: ops/broken\nversion: 1\nowner: x@example.com\nsensitivity: secret-ish\nmessages: []\n');
    try {
      expect(await w.runtime.reload('test')).toBe(false);
      await Promise.race([failed, eventually(async () => Number((await query(`increase(${errors}[1m])`))[0]?.value[1] ?? 0) > 0, 200)]);
    } finally {
      rmSync(broken);
      expect(await w.runtime.reload('test')).toBe(true);
    }
  });
});
