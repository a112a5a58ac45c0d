/** Array built-ins: `array.concat`, `array.slice`, `array.reverse`, `array.flatten`. */
import type { Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { arr, def, num } from './util.js';
import { checkElements, work } from '../meter.js';

/** Slice bounds are clamped, never an error, as OPA does. */
function slice(args: Value[]): Value {
  const a = arr('array.slice', args, 0);
  const clamp = (n: number | bigint): number =>
    typeof n === 'bigint' ? (n < 0n ? 0 : a.length) : Math.min(Math.max(Math.trunc(n), 0), a.length);
  const start = clamp(num('array.slice', args, 1));
  const stop = clamp(num('array.slice', args, 2));
  return start >= stop ? [] : a.slice(start, stop);
}

/** One level only, as OPA: [[1, [2]], 3] → [1, [2], 3]. */
function flatten(a: Value[]): Value[] {
  // Sized first: an array may hold the same large array many times over.
  let n = 0;
  for (const x of a) n += Array.isArray(x) ? x.length : 1;
  checkElements(n, 'array.flatten');
  work(a.length + (n >>> 3));
  const out: Value[] = [];
  for (const x of a) {
    if (Array.isArray(x)) for (const y of x) out.push(y);
    else out.push(x);
  }
  return out;
}

export const ARRAYS: BuiltinDef[] = [
  def('array.concat', 2, (args) => {
    const a = arr('array.concat', args, 0);
    const b = arr('array.concat', args, 1);
    checkElements(a.length + b.length, 'array.concat');
    work((a.length + b.length) >>> 3);
    return b.length === 0 ? a : a.length === 0 ? b : a.concat(b);
  }),
  def('array.slice', 3, slice),
  def('array.reverse', 1, (args) => {
    const a = arr('array.reverse', args, 0);
    work(a.length >>> 3);
    return [...a].reverse();
  }),
  def('array.flatten', 1, (args) => flatten(arr('array.flatten', args, 0))),
];
