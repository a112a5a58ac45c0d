/**
 * Leak guard: the exact secret values resolved for a request (an accented one composed and
 * decomposed, NFC and NFD), and their base64 (standard and URL-safe) and base32 (at every byte
 * alignment inside a longer blob), hex, URL-encoded, HTML-escaped and ROT13 forms, are searched
 * in text, and in a reading of it with characters written one by one in an encoding decoded
 * (references, percent-escapes, prefixed hex bytes, decimal codes: encoded-chars.ts). In a
 * prompt they refuse the request; in a response they are masked. Values shorter than
 * MIN_SECRET_LENGTH are ignored: they would match ordinary text.
 *
 * The search reads the text the PII detectors read (normalize.ts: zero-width and other format
 * characters dropped, fullwidth and other compatibility forms folded, exotic spaces and dashes
 * made ASCII), and in JSON (tool-call arguments) with its string escapes decoded: what the
 * caller reads back once it renders or parses the text. A hit masks the original span, so the
 * invisible characters or escapes inside it go with it. Pure-ASCII text without a backslash is
 * searched as it is (folding it would change nothing).
 *
 * In an answer (`loose`), a value is also found as a model may repeat it: in another case
 * (`zq7plm2xw9` for `Zq7pLm2Xw9`) and with separators added, removed or changed between its
 * characters (`Z q 7 p L m 2 X w 9`, `Zq7p-Lm2X-w9`, `zq7p.lm2x.w9`); its hex likewise, with one
 * separator between digits (`5A:71:37…`). Its skeleton (the value's
 * folded characters other than separators, lower-cased) is matched with up to LOOSE_GAP
 * separators between any two of its characters. Only a skeleton of LOOSE_MIN_LENGTH characters
 * or more is matched so: a shorter one would match ordinary words run together across a space;
 * and one of at most LOOSE_MAX_LENGTH (a longer value is matched exactly).
 * The prompt check stays exact (a caller's text refused for looking like a secret would be a
 * false refusal; see session.ts).
 */
import { LRUCache } from 'lru-cache';
import { ENCODED_SLACK, encodedCharsReading, partialEncodedStart } from './encoded-chars.js';
import { composeFolded, fold, toOriginalSpan, type FoldedText } from './normalize.js';
import type { Finding, StreamSecretHold } from './types.js';
import { MIN_SECRET_LENGTH } from '../pipeline/types.js';

/** Fewest characters a value's skeleton (see above) needs to be matched loosely in an answer. */
export const LOOSE_MIN_LENGTH = 8;
/**
 * Most characters a skeleton may have to be matched loosely: a longer value (a PEM key, a long
 * token) is matched exactly only. A stream holds back as much as a loose match can span
 * (about four times its skeleton), read on every piece, so this bounds that window.
 */
export const LOOSE_MAX_LENGTH = 256;
/** Most separators matched between two characters of a skeleton (`Z - q`: three). */
export const LOOSE_GAP = 3;
/** The same between two digits of a value's hex (`de:ad`, `dead beef`): one. */
const HEX_GAP = 1;
const NON_ASCII = /[^\u0000-\u007f]/; // eslint-disable-line no-control-regex
/** What fold() may rewrite (its NEEDS_FOLD): a value without any is searched as it is. */
const FOLDABLE = /[^\t\n\r\u0020-\u007e]/u;
export const LEAK_ENTITY = 'SECRET_VALUE';
/**
 * A stream's hold-back for the guard is a multiple of this many units (see heldFrom): its length
 * follows the longest value's, and rounded so it tells that length only to within a few bytes.
 * Small, since a guarded stream's first words wait for the window to fill.
 */
const HOLD_STEP = 16;

/**
 * Whether the guard recognises `value` in every form it is searched in: its fold (what a reader
 * sees: zero-width and other invisible characters dropped), composed and decomposed, is at least
 * MIN_SECRET_LENGTH units long. `Zq7\u200bVw` is 6 units but 5 visible characters: the guard
 * ignores it (5 would match ordinary text), so a template must not place it. Printable ASCII (the
 * common case) is decided by its length, with no allocation.
 */
export function guardable(value: string): boolean {
  if (value.length < MIN_SECRET_LENGTH) return false;
  if (!FOLDABLE.test(value)) return true;
  for (const form of [value, value.normalize('NFC'), value.normalize('NFD')]) if (fold(form).text.length < MIN_SECRET_LENGTH) return false;
  return true;
}

/**
 * The parts of `value`'s encoding (`bits` per character, in groups of `groupBytes` bytes) that
 * stay the same wherever the value sits inside a longer encoded blob: at each byte offset into a
 * group, the characters wholly made of the value's bits. Characters touched by the bytes before
 * it (a zero prefix stands in for them) or after it vary with context: left out. Cores shorter
 * than 8 characters are left out too (they would match ordinary text).
 */
function encodingCores(value: Buffer, groupBytes: number, bits: number, encode: (b: Buffer) => string): string[] {
  const out: string[] = [];
  for (let shift = 0; shift < groupBytes; shift++) {
    const padded = shift === 0 ? value : Buffer.concat([Buffer.alloc(shift), value]);
    const skip = Math.ceil((shift * 8) / bits);
    const stableEnd = Math.floor((padded.length * 8) / bits);
    const core = encode(padded).replace(/=+$/, '').slice(skip, stableEnd);
    if (core.length >= 8) out.push(core);
  }
  return out;
}

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (upper case, padded with '=' to a multiple of 8 characters). Node has none built in. */
export function base32(bytes: Buffer): string {
  let out = '';
  let acc = 0;
  let n = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xfff;
    n += 8;
    while (n >= 5) {
      n -= 5;
      out += BASE32_ALPHABET[(acc >> n) & 31];
    }
  }
  if (n > 0) out += BASE32_ALPHABET[(acc << (5 - n)) & 31];
  return out + '='.repeat((8 - (out.length % 8)) % 8);
}

/**
 * The encoded forms of a value the guard searches exactly: base64 (standard and URL-safe), hex
 * (lower and upper case) and base32, each whole and (base64, base32) at every byte alignment
 * inside a longer blob; hex needs no alignment (a byte is always two digits). What a template
 * author or a model asked to "encode the key" writes; a decoder upstream or in the app turns
 * each back into the value.
 */
function encodedForms(value: string): string[] {
  const whole = Buffer.from(value, 'utf8');
  // The value's own encoding, whole (padding included), wins over the stable cores below.
  const out = [whole.toString('base64'), whole.toString('base64url')];
  for (const core of encodingCores(whole, 3, 6, (b) => b.toString('base64'))) out.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  const hex = whole.toString('hex');
  out.push(hex, hex.toUpperCase());
  const b32 = base32(whole);
  const b32Forms = [b32, b32.replace(/=+$/, ''), ...encodingCores(whole, 5, 5, base32)];
  // Lower case too (Python's b32encode(...).lower(), TOTP seeds, onion addresses): a decoder
  // that takes either case reads it as the value.
  for (const f of b32Forms) out.push(f, f.toLowerCase());
  return out;
}

/**
 * `value` in ROT13: each ASCII letter moved 13 places, in its case. Named with base64 and hex by
 * every list of encodings models are asked to write to get past an output filter (Amazon Bedrock
 * Guardrails' encoding attacks; the Agent Threat Rules' decode-and-answer rules), and one a model
 * writes letter for letter. One more needle, and one more skeleton in an answer (another case,
 * separators): the span a stream holds stays the value's.
 */
function rot13(value: string): string {
  return value.replace(/[A-Za-z]/g, (c) => {
    const base = c <= 'Z' ? 65 : 97;
    return String.fromCharCode(base + ((c.charCodeAt(0) - base + 13) % 26));
  });
}

/**
 * `value` reversed, by code point: a model asked to "write the key backwards" (a way past an
 * output filter as common as ROT13 in the same lists) writes it so, and a reader or the app's
 * one-line decoder turns it back. One more needle and skeleton, the value's length.
 */
function reversed(value: string): string {
  return [...value].reverse().join('');
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * The value as escapers write it, where that differs from the value (a value of letters and digits
 * has none): URL-encoded (encodeURIComponent, a form's `+` for a space, and RFC 3986's strict form
 * that also encodes `!'()*`, as Python's quote does) and HTML-escaped (`&amp;`: a model writing
 * HTML, or an app rendering the answer as HTML, writes `Tr0ub&3` so; `'` as `&#39;` or `&#x27;`).
 */
function escapedForms(value: string): string[] {
  const out: string[] = [];
  const enc = encodeURIComponent(value);
  if (enc !== value) {
    const strict = enc.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    // Each with its escapes' hex digits in lower case too (`%2f`: RFC 3986 reads them alike,
    // and some encoders write them so).
    for (const f of [enc, enc.replace(/%20/g, '+'), strict]) out.push(f, f.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()));
  }
  const html = value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
  if (html !== value) out.push(html, html.replace(/&#39;/g, '&#x27;'));
  return out.filter((f) => f !== value);
}

/**
 * What may stand between two characters of a value repeated in an answer: ASCII whitespace and
 * punctuation a model spells a value out with (the fold made exotic spaces and dashes ASCII and
 * dropped zero-width characters already). Letters, digits and other symbols are never separators.
 */
const SEPARATORS = ' \t\n\r\f\v-_.,:;/\\|\'"`*+~';
const IS_SEPARATOR = new Uint8Array(128);
for (let i = 0; i < SEPARATORS.length; i++) IS_SEPARATOR[SEPARATORS.charCodeAt(i)] = 1;

function isSeparator(c: number): boolean {
  return c < 128 && IS_SEPARATOR[c] === 1;
}

/** One UTF-16 unit lower-cased (a unit whose lower case is not one unit stays as it is). */
function lowerUnit(c: number): number {
  if (c < 128) return c >= 65 && c <= 90 ? c + 32 : c;
  const l = String.fromCharCode(c).toLowerCase();
  return l.length === 1 ? l.charCodeAt(0) : c;
}

/** A value's skeleton, matched case-insensitively with separators between its characters. */
interface Skeleton {
  /** The characters, lower-cased (see lowerUnit), separators left out. */
  readonly chars: string;
  /** The units that begin it: its first character in lower and upper case. */
  readonly first: number;
  readonly firstUpper: number;
  /** Index of the character searched for first in a long text (the rarest-looking one) and its two cases. */
  readonly anchor: number;
  readonly anchorLower: string;
  readonly anchorUpper: string;
  /** Most separators between two characters: LOOSE_GAP, or the value's own longest run if longer. */
  readonly gap: number;
  /** Longest text a match can span. */
  readonly span: number;
}

/** Letters from most to least frequent in English text: a later one is a better anchor. */
const LETTER_FREQUENCY = 'etaoinsrhldcumfpgwybvkxjqz';

function anchorRank(c: number): number {
  const i = LETTER_FREQUENCY.indexOf(String.fromCharCode(c));
  return i >= 0 ? i : c >= 48 && c <= 57 ? 30 : 40;
}

function skeletonOf(folded: string, minGap = LOOSE_GAP): Skeleton | undefined {
  let chars = '';
  let gap = minGap;
  let run = 0;
  for (let i = 0; i < folded.length; i++) {
    const c = folded.charCodeAt(i);
    if (isSeparator(c)) {
      if (chars.length > 0 && ++run > gap) gap = run;
      continue;
    }
    run = 0;
    chars += String.fromCharCode(lowerUnit(c));
  }
  if (chars.length < LOOSE_MIN_LENGTH || chars.length > LOOSE_MAX_LENGTH) return undefined;
  let anchor = 0;
  for (let k = 1; k < chars.length; k++) if (anchorRank(chars.charCodeAt(k)) > anchorRank(chars.charCodeAt(anchor))) anchor = k;
  const a = chars[anchor]!;
  const up = a.toUpperCase();
  const f = chars.charCodeAt(0);
  const F = chars[0]!.toUpperCase();
  return {
    chars,
    first: f,
    firstUpper: F.length === 1 && lowerUnit(F.charCodeAt(0)) === f ? F.charCodeAt(0) : f,
    anchor,
    anchorLower: a,
    anchorUpper: up.length === 1 && lowerUnit(up.charCodeAt(0)) === a.charCodeAt(0) ? up : a,
    gap,
    span: chars.length + (chars.length - 1) * gap,
  };
}

/**
 * looseFrom's and looseBack's result when there is no match; looseFrom's when `t` ended before the
 * skeleton did (a beginning of it, trailing separators included) after k of its characters:
 * PREFIX - k (read by prefixStart only: `stream_secret_hold: prefix`).
 */
const NO_MATCH = -1;
const PREFIX = -2;

/**
 * The skeleton's characters from index `k` on, read in `t` from `j` (the unit after its character
 * k - 1): the end of the match, NO_MATCH, or PREFIX - (characters read) when `t` ends first. Separators and the
 * skeleton's characters never overlap, so there is one way to read it: linear, no backtracking.
 */
function looseFrom(t: string, j: number, k: number, sk: Skeleton): number {
  const chars = sk.chars;
  const n = t.length;
  for (; k < chars.length; k++) {
    const want = chars.charCodeAt(k);
    let gap = 0;
    for (;;) {
      if (j >= n) return PREFIX - k;
      const c = t.charCodeAt(j);
      if (c === want || lowerUnit(c) === want) break;
      if (!isSeparator(c) || ++gap > sk.gap) return NO_MATCH;
      j++;
    }
    j++;
  }
  return j;
}

/**
 * Start of the match whose character `k` is at `p` (its characters before k read backwards from
 * p), or NO_MATCH.
 */
function looseBack(t: string, p: number, k: number, sk: Skeleton): number {
  const chars = sk.chars;
  for (k--; k >= 0; k--) {
    const want = chars.charCodeAt(k);
    let gap = 0;
    for (;;) {
      if (--p < 0) return NO_MATCH;
      const c = t.charCodeAt(p);
      if (c === want || lowerUnit(c) === want) break;
      if (!isSeparator(c) || ++gap > sk.gap) return NO_MATCH;
    }
  }
  return p;
}

export class LeakGuard {
  /** Every needle, searched exactly: in a prompt. */
  private readonly needles: string[];
  /** In an answer: the needles a skeleton does not cover (encodings), searched exactly... */
  private readonly exactNeedles: string[];
  /** ...and the skeletons of the values themselves (see the file's comment). */
  private readonly skeletons: Skeleton[];
  /**
   * How many trailing units of the searched text a stream holds back (see heldFrom): the longest
   * needle or loose match less one (how far back a value still arriving can begin), rounded up to
   * a multiple of HOLD_STEP.
   */
  private readonly window: number;

  constructor(secrets: readonly string[]) {
    const set = new Set<string>();
    for (const s of secrets) {
      if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) continue;
      set.add(s);
      for (const form of escapedForms(s)) set.add(form);
      for (const form of encodedForms(s)) set.add(form);
      // ROT13, the cipher a model asked to "encode" or "obfuscate" a text writes first after
      // base64 and hex (see rot13): a value with letters has it, matched as the value is.
      const r = rot13(s);
      if (r !== s) set.add(r);
      // Reversed, what a model asked to "write it backwards" writes (a palindrome is itself).
      const b = reversed(s);
      if (b !== s) set.add(b);
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
    // The values themselves (each form), as an answer may repeat them: a skeleton each, which
    // matches the value as it is too (its gap is at least the value's own longest separator
    // run), so a value with a skeleton is not also searched exactly there (one hit, not two).
    const skeletons = new Map<string, Skeleton>();
    const covered = new Set<string>();
    for (const s of secrets) {
      if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) continue;
      for (const form of new Set([s, s.normalize('NFC'), s.normalize('NFD'), rot13(s), reversed(s)])) {
        const f = fold(form).text;
        if (!folded.has(f)) continue;
        const sk = skeletonOf(f);
        if (sk === undefined) continue;
        covered.add(f);
        const known = skeletons.get(sk.chars);
        if (known === undefined || known.gap < sk.gap) skeletons.set(sk.chars, sk);
      }
      // Its hex too, as a skeleton: a model writes hex in either case or in groups (`DE AD BE EF`,
      // `de:ad:be:ef`, xxd's `dead beef`), all one skeleton, which covers both exact forms. One
      // separator between digits (HEX_GAP), not three: a hex dump has one, and the span a stream
      // reads back stays about the value's own (2n digits and 2n gaps of 1, against n and 3n).
      const hex = Buffer.from(s, 'utf8').toString('hex');
      const sk = skeletonOf(hex, HEX_GAP);
      if (sk !== undefined && !skeletons.has(sk.chars)) {
        skeletons.set(sk.chars, sk);
        covered.add(hex).add(hex.toUpperCase());
      }
    }
    this.exactNeedles = this.needles.filter((n) => !covered.has(n));
    this.skeletons = [...skeletons.values()].sort((a, b) => b.span - a.span);
    const longest = Math.max(this.needles.length > 0 ? this.needles[0]!.length : 0, this.skeletons.length > 0 ? this.skeletons[0]!.span : 0);
    this.window = Math.ceil(Math.max(0, longest - 1) / HOLD_STEP) * HOLD_STEP;
  }

  /**
   * The guard for `secrets`: requests with no secret to guard (most) share one inactive guard,
   * and requests granted the same secrets share theirs (a guard never changes once built; its
   * encodings cost microseconds per request otherwise). The cache holds values (its keys, the
   * guards' needles) the secret resolver's cache holds too, so it keeps them no longer than
   * GUARD_TTL_MS after it built their guard, read or not: a rotated or revoked secret must leave
   * memory about when its lease ends, as the resolver's copy does, not stay for the process's
   * lifetime. At most GUARD_CACHE_SIZE guards, least recently used evicted.
   */
  static for(secrets: readonly string[]): LeakGuard {
    if (secrets.length === 0) return NO_SECRETS;
    // Length-prefixed: no list of secrets can spell another's key ("A\0B" alone vs A and B).
    let key = '';
    for (const v of secrets) key += `${v.length}:${v}`;
    let guard = guards.get(key);
    if (guard === undefined) guards.set(key, (guard = new LeakGuard(secrets)));
    return guard;
  }

  /** How many guards (each holding secret values) the cache holds now. For tests and diagnostics. */
  static get cached(): number {
    return guards.size;
  }

  get active(): boolean {
    return this.needles.length > 0;
  }

  /**
   * Appends a finding per occurrence, in original offsets. `json`: the text is JSON (tool-call
   * arguments), searched with its string escapes decoded (`\u0043ANARY` is `CANARY` to the
   * caller's JSON parser). `folded`: the text's fold as the scanner made it, if it scanned it.
   * `loose`: the text is an answer, where a value is also found in another case or spaced out
   * (see the file's comment).
   */
  find(text: string, out: Finding[], json = false, folded?: FoldedText, loose = false): number {
    if (this.needles.length === 0) return 0;
    let views: FoldedText[];
    if (json && text.indexOf('\\') >= 0) {
      // Escapes at two levels or more (JSON inside a JSON string): every reading is searched.
      const readings = jsonEscapeReadings(text);
      views = readings.length === 0 ? [fold(text)] : readings.map((r) => composeFolded(r, fold(r.text)));
    } else views = [folded ?? fold(text)];
    // Characters written one by one as numeric HTML references or prefixed hex bytes: each reading
    // that holds some is searched decoded too (encoded-chars.ts).
    for (let l = 0, m = views.length; l < m; l++) {
      const enc = encodedReading(views[l]!);
      if (enc !== null) views.push(enc);
    }
    // A value found again in a later reading at the same place counts once.
    return views.length === 1 ? this.findIn(views[0]!, out, loose) : this.findInReadings(views, out, loose);
  }

  private findInReadings(views: readonly FoldedText[], out: Finding[], loose: boolean): number {
    let n = 0;
    const hits: Finding[] = [];
    // The spans the readings before kept, merged and in order: a hit over one of them is the
    // value found again at a deeper level at the same place. A binary search each, not a pass
    // over every hit kept (a text repeating the value holds one every few bytes).
    let known: Span[] = [];
    for (const v of views) {
      hits.length = 0;
      this.findIn(v, hits, loose);
      const kept: Span[] = [];
      for (const h of hits) {
        if (overlapsAny(known, h.start, h.end)) continue;
        out.push(h);
        kept.push([h.start, h.end]);
        n++;
      }
      if (kept.length > 0) known = mergeSpans(known, kept);
    }
    return n;
  }

  private findIn(view: FoldedText, out: Finding[], loose: boolean): number {
    const t = view.text;
    const hits = NEEDLE_HITS;
    for (const needle of loose ? this.exactNeedles : this.needles) {
      let i = t.indexOf(needle);
      while (i >= 0) {
        const [start, end] = toOriginalSpan(view, i, i + needle.length);
        hits.push({ entity: LEAK_ENTITY, start, end, score: 1 });
        i = t.indexOf(needle, i + needle.length);
      }
    }
    let n = hits.length === 0 ? 0 : keepOutermost(hits, out);
    hits.length = 0;
    if (loose) for (const sk of this.skeletons) n += findLoose(t, view, sk, out);
    return n;
  }

  /**
   * Start of the tail of `text` the streaming hold-back keeps for the guard; text.length when the
   * guard is inactive. A value is never released in part, whatever it holds (spaces, line breaks):
   * one that is still arriving begins in the last `longest - 1` units of the text the guard
   * searches, so that tail waits for the next piece. The whole tail, whether or not it could begin
   * a value: a hold of only the tails that could (as before) made where a stream breaks a function
   * of the secret, and a caller who can make the model repeat a text learned from the chunk
   * boundaries whether it began a secret. The tail's length is HOLD_STEP-rounded, so it tells the
   * values' lengths only roughly, never their characters; where it starts depends on the text
   * alone (its folding and escapes). The cost is bounded by the secrets' lengths: the window read
   * is widened only while invisible characters or escapes make its searched text shorter than that.
   *
   * `hold: 'prefix'` (config `redaction.stream_secret_hold`) trades that for an earlier first
   * token: in the same readings, only the longest tail that could begin a guarded value is kept
   * (prefixStart), and what is cut at the end (a JSON escape of a deeper level, an encoded
   * character still arriving: partialEncodedStart). Where such a stream breaks tells whether a
   * text begins a secret (README Status and limits). `label`: `text` is an answer label, kept
   * when it ends in a beginning of a value in another case or spaced only from two characters of
   * it on (`call_abc` before `canary…` is most labels: see stream.ts ToolLabel).
   */
  heldFrom(text: string, json = false, hold: StreamSecretHold = 'window', label = false): number {
    if (this.needles.length === 0 || text.length === 0) return text.length;
    const keep = this.window;
    // An escape cut at the end ("\u00") decodes to nothing yet: it is held, and the window is
    // counted before it.
    const end = json ? partialEscapeStart(text) : text.length;
    // A few more units than needed: a window that begins inside a \uXXXX escape or a surrogate
    // pair reads its first units wrong, and the window's start must not be among them. In JSON
    // it never begins inside a run of backslashes (see backslashRunStart): `text` begins where
    // the stream's emitted text ended, after a whole escape, so its start is a sound place too.
    const need = keep + 8;
    let width = Math.min(end, 2 * need);
    for (;;) {
      const from = json ? backslashRunStart(text, end - width) : end - width;
      const win = text.slice(from, end);
      const view = searchedText(win, json);
      // Escapes at two levels or more: a value may be arriving at any of them, and the window
      // must hold `keep` units at every level (`\\\\u0043` is one unit three levels down).
      let deeper: FoldedText[] | undefined;
      let enough = view.text.length >= need;
      if ((enough || from === 0) && json && view.text.indexOf('\\') >= 0) {
        const readings = jsonEscapeReadings(win);
        if (readings.length > 1) {
          deeper = [];
          for (let l = 1; l < readings.length; l++) {
            const d = composeFolded(readings[l]!, fold(readings[l]!.text));
            deeper.push(d);
            if (d.text.length < need) enough = false;
          }
        }
      }
      // Each reading with characters written as HTML references or prefixed hex bytes (see
      // find), read decoded too: counted in the decoded units, with ENCODED_SLACK more for one
      // such character still arriving at the end (`&#x54`, `, 0x5`), which reads longer now.
      const ends: Array<[FoldedText, number]> = [[view, view.text.length]];
      if (deeper) for (const r of deeper) ends.push([r, partialEscapeStart(r.text)]);
      const decoded: FoldedText[] = [];
      const prefix = hold === 'prefix';
      if (enough || from === 0) {
        for (const [v, e] of ends) {
          // Held by prefix from where an encoded character may still be arriving: a beginning of a
          // value is judged in what is decoded before it (`&#84;&#11` begins `Tr…` at `&#84;`).
          const cut = prefix ? partialEncodedStart(v.text, e) : e;
          const enc = encodedReading(cut === v.text.length ? v : { text: v.text.slice(0, cut), starts: v.starts, ends: v.ends });
          if (enc === null) continue;
          decoded.push(enc);
          if (enc.text.length < need + ENCODED_SLACK) enough = false;
        }
      }
      if (enough || from === 0) {
        // An escape of a deeper level cut at its end (`\\u005cu00` reads `\u00` two levels down)
        // decodes to nothing yet: held, and the window counted before it, as `end` does as written.
        let held = end;
        if (prefix) {
          const minLoose = label ? 2 : 1;
          for (const [v, e] of ends) held = Math.min(held, from + this.prefixTail(v, partialEncodedStart(v.text, e), minLoose, end - from));
          for (const d of decoded) held = Math.min(held, from + this.prefixTail(d, d.text.length, minLoose, end - from));
          return held;
        }
        // And an encoded character still arriving, from its start, however long: a run's first
        // character token is read only once a second follows, so a text that ends in one has no
        // decoded reading yet, and `String.fromCharCode(90) + Str` is longer than the window.
        // What is held so depends on the text alone, as the window does.
        for (const [v, e] of ends) held = Math.min(held, from + tailStart(v, e, keep), from + viewStart(v, partialEncodedStart(v.text, e), end - from));
        for (const d of decoded) held = Math.min(held, from + tailStart(d, d.text.length, keep + ENCODED_SLACK));
        return held;
      }
      width = Math.min(end, 2 * (end - from));
    }
  }

  /**
   * Where, in the text `view` reads (`whole`: its length), the held tail begins under `prefix`:
   * the longest tail before `cut` that could begin a value, or `cut` itself (what is cut there is
   * held whatever it begins).
   */
  private prefixTail(view: FoldedText, cut: number, minLoose: number, whole: number): number {
    const t = cut === view.text.length ? view.text : view.text.slice(0, cut);
    const at = this.prefixStart(t, minLoose);
    if (at >= view.text.length) return whole;
    return view.starts ? view.starts[at]! : at;
  }

  /**
   * Start of the longest tail of `t` that is a proper beginning of a needle, or of a skeleton's
   * match of at least `minLoose` characters (t.length: none). Answers only.
   */
  private prefixStart(t: string, minLoose: number): number {
    let best = t.length;
    for (const sk of this.skeletons) {
      // Only the last `span` units can begin a match that is still arriving.
      for (let i = Math.max(0, t.length - sk.span); i < best; i++) {
        const c = t.charCodeAt(i);
        if (c !== sk.first && c !== sk.firstUpper) continue;
        // A proper beginning only: a whole match that ends the text is found where it is.
        const end = looseFrom(t, i + 1, 1, sk);
        if (end <= PREFIX && PREFIX - end >= minLoose) {
          best = i;
          break;
        }
      }
    }
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

/** `view` read with its encoded characters decoded (encoded-chars.ts) and folded, as a view of what `view` maps to; null when it has none. */
function encodedReading(view: FoldedText): FoldedText | null {
  const enc = encodedCharsReading(view.text);
  if (enc === null) return null;
  const c = composeFolded(view, enc);
  return composeFolded(c, fold(c.text));
}

/** Where, in the text `view` reads (`whole`: its length), its unit `at` begins. */
function viewStart(view: FoldedText, at: number, whole: number): number {
  if (at >= view.text.length) return whole;
  return view.starts ? view.starts[at]! : at;
}

/** Where, in the text `view` reads, the last `keep` of its units before `end` begin (0: all of them). */
function tailStart(view: FoldedText, end: number, keep: number): number {
  const at = end - keep;
  if (at <= 0) return 0;
  return view.starts ? view.starts[at]! : at;
}

/**
 * Appends a finding per match of `sk` in `t` (the searched view of a text), in original offsets.
 * The anchor (a rare-looking character of the value) is found with indexOf in both cases, and the
 * match read back and forth from it: ordinary text has few of them, so the common case is a
 * couple of indexOf. Matches do not overlap: one that begins before the last one's end is skipped.
 */
function findLoose(t: string, view: FoldedText, sk: Skeleton, out: Finding[]): number {
  let n = 0;
  let lastEnd = 0;
  const two = sk.anchorUpper !== sk.anchorLower;
  let lo = t.indexOf(sk.anchorLower, sk.anchor);
  let up = two ? t.indexOf(sk.anchorUpper, sk.anchor) : -1;
  while (lo >= 0 || up >= 0) {
    const p = up < 0 || (lo >= 0 && lo < up) ? lo : up;
    const start = looseBack(t, p, sk.anchor, sk);
    const end = start >= lastEnd ? looseFrom(t, p + 1, sk.anchor + 1, sk) : NO_MATCH;
    let next = p + 1;
    if (end >= 0) {
      const [s, e] = toOriginalSpan(view, start, end);
      out.push({ entity: LEAK_ENTITY, start: s, end: e, score: 1 });
      n++;
      lastEnd = end;
      next = end;
    }
    if (lo >= 0 && lo < next) lo = t.indexOf(sk.anchorLower, next);
    if (up >= 0 && up < next) up = t.indexOf(sk.anchorUpper, next);
  }
  return n;
}

/** A span of text, start to end (exclusive). */
type Span = [number, number];

/** Whether start..end overlaps a span of `spans` (disjoint, in order). */
function overlapsAny(spans: readonly Span[], start: number, end: number): boolean {
  // The first span ending after `start`: the only one that can overlap, if it starts before `end`.
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (spans[mid]![1] <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < spans.length && spans[lo]![0] < end;
}

/** The union of `a` (disjoint, in order) and `b`, as disjoint spans in order. */
function mergeSpans(a: readonly Span[], b: readonly Span[]): Span[] {
  const all = [...a, ...b].sort((x, y) => x[0] - y[0]);
  const out: Span[] = [];
  for (const [start, end] of all) {
    const last = out[out.length - 1];
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** The exact needles' hits of the findIn under way (it is not re-entered): no array per call. */
const NEEDLE_HITS: Finding[] = [];

/**
 * Appends to `out` the hits no other hit holds, and returns how many. A hit inside another is the
 * same value found again by a shorter needle (a base32 value's unpadded form and its cores inside
 * its padded one): counted once. One sort and one sweep, since a text repeating the value (a
 * prompt of 1 MiB of it, an answer asked to repeat it) holds a hit every few bytes: each hit
 * checked against all the others took 2 s for 40,000 of them.
 */
function keepOutermost(hits: Finding[], out: Finding[]): number {
  // By start, the longest first among equal starts: a hit is inside another exactly when it ends
  // no later than the furthest end before it.
  if (hits.length > 1) hits.sort((a, b) => a.start - b.start || b.end - a.end);
  let furthest = -1;
  let n = 0;
  for (const h of hits) {
    if (h.end <= furthest) continue;
    out.push(h);
    furthest = h.end;
    n++;
  }
  return n;
}

/** The text the guard searches: folded, and in JSON with its string escapes decoded first. */
function searchedText(text: string, json: boolean): FoldedText {
  if (!json || text.indexOf('\\') < 0) return fold(text);
  const decoded = decodeJsonEscapes(text);
  return composeFolded(decoded, fold(decoded.text));
}

/**
 * Most levels of JSON string escapes read (JSON inside a JSON string inside ...). Each level
 * doubles the backslashes of the one below (`\u00a0`, `\\u00a0`, `\\\\u00a0`): an
 * HTTP body in a tool result is two, a body logged inside a JSON log line in a tool result three.
 * Four covers those with one to spare; a fifth level's escape is sixteen backslashes and more,
 * which no serialiser writes by accident, and every level read costs a decoding pass and a scan
 * of a text with an escape at that depth.
 */
export const MAX_ESCAPE_LEVELS = 4;

/**
 * `text` read with its JSON string escapes decoded once, twice, … (at most MAX_ESCAPE_LEVELS
 * times, while the reading still holds a backslash and the last pass decoded something), each
 * reading mapped to `text` (a unit of a deeper reading spans the escapes as written, every level
 * of them). Empty when nothing decodes. A text whose escapes are one level deep pays one decoding
 * pass and one indexOf on its reading, as before levels were read.
 */
export function jsonEscapeReadings(text: string): FoldedText[] {
  const out: FoldedText[] = [];
  let prev = text;
  let view = decodeJsonEscapes(text);
  while (view.text.length !== prev.length) {
    out.push(view);
    if (out.length >= MAX_ESCAPE_LEVELS || view.text.indexOf('\\') < 0) break;
    prev = view.text;
    view = composeFolded(view, decodeJsonEscapes(prev));
  }
  return out;
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
  // A text that ends in a backslash ends in a cut escape at some level whatever the run's length
  // (an odd run: a backslash waiting for its escape's rest; an even one: `\\` may be the first
  // half of a deeper level's `\\n`): held from the run's start, which the loop below also
  // returns, but after walking the run once per backslash among the last six units.
  if (n > 0 && text.charCodeAt(n - 1) === 92) return backslashRunStart(text, n - 1);
  for (let i = n - 1; i >= 0 && i >= n - 6; i--) {
    if (text.charCodeAt(i) !== 92) continue;
    let k = i;
    while (k > 0 && text.charCodeAt(k - 1) === 92) k--;
    // In a run of backslashes, pairs from its start are escaped backslashes: the one at i begins
    // an escape when an even number of them come before it.
    if ((i - k) % 2 !== 0) continue;
    const width = text.charCodeAt(i + 1) === 117 ? 6 : 2; // \uXXXX or \x
    // Held from the run's start: at a deeper level its backslashes are part of the cut escape.
    if (i + width > n) return k;
    // A whole escape at this level may still be a cut one at a deeper level (JSON inside a JSON
    // string): a run of backslashes that ends the text (`\\`, the `\` of `\\n` still to come) or
    // is followed by `u` and fewer than four hex digits (`\\u00`). Held from the run's start.
    if (i > k || text.charCodeAt(i + 1) === 92) {
      let j = k;
      while (j < n && text.charCodeAt(j) === 92) j++;
      if (j === n || (text.charCodeAt(j) === 117 && n - j < 5 && hexTo(text, j + 1))) return k;
    }
    return n;
  }
  return n;
}

/** Every unit of `text` from `from` on is a hex digit. */
function hexTo(text: string, from: number): boolean {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 102))) return false;
  }
  return true;
}

const NO_SECRETS = new LeakGuard([]);
const GUARD_CACHE_SIZE = 64;
/** Longest a built guard is kept (ms): one rebuild a second per set of secrets in use costs microseconds. */
export const GUARD_TTL_MS = 1_000;
// ttlAutopurge: a guard leaves memory when its time is up (one unref'd timer, set when it is
// built), not when it is next asked for. ttlResolution 0: no timer armed by reads (see the resolver).
const guards = new LRUCache<string, LeakGuard>({ max: GUARD_CACHE_SIZE, ttl: GUARD_TTL_MS, ttlAutopurge: true, ttlResolution: 0 });
