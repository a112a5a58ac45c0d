import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/pipeline/clock.js';

describe('isoTime', () => {
  it('formats like Date.prototype.toISOString, for repeated and changing milliseconds', () => {
    const stamps = [0, 1, 1, 999, 1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_124, -1, 8.64e15, 1_700_000_000_123];
    for (const ms of stamps) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('throws as toISOString does for a time that is not a date, also right after a valid one', () => {
    expect(isoTime(5)).toBe('1970-01-01T00:00:00.005Z');
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
    expect(isoTime(5)).toBe('1970-01-01T00:00:00.005Z');
  });
});
