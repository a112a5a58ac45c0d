/**
 * String built-ins with Go's semantics as OPA has them: indexes and lengths count code points
 * (Go runes), not UTF-16 units; `trim*` take a cutset of code points; `trim_space` trims
 * exactly what Go's unicode.IsSpace calls space.
 */
import { RegoSet, isObject, sortedEntries, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, elemErr, int, num, operandErr, str, stringsOf, typeErr } from './util.js';
import { runeCount } from './aggregates.js';
import { MAX_RESULT_ELEMENTS, MAX_RESULT_STRING, checkElements, checkStringSize, work } from '../meter.js';


/** Slices a long string is handled in, so that the meter can stop it midway. */
const SLICE = 4096;

/**
 * Code points as strings: an array as long as the string, so charged (and avoided where a scan
 * does). A slice at a time: one charge before a native `Array.from` of megabytes read the clock
 * once, and the build then ran on well past the deadline.
 */
const runes = (s: string): string[] => {
  if (s.length <= SLICE) {
    work(s.length >>> 3);
    return Array.from(s);
  }
  const out: string[] = [];
  for (let start = 0; start < s.length; ) {
    let end = Math.min(s.length, start + SLICE);
    // Never split a surrogate pair between two slices.
    if (end < s.length && (s.charCodeAt(end) & 0xfc00) === 0xdc00) end++;
    for (const r of s.slice(start, end)) out.push(r);
    work((end - start) >>> 3);
    start = end;
  }
  return out;
};

/** Code points reversed, a slice at a time so that the meter can stop a long string midway. */
function reverseRunes(s: string): string {
  const parts: string[] = [];
  for (let end = s.length; end > 0; ) {
    let start = Math.max(0, end - SLICE);
    // Never split a surrogate pair between two slices.
    if (start > 0 && (s.charCodeAt(start) & 0xfc00) === 0xdc00) start--;
    parts.push(Array.from(s.slice(start, end)).reverse().join(''));
    work((end - start) >>> 3);
    end = start;
  }
  return parts.join('');
}

/** Non-overlapping occurrences of a non-empty `sub`, scanning (no array of pieces), charged as it goes. */
function countOccurrences(s: string, sub: string): number {
  let n = 0;
  for (let at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length)) {
    n++;
    work(1);
  }
  work(s.length >>> 5);
  return n;
}

/** Whether `s` has a surrogate (else code points are UTF-16 units and plain slicing is exact). */
const HAS_SURROGATE = /[\uD800-\uDFFF]/;

/** Joins, sized first: the result's length is known before it is built. */
function join(name: string, items: readonly string[], delim: string): string {
  let n = delim.length * Math.max(0, items.length - 1);
  for (const x of items) n += x.length;
  checkStringSize(n, name);
  work(items.length + (n >>> 5));
  return items.join(delim);
}

function concat(args: Value[]): Value {
  const delim = str('concat', args, 0);
  const v = args[1]!;
  if (Array.isArray(v)) return join('concat', stringsOf('concat', args, 1), delim);
  if (v instanceof RegoSet) {
    const items = v.sorted();
    for (const x of items) if (typeof x !== 'string') throw elemErr('concat', 2, v, x, 'string');
    return join('concat', items as string[], delim);
  }
  throw typeErr('concat', 2, v, 'set', 'array');
}

/** Go strings.Split: an empty separator splits into code points. */
function split(args: Value[]): Value {
  return splitPieces('split', str('split', args, 0), str('split', args, 1));
}

function splitPieces(name: string, s: string, d: string): string[] {
  work(s.length >>> 4);
  // Counted before building (one string per piece) when the pieces could be too many.
  if (s.length >= MAX_RESULT_ELEMENTS) checkElements(d === '' ? runeCount(s) : occurrences(s, d) + 1, name);
  if (d === '') return runes(s);
  if (s.length <= SLICE) return s.split(d);
  // Piece by piece, charged as it goes (a native split of megabytes into millions of pieces is
  // one call the meter cannot stop).
  const out: string[] = [];
  let at = 0;
  for (let i = s.indexOf(d); i >= 0; i = s.indexOf(d, at)) {
    work(1);
    out.push(s.slice(at, i));
    at = i + d.length;
  }
  out.push(s.slice(at));
  return out;
}

/**
 * `strings.split_n(s, d, n)` (OPA 1.2x): the first `n` pieces of `split(s, d)` when `n >= 0` (the
 * rest is dropped, not joined into the last piece), the last `-n` when `n < 0`.
 */
function splitN(args: Value[]): Value {
  const name = 'strings.split_n';
  const s = str(name, args, 0);
  const d = str(name, args, 1);
  const n = int(name, args, 2);
  if (n < 0) {
    const pieces = splitPieces(name, s, d);
    return pieces.slice(Math.max(pieces.length + n, 0));
  }
  // Only the pieces kept are built (a few leading fields of a long text are the common use).
  if (d === '' || n >= MAX_RESULT_ELEMENTS) return splitPieces(name, s, d).slice(0, n);
  const out: string[] = [];
  let at = 0;
  while (out.length < n) {
    work(1);
    const i = s.indexOf(d, at);
    if (i < 0) {
      out.push(s.slice(at));
      break;
    }
    out.push(s.slice(at, i));
    at = i + d.length;
  }
  return out;
}

/** Non-overlapping occurrences of a non-empty `sub` in `s`, as split and ReplaceAll count them. */
function occurrences(s: string, sub: string): number {
  let n = 0;
  for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length)) {
    work(1);
    n++;
  }
  return n;
}

/** Go strings.ReplaceAll: an empty `old` inserts `new` around every code point. */
function replaceAll(s: string, old: string, rep: string): string {
  if (old === '' && rep === '') return s;
  // Sized first: an empty or short `old` multiplies the replacement (replace(s, "", s) is quadratic).
  work(s.length >>> 4);
  if (rep.length > old.length) {
    const n = old === '' ? runeCount(s) + 1 : occurrences(s, old);
    checkStringSize(s.length + n * (rep.length - old.length), 'replace');
    work((n * rep.length) >>> 5);
  }
  if (old !== '') return s.split(old).join(rep);
  return rep + runes(s).join(rep) + (s === '' ? '' : rep);
}

/** Go strings.NewReplacer with the pattern keys sorted, as OPA builds it: at each position the
 * first matching key (in sorted order) wins and replacements never overlap. */
function replaceN(args: Value[]): Value {
  const patterns = args[0]!;
  if (!isObject(patterns)) throw typeErr('strings.replace_n', 1, patterns, 'object');
  const s = str('strings.replace_n', args, 1);
  const pairs: Array<[string, string]> = [];
  for (const [k, v] of sortedEntries(patterns)) {
    if (typeof k !== 'string') throw operandErr('strings.replace_n', 1, 'non-string key found in pattern object');
    if (typeof v !== 'string') throw operandErr('strings.replace_n', 1, 'non-string value found in pattern object');
    // An empty key would match everywhere; Go's replacer treats it specially and no policy needs it.
    if (k !== '') pairs.push([k, v]);
  }
  if (pairs.length === 0) return s;
  let out = '';
  let last = 0;
  let i = 0;
  scan: while (i < s.length) {
    work(pairs.length);
    for (const [k, v] of pairs) {
      if (s.startsWith(k, i)) {
        out += s.slice(last, i) + v;
        if (out.length > MAX_RESULT_STRING) checkStringSize(out.length, 'strings.replace_n');
        i += k.length;
        last = i;
        continue scan;
      }
    }
    i++;
  }
  return out + s.slice(last);
}

function cutsetTrimmer(name: string, left: boolean, right: boolean): BuiltinDef {
  return def(name, 2, (args) => {
    const s = str(name, args, 0);
    const cut = new Set(runes(str(name, args, 1)));
    // Scans by code point from the ends (no array as long as the string).
    let a = 0;
    let b = s.length;
    if (left) {
      while (a < b) {
        const ch = String.fromCodePoint(s.codePointAt(a)!);
        if (!cut.has(ch)) break;
        a += ch.length;
      }
    }
    if (right) {
      while (b > a) {
        const lo = s.charCodeAt(b - 1);
        const pair = lo >= 0xdc00 && lo <= 0xdfff && b - 2 >= a && s.charCodeAt(b - 2) >= 0xd800 && s.charCodeAt(b - 2) <= 0xdbff;
        const ch = s.slice(pair ? b - 2 : b - 1, b);
        if (!cut.has(ch)) break;
        b -= ch.length;
      }
    }
    return a === 0 && b === s.length ? s : s.slice(a, b);
  });
}

/** Go unicode.IsSpace: Latin-1 spaces plus the Unicode White_Space property (no U+FEFF, unlike JS trim). */
function isGoSpace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    c === 0x20 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** A loop, not a regex: `\s+$` rescans from every space and is quadratic on long inner runs. */
function trimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isGoSpace(s.charCodeAt(a))) a++;
  while (b > a && isGoSpace(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function runeIndex(s: string, utf16Index: number): number {
  let n = 0;
  for (let i = 0; i < utf16Index; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < utf16Index) i++;
    n++;
  }
  return n;
}

function substring(args: Value[]): Value {
  const s = str('substring', args, 0);
  const start = int('substring', args, 1);
  const length = int('substring', args, 2);
  if (start < 0) throw builtinErr('substring', 'negative offset');
  if (!HAS_SURROGATE.test(s)) {
    if (start >= s.length) return '';
    return length < 0 ? s.slice(start) : s.slice(start, start + length);
  }
  const r = runes(s);
  if (start >= r.length) return '';
  return length < 0 ? r.slice(start).join('') : r.slice(start, Math.min(r.length, start + length)).join('');
}

/** A string, or an array/set of strings, as a list (for `any_prefix_match`). */
function stringOrStrings(name: string, args: Value[], i: number): string[] {
  const v = args[i]!;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) || v instanceof RegoSet) return stringsOf(name, args, i, 'string', 'set', 'array');
  throw typeErr(name, i + 1, v, 'string', 'set', 'array');
}

function formatInt(args: Value[]): Value {
  const n = num('format_int', args, 0);
  // OPA compares the base to 2, 8, 10 and 16 (any other number, 1.5 too, is the enum error).
  const base = num('format_int', args, 1);
  if (base !== 2 && base !== 8 && base !== 10 && base !== 16) {
    throw operandErr('format_int', 2, 'must be one of {2, 8, 10, 16}');
  }
  const i = typeof n === 'bigint' ? n : BigInt(Math.trunc(n));
  return i.toString(base);
}

/**
 * Go's strings.ToLower/ToUpper, as OPA's `lower` and `upper` are: each code point by its simple
 * case mapping (UnicodeData), never JavaScript's full mappings (SpecialCasing): `lower("İ")` is
 * "i", not "i̇" (two code points), `upper("ß")` stays "ß" (JS: "SS"), and a final Σ lowers to σ
 * as any other (JS: ς). A policy comparing `lower(input…)` with a list got a different answer
 * than OPA for such names.
 */
function goCase(s: string, upper: boolean): string {
  const full = upper ? s.toUpperCase() : s.toLowerCase();
  // No special mapping applied: every full mapping kept the length (and no Σ to lower in context).
  if (full.length === s.length && (upper || !s.includes('\u03a3'))) return full;
  let out = '';
  for (const ch of s) {
    work(1);
    out += simpleCase(ch, upper);
  }
  return out;
}

/** One code point's simple case mapping: JS's full mapping when it is one code point, else Go's. */
function simpleCase(ch: string, upper: boolean): string {
  const m = upper ? ch.toUpperCase() : ch.toLowerCase();
  const cp = m.codePointAt(0)!;
  if (m.length === (cp > 0xffff ? 2 : 1)) return m;
  // Full mappings of more than one code point (SpecialCasing). Of these, only U+0130 has a
  // simple lowercase mapping, and only the Greek letters with ypogegrammeni a simple uppercase
  // (U+1F80–1FAF and U+1FB3/1FC3/1FF3 to their titlecase forms); the rest map to themselves.
  const c = ch.codePointAt(0)!;
  if (!upper) return c === 0x130 ? 'i' : ch;
  if (c >= 0x1f80 && c <= 0x1faf) return (c & 8) === 0 ? String.fromCodePoint(c + 8) : ch;
  if (c === 0x1fb3 || c === 0x1fc3 || c === 0x1ff3) return String.fromCodePoint(c + 9);
  return ch;
}

export const STRINGS: BuiltinDef[] = [
  def('concat', 2, concat),
  def('contains', 2, (a) => str('contains', a, 0).includes(str('contains', a, 1))),
  def('startswith', 2, (a) => str('startswith', a, 0).startsWith(str('startswith', a, 1))),
  def('endswith', 2, (a) => str('endswith', a, 0).endsWith(str('endswith', a, 1))),
  def('lower', 1, (a) => goCase(str('lower', a, 0), false)),
  def('upper', 1, (a) => goCase(str('upper', a, 0), true)),
  def('split', 2, split),
  def('strings.split_n', 3, splitN),
  def('replace', 3, (a) => replaceAll(str('replace', a, 0), str('replace', a, 1), str('replace', a, 2))),
  def('strings.replace_n', 2, replaceN),
  cutsetTrimmer('trim', true, true),
  cutsetTrimmer('trim_left', true, false),
  cutsetTrimmer('trim_right', false, true),
  def('trim_prefix', 2, (a) => {
    const s = str('trim_prefix', a, 0);
    const p = str('trim_prefix', a, 1);
    return s.startsWith(p) ? s.slice(p.length) : s;
  }),
  def('trim_suffix', 2, (a) => {
    const s = str('trim_suffix', a, 0);
    const p = str('trim_suffix', a, 1);
    return p !== '' && s.endsWith(p) ? s.slice(0, s.length - p.length) : s;
  }),
  def('trim_space', 1, (a) => trimSpace(str('trim_space', a, 0))),
  def('format_int', 2, formatInt),
  def('indexof', 2, (a) => {
    const s = str('indexof', a, 0);
    const sub = str('indexof', a, 1);
    if (sub === '') throw builtinErr('indexof', 'empty search character');
    const i = s.indexOf(sub);
    return i < 0 ? -1 : runeIndex(s, i);
  }),
  def('indexof_n', 2, (a) => {
    const s = str('indexof_n', a, 0);
    const sub = str('indexof_n', a, 1);
    if (sub === '') throw builtinErr('indexof_n', 'empty search character');
    const out: Value[] = [];
    // Rune offsets counted incrementally: one pass over the string, however many matches. Each
    // match is charged and the result held to the size cap as it grows: built first, millions of
    // matches ran a second past the deadline before the cap was even checked.
    let runes = 0;
    let at = 0;
    for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + 1)) {
      work(1);
      runes += runeIndex(s.slice(at, i), i - at);
      at = i;
      if (out.push(runes) > MAX_RESULT_ELEMENTS) checkElements(out.length, 'indexof_n');
    }
    return out;
  }),
  def('substring', 3, substring),
  def('strings.any_prefix_match', 2, (a) => {
    const search = stringOrStrings('strings.any_prefix_match', a, 0);
    const base = stringOrStrings('strings.any_prefix_match', a, 1);
    // Every pair may be tried: metered.
    return search.some((s) => (work(base.length), base.some((b) => s.startsWith(b))));
  }),
  def('strings.any_suffix_match', 2, (a) => {
    const search = stringOrStrings('strings.any_suffix_match', a, 0);
    const base = stringOrStrings('strings.any_suffix_match', a, 1);
    return search.some((s) => (work(base.length), base.some((b) => s.endsWith(b))));
  }),
  def('strings.reverse', 1, (a) => reverseRunes(str('strings.reverse', a, 0))),
  def('strings.count', 2, (a) => {
    const s = str('strings.count', a, 0);
    const sub = str('strings.count', a, 1);
    // Go strings.Count: an empty substring counts code points + 1.
    if (sub === '') return runeCount(s) + 1;
    return countOccurrences(s, sub);
  }),
];
