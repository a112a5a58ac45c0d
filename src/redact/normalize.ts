/**
 * Folding for detection: detectors run on a folded copy of the text so that obfuscations do not
 * walk past them — NFKC (fullwidth letters and digits, ligatures, circled and mathematical digits),
 * zero-width, format and other default-ignorable characters removed (and combining marks after a
 * digit), digits of every script mapped to ASCII, exotic spaces and dashes mapped to ' ' and '-'. (Digit groups split by spaces, dashes, dots or line
 * breaks are joined by the digit-run scanner, which reads the folded text.)
 *
 * Every folded character remembers the original code point it came from, so findings map back to
 * exact UTF-16 offsets in the original. Pure-ASCII text (the common case) is returned as is with
 * no map at all: the check is one regex test.
 *
 * Percent escapes (`%2B14155552671`, `jane.doe%40example.com`, `4111%201111%201111%201111`: query
 * strings, form bodies, pasted logs) are not decoded here but in a second view of the text
 * (foldPercentDecoded), which the scanner reads in addition to this one: a decoded `%20` is a space,
 * which would end a URL or a password value that the detectors read whole in the text as written.
 */

export interface FoldedText {
  /** The text detectors see. */
  readonly text: string;
  /** Original start offset of each folded UTF-16 unit; null when text === original. */
  readonly starts: Int32Array | null;
  /** Original end offset (exclusive) of each folded UTF-16 unit; null when text === original. */
  readonly ends: Int32Array | null;
}

const NON_ASCII = /[^\u0000-\u007f]/u; // eslint-disable-line no-control-regex
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
  if (cp === 0x2028 || cp === 0x2029 || cp === 0x85) out = '\n';
  else if (FORMAT_CHAR.test(ch)) out = '';
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

export function fold(original: string): FoldedText {
  if (!NON_ASCII.test(original)) return { text: original, starts: null, ends: null };
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
  const flushRun = (to: number): void => {
    if (runStart >= to) return;
    afterDigit = isAsciiDigit(original.charCodeAt(to - 1));
    parts.push(original.slice(runStart, to));
    ensure(to - runStart);
    for (let k = runStart; k < to; k++, j++) {
      starts[j] = k;
      ends[j] = k + 1;
    }
  };
  for (let i = 0; i < n; ) {
    if (original.charCodeAt(i) < 0x80) {
      i++;
      continue;
    }
    flushRun(i);
    const cp = original.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    const folded = afterDigit && COMBINING_MARK.test(String.fromCodePoint(cp)) ? '' : foldCodePoint(cp);
    if (folded.length > 0) {
      afterDigit = isAsciiDigit(folded.charCodeAt(folded.length - 1));
      parts.push(folded);
      ensure(folded.length);
      for (let k = 0; k < folded.length; k++, j++) {
        starts[j] = i;
        ends[j] = i + width;
      }
    }
    i += width;
    runStart = i;
  }
  flushRun(n);
  return { text: parts.join(''), starts: starts.subarray(0, j), ends: ends.subarray(0, j) };
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
 * Whether the original text holds an escape within ESCAPE_NEAR of [start, end). A finding of a
 * decoded window with none near it reads the same text the plain scan read, only with less
 * context (the window's edge may cut off "order" before a number): the plain scan's verdict
 * stands for it.
 */
export function escapeNear(original: string, start: number, end: number): boolean {
  return ONE_ESCAPE.test(original.slice(Math.max(0, start - ESCAPE_NEAR), end + ESCAPE_NEAR));
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
 * The stretches of the text around its percent escapes, each decoded (one pass: `%2540` is
 * `%40`) and folded, with every unit mapped to the original (an escape's character spans its
 * three units). Escapes within reach of each other share a window. Only these stretches are read
 * a second time: one escape in a 1 MB text costs a kilobyte of scanning, not a megabyte. null
 * when the text holds no escape (a '%' is checked with indexOf first: most texts cost one native
 * scan).
 */
export function percentDecodedWindows(original: string): DecodedWindow[] | null {
  if (original.indexOf('%') < 0) return null;
  PERCENT_ESCAPE.lastIndex = 0;
  let m = PERCENT_ESCAPE.exec(original);
  if (m === null) return null;
  const windows: DecodedWindow[] = [];
  let lo = m.index - ESCAPE_REACH;
  let hi = m.index + 3 + ESCAPE_REACH;
  for (m = PERCENT_ESCAPE.exec(original); m !== null; m = PERCENT_ESCAPE.exec(original)) {
    if (m.index - ESCAPE_REACH <= hi) {
      hi = m.index + 3 + ESCAPE_REACH;
      continue;
    }
    windows.push(decodedWindow(original, lo, hi));
    lo = m.index - ESCAPE_REACH;
    hi = m.index + 3 + ESCAPE_REACH;
  }
  windows.push(decodedWindow(original, lo, hi));
  return windows;
}

function decodedWindow(original: string, lo: number, hi: number): DecodedWindow {
  const from = leftEdge(original, lo);
  const to = rightEdge(original, hi);
  const starts = new Int32Array(to - from);
  const ends = new Int32Array(to - from);
  const parts: string[] = [];
  let j = 0;
  let last = from; // end of the last escape: the text after it is copied as it is
  const copyTo = (end: number): void => {
    parts.push(original.slice(last, end));
    for (let k = last; k < end; k++, j++) {
      starts[j] = k;
      ends[j] = k + 1;
    }
  };
  PERCENT_ESCAPE.lastIndex = from;
  for (let m = PERCENT_ESCAPE.exec(original); m !== null && m.index + 3 <= to; m = PERCENT_ESCAPE.exec(original)) {
    copyTo(m.index);
    parts.push(String.fromCharCode(parseInt(m[0].slice(1), 16)));
    starts[j] = m.index;
    ends[j] = m.index + 3;
    j++;
    last = m.index + 3;
  }
  copyTo(to);
  const decoded: FoldedText = { text: parts.join(''), starts: starts.subarray(0, j), ends: ends.subarray(0, j) };
  return { view: composeFolded(decoded, fold(decoded.text)), from, to };
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
