/**
 * Time built-ins. Instants are nanoseconds since the Unix epoch, as OPA: exact bigints where
 * they exceed 2^53 (any date after 1970-04-15), normalised to numbers where they fit.
 * `time.now_ns` is the query's fixed clock (ctx.nowNs). Time zones are IANA names resolved
 * through Intl; "" and "UTC" are UTC, "Local" the process zone.
 */
import { normalizeInt, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, int, str, typeErr } from './util.js';

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q;
}

function checkRange(name: string, ns: bigint): Value {
  if (ns > INT64_MAX || ns < INT64_MIN) throw builtinErr(name, 'time outside of valid range');
  return normalizeInt(ns);
}

// ---------------------------------------------------------------------------------------------
// Civil dates (proleptic Gregorian, exact for any year)
// ---------------------------------------------------------------------------------------------

/** Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

const daysIn = (y: number, m: number): number =>
  m === 2 ? ((y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;

/** Nanoseconds for wall-clock fields at a fixed UTC offset (seconds east of UTC). */
function nsFromFields(y: number, mo: number, d: number, h: number, mi: number, s: number, frac: bigint, offsetS: number): bigint {
  const secs = BigInt(daysFromCivil(y, mo, d)) * 86400n + BigInt(h * 3600 + mi * 60 + s - offsetS);
  return secs * NS_PER_S + frac;
}

// ---------------------------------------------------------------------------------------------
// Zones
// ---------------------------------------------------------------------------------------------

const zoneFormatters = new Map<string, Intl.DateTimeFormat>();

function zoneFormatter(tz: string): Intl.DateTimeFormat {
  let f = zoneFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    // Bounded: zone names come from policies or input.
    if (zoneFormatters.size > 500) zoneFormatters.clear();
    zoneFormatters.set(tz, f);
  }
  return f;
}

/** UTC offset in seconds of `tz` at the instant `ms`. */
function zoneOffset(name: string, tz: string, ms: number): number {
  if (tz === '' || tz === 'UTC') return 0;
  let f: Intl.DateTimeFormat;
  try {
    f = zoneFormatter(tz === 'Local' ? Intl.DateTimeFormat().resolvedOptions().timeZone : tz);
  } catch {
    throw builtinErr(name, "unknown time zone (want an IANA name such as Europe/Paris, UTC or Local)");
  }
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(ms))) parts[p.type] = p.value;
  let y = Number(parts.year);
  if (parts.era === 'BC' || parts.era === 'B') y = 1 - y;
  const hour = Number(parts.hour) % 24;
  const localSecs =
    daysFromCivil(y, Number(parts.month), Number(parts.day)) * 86400 + hour * 3600 + Number(parts.minute) * 60 + Number(parts.second);
  return localSecs - Math.floor(ms / 1000);
}

interface Broken {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanos: number;
  weekday: number; // 0 = Sunday
  offset: number;
}

function breakDown(name: string, ns: bigint, tz: string): Broken {
  const ms = Number(floorDiv(ns, NS_PER_MS));
  const offset = zoneOffset(name, tz, ms);
  const local = ns + BigInt(offset) * NS_PER_S;
  const secs = floorDiv(local, NS_PER_S);
  const nanos = Number(local - secs * NS_PER_S);
  const days = Number(floorDiv(secs, 86400n));
  const sod = Number(secs - BigInt(days) * 86400n);
  const [year, month, day] = civilFromDays(days);
  return {
    year,
    month,
    day,
    hour: Math.floor(sod / 3600),
    minute: Math.floor((sod % 3600) / 60),
    second: sod % 60,
    nanos,
    weekday: (((days + 4) % 7) + 7) % 7,
    offset,
  };
}

const TZ_TIME = 'either number (ns) or [number (ns), string (tz)]';

/** `x` is ns, or `[ns]`, `[ns, tz]`, `[ns, tz, layout]` (the layout is for time.format). */
function tzTime(name: string, args: Value[], i: number): { ns: bigint; tz: string; layout?: string } {
  const v = args[i]!;
  if (typeof v === 'number' || typeof v === 'bigint') return { ns: toNs(name, v), tz: '' };
  if (Array.isArray(v) && v.length > 0) {
    const [n, tz = '', layout] = v;
    if (typeof n !== 'number' && typeof n !== 'bigint') throw typeErr(name, 1, n!, 'number');
    if (typeof tz !== 'string') throw typeErr(name, 1, tz, 'string');
    if (layout !== undefined && typeof layout !== 'string') throw typeErr(name, 1, layout, 'string');
    return layout === undefined ? { ns: toNs(name, n), tz } : { ns: toNs(name, n), tz, layout };
  }
  throw typeErr(name, 1, v, TZ_TIME);
}

/** Nanoseconds must be an integer within int64, as OPA's conversion to Go time requires. */
function toNs(name: string, n: number | bigint): bigint {
  if (typeof n === 'number' && !Number.isInteger(n)) throw builtinErr(name, 'timestamp too big');
  const b = BigInt(n);
  if (b > INT64_MAX || b < INT64_MIN) throw builtinErr(name, 'timestamp too big');
  return b;
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

// ---------------------------------------------------------------------------------------------
// RFC 3339
// ---------------------------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

export function parseRFC3339(name: string, s: string): bigint {
  const m = RFC3339.exec(s);
  if (!m) throw builtinErr(name, 'value is not an RFC 3339 date-time (2006-01-02T15:04:05Z07:00)');
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59) {
    throw builtinErr(name, 'RFC 3339 date-time field out of range');
  }
  const frac = BigInt((m[7] ?? '').slice(0, 9).padEnd(9, '0'));
  let offset = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw builtinErr(name, 'RFC 3339 time zone offset out of range');
    offset = (m[9] === '-' ? -1 : 1) * (oh * 3600 + om * 60);
  }
  return nsFromFields(y, mo, d, h, mi, sec, frac, offset);
}

const pad = (n: number, w: number): string => (n < 0 ? '-' + String(-n).padStart(w, '0') : String(n).padStart(w, '0'));

function formatOffset(offset: number, zChar: boolean, colon: boolean): string {
  if (offset === 0 && zChar) return 'Z';
  const sign = offset < 0 ? '-' : '+';
  const a = Math.abs(offset);
  return sign + pad(Math.floor(a / 3600), 2) + (colon ? ':' : '') + pad(Math.floor((a % 3600) / 60), 2);
}

/** Go's RFC3339Nano: fractional seconds without trailing zeros. */
export function formatRFC3339Nano(b: Broken): string {
  const frac = b.nanos ? '.' + String(b.nanos).padStart(9, '0').replace(/0+$/, '') : '';
  return (
    `${pad(b.year, 4)}-${pad(b.month, 2)}-${pad(b.day, 2)}T${pad(b.hour, 2)}:${pad(b.minute, 2)}:${pad(b.second, 2)}` +
    frac +
    formatOffset(b.offset, true, true)
  );
}

// ---------------------------------------------------------------------------------------------
// Go layouts (time.parse_ns, time.format)
// ---------------------------------------------------------------------------------------------

type Token = { lit: string } | { std: string };

/** Splits a Go layout into literal text and reference-time elements, longest match first. */
const STD_TOKENS = [
  'January', 'Monday', '2006', '-07:00:00', 'Z07:00:00', '-070000', 'Z070000', '-0700', 'Z0700', '-07:00', 'Z07:00', '-07', 'Z07',
  'Jan', 'Mon', 'MST', '002', '__2', '_2', '01', '02', '03', '04', '05', '06', '15', 'PM', 'pm',
  '1', '2', '3', '4', '5',
];

function tokenize(layout: string): Token[] {
  const out: Token[] = [];
  let lit = '';
  let i = 0;
  outer: while (i < layout.length) {
    // Fractional seconds: .000 / ,000 (fixed) or .999 (trimmed), only right after a seconds field.
    const fr = /^[.,](0+|9+)(?![0-9])/.exec(layout.slice(i));
    if (fr && /(05|5)$/.test(layout.slice(0, i))) {
      if (lit) out.push({ lit });
      lit = '';
      out.push({ std: fr[0] });
      i += fr[0].length;
      continue;
    }
    for (const t of STD_TOKENS) {
      if (layout.startsWith(t, i)) {
        // "Jan" is not a month inside "January"-like words, as Go checks the next letter for Mon/Jan.
        if ((t === 'Jan' || t === 'Mon') && /[a-z]/.test(layout[i + 3] ?? '')) continue;
        if (lit) out.push({ lit });
        lit = '';
        out.push({ std: t });
        i += t.length;
        continue outer;
      }
    }
    lit += layout[i++];
  }
  if (lit) out.push({ lit });
  return out;
}

function layoutErr(name: string, what: string): never {
  throw builtinErr(name, `cannot parse value as layout element ${what}`);
}

/** Layouts and times are short; refusing long ones keeps the layout scanner's work bounded. */
const MAX_LAYOUT_LENGTH = 1024;

export function parseLayout(name: string, layout: string, value: string): bigint {
  if (layout.length > MAX_LAYOUT_LENGTH || value.length > MAX_LAYOUT_LENGTH) throw builtinErr(name, 'layout or value too long');
  let y = 1;
  let mo = 1;
  let d = 1;
  let h = 0;
  let mi = 0;
  let s = 0;
  let frac = 0n;
  let pm: boolean | undefined;
  let offset = 0;
  let i = 0;
  const digits = (min: number, max: number, what: string): number => {
    const m = new RegExp(`^\\d{${min},${max}}`).exec(value.slice(i));
    if (!m) layoutErr(name, what);
    i += m[0].length;
    return Number(m[0]);
  };
  const word = (list: string[], len: number | undefined, what: string): number => {
    for (let k = 0; k < list.length; k++) {
      const w = len ? list[k]!.slice(0, len) : list[k]!;
      if (value.slice(i, i + w.length).toLowerCase() === w.toLowerCase()) {
        i += w.length;
        return k;
      }
    }
    return layoutErr(name, what);
  };
  const tokens = tokenize(layout);
  for (let ti = 0; ti < tokens.length; ti++) {
    const tok = tokens[ti]!;
    if ('lit' in tok) {
      if (!value.startsWith(tok.lit, i)) throw builtinErr(name, 'value does not match the layout');
      i += tok.lit.length;
      continue;
    }
    const t = tok.std;
    switch (t) {
      case '2006':
        y = digits(4, 4, t);
        break;
      case '06':
        y = digits(2, 2, t);
        y += y >= 69 ? 1900 : 2000;
        break;
      case 'January':
        mo = word(MONTHS, undefined, t) + 1;
        break;
      case 'Jan':
        mo = word(MONTHS, 3, t) + 1;
        break;
      case '01':
        mo = digits(2, 2, t);
        break;
      case '1':
        mo = digits(1, 2, t);
        break;
      case 'Monday':
        word(WEEKDAYS, undefined, t);
        break;
      case 'Mon':
        word(WEEKDAYS, 3, t);
        break;
      case '02':
        d = digits(2, 2, t);
        break;
      case '_2':
        if (value[i] === ' ') i++;
        d = digits(1, 2, t);
        break;
      case '2':
        d = digits(1, 2, t);
        break;
      case '002':
      case '__2':
        digits(t === '002' ? 3 : 1, 3, t); // day of year: accepted, not used without more work
        break;
      case '15':
        h = digits(1, 2, t);
        break;
      case '03':
        h = digits(2, 2, t);
        break;
      case '3':
        h = digits(1, 2, t);
        break;
      case '04':
        mi = digits(2, 2, t);
        break;
      case '4':
        mi = digits(1, 2, t);
        break;
      case '05':
        s = digits(2, 2, t);
        break;
      case '5':
        s = digits(1, 2, t);
        break;
      case 'PM':
      case 'pm': {
        const w = value.slice(i, i + 2).toUpperCase();
        if (w !== 'AM' && w !== 'PM') layoutErr(name, t);
        pm = w === 'PM';
        i += 2;
        break;
      }
      case 'MST': {
        const m = /^(UTC|GMT|[A-Z]{3,4})/.exec(value.slice(i));
        if (!m) layoutErr(name, t);
        i += m[0].length;
        break;
      }
      default: {
        if (t[0] === '.' || t[0] === ',') {
          // Go accepts any number of fractional digits after the seconds for both .000 and .999.
          const m = /^[.,](\d+)/.exec(value.slice(i));
          if (m) {
            frac = BigInt(m[1]!.slice(0, 9).padEnd(9, '0'));
            i += m[0].length;
          } else if (t[1] === '0') layoutErr(name, t);
          break;
        }
        // Zone offsets
        if ((t[0] === 'Z' || t === 'Z07') && (value[i] === 'Z' || value[i] === 'z')) {
          i++;
          offset = 0;
          break;
        }
        const m = /^([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?/.exec(value.slice(i));
        if (!m) layoutErr(name, t);
        i += m[0].length;
        offset = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0));
      }
    }
    // Go also accepts fractional seconds after a seconds field when the layout has none.
    const next = tokens[ti + 1];
    const nextIsFrac = next !== undefined && 'std' in next && (next.std[0] === '.' || next.std[0] === ',');
    if ((t === '05' || t === '5') && !nextIsFrac) {
      const m = /^[.,](\d+)/.exec(value.slice(i));
      if (m) {
        frac = BigInt(m[1]!.slice(0, 9).padEnd(9, '0'));
        i += m[0].length;
      }
    }
  }
  if (i !== value.length) throw builtinErr(name, 'extra text after the layout');
  if (pm !== undefined) {
    if (h < 1 || h > 12) throw builtinErr(name, 'hour out of range');
    if (pm && h < 12) h += 12;
    if (!pm && h === 12) h = 0;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59) {
    throw builtinErr(name, 'date-time field out of range');
  }
  return nsFromFields(y, mo, d, h, mi, s, frac, offset);
}

export function formatLayout(b: Broken, layout: string): string {
  let out = '';
  for (const tok of tokenize(layout)) {
    if ('lit' in tok) {
      out += tok.lit;
      continue;
    }
    const t = tok.std;
    const h12 = b.hour % 12 === 0 ? 12 : b.hour % 12;
    switch (t) {
      case '2006': out += pad(b.year, 4); break;
      case '06': out += pad(((b.year % 100) + 100) % 100, 2); break;
      case 'January': out += MONTHS[b.month - 1]; break;
      case 'Jan': out += MONTHS[b.month - 1]!.slice(0, 3); break;
      case '01': out += pad(b.month, 2); break;
      case '1': out += String(b.month); break;
      case 'Monday': out += WEEKDAYS[b.weekday]; break;
      case 'Mon': out += WEEKDAYS[b.weekday]!.slice(0, 3); break;
      case '02': out += pad(b.day, 2); break;
      case '_2': out += String(b.day).padStart(2, ' '); break;
      case '2': out += String(b.day); break;
      case '002':
      case '__2': {
        const yday = daysFromCivil(b.year, b.month, b.day) - daysFromCivil(b.year, 1, 1) + 1;
        out += t === '002' ? pad(yday, 3) : String(yday).padStart(3, ' ');
        break;
      }
      case '15': out += pad(b.hour, 2); break;
      case '03': out += pad(h12, 2); break;
      case '3': out += String(h12); break;
      case '04': out += pad(b.minute, 2); break;
      case '4': out += String(b.minute); break;
      case '05': out += pad(b.second, 2); break;
      case '5': out += String(b.second); break;
      case 'PM': out += b.hour >= 12 ? 'PM' : 'AM'; break;
      case 'pm': out += b.hour >= 12 ? 'pm' : 'am'; break;
      case 'MST': out += b.offset === 0 ? 'UTC' : formatOffset(b.offset, false, false); break;
      default:
        if (t[0] === '.' || t[0] === ',') {
          const n = t.length - 1;
          const f = String(b.nanos).padStart(9, '0').slice(0, n);
          if (t[1] === '0') out += t[0] + f;
          else {
            const trimmed = f.replace(/0+$/, '');
            if (trimmed) out += t[0] + trimmed;
          }
        } else if (t.startsWith('Z') && b.offset === 0) out += 'Z';
        else if (t === '-07' || t === 'Z07') out += formatOffset(b.offset, false, false).slice(0, 3);
        else {
          const colon = t.includes(':');
          out += formatOffset(b.offset, false, colon);
          if (t.endsWith('07:00:00') || t.endsWith('070000')) out += (colon ? ':' : '') + pad(Math.abs(b.offset) % 60, 2);
        }
    }
  }
  return out;
}

/**
 * The Go layout constants OPA's time.format/parse_ns accept by name. Only these: a name OPA
 * does not know is a literal layout there, and both engines must decide alike.
 */
const NAMED_LAYOUTS: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  UnixDate: 'Mon Jan _2 15:04:05 MST 2006',
  RubyDate: 'Mon Jan 02 15:04:05 -0700 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC850: 'Monday, 02-Jan-06 15:04:05 MST',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
};

// ---------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  'µs': 1000n,
  'μs': 1000n,
  ms: 1_000_000n,
  s: NS_PER_S,
  m: 60n * NS_PER_S,
  h: 3600n * NS_PER_S,
};

/** Go's time.ParseDuration, exactly (decimal fractions, int64 range). */
export function parseDuration(name: string, s: string): bigint {
  const bad = () => builtinErr(name, 'time: invalid duration');
  let i = 0;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    i++;
  }
  if (s.slice(i) === '0') return 0n;
  if (i >= s.length) throw bad();
  let total = 0n;
  const re = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (i < s.length) {
    const m = re.exec(s.slice(i));
    if (!m || (m[1] === '' && (m[2] === undefined || m[2] === ''))) throw bad();
    const unit = UNIT_NS[m[3]!]!;
    const whole = BigInt(m[1] || '0') * unit;
    let frac = 0n;
    if (m[2]) {
      const scale = 10n ** BigInt(m[2].length);
      frac = (BigInt(m[2]) * unit) / scale;
    }
    total += whole + frac;
    if (total > INT64_MAX) throw builtinErr(name, 'time: invalid duration (overflow)');
    i += m[0].length;
  }
  return neg ? -total : total;
}

// ---------------------------------------------------------------------------------------------
// Built-ins
// ---------------------------------------------------------------------------------------------

/** The instant whose wall clock in `tz` reads the given local seconds (DST-aware, as Go's time.Date). */
function fromWallClock(name: string, localSecs: bigint, nanos: bigint, tz: string): bigint {
  // Guess with the offset at the naive instant, then correct once for a DST change in between.
  let offset = BigInt(zoneOffset(name, tz, Number(localSecs) * 1000));
  offset = BigInt(zoneOffset(name, tz, Number(localSecs - offset) * 1000));
  return (localSecs - offset) * NS_PER_S + nanos;
}

function addDate(args: Value[]): Value {
  const name = 'time.add_date';
  const { ns, tz } = tzTime(name, args, 0);
  const years = int(name, args, 1);
  const months = int(name, args, 2);
  const days = int(name, args, 3);
  const b = breakDown(name, ns, tz);
  // Go's AddDate normalises overflow (Oct 31 + 1 month = Dec 1), as carrying months and days does.
  let y = b.year + years;
  let mo = b.month + months;
  y += Math.floor((mo - 1) / 12);
  mo = ((((mo - 1) % 12) + 12) % 12) + 1;
  const dayNumber = daysFromCivil(y, mo, 1) + (b.day - 1) + days;
  const localSecs = BigInt(dayNumber) * 86400n + BigInt(b.hour * 3600 + b.minute * 60 + b.second);
  return checkRange(name, fromWallClock(name, localSecs, BigInt(b.nanos), tz));
}

function diff(args: Value[]): Value {
  const name = 'time.diff';
  const a = tzTime(name, args, 0);
  const c = tzTime(name, args, 1);
  // Both in the first argument's zone; ordered so the difference is non-negative.
  let [t1, t2] = [breakDown(name, a.ns, a.tz), breakDown(name, c.ns, a.tz)];
  if (a.ns > c.ns) [t1, t2] = [t2, t1];
  let year = t2.year - t1.year;
  let month = t2.month - t1.month;
  let day = t2.day - t1.day;
  let hour = t2.hour - t1.hour;
  let min = t2.minute - t1.minute;
  let sec = t2.second - t1.second;
  if (sec < 0) {
    sec += 60;
    min--;
  }
  if (min < 0) {
    min += 60;
    hour--;
  }
  if (hour < 0) {
    hour += 24;
    day--;
  }
  if (day < 0) {
    day += daysIn(t1.year, t1.month);
    month--;
  }
  if (month < 0) {
    month += 12;
    year--;
  }
  return [year, month, day, hour, min, sec];
}

export const TIME: BuiltinDef[] = [
  def('time.now_ns', 0, (_args, ctx) => normalizeInt(ctx.nowNs), true),
  def('time.parse_rfc3339_ns', 1, (a) =>
    checkRange('time.parse_rfc3339_ns', parseRFC3339('time.parse_rfc3339_ns', str('time.parse_rfc3339_ns', a, 0))),
  ),
  def('time.parse_ns', 2, (a) => {
    const layout = str('time.parse_ns', a, 0);
    return checkRange('time.parse_ns', parseLayout('time.parse_ns', NAMED_LAYOUTS[layout] ?? layout, str('time.parse_ns', a, 1)));
  }),
  def('time.parse_duration_ns', 1, (a) =>
    normalizeInt(parseDuration('time.parse_duration_ns', str('time.parse_duration_ns', a, 0))),
  ),
  def('time.date', 1, (a) => {
    const { ns, tz } = tzTime('time.date', a, 0);
    const b = breakDown('time.date', ns, tz);
    return [b.year, b.month, b.day];
  }),
  def('time.clock', 1, (a) => {
    const { ns, tz } = tzTime('time.clock', a, 0);
    const b = breakDown('time.clock', ns, tz);
    return [b.hour, b.minute, b.second];
  }),
  def('time.weekday', 1, (a) => {
    const { ns, tz } = tzTime('time.weekday', a, 0);
    return WEEKDAYS[breakDown('time.weekday', ns, tz).weekday]!;
  }),
  def('time.format', 1, (a) => {
    const { ns, tz, layout } = tzTime('time.format', a, 0);
    const b = breakDown('time.format', ns, tz);
    if (layout !== undefined && layout.length > MAX_LAYOUT_LENGTH) throw builtinErr('time.format', 'layout too long');
    return layout === undefined ? formatRFC3339Nano(b) : formatLayout(b, NAMED_LAYOUTS[layout] ?? layout);
  }),
  def('time.add_date', 4, addDate),
  def('time.diff', 2, diff),
];

