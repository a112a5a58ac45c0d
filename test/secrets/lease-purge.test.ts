/**
 * A cached secret value leaves memory when its lease ends, not when it is next read: a value of a
 * ref no template names any more would otherwise stay in the heap for the process's lifetime.
 * Real file provider, real files; `size` (what the cache holds, expired or not) purges nothing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createFileSecretProvider, createSecretResolver } from '../../src/secrets/index.js';

const CANARY = 'CANARY-LEASE-7d1e';
let dir: string;
let shortRef: string;
let longRef: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-lease-purge-'));
  writeFileSync(join(dir, 'short'), `${CANARY}-short\n`);
  writeFileSync(join(dir, 'long'), `${CANARY}-long\n`);
  shortRef = `file://${join(dir, 'short')}`;
  longRef = `file://${join(dir, 'long')}`;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.useRealTimers());

describe('a cached secret value past its lease', () => {
  it('is dropped from the resolver without a read; a value within its lease stays', async () => {
    const short = createSecretResolver({ providers: [createFileSecretProvider({ ttlMs: 40 })] });
    const long = createSecretResolver({ providers: [createFileSecretProvider({ ttlMs: 600_000 })] });
    expect((await short.resolve([shortRef])).get(shortRef)).toBe(`${CANARY}-short`);
    expect((await long.resolve([longRef])).get(longRef)).toBe(`${CANARY}-long`);
    expect(short.size).toBe(1);
    // Nothing reads the value meanwhile: only the lease ending can drop it.
    await vi.waitFor(() => expect(short.size).toBe(0), { timeout: 5_000, interval: 10 });
    expect(long.size).toBe(1);
    // Fetched again when asked for (the file's value now).
    writeFileSync(join(dir, 'short'), `${CANARY}-short-2\n`);
    expect((await short.resolve([shortRef])).get(shortRef)).toBe(`${CANARY}-short-2`);
    short.clear();
    long.clear();
    expect(long.size).toBe(0);
  });

  it('the longest lease (secrets.default_ttl_ms: 2147483647) keeps the value without a timer overflow warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(w.name);
    process.on('warning', onWarning);
    const r = createSecretResolver({ providers: [createFileSecretProvider({ ttlMs: 2 ** 31 - 1 })] });
    try {
      expect((await r.resolve([longRef])).get(longRef)).toBe(`${CANARY}-long`);
      // Node emits the warning on the next tick, as the timer is armed: before this resumes.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
      expect(r.peek([longRef])?.get(longRef)).toBe(`${CANARY}-long`);
    } finally {
      r.clear();
      process.off('warning', onWarning);
    }
  });

  it('the purge timer is one per cached value, and clear() (the runtime closing) stops it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const r = createSecretResolver({ providers: [createFileSecretProvider({ ttlMs: 600_000 })] });
    expect(vi.getTimerCount()).toBe(0);
    await r.resolve([longRef]);
    // The fetch's own deadline timer is gone; the value's purge timer is left.
    expect(vi.getTimerCount()).toBe(1);
    // Reads arm no timer.
    for (let i = 0; i < 10; i++) expect(r.peek([longRef])?.get(longRef)).toBe(`${CANARY}-long`);
    expect(vi.getTimerCount()).toBe(1);
    r.clear();
    expect(vi.getTimerCount()).toBe(0);
    expect(r.size).toBe(0);
  });
});
