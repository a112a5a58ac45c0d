/**
 * The decision cache key: equal keys only for inputs whose values at the read paths the engine
 * cannot tell apart; no key for values it cannot write exactly.
 */
import { describe, expect, it } from 'vitest';
import { InputKeyer } from '../../src/policy/input-key.js';

/** An array with a hole at index 1 (written without a sparse literal). */
function sparse(xs: number[]): unknown[] {
  const out: unknown[] = [xs[0]];
  out[2] = xs[1];
  return out;
}

const keyer = (paths: string[][], maxStrings = 1000, onReset = () => {}) => new InputKeyer(paths, maxStrings, onReset);

describe('InputKeyer', () => {
  it('tells apart absent, null, false, 0, "", "null", -0 and 0, 1 and "1", bigint and number', () => {
    const k = keyer([['a']]);
    const values: unknown[] = [null, false, 0, -0, '', 'null', 1, '1', 1n, true, 'true', [], {}, [null], { b: null }];
    const keys = values.map((a) => k.key({ a }));
    keys.push(k.key({}));
    for (const x of keys) expect(x).toBeDefined();
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('reads only the paths: other fields do not change the key', () => {
    const k = keyer([['p', 's'], ['v']]);
    expect(k.key({ p: { s: 'x', other: 1 }, v: 1, t: 2 })).toBe(k.key({ p: { s: 'x', other: 9 }, v: 1, t: 3, extra: [] }));
    expect(k.key({ p: { s: 'x' }, v: 1 })).not.toBe(k.key({ p: { s: 'y' }, v: 1 }));
  });

  it('a non-object on the way is part of the key, apart from a missing key', () => {
    const k = keyer([['a', 'b']]);
    const keys = [{ a: 'str' }, { a: ['b'] }, { a: null }, { a: 5 }, { a: {} }, {}, { a: { b: 1 } }].map((i) => k.key(i));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('strings that look like the key syntax cannot collide', () => {
    const k = keyer([['a'], ['b']]);
    expect(k.key({ a: 'x|vs1', b: 'y' })).not.toBe(k.key({ a: 'x', b: 'vs1|y' }));
    expect(k.key({ a: { 'k v': 1 } })).not.toBe(k.key({ a: { k: 'v 1' } }));
    expect(k.key({ a: ['a,b'] })).not.toBe(k.key({ a: ['a', 'b'] }));
  });

  it('refuses what it cannot write exactly', () => {
    const k = keyer([['a']]);
    for (const a of [Number.NaN, Infinity, undefined, () => 1, Symbol('s'), new Date(0), new Map(), new Set(), sparse([1, 3]), { x: undefined }]) {
      expect(k.key({ a })).toBeUndefined();
    }
    const polluted = Object.create({ inherited: 1 }) as Record<string, unknown>;
    expect(k.key({ a: polluted })).toBeUndefined();
  });

  it('a deeply frozen object keys by identity; anything mutable keys by contents', () => {
    const k = keyer([['t']]);
    const frozen = Object.freeze({ id: 'x', list: Object.freeze(['a']) });
    const sameContents = Object.freeze({ id: 'x', list: Object.freeze(['a']) });
    expect(k.key({ t: frozen })).toBe(k.key({ t: frozen }));
    // Another object with the same contents is a different key: a miss, never a wrong hit.
    expect(k.key({ t: sameContents })).not.toBe(k.key({ t: frozen }));
    // Frozen on top but with a mutable child: keyed by contents, so a change shows.
    const child = ['a'];
    const shallow = Object.freeze({ id: 'x', list: child });
    const before = k.key({ t: shallow });
    child.push('b');
    expect(k.key({ t: shallow })).not.toBe(before);
    const open: Record<string, unknown> = { id: 'x' };
    const k1 = k.key({ t: open });
    open.id = 'y';
    expect(k.key({ t: open })).not.toBe(k1);
  });

  it('when the string table starts over, no key made before still stands for other values', () => {
    // A tiny table: it starts over every few inputs. The owner drops its keys on reset, as the
    // decision cache does; any key still held must mean the values it was made from.
    const held = new Map<string, string>();
    const k = keyer([['a'], ['b'], ['c']], 4, () => held.clear());
    let resets = 0;
    const k2 = keyer([['a'], ['b'], ['c']], 4, () => {
      resets++;
    });
    const words = ['p', 'q', 'r', 's', 't', 'u', 'v'];
    let seed = 1;
    const next = () => (seed = (seed * 48271) % 2147483647) % words.length;
    for (let n = 0; n < 2000; n++) {
      const input = { a: words[next()], b: words[next()], c: words[next()] };
      const truth = JSON.stringify(input);
      const key = k.key(input);
      k2.key(input);
      expect(key).toBeDefined();
      const seen = held.get(key!);
      if (seen !== undefined) expect(seen).toBe(truth);
      held.set(key!, truth);
    }
    expect(resets).toBeGreaterThan(10);
  });

  it('an input needing more strings than the table holds gets no key', () => {
    const k = keyer([['a'], ['b'], ['c']], 2);
    expect(k.key({ a: 'x', b: 'y', c: 'z' })).toBeUndefined();
    expect(k.key({ a: 'x', b: 'x', c: 'x' })).toBeDefined();
  });
});
