/**
 * Folding for detection: detectors run on a folded copy of the text so that obfuscations do not
 * walk past them — NFKC (fullwidth letters and digits, ligatures, circled and mathematical digits),
 * zero-width, format and other default-ignorable characters removed (and combining marks after a
 * digit; Unicode tag characters, which mirror ASCII, read as that ASCII), digits of every script mapped to ASCII, exotic spaces and dashes mapped to ' ' and '-',
 * ASCII controls read as line breaks (VT, FF) or dropped (see NEEDS_FOLD). (Digit groups split by spaces, dashes, dots or line
 * breaks are joined by the digit-run scanner, which reads the folded text.)
 *
 * Every folded character remembers the original code point it came from, so findings map back to
 * exact UTF-16 offsets in the original. Printable ASCII text (the common case) is returned as is with
 * no map at all: the check is one regex test.
 *
 * Percent escapes (`%2B14155552671`, `jane.doe%40example.com`, `4111%201111%201111%201111`: query
 * strings, form bodies, pasted logs), HTML character references (`jane.doe&#64;example.com`,
 * `4111&nbsp;1111…`: web pages, HTML mail), and a form body's '+' between digits (`4111+1111+1111+1111`),
 * are not decoded here but in a second view of the text
 * (foldPercentDecoded), which the scanner reads in addition to this one: a decoded `%20` is a space,
 * which would end a URL or a password value that the detectors read whole in the text as written.
 */
import { isHexCode } from './entities/util.js';

export interface FoldedText {
  /** The text detectors see. */
  readonly text: string;
  /** Original start offset of each folded UTF-16 unit; null when text === original. */
  readonly starts: Int32Array | null;
  /** Original end offset (exclusive) of each folded UTF-16 unit; null when text === original. */
  readonly ends: Int32Array | null;
  /**
   * Where format characters were dropped between two visible units: for each such place, the
   * folded offset the next unit lands on, then the original span of the dropped run (three
   * numbers per place). Absent when there is none. See spacedView.
   */
  readonly joins?: readonly number[];
}

// What fold rewrites: anything but printable ASCII, tab, line feed and carriage return. The ASCII
// controls are read as a model reads them, not as the glue a detector sees: a vertical tab (Word's
// manual line break) and a form feed (a PDF extraction's page break) are line breaks (as U+2028
// is), and every other control (NUL, ESC, the separators 0x1C-0x1F, DEL, the C1 range) is dropped
// like a format character, read as a space where it sat between a word and a number (see
// spacedView). Else `4111\v1111\v1111\v1111` or `536\f22\f1234` went through whole.
const NEEDS_FOLD = /[^\t\n\r\u0020-\u007e]/u;
const CONTROL_CHAR = /^\p{Cc}$/u;
// Format characters (zero-width space/joiners, BOM, soft hyphen...) and every other default-
// ignorable code point (variation selectors, the combining grapheme joiner, Hangul fillers...):
// what Unicode says renders as nothing when not supported, so it can sit inside a number unseen.
const FORMAT_CHAR = /^[\p{Cf}\p{Default_Ignorable_Code_Point}]$/u;
// U+2800 (Braille pattern blank) renders as a space without being one.
const SPACE_CHAR = /^[\p{Zs}\u2800]$/u;
// Combining marks (a non-spacing accent, an enclosing keycap) are dropped after a digit only:
// "4\u0301" is a 4, while the accent of a letter ("e\u0301") is part of the word.
const COMBINING_MARK = /^[\p{Mn}\p{Me}]$/u;
const DASH_CHAR = /^[\u2010-\u2015\u2212\ufe58\ufe63\uff0d\u2043]$/u;
const DECIMAL_DIGIT = /^\p{Nd}$/u;

/** Folding of one non-ASCII code point; '' = drop. Cached: the set of code points seen is small. */
const foldCache = new Map<number, string>();

/** Value of a decimal digit of any script: Unicode keeps each script's 0..9 contiguous. */
function digitValue(cp: number): number {
  // Walk back to the first digit of this contiguous run of Nd code points.
  let zero = cp;
  while (zero > 0 && DECIMAL_DIGIT.test(String.fromCodePoint(zero - 1)) && cp - zero < 9) zero--;
  // Runs of more than ten (e.g. mathematical digits) restart every ten.
  return (cp - zero) % 10;
}

function foldCodePoint(cp: number): string {
  const cached = foldCache.get(cp);
  if (cached !== undefined) return cached;
  const ch = String.fromCodePoint(cp);
  let out: string;
  if (cp === 0x2028 || cp === 0x2029 || cp === 0x85 || cp === 0x0b || cp === 0x0c) out = '\n';
  // Unicode tag characters (U+E0021-U+E007E) mirror printable ASCII and render as nothing, yet a
  // model reads them as the ASCII they mirror ("ASCII smuggling"): a card or an address written
  // in them was dropped as invisible and went upstream whole. Read as that ASCII. The tag space
  // U+E0020 is dropped as before, so it is read both ways: as nothing, and (spacedView, between
  // two visible units) as a space. (An emoji flag's tags, `🏴` + `gbeng`, read as letters; its
  // cancel tag U+E007F is dropped, which ends the word in the spaced reading.)
  else if (cp >= 0xe0021 && cp <= 0xe007e) out = String.fromCharCode(cp - 0xe0000);
  else if (FORMAT_CHAR.test(ch) || CONTROL_CHAR.test(ch)) out = '';
  else if (SPACE_CHAR.test(ch)) out = ' ';
  else if (DASH_CHAR.test(ch)) out = '-';
  else if (DECIMAL_DIGIT.test(ch)) {
    const nfkc = ch.normalize('NFKC');
    out = nfkc.length === 1 && nfkc >= '0' && nfkc <= '9' ? nfkc : String(digitValue(cp));
  } else {
    out = ch.normalize('NFKC');
  }
  if (foldCache.size < 65536) foldCache.set(cp, out);
  return out;
}

function isAsciiDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAsciiAlnum(c: number): boolean {
  return isAsciiDigit(c) || ((c | 32) >= 97 && (c | 32) <= 122);
}

export function fold(original: string): FoldedText {
  if (!NEEDS_FOLD.test(original)) return { text: original, starts: null, ends: null };
  const n = original.length;
  let starts = new Int32Array(n + 16);
  let ends = new Int32Array(n + 16);
  let j = 0;
  const ensure = (extra: number): void => {
    if (j + extra <= starts.length) return;
    const cap = Math.max(starts.length * 2, j + extra + 16);
    const ns = new Int32Array(cap);
    ns.set(starts.subarray(0, j));
    starts = ns;
    const ne = new Int32Array(cap);
    ne.set(ends.subarray(0, j));
    ends = ne;
  };
  const parts: string[] = [];
  let runStart = 0; // start of the pending run of ASCII copied verbatim
  let afterDigit = false; // the last character written to the folded text is a digit
  // Format characters dropped since the last unit written (original span), and the places
  // where such a run sits between two visible units (see FoldedText.joins).
  let dropFrom = -1;
  let dropTo = -1;
  let joins: number[] | null = null;
  let lastUnit = 32; // the last unit written to the folded text (a space: none yet)
  const noteJoin = (next: number): void => {
    if (dropFrom < 0) return;
    // Between two visible units, one a letter or digit (a word or a number it could glue on;
    // not the joiner of an emoji sequence, which stays one picture).
    if (!isSpaceCode(lastUnit) && !isSpaceCode(next) && (isAsciiAlnum(lastUnit) || isAsciiAlnum(next))) (joins ??= []).push(j, dropFrom, dropTo);
    dropFrom = -1;
  };
  const flushRun = (to: number): void => {
    if (runStart >= to) return;
    noteJoin(original.charCodeAt(runStart));
    lastUnit = original.charCodeAt(to - 1);
    afterDigit = isAsciiDigit(lastUnit);
    parts.push(original.slice(runStart, to));
    ensure(to - runStart);
    for (let k = runStart; k < to; k++, j++) {
      starts[j] = k;
      ends[j] = k + 1;
    }
  };
  for (let i = 0; i < n; ) {
    const c = original.charCodeAt(i);
    if (c < 0x7f && (c >= 0x20 || c === 9 || c === 10 || c === 13)) {
      i++;
      continue;
    }
    flushRun(i);
    const cp = original.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    const folded = afterDigit && COMBINING_MARK.test(String.fromCodePoint(cp)) ? '' : foldCodePoint(cp);
    if (folded.length > 0) {
      noteJoin(folded.charCodeAt(0));
      lastUnit = folded.charCodeAt(folded.length - 1);
      afterDigit = isAsciiDigit(lastUnit);
      parts.push(folded);
      ensure(folded.length);
      for (let k = 0; k < folded.length; k++, j++) {
        starts[j] = i;
        ends[j] = i + width;
      }
    } else if (FORMAT_CHAR.test(String.fromCodePoint(cp)) || CONTROL_CHAR.test(String.fromCodePoint(cp))) {
      if (dropFrom < 0) dropFrom = i;
      dropTo = i + width;
    }
    i += width;
    runStart = i;
  }
  flushRun(n);
  const out = { text: parts.join(''), starts: starts.subarray(0, j), ends: ends.subarray(0, j) };
  return joins === null ? out : { ...out, joins };
}

/**
 * The folded text with a space where format characters were dropped between two visible units
 * (FoldedText.joins), each space mapped to the characters it stands for; null when there is no
 * such place. Dropping them sees through `4111\u200b1111…`, but also glues `with\u200b4111…`
 * or `jane.doe@example.com\u200b4111…` into one word, which no detector reads as an entity:
 * the scanner reads this view too, as if each were a space, and keeps what only it finds.
 */
export function spacedView(folded: FoldedText): FoldedText | null {
  const joins = folded.joins;
  if (joins === undefined || joins.length === 0 || !folded.starts || !folded.ends) return null;
  const n = folded.text.length + joins.length / 3;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const parts: string[] = [];
  let from = 0;
  let j = 0;
  const copyTo = (to: number): void => {
    parts.push(folded.text.slice(from, to));
    starts.set(folded.starts!.subarray(from, to), j);
    ends.set(folded.ends!.subarray(from, to), j);
    j += to - from;
    from = to;
  };
  for (let k = 0; k < joins.length; k += 3) {
    copyTo(joins[k]!);
    parts.push(' ');
    starts[j] = joins[k + 1]!;
    ends[j] = joins[k + 2]!;
    j++;
  }
  copyTo(folded.text.length);
  return { text: parts.join(''), starts, ends };
}

/**
 * The unit of `view` whose span in the original holds `at` strictly inside (a JSON or percent
 * escape, a character folded from several units), or -1 when `at` is on a unit's edge.
 */
export function unitAround(view: FoldedText, at: number): number {
  const starts = view.starts;
  const ends = view.ends;
  if (starts === null || ends === null) return -1;
  let lo = 0;
  let hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid]! <= at) lo = mid + 1;
    else hi = mid;
  }
  const k = lo - 1;
  return k >= 0 && starts[k]! < at && at < ends[k]! ? k : -1;
}

/** Maps a folded span [start, end) back to the original text. */
export function toOriginalSpan(folded: FoldedText, start: number, end: number): [number, number] {
  if (!folded.starts || !folded.ends) return [start, end];
  if (end <= start) {
    const at = start < folded.starts.length ? folded.starts[start]! : folded.ends.length ? folded.ends[folded.ends.length - 1]! : 0;
    return [at, at];
  }
  return [folded.starts[start]!, folded.ends[end - 1]!];
}

/**
 * A percent escape of printable ASCII, a tab or a line break: what a URL or form encoder writes
 * for '+', '@', ' ', '-', '.', quotes, parentheses, ':'... Escapes of other bytes (UTF-8 of
 * non-ASCII, control characters) stay as written.
 */
const PERCENT_ESCAPE = /%(?:[2-6][0-9A-Fa-f]|7[0-9A-Ea-e]|0[9AaDd])/g;

function isUpperCode(c: number): boolean {
  return c >= 65 && c <= 90;
}

/**
 * Longest chain of '+'-joined groups read back from a '+' (an IBAN has 9 groups of 4), counted
 * for each number of a value apart: the count starts again past an escape ("+%2B33+6+…", the
 * next number's '+'; "+%28415%29+555", a '(' and ')').
 */
const FORM_CHAIN_MAX = 12;
/** Groups read back from a '+' in all, across escapes: bounds one read of a long value. */
const FORM_WALK_MAX = 4 * FORM_CHAIN_MAX;

/**
 * A form body's '+' is one a form body (application/x-www-form-urlencoded) wrote for a space between
 * digit groups ("card=4111+1111+1111+1111", "phone=%2B1+415+555+2671"): a digit after it (or an
 * escape and a digit: "tel=0612345678+%2B33+6+…", a '+' number after another), and before it a
 * chain of '+'-joined digit groups (joined across such an escape too) that begins a form value,
 * right after a '=' (or after '=' and one escape, or a leading '+'; the first group may be an
 * IBAN's, "DE89", with its two capitals). A form body writes every value after a '=': elsewhere
 * a '+' is a phone's prefix ("+1 415 ..."), an operator ("2+2"), or base64's, and reading digits
 * and '+' as digit groups would give such text a second, decoded scan for nothing (64 KB of
 * "9+9+9+9 " scanned at 6 MB per CPU-second instead of 40). See formPluses, which finds them.
 *
 * This: how many '+'-joined digit groups end at the '+' at `p` since the last escape of the
 * chain (at most FORM_CHAIN_MAX), read back to the start of a form value, or 0 when the chain
 * does not begin one (or has more than FORM_CHAIN_MAX groups between escapes, more than
 * FORM_WALK_MAX in all, or a group of more than 34 digits).
 */
function formChainGroups(text: string, p: number): number {
  let first = 0; // the groups of the number ending at `p`, once an escape before it is crossed
  let groups = 0; // the groups since the last escape crossed
  for (let walked = 0; walked < FORM_WALK_MAX; walked++) {
    const end = groupEndBeforePlus(text, p);
    if (end < 0) return 0;
    if (end !== p) {
      first ||= groups;
      groups = 0;
    }
    const k = groupStartBefore(text, end);
    if (k < 0 || ++groups > FORM_CHAIN_MAX) return 0;
    const step = chainStep(text, k);
    if (step !== CHAIN_GOES_ON) return step === CHAIN_BEGINS_VALUE ? first || groups : 0;
    if (text.charCodeAt(k - 1) === 43) p = k - 1;
    else {
      first ||= groups;
      groups = 0;
      p = k - 4;
    }
  }
  return 0;
}

/**
 * End of the digit group that a form '+' at `p` follows: `p`, or `p - 3` past an escape written
 * right after the group ("%28415%29+555": a ')', "…78%2C+%2B33": a ','); -1 when none ends there.
 */
function groupEndBeforePlus(text: string, p: number): number {
  if (p >= 4 && text.charCodeAt(p - 3) === 37 && isHexCode(text.charCodeAt(p - 2)) && isHexCode(text.charCodeAt(p - 1))) {
    return isAsciiDigit(text.charCodeAt(p - 4)) ? p - 3 : -1;
  }
  return p >= 1 && isAsciiDigit(text.charCodeAt(p - 1)) ? p : -1;
}

/**
 * Start of the digit group that ends at `p` (1 to 34 digits), or -1. An escape written right
 * before it is no part of it, though its two hex digits may be digits ("%28415": "415").
 */
function groupStartBefore(text: string, p: number): number {
  let k = p;
  while (k > 0 && p - k <= 34 && isAsciiDigit(text.charCodeAt(k - 1))) k--;
  if (k > 0 && text.charCodeAt(k - 1) === 37 && p - k > 2) k += 2;
  return k === p || p - k > 34 ? -1 : k;
}

const CHAIN_GOES_ON = 0;
const CHAIN_BEGINS_VALUE = 1;
const CHAIN_BEGINS_ELSEWHERE = 2;

/**
 * The digit group at `k` follows an escape that follows a form '+' after a digit group
 * ("0199+%2B33", "78%2C+%2B33"): a form value's space, then a character the form escaped (the
 * '+' of a phone number written after another number, a '('). The chain goes on from that '+',
 * at k - 4.
 */
function escapeAfterFormPlus(text: string, k: number): boolean {
  return (
    k >= 5 &&
    text.charCodeAt(k - 3) === 37 &&
    isHexCode(text.charCodeAt(k - 2)) &&
    isHexCode(text.charCodeAt(k - 1)) &&
    text.charCodeAt(k - 4) === 43 &&
    groupEndBeforePlus(text, k - 4) >= 0
  );
}

/** A digit at `i`, or an escape there with a digit after it ("%2B33"): what a form '+' may be followed by. */
function digitOrEscapedAt(text: string, i: number): boolean {
  if (i >= text.length) return false;
  if (isAsciiDigit(text.charCodeAt(i))) return true;
  return i + 3 < text.length && text.charCodeAt(i) === 37 && isHexCode(text.charCodeAt(i + 1)) && isHexCode(text.charCodeAt(i + 2)) && isAsciiDigit(text.charCodeAt(i + 3));
}

/** What is before the digit group starting at `k` of a '+' chain. */
function chainStep(text: string, k: number): number {
  if (k >= 2 && isUpperCode(text.charCodeAt(k - 1)) && isUpperCode(text.charCodeAt(k - 2)) && beginsFormValue(text, k - 2)) return CHAIN_BEGINS_VALUE;
  if (escapeAfterFormPlus(text, k)) return CHAIN_GOES_ON;
  if (k === 0 || text.charCodeAt(k - 1) !== 43) return beginsFormValue(text, k) ? CHAIN_BEGINS_VALUE : CHAIN_BEGINS_ELSEWHERE;
  // A '+' before the group: another form '+' of the chain (a digit group before it, or one and
  // an escape: "%29+555"), or a leading one.
  if (groupEndBeforePlus(text, k - 1) < 0) return beginsFormValue(text, k - 1) ? CHAIN_BEGINS_VALUE : CHAIN_BEGINS_ELSEWHERE;
  return CHAIN_GOES_ON;
}

/**
 * A value starting at `k` is a form value's start: right after '=', or after '=' and one escape
 * ("=%2B1+415"). Format characters before the value are skipped: folding drops them, and one
 * after the '=' must not turn the rule off ("card=\u200b4111+1111…").
 */
function beginsFormValue(text: string, k: number): boolean {
  k = skipFormatBack(text, k);
  if (k >= 1 && text.charCodeAt(k - 1) === 61) return true;
  return k >= 4 && text.charCodeAt(k - 4) === 61 && text.charCodeAt(k - 3) === 37 && isHexCode(text.charCodeAt(k - 2)) && isHexCode(text.charCodeAt(k - 1));
}

/** `k` moved back over the format characters (FORMAT_CHAR) that end at it, a few at most. */
function skipFormatBack(text: string, k: number): number {
  for (let n = 0; n < 8 && k > 0; n++) {
    const low = text.charCodeAt(k - 1);
    const width = low >= 0xdc00 && low <= 0xdfff && k >= 2 && text.charCodeAt(k - 2) >= 0xd800 && text.charCodeAt(k - 2) <= 0xdbff ? 2 : 1;
    // ASCII is never a format character: most calls stop at the first test.
    if (low < 0x80 || !FORMAT_CHAR.test(text.slice(k - width, k))) break;
    k -= width;
  }
  return k;
}

/**
 * Offsets of the form body '+' (formChainGroups, a digit after it) in [from, to), in order; '+' found with indexOf. One
 * pass: a chain is read back once, at its first '+', and each later '+' of it adds its own group
 * to what the '+' before it found (a long "9+9+9+…" costs a step per '+', not twelve).
 */
function formPluses(original: string, from: number, to: number, out: number[]): void {
  let prev = -1;
  let prevGroups = 0;
  for (let i = original.indexOf('+', from); i >= 0 && i < to; i = original.indexOf('+', i + 1)) {
    const end = groupEndBeforePlus(original, i);
    if (end < 0) continue;
    const k = groupStartBefore(original, end);
    let groups: number;
    if (k < 0) groups = 0;
    else if (prev >= 0 && (k === prev + 1 || k === prev + 4) && chainStep(original, k) === CHAIN_GOES_ON) {
      // Past an escape (before the group or after it) the count starts again: another number.
      if (prevGroups === 0) groups = 0;
      else if (k === prev + 4 || end !== i) groups = 1;
      else groups = prevGroups < FORM_CHAIN_MAX ? prevGroups + 1 : 0;
    } else groups = formChainGroups(original, i);
    prev = i;
    prevGroups = groups;
    if (groups > 0 && digitOrEscapedAt(original, i + 1)) out.push(i);
  }
}

/**
 * How far a decoded window reaches on either side of an escape: past the longest value a
 * detector finds that may hold one (an e-mail address is at most 254 characters).
 */
const ESCAPE_REACH = 512;
/** How much further a window's edge may move to fall on whitespace instead of inside a word. */
const EDGE_SLACK = 64;

/** A stretch of the text around percent escapes, decoded (see percentDecodedWindows). */
export interface DecodedWindow {
  /** The stretch decoded, then folded, every unit mapped to the original text's offsets. */
  view: FoldedText;
  /** `view` with a space for format characters between two visible units (spacedView), or null. */
  spaced: FoldedText | null;
  /** The stretch, in the original text's offsets (end exclusive). */
  from: number;
  to: number;
}

/**
 * How near an escape a finding of a decoded window must be to count (see escapeNear): escapes
 * inside it, or just before it (`ssn%3A536-22-1234`, where the decoded ':' makes "ssn" a key).
 */
export const ESCAPE_NEAR = 32;

const ONE_ESCAPE = new RegExp(PERCENT_ESCAPE.source);

/**
 * Whether the original text holds an escape (or a form body's '+') within ESCAPE_NEAR of
 * [start, end). A finding of a decoded window with none near it reads the same text the plain
 * scan read, only with less context (the window's edge may cut off "order" before a number): the
 * plain scan's verdict stands for it.
 */
export function escapeNear(original: string, start: number, end: number): boolean {
  const from = Math.max(0, start - ESCAPE_NEAR);
  const near = original.slice(from, end + ESCAPE_NEAR);
  if (ONE_ESCAPE.test(near)) return true;
  for (let i = near.indexOf('&'); i >= 0; i = near.indexOf('&', i + 1)) if (htmlReferenceAt(near, i) > 0) return true;
  const pluses: number[] = [];
  formPluses(original, from, end + ESCAPE_NEAR, pluses);
  return pluses.length > 0;
}

function isSpaceCode(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}

/** Where a window wanting to start at `at` starts: just after whitespace, moved back at most EDGE_SLACK. */
function leftEdge(text: string, at: number): number {
  if (at <= 0) return 0;
  for (let i = at; i > 0 && i >= at - EDGE_SLACK; i--) if (isSpaceCode(text.charCodeAt(i - 1))) return i;
  return Math.max(0, at - EDGE_SLACK);
}

/** Where a window wanting to end at `at` ends: at whitespace, moved on at most EDGE_SLACK. */
function rightEdge(text: string, at: number): number {
  const n = text.length;
  if (at >= n) return n;
  for (let i = at; i < n && i <= at + EDGE_SLACK; i++) if (isSpaceCode(text.charCodeAt(i))) return i;
  return Math.min(n, at + EDGE_SLACK);
}

/**
 * The stretches of the text around its percent escapes (and form body '+'), each decoded (one
 * pass: `%2540` is `%40`) and folded, with every unit mapped to the original (an escape's
 * character spans its three units). Escapes within reach of each other share a window. Only
 * these stretches are read a second time: one escape in a 1 MB text costs a kilobyte of
 * scanning, not a megabyte. null when the text holds no escape (a '%' and a '+' are looked for
 * with indexOf first: most texts cost a native scan or two).
 */
export function percentDecodedWindows(original: string): DecodedWindow[] | null {
  const at = decodablePositions(original);
  if (at.length === 0) return null;
  const windows: DecodedWindow[] = [];
  let first = 0;
  let hi = at[0]! + 3 + ESCAPE_REACH;
  for (let k = 1; k < at.length; k++) {
    if (at[k]! - ESCAPE_REACH <= hi) {
      hi = at[k]! + 3 + ESCAPE_REACH;
      continue;
    }
    windows.push(decodedWindow(original, at, first, k, hi));
    first = k;
    hi = at[k]! + 3 + ESCAPE_REACH;
  }
  windows.push(decodedWindow(original, at, first, at.length, hi));
  return windows;
}

/**
 * Where the text's escapes, HTML character references and form body '+' begin, in order. Found
 * apart: the escape regex skips from '%' to '%' natively, and '&' and '+' are found with indexOf
 * (one regex for all runs half as fast over prose, which holds none).
 */
function decodablePositions(original: string): readonly number[] {
  let at: number[] = [];
  if (original.indexOf('%') >= 0) {
    PERCENT_ESCAPE.lastIndex = 0;
    for (let m = PERCENT_ESCAPE.exec(original); m !== null; m = PERCENT_ESCAPE.exec(original)) at.push(m.index);
  }
  if (original.indexOf('&') >= 0) {
    const refs: number[] = [];
    for (let i = original.indexOf('&'); i >= 0; i = original.indexOf('&', i + 1)) if (htmlReferenceAt(original, i) > 0) refs.push(i);
    at = mergeSorted(at, refs);
  }
  if (original.indexOf('+') < 0) return at;
  const pluses: number[] = [];
  formPluses(original, 1, original.length, pluses);
  return mergeSorted(at, pluses);
}

function mergeSorted(a: number[], b: number[]): number[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  return a.concat(b).sort((x, y) => x - y);
}

/**
 * HTML character references (`jane.doe&#64;example.com`, `4111&nbsp;1111&nbsp;…`, `536&#45;22…`:
 * text copied from a web page, an HTML e-mail or a template's HTML), which a model reads as the
 * characters they stand for, as a browser does: decoded in the same windows as percent escapes.
 * Numeric ones of any code point (decimal or hex, the ';' optional, as HTML reads them; 0x80-0x9F
 * as windows-1252, `&#150;` a dash), named ones only where the name stands for a space, an
 * invisible character or ASCII punctuation (what separates or joins a value's parts: no name
 * stands for a digit or an ASCII letter), with their ';' (`&nbsp` and `&shy` without it too, as
 * HTML still reads them). Not `&amp;`, `&lt;`, `&gt;`, `&quot;` and `&apos;`: markup escaped for
 * display is full of them, each would cost a second scan of the text around it, and what they
 * stand for ends a value as the ';' written does (`&lt;jane@example.com&gt;`, `&quot;4111 …&quot;`).
 */
const HTML_NAMED: ReadonlyMap<string, number> = new Map([
  ['nbsp', 0xa0], ['ensp', 0x2002], ['emsp', 0x2003], ['emsp13', 0x2004], ['emsp14', 0x2005], ['numsp', 0x2007],
  ['puncsp', 0x2008], ['thinsp', 0x2009], ['ThinSpace', 0x2009], ['hairsp', 0x200a], ['VeryThinSpace', 0x200a],
  ['MediumSpace', 0x205f], ['NonBreakingSpace', 0xa0], ['Tab', 9], ['NewLine', 10],
  ['ZeroWidthSpace', 0x200b], ['NegativeVeryThinSpace', 0x200b], ['NegativeThinSpace', 0x200b], ['NegativeMediumSpace', 0x200b],
  ['NegativeThickSpace', 0x200b], ['zwj', 0x200d], ['zwnj', 0x200c], ['NoBreak', 0x2060], ['shy', 0xad], ['lrm', 0x200e],
  ['rlm', 0x200f], ['InvisibleTimes', 0x2062], ['it', 0x2062], ['InvisibleComma', 0x2063], ['ic', 0x2063], ['af', 0x2061],
  ['ApplyFunction', 0x2061],
  ['commat', 0x40], ['period', 0x2e], ['plus', 0x2b], ['hyphen', 0x2010], ['dash', 0x2010], ['ndash', 0x2013],
  ['mdash', 0x2014], ['minus', 0x2212], ['colon', 0x3a], ['lpar', 0x28], ['rpar', 0x29], ['sol', 0x2f], ['bsol', 0x5c],
  ['equals', 0x3d], ['num', 0x23], ['lowbar', 0x5f], ['UnderBar', 0x5f], ['comma', 0x2c], ['semi', 0x3b], ['excl', 0x21], ['quest', 0x3f], ['percnt', 0x25], ['dollar', 0x24], ['ast', 0x2a], ['midast', 0x2a], ['verbar', 0x7c],
  ['vert', 0x7c], ['VerticalLine', 0x7c], ['lsqb', 0x5b], ['lbrack', 0x5b], ['rsqb', 0x5d], ['rbrack', 0x5d],
  ['lcub', 0x7b], ['lbrace', 0x7b], ['rcub', 0x7d], ['rbrace', 0x7d], ['Hat', 0x5e], ['grave', 0x60], ['DiacriticalGrave', 0x60],
  ['fjlig', 0x66],
]);

/** windows-1252's characters for 0x80-0x9F, as HTML reads `&#128;`…`&#159;` (0: kept as the code). */
const WINDOWS_1252 = [
  0x20ac, 0, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0, 0x17d, 0,
  0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0, 0x17e, 0x178,
];

/** The longest named reference read (`NegativeVeryThinSpace`). */
const HTML_NAME_MAX = 21;

/** Code point of the HTML reference decoded last by htmlReferenceAt. */
let htmlCodePoint = 0;

/**
 * Length of the HTML character reference that begins at the '&' at `i` (its code point left in
 * htmlCodePoint), 0 when none does (`R&D`, `a=1&b=2`, an unknown name, `&#0;`, a surrogate).
 */
function htmlReferenceAt(text: string, i: number): number {
  const n = text.length;
  let k = i + 1;
  if (text.charCodeAt(k) === 35) {
    k++;
    const hex = (text.charCodeAt(k) | 32) === 120;
    if (hex) k++;
    // Leading zeros, any number of them, as HTML reads them (`&#0000000064;` is '@'): only the
    // significant digits are held to the bound below.
    while (text.charCodeAt(k) === 48) k++;
    const digitsFrom = k;
    let cp = 0;
    for (; k < n && k - digitsFrom < 8; k++) {
      const c = text.charCodeAt(k);
      const d = isAsciiDigit(c) ? c - 48 : hex && (c | 32) >= 97 && (c | 32) <= 102 ? (c | 32) - 87 : -1;
      if (d < 0) break;
      cp = cp * (hex ? 16 : 10) + d;
    }
    if (k === digitsFrom || cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    if (k < n && (isAsciiDigit(text.charCodeAt(k)) || (hex && isHexCode(text.charCodeAt(k))))) return 0;
    if (cp >= 0x80 && cp <= 0x9f) cp = WINDOWS_1252[cp - 0x80] || cp;
    htmlCodePoint = cp;
    return (text.charCodeAt(k) === 59 ? k + 1 : k) - i;
  }
  while (k < n && k - i <= HTML_NAME_MAX && isAsciiAlnum(text.charCodeAt(k))) k++;
  if (k === i + 1) return 0;
  if (text.charCodeAt(k) === 59) {
    const cp = HTML_NAMED.get(text.slice(i + 1, k));
    if (cp !== undefined) {
      htmlCodePoint = cp;
      return k + 1 - i;
    }
  }
  // Legacy names HTML reads without their ';' ("&nbsp4111"), as the start of a longer word too.
  for (const [name, cp] of LEGACY_NAMES) {
    if (text.startsWith(name, i + 1)) {
      htmlCodePoint = cp;
      return name.length + 1;
    }
  }
  return 0;
}

const LEGACY_NAMES: readonly (readonly [string, number])[] = [
  ['nbsp', 0xa0],
  ['shy', 0xad],
];

/**
 * Unit `k` of a decoded window's view (percentDecodedWindows) stands for an escape or a form
 * body's '+', not for a character written as such: an escape spans three units of the original
 * (a folded character one or two), and a '+' reads as a space only where it was decoded.
 */
export function decodedUnit(original: string, view: FoldedText, k: number): boolean {
  const start = view.starts![k]!;
  const c = original.charCodeAt(start);
  return (c === 37 && view.ends![k]! - start === 3) || (c === 38 && view.ends![k]! - start > 1) || (c === 43 && view.text.charCodeAt(k) === 32);
}

/**
 * The window around positions at[first..end) (escapes and form body '+', in order), from
 * ESCAPE_REACH before the first to `hi`, edges moved to whitespace, decoded and folded.
 */
function decodedWindow(original: string, at: readonly number[], first: number, end: number, hi: number): DecodedWindow {
  const from = leftEdge(original, at[first]! - ESCAPE_REACH);
  const to = rightEdge(original, hi);
  // Every decoded unit stands for at least as many units as written ("&#128512;", two units, for
  // seven): the view is never longer than the stretch.
  const starts = new Int32Array(to - from);
  const ends = new Int32Array(to - from);
  const parts: string[] = [];
  let j = 0;
  let last = from; // end of the last escape: the text after it is copied as it is
  const copyTo = (stop: number): void => {
    parts.push(original.slice(last, stop));
    for (let k = last; k < stop; k++, j++) {
      starts[j] = k;
      ends[j] = k + 1;
    }
  };
  for (let k = first; k < end; k++) {
    const p = at[k]!;
    const c = original.charCodeAt(p);
    const width = c === 43 ? 1 : c === 37 ? 3 : htmlReferenceAt(original, p);
    if (p < last || p + width > to) continue;
    copyTo(p);
    const unit = c === 43 ? ' ' : c === 37 ? String.fromCharCode(parseInt(original.slice(p + 1, p + 3), 16)) : String.fromCodePoint(htmlCodePoint);
    parts.push(unit);
    // A reference to a code point past U+FFFF decodes to two units, both standing for it.
    for (let u = 0; u < unit.length; u++, j++) {
      starts[j] = p;
      ends[j] = p + width;
    }
    last = p + width;
  }
  copyTo(to);
  const decoded: FoldedText = { text: parts.join(''), starts: starts.subarray(0, j), ends: ends.subarray(0, j) };
  const folded = fold(decoded.text);
  // Format characters between two visible units are read as spaces too, as in the whole text
  // (spacedView): "with\u200b4111%201111…" is a card in neither reading alone.
  const spaced = spacedView(folded);
  return { view: composeFolded(decoded, folded), spaced: spaced === null ? null : composeFolded(decoded, spaced), from, to };
}

/**
 * `inner`, a view of `outer.text`, as a view of the text `outer` maps to: both maps composed (a
 * unit's span in `outer.text`, then in the original).
 */
export function composeFolded(outer: FoldedText, inner: FoldedText): FoldedText {
  if (!inner.starts || !inner.ends) return { text: inner.text, starts: outer.starts, ends: outer.ends };
  if (!outer.starts || !outer.ends) return inner;
  const starts = new Int32Array(inner.starts.length);
  const ends = new Int32Array(inner.ends.length);
  for (let k = 0; k < starts.length; k++) {
    starts[k] = outer.starts[inner.starts[k]!]!;
    ends[k] = outer.ends[inner.ends[k]! - 1]!;
  }
  return { text: inner.text, starts, ends };
}
