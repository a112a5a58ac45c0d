/**
 * Streaming redaction. Each text channel (a choice's text, content and refusal as one, and each
 * of its tool calls' arguments) keeps a small hold-back: the trailing run of text that could still grow into an
 * entity or a placeholder (the last whitespace-free run, extended back over digit groups and
 * month names that a later group could join, an unterminated private key block, and, when the
 * request guards secret values, a fixed window as long as the longest could span, spaces and all,
 * whether or not it holds the beginning of one; under `stream_secret_hold: prefix`, only a tail
 * that could begin one). Everything before it is redacted,
 * restored and emitted at once, so the hold-back is the only delay, and no entity is ever
 * emitted in two halves. A hold-back longer than `maxHoldBack` is released but for its last
 * RELEASE_KEEP units, never through a finding or a possible secret; past twice the cap it goes
 * whole (redacted as it stands), so memory per stream stays bounded. Channels flush at
 * finish_reason / stream end.
 *
 * Detection of each emitted piece sees the last CONTEXT_TAIL characters already emitted, so
 * context words and boundaries read the same as on the whole text.
 *
 * Tool-call arguments are JSON: their channels also know where the emitted text leaves the JSON
 * (in a string or not, see jsonStateAfter), never cut through a bare value (a number) or an
 * escape, and replace findings as in the whole arguments (a number holding one is quoted), so
 * the concatenated pieces parse as the non-streamed arguments do.
 */
import { WardenError } from '../pipeline/errors.js';
import { isDocumentedFinishReason, MAX_LABEL_LENGTH, type ChunkDelta, type CompletionChunk } from '../pipeline/types.js';
import { JSON_TEXT_START, jsonStateAfter, safeJsonCut, type JsonLexState } from './json-literals.js';
import { jsonEscapeReadings, MAX_ESCAPE_LEVELS } from './leak-guard.js';
import { fold, unitAround, type FoldedText } from './normalize.js';
import { CONTEXT_WINDOW } from './scanner.js';
import type { Finding } from './types.js';

export const CONTEXT_TAIL = CONTEXT_WINDOW + 16;

/** The delta members that carry a choice's text, one channel (read in this order within a delta). */
const TEXT_KINDS = ['content', 'refusal'] as const;
/** Longest whitespace-separated chain of digit groups held back (IBAN with spaces is 42). */
const CHAIN_LIMIT = 80;
/**
 * While a long chain is held (LONG_HOLD units or more: a table or list of numbers), what it lets
 * go is released in batches of at least MIN_CHAIN_RELEASE units. Each release scans the released
 * text with the window before it (~150 units); released a group per piece, as the chain moves on,
 * a table of numbers was scanned again for every few characters the model sent. Prose never
 * holds that much (its hold is the last word), so it is released as it comes.
 */
const LONG_HOLD = 32;
const MIN_CHAIN_RELEASE = 16;
/**
 * A forced release (the hold-back reached `maxHoldBack`) keeps this many trailing units (at most
 * half the cap): a value there may still be arriving, and one that began before arrives whole
 * within them, so the scan of what is released sees it and the cut moves before it. Longer than
 * any e-mail address, card, IBAN, phone or token a detector finds in unbroken text.
 */
const RELEASE_KEEP = 1024;

export interface OutputProcessor {
  readonly maxHoldBack: number;
  outputFindings(text: string, from: number, json: boolean): Finding[];
  /** `at`: where `text` begins in the JSON, for `json` channels. */
  renderOutput(text: string, findings: readonly Finding[], json: boolean, at?: JsonLexState): string;
  /**
   * Start of the tail of `text` held back for the leak guard (text.length: none, no secret is
   * guarded): a window in which a guarded value may still be arriving, held like a growing entity
   * (a secret may hold spaces or line breaks, so the whitespace rules alone would release its
   * first words before the guard could see it whole). Where it starts depends on the text and the
   * values' lengths, never on whether the text begins a value: chunk boundaries that did told a
   * caller whether the text the model repeated began a secret (leak-guard.ts heldFrom). Under
   * `redaction.stream_secret_hold: prefix` they do again: only a tail that could begin one.
   * `label`: `text` is an answer label (see ToolLabel.settled).
   */
  secretHoldStart(text: string, json: boolean, label?: boolean): number;
  /**
   * An answer label (id, model, tool call id or function name) from `from` on, with the secret
   * values of the whole label masked (one that begins before `from` is masked from there: the
   * label's start is out already).
   */
  maskLabel(label: string, from?: number): string;
}

/**
 * Where runs end: ASCII whitespace, and every character the detectors read as a space or a line
 * break (normalize.ts folds the Unicode spaces, U+2800, U+2028/2029 and NEL to ' ' or '\n'). A
 * no-break or thin space between digit groups ("(415)\u00a0555") must split runs as ' ' does, or
 * the group before it is judged as part of a run that ends in a space and released in clear.
 */
function isWs(c: number): boolean {
  if (c < 0x80) return c === 32 || (c >= 9 && c <= 13);
  return c === 0xa0 || c === 0x85 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x2800 || c === 0x3000;
}

const MONTHS = /^(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?$/i;
const GROUPISH = /^[A-Za-z0-9()+\-.,:/#]{1,24}$/;
/**
 * A folded run's trailing group: the characters GROUPISH allows (and a JSON escape's backslash,
 * which joinableFolded reads before any group is judged), back from the run's end. What
 * comes before it is an opening quote, bracket or markup (`"4111`, `{"card":"4111`, `*DE89`),
 * which does not stop the group from joining the next one. Scanned by hand: a regex anchored at
 * the end would retry from every start of a long run.
 */
function groupTail(run: string): string {
  let i = run.length;
  while (i > 0 && groupChar(run.charCodeAt(i - 1))) i--;
  return run.slice(i);
}

/** The characters of GROUPISH. */
function groupChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || // 0-9
    ((c | 32) >= 97 && (c | 32) <= 122) || // A-Z a-z
    c === 40 || c === 41 || c === 43 || c === 45 || c === 46 || c === 44 || c === 58 || c === 47 || c === 35 || // ( ) + - . , : / #
    c === 92 // \ : so a long run's held tail starts at its last escape, not after it (groupStart)
  );
}

/**
 * A run a following group could join into one entity (digit groups, IBAN blocks, dates). Judged
 * on the folded run, as the detectors see it (fullwidth digits, zero-width joiners inside), from
 * its trailing group on.
 */
function joinable(raw: string): boolean {
  // A piece that ends between the two halves of a surrogate pair: the character still arriving may
  // be a digit (mathematical `𝟏`, a tag character `U+E0031`), so the run joins as the text before
  // it does, or may begin a group alone. Folded as it stands, the lone half was no digit, and the
  // groups before it went out in clear ("card 4111 1111 " before "𝟏𝟏𝟏𝟏 𝟏𝟏𝟏𝟏").
  const lastUnit = raw.charCodeAt(raw.length - 1);
  if (lastUnit >= 0xd800 && lastUnit <= 0xdbff) return raw.length === 1 || joinable(raw.slice(0, -1));
  const view = fold(raw);
  const folded = view.text;
  if (folded.length === 0) return raw.length > 0; // only invisible characters: keep them together
  return joinableFolded(folded, view.joins);
}

function joinableFolded(folded: string, joins: FoldedText['joins']): boolean {
  // A JSON string escape (`\n`, `\u0020`) is a boundary to the app that parses the text, and the
  // answer is also read with its escapes decoded (session.ts escapedFindings): the group from the
  // last escape on decides, whatever the word before it ("Card-number:\n4111"), and a run that
  // ends in an escape, whole or still arriving (`111\`, `111\u00`, `56\n`), is judged by the
  // group before the escape (an escape alone may begin a group, as '(' and '+' do).
  const bs = folded.lastIndexOf('\\');
  if (bs >= 0) {
    // A trailing run of backslashes, each an escape still arriving (jsonEscapeTail 1): the group
    // before the run decides, or the run alone may begin one. Dropped whole, not one unit per
    // call: a run held while it arrives one unit per piece was walked down a call per unit.
    if (bs === folded.length - 1) {
      let i = bs;
      while (i > 0 && folded.charCodeAt(i - 1) === 92) i--;
      return i === 0 || joinableFolded(folded.slice(0, i), joins);
    }
    const esc = jsonEscapeTail(folded);
    // After the escape's backslash, as the old reading of `\n4111` as `n4111` did: the same
    // checks as a run without one (a '.', a '/', a percent escape in the group after it), and
    // first the group after a format character that comes later still (`\nlongword\u200b4111`),
    // whose offsets are the whole run's.
    if (esc === 0) {
      const join = joins === undefined ? 0 : joins[joins.length - 3]!;
      if (join > bs && groupJoinable(folded.slice(join))) return true;
      return joinableFolded(folded.slice(bs + 1), undefined);
    }
    return esc === folded.length || joinableFolded(folded.slice(0, folded.length - esc), joins);
  }
  if (groupJoinable(folded)) return true;
  // The whole-text readings also end a word at a format character between two visible units
  // (normalize.ts spacedView) and at a '.' after a letter (digit-runs.ts): the group after the
  // last such boundary may begin an entity however long the word before it
  // ("…withoutspaces\u200b4539", "…/page.4539"), and so does a '/' between two groups
  // ("…555.1042/DE89", an IBAN after a phone in a path).
  const boundary = Math.max(joins === undefined ? 0 : joins[joins.length - 3]!, dotAfterLetter(folded), folded.lastIndexOf('/') + 1);
  if (boundary > 0 && groupJoinable(folded.slice(boundary))) return true;
  // A run ending in a percent escape, whole or still arriving ("555%", "555%2", "555%2D"): the
  // scanner reads escapes decoded (normalize.ts percentDecodedWindows), so the escape may yet be
  // a separator or a digit of the same value ("+1 (415) 555%2D2671"). The group before it
  // decides; an escape alone may begin a group, as '(' and '+' do.
  // So does one ending in an HTML character reference, whole or still arriving ("1111&",
  // "1111&nb", "1111&#x20;"), which the scanner reads decoded too.
  const esc = escapeTail(folded) || htmlReferenceTail(folded);
  if (esc === 0) return false;
  return esc === folded.length || groupJoinable(folded.slice(0, folded.length - esc));
}

/**
 * Length of a trailing JSON string escape, whole or still arriving (`\`, `\n`, `\u`, `\u0`, …
 * `\u0031`), 0 when `run` ends in none. A backslash that is the second of an escaped pair counts
 * too: holding a little more is safe.
 */
function jsonEscapeTail(run: string): number {
  const n = run.length;
  for (let k = 1; k <= 6 && k <= n; k++) {
    if (run.charCodeAt(n - k) !== 92) continue;
    if (k === 1) return 1;
    if (run.charCodeAt(n - k + 1) !== 117) return k === 2 ? 2 : 0; // `\n`, `\"`: whole
    for (let i = n - k + 2; i < n; i++) if (!isHex(run.charCodeAt(i))) return 0;
    return k;
  }
  return 0;
}

/** The offset after the last '.' that follows a letter in `folded` (0: none). */
function dotAfterLetter(folded: string): number {
  for (let k = folded.length - 1; k > 0; k--) {
    if (folded.charCodeAt(k) === 46 && ((folded.charCodeAt(k - 1) | 32) >= 97 && (folded.charCodeAt(k - 1) | 32) <= 122)) return k + 1;
  }
  return 0;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 102);
}

/** Length of a trailing `%`, `%X` or `%XX` (X hex) of `run`, 0 when it ends in none. */
function escapeTail(run: string): number {
  const n = run.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    if (run.charCodeAt(n - k) === 37) return k;
    if (!isHex(run.charCodeAt(n - k))) return 0;
  }
  return 0;
}

/** The longest HTML character reference read (normalize.ts htmlReferenceAt), '&' and ';' included. */
const HTML_REFERENCE_MAX = 23;
const HTML_REFERENCE_BODY = /^(?:#(?:[xX]0*[0-9A-Fa-f]{0,8}|0*[0-9]{0,8})|[A-Za-z][A-Za-z0-9]{0,20})?;?$/;

/**
 * Length of a trailing HTML character reference of `run`, whole or still arriving (`&`, `&#6`,
 * `&#64;`, `&nbs`, `&nbsp;`), 0 when it ends in none. A name that is no reference counts too:
 * holding a little more is safe.
 */
function htmlReferenceTail(run: string): number {
  const n = run.length;
  for (let k = n - 1; k >= 0 && n - k <= HTML_REFERENCE_MAX; k--) {
    if (run.charCodeAt(k) === 38) return HTML_REFERENCE_BODY.test(run.slice(k + 1)) ? n - k : 0;
  }
  return 0;
}

/** The folded run's trailing group could be joined by a following group. */
function groupJoinable(folded: string): boolean {
  const run = groupTail(folded);
  if (run.length === 0) return false;
  if (MONTHS.test(run)) return true;
  if (!GROUPISH.test(run)) return false;
  return /[0-9]/.test(run) || /^[A-Z0-9]{1,4}$/.test(run) || run === '(' || run === '+' || separatorRun(run);
}

/**
 * One or two of the separators the digit-group reader takes between groups with spaces around
 * them (digit-runs.ts: at most three of ' ', '-', '.', '(', ')'): `415 555 - 2671` and
 * `415 555 -638 2229` are one phone number to the whole answer, so a lone `-` must not end the
 * chain, or `415 555 ` went out in clear before the group after it arrived.
 */
function separatorRun(run: string): boolean {
  if (run.length > 2) return false;
  for (let i = 0; i < run.length; i++) {
    const c = run.charCodeAt(i);
    if (c !== 45 && c !== 46 && c !== 40 && c !== 41) return false;
  }
  return true;
}

const MONTH_NAMES = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/** The still-growing last run may become a month name ("Ma" → "March"). */
function monthPrefix(run: string): boolean {
  const r = groupTail(fold(run).text).toLowerCase();
  return r.length > 0 && r.length <= 9 && MONTH_NAMES.some((m) => m.startsWith(r));
}

/** Start of the part of `p` that must be held back (p.length = nothing to hold). */
export function holdStart(p: string): number {
  const hold = pemStart(p, chainStart(p));
  // Only a text with a backslash can hold an escape: one search for it, and text without one
  // takes the path above alone.
  return p.indexOf('\\') < 0 ? hold : escapedHoldStart(p, hold);
}

/** A run of backslashes this long is a run of CHAIN_LIMIT backslashes or more at every level read (see escapedHoldStart). */
const LONG_BACKSLASH_RUN = 2 ** MAX_ESCAPE_LEVELS * CHAIN_LIMIT;

/**
 * `hold` (of `p` as written) moved back to where the same rules hold `p` read with its JSON
 * string escapes decoded, at every level (leak-guard.ts jsonEscapeReadings), as the answer is
 * also scanned (session.ts escapedFindings). As written, an escaped digit (`\u0034`) is no digit
 * and an escaped chain is six to sixteen times longer than CHAIN_LIMIT counts: the first group of
 * `\u0034\u0031\u0031\u0031 \u0031…` left in clear before the rest of the card arrived. Each
 * reading's chainStart is mapped back to the text as written, and the result never falls inside
 * an escape of any level (a cut `\\\\u0031` would no longer parse one level down, and a value
 * found after it would be masked from the middle of the escape on).
 */
function escapedHoldStart(p: string, hold: number): number {
  // A text that ends in LONG_BACKSLASH_RUN backslashes or more (one arriving per piece, held as
  // the trailing run): every reading ends in a run of CHAIN_LIMIT backslashes or more, which
  // chainStart holds from its start, at or after where the run as written begins, so `hold`
  // (which is at or before that) stands: not decoded four times at each piece.
  let i = p.length;
  while (i > 0 && p.length - i < LONG_BACKSLASH_RUN && p.charCodeAt(i - 1) === 92) i--;
  if (p.length - i >= LONG_BACKSLASH_RUN) return hold;
  const readings = jsonEscapeReadings(p);
  if (readings.length === 0) return hold;
  for (const r of readings) {
    const c = chainStart(r.text);
    if (c < r.text.length && r.starts![c]! < hold) hold = r.starts![c]!;
  }
  const deepest = readings[readings.length - 1]!;
  const k = unitAround(deepest, hold);
  return k < 0 ? hold : deepest.starts![k]!;
}

function chainStart(p: string): number {
  const n = p.length;
  let runStart = n;
  while (runStart > 0 && !isWs(p.charCodeAt(runStart - 1))) runStart--;
  if (runStart === n) {
    // Ends in whitespace: hold only if the run before could be continued by the next group.
    let j = n;
    while (j > 0 && isWs(p.charCodeAt(j - 1))) j--;
    if (j === 0 || n - j > 3) return n;
    let k = j;
    while (k > 0 && !isWs(p.charCodeAt(k - 1))) k--;
    if (!joinable(p.slice(k, j))) return n;
    runStart = k;
  } else {
    // A trailing run of CHAIN_LIMIT units or more is held from its start, and nothing before it
    // joins it (the loop below would stop at once, as n - k > CHAIN_LIMIT): not folded and judged
    // again at each piece while it grows (a long run of backslashes arriving one per piece).
    if (n - runStart >= CHAIN_LIMIT) return runStart;
    const last = p.slice(runStart);
    // The trailing run itself is always held (it may still grow); what comes before only when
    // the run is, or may become, a group that joins it ("12 Ma|rch 1980").
    if (!joinable(last) && !monthPrefix(last)) return runStart;
  }
  // Extend back over whitespace junctions between joinable runs.
  for (;;) {
    if (runStart === 0) break;
    let j = runStart;
    while (j > 0 && isWs(p.charCodeAt(j - 1))) j--;
    if (runStart - j > 3 || j === 0) break;
    let k = j;
    while (k > 0 && !isWs(p.charCodeAt(k - 1))) k--;
    const run = p.slice(k, j);
    if (!joinable(run)) break;
    if (n - k > CHAIN_LIMIT) {
      // A long run (a query string, a URL, an address) ending in a group the next one joins
      // ("…io939843=(415) 555"): that group is held alone, or it leaves in clear before the
      // number it begins has arrived. The run's earlier part cannot join anything after it.
      const group = k + trailingGroupStart(run);
      if (group < j && n - group <= CHAIN_LIMIT) runStart = group;
      break;
    }
    runStart = k;
  }
  return runStart;
}

/**
 * Offset in `raw` of its trailing group, as joinable() reads it (on the folded run; before a
 * trailing percent escape, the group before it): where a hold of a long run's tail starts.
 * raw.length when it ends in none.
 */
function trailingGroupStart(raw: string): number {
  const view = fold(raw);
  const folded = view.text;
  let at = groupStart(folded);
  const esc = escapeTail(folded) || jsonEscapeTail(folded) || htmlReferenceTail(folded);
  if (esc > 0) at = Math.min(at, groupStart(folded.slice(0, folded.length - esc)));
  if (at >= folded.length) return raw.length;
  return view.starts === null ? at : view.starts[at]!;
}

/** Where `folded`'s trailing group starts: at its last JSON escape when that is later (see joinableFolded). */
function groupStart(folded: string): number {
  return Math.max(folded.length - groupTail(folded).length, folded.lastIndexOf('\\'));
}

/** An unterminated private key block is held from its BEGIN line. */
function pemStart(p: string, hold: number): number {
  const begin = p.lastIndexOf('-----BEGIN');
  if (begin >= 0 && begin < hold && p.indexOf('-----END', begin) < 0) return begin;
  return hold;
}

/**
 * The last CONTEXT_TAIL units of the emitted `text`, the context the next piece is scanned with.
 * In JSON (tool-call arguments) the leak guard decodes string escapes from the context's start:
 * one inside a run of backslashes would pair the whole run the wrong way (an escaped backslash
 * and `u006F` read as a backslash and `\u006F`, an `o`), on into the piece. So it starts after a
 * unit that is not a backslash, where escapes pair as in the whole text (or is empty: the piece
 * itself begins after a whole escape). `known`: where the piece just emitted begins in `text`.
 */
function contextTail(text: string, json: boolean, known: number): string {
  let at = Math.max(0, text.length - CONTEXT_TAIL);
  if (at > 0 && text.indexOf('\\', at) >= 0) {
    // Escaped text: CONTEXT_TAIL units of its deepest reading, which at the fourth level is up to
    // ESCAPED_UNIT times as long as written (a context word `\\\\\\\\u0074el` before an
    // escaped phone number is out of a window counted as written). From a unit's start at every
    // level, where escapes pair as in the whole text.
    const start = escapedContextStart(text, known);
    if (start <= at) return text.slice(start);
  }
  if (json) while (at > 0 && at < text.length && text.charCodeAt(at - 1) === 92) at++;
  return at === 0 ? text : text.slice(at);
}

/**
 * `at` moved back to where a unit begins at every level: after six units without a backslash (an
 * escape's rest after its last backslash is five units at most, `u0d41`), or to `known` (where
 * the emitted piece began, a cut) when `at` is at or after it, else to 0; not below `lowest`
 * (a text escaped throughout, `\\u005c…`, has no such six units: the window then begins after a
 * non-backslash, as before, so the context stays bounded). After a mere non-backslash the window
 * could begin inside an escape's hex: `…\\\\u0d41` read from `0d41` glued the digits after it to
 * a word (`0d415 555…`), and a phone number the whole answer masks went out in clear.
 */
function unitStartBefore(text: string, at: number, known: number, lowest: number): number {
  const boundary = at >= known ? known : 0;
  const floor = Math.max(boundary, lowest);
  let s = at;
  let i = s - 1;
  for (; i >= floor && i >= s - 6; i--) if (text.charCodeAt(i) === 92) s = i;
  if (i < s - 6 || floor === boundary) return s;
  s = at;
  while (s > 0 && s < text.length && text.charCodeAt(s - 1) === 92) s++;
  return s;
}

/** Longest a character written as an escape at the deepest level read is (`\\\\\\\\u0034`: 13 units). */
const ESCAPED_UNIT = 2 ** (MAX_ESCAPE_LEVELS - 1) + 5;

/**
 * Where the last CONTEXT_TAIL units of `text`'s deepest reading begin in `text`: read from at most
 * CONTEXT_TAIL * ESCAPED_UNIT units back, from a unit's start at every level (unitStartBefore;
 * `known`: see there). Twice CONTEXT_TAIL first (a text with a few escapes, `\n` in arguments),
 * wider only while that reads too few units.
 */
function escapedContextStart(text: string, known: number): number {
  const most = Math.min(text.length, CONTEXT_TAIL * ESCAPED_UNIT);
  for (let width = 2 * CONTEXT_TAIL; ; width = Math.min(most, 4 * width)) {
    const from = unitStartBefore(text, Math.max(0, text.length - width), known, text.length - 2 * most);
    const readings = jsonEscapeReadings(from === 0 ? text : text.slice(from));
    if (readings.length === 0) return Math.max(0, text.length - CONTEXT_TAIL);
    const deepest = readings[readings.length - 1]!;
    const k = deepest.text.length - CONTEXT_TAIL;
    if (k >= 0) return from + deepest.starts![k]!;
    if (width >= most || from === 0) return from;
  }
}

export class StreamChannel {
  private pending = '';
  private ctx = '';
  /**
   * Start of `pending`'s trailing whitespace-free run: just after its last whitespace, 0 when it
   * holds none. Kept up to date from each new piece alone, so a long run without whitespace
   * (compact JSON tool arguments, base64) costs O(piece) per push instead of a rescan and a fold
   * of the whole held run (quadratic in the run's length).
   */
  private runStart = 0;
  /**
   * Tool-call arguments: where the text emitted so far leaves the JSON (in a string or not), so a
   * piece's findings are replaced as in the whole arguments. Kept from each emitted piece alone.
   */
  private jsonAt: JsonLexState = JSON_TEXT_START;
  /**
   * A long hold that a finding at its end kept whole (a number still growing) is scanned again
   * only once `pending` is this long: one more batch (MIN_CHAIN_RELEASE) has arrived. 0: no wait.
   */
  private rescanAt = 0;

  constructor(
    private readonly proc: OutputProcessor,
    private readonly json: boolean,
  ) {}

  push(piece: string): string {
    if (piece.length === 0) return '';
    const base = this.pending.length;
    this.pending += piece;
    for (let i = piece.length; i > 0; i--) {
      if (isWs(piece.charCodeAt(i - 1))) {
        this.runStart = base + i;
        break;
      }
    }
    return this.emit(false);
  }

  flush(): string {
    return this.emit(true);
  }

  /**
   * Where an over-long hold-back is cut: at its last whitespace, but never in its last
   * RELEASE_KEEP units, nor after the start of a possible secret value. emit() then moves the cut
   * before any finding that crosses it, so nothing is released in part.
   */
  private releaseCut(p: string): number {
    const keep = Math.min(RELEASE_KEEP, this.proc.maxHoldBack >> 1);
    const cut = Math.min(this.runStart > 0 ? this.runStart : p.length, p.length - keep);
    return Math.min(cut, this.proc.secretHoldStart(p, this.json));
  }

  private emit(final: boolean): string {
    const p = this.pending;
    if (p.length === 0) return '';
    const forced = !final && p.length > this.proc.maxHoldBack;
    // Past twice the cap nothing waits any more (one value as long as the cap, a secret longer
    // than it): all of it goes, redacted as it stands, so memory per channel stays bounded.
    const overflow = forced && p.length >= 2 * this.proc.maxHoldBack;
    let cut: number;
    if (final) cut = p.length;
    else if (forced) cut = this.releaseCut(p);
    else if (this.runStart === 0) {
      // One whitespace-free run: it may still grow, so all of it is held (what holdStart says of
      // such a text, without its scan and fold of the whole run on every piece).
      return '';
    } else {
      if (p.length < this.rescanAt) return '';
      const hold = holdStart(p);
      cut = Math.min(hold, this.proc.secretHoldStart(p, this.json));
      // A long chain goes in batches; the leak guard's window (held by every stream that guards a
      // secret, 32 units and more) does not: its text goes on piece by piece once it is full.
      if (hold < MIN_CHAIN_RELEASE && p.length - hold >= LONG_HOLD) return '';
    }
    // A lone high surrogate at the cut waits for its pair.
    if (cut > 0 && cut < p.length) {
      const c = p.charCodeAt(cut - 1);
      if (c >= 0xd800 && c <= 0xdbff) cut--;
    }
    if (cut === 0) {
      if (!overflow) return '';
      cut = p.length;
    }
    const full = this.ctx + p;
    const from = this.ctx.length;
    const findings = this.proc.outputFindings(full, from, this.json);
    if (!final) {
      // Never cut through a finding, and hold one that touches the end (it may still grow). In
      // tool-call arguments, nor through a bare value (a number quoted whole if it holds a
      // finding, see jsonEdits) or an escape; moving back for those may cross a finding again.
      for (;;) {
        const before = cut;
        for (let i = findings.length - 1; i >= 0; i--) {
          const f = findings[i]!;
          const fs = f.start - from;
          const fe = f.end - from;
          if ((fs < cut && fe > cut) || (fe >= p.length && fs < cut)) cut = Math.max(0, fs);
        }
        if (!this.json) break;
        cut = safeJsonCut(p, this.jsonAt, cut);
        if (cut === before) break;
      }
      if (cut === 0) {
        if (!overflow) {
          if (p.length >= LONG_HOLD) this.rescanAt = p.length + MIN_CHAIN_RELEASE;
          return '';
        }
        cut = p.length;
      }
    }
    this.rescanAt = 0;
    const inRange = findings.filter((f) => f.end - from <= cut).map((f) => ({ ...f, start: f.start - from, end: f.end - from }));
    const raw = p.slice(0, cut);
    const out = this.proc.renderOutput(raw, inRange, this.json, this.jsonAt);
    if (this.json) this.jsonAt = jsonStateAfter(raw, this.jsonAt);
    this.ctx = contextTail(this.ctx + raw, this.json, this.ctx.length);
    this.pending = p.slice(cut);
    this.runStart = Math.max(0, this.runStart - cut);
    return out;
  }
}

type ToolDelta = NonNullable<ChunkDelta['tool_calls']>[number];

/**
 * `choice` without its `stop_sequence` (the upstream's text, not redacted) unless it is one of the
 * caller's own `stopSequences`: then it is the caller's text, and safe to hand back.
 */
export function keptStop<C extends { stop_sequence?: string }>(choice: C, stopSequences: readonly string[]): C {
  const stop = choice.stop_sequence;
  if (stop === undefined || stopSequences.includes(stop)) return choice;
  const { stop_sequence: _dropped, ...rest } = choice;
  return rest as C;
}

/**
 * A stream's own labels with secret values masked (OutputProcessor.maskLabel): the chunk's id and
 * model, and a compatible server's own finish_reason. The id and model repeat in every chunk, so
 * each distinct value is looked at (and counted) once. A chunk whose labels hold no secret is
 * passed on as it is, not copied. Tool call ids and names arrive in pieces: see ToolLabel.
 */
class ChunkLabels {
  private idIn = '';
  private idOut = '';
  private modelIn = '';
  private modelOut = '';

  /** `stopSequences`: the caller's, the only stop_sequence a choice may keep (see keptStop). */
  constructor(
    private readonly proc: OutputProcessor,
    private readonly stopSequences: readonly string[],
  ) {}

  apply(chunk: CompletionChunk): CompletionChunk {
    if (chunk.id !== this.idIn) this.idOut = this.proc.maskLabel((this.idIn = chunk.id));
    if (chunk.model !== this.modelIn) this.modelOut = this.proc.maskLabel((this.modelIn = chunk.model));
    let choices = chunk.choices;
    for (let i = 0; i < choices.length; i++) {
      const stop = choices[i]!.stop_sequence;
      if (stop !== undefined && !this.stopSequences.includes(stop)) {
        if (choices === chunk.choices) choices = choices.slice();
        choices[i] = keptStop(choices[i]!, this.stopSequences);
      }
      // A compatible server's own finish reason is passed on as it wrote it: guarded like a label.
      const finish = choices[i]!.finish_reason;
      if (finish !== null && !isDocumentedFinishReason(finish)) {
        const masked = this.proc.maskLabel(finish);
        if (masked !== finish) {
          if (choices === chunk.choices) choices = choices.slice();
          choices[i] = { ...choices[i]!, finish_reason: masked };
        }
      }
    }
    if (this.idOut === chunk.id && this.modelOut === chunk.model && choices === chunk.choices) return chunk;
    return { ...chunk, id: this.idOut, model: this.modelOut, choices };
  }
}

/**
 * A tool call's id or function name as its pieces arrive. A caller joins the pieces (openai-python
 * joins both, the Anthropic encoder joins the name into its tool_use block), so the leak guard
 * reads the label joined, and its pieces are held back until it may be whole: released, joined,
 * with the call's first arguments piece (an empty one only when the request guards no secret:
 * OpenAI sends a call's id and whole name with `arguments: ""`, and they go on at once), or when
 * the choice finishes, the stream moves on to another block (sequential) or ends. A guarded
 * request's labels wait for the first non-empty arguments piece whatever they end in: releasing
 * them with `arguments: ""` only when no tail could begin a secret told a caller which tails do.
 * Under `stream_secret_hold: prefix` that is what happens (settled asks the session), the oracle
 * accepted there; a label ending in one letter of a value in another case (`call_abc` before
 * `CANARY…`, most labels) goes on then, held only from two such letters on.
 *
 * A piece after that (no upstream known sends one) is masked with the whole label in view; only
 * a secret begun in what was already released can then be out in part. The joined label is
 * refused past MAX_LABEL_LENGTH, as a whole one is: it bounds what is held and searched again.
 *
 * A piece that repeats the label so far whole is that label again, not more of it: DeepSeek,
 * Qwen and Fireworks send a call's id and name with every piece (the Anthropic encoder reads it
 * so: server/anthropic.ts joinLabel). It does not grow the label (a long call would otherwise
 * pass MAX_LABEL_LENGTH), and while the label is held it is not sent twice. Once the label is
 * out, the repeat goes on as the upstream sent it, leak-guarded with two copies in view: a client
 * that appends every piece assembles the label repeated, and a secret spanning two copies is
 * masked in the second (each later copy comes out the same), so it is never whole.
 */
class ToolLabel {
  private raw = '';
  /** Units of `raw` released so far. */
  private sent = 0;
  /** A repeat of the whole label came after it was released, and is not passed on yet. */
  private repeated = false;

  add(piece: string | null | undefined): void {
    if (!piece) return;
    if (piece === this.raw) {
      if (this.sent === this.raw.length) this.repeated = true;
      return;
    }
    this.raw += piece;
    if (this.raw.length > MAX_LABEL_LENGTH) {
      throw new WardenError('upstream_error', `the upstream streamed a tool call id or function name longer than ${MAX_LABEL_LENGTH} characters`);
    }
  }

  /** Something is held. */
  get holding(): boolean {
    return this.sent < this.raw.length || this.repeated;
  }

  /** Nothing of what is held waits for the leak guard (nothing held: true; held: only when no secret is guarded). A repeat ends as the label does. */
  settled(proc: OutputProcessor): boolean {
    return !this.holding || proc.secretHoldStart(this.raw, false, true) === this.raw.length;
  }

  /** What is held, leak-guarded on the whole label (undefined: nothing held). */
  release(proc: OutputProcessor): string | undefined {
    if (this.sent < this.raw.length) {
      const out = proc.maskLabel(this.raw, this.sent);
      this.sent = this.raw.length;
      this.repeated = false;
      return out;
    }
    if (!this.repeated) return undefined;
    this.repeated = false;
    return proc.maskLabel(this.raw + this.raw, this.raw.length);
  }
}

/** A tool call's held labels. */
interface ToolLabels {
  readonly id: ToolLabel;
  readonly name: ToolLabel;
}

/** The released part of a tool call: what goes into its delta entry. */
interface ToolRelease {
  id?: string | undefined;
  name?: string | undefined;
  arguments?: string | undefined;
}

/**
 * A choice's blocks in a `sequential` stream, the key it compares to see that it moved on: its
 * text (content and refusal, one block) or a tool call.
 */
type ChannelKey = 'text' | number;

/**
 * @param sequential  The caller's format carries one block at a time (Anthropic's content
 *   blocks): when a choice moves on to another channel (from its text to a tool call, from one
 *   tool call to the next) with a non-empty piece, the channel it left is flushed there, before
 *   the new one's first piece, instead of at finish_reason. Upstreams stream an answer's parts
 *   one after another. Text that resumes after a tool call is a new block, redacted on its own:
 *   an entity the model split across the tool call is not joined up again (its first part left
 *   with the block before). Content and refusal are one block (Anthropic's text), so they
 *   share one channel.
 * @param stopSequences  The caller's: a choice's `stop_sequence` is passed on only when it is
 *   one of them (see keptStop).
 */
export async function* processChunkStream(
  chunks: AsyncIterable<CompletionChunk>,
  proc: OutputProcessor,
  sequential = false,
  stopSequences: readonly string[] = [],
): AsyncGenerator<CompletionChunk> {
  /**
   * Each choice's text: its content and its refusal share one channel, in every stream. The
   * non-streamed answer redacts them as one text (a caller joins them), so a value the model
   * split between them must not leave in two clear halves here either; a held tail comes out
   * with the piece that releases it (content's last word may come out as refusal), the joined
   * text the same.
   */
  const content = new Map<number, StreamChannel>();
  const tools = new Map<number, Map<number, StreamChannel>>();
  /** Each choice's tool calls' ids and names, by tool call index: every call seen has one. */
  const toolLabels = new Map<number, Map<number, ToolLabels>>();
  /** Sequential streams: the channel each choice last wrote to. */
  const current = new Map<number, ChannelKey>();
  /** The kind of text each choice last wrote (content or refusal), which its held tail comes out as. */
  const textKind = new Map<number, 'content' | 'refusal'>();
  let last: CompletionChunk | undefined;

  const textOf = (channels: Map<number, StreamChannel>, i: number): StreamChannel => {
    let c = channels.get(i);
    if (!c) channels.set(i, (c = new StreamChannel(proc, false)));
    return c;
  };
  const toolOf = (i: number, t: number): StreamChannel => {
    let m = tools.get(i);
    if (!m) tools.set(i, (m = new Map()));
    let c = m.get(t);
    if (!c) m.set(t, (c = new StreamChannel(proc, true)));
    return c;
  };
  const labelsOf = (i: number, t: number): ToolLabels => {
    let m = toolLabels.get(i);
    if (!m) toolLabels.set(i, (m = new Map()));
    let l = m.get(t);
    if (!l) m.set(t, (l = { id: new ToolLabel(), name: new ToolLabel() }));
    return l;
  };
  /**
   * A tool call piece of choice `i`, as it goes on: its id and name held or released (see
   * ToolLabel), its arguments through their channel, its other members (index, type) as they are.
   */
  const toolPiece = (i: number, tc: ToolDelta): ToolDelta => {
    const held = labelsOf(i, tc.index);
    if (tc.id === undefined && tc.function?.name === undefined && !held.id.holding && !held.name.holding) {
      // Most pieces: arguments only, no label held.
      const piece = tc.function?.arguments;
      return piece === undefined ? tc : { ...tc, function: { ...tc.function, arguments: toolOf(i, tc.index).push(piece) } };
    }
    held.id.add(tc.id);
    held.name.add(tc.function?.name);
    const { id: _id, function: fn, ...rest } = tc;
    const out: ToolDelta = rest;
    const args = fn?.arguments;
    let name: string | undefined;
    if (typeof args === 'string' && (args !== '' || (held.id.settled(proc) && held.name.settled(proc)))) {
      const id = held.id.release(proc);
      if (id !== undefined) out.id = id;
      name = held.name.release(proc);
    }
    if (fn !== undefined) {
      const f: NonNullable<ToolDelta['function']> = {};
      if (name !== undefined) f.name = name;
      if (typeof args === 'string') f.arguments = toolOf(i, tc.index).push(args);
      out.function = f;
    }
    return out;
  };
  /** What tool call `t` of choice `i` still holds (labels, arguments' tail), released; undefined: nothing. */
  const flushTool = (i: number, t: number): ToolRelease | undefined => {
    const held = toolLabels.get(i)?.get(t);
    const rel: ToolRelease = {};
    const id = held?.id.release(proc);
    if (id !== undefined) rel.id = id;
    const name = held?.name.release(proc);
    if (name !== undefined) rel.name = name;
    const args = tools.get(i)?.get(t)?.flush();
    if (args) rel.arguments = args;
    return rel.id === undefined && rel.name === undefined && rel.arguments === undefined ? undefined : rel;
  };
  /** Appends what tool call `t` released to `delta` (to its entry, or a new one at the end). */
  const appendTool = (delta: ChunkDelta, t: number, rel: ToolRelease): void => {
    const list: ToolDelta[] = delta.tool_calls ?? (delta.tool_calls = []);
    let entry = list.find((x) => x.index === t);
    if (!entry) list.push((entry = { index: t }));
    if (rel.id !== undefined) entry.id = (entry.id ?? '') + rel.id;
    if (rel.name === undefined && rel.arguments === undefined) return;
    const f = { ...entry.function };
    if (rel.name !== undefined) f.name = (f.name ?? '') + rel.name;
    if (rel.arguments !== undefined) f.arguments = (f.arguments ?? '') + rel.arguments;
    entry.function = f;
  };
  /** Flushes a text channel into `delta[key]`; true when it held something. */
  const flushText = (channel: StreamChannel | undefined, delta: ChunkDelta, key: 'content' | 'refusal'): boolean => {
    const rest = channel?.flush();
    if (!rest) return false;
    const current = delta[key];
    delta[key] = (typeof current === 'string' ? current : '') + rest;
    return true;
  };
  /** Flushes a choice's channels into `delta`. */
  const flushChoice = (i: number, delta: ChunkDelta): boolean => {
    // Both flushed, whatever the first gave (no short circuit).
    let any = flushText(content.get(i), delta, textKind.get(i) ?? 'content');
    const calls = toolLabels.get(i);
    if (calls) {
      for (const t of calls.keys()) {
        const rel = flushTool(i, t);
        if (rel === undefined) continue;
        any = true;
        appendTool(delta, t, rel);
      }
    }
    return any;
  };

  const labels = new ChunkLabels(proc, stopSequences);

  for await (const upstreamChunk of chunks) {
    const chunk = labels.apply(upstreamChunk);
    last = chunk;
    if (sequential) {
      yield* sequentialChunks(chunk);
      continue;
    }
    const choices = chunk.choices.map((choice) => {
      const delta: ChunkDelta = { ...choice.delta };
      for (const kind of TEXT_KINDS) {
        const piece = delta[kind];
        if (typeof piece !== 'string') continue;
        if (piece !== '') textKind.set(choice.index, kind);
        delta[kind] = textOf(content, choice.index).push(piece);
      }
      if (delta.tool_calls) delta.tool_calls = delta.tool_calls.map((tc) => toolPiece(choice.index, tc));
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) flushChoice(choice.index, delta);
      return { ...choice, delta };
    });
    yield { ...chunk, choices };
  }
  // Stream ended without finish_reason for some choices: flush what they still hold.
  if (last) {
    const choices: CompletionChunk['choices'] = [];
    const indexes = new Set<number>([...content.keys(), ...toolLabels.keys()]);
    for (const i of indexes) {
      const delta: ChunkDelta = {};
      if (flushChoice(i, delta)) choices.push({ index: i, delta, finish_reason: null });
    }
    if (choices.length > 0) yield { id: last.id, model: last.model, created: last.created, choices };
  }

  /**
   * A chunk of a sequential stream, as one or more chunks: a delta holds its text before its tool
   * calls, so when the channel a choice left must come out after text this chunk brings (a tool
   * call's tail, then text), the text goes in a chunk of its own after it.
   */
  function* sequentialChunks(chunk: CompletionChunk): Generator<CompletionChunk> {
    const perChoice = chunk.choices.map((choice) => {
      const i = choice.index;
      // The delta's other members (role) stay; its text and tool calls are rebuilt below.
      const { content: _content, refusal: _refusal, tool_calls: _tools, ...rest } = choice.delta;
      const deltas: ChunkDelta[] = [rest];
      let delta = deltas[0]!;
      const addText = (key: 'content' | 'refusal', text: string): void => {
        // Text after tool calls, or the other kind of text, starts a new delta (an empty piece
        // only marks the channel, in the first delta).
        const other = key === 'content' ? 'refusal' : 'content';
        const apart = delta.tool_calls !== undefined || delta[other] !== undefined;
        if (text === '' && (apart || delta !== deltas[0])) return;
        if (apart) deltas.push((delta = {}));
        delta[key] = (delta[key] ?? '') + text;
      };
      const leave = (next: ChannelKey): void => {
        const was = current.get(i);
        current.set(i, next);
        if (was === undefined || was === next) return;
        if (typeof was === 'number') {
          const rel = flushTool(i, was);
          if (rel !== undefined) appendTool(delta, was, rel);
          return;
        }
        const rest = content.get(i)?.flush();
        if (rest) addText(textKind.get(i) ?? 'content', rest);
      };
      const d = choice.delta;
      // Only text moves the answer on: some upstreams send `content: ""` with every tool call
      // piece, which must not release the tool call's held-back tail each time.
      // Content and refusal go in one text block: one channel, so a value the model split
      // between them is redacted whole. Each piece's output keeps the kind of the piece it
      // comes with (a held tail of content may come out as refusal: the block is the same).
      for (const kind of TEXT_KINDS) {
        const piece = d[kind];
        if (typeof piece !== 'string') continue;
        if (piece !== '') {
          leave('text');
          textKind.set(i, kind);
        }
        addText(kind, textOf(content, i).push(piece));
      }
      for (const tc of d.tool_calls ?? []) {
        leave(tc.index);
        (delta.tool_calls ?? (delta.tool_calls = [])).push(toolPiece(i, tc));
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        const tail: ChunkDelta = {};
        if (flushChoice(i, tail)) {
          if (typeof tail.content === 'string') addText('content', tail.content);
          if (typeof tail.refusal === 'string') addText('refusal', tail.refusal);
          for (const tc of tail.tool_calls ?? []) appendTool(delta, tc.index, { id: tc.id, name: tc.function?.name, arguments: tc.function?.arguments });
        }
      }
      return { choice, deltas };
    });
    const count = Math.max(1, ...perChoice.map((c) => c.deltas.length));
    for (let k = 0; k < count; k++) {
      const final = k === count - 1;
      const choices: CompletionChunk['choices'] = [];
      for (const { choice, deltas } of perChoice) {
        const delta = deltas[k];
        if (delta === undefined) continue;
        // finish_reason (and the choice's other members) go with its last delta.
        const done = k === deltas.length - 1;
        choices.push(done ? { ...choice, delta } : { index: choice.index, delta, finish_reason: null });
      }
      // The chunk's other members (usage) go with the last piece.
      yield final ? { ...chunk, choices } : { id: chunk.id, model: chunk.model, created: chunk.created, choices };
    }
  }
}
