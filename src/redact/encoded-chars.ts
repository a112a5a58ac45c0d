/**
 * A reading of text in which characters written one by one in an encoding are decoded, for the
 * leak guard (leak-guard.ts): what a model asked to "encode the key" writes character by
 * character, that a reader or a decoder in the app turns back into the value. Two forms:
 *
 * - numeric HTML character references, `&#84;` and `&#x54;` (one per character: a secret whose
 *   every character is one, `&#84;&#114;&#48;…`, is the value to any HTML renderer);
 * - hex bytes written with a `0x` or `\x` before each (`0x5a, 0x71, 0x37`, `\x5a\x71\x37`, a C
 *   array or a Python bytes literal): the prefixes are dropped, and so is the `, ` or ` ` between
 *   two such bytes, so the digits read as the value's hex does.
 *
 * Each unit of the reading maps to its span in the text (a FoldedText), so a hit masks the
 * encoded characters as written. A text with neither (`&#`, or a `0x`/`\x` before two hex digits)
 * has no reading: null, after a few indexOf.
 */
import type { FoldedText } from './normalize.js';

/** Most digits of a numeric reference read (`&#x0001F600;`), leading zeros included. */
const REF_DIGITS_MAX = 8;
/** Most units of `, ` (or `,`, ` `) dropped between two prefixed hex bytes. */
const BYTE_GAP_MAX = 2;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 102);
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

/** `x` (or `X`) right after a `0` or `\\` and before two hex digits somewhere in `t`. */
function prefixedByte(t: string, x: string): boolean {
  for (let i = t.indexOf(x, 1); i >= 0; i = t.indexOf(x, i + 1)) {
    const p = t.charCodeAt(i - 1);
    if ((p === 48 || p === 92) && isHex(t.charCodeAt(i + 1)) && isHex(t.charCodeAt(i + 2))) return true;
  }
  return false;
}

/**
 * Whether `t` may hold a reference or a prefixed byte. indexOf, not a regex: a regex tried at every
 * unit cost ~6 µs on 4 KB of prose, run on every prompt text of a request that guards a secret;
 * these searches cost ~0.3 µs there (prose has few `x`).
 */
function mayHoldEncoded(t: string): boolean {
  return t.indexOf('&#') >= 0 || prefixedByte(t, 'x') || prefixedByte(t, 'X');
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
  let changed = false;
  for (let i = 0; i < n; ) {
    const c = t.charCodeAt(i);
    if (c === 38 && t.charCodeAt(i + 1) === 35) {
      const ref = numericRef(t, i);
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
    // `0x5a` (a `0` that is no digit of a longer number or word: not `10x20`) or `\x5a`.
    if ((c === 92 || (c === 48 && (i === 0 || !isAlnum(t.charCodeAt(i - 1))))) && (t.charCodeAt(i + 1) | 32) === 120 && isHex(t.charCodeAt(i + 2)) && isHex(t.charCodeAt(i + 3))) {
      // The `, ` between this byte and the one before (nothing else in between): dropped too,
      // the pending run being just that gap.
      let gap = byteEnd >= 0 && run === byteEnd && i - byteEnd <= BYTE_GAP_MAX;
      for (let k = byteEnd; gap && k < i; k++) if (t.charCodeAt(k) !== 44 && t.charCodeAt(k) !== 32) gap = false;
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
 * A reference or prefixed byte still arriving at the end of `t.slice(0, end)`: `&`, `&#`, `&#x`
 * and up to REF_DIGITS_MAX digits without their `;`; `\`, `0` (no digit of a longer number or
 * word), `\x`, `0x` and one hex digit, each with the `, ` before it after a whole prefixed byte
 * (dropped when the next byte is whole), and that `, ` alone. Read on the last units only (a
 * bounded regex, whatever the text's length).
 */
const PARTIAL_ENCODED = /(?:&(?:#(?:[xX][0-9a-fA-F]{0,8}|[0-9]{1,8})?)?|(?:(?<=[0\\][xX][0-9a-fA-F]{2,})[, ]{0,2})?(?:\\(?:[xX][0-9a-fA-F]?)?|(?<![0-9A-Za-z])0(?:[xX][0-9a-fA-F]?)?)?)$/;
const PARTIAL_ENCODED_MAX = 2 + 1 + REF_DIGITS_MAX;

/** Where an encoded character still arriving at `end` begins in `t` (PARTIAL_ENCODED), or `end`. */
export function partialEncodedStart(t: string, end = t.length): number {
  if (end === 0) return end;
  // Enough units before the longest partial for its lookbehinds (a byte's `0x` and digits).
  const from = Math.max(0, end - PARTIAL_ENCODED_MAX - 8);
  const m = PARTIAL_ENCODED.exec(t.slice(from, end));
  return m === null ? end : from + m.index;
}
