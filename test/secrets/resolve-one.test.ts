/**
 * `resolveOne`: the synchronous answer for a cached value, with the same lease as `resolve`.
 */
import { describe, expect, it, vi } from 'vitest';
import { guardable } from '../../src/redact/index.js';
import type { SecretProvider } from '../../src/pipeline/ports.js';
import type { Template } from '../../src/pipeline/types.js';
import { createFetchStage, createSecretResolver } from '../../src/secrets/index.js';
import { allowDecision, makeContext } from '../stage-context.js';

function counting(ttlMs: number): { provider: SecretProvider; calls: () => number } {
  let calls = 0;
  return {
    provider: { scheme: 'env', fetch: async (ref) => ({ value: `v${++calls}-${ref.host}`, ttlMs }) },
    calls: () => calls,
  };
}

describe('SecretResolver.resolveOne', () => {
  it('returns a promise on a miss, then the cached value itself, equal to what resolve gives', async () => {
    const { provider, calls } = counting(60_000);
    const r = createSecretResolver({ providers: [provider] });
    const first = r.resolveOne('env://KEY');
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toBe('v1-KEY');
    const cached = r.resolveOne('env://KEY');
    expect(cached).toBe('v1-KEY');
    expect((await r.resolve(['env://KEY'])).get('env://KEY')).toBe(cached);
    expect(calls()).toBe(1);
  });

  it('shares one fetch between concurrent misses', async () => {
    const { provider, calls } = counting(60_000);
    const r = createSecretResolver({ providers: [provider] });
    const [a, b] = await Promise.all([r.resolveOne('env://KEY'), r.resolve(['env://KEY'])]);
    expect(a).toBe(b.get('env://KEY'));
    expect(calls()).toBe(1);
  });

  it('honours the lease: after it expires the value is fetched again', async () => {
    const { provider, calls } = counting(30);
    const r = createSecretResolver({ providers: [provider] });
    expect(await r.resolveOne('env://KEY')).toBe('v1-KEY');
    expect(r.resolveOne('env://KEY')).toBe('v1-KEY');
    await new Promise((resolve) => setTimeout(resolve, 80));
    const renewed = r.resolveOne('env://KEY');
    expect(renewed).toBeInstanceOf(Promise);
    expect(await renewed).toBe('v2-KEY');
    expect(calls()).toBe(2);
  });

  it('arms no timer when it reads a cached value (the lease check reads the clock instead)', async () => {
    const { provider } = counting(60_000);
    const r = createSecretResolver({ providers: [provider] });
    await r.resolveOne('env://KEY');
    // Each read at least a millisecond after the last: with lru-cache's default ttlResolution
    // (1 ms) each of them would arm a 1 ms timer, and wake the event loop once more per request.
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      const armed = vi.spyOn(globalThis, 'setTimeout');
      try {
        expect(r.resolveOne('env://KEY')).toBe('v1-KEY');
        expect(r.peek(['env://KEY'])?.get('env://KEY')).toBe('v1-KEY');
        expect(r.stamps?.(['env://KEY'])?.size).toBe(1);
        expect(armed).not.toHaveBeenCalled();
      } finally {
        armed.mockRestore();
      }
    }
  });

  it('never caches a value with a zero lease, and forgets everything on clear()', async () => {
    const zero = counting(0);
    const r0 = createSecretResolver({ providers: [zero.provider] });
    await r0.resolveOne('env://KEY');
    expect(r0.resolveOne('env://KEY')).toBeInstanceOf(Promise);
    const { provider } = counting(60_000);
    const r = createSecretResolver({ providers: [provider] });
    await r.resolveOne('env://KEY');
    r.clear();
    expect(r.resolveOne('env://KEY')).toBeInstanceOf(Promise);
  });

  it('a bad ref or an unknown scheme is a rejected promise with secret_unavailable, not a throw', async () => {
    const r = createSecretResolver({ providers: [] });
    const bad = r.resolveOne('not a ref');
    expect(bad).toBeInstanceOf(Promise);
    await expect(bad).rejects.toMatchObject({ code: 'secret_unavailable' });
    await expect(r.resolveOne('env://KEY')).rejects.toMatchObject({ code: 'secret_unavailable' });
  });
});

describe('SecretResolver.peek and the fetch stage', () => {
  it('peek gives every value only when all are cached within their lease', async () => {
    const { provider, calls } = counting(40);
    const r = createSecretResolver({ providers: [provider] });
    expect(r.peek(['env://A'])).toBeUndefined();
    await r.resolve(['env://A']);
    expect(r.peek(['env://A'])).toEqual(new Map([['env://A', 'v1-A']]));
    // One ref not cached yet: no partial answer.
    expect(r.peek(['env://A', 'env://B'])).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 90));
    expect(r.peek(['env://A'])).toBeUndefined();
    expect(calls()).toBe(1);
  });

  it('stamps name each cached value once: the same while cached, a new one after a refetch, none in another resolver', async () => {
    const { provider } = counting(40);
    const r = createSecretResolver({ providers: [provider] });
    expect(r.stamps!(['env://A'])).toBeUndefined();
    await r.resolve(['env://A', 'env://B']);
    const first = r.stamps!(['env://A', 'env://B'])!;
    expect([...first.keys()]).toEqual(['env://A', 'env://B']);
    expect(first.get('env://A')).not.toBe(first.get('env://B'));
    expect(r.stamps!(['env://A'])).toEqual(new Map([['env://A', first.get('env://A')]]));
    // Past the lease: no stamp (as peek gives no value); fetched again: a new stamp.
    await new Promise((resolve) => setTimeout(resolve, 90));
    expect(r.stamps!(['env://A'])).toBeUndefined();
    await r.resolve(['env://A']);
    const again = r.stamps!(['env://A'])!.get('env://A');
    expect(again).toBeDefined();
    expect(again).not.toBe(first.get('env://A'));
    // Another resolver (a config reload) never hands out a stamp already used.
    const other = createSecretResolver({ providers: [counting(60_000).provider] });
    await other.resolve(['env://A']);
    const seen = new Set([first.get('env://A'), first.get('env://B'), again]);
    expect(seen.has(other.stamps!(['env://A'])!.get('env://A'))).toBe(false);
    for (const stamp of seen) expect(stamp).not.toContain(',');
  });

  it('the fetch stage answers synchronously from cached values and asynchronously otherwise, with the same values', async () => {
    const { provider } = counting(60_000);
    const r = createSecretResolver({ providers: [provider] });
    const stage = createFetchStage(() => r, guardable);
    const template = { variables: { code: { source: 'secret', ref: 'env://CODE' } } } as unknown as Template;
    const ctx = () => makeContext({}, { template, decision: allowDecision({ secrets: ['env://CODE'] }) });
    const cold = ctx();
    const pending = stage.run(cold);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    const warm = ctx();
    expect(stage.run(warm)).toBeUndefined();
    expect(warm.secrets).toEqual(cold.secrets);
    expect(warm.secrets?.get('env://CODE')).toBe('v1-CODE');
    // The values' stamps come with them when they come from the cache.
    expect(cold.secretStamps).toBeUndefined();
    expect(warm.secretStamps).toEqual(r.stamps!(['env://CODE']));
    // Not granted: refused before any value is read, cached or not.
    const denied = makeContext({}, { template, decision: allowDecision({ secrets: [] }) });
    expect(() => stage.run(denied)).toThrow(expect.objectContaining({ code: 'policy_denied' }));
    expect(denied.secrets).toBeUndefined();
  });
});
