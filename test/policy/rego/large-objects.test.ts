/**
 * Built-ins that take an object by its keys, and comparisons of objects, on an object of 200,000
 * keys. Object.keys and Object.entries are single native calls no deadline can stop (tens to
 * hundreds of ms on such an object), and the loops after them charged the meter once, up front:
 * with the sidecar's 50 ms these calls ended after 0.2–0.7 s of CPU. They now read the object
 * from a key list kept for it and charge the meter as they go, so the clock is read during the
 * call (deterministic here: the clock reads are counted, not timed).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compilePolicy } from '../../../src/policy/rego/index.js';
import { WORK_CHUNK } from '../../../src/policy/rego/meter.js';
import { policy } from './helpers.js';

const N = 200_000;

/**
 * A deadline no loaded machine reaches, and a test timeout to match (a few seconds of work that a
 * loaded 2-core machine can stretch tenfold): what is asserted is the work charged, not the time.
 */
const SLOW = 300_000;
const UNHURRIED = { deadlineMs: 600_000, inputBounded: true };

function bigObject(): Record<string, number> {
  const o: Record<string, number> = {};
  for (let i = 0; i < N; i++) o[`k${i}`] = i;
  return o;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('built-ins over a 200,000-key object', () => {
  it('charge the meter as they work (the clock is read during the call, not once)', () => {
    const o = bigObject();
    const input = { o, o2: { ...o }, keys: Object.keys(o) };
    const calls = [
      'object.filter(input.o, input.keys)',
      'object.remove(input.o, input.keys)',
      'json.filter(input.o, input.keys)',
      'json.remove(input.o, input.keys)',
      'input.o == input.o2',
    ];
    for (const call of calls) {
      const p = policy(`package t\nx := count([${call}])\n`);
      const now = vi.spyOn(Date, 'now');
      expect(p.evaluate('data.t.x', input, UNHURRIED), call).toBe(1);
      // At least one read of the clock per WORK_CHUNK units for one pass over the keys.
      expect(now.mock.calls.length, call).toBeGreaterThanOrEqual(Math.floor(N / WORK_CHUNK));
      now.mockRestore();
    }
  }, SLOW);

  it('object.filter looks up the keys it keeps: a few keys of a large object are a few lookups', () => {
    const p = policy('package t\nx := object.filter(input.o, ["k7", "k199999", "absent", "k7"])\n');
    const input = { o: bigObject() };
    const keys = vi.spyOn(Object, 'keys');
    const entries = vi.spyOn(Object, 'entries');
    expect(p.evaluate('data.t.x', input, UNHURRIED)).toEqual({ k7: 7, k199999: 199999 });
    // No pass over the object: it is never listed.
    expect([...keys.mock.calls, ...entries.mock.calls].filter(([x]) => x === input.o)).toEqual([]);
  }, SLOW);

  it('list a large data object once, not on every evaluation (count, equality, object.keys)', () => {
    const big = bigObject();
    const p = compilePolicy([{ path: 'p.rego', source: 'package t\nn := count(data.big)\nsame := data.big == data.big\nks := count(object.keys(data.big))\n' }], { big });
    const keys = vi.spyOn(Object, 'keys');
    for (let i = 0; i < 3; i++) {
      expect(p.evaluate('data.t.n', {}, UNHURRIED)).toBe(N);
      expect(p.evaluate('data.t.same', {}, UNHURRIED)).toBe(true);
      expect(p.evaluate('data.t.ks', {}, UNHURRIED)).toBe(N);
    }
    expect(keys.mock.calls.filter(([x]) => x === big).length).toBeLessThanOrEqual(1);
  }, SLOW);

  it('answer as before on small and non-string-keyed objects', () => {
    const p = policy(`package t
a := object.filter({"a": 1, "b": 2, "c": 3}, {"a", "c", "z"})
b := object.filter({1: "x", 2: "y"}, [1.0, 2, 2])
c := object.remove({"a": 1, "b": 2}, {"a": 0})
d := {"a": [1], "b": {"c": 2}} == {"b": {"c": 2}, "a": [1]}
e := {"a": 1} == {"a": 1, "b": 2}
f := count({"x": 1, "y": 2})
g := json.remove({"a": {"b": 1, "c": 2}, "d": 3}, ["a/b", "d"])
h := json.filter({"a": {"b": 1, "c": 2}, "d": 3}, ["a/c"])
`);
    expect(p.evaluate('data.t', {})).toEqual({
      a: { a: 1, c: 3 },
      b: { '1': 'x', '2': 'y' },
      c: { b: 2 },
      d: true,
      e: false,
      f: 2,
      g: { a: { c: 2 } },
      h: { a: { c: 2 } },
    });
  });
});
