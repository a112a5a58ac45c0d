/**
 * The leak guard's cache of built guards holds secret values (its keys, the guards' needles): a
 * guard leaves it within GUARD_TTL_MS of being built, asked for again or not, so a rotated or
 * revoked secret does not stay in memory for the process's lifetime after the resolver dropped
 * its copy at the end of the lease.
 */
import { describe, expect, it, vi } from 'vitest';
import { LeakGuard } from '../../src/redact/leak-guard.js';

const OLD = 'CANARY-ROTATED-OUT-5b7e';
const NEW = 'CANARY-ROTATED-IN-0d2c';

describe('a built leak guard', () => {
  it('is shared while fresh, and leaves the cache by itself once its time is up', { timeout: 30_000 }, async () => {
    expect(LeakGuard.cached).toBe(0);
    const guard = LeakGuard.for([OLD]);
    expect(guard.active).toBe(true);
    // Requests granted the same secret share it.
    expect(LeakGuard.for([OLD])).toBe(guard);
    expect(LeakGuard.cached).toBe(1);
    // Nothing asks for it again: only its time running out can drop it (the old value with it).
    await vi.waitFor(() => expect(LeakGuard.cached).toBe(0), { timeout: 20_000, interval: 20 });
    // The rotated value's guard is built afresh, and still finds what it should.
    const next = LeakGuard.for([NEW]);
    expect(next).not.toBe(guard);
    const out: Array<{ start: number; end: number }> = [];
    expect(next.find(`the code is ${NEW}.`, out as never)).toBe(1);
    expect(out[0]).toMatchObject({ start: 12, end: 12 + NEW.length });
  });
});
