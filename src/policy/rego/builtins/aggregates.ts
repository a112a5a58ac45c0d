/** Aggregates over collections: `count`, `sum`, `product`, `max`, `min`, `sort`. */
import { RegoSet, compare, isObject, objectSize, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, collection, def, elemErr, typeErr } from './util.js';
import * as N from './numeric.js';
import { work } from '../meter.js';

/** Code points, not UTF-16 units, as OPA counts runes. */
export function runeCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** `compare` charging a unit per comparison: sorting a million elements takes many of them. */
function meteredCompare(a: Value, b: Value): number {
  work(1);
  return compare(a, b);
}

function count(args: Value[]): Value {
  const v = args[0]!;
  if (Array.isArray(v)) return v.length;
  if (typeof v === 'string') return runeCount(v);
  if (v instanceof RegoSet) return v.size;
  if (isObject(v)) return objectSize(v);
  throw typeErr('count', 1, v, 'array', 'object', 'set', 'string');
}

function fold(name: string, start: N.Num, op: (a: N.Num, b: N.Num) => N.Num): BuiltinDef {
  return def(name, 1, (args) => {
    const items = collection(name, args, 0);
    let acc = start;
    for (const x of items) {
      if (typeof x !== 'number' && typeof x !== 'bigint') throw elemErr(name, 1, args[0]!, x, 'number');
      // Big integers cost in proportion to their size (bounded by numeric.ts MAX_INT_BITS).
      work(typeof x === 'bigint' || typeof acc === 'bigint' ? 64 : 1);
      acc = op(acc, x);
    }
    if (!N.isFiniteNum(acc)) throw builtinErr(name, 'arithmetic result is not a finite number');
    return acc;
  });
}

function extreme(name: string, sign: 1 | -1): BuiltinDef {
  return def(name, 1, (args) => {
    const items = collection(name, args, 0);
    if (items.length === 0) return undefined;
    let best = items[0]!;
    for (let i = 1; i < items.length; i++) if (compare(items[i]!, best) * sign > 0) best = items[i]!;
    return best;
  });
}

export const AGGREGATES: BuiltinDef[] = [
  def('count', 1, count),
  fold('sum', 0, N.add),
  fold('product', 1, N.mul),
  extreme('max', 1),
  extreme('min', -1),
  def('sort', 1, (args) => {
    const v = args[0]!;
    if (v instanceof RegoSet) return v.sorted();
    if (Array.isArray(v)) return [...v].sort(meteredCompare);
    throw typeErr('sort', 1, v, 'set', 'array');
  }),
];
