/**
 * `units.parse_bytes` ("10KB", "1.5GiB" → bytes, an integer) and `units.parse` ("1500m" →
 * 1.5, "2Ki" → 2048), exact on large values as OPA's big.Float arithmetic.
 */
import { normalizeInt, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, str } from './util.js';

const K = 1000n;
const KI = 1024n;
const pow = (b: bigint, e: number) => b ** BigInt(e);

const BYTE_UNITS: Record<string, bigint> = {
  '': 1n,
  b: 1n,
  k: K, kb: K, ki: KI, kib: KI,
  m: pow(K, 2), mb: pow(K, 2), mi: pow(KI, 2), mib: pow(KI, 2),
  g: pow(K, 3), gb: pow(K, 3), gi: pow(KI, 3), gib: pow(KI, 3),
  t: pow(K, 4), tb: pow(K, 4), ti: pow(KI, 4), tib: pow(KI, 4),
  p: pow(K, 5), pb: pow(K, 5), pi: pow(KI, 5), pib: pow(KI, 5),
  e: pow(K, 6), eb: pow(K, 6), ei: pow(KI, 6), eib: pow(KI, 6),
};

/** A decimal as an exact fraction num / 10^scale. */
function decimal(text: string): { num: bigint; scale: number } | undefined {
  const m = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/.exec(text);
  if (!m || (m[1] === '' && !m[2])) return undefined;
  const frac = m[2] ?? '';
  const exp = Number(m[3] ?? 0);
  let num = BigInt((m[1] || '0') + frac);
  let scale = frac.length - exp;
  if (scale < 0) {
    num *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { num, scale };
}

/** Exact value as an integer when it is one, else a double. */
function toValue(num: bigint, scale: number, truncate: boolean): Value {
  const den = 10n ** BigInt(scale);
  if (truncate || num % den === 0n) return normalizeInt(num / den);
  return Number(num) / Number(den);
}

function parseBytes(args: Value[]): Value {
  const name = 'units.parse_bytes';
  const s = str(name, args, 0).replace(/^["\s]+|["\s]+$/g, '').toLowerCase();
  if (s.includes(' ')) throw builtinErr(name, 'spaces not allowed in resource strings');
  const m = /^([\d.]*)(.*)$/.exec(s)!;
  if (m[1] === '') throw builtinErr(name, 'no byte amount provided');
  const unit = BYTE_UNITS[m[2]!];
  if (unit === undefined) throw builtinErr(name, 'byte unit not recognized');
  const d = decimal(m[1]!);
  if (!d) throw builtinErr(name, 'could not parse byte amount to a number');
  return toValue(d.num * unit, d.scale, true);
}

function parseUnits(args: Value[]): Value {
  const name = 'units.parse';
  const s = str(name, args, 0).replace(/^["\s]+|["\s]+$/g, '');
  if (s.includes(' ')) throw builtinErr(name, 'spaces not allowed in resource strings');
  const m = /^([\d.]*(?:[eE][+-]?\d+)?)(.*)$/.exec(s)!;
  if (m[1] === '') throw builtinErr(name, 'no amount provided');
  const unit = m[2]!;
  // "m" (milli) and "M" (mega) differ only by case; every other unit ignores case.
  let mul: bigint;
  let div = 1n;
  if (unit === 'm') {
    mul = 1n;
    div = 1000n;
  } else if (unit === 'M') mul = pow(K, 2);
  else {
    const u = unit.toLowerCase();
    const table: Record<string, bigint> = {
      '': 1n, k: K, ki: KI, mi: pow(KI, 2), g: pow(K, 3), gi: pow(KI, 3), t: pow(K, 4), ti: pow(KI, 4),
      p: pow(K, 5), pi: pow(KI, 5), e: pow(K, 6), ei: pow(KI, 6),
    };
    const x = table[u];
    if (x === undefined) throw builtinErr(name, 'unit not recognized');
    mul = x;
  }
  const d = decimal(m[1]!);
  if (!d) throw builtinErr(name, 'could not parse amount to a number');
  const num = d.num * mul;
  const den = 10n ** BigInt(d.scale) * div;
  if (num % den === 0n) return normalizeInt(num / den);
  return Number(num) / Number(den);
}

export const UNITS: BuiltinDef[] = [def('units.parse_bytes', 1, parseBytes), def('units.parse', 1, parseUnits)];

