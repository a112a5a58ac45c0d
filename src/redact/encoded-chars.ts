/**
 * A reading of text in which characters written one by one in an encoding are decoded, for the
 * leak guard (leak-guard.ts): what a model asked to "encode the key" writes character by
 * character, that a reader or a decoder in the app turns back into the value. Five forms:
 *
 * - numeric HTML character references, `&#84;` and `&#x54;` (one per character: a secret whose
 *   every character is one, `&#84;&#114;&#48;…`, is the value to any HTML renderer);
 * - named HTML character references for ASCII characters, `&amp;`, `&lt;`, `&apos;`, `&sol;`…
 *   (HTML_NAMES): an HTML escaper writes a value's reserved characters so, in any mix
 *   (`&apos;` for the apostrophe next to `&amp;`), and an encoder told to encode everything
 *   writes its punctuation so too;
 * - percent-escapes, `%5A%71`, every byte or only some, in either case (a URL's query string:
 *   `https://x.example/?q=%5A%71…`, the route an injected prompt asks a model to leak a value
 *   by, in a link or an image the app fetches); a multi-byte character's bytes together
 *   (`%C3%A9` is `é`);
 * - hex bytes written with a `0x` or `\x` before each (`0x5a, 0x71, 0x37`, `\x5a\x71\x37`, a C
 *   array or a Python bytes literal): the prefixes are dropped, and so is what stands between
 *   two such bytes (BYTE_GAP: `, `, `;`, a line break and the next line's indentation), so the
 *   digits read as the value's hex does;
 * - character codes in decimal, two or more in a row (`[90, 113, 55]`, `90 113 55`: a model
 *   asked for "the ASCII codes", Python's `list(b"…")`, `String.fromCharCode(90, 113, …)`): each
 *   of 1 to 3 digits, a printable Latin-1 character's (32-126, 160-255), with at most
 *   DEC_GAP_MAX units of `,`, `;`, spaces and line breaks between; a lone number is left as it is;
 * - characters written one per token in code or notation, two or more in a row (CHARACTER
 *   TOKENS below): `chr(90)+chr(113)`, `String.fromCharCode(90) + …`, SQL's `CHAR(90) || …`;
 *   one-character strings, `'Z' + 'q'`, `['Z', 'q', …]` (Python's list(s)); octal escapes
 *   `\132\161`; `\u{5a}`; `U+005A U+0071`; binary octets `01011010 01110001`. Each token is
 *   read as its character and what stands between two (TOKEN_GAP_MAX units of spaces, line
 *   breaks, `,`, `;`, `+`, `.`, `|`, `&`) is dropped.
 *
 * Each unit of the reading maps to its span in the text (a FoldedText), so a hit masks the
 * encoded characters as written. A text with none of them (an `&` before `#` or a known name and
 * `;`, a `%` or a `0x`/`\x` before two hex digits) has no reading: null, after a few indexOf.
 */
import type { FoldedText } from './normalize.js';

/** Most digits of a numeric reference read (`&#x0001F600;`), leading zeros included. */
const REF_DIGITS_MAX = 8;
/**
 * Most units dropped between two prefixed hex bytes: `,`, `;`, spaces, tabs and line breaks
 * (`0x5a, 0x71`, `0x5a;0x71`, a C array's `,\n        ` before its next line of bytes, eight
 * spaces in). More would join bytes across a paragraph.
 */
export const BYTE_GAP_MAX = 10;
const IS_BYTE_GAP = new Uint8Array(128);
for (const c of ', ;\t\n\r') IS_BYTE_GAP[c.charCodeAt(0)] = 1;

/** Most units between two decimal character codes (`, `, `,\n  `): fewer than between bytes, see ENCODED_SLACK. */
const DEC_GAP_MAX = 4;

/**
 * Named references read: HTML5's names for the ASCII characters that have one (upper-case
 * spellings HTML accepts for the four common ones), `&nbsp;` and `&hyphen;`/`&dash;` (the fold
 * then makes them a space and a `-`): what an escaper writes for a value's punctuation. Read
 * only with their `;` (HTML reads a few without, `&amp`; the escapers write it).
 */
const HTML_NAMES: ReadonlyMap<string, string> = new Map(
  Object.entries({
    amp: '&', AMP: '&', lt: '<', LT: '<', gt: '>', GT: '>', quot: '"', QUOT: '"', apos: "'", nbsp: '\u00a0',
    excl: '!', num: '#', dollar: '$', percnt: '%', lpar: '(', rpar: ')', ast: '*', midast: '*', plus: '+',
    comma: ',', period: '.', sol: '/', colon: ':', semi: ';', equals: '=', quest: '?', commat: '@',
    lsqb: '[', lbrack: '[', bsol: '\\', rsqb: ']', rbrack: ']', Hat: '^', lowbar: '_',
    grave: '`', lcub: '{', lbrace: '{', verbar: '|', vert: '|',
    rcub: '}', rbrace: '}', tilde: '~', hyphen: '\u2010', dash: '\u2010',
  }),
);
/** Longest name in HTML_NAMES (`percnt`, `lowbar`…; HTML5's longer spellings, `UnderBar`, are left out). */
const NAME_MAX = 6;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 102);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isByteGap(c: number): boolean {
  return c < 128 && IS_BYTE_GAP[c] === 1;
}

function isAlpha(c: number): boolean {
  return (c | 32) >= 97 && (c | 32) <= 122;
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 122);
}

/** The character a numeric reference at `i` (`&#…;`) stands for and the reference's length, or null. */
function numericRef(t: string, i: number): [string, number] | null {
  let k = i + 2;
  const hex = (t.charCodeAt(k) | 32) === 120;
  if (hex) k++;
  const digits = k;
  while (k < t.length && k - digits < REF_DIGITS_MAX && (hex ? isHex(t.charCodeAt(k)) : t.charCodeAt(k) >= 48 && t.charCodeAt(k) <= 57)) k++;
  if (k === digits || t.charCodeAt(k) !== 59) return null;
  const cp = parseInt(t.slice(digits, k), hex ? 16 : 10);
  // No character (a surrogate, past Unicode, NUL): left as written.
  if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
  return [String.fromCodePoint(cp), k + 1 - i];
}

/** The character a named reference at `i` (`&amp;`) stands for and the reference's length, or null. */
function namedRef(t: string, i: number): [string, number] | null {
  let k = i + 1;
  while (k < t.length && k - i <= NAME_MAX && isAlpha(t.charCodeAt(k))) k++;
  if (k === i + 1 || t.charCodeAt(k) !== 59) return null;
  const ch = HTML_NAMES.get(t.slice(i + 1, k));
  return ch === undefined ? null : [ch, k + 1 - i];
}

function hexValue(c: number): number {
  return c <= 57 ? c - 48 : (c | 32) - 87;
}

/** The byte a percent-escape at `i` (`%5A`) stands for, or -1. */
function percentByte(t: string, i: number): number {
  const a = t.charCodeAt(i + 1);
  const b = t.charCodeAt(i + 2);
  return isHex(a) && isHex(b) ? hexValue(a) * 16 + hexValue(b) : -1;
}

/**
 * The character the percent-escapes at `i` stand for (one for an ASCII byte; a UTF-8 lead byte's
 * with its continuation bytes, each escaped, for any other) and their length, or null (a lone
 * continuation byte, a cut or invalid sequence: left as written).
 */
function percentChar(t: string, i: number): [string, number] | null {
  const b = percentByte(t, i);
  if (b < 0 || b === 0) return null;
  if (b < 0x80) return [String.fromCharCode(b), 3];
  const more = b >= 0xf0 && b <= 0xf4 ? 3 : b >= 0xe0 ? 2 : b >= 0xc2 && b < 0xe0 ? 1 : -1;
  if (more < 0) return null;
  let cp = b & (0x3f >> more);
  for (let m = 1; m <= more; m++) {
    if (t.charCodeAt(i + 3 * m) !== 37) return null;
    const c = percentByte(t, i + 3 * m);
    if (c < 0x80 || c > 0xbf) return null;
    cp = (cp << 6) | (c & 0x3f);
  }
  // Overlong forms, surrogates and past Unicode are no character (as a UTF-8 decoder refuses them).
  if (cp < [0, 0x80, 0x800, 0x10000][more]! || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
  return [String.fromCodePoint(cp), 3 * (more + 1)];
}

/**
 * The length of the decimal character code at `i` (1 to 3 digits, no letter or digit on either
 * side and no `.` between it and a digit: not part of `1.5`, `v2` or `250ms`, but the last code
 * of a sentence, `…, 89.`, is one; a printable Latin-1 code), or 0.
 */
function decimalCode(t: string, i: number): number {
  if (i > 0 && (isAlnum(t.charCodeAt(i - 1)) || (t.charCodeAt(i - 1) === 46 && i > 1 && isDigit(t.charCodeAt(i - 2))))) return 0;
  let k = i;
  let v = 0;
  while (k < t.length && k - i < 4 && isDigit(t.charCodeAt(k))) v = v * 10 + t.charCodeAt(k++) - 48;
  if (k === i || k - i > 3 || isAlnum(t.charCodeAt(k)) || (t.charCodeAt(k) === 46 && isDigit(t.charCodeAt(k + 1)))) return 0;
  return (v >= 32 && v <= 126) || (v >= 160 && v <= 255) ? k - i : 0;
}

/** The start of a decimal code after the gap at `k` (1 to DEC_GAP_MAX gap units), or -1. */
function codeAfterGap(t: string, k: number): number {
  const from = k;
  while (k < t.length && k - from < DEC_GAP_MAX && isByteGap(t.charCodeAt(k))) k++;
  return k > from && decimalCode(t, k) > 0 ? k : -1;
}

/*
 * CHARACTER TOKENS: what a model asked to "encode" or "obfuscate" a value writes in code, one
 * character at a time, that an interpreter or a reader turns back into the value. Read only two or
 * more in a row (a lone `'a'` or `chr(65)` is left as written), like decimal codes.
 */

/** Most units between two character tokens: `' + '`, `, `, ` ||\n    ` (a concatenation laid out over lines). */
const TOKEN_GAP_MAX = 8;
const IS_TOKEN_GAP = new Uint8Array(128);
for (const c of ', ;\t\n\r+.|&') IS_TOKEN_GAP[c.charCodeAt(0)] = 1;

function isTokenGap(c: number): boolean {
  return c < 128 && IS_TOKEN_GAP[c] === 1;
}

/**
 * Functions that make a character of its code, lower-cased: Python's chr (unichr in Python 2),
 * JavaScript's String.fromCharCode with one argument (with several, its codes are decimal codes
 * above), VB's Chr and ChrW, SQL's CHAR and NCHAR.
 */
const CODE_CALLS = new Set(['chr', 'unichr', 'chrw', 'char', 'nchar', 'fromcharcode', 'string.fromcharcode']);
/** Longest name in CODE_CALLS. */
const CALL_NAME_MAX = 19;
/** Most digits of a call's code (`chr(128512)`), and of `\u{…}` and `U+…`'s hex. */
const CALL_DIGITS_MAX = 6;

function isIdent(c: number): boolean {
  return isAlnum(c) || c === 95 || c === 36; // `_`, `$`
}

/** Whether `cp` is a character a token may stand for: not NUL, a surrogate or past Unicode. */
function isCharCode(cp: number): boolean {
  return cp !== 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

/** Where the name of a code call whose `(` is at `p` begins (`chr`, `String.fromCharCode`), or -1. */
function callNameStart(t: string, p: number): number {
  // Every name ends in `r`, `w` or `e`: most `(` (`push(`, `if (`) are left after one comparison.
  const last = t.charCodeAt(p - 1) | 32;
  if (last !== 114 && last !== 119 && last !== 101) return -1;
  let s = p;
  while (s > 0 && p - s < CALL_NAME_MAX && (isAlpha(t.charCodeAt(s - 1)) || t.charCodeAt(s - 1) === 46)) s--;
  if (s === p || (s > 0 && isIdent(t.charCodeAt(s - 1)))) return -1;
  const name = t.slice(s, p).toLowerCase();
  if (CODE_CALLS.has(name)) return s;
  // `x.chr(`, `window.String.fromCharCode(`: the name after the last dot.
  for (let d = name.indexOf('.'); d >= 0; d = name.indexOf('.', d + 1)) if (CODE_CALLS.has(name.slice(d + 1))) return s + d + 1;
  return -1;
}

/** Whether `t` from `i` is the hex of a code point, `min` to CALL_DIGITS_MAX digits, ending at a non-alphanumeric unit; its end, or -1. */
function hexRun(t: string, i: number, min: number): number {
  let k = i;
  while (k < t.length && k - i < CALL_DIGITS_MAX && isHex(t.charCodeAt(k))) k++;
  return k - i >= min && !isAlnum(t.charCodeAt(k)) ? k : -1;
}

/** The code point of the token tokenLength read last (set by it: no array per probe, one a unit of a long list). */
let tokenCp = 0;

/**
 * The length of the character token at `i` (its code point left in tokenCp), or 0: a
 * one-character string (`'Z'`, `"Z"`); a code call (`chr(90)`, its name beginning at `i`); an
 * octal escape (`\132`, a byte) or `\u{5a}`; `U+005A`; a binary octet (`01011010`, no letter or
 * digit beside it).
 */
function tokenLength(t: string, i: number): number {
  const c = t.charCodeAt(i);
  if (c === 39 || c === 34) {
    const cp = t.codePointAt(i + 1);
    if (cp === undefined || cp === c || cp === 92 || cp === 10 || cp === 13) return 0;
    const w = cp > 0xffff ? 2 : 1;
    if (t.charCodeAt(i + 1 + w) !== c) return 0;
    tokenCp = cp;
    return w + 2;
  }
  if (c === 92) {
    const a = t.charCodeAt(i + 1);
    if (a >= 48 && a <= 51) {
      const b = t.charCodeAt(i + 2);
      const d = t.charCodeAt(i + 3);
      if (!(b >= 48 && b <= 55 && d >= 48 && d <= 55)) return 0;
      tokenCp = (a - 48) * 64 + (b - 48) * 8 + (d - 48);
      return tokenCp === 0 ? 0 : 4;
    }
    if (a !== 117 || t.charCodeAt(i + 2) !== 123) return 0;
    const e = hexRun(t, i + 3, 1);
    if (e < 0 || t.charCodeAt(e) !== 125) return 0;
    tokenCp = parseInt(t.slice(i + 3, e), 16);
    return isCharCode(tokenCp) ? e + 1 - i : 0;
  }
  if (i > 0 && isAlnum(t.charCodeAt(i - 1))) return 0;
  if (c === 85) {
    if (t.charCodeAt(i + 1) !== 43) return 0;
    const e = hexRun(t, i + 2, 4);
    if (e < 0) return 0;
    tokenCp = parseInt(t.slice(i + 2, e), 16);
    return isCharCode(tokenCp) ? e - i : 0;
  }
  if (c === 48 || c === 49) {
    let v = 0;
    for (let k = i; k < i + 8; k++) {
      const b = t.charCodeAt(k);
      if (b !== 48 && b !== 49) return 0;
      v = v * 2 + b - 48;
    }
    if (v === 0 || isAlnum(t.charCodeAt(i + 8))) return 0;
    tokenCp = v;
    return 8;
  }
  if (!isAlpha(c)) return 0;
  // A code call: its name, `(`, 1 to CALL_DIGITS_MAX decimal digits, `)`.
  let p = i + 1;
  while (p < t.length && p - i < CALL_NAME_MAX && (isAlpha(t.charCodeAt(p)) || t.charCodeAt(p) === 46)) p++;
  if (t.charCodeAt(p) !== 40 || callNameStart(t, p) !== i) return 0;
  let k = p + 1;
  let v = 0;
  while (k < t.length && k - p <= CALL_DIGITS_MAX && isDigit(t.charCodeAt(k))) v = v * 10 + t.charCodeAt(k++) - 48;
  if (k === p + 1 || t.charCodeAt(k) !== 41 || !isCharCode(v)) return 0;
  tokenCp = v;
  return k + 1 - i;
}

/** The start of a character token after `k` and a gap of at most TOKEN_GAP_MAX units (none too: `\132\161`), or -1. */
function tokenAfterGap(t: string, k: number): number {
  const from = k;
  while (k < t.length && k - from < TOKEN_GAP_MAX && isTokenGap(t.charCodeAt(k))) k++;
  return tokenLength(t, k) > 0 ? k : -1;
}

/**
 * What begins a character token, searched for with indexOf (a code call's is its `(`, the name
 * read back from it). A binary octet has no lead of its own: two in a row are a digit, a gap and a
 * digit, found by hasCodePair's search (one regex for both).
 */
const TOKEN_LEADS = ["'", '"', '\\', 'U+', '('];

/** Whether `t` holds two character tokens in a row (see tokenLength). */
function hasTokenPair(t: string): boolean {
  for (const lead of TOKEN_LEADS) {
    for (let i = t.indexOf(lead); i >= 0; i = t.indexOf(lead, i + 1)) {
      const at = lead === '(' ? callNameStart(t, i) : i;
      const len = at < 0 ? 0 : tokenLength(t, at);
      if (len > 0 && tokenAfterGap(t, at + len) >= 0) return true;
    }
  }
  return false;
}

/**
 * A digit, a gap and a digit: where two decimal codes may be (then checked by decimalCode), or two
 * binary octets (a character token's gap, TOKEN_GAP_MAX units at most, holds a decimal code's).
 */
const DIGIT_GAP_DIGIT = new RegExp(`[0-9][,; \\t\\r\\n+.|&]{1,${TOKEN_GAP_MAX}}[0-9]`, 'g');

/**
 * Whether `t` holds two decimal codes, or two binary octets, with a gap between. A regex finds the
 * candidates (~1 µs on 4 KB of prose, where a loop over every unit took ~8 µs), each checked from
 * its number's start.
 */
function hasCodePair(t: string): boolean {
  DIGIT_GAP_DIGIT.lastIndex = 0;
  for (let m = DIGIT_GAP_DIGIT.exec(t); m !== null; m = DIGIT_GAP_DIGIT.exec(t)) {
    let i = m.index;
    while (i > 0 && isDigit(t.charCodeAt(i - 1))) i--;
    const len = decimalCode(t, i);
    if (len > 0 && codeAfterGap(t, i + len) >= 0) return true;
    if (m.index - i === 7 && tokenLength(t, i) === 8 && tokenAfterGap(t, i + 8) >= 0) return true;
    // The next candidate may begin at this match's second digit (`12, 34, 56`).
    DIGIT_GAP_DIGIT.lastIndex = m.index + m[0].length - 1;
  }
  return false;
}

/** `x` (or `X`) right after a `0` or `\\` and before two hex digits somewhere in `t`. */
function prefixedByte(t: string, x: string): boolean {
  for (let i = t.indexOf(x, 1); i >= 0; i = t.indexOf(x, i + 1)) {
    const p = t.charCodeAt(i - 1);
    if ((p === 48 || p === 92) && isHex(t.charCodeAt(i + 1)) && isHex(t.charCodeAt(i + 2))) return true;
  }
  return false;
}

/** An `&` in `t` that begins a numeric or a known named reference. */
function hasRef(t: string): boolean {
  for (let i = t.indexOf('&'); i >= 0; i = t.indexOf('&', i + 1)) {
    if (t.charCodeAt(i + 1) === 35 ? numericRef(t, i) !== null : namedRef(t, i) !== null) return true;
  }
  return false;
}

/** A `%` before two hex digits somewhere in `t`. */
function hasPercent(t: string): boolean {
  for (let i = t.indexOf('%'); i >= 0; i = t.indexOf('%', i + 1)) if (percentByte(t, i) >= 0) return true;
  return false;
}

/**
 * Whether `t` may hold a reference, a percent-escape or a prefixed byte. indexOf, not a regex: a
 * regex tried at every unit cost ~6 µs on 4 KB of prose, run on every prompt text of a request
 * that guards a secret; these searches cost ~0.3 µs there (prose has few `x`, `&` and `%`).
 */
function mayHoldEncoded(t: string): boolean {
  return hasRef(t) || hasPercent(t) || prefixedByte(t, 'x') || prefixedByte(t, 'X') || hasCodePair(t) || hasTokenPair(t);
}

/** `t` with its numeric character references decoded and its hex bytes' `0x`/`\x` dropped (see above); null when it has none. */
export function encodedCharsReading(t: string): FoldedText | null {
  if (!mayHoldEncoded(t)) return null;
  const n = t.length;
  // The reading is never longer than the text (each decoded unit stands for one or more): typed
  // arrays of that size for the map, not a growing array per unit (a 1 MiB prompt with one `&#`
  // in it). The text itself is built from slices of `t` and the decoded characters, joined once:
  // a unit array turned into a string with String.fromCharCode(...units) cost ~150 µs per 4 KB,
  // paid by every answer with one `0xff` in it.
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const parts: string[] = [];
  let j = 0;
  /** Start of the pending run of `t` copied as it is. */
  let run = 0;
  const copyRun = (to: number): void => {
    if (run >= to) return;
    parts.push(t.slice(run, to));
    for (let k = run; k < to; k++, j++) {
      starts[j] = k;
      ends[j] = k + 1;
    }
  };
  /** Where the last prefixed byte's digits ended in `t` (-1: none yet). */
  let byteEnd = -1;
  /** Where the last decimal code decoded ended in `t` (-1: none yet). */
  let decEnd = -1;
  /** Where the last character token decoded ended in `t` (-1: none yet). */
  let tokEnd = -1;
  /** Where the token after the last one decoded and its gap begins (-1: none). */
  let nextTok = -1;
  let changed = false;
  for (let i = 0; i < n; ) {
    const c = t.charCodeAt(i);
    // A character token (see tokenAt) next to another: the first of a pair when one follows it,
    // or one after the last decoded with only a gap between (the gap dropped). A code call is
    // met at its `(`, its name (still in the pending run) read back from there.
    if (c === 39 || c === 34 || c === 92 || c === 85 || c === 48 || c === 49 || c === 40) {
      const at = c === 40 ? callNameStart(t, i) : i;
      const len = at >= run ? tokenLength(t, at) : 0;
      if (len > 0) {
        const cp = tokenCp;
        // The token after the last one's gap was found when that one was read (nextTok).
        const afterLast = tokEnd >= 0 && run === tokEnd && nextTok === at;
        const next = tokenAfterGap(t, at + len);
        if (afterLast || next >= 0) {
          nextTok = next;
          if (!afterLast) copyRun(at);
          parts.push(cp > 0xffff ? String.fromCodePoint(cp) : String.fromCharCode(cp));
          for (let u = cp > 0xffff ? 2 : 1; u > 0; u--, j++) {
            starts[j] = at;
            ends[j] = at + len;
          }
          changed = true;
          i = at + len;
          tokEnd = i;
          run = i;
          continue;
        }
      }
    }
    if (c === 38 || c === 37) {
      const ref = c === 37 ? percentChar(t, i) : t.charCodeAt(i + 1) === 35 ? numericRef(t, i) : namedRef(t, i);
      if (ref !== null) {
        const [ch, len] = ref;
        copyRun(i);
        parts.push(ch);
        for (let u = 0; u < ch.length; u++, j++) {
          starts[j] = i;
          ends[j] = i + len;
        }
        changed = true;
        i += len;
        run = i;
        continue;
      }
    }
    // A decimal character code next to another (`90, 113`): the first of a pair when one follows
    // it, or one after the last decoded with only a gap between (the gap dropped).
    if (c >= 48 && c <= 57) {
      const len = decimalCode(t, i);
      const afterLast = len > 0 && decEnd >= 0 && run === decEnd && codeAfterGap(t, decEnd) === i;
      if (len > 0 && (afterLast || codeAfterGap(t, i + len) >= 0)) {
        if (!afterLast) copyRun(i);
        let v = 0;
        for (let k = i; k < i + len; k++) v = v * 10 + t.charCodeAt(k) - 48;
        parts.push(String.fromCharCode(v));
        starts[j] = i;
        ends[j] = i + len;
        j++;
        changed = true;
        i += len;
        decEnd = i;
        run = i;
        continue;
      }
    }
    // `0x5a` (a `0` that is no digit of a longer number or word: not `10x20`) or `\x5a`.
    if ((c === 92 || (c === 48 && (i === 0 || !isAlnum(t.charCodeAt(i - 1))))) && (t.charCodeAt(i + 1) | 32) === 120 && isHex(t.charCodeAt(i + 2)) && isHex(t.charCodeAt(i + 3))) {
      // What stands between this byte and the one before (`, `, a line break: see BYTE_GAP_MAX;
      // nothing else in between): dropped too, the pending run being just that gap.
      let gap = byteEnd >= 0 && run === byteEnd && i - byteEnd <= BYTE_GAP_MAX;
      for (let k = byteEnd; gap && k < i; k++) if (!isByteGap(t.charCodeAt(k))) gap = false;
      if (!gap) copyRun(i);
      changed = true;
      // The digits go on as they are (`0x5a71` is the hex `5a71`), the first one spanning the
      // prefix too: a value found from there is masked with it.
      const prefix = i;
      i += 2;
      const digits = i;
      for (; i < n && isHex(t.charCodeAt(i)); i++, j++) {
        starts[j] = i === digits ? prefix : i;
        ends[j] = i + 1;
      }
      parts.push(t.slice(digits, i));
      byteEnd = i;
      run = i;
      continue;
    }
    i++;
  }
  if (!changed) return null;
  copyRun(n);
  return { text: parts.join(''), starts: starts.subarray(0, j), ends: ends.subarray(0, j) };
}

/** `name` as a regex source matching it in any case (`[cC][hH][rR]`). */
function anyCase(name: string): string {
  return [...name].map((c) => (isAlpha(c.charCodeAt(0)) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : `\\${c}`)).join('');
}
const CALL_NAMES = [...CODE_CALLS].map(anyCase).join('|');
/** Every proper beginning of a code call's name (`c`, `ch`, `String.fromChar`). */
const CALL_NAME_STARTS = [...new Set([...CODE_CALLS].flatMap((n) => [...n].map((_, k) => n.slice(0, k + 1)).filter((p) => p !== n)))]
  .sort((a, b) => b.length - a.length)
  .map(anyCase)
  .join('|');
const TOKEN_GAP = `[,; \\t\\n\\r+.|&]{0,${TOKEN_GAP_MAX}}`;
/** A whole character token (tokenLength). */
const WHOLE_TOKEN =
  `(?:'(?:[^'\\\\\\r\\n]|[\\ud800-\\udbff][\\udc00-\\udfff])'|"(?:[^"\\\\\\r\\n]|[\\ud800-\\udbff][\\udc00-\\udfff])"` +
  `|\\\\[0-3][0-7]{2}|\\\\u\\{[0-9a-fA-F]{1,${CALL_DIGITS_MAX}}\\}|U\\+[0-9a-fA-F]{4,${CALL_DIGITS_MAX}}|[01]{8}` +
  `|(?:${CALL_NAMES})\\([0-9]{1,${CALL_DIGITS_MAX}}\\))`;
/**
 * A character token cut at the end: a quote and at most its character, a cut escape, `U+` and
 * fewer digits, binary digits, a call's name or its `(` and digits. The quote is an opening one:
 * not one after a quote and a character (`'q'`'s closing quote is no cut `'`; the token is whole).
 */
const CUT_TOKEN =
  `(?:(?<!'(?:[^'\\\\\\r\\n]|[\\ud800-\\udbff][\\udc00-\\udfff])|"(?:[^"\\\\\\r\\n]|[\\ud800-\\udbff][\\udc00-\\udfff]))(?:'(?:[^'\\\\\\r\\n]|[\\ud800-\\udbff][\\udc00-\\udfff]?)?|"(?:[^"\\\\\\r\\n]|[\\ud800-\\udbff][\\udc00-\\udfff]?)?)|\\\\(?:[0-3][0-7]{0,2}|u(?:\\{[0-9a-fA-F]{0,${CALL_DIGITS_MAX}})?)?` +
  `|(?<![0-9A-Za-z])(?:U(?:\\+[0-9a-fA-F]{0,${CALL_DIGITS_MAX}})?|[01]{1,8})` +
  `|(?<![0-9A-Za-z_$])(?:(?:${CALL_NAMES})(?:\\([0-9]{0,${CALL_DIGITS_MAX}})?|${CALL_NAME_STARTS}))`;
/** Longest whole character token: `String.fromCharCode(` and CALL_DIGITS_MAX digits and `)`. */
const WHOLE_TOKEN_MAX = CALL_NAME_MAX + CALL_DIGITS_MAX + 2;

/**
 * An encoded character still arriving at the end of `t.slice(0, end)`: `&`, `&#`, `&#x` and up to
 * REF_DIGITS_MAX digits without their `;`, `&` and up to NAME_MAX letters; `%` and one hex digit,
 * or a UTF-8 lead byte's escape and fewer continuation bytes' than it needs (`%C3`, `%E2%82%`);
 * a number of up to 3 digits and the gap after it (a decimal code, or the first of a pair, still
 * arriving: `90, 11` may go on `3, 55`, and `90` alone is no code until a second follows);
 * `\`, `0` (no digit of a longer number or word), `\x`, `0x` and one hex digit, each with the gap
 * before it after a whole prefixed byte (dropped when the next byte is whole), and that gap alone;
 * a character token cut (CUT_TOKEN), after a whole one and a gap, or alone; and the first whole
 * token of a run with the gap after it (it is read only once a second follows), cut or not.
 * Read on the last units only (a bounded regex, whatever the text's length).
 */
const PARTIAL_ENCODED = new RegExp(
  `(?:&(?:#(?:[xX][0-9a-fA-F]{0,${REF_DIGITS_MAX}}|[0-9]{1,${REF_DIGITS_MAX}})?|[A-Za-z]{1,${NAME_MAX}})?` +
    '|%(?:[c-fC-F][0-9a-fA-F](?:%[89abAB][0-9a-fA-F]){0,2}(?:%[89abAB]?)?|[0-9a-fA-F]?)' +
    `|(?<![0-9A-Za-z]|[0-9]\\.)[0-9]{1,3}[,; \\t\\r\\n]{0,${DEC_GAP_MAX}}` +
    `|(?:(?<=[0\\\\][xX][0-9a-fA-F]{2,})[,; \\t\\r\\n]{0,${BYTE_GAP_MAX}})?(?:\\\\(?:[xX][0-9a-fA-F]?)?|(?<![0-9A-Za-z])0(?:[xX][0-9a-fA-F]?)?)?)$`,
);
/**
 * The same for character tokens, in a regex of its own: its look-behinds, tried at every unit of
 * the tail, cost ~4 µs a call, so it is run only on a tail that may end in one (mayEndInToken).
 */
const PARTIAL_TOKEN = new RegExp(
  `(?:(?<!${WHOLE_TOKEN}${TOKEN_GAP})${WHOLE_TOKEN}${TOKEN_GAP}${CUT_TOKEN}?|(?<=${WHOLE_TOKEN})${TOKEN_GAP}${CUT_TOKEN}?|${CUT_TOKEN})$`,
);
/** Every beginning of a code call's name, lower-cased, the whole name included. */
const CALL_PREFIXES = new Set([...CODE_CALLS].flatMap((n) => [...n].map((_, k) => n.slice(0, k + 1))));
/** Longest match of PARTIAL_ENCODED: a gap and `0x5` after a whole byte. */
const PARTIAL_BYTES_MAX = Math.max(3 + REF_DIGITS_MAX, 1 + NAME_MAX, 10, BYTE_GAP_MAX + 3);
/** Longest match of PARTIAL_TOKEN: a run's first whole token, a gap and a cut token (`chr(90) + chr(11`). */
const PARTIAL_TOKEN_MAX = 2 * WHOLE_TOKEN_MAX + TOKEN_GAP_MAX - 1;
const PARTIAL_ENCODED_MAX = Math.max(PARTIAL_BYTES_MAX, PARTIAL_TOKEN_MAX);
/**
 * Units an encoded character still arriving may read as more than it will (`&#x0001F60`: 10
 * units, one character; `, 0x5` after a whole byte, one digit), so a stream's hold counted in the
 * decoded reading keeps that many more.
 */
export const ENCODED_SLACK = PARTIAL_ENCODED_MAX - 1;

/** Where an encoded character still arriving at `end` begins in `t` (PARTIAL_ENCODED), or `end`. */
export function partialEncodedStart(t: string, end = t.length): number {
  if (end === 0) return end;
  // Enough units before the longest partial for its lookbehinds (a byte's `0x` and digits).
  const from = Math.max(0, end - PARTIAL_BYTES_MAX - 8);
  const m = PARTIAL_ENCODED.exec(t.slice(from, end));
  const bytes = m === null ? end : from + m.index;
  // A character token: after a whole one and its gap, for the look-behinds.
  const tfrom = Math.max(0, end - PARTIAL_TOKEN_MAX - WHOLE_TOKEN_MAX - TOKEN_GAP_MAX);
  const tail = t.slice(tfrom, end);
  if (!mayEndInToken(tail)) return bytes;
  const k = PARTIAL_TOKEN.exec(tail);
  return k === null ? bytes : Math.min(bytes, tfrom + k.index);
}

/**
 * Whether `t` may end in a character token, cut or whole with a gap after it (PARTIAL_TOKEN): what
 * ends it before that gap is a quote or a quote and one character, `(`, `)`, `{`, `}`, `\`, `U`,
 * digits after `\`, `U+`, `(` or `{`, binary digits, or a word that begins a call's name. Prose
 * and most code end otherwise: one look at the last units.
 */
function mayEndInToken(t: string): boolean {
  if (endsInCallPrefix(t)) return true;
  let i = t.length;
  while (i > 0 && t.length - i < TOKEN_GAP_MAX && isTokenGap(t.charCodeAt(i - 1))) i--;
  if (i === 0) return false;
  const c = t.charCodeAt(i - 1);
  // A quote (a whole literal's end, or an opening one), or a quote and one character.
  if (c === 39 || c === 34 || t.charCodeAt(i - 2) === 39 || t.charCodeAt(i - 2) === 34 || t.charCodeAt(i - 3) === 39 || t.charCodeAt(i - 3) === 34) return true;
  if (c === 40 || c === 41 || c === 123 || c === 125 || c === 92 || c === 85) return true;
  if (!isHex(c)) return i < t.length && endsInCallPrefix(t.slice(0, i));
  let k = i;
  let binary = true;
  while (k > 0 && i - k < 8 && isHex(t.charCodeAt(k - 1))) {
    const d = t.charCodeAt(--k);
    if (d !== 48 && d !== 49) binary = false;
  }
  const before = t.charCodeAt(k - 1);
  return binary || before === 92 || before === 43 || before === 40 || before === 123;
}

/** Whether `t` ends in a word (letters and dots) that begins a code call's name (`ch`, `String.fromChar`). */
function endsInCallPrefix(t: string): boolean {
  let i = t.length;
  while (i > 0 && t.length - i <= CALL_NAME_MAX && (isAlpha(t.charCodeAt(i - 1)) || t.charCodeAt(i - 1) === 46)) i--;
  if (i === t.length || t.length - i > CALL_NAME_MAX) return false;
  const word = t.slice(i).toLowerCase();
  if (CALL_PREFIXES.has(word)) return true;
  // `x.chr`: the part after a dot.
  for (let d = word.indexOf('.'); d >= 0; d = word.indexOf('.', d + 1)) if (CALL_PREFIXES.has(word.slice(d + 1))) return true;
  return false;
}
