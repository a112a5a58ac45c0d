/**
 * Prefilter: one pass over the text counts the few things every built-in detector needs before
 * it can find anything (an '@', a run of digits long enough for a phone or a card, "://", a long
 * token, ...). Each detector states, next to its own code (`Detector.mayMatch`), the condition its
 * findings imply; the scanner skips a detector whose condition fails.
 *
 * Why: most texts Warden scans per request are short (a user message, a model's answer), and
 * there the cost of a scan is the fixed cost of calling every detector (its own indexOf and regex
 * passes, the shared digit scan, the phone region plans), paid with cold CPU caches in a sidecar
 * that does other work between requests, rather than the length of the text. A short answer with
 * no digit, '@' or ':' cannot hold an email, a phone, a card or a key, and costs one pass.
 *
 * The conditions are necessary, never sufficient: a detector is skipped only when it could not
 * have produced a finding on this text, so results are the same with or without the prefilter
 * (test/redact/prefilter.test.ts runs every detector on its positive cases both ways).
 *
 * The pass also tells whether the text is pure ASCII, so the scanner can skip folding (the
 * folded text of ASCII is the text itself) without a separate regex pass.
 *
 * Only short texts are prefiltered (PREFILTER_MAX_CHARS): the pass walks the text in JavaScript
 * (~2 ns a character here) while detectors mostly run native indexOf and regex passes, and a long
 * text usually holds something that opens every condition (mixed text: all of them within 3-4 KB),
 * so there the pass is pure cost (measured on plain prose: 1 KB scans in 3.2 µs with it, 4.5 µs
 * without; 4 KB in 11.8 and 13.0 µs; on mixed text the scan costs ~11 ns a character).
 */

/** Longest text (UTF-16 units) the scanner prefilters: user messages, answers, stream windows. */
export const PREFILTER_MAX_CHARS = 1024;

/** Counts over the text a detector reads (the folded text: fold maps every digit to ASCII). */
export interface TextTraits {
  /**
   * Some UTF-16 unit is not ASCII, or is an ASCII control other than tab, CR and LF: the text is
   * folded (and its traits taken again after folding).
   */
  nonAscii: boolean;
  /** ASCII digits 0-9. */
  digits: number;
  /**
   * Most digits in one stretch of digits, spaces, tabs, line breaks, '-', '.', '(' and ')': a
   * bound on the digits of any digit chunk (digit-runs.ts), so of any phone, card or SSN.
   */
  chunkDigits: number;
  /** '@' */
  at: number;
  /** ':' */
  colons: number;
  /**
   * ':' and '=' after a word that ends like a key name (pass, passwd, pwd, passphrase, secret,
   * key, token, credential(s): in s, d, e, t, y, n or l), past up to four spaces and a quote, as
   * the secrets detector walks back from each operator: where every assignment starts.
   */
  keyAssignments: number;
  /** '-' */
  dashes: number;
  /** '.' with a digit on both sides (a dotted quad has three). */
  digitDots: number;
  /** '.' five units after the previous '.' (as between the quads of "0000.0c12.3456"). */
  quadDots: number;
  /** "://" and "www." (any case): where every URL starts. */
  urlStarts: number;
  /** A digit after two letters that start a word ("GB82..."): where every IBAN starts. */
  ibanStarts: number;
  /** Longest run of [A-Za-z0-9_+/-] (every shaped credential, AWS secret key, wallet is one). */
  longestRun: number;
}

// Character classes of ASCII; everything else is OTHER (and marks the text non-ASCII).
const OTHER = 0;
const LETTER = 1;
const DIGIT = 2;
/** '_', '+', '/': token characters that are neither letters, digits nor '-'. */
const SYMBOL = 3;
/** Space, tab, CR, LF, '(' and ')': separators inside a digit chunk, outside tokens. */
const SPACE = 4;
const DASH = 5;
const DOT = 6;
const COLON = 7;
const EQUALS = 8;
const AT = 9;

const CLASS = new Uint8Array(128);
for (let c = 65; c <= 90; c++) CLASS[c] = LETTER;
for (let c = 97; c <= 122; c++) CLASS[c] = LETTER;
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT;
for (const c of [95, 43, 47]) CLASS[c] = SYMBOL;
for (const c of [32, 9, 13, 10, 40, 41]) CLASS[c] = SPACE;
CLASS[45] = DASH;
CLASS[46] = DOT;
CLASS[58] = COLON;
CLASS[61] = EQUALS;
CLASS[64] = AT;

function classAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  return c < 128 ? CLASS[c]! : OTHER;
}

function isW(c: number): boolean {
  return c === 119 || c === 87;
}

/** Last letters of the key names the secrets detector knows (KEY_SUFFIX there), either case. */
const KEY_END = new Set([...'sdetynl'].flatMap((c) => [c.charCodeAt(0), c.toUpperCase().charCodeAt(0)]));

/**
 * Does a key name end right before the operator at `op`? The secrets detector's walk back: up to
 * four spaces or tabs, then one closing quote, then the key's last letter.
 */
function keyEndsBefore(text: string, op: number): boolean {
  let e = op;
  while (e > 0 && op - e < 4 && (text.charCodeAt(e - 1) === 32 || text.charCodeAt(e - 1) === 9)) e--;
  if (e > 0 && (text.charCodeAt(e - 1) === 34 || text.charCodeAt(e - 1) === 39)) e--;
  return e > 0 && KEY_END.has(text.charCodeAt(e - 1));
}

/** The traits of `text`, in one pass (the common classes, letters and spaces, first). */
export function textTraits(text: string): TextTraits {
  let nonAscii = false;
  let digits = 0;
  let chunk = 0;
  let chunkDigits = 0;
  let at = 0;
  let colons = 0;
  let keyAssignments = 0;
  let dashes = 0;
  let digitDots = 0;
  let quadDots = 0;
  let urlStarts = 0;
  let ibanStarts = 0;
  let run = 0;
  let longestRun = 0;
  let lastDot = -10;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    // Letters and spaces, most of any text, by comparison; the rest by the table.
    const lower = c | 32;
    if (lower >= 97 && lower <= 122) {
      run++;
      chunk = 0;
      continue;
    }
    if (c === 32) {
      if (run > longestRun) longestRun = run;
      run = 0;
      continue;
    }
    const k = c < 128 ? CLASS[c]! : OTHER;
    if (k === SPACE) {
      if (run > longestRun) longestRun = run;
      run = 0;
      continue;
    }
    if (k === DIGIT) {
      digits++;
      run++;
      if (++chunk > chunkDigits) chunkDigits = chunk;
      // Two letters that start a word, then this digit.
      if (i >= 2 && classAt(text, i - 1) === LETTER && classAt(text, i - 2) === LETTER) {
        const before = i >= 3 ? classAt(text, i - 3) : OTHER;
        if (before !== LETTER && before !== DIGIT && text.charCodeAt(i - 3) !== 95) ibanStarts++;
      }
      continue;
    }
    if (k === SYMBOL) {
      run++;
      chunk = 0;
      continue;
    }
    if (k === DASH) {
      dashes++;
      run++;
      continue;
    }
    if (run > longestRun) longestRun = run;
    run = 0;
    if (k === DOT) {
      if (i > 0 && i + 1 < n && classAt(text, i - 1) === DIGIT && classAt(text, i + 1) === DIGIT) digitDots++;
      if (i - lastDot === 5) quadDots++;
      lastDot = i;
      if (i >= 3 && isW(text.charCodeAt(i - 1)) && isW(text.charCodeAt(i - 2)) && isW(text.charCodeAt(i - 3))) urlStarts++;
      continue;
    }
    chunk = 0;
    if (k === COLON) {
      colons++;
      if (text.charCodeAt(i + 1) === 47 && text.charCodeAt(i + 2) === 47) urlStarts++;
      if (keyEndsBefore(text, i)) keyAssignments++;
    } else if (k === EQUALS) {
      if (keyEndsBefore(text, i)) keyAssignments++;
    } else if (k === AT) at++;
    // An ASCII control other than tab, CR and LF (all SPACE above) is folded too (normalize.ts).
    else if (c >= 127 || c < 32) nonAscii = true;
  }
  if (run > longestRun) longestRun = run;
  return { nonAscii, digits, chunkDigits, at, colons, keyAssignments, dashes, digitDots, quadDots, urlStarts, ibanStarts, longestRun };
}
