/**
 * `units.parse_bytes` ("10KB", "1.5GiB" → bytes, an integer) and `units.parse` ("1500m" →
 * 1.5, "2Ki" → 2048), following OPA's parsing (quotes dropped, no spaces, scientific
 * notation in the amount) and exact on large values. Unlike OPA, errors do not repeat the unit:
 * operands may come from input, and Warden keeps input values out of error messages.
 */
import { normalizeInt, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, str } from './util.js';
import { checkIntDigits } from './numeric.js';
import { work } from '../meter.js';

const K = 1000n;
const KI = 1024n;
const pow = (b: bigint, e: number) => b ** BigInt(e);

const BYTE_UNITS: Record<string, bigint> = {
  '': 1n,
  k: K, kb: K, ki: KI, kib: KI,
  m: pow(K, 2), mb: pow(K, 2), mi: pow(KI, 2), mib: pow(KI, 2),
  g: pow(K, 3), gb: pow(K, 3), gi: pow(KI, 3), gib: pow(KI, 3),
  t: pow(K, 4), tb: pow(K, 4), ti: pow(KI, 4), tib: pow(KI, 4),
  p: pow(K, 5), pb: pow(K, 5), pi: pow(KI, 5), pib: pow(KI, 5),
  e: pow(K, 6), eb: pow(K, 6), ei: pow(KI, 6), eib: pow(KI, 6),
};

/** units.parse: the first letter keeps its case (m is milli, M mega), the rest is lowered. */
const SI_UNITS: Record<string, [bigint, bigint]> = {
  '': [1n, 1n],
  m: [1n, 1000n],
  k: [K, 1n], K: [K, 1n], ki: [KI, 1n], Ki: [KI, 1n],
  M: [pow(K, 2), 1n], mi: [pow(KI, 2), 1n], Mi: [pow(KI, 2), 1n],
  g: [pow(K, 3), 1n], G: [pow(K, 3), 1n], gi: [pow(KI, 3), 1n], Gi: [pow(KI, 3), 1n],
  t: [pow(K, 4), 1n], T: [pow(K, 4), 1n], ti: [pow(KI, 4), 1n], Ti: [pow(KI, 4), 1n],
  p: [pow(K, 5), 1n], P: [pow(K, 5), 1n], pi: [pow(KI, 5), 1n], Pi: [pow(KI, 5), 1n],
  e: [pow(K, 6), 1n], E: [pow(K, 6), 1n], ei: [pow(KI, 6), 1n], Ei: [pow(KI, 6), 1n],
};

const MAX_EXPONENT_DIGITS = 6;

/** Splits "1.5e3Ki" into amount "1.5e3" and unit "Ki" as OPA does (an `e` followed by a digit or sign is an exponent). */
function splitAmount(name: string, s: string): [string, string] {
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    const digitish = (c >= '0' && c <= '9') || c === '.' || c === '+' || c === '-';
    if (digitish) continue;
    if (c === 'e' || c === 'E') {
      const next = s[i + 1];
      if (next === undefined || !((next >= '0' && next <= '9') || next === '+' || next === '-')) return [s.slice(0, i), s.slice(i)];
      if (next === '+' || next === '-') i++;
      const digits = /^\d*/.exec(s.slice(i + 1))![0];
      if (digits.length > MAX_EXPONENT_DIGITS) throw builtinErr(name, 'exponent too large');
      continue;
    }
    return [s.slice(0, i), s.slice(i)];
  }
  return [s, ''];
}

/**
 * A decimal as an exact fraction num / 10^scale. Written with more digits than products may
 * have (checkIntDigits), it is refused as a budget error naming `name`: the BigInt parse and
 * the power of ten are each one super-linear call the work meter could not stop.
 */
function decimal(name: string, text: string): { num: bigint; scale: number } | undefined {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,6}))?$/.exec(text);
  if (!m || (m[2] === '' && !m[3])) return undefined;
  const frac = m[3] ?? '';
  checkIntDigits(name, (m[2] ?? '').length + frac.length);
  const exp = Number(m[4] ?? 0);
  let num = BigInt(m[1] + ((m[2] || '0') + frac));
  let scale = frac.length - exp;
  if (scale < 0) {
    if (-scale > 4096) return undefined;
    num *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { num, scale };
}

function parseBytes(args: Value[]): Value {
  const name = 'units.parse_bytes';
  work(str(name, args, 0).length >>> 4);
  const s = str(name, args, 0).toLowerCase().replace(/"/g, '');
  if (s.includes(' ')) throw builtinErr(name, 'spaces not allowed in resource strings');
  const [amount, unit] = splitAmount(name, s);
  if (amount === '') throw builtinErr(name, 'no byte amount provided');
  const mul = BYTE_UNITS[unit];
  if (mul === undefined) throw builtinErr(name, 'byte unit not recognized');
  const d = decimal(name, amount);
  if (!d) throw builtinErr(name, 'could not parse byte amount to a number');
  // Truncated to whole bytes, as OPA does.
  return normalizeInt((d.num * mul) / 10n ** BigInt(d.scale));
}

function parseUnits(args: Value[]): Value {
  const name = 'units.parse';
  work(str(name, args, 0).length >>> 4);
  const s = str(name, args, 0).replace(/"/g, '');
  if (s.includes(' ')) throw builtinErr(name, 'spaces not allowed in resource strings');
  const [amount, rawUnit] = splitAmount(name, s);
  if (amount === '') throw builtinErr(name, 'no amount provided');
  const unit = rawUnit.length > 1 ? rawUnit[0] + rawUnit.slice(1).toLowerCase() : rawUnit;
  const factor = SI_UNITS[unit];
  if (factor === undefined) throw builtinErr(name, 'unit not recognized');
  const d = decimal(name, amount);
  if (!d) throw builtinErr(name, 'could not parse amount to a number');
  const num = d.num * factor[0];
  const den = 10n ** BigInt(d.scale) * factor[1];
  if (num % den === 0n) return normalizeInt(num / den);
  return Number(num) / Number(den);
}

export const UNITS: BuiltinDef[] = [def('units.parse_bytes', 1, parseBytes), def('units.parse', 1, parseUnits)];
