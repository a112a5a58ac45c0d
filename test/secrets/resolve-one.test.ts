/**
 * `resolveOne`: the synchronous answer for a cached value, with the same lease as `resolve`.
 */
import { describe, expect, it } from 'vitest';
import type { SecretProvider } from '../../src/pipeline/ports.js';
import { createSecretResolver } from '../../src/secrets/index.js';

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
