/** Number built-ins: `abs`, `round`, `ceil`, `floor`, `numbers.range`, `numbers.range_step`. */
import { normalizeInt, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, num, operandErr, typeErr } from './util.js';
import * as N from './numeric.js';
import { work } from '../meter.js';

/** Go's math.Round: half away from zero (JS Math.round rounds -2.5 to -2). */
export function roundHalfAway(x: number): number {
  const t = Math.trunc(x);
  const r = Math.abs(x - t) >= 0.5 ? t + Math.sign(x) : t;
  return r === 0 ? 0 : r;
}

function unary(name: string, f: (x: number) => number): BuiltinDef {
  return def(name, 1, (args) => {
    const v = num(name, args, 0);
    if (typeof v === 'bigint') return v;
    const r = f(v);
    return r === 0 ? 0 : r;
  });
}

/** Integer operand for ranges (bigint allowed, as ranges may start beyond 2^53). */
function intArg(name: string, args: Value[], i: number): bigint {
  const v = args[i]!;
  if (typeof v !== 'number' && typeof v !== 'bigint') throw typeErr(name, i + 1, v, 'integer');
  if (!N.isInt(v)) throw operandErr(name, i + 1, 'must be integer number but got floating-point number');
  return BigInt(v);
}

/** Ranges are materialised as arrays, so bound their size rather than exhaust memory. */
const MAX_RANGE = 1_000_000n;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function range(name: string, a: bigint, b: bigint, step: bigint): Value[] {
  const span = (a > b ? a - b : b - a) / step + 1n;
  if (span > MAX_RANGE) throw builtinErr(name, `range of ${span} elements exceeds the limit of ${MAX_RANGE}`);
  // Charged per element as it is built: one charge of the whole span up front read the clock
  // once, before the build, and a million-element range then ran 150–300 ms past the deadline
  // on a loaded machine.
  const out: Value[] = [];
  const safe = (x: bigint) => x >= -SAFE && x <= SAFE;
  if (safe(a) && safe(b)) {
    // Plain numbers when every element is one (bigint steps are many times slower).
    const [x0, x1, d] = [Number(a), Number(b), Number(step)];
    if (x0 <= x1) {
      for (let x = x0; x <= x1; x += d) {
        work(1);
        out.push(x);
      }
    } else {
      for (let x = x0; x >= x1; x -= d) {
        work(1);
        out.push(x);
      }
    }
    return out;
  }
  const up = a <= b;
  for (let x = a; up ? x <= b : x >= b; x += up ? step : -step) {
    work(1);
    out.push(normalizeInt(x));
  }
  return out;
}

export const NUMBERS: BuiltinDef[] = [
  def('abs', 1, (args) => {
    const v = num('abs', args, 0);
    if (typeof v === 'bigint') return normalizeInt(v < 0n ? -v : v);
    return Math.abs(v);
  }),
  unary('round', roundHalfAway),
  unary('ceil', Math.ceil),
  unary('floor', Math.floor),
  def('numbers.range', 2, (args) =>
    range('numbers.range', intArg('numbers.range', args, 0), intArg('numbers.range', args, 1), 1n),
  ),
  def('numbers.range_step', 3, (args) => {
    const step = intArg('numbers.range_step', args, 2);
    if (step <= 0n) throw builtinErr('numbers.range_step', 'step must be a positive integer');
    return range('numbers.range_step', intArg('numbers.range_step', args, 0), intArg('numbers.range_step', args, 1), step);
  }),
];
