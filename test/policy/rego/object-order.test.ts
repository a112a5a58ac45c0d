/**
 * Objects are iterated in key order, as OPA iterates them (its objects enumerate sorted keys:
 * `ast.object.Iter`), not in the order the keys were written or arrived in JSON. The engine
 * enumerated insertion order (and JavaScript's, which puts integer-like keys first), so an
 * array built from an object — `[k | some k, _ in input.headers]`, `[p | walk(x, [p, _])]` —
 * came out in another order than OPA's, and so did whatever a policy took from it (`[0]`,
 * `concat`, a message). Found while running OPA's cases beside the shared compliance set.
 */
import { describe, expect, it } from 'vitest';
import { policy } from './helpers.js';

const input = { o: { b: 1, '10': 2, '2': 3, a: 4, 'é': 5, '\uffff': 6, '😀': 7 } };
// Code-point order, as Go compares strings.
const sorted = ['10', '2', 'a', 'b', 'é', '\uffff', '😀'];

describe('object iteration order', () => {
  it('enumerates keys in sorted order for refs, some … in, and comprehensions over input', () => {
    const p = policy(`
package g
import rego.v1
refs := [k | input.o[k]]
somes := [k | some k, _ in input.o]
vals := [v | v := input.o[_]]
first := [k | some k, _ in input.o][0]
joined := concat(",", [k | some k, _ in input.o])
`);
    const r = p.evaluate('data.g', input) as Record<string, unknown>;
    expect(r.refs).toEqual(sorted);
    expect(r.somes).toEqual(sorted);
    expect(r.vals).toEqual([2, 3, 4, 1, 5, 6, 7]);
    expect(r.first).toBe('10');
    expect(r.joined).toBe(sorted.join(','));
  });

  it('enumerates object literals, rule values and non-string keys in sorted order', () => {
    const p = policy(`
package g
import rego.v1
obj := {"y": 1, "x": 2}
lit := [k | some k, _ in {"b": 1, "a": 2}]
rule := [k | some k, _ in obj]
mixed := [k | some k, _ in {"s": 1, 2: 2, [1]: 3, 1: 4}]
`);
    const r = p.evaluate('data.g', {}) as Record<string, unknown>;
    expect(r.lit).toEqual(['a', 'b']);
    expect(r.rule).toEqual(['x', 'y']);
    expect(r.mixed).toEqual([1, 2, 's', [1]]);
  });

  it('walks objects in sorted key order', () => {
    const p = policy('package g\nimport rego.v1\npaths := [p | walk(input.o, [p, _])]\n');
    expect(p.evaluate('data.g.paths', input)).toEqual([[], ...sorted.map((k) => [k])]);
  });

  it('keeps the order of a large object across evaluations (sorted once), and of each new input', () => {
    // Keys in reverse order, more than the few an object must have for its order to be kept.
    const keys = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const big = Object.fromEntries([...keys].reverse().map((k, i) => [k, i]));
    const p = policy('package g\nimport rego.v1\nnames := [k | some k, _ in input.o]\nmixed := [k | some k, _ in {"z": 1, 2: 2, 1: 3, "a": 4, "b": 5, "c": 6, "d": 7, "e": 8, "f": 9}]\n');
    for (let round = 0; round < 3; round++) {
      expect(p.evaluate('data.g.names', { o: big })).toEqual(keys);
      expect(p.evaluate('data.g.mixed', {})).toEqual([1, 2, 'a', 'b', 'c', 'd', 'e', 'f', 'z']);
    }
    // Another object with the same keys in another order: its own order, the same result.
    const other = Object.fromEntries(keys.map((k, i) => [k, i]));
    expect(p.evaluate('data.g.names', { o: other })).toEqual(keys);
  });
});
