/**
 * How many calls Warden lets through to one provider at once, and what happens past that, seen
 * from a real upstream on loopback (which counts the calls it holds) and the admin /metrics.
 * By default the only bound is `limits.max_in_flight` (answered at once with `overloaded`); an
 * explicit `pool.connections` caps one upstream, and the calls past it wait visibly
 * (`warden_upstream_queued`) and within the upstream deadline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type FixtureOptions, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream | undefined;
let w: WardenFixture | undefined;

afterEach(async () => {
  upstream?.release();
  await w?.close();
  await upstream?.close();
  w = undefined;
  upstream = undefined;
});

async function start(opts: Omit<FixtureOptions, 'upstreamUrl'>): Promise<{ upstream: FakeUpstream; w: WardenFixture }> {
  upstream = await startUpstream();
  upstream.mode = 'held';
  w = await startWarden({ upstreamUrl: upstream.url, ...opts });
  return { upstream, w };
}

/** `count` raw calls to the upstream provider, started together; resolves to their statuses (and error codes). */
async function calls(fixture: WardenFixture, count: number, stream = false): Promise<Array<Promise<{ status: number; code?: string; id: string | null }>>> {
  const token = await fixture.signer.token('labs', 'raw-bot');
  return Array.from({ length: count }, async (_, i) => {
    const r = await postChat(fixture.addresses.http, token, { model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: `call ${i}` }] });
    const text = await r.text();
    const code = r.ok ? undefined : (JSON.parse(text) as { error: { code: string } }).error.code;
    return { status: r.status, code, id: r.headers.get('x-request-id') };
  });
}

/** The `warden_upstream_*` gauges by provider label, as the admin listener exposes them. */
async function upstreamGauge(fixture: WardenFixture, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${fixture.addresses.admin}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{[^}]*provider="([^"]+)"[^}]*\\} (\\S+)$`).exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

describe('calls to one provider', () => {
  it('without pool.connections, are bounded by limits.max_in_flight only: no second queue inside Warden', async () => {
    // 70 is past the pool size an older default fixed at 64.
    const { upstream, w } = await start({
      limits: 'limits: { max_in_flight: 80, upstream_timeout_ms: 10000, shutdown_grace_ms: 2000 }',
    });
    const pending = await calls(w, 70, true);
    await eventually(() => upstream.held === 70);
    expect(await upstreamGauge(w, 'warden_upstream_queued')).toEqual({ upstream: 0, down: 0 });
    expect((await upstreamGauge(w, 'warden_upstream_connections_limit')).upstream).toBe(80);
    upstream.release();
    const results = await Promise.all(pending);
    expect(results.filter((r) => r.status === 200)).toHaveLength(70);
    expect(w.logs.filter((l) => l.includes('pool.connections'))).toEqual([]);
  }, 15_000);

  it('at the default, a full load (every place under max_in_flight taken) is no saturation: nothing waits, nothing is logged', async () => {
    // The last call takes the last connection (undici's dispatch says so): the next one would be
    // refused `overloaded` by max_in_flight, never wait. The warning is for calls that wait.
    const { upstream, w } = await start({ limits: 'limits: { max_in_flight: 3, upstream_timeout_ms: 10000, shutdown_grace_ms: 2000 }' });
    const pending = await calls(w, 3);
    await eventually(() => upstream.held === 3);
    expect((await upstreamGauge(w, 'warden_upstream_queued')).upstream).toBe(0);
    upstream.release();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(w.logs.filter((l) => l.includes('pool.connections'))).toEqual([]);
  });

  it('past an explicit pool.connections, wait for a connection and are counted in warden_upstream_queued', async () => {
    const { upstream, w } = await start({ upstreamKeys: 'pool: { connections: 2 }' });
    const pending = await calls(w, 5);
    await eventually(async () => upstream.held === 2 && (await upstreamGauge(w, 'warden_upstream_queued')).upstream === 3);
    expect((await upstreamGauge(w, 'warden_upstream_active')).upstream).toBe(2);
    // Only providers with a connection pool have series: the echo provider has none.
    expect(Object.keys(await upstreamGauge(w, 'warden_upstream_queued')).sort()).toEqual(['down', 'upstream']);
    expect((await upstreamGauge(w, 'warden_upstream_connections_limit')).upstream).toBe(2);

    // Each released pair lets the next queued calls through, two at a time.
    await eventually(() => {
      upstream.release();
      return upstream.calls.length === 5;
    });
    upstream.release();
    const results = await Promise.all(pending);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await upstreamGauge(w, 'warden_upstream_queued')).toEqual({ upstream: 0, down: 0 });
    // Saturation is logged (once per provider per minute, not per call), naming the key to raise.
    const saturated = w.logs.filter((l) => l.includes('pool.connections'));
    expect(saturated).toHaveLength(1);
    expect(saturated[0]).toContain('"provider":"upstream"');
  });

  it('wait for a connection within limits.upstream_timeout_ms: past it, upstream_timeout, audited, never sent', async () => {
    const { upstream, w } = await start({
      upstreamKeys: 'pool: { connections: 1 }',
      limits: 'limits: { upstream_timeout_ms: 400, shutdown_grace_ms: 2000 }',
    });
    const results = await Promise.all(await calls(w, 2));
    // One call held the only connection until the deadline; the other waited for it as long and
    // was refused at the same deadline, without ever reaching the upstream.
    expect(results.map((r) => [r.status, r.code])).toEqual([[504, 'upstream_timeout'], [504, 'upstream_timeout']]);
    expect(upstream.calls).toHaveLength(1);
    await eventually(() => w.audit().filter((r) => r.error_code === 'upstream_timeout').length === 2);
    expect(w.audit().map((r) => r.request_id).sort()).toEqual(results.map((r) => r.id).sort());
  });
});
