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
 *   DEC_GAP_MAX units of `,`, `;`, spaces and line breaks between; a lone number is left as it is.
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

/** A digit, a gap and a digit: where two decimal codes may be (then checked by decimalCode). */
const DIGIT_GAP_DIGIT = new RegExp(`[0-9][,; \\t\\r\\n]{1,${DEC_GAP_MAX}}[0-9]`, 'g');

/**
 * Whether `t` holds two decimal codes with a gap between. A regex finds the candidates (~1 µs on
 * 4 KB of prose, where a loop over every unit took ~8 µs), each checked from its number's start.
 */
function hasCodePair(t: string): boolean {
  DIGIT_GAP_DIGIT.lastIndex = 0;
  for (let m = DIGIT_GAP_DIGIT.exec(t); m !== null; m = DIGIT_GAP_DIGIT.exec(t)) {
    let i = m.index;
    while (i > 0 && isDigit(t.charCodeAt(i - 1))) i--;
    const len = decimalCode(t, i);
    if (len > 0 && codeAfterGap(t, i + len) >= 0) return true;
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
  return hasRef(t) || hasPercent(t) || prefixedByte(t, 'x') || prefixedByte(t, 'X') || hasCodePair(t);
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
  let changed = false;
  for (let i = 0; i < n; ) {
    const c = t.charCodeAt(i);
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

/**
 * An encoded character still arriving at the end of `t.slice(0, end)`: `&`, `&#`, `&#x` and up to
 * REF_DIGITS_MAX digits without their `;`, `&` and up to NAME_MAX letters; `%` and one hex digit,
 * or a UTF-8 lead byte's escape and fewer continuation bytes' than it needs (`%C3`, `%E2%82%`);
 * a number of up to 3 digits and the gap after it (a decimal code, or the first of a pair, still
 * arriving: `90, 11` may go on `3, 55`, and `90` alone is no code until a second follows);
 * `\`, `0` (no digit of a longer number or word), `\x`, `0x` and one hex digit, each with the gap
 * before it after a whole prefixed byte (dropped when the next byte is whole), and that gap alone.
 * Read on the last units only (a bounded regex, whatever the text's length).
 */
const PARTIAL_ENCODED = new RegExp(
  `(?:&(?:#(?:[xX][0-9a-fA-F]{0,${REF_DIGITS_MAX}}|[0-9]{1,${REF_DIGITS_MAX}})?|[A-Za-z]{1,${NAME_MAX}})?` +
    '|%(?:[c-fC-F][0-9a-fA-F](?:%[89abAB][0-9a-fA-F]){0,2}(?:%[89abAB]?)?|[0-9a-fA-F]?)' +
    `|(?<![0-9A-Za-z]|[0-9]\\.)[0-9]{1,3}[,; \\t\\r\\n]{0,${DEC_GAP_MAX}}` +
    `|(?:(?<=[0\\\\][xX][0-9a-fA-F]{2,})[,; \\t\\r\\n]{0,${BYTE_GAP_MAX}})?(?:\\\\(?:[xX][0-9a-fA-F]?)?|(?<![0-9A-Za-z])0(?:[xX][0-9a-fA-F]?)?)?)$`,
);
/** Longest match of PARTIAL_ENCODED: a gap and `0x5` after a whole byte. */
const PARTIAL_ENCODED_MAX = Math.max(3 + REF_DIGITS_MAX, 1 + NAME_MAX, 10, BYTE_GAP_MAX + 3);
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
  const from = Math.max(0, end - PARTIAL_ENCODED_MAX - 8);
  const m = PARTIAL_ENCODED.exec(t.slice(from, end));
  return m === null ? end : from + m.index;
}
