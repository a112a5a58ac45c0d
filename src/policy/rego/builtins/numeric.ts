/**
 * Exact arithmetic over Rego numbers: integers stay exact (bigint beyond ±2^53, as OPA's
 * big-number arithmetic), non-integers use IEEE doubles. Shared by operators and aggregates so
 * that `sum` agrees with `+`.
 */
import { normalizeInt } from '../value.js';
import { budgetExceeded, work } from '../meter.js';

export type Num = number | bigint;

export function isInt(n: Num): boolean {
  return typeof n === 'bigint' || Number.isInteger(n);
}

function big(n: Num): bigint {
  return typeof n === 'bigint' ? n : BigInt(n);
}

/** -0 is not a Rego number; every result passes through here. */
function clean(n: number): number {
  return n === 0 ? 0 : n;
}

export function add(a: Num, b: Num): Num {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a + b;
    if (Number.isSafeInteger(r) || !Number.isInteger(a) || !Number.isInteger(b)) return clean(r);
    return normalizeInt(BigInt(a) + BigInt(b));
  }
  if (isInt(a) && isInt(b)) return normalizeInt(big(a) + big(b));
  return clean(Number(a) + Number(b));
}

export function sub(a: Num, b: Num): Num {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a - b;
    if (Number.isSafeInteger(r) || !Number.isInteger(a) || !Number.isInteger(b)) return clean(r);
    return normalizeInt(BigInt(a) - BigInt(b));
  }
  if (isInt(a) && isInt(b)) return normalizeInt(big(a) - big(b));
  return clean(Number(a) - Number(b));
}

/**
 * Integer products may not exceed 2^65536 in magnitude (MAX_INT_BITS): repeated multiplication
 * (`product(numbers.range(1, 100000))`) otherwise grows without bound, and each step costs more
 * than the last. OPA has no such cap; no policy needs numbers with more than 19,728 digits.
 */
export const MAX_INT_BITS = 65536;
const MAX_INT = 1n << BigInt(MAX_INT_BITS);
/** Digits of 2^MAX_INT_BITS: integer text longer than this is beyond the cap. */
export const MAX_INT_DIGITS = 19_729;

/**
 * Integer text for BigInt, refused beyond MAX_INT_DIGITS digits (`name` is the built-in): V8
 * parses decimal text into a BigInt in one uninterruptible, super-linear call (a 16M-digit
 * string takes seconds), which the work meter could not stop at the deadline.
 */
export function checkIntDigits(name: string, digits: number): void {
  if (digits > MAX_INT_DIGITS) throw budgetExceeded(`${name}: integer of more than ${MAX_INT_DIGITS} digits (beyond 2^${MAX_INT_BITS})`);
}

function bigProduct(a: bigint, b: bigint): Num {
  const r = a * b;
  if (r > MAX_INT || r < -MAX_INT) throw budgetExceeded(`integer product beyond 2^${MAX_INT_BITS}`);
  return normalizeInt(r);
}

export function mul(a: Num, b: Num): Num {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a * b;
    if (Number.isSafeInteger(r) || !Number.isInteger(a) || !Number.isInteger(b)) return clean(r);
    return bigProduct(BigInt(a), BigInt(b));
  }
  if (isInt(a) && isInt(b)) return bigProduct(big(a), big(b));
  return clean(Number(a) * Number(b));
}

export function isZero(n: Num): boolean {
  return typeof n === 'bigint' ? n === 0n : n === 0;
}

/** Caller checks for a zero divisor. Integer division is exact only when it divides evenly. */
export function div(a: Num, b: Num): Num {
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    if (isInt(a) && isInt(b)) {
      const x = big(a);
      const y = big(b);
      if (x % y === 0n) return normalizeInt(x / y);
    }
    return clean(Number(a) / Number(b));
  }
  return clean(a / b);
}

/** Caller checks both are integers and the divisor is non-zero. Sign follows the dividend. */
export function rem(a: Num, b: Num): Num {
  if (typeof a === 'number' && typeof b === 'number' && Number.isSafeInteger(a) && Number.isSafeInteger(b)) {
    return clean(a % b);
  }
  return normalizeInt(big(a) % big(b));
}

export function neg(a: Num): Num {
  return typeof a === 'bigint' ? normalizeInt(-a) : clean(-a);
}

export function isFiniteNum(n: Num): boolean {
  return typeof n === 'bigint' || Number.isFinite(n);
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * Parses decimal number text exactly: integral values beyond ±2^53 become bigint (so `1e30`
 * and JSON's `123456789012345678901` keep every digit), everything else a double. Returns
 * undefined for text that is not a decimal number. Integers beyond 2^MAX_INT_BITS are refused as
 * a budget error naming `name` (checkIntDigits); the scans are linear and charged.
 */
export function parseNumberText(text: string, name: string): Num | undefined {
  work(text.length >>> 4);
  const m = DECIMAL.exec(text);
  if (!m) return undefined;
  const [, sign, intDigits = '', fracDigits = '', expText] = m;
  if (intDigits === '' && fracDigits === '') return undefined;
  const asFloat = Number(text);
  if (Number.isSafeInteger(asFloat)) return asFloat === 0 ? 0 : asFloat;
  // Beyond the doubles (1e400) an integral value is still exact, as the literal 1e400 is; what
  // is not integral and overflows stays Infinity, which callers reject.
  const exp = expText ? Number(expText) : 0;
  // Integral iff every fractional digit (after shifting by the exponent) is zero.
  const digits = (intDigits + fracDigits).replace(/^0+/, '');
  const pointShift = exp - fracDigits.length;
  if (digits === '') return 0;
  if (pointShift >= 0) {
    if (pointShift > 4096) return asFloat; // absurd exponents stay floating point (Infinity handled above)
    checkIntDigits(name, digits.length + pointShift);
    return normalizeInt(BigInt(sign + digits + '0'.repeat(pointShift)));
  }
  const dropped = digits.slice(Math.max(0, digits.length + pointShift));
  if (/^0*$/.test(dropped) && digits.length + pointShift > 0) {
    checkIntDigits(name, digits.length + pointShift);
    return normalizeInt(BigInt(sign + digits.slice(0, digits.length + pointShift)));
  }
  return asFloat;
}
