import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/pipeline/clock.js';

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe('isoTime', () => {
  it('formats like Date.prototype.toISOString, for repeated and changing milliseconds', () => {
    const stamps = [0, 1, 1, 999, 1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_124, -1, 8.64e15, 1_700_000_000_123];
    for (const ms of stamps) expect(isoTime(ms)).toBe(iso(ms));
  });

  it('matches toISOString across day boundaries, before 1970 and in extended years', () => {
    const days = [0, 1, 19_000, 20_418, 2_932_896 /* 9999-12-31 */, 2_932_897 /* +010000 */, -1, -719_528 /* 0000-01-01 */, -719_529];
    for (const d of days) {
      // Each day's edges and a walk through it, in order and back again.
      const around = [d * DAY - 1, d * DAY, d * DAY + 1, d * DAY + 999, d * DAY + 1000, d * DAY + 3_599_999, d * DAY + 3_600_000, (d + 1) * DAY - 1, (d + 1) * DAY];
      for (const ms of [...around, ...around.reverse()]) expect(isoTime(ms)).toBe(iso(ms));
    }
  });

  it('matches toISOString for random times, fractional ones included (cut toward zero)', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 20_000; i++) {
      // Mostly near now (the fast path), sometimes anywhere in years -271821…275760.
      const base = i % 10 === 0 ? (rnd() * 2 - 1) * 8.64e15 : 1_764_000_000_000 + rnd() * 3 * DAY;
      const ms = i % 3 === 0 ? base : Math.floor(base);
      expect(isoTime(ms)).toBe(iso(ms));
    }
    expect(isoTime(-0.5)).toBe(iso(-0.5));
    expect(isoTime(1_764_000_000_000.9)).toBe('2025-11-24T16:00:00.000Z');
  });

  it('throws as toISOString does for a time that is not a date, also right after a valid one', () => {
    expect(isoTime(5)).toBe('1970-01-01T00:00:00.005Z');
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
    expect(() => isoTime(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(isoTime(5)).toBe('1970-01-01T00:00:00.005Z');
  });
});
