/**
 * Leak guard: the exact secret values resolved for a request (an accented one composed and
 * decomposed, NFC and NFD), and their base64 (standard and URL-safe, at every byte alignment
 * inside a longer blob) and URL-encoded forms, are searched in
 * text. In a prompt they refuse the request; in a response they are masked. Values shorter than
 * MIN_SECRET_LENGTH are ignored: they would match ordinary text.
 *
 * The search reads the text the PII detectors read (normalize.ts: zero-width and other format
 * characters dropped, fullwidth and other compatibility forms folded, exotic spaces and dashes
 * made ASCII), and in JSON (tool-call arguments) with its string escapes decoded: what the
 * caller reads back once it renders or parses the text. A hit masks the original span, so the
 * invisible characters or escapes inside it go with it. Pure-ASCII text without a backslash is
 * searched as it is (folding it would change nothing).
 */
import { composeFolded, fold, toOriginalSpan, type FoldedText } from './normalize.js';
import type { Finding } from './types.js';
import { MIN_SECRET_LENGTH } from '../pipeline/types.js';

const NON_ASCII = /[^\u0000-\u007f]/; // eslint-disable-line no-control-regex
export const LEAK_ENTITY = 'SECRET_VALUE';

function base64Cores(value: Buffer): string[] {
  const out: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), value]);
    let b64 = padded.toString('base64').replace(/=+$/, '');
    // Characters touched by the zero prefix or by the unknown bytes after the value vary with
    // context: keep only the stable middle.
    const skip = shift === 0 ? 0 : Math.ceil((shift * 8) / 6);
    const total = padded.length * 8;
    const stableEnd = Math.floor(total / 6);
    b64 = b64.slice(skip, stableEnd);
    if (b64.length >= 8) out.push(b64);
  }
  return out;
}

export class LeakGuard {
  private readonly needles: string[];
  /** Length of the longest needle: how far back a value that is still arriving can begin. */
  private readonly longest: number;

  constructor(secrets: readonly string[]) {
    const set = new Set<string>();
    for (const s of secrets) {
      if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) continue;
      set.add(s);
      const enc = encodeURIComponent(s);
      if (enc !== s) set.add(enc);
      const formEnc = enc.replace(/%20/g, '+');
      if (formEnc !== enc) set.add(formEnc);
      // The value's own encoding, whole (padding included), wins over the stable cores below.
      const whole = Buffer.from(s, 'utf8');
      set.add(whole.toString('base64'));
      set.add(whole.toString('base64url'));
      for (const core of base64Cores(whole)) {
        set.add(core);
        set.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
      }
    }
    // An accented value may be written composed (NFC: `é`) or decomposed (NFD: `e` and a
    // combining accent): the two look the same and a caller's NFC or NFD turns one into the
    // other. The fold reads each code point on its own and keeps a letter's accent, so each form
    // is a needle. Only values with a character that decomposes get a second one.
    for (const s of secrets) {
      if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH || !NON_ASCII.test(s)) continue;
      for (const form of [s.normalize('NFC'), s.normalize('NFD')]) if (form !== s) set.add(form);
    }
    // Searched as the text is (folded): a needle is its folded form. Folding can shorten a value
    // (invisible characters in it): one that ends up too short would match ordinary text.
    const folded = new Set<string>();
    for (const needle of set) {
      const f = fold(needle).text;
      if (f.length >= MIN_SECRET_LENGTH) folded.add(f);
    }
    // Longest first, so a value wins over its own shorter encodings at the same place.
    this.needles = [...folded].sort((a, b) => b.length - a.length);
    this.longest = this.needles.length > 0 ? this.needles[0]!.length : 0;
  }

  /**
   * The guard for `secrets`: requests with no secret to guard (most) share one inactive guard,
   * and requests granted the same secrets share theirs (a guard never changes once built; its
   * encodings cost microseconds per request otherwise). The cache holds values the secret
   * resolver's cache holds too, and forgets the oldest past GUARD_CACHE_SIZE.
   */
  static for(secrets: readonly string[]): LeakGuard {
    if (secrets.length === 0) return NO_SECRETS;
    // Length-prefixed: no list of secrets can spell another's key ("A\0B" alone vs A and B).
    let key = '';
    for (const v of secrets) key += `${v.length}:${v}`;
    let guard = guards.get(key);
    if (guard === undefined) {
      if (guards.size >= GUARD_CACHE_SIZE) guards.delete(guards.keys().next().value as string);
      guards.set(key, (guard = new LeakGuard(secrets)));
    }
    return guard;
  }

  get active(): boolean {
    return this.needles.length > 0;
  }

  /**
   * Appends a finding per occurrence, in original offsets. `json`: the text is JSON (tool-call
   * arguments), searched with its string escapes decoded (`\u0043ANARY` is `CANARY` to the
   * caller's JSON parser). `folded`: the text's fold as the scanner made it, if it scanned it.
   */
  find(text: string, out: Finding[], json = false, folded?: FoldedText): number {
    if (this.needles.length === 0) return 0;
    const view = folded !== undefined && !(json && text.indexOf('\\') >= 0) ? folded : searchedText(text, json);
    const t = view.text;
    let n = 0;
    for (const needle of this.needles) {
      let i = t.indexOf(needle);
      while (i >= 0) {
        const [start, end] = toOriginalSpan(view, i, i + needle.length);
        out.push({ entity: LEAK_ENTITY, start, end, score: 1 });
        n++;
        i = t.indexOf(needle, i + needle.length);
      }
    }
    return n;
  }

  /**
   * Start of the longest tail of `text` that could be the beginning of a guarded value (in the
   * text the guard searches); text.length when there is none. The streaming hold-back keeps that
   * tail until the next piece shows whether the value goes on, so a value is never released in
   * part, whatever it holds (spaces, line breaks). Only the last `longest - 1` searched units can
   * begin a value, so the cost is bounded by the secrets' lengths: the window read is widened
   * only while invisible characters make its searched text shorter than that.
   */
  heldFrom(text: string, json = false): number {
    if (this.needles.length === 0 || text.length === 0) return text.length;
    // An escape cut at the end ("\u00") decodes to nothing yet: it is held, and what comes
    // before it is judged.
    const end = json ? partialEscapeStart(text) : text.length;
    // A few more units than needed: a window that begins inside a \uXXXX escape or a surrogate
    // pair reads its first units wrong, and those must not be part of any candidate tail. In JSON
    // it never begins inside a run of backslashes (see backslashRunStart): `text` begins where
    // the stream's emitted text ended, after a whole escape, so its start is a sound place too.
    const need = this.longest - 1 + 8;
    let width = Math.min(end, 2 * need);
    for (;;) {
      const from = json ? backslashRunStart(text, end - width) : end - width;
      const view = searchedText(text.slice(from, end), json);
      if (view.text.length >= need || from === 0) {
        const at = this.prefixStart(view.text);
        if (at === view.text.length) return end;
        return from + (view.starts ? view.starts[at]! : at);
      }
      width = Math.min(end, 2 * (end - from));
    }
  }

  /** Start of the longest tail of `t` that is a proper beginning of a needle (t.length: none). */
  private prefixStart(t: string): number {
    let best = t.length;
    for (const needle of this.needles) {
      const first = needle[0]!;
      let i = t.indexOf(first, Math.max(0, t.length - needle.length + 1));
      while (i >= 0 && i < best) {
        if (continuesInto(t, i, needle)) {
          best = i;
          break;
        }
        i = t.indexOf(first, i + 1);
      }
    }
    return best;
  }
}

/** `t` from `i` to its end is the beginning of `needle`. */
function continuesInto(t: string, i: number, needle: string): boolean {
  for (let k = i; k < t.length; k++) if (t.charCodeAt(k) !== needle.charCodeAt(k - i)) return false;
  return true;
}

/** The text the guard searches: folded, and in JSON with its string escapes decoded first. */
function searchedText(text: string, json: boolean): FoldedText {
  if (!json || text.indexOf('\\') < 0) return fold(text);
  const decoded = decodeJsonEscapes(text);
  return composeFolded(decoded, fold(decoded.text));
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * JSON string escapes decoded wherever they are (a streamed piece of JSON is not parseable on its
 * own; outside strings valid JSON has no backslash), with each decoded unit's original span. An
 * invalid or cut escape stays as it is.
 */
export function decodeJsonEscapes(text: string): FoldedText {
  const n = text.length;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const parts: string[] = [];
  let j = 0;
  let run = 0; // start of the pending run copied as it is
  const copyRun = (to: number): void => {
    if (run >= to) return;
    parts.push(text.slice(run, to));
    for (let k = run; k < to; k++, j++) {
      starts[j] = k;
      ends[j] = k + 1;
    }
  };
  for (let i = 0; i < n; ) {
    if (text.charCodeAt(i) !== 92 || i + 1 >= n) {
      i++;
      continue;
    }
    const e = text[i + 1]!;
    let decoded = SIMPLE_ESCAPES[e];
    let width = 2;
    if (decoded === undefined && e === 'u' && HEX4.test(text.slice(i + 2, i + 6))) {
      decoded = String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
      width = 6;
    }
    if (decoded === undefined) {
      i += 2; // not an escape: both units stay (the second is not a backslash to pair again)
      continue;
    }
    copyRun(i);
    parts.push(decoded);
    starts[j] = i;
    ends[j] = i + width;
    j++;
    i += width;
    run = i;
  }
  copyRun(n);
  return { text: parts.join(''), starts: starts.subarray(0, j), ends: ends.subarray(0, j) };
}

/**
 * `at` moved back to the start of the run of backslashes it falls in (`at` itself when the unit
 * before it is not a backslash). JSON escapes decoded from inside such a run pair its backslashes
 * the wrong way for all of its length (`\\\\\u006F`, two escaped backslashes and an `o`, read from
 * its second unit is `\\`, `\\` and the letters `u006F`), which no fixed slack covers. A unit
 * after a non-backslash begins an escape or a character (the middle of a `\uXXXX` is hex, never a
 * backslash), so from the run's start they pair as JSON.parse pairs them.
 */
export function backslashRunStart(text: string, at: number): number {
  while (at > 0 && text.charCodeAt(at - 1) === 92) at--;
  return at;
}

/** Start of an escape cut at the end of `text` (a backslash the escape's rest has not followed), else text.length. */
function partialEscapeStart(text: string): number {
  const n = text.length;
  for (let i = n - 1; i >= 0 && i >= n - 6; i--) {
    if (text.charCodeAt(i) !== 92) continue;
    let k = i;
    while (k > 0 && text.charCodeAt(k - 1) === 92) k--;
    // In a run of backslashes, pairs from its start are escaped backslashes: the one at i begins
    // an escape when an even number of them come before it.
    if ((i - k) % 2 !== 0) continue;
    const width = text.charCodeAt(i + 1) === 117 ? 6 : 2; // \uXXXX or \x
    return i + width > n ? i : n;
  }
  return n;
}

const NO_SECRETS = new LeakGuard([]);
const GUARD_CACHE_SIZE = 64;
const guards = new Map<string, LeakGuard>();
