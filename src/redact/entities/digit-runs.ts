/**
 * One pass that finds "digit chunks": digit groups joined by short separators (spaces, dashes,
 * dots, parentheses, a line break), with an optional leading `+`. Card, SSN and phone detectors
 * all read these chunks, so digit groups split by spaces, dashes, dots or line breaks are joined
 * once, and nothing glued to letters (UUIDs, git SHAs, identifiers, base64) ever starts a chunk.
 *
 * Linear: every character is visited a bounded number of times.
 */
import type { Finding } from '../types.js';
import { isAlphaCode, isDigitCode, isWordCode } from './util.js';

export interface DigitChunk {
  /** Span in the scanned text (from the `+` or first digit to the last digit). */
  start: number;
  end: number;
  plus: boolean;
  /** Start and end offset of each digit group. */
  groupStarts: number[];
  groupEnds: number[];
  /** True when a separator between groups i and i+1 holds a line break. */
  breakAfter: boolean[];
  /** The separator characters between groups i and i+1 (for shape checks). */
  seps: string[];
  /** Chunk directly followed by a letter (e.g. `x123` phone extension, or an identifier). */
  letterAfter: boolean;
  /**
   * Followed by '.' or ':' and a digit, a thousands or decimal comma (',' and a digit after a
   * group of at most three), '_', '@', '%' or '/': part of a larger token.
   */
  glued: boolean;
  /**
   * For each separator, whether it was written as a percent escape or a form body's '+' (read
   * in a decoded view, normalize.ts): its kind says nothing about the number's layout. null
   * when the text was read as written.
   */
  decodedSeps: boolean[] | null;
  /**
   * The first group of an amount's integer part written in thousands right before a decimal
   * comma after the chunk ("06 12 34 56 78 1 234 567,89": the "234"); the number of groups when
   * there is none. See decimalCommaAmount.
   */
  amountFrom: number;
  /** The chunk's cards, found once for the card and phone detectors (credit-card.ts chunkCards); null until then. */
  cards: readonly Finding[] | null;
}

/** Unit `k` of the scanned text was decoded (normalize.ts decodedUnit); absent: none was. */
export type DecodedAt = (k: number) => boolean;

const MAX_SEP = 3;
/** More groups than any entity has; longer runs are cut (and so linear). */
const MAX_GROUPS = 64;
const scratchStarts: number[] = new Array<number>(MAX_GROUPS).fill(0);
const scratchEnds: number[] = new Array<number>(MAX_GROUPS).fill(0);
const scratchBreak: boolean[] = new Array<boolean>(MAX_GROUPS).fill(false);

function isSepCode(c: number): boolean {
  // space, tab, CR, LF, '-', '.', '(', ')'
  return c === 32 || c === 9 || c === 13 || c === 10 || c === 45 || c === 46 || c === 40 || c === 41;
}

/**
 * Words that name the number glued to them with a dash ("card-4111 1111 1111 1111",
 * "SSN-536-22-1234"): a label, not an identifier's prefix like "ORD-" or "INV-".
 */
const DASH_LABELS = new Set(['card', 'cc', 'visa', 'amex', 'mastercard', 'ssn', 'tel', 'phone', 'mobile', 'cell', 'fax', 'ip']);
/** Longest word in DASH_LABELS: longer words are not read. */
const DASH_LABEL_MAX = 10;

/** The letters that end at `end` (exclusive) form a whole word that is a dash label. */
function dashLabelBefore(text: string, end: number): boolean {
  let s = end;
  while (s > 0 && end - s <= DASH_LABEL_MAX && isAlphaCode(text.charCodeAt(s - 1))) s--;
  if (s === end || end - s > DASH_LABEL_MAX || (s > 0 && isWordCode(text.charCodeAt(s - 1)))) return false;
  return DASH_LABELS.has(text.slice(s, end).toLowerCase());
}

/** Digits in a row from `from` going by `step` (+1 or -1), counted up to `max`. */
function digitsInRow(text: string, from: number, step: number, max: number): number {
  let n = 0;
  for (let k = from; n < max && k >= 0 && k < text.length && isDigitCode(text.charCodeAt(k)); k += step) n++;
  return n;
}

/**
 * The comma at `comma`, between digits, separates thousands ("1,234,567", "12,345.67"): at most
 * three digits before it and exactly three after, which do not go on as the head of a longer
 * number ("100,415-555-2671" is a CSV row, "10.0.0.1,192.168.1.1" a list of addresses). A
 * 16-digit card before a comma, or one after it, is a field of a row ("4111111111111111,100",
 * "1,4111111111111111"), not a part of a number.
 */
function thousandsComma(text: string, comma: number): boolean {
  if (digitsInRow(text, comma - 1, -1, 4) > 3 || digitsInRow(text, comma + 1, 1, 4) !== 3) return false;
  let k = comma + 4;
  const n = text.length;
  if (k + 1 >= n || !isSepCode(text.charCodeAt(k)) || !isDigitCode(text.charCodeAt(k + 1))) return true;
  if (text.charCodeAt(k) !== 46) return false;
  // A decimal fraction may follow ("1,234.56"), a second dot may not ("1,192.168.1.1").
  k++;
  while (k < n && isDigitCode(text.charCodeAt(k))) k++;
  return !(k + 1 < n && text.charCodeAt(k) === 46 && isDigitCode(text.charCodeAt(k + 1)));
}

/**
 * The `groups` digit groups in the scratch arrays are one number written in thousands: 1 to 3
 * digits, then groups of exactly 3 after single spaces or dots ("1 234 567", "1.234.567").
 */
function thousandsShaped(text: string, groups: number): boolean {
  if (scratchEnds[0]! - scratchStarts[0]! > 3) return false;
  for (let g = 1; g < groups; g++) {
    if (scratchEnds[g]! - scratchStarts[g]! !== 3 || scratchStarts[g]! - scratchEnds[g - 1]! !== 1) return false;
    const sep = text.charCodeAt(scratchEnds[g - 1]!);
    if (sep !== 32 && sep !== 46) return false;
  }
  return true;
}

/**
 * Where the chunk of `groups` scratch groups, ending at `end`, is followed by a decimal comma
 * (',' and one or two digits that no further digit, ',' or '.' and digit go on from: "567,89
 * EUR", not a CSV row's ",100" or ",12,2027"), the first of the groups of exactly three digits
 * joined by single spaces or dots that end the chunk, when they read as an amount's integer part
 * written in thousands: two such groups or more, or one after a group of one to three digits
 * ("1 234 567,89", "78 567,89"). Else `groups`. The group before the threes is left out: it may
 * as well be a phone's last ("06 12 34 56 78 234 567,89"), so a phone reading may take an
 * amount's lead ("415 555 2671 12 345 678,90"): a digit masked too many rather than a phone's
 * digit left in clear. A '+' chunk's first two groups are a
 * country code and a phone's national digits, never an amount's ("+34 610 721 399,50").
 * Only a candidate: a phone's own last groups are threes too ("0170 123 456,78"), and the
 * phone search takes the amount only where that leaves no phone digit in clear (phone.ts
 * scanBesideAmount); the card search refuses every window over it.
 */
function decimalCommaAmount(text: string, groups: number, end: number, plus: boolean): number {
  const n = text.length;
  if (text.charCodeAt(end) !== 44) return groups;
  const fraction = digitsInRow(text, end + 1, 1, 3);
  if (fraction === 0 || fraction > 2) return groups;
  const k = end + 1 + fraction;
  const c = k < n ? text.charCodeAt(k) : 0;
  if ((c === 44 || c === 46) && k + 1 < n && isDigitCode(text.charCodeAt(k + 1))) return groups;
  let from = groups - 1;
  if (scratchEnds[from]! - scratchStarts[from]! !== 3) return groups;
  while (from > 0 && joinedAsThousands(text, from) && scratchEnds[from - 1]! - scratchStarts[from - 1]! === 3) from--;
  const lead = from > 0 && joinedAsThousands(text, from) && scratchEnds[from - 1]! - scratchStarts[from - 1]! <= 3;
  if (groups - from < 2 && !lead) return groups;
  return plus && from < 2 ? groups : from;
}

/** Scratch groups g - 1 and g are joined by one space or one dot, as thousands are. */
function joinedAsThousands(text: string, g: number): boolean {
  if (scratchStarts[g]! - scratchEnds[g - 1]! !== 1) return false;
  const sep = text.charCodeAt(scratchEnds[g - 1]!);
  return sep === 32 || sep === 46;
}

/** Longest key read back from a colon (longer tokens are not keys). */
const KEY_MAX = 32;

/**
 * The word that ends at `end` (exclusive) begins with a letter: a key such as "card1", "ipv4" or
 * "line_2", where a word of digits ("12", "2024-01-15T10") is a number's.
 */
function keyWordBefore(text: string, end: number): boolean {
  let s = end;
  while (s > 0 && end - s <= KEY_MAX && isWordCode(text.charCodeAt(s - 1))) s--;
  return s < end && end - s <= KEY_MAX && isAlphaCode(text.charCodeAt(s));
}

/**
 * Characters after which a '.' opens a number rather than ends a sentence: a line start or
 * space, an operator or separator, an opening bracket, a currency sign (".5", "x=.5", "(-.5",
 * "$.99", "|.5|"). After a word, a closing bracket or quote, or another '.' (an ellipsis), a '.'
 * may be a full stop.
 */
function opensNumber(c: number): boolean {
  // space, tab, CR, LF, '(', '[', '{', '<', '=', ':', ',', ';', '+', '-', '/', '|', '~', '$'
  if (c === 32 || c === 9 || c === 13 || c === 10 || c === 40 || c === 91 || c === 123 || c === 60 || c === 61) return true;
  if (c === 58 || c === 44 || c === 59 || c === 43 || c === 45 || c === 47 || c === 124 || c === 126 || c === 36) return true;
  return c === 0x20ac || c === 0xa3 || c === 0xa5; // € £ ¥
}

/**
 * The '.' at `dot`, right before a digit run, is a decimal point with no digit before it: the run
 * is a fraction (".567890123456"). Dots joining every group make one dotted number instead
 * (".415.555.2671"), as decimalPointAt reads them between digits.
 */
function leadingDecimalPoint(text: string, dot: number): boolean {
  if (dot > 0 && !opensNumber(text.charCodeAt(dot - 1))) return false;
  let e = dot + 1;
  while (e < text.length && isDigitCode(text.charCodeAt(e))) e++;
  return !(text.charCodeAt(e) === 46 && isDigitCode(text.charCodeAt(e + 1)));
}

/** Characters that, right before a digit run, mean it is part of something else. */
function rejectsLeft(text: string, i: number): boolean {
  if (i === 0) return false;
  const p = text.charCodeAt(i - 1);
  if (isWordCode(p)) return true;
  // '/', '+', '@', '#', '$', '%', '&', '^' (paths, base64, ids, prices, units).
  // Markdown ('|' tables, '*' bold, '`' code) is not in the list: PII sits in tables too, nor is
  // '\': after one, a number is still one (`C:\4111…`, an escaped backslash in JSON, `\+1 415…`).
  // A JSON escape's own digits (`\u0034`) follow a letter, which stops them.
  if (p === 47 || p === 43 || p === 64 || p === 35 || p === 36 || p === 37 || p === 38) return true;
  if (p === 94) return true;
  if (p === 0x20ac || p === 0xa3 || p === 0xa5) return true; // € £ ¥
  // A fraction written without its leading zero (".567890123456", "x = .5"): a number's digits,
  // though twelve of them may pass Luhn as a card (a '.' after a word is handled below).
  if (p === 46 && leadingDecimalPoint(text, i - 1)) return true;
  // '=' after a word is a key's ("card=4111...", "?ssn=536-22-1234&..."): the value is read like
  // one after a key's ':'. After anything else ("==", a line start) it stays glue.
  if (p === 61) return i < 2 || !isWordCode(text.charCodeAt(i - 2));
  if (i < 2) return false;
  const q = text.charCodeAt(i - 2);
  if (!isWordCode(q)) return false;
  // Punctuation glued to a word or a number on its left. A dot after a digit is inside one
  // token ("v1.2", "build.20240115.1234567"); after a letter it ends the word ("x.4111…",
  // "No.4111…", "rc.1": the digits are read on their own, as after a space). A dash glues
  // ("a716-4466", "ORD-2024"), unless the word names the number ("card-4111 ..."). A colon
  // after digits is a time or a port ("12:30", ":8080"), after a word a key ("card:4111",
  // "SSN:536-22-1234", "tel:+1..."), a word that begins with a letter and ends in a digit
  // included ("card1:4111...", "ipv4:192..."; after hex IPv6 groups such as "db8:" at most four
  // digits follow, no entity's length). A comma after digits is a
  // thousands separator only where the digits look like one number; otherwise, like a comma
  // after a word, it separates the fields of a CSV row.
  if (p === 46) return !isAlphaCode(q);
  if (p === 45) return isDigitCode(q) || q === 95 || !dashLabelBefore(text, i - 1);
  if (p === 58) return isDigitCode(q) && !keyWordBefore(text, i - 1);
  if (p === 44) return isDigitCode(q) && thousandsComma(text, i - 1);
  return false;
}

/** A Base58 address is one `\w` token of 26 to 35 characters (crypto.ts). */
const BASE58_MIN = 26;
const BASE58_MAX = 35;

/**
 * Whether the token at `start` has a Base58 address's length. A short one ("1st", "3pm", the
 * "1" of "1SSN") makes no chunk: in text full of such tokens, a chunk each was most of the scan's
 * garbage.
 */
function base58Sized(text: string, start: number): boolean {
  let e = start;
  const limit = Math.min(text.length, start + BASE58_MAX + 1);
  while (e < limit && isWordCode(text.charCodeAt(e))) e++;
  return e - start >= BASE58_MIN && e - start <= BASE58_MAX;
}

/** Where a digit run (or a `+`/`(` right before one) may start; the regex engine skips prose fast. */
const DIGIT_START = /[+(]?\d/g;

export interface DigitScan {
  chunks: DigitChunk[];
  /** Offsets of tokens that start with two letters and a digit ("GB82...", IBAN candidates). */
  letterPrefixed: number[];
}

export function scanDigits(text: string, decodedAt: DecodedAt | null = null): DigitScan {
  /** The scratch groups 0..3 are joined by single dots ("10.0.0.1"): an IPv4 address's shape. */
  const dotted4 = (): boolean => {
    for (let g = 0; g < 3; g++) if (scratchStarts[g + 1]! - scratchEnds[g]! !== 1 || text.charCodeAt(scratchEnds[g]!) !== 46) return false;
    return true;
  };
  const chunks: DigitChunk[] = [];
  const letterPrefixed: number[] = [];
  const n = text.length;
  let i = 0;
  DIGIT_START.lastIndex = 0;
  for (;;) {
    DIGIT_START.lastIndex = i;
    const m = DIGIT_START.exec(text);
    if (m === null) break;
    i = m.index;
    const c = text.charCodeAt(i);
    let start = i;
    let plus = false;
    if (c === 43 || c === 40) {
      // "+4", "(4": the digit follows; "+(" handled by the next exec position.
      plus = c === 43;
      if (c === 40 && i > 0 && text.charCodeAt(i - 1) === 43) {
        start = i - 1;
        plus = true;
      }
      i++;
    }
    if (rejectsLeft(text, start)) {
      // Two letters at a token start then digits: an IBAN candidate (kept for the IBAN detector).
      if (
        start === i &&
        start >= 2 &&
        isAlphaCode(text.charCodeAt(start - 1)) &&
        isAlphaCode(text.charCodeAt(start - 2)) &&
        (start === 2 || !isWordCode(text.charCodeAt(start - 3)))
      ) {
        letterPrefixed.push(start - 2);
      }
      // Skip the whole word-ish token so no later digit of it starts a chunk.
      while (i < n && isWordCode(text.charCodeAt(i))) i++;
      continue;
    }
    // Group bounds go to scratch arrays first: most digit runs in prose ("42", "2024") can be no
    // entity, and materialising a chunk for each would only feed the garbage collector.
    let groups = 0;
    let digits = 0;
    let j = i;
    for (;;) {
      const gs = j;
      while (j < n && isDigitCode(text.charCodeAt(j))) j++;
      scratchStarts[groups] = gs;
      scratchEnds[groups] = j;
      digits += j - gs;
      // Try a separator followed by another digit group.
      let k = j;
      let brk = false;
      while (k < n && k - j < MAX_SEP && isSepCode(text.charCodeAt(k))) {
        if (text.charCodeAt(k) === 10) {
          if (brk) break;
          brk = true;
        }
        k++;
      }
      scratchBreak[groups] = brk;
      groups++;
      if (k > j && k < n && isDigitCode(text.charCodeAt(k)) && groups < MAX_GROUPS) {
        j = k;
        continue;
      }
      break;
    }
    const end = scratchEnds[groups - 1]!;
    const after = end < n ? text.charCodeAt(end) : 0;
    const letterAfter = isAlphaCode(after);
    const first = text.charCodeAt(scratchStarts[0]!);
    // Worth a chunk: 7+ digits (phones, cards, SSNs), four groups joined by dots (IPv4), or a
    // 1/3 glued to letters in a token as long as a Bitcoin address. (Four short groups joined
    // otherwise, "a 9 9 9 9 " repeated, made a chunk each for no detector: 3.6 MB per CPU-second.)
    if (digits >= 7 || (groups === 4 && dotted4()) || (letterAfter && groups === 1 && (first === 49 || first === 51) && base58Sized(text, scratchStarts[0]!))) {
      const groupStarts = scratchStarts.slice(0, groups);
      const groupEnds = scratchEnds.slice(0, groups);
      const breakAfter = scratchBreak.slice(0, groups - 1);
      const seps: string[] = [];
      for (let g = 0; g + 1 < groups; g++) seps.push(text.slice(groupEnds[g], groupStarts[g + 1]));
      const decodedSeps = decodedAt === null ? null : decodedSeparators(groupStarts, groupEnds, decodedAt);
      // "3.5%" or "10.0.0.1:8080" or "1 234 567,89": digits glued to more digits or a unit. A
      // comma glues only to a number written in thousands (a decimal comma or more thousands
      // follow); after other digits ("4111111111111111,100", "06 30 51 03 21,100") it ends a field.
      const digitAfter = end + 1 < n && isDigitCode(text.charCodeAt(end + 1));
      const glued =
        after === 95 ||
        after === 64 ||
        after === 37 ||
        after === 47 ||
        ((after === 46 || after === 58) && digitAfter) ||
        (after === 44 && digitAfter && !plus && thousandsShaped(text, groups));
      const amountFrom = after === 44 && !glued ? decimalCommaAmount(text, groups, end, plus) : groups;
      chunks.push({ start, end, plus, groupStarts, groupEnds, breakAfter, seps, letterAfter, glued, decodedSeps, amountFrom, cards: null });
    }
    i = end;
    // Do not restart inside the token that glued on.
    while (i < n && isWordCode(text.charCodeAt(i))) i++;
  }
  return { chunks, letterPrefixed };
}

/** For each separator between the groups, whether every unit of it was decoded. */
function decodedSeparators(groupStarts: readonly number[], groupEnds: readonly number[], decodedAt: DecodedAt): boolean[] {
  const out: boolean[] = [];
  for (let g = 0; g + 1 < groupStarts.length; g++) {
    let all = true;
    for (let k = groupEnds[g]!; k < groupStarts[g + 1]! && all; k++) all = decodedAt(k);
    out.push(all);
  }
  return out;
}

/**
 * Separator `s` of a chunk is a decimal point: a bare '.' with no bare '.' on either side of its
 * two groups ("0.567890123456", "4111111111111111.00"). When every group is joined by one, the
 * dots separate groups of one number instead ("4111.1111.1111.1111", "1.415.555.2671"); a '.'
 * with a space is a full stop.
 */
function decimalPointAt(ch: DigitChunk, s: number): boolean {
  // A '.' written as an escape (`4111%2d1111 1111%2e1111`) is a separator hidden, not a decimal
  // point: no encoder escapes a number's dot.
  return ch.seps[s] === '.' && ch.seps[s - 1] !== '.' && ch.seps[s + 1] !== '.' && ch.decodedSeps?.[s] !== true;
}

/**
 * Groups [g0, g1] of a chunk are, hold or touch a decimal number's integer or fractional part: a
 * decimal point inside them or right next to them, or an amount's groups before a decimal comma
 * (from `amountFrom` on: the chunk's by default; the phone search passes the one it settled on,
 * see phone.ts scanBesideAmount). Its digits, though they may pass Luhn or look like a phone,
 * are a number's.
 */
export function touchesDecimal(ch: DigitChunk, g0: number, g1: number, amountFrom = ch.amountFrom): boolean {
  if (g1 >= amountFrom) return true;
  const last = Math.min(g1, ch.seps.length - 1);
  for (let s = Math.max(g0 - 1, 0); s <= last; s++) if (decimalPointAt(ch, s)) return true;
  return false;
}

/** Digits of groups [g0, g1] of a chunk. */
export function chunkDigits(text: string, ch: DigitChunk, g0: number, g1: number): string {
  let s = '';
  for (let g = g0; g <= g1; g++) s += text.slice(ch.groupStarts[g], ch.groupEnds[g]);
  return s;
}
