/**
 * `sprintf` with Go's fmt semantics, as OPA passes arguments to fmt.Sprintf: integers that fit
 * int64 are Go `int`, larger integers `*big.Int`, other numbers (and doubles past ±2^53, which
 * are not exact integers) `float64`, strings `string`, and
 * every other value the string of its Rego term (so `%v` of a set prints `{1, 2}` and `%t` of a
 * boolean prints `%!t(string=true)`, exactly as OPA does). Mistakes print Go's `%!verb(type=value)`
 * markers instead of failing.
 */
import type { Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { arr, def, str } from './util.js';
import { goQuote, termString } from './terms.js';
import { MAX_RESULT_STRING, checkStringSize } from '../meter.js';

type GoArg =
  | { t: 'int'; v: bigint } // Go int (int64)
  | { t: 'big'; v: bigint } // *big.Int
  | { t: 'float'; v: number } // float64
  | { t: 'string'; v: string };

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** 2^53: the largest magnitude at which every integer is a double (README Numbers: "past ±2^53"). */
const TWO_POW_53 = 2 ** 53;

function toGoArg(v: Value): GoArg {
  if (typeof v === 'bigint') return v >= INT64_MIN && v <= INT64_MAX ? { t: 'int', v } : { t: 'big', v };
  if (typeof v === 'number') {
    // Integers past ±2^53 are bigints here (exact); a double beyond that is inexact, from a
    // fraction or exponent (input's 1.5e300, 1e21) or float arithmetic: Go's float64, as OPA
    // formats a number written that way. As an integer it printed digits it does not have
    // (JSON 12345678901234567890123 came out as 12345678901234567741440, 1.5e300 as 301 digits).
    // ±2^53 itself is an integer too (as OPA reads an input's 9007199254740992): only past it.
    if (Number.isInteger(v) && Math.abs(v) <= TWO_POW_53) return { t: 'int', v: BigInt(v) };
    return { t: 'float', v };
  }
  if (typeof v === 'string') return { t: 'string', v };
  return { t: 'string', v: termString(v) };
}

const GO_TYPE = { int: 'int', big: '*big.Int', float: 'float64', string: 'string' } as const;

interface Spec {
  minus: boolean;
  plus: boolean;
  space: boolean;
  zero: boolean;
  sharp: boolean;
  width: number; // -1 = none
  prec: number; // -1 = none
}

function runeLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Pads to the width: spaces (or zeros) on the left, or spaces on the right with `-`. */
function pad(s: string, f: Spec, zeroOk: boolean): string {
  if (f.width < 0) return s;
  const n = runeLen(s);
  if (n >= f.width) return s;
  const fill = f.width - n;
  if (f.minus) return s + ' '.repeat(fill);
  if (f.zero && zeroOk) {
    // Zeros go after the sign (and 0x prefix is not special-cased, as for Go's %d/%f).
    const sign = s[0] === '-' || s[0] === '+' || s[0] === ' ' ? s[0] : '';
    return sign + '0'.repeat(fill) + s.slice(sign.length);
  }
  return ' '.repeat(fill) + s;
}

function signed(neg: boolean, body: string, f: Spec): string {
  return (neg ? '-' : f.plus ? '+' : f.space ? ' ' : '') + body;
}

function fmtInteger(v: bigint, verb: string, f: Spec): string | null {
  const neg = v < 0n;
  const mag = neg ? -v : v;
  let digits: string;
  let prefix = '';
  switch (verb) {
    case 'd':
    case 'v':
    case 's': // only reached for *big.Int, which formats %s as decimal
      digits = mag.toString(10);
      break;
    case 'b':
      digits = mag.toString(2);
      if (f.sharp) prefix = '0b';
      break;
    case 'o':
      digits = mag.toString(8);
      if (f.sharp) prefix = '0';
      break;
    case 'O':
      digits = mag.toString(8);
      prefix = '0o';
      break;
    case 'x':
      digits = mag.toString(16);
      if (f.sharp) prefix = '0x';
      break;
    case 'X':
      digits = mag.toString(16).toUpperCase();
      if (f.sharp) prefix = '0X';
      break;
    case 'c':
      return pad(mag <= 0x10ffffn && !neg ? String.fromCodePoint(Number(mag)) : '\ufffd', f, false);
    case 'q':
      return pad("'" + (mag <= 0x10ffffn && !neg ? String.fromCodePoint(Number(mag)) : '\ufffd') + "'", f, false);
    case 'U':
      return pad('U+' + mag.toString(16).toUpperCase().padStart(4, '0'), f, false);
    default:
      return null;
  }
  if (f.prec >= 0) {
    digits = f.prec === 0 && mag === 0n ? '' : digits.padStart(f.prec, '0');
    return pad(signed(neg, prefix + digits, f), { ...f, zero: false }, false);
  }
  return pad(signed(neg, prefix + digits, f), f, !f.minus);
}

/** Go exponent notation: at least two exponent digits (`1e+06`). */
function goExp(s: string): string {
  return s.replace(/e([+-])(\d)$/, 'e$10$2');
}

/** Go %g with the given precision (-1 = shortest); trailing zeros dropped unless `#`. */
function fmtG(x: number, prec: number, sharp: boolean): string {
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  // toExponential gives the significant digits Go would pick: shortest round-trip without a
  // precision, else rounded to `prec` digits.
  const e = prec < 0 ? x.toExponential() : x.toExponential(Math.max(prec, 1) - 1);
  const [m, ex] = e.split('e') as [string, string];
  const digits = m.replace('-', '').replace('.', '');
  const exp = Number(ex);
  // strconv: %e when the exponent is < -4 or >= the precision (6 for shortest).
  const eprec = prec < 0 ? 6 : Math.max(prec, 1);
  const neg = x < 0 ? '-' : '';
  if (exp < -4 || exp >= eprec) {
    let mant = digits[0]! + (digits.length > 1 ? '.' + digits.slice(1) : '');
    if (!sharp && mant.includes('.')) mant = mant.replace(/\.?0+$/, '');
    return neg + goExp(mant + 'e' + (exp < 0 ? '-' : '+') + Math.abs(exp));
  }
  let body: string;
  if (exp >= 0) {
    const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    const frac = digits.slice(exp + 1);
    body = frac ? intPart + '.' + frac : intPart;
  } else {
    body = '0.' + '0'.repeat(-exp - 1) + digits;
  }
  if (!sharp && body.includes('.')) body = body.replace(/\.?0+$/, '');
  return neg + body;
}

/**
 * Fixed notation as Go writes it: no switch to exponent form at 1e21, and an exact tie rounds
 * to even (Go: 0.125 → "0.12", 2.5 → "2"), where JS's toFixed rounds half up.
 */
function toFixedGo(x: number, prec: number): string {
  const a = Math.abs(x);
  if (a < 1e21) {
    const rounded = x.toFixed(prec);
    if (prec >= 100) return rounded;
    // 100 fraction digits show a double's exact expansion far enough to see a true tie.
    const [intPart, frac = ''] = a.toFixed(100).split('.') as [string, string?];
    const tail = frac.slice(prec);
    if (!/^50*$/.test(tail)) return rounded;
    const kept = intPart + (prec > 0 ? '.' + frac.slice(0, prec) : '');
    const lastDigit = Number(kept[kept.length - 1]);
    if (lastDigit % 2 === 1) return rounded; // odd: rounding up (away from zero) reaches even
    return (x < 0 || Object.is(x, -0) ? '-' : '') + kept;
  }
  const int = BigInt(a).toString();
  return (x < 0 ? '-' : '') + int + (prec > 0 ? '.' + '0'.repeat(prec) : '');
}

function fmtFloat(x: number, verb: string, f: Spec): string | null {
  if (!Number.isFinite(x)) {
    const s = Number.isNaN(x) ? 'NaN' : x > 0 ? (f.plus ? '+Inf' : 'Inf') : '-Inf';
    return pad(s, f, false);
  }
  let s: string;
  switch (verb) {
    case 'v':
    case 'g':
    case 'G':
      s = fmtG(x, f.prec, f.sharp);
      if (verb === 'G') s = s.toUpperCase();
      break;
    case 'f':
    case 'F':
      s = toFixedGo(x, f.prec < 0 ? 6 : f.prec);
      break;
    case 'e':
    case 'E':
      s = goExp(x.toExponential(f.prec < 0 ? 6 : f.prec));
      if (verb === 'E') s = s.toUpperCase();
      break;
    default:
      return null;
  }
  if (s[0] !== '-') s = (f.plus ? '+' : f.space ? ' ' : '') + s;
  return pad(s, f, !f.minus);
}

function fmtString(s: string, verb: string, f: Spec): string | null {
  const cut = (t: string) => (f.prec >= 0 ? Array.from(t).slice(0, f.prec).join('') : t);
  switch (verb) {
    case 'v':
    case 's':
      return pad(cut(s), f, true);
    case 'q':
      return pad(f.sharp && !/[`\p{Cc}]/u.test(s) ? '`' + cut(s) + '`' : goQuote(cut(s)), f, true);
    case 'x':
    case 'X': {
      const bytes = Buffer.from(cut(s), 'utf8');
      let hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(f.space ? ' ' : '');
      if (verb === 'X') hex = hex.toUpperCase();
      return pad(hex, f, true);
    }
    default:
      return null;
  }
}

/** Go's `%v` of an argument, for `%!verb(type=value)` markers. */
function plainV(a: GoArg): string {
  if (a.t === 'float') return fmtG(a.v, -1, false);
  return a.t === 'string' ? a.v : a.v.toString();
}

function formatOne(a: GoArg, verb: string, f: Spec): string {
  let out: string | null;
  switch (a.t) {
    case 'int':
      out = verb === 's' ? null : fmtInteger(a.v, verb, f);
      break;
    case 'big':
      out = fmtInteger(a.v, verb, f);
      // big.Int's own Formatter names itself without the pointer star.
      if (out === null) return `%!${verb}(big.Int=${a.v.toString()})`;
      break;
    case 'float':
      out = fmtFloat(a.v, verb, f);
      break;
    case 'string':
      out = fmtString(a.v, verb, f);
      break;
  }
  return out ?? `%!${verb}(${GO_TYPE[a.t]}=${plainV(a)})`;
}

export function goSprintf(format: string, values: readonly Value[]): string {
  // Each argument is printed at most once, so bounding their text bounds the result.
  let total = format.length;
  const args = values.map((v) => {
    const a = toGoArg(v);
    if (a.t === 'string' && (total += a.v.length) > MAX_RESULT_STRING) checkStringSize(total, 'sprintf');
    return a;
  });
  let out = '';
  let argi = 0;
  let i = 0;
  const n = format.length;
  while (i < n) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    if (i >= n) {
      out += '%!(NOVERB)';
      break;
    }
    const f: Spec = { minus: false, plus: false, space: false, zero: false, sharp: false, width: -1, prec: -1 };
    flags: for (; i < n; i++) {
      switch (format[i]) {
        case '-':
          f.minus = true;
          f.zero = false;
          break;
        case '+':
          f.plus = true;
          break;
        case ' ':
          f.space = true;
          break;
        case '0':
          f.zero = !f.minus;
          break;
        case '#':
          f.sharp = true;
          break;
        default:
          break flags;
      }
    }
    const readNum = (): number => {
      let v = -1;
      while (i < n && format[i]! >= '0' && format[i]! <= '9') {
        v = (v < 0 ? 0 : v * 10) + (format.charCodeAt(i) - 48);
        if (v > 1e6) v = 1e6; // Go rejects absurd widths; cap rather than allocate gigabytes
        i++;
      }
      return v;
    };
    const starArg = (): number => {
      const a = args[argi++];
      if (a && a.t === 'int' && a.v >= -1000000n && a.v <= 1000000n) return Number(a.v);
      out += '%!(BADWIDTH)';
      return -1;
    };
    if (format[i] === '*') {
      i++;
      f.width = starArg();
      if (f.width < 0 && f.width !== -1) {
        f.minus = true;
        f.width = -f.width;
      }
    } else f.width = readNum();
    if (format[i] === '.') {
      i++;
      if (format[i] === '*') {
        i++;
        f.prec = starArg();
      } else f.prec = Math.max(0, readNum());
    }
    if (i >= n) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === '%') {
      out += '%';
      continue;
    }
    const a = args[argi];
    if (a === undefined) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    argi++;
    out += formatOne(a, verb, f);
  }
  if (argi < args.length) {
    out += '%!(EXTRA ' + args.slice(argi).map((a) => `${GO_TYPE[a.t]}=${plainV(a)}`).join(', ') + ')';
  }
  return out;
}

export const SPRINTF: BuiltinDef[] = [
  def('sprintf', 2, (args) => goSprintf(str('sprintf', args, 0), arr('sprintf', args, 1))),
];
