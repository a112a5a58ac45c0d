/**
 * PHONE_NUMBER: digit chunks (one per line) validated with libphonenumber-js. `+`/`00` numbers are
 * validated as international numbers; others against each configured region in turn. Shapes that
 * are something else (IPv4, dates, SSNs, ISBNs, decimals) are rejected before the costly check.
 *
 * Validation modes (`PhoneValidation`):
 * - `valid` (default): a *valid* number (assigned ranges, from libphonenumber's metadata compiled
 *   once: phone-metadata.ts) is a phone number with or without a context word. A number that is
 *   only *possible* (right length for a configured region, unassigned range: Faker's `+1-984-182-…`,
 *   the UK drama range `07700 9…`) counts only with a phone context word shortly before it
 *   (`phone`, `call`, `fax`, …), and scores lower (POSSIBLE_SCORE) than any valid number: the way
 *   Presidio's phone recognizer pairs a weak pattern with context.
 * - `valid-only`: valid numbers only, no context fallback (the strictest setting).
 * - `possible`: any possible number, context or not (explicitly looser, opt-in).
 *
 * In every mode a number right after an identifier word ("reference", "order", "invoice",
 * "ticket", …) is that identifier, not a phone, even with a phone word further back ("call
 * reference 2024-0117-33").
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import type { Detector, Finding } from '../types.js';
import { touchesDecimal, type DigitChunk } from './digit-runs.js';

/** A window inside a segment spans at most this many groups plus one (bounds the window search per start). */
const MAX_WINDOW_GROUPS = 12;
/**
 * Later starts tried for an amount before a decimal comma when the groups before its first start
 * are no phone's (scanBesideAmount): a phone ends in at most this many groups of three past it
 * ("+55 11 912 345 678" before ",12"). Bounds the readings of a long run of threes.
 */
const AMOUNT_TRIES = 3;
import { BLOCK_RUN, chunkCards, issuerMatches } from './credit-card.js';
import { plansFor, validInternational, validNationalInAny, type CompiledRegion } from './phone-metadata.js';
import { isDigitCode, isbn13Valid, luhnValid, mod11Valid } from './util.js';

export type PhoneValidation = 'valid' | 'valid-only' | 'possible';

/**
 * Base score of a number that is possible but not valid. Only ever emitted with a context word
 * before it, so the scanner adds the phone context boost (0.35): 0.65 in the end, under every
 * valid number with context (≥ 0.75) and above the default threshold (0.5).
 */
export const POSSIBLE_SCORE = 0.3;

/**
 * Words that name what the number right after them is ("order 2024-0117-33", "ref: 55512345"):
 * an identifier, not a phone. Only the one word directly before the number counts (with `:`,
 * `=`, `#`, `no.` between), so "call me about the order at 555-0134" is not affected.
 */
const IDENTIFIER_WORDS = new Set([
  'reference', 'ref', 'order', 'invoice', 'ticket', 'case', 'tracking', 'serial', 'isbn', 'ean', 'gtin', 'upc',
  'barcode', 'sku', 'version', 'build', 'release', 'id', 'po', 'receipt', 'transaction', 'confirmation',
  'booking', 'policy', 'claim', 'account', 'acct', 'item', 'part', 'model', 'batch', 'lot', 'shipment', 'parcel',
  'issue', 'pr', 'commit', 'job', 'run', 'page', 'room', 'flight',
]);
let longest = 0;
for (const w of IDENTIFIER_WORDS) longest = Math.max(longest, w.length);
const LONGEST_IDENTIFIER = longest;
/** Words between an identifier word and its value ("order no. 1234567", "case number: 1234567"). */
const NUMBER_WORDS = new Set(['no', 'nr', 'num', 'number']);

function isAsciiLetter(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

function isTokenChar(c: number): boolean {
  return isAsciiLetter(c) || (c >= 48 && c <= 57) || c === 45;
}

/**
 * Is the token directly before `start` (past spaces, `:`, `=`, `#`, `-`, `.`, and a "no."/"number")
 * an identifier word? A token's leading letters count ("EAN-13" is "ean").
 */
function afterIdentifierWord(text: string, start: number): boolean {
  // Bounded look-back: a few separators and one token, twice at most. (Plain functions, no
  // closure: this runs for most phone candidates.)
  const floor = Math.max(0, start - 48);
  let end = separatorsBefore(text, start, floor);
  let i = tokenStart(text, end, floor);
  let w = wordOf(text, i, end);
  if (NUMBER_WORDS.has(w)) {
    end = separatorsBefore(text, i, floor);
    i = tokenStart(text, end, floor);
    w = wordOf(text, i, end);
  }
  return IDENTIFIER_WORDS.has(w);
}

/**
 * Where the separators that end at `end` (exclusive) start, not below `floor`: ' ', tab, ':',
 * '=', '#', '-', '.' (a key's '=' names its value as its ':' does, "ref=...").
 */
function separatorsBefore(text: string, end: number, floor: number): number {
  let i = end;
  while (i > floor) {
    const c = text.charCodeAt(i - 1);
    if (c === 32 || c === 9 || c === 58 || c === 61 || c === 35 || c === 45 || c === 46) i--;
    else break;
  }
  return i;
}

/** Where the token that ends at `end` (exclusive) starts, not below `floor`. */
function tokenStart(text: string, end: number, floor: number): number {
  let i = end;
  while (i > floor && isTokenChar(text.charCodeAt(i - 1))) i--;
  return i;
}

/** The leading letters of the token [from, end), lower case ("EAN-13" is "ean"); '' past LONGEST_IDENTIFIER. */
function wordOf(text: string, from: number, end: number): string {
  let letters = from;
  while (letters < end && isAsciiLetter(text.charCodeAt(letters))) letters++;
  // No identifier word is longer than LONGEST_IDENTIFIER: skip the copy for longer words.
  return letters - from > LONGEST_IDENTIFIER ? '' : text.slice(from, letters).toLowerCase();
}

const EXTENSION = /[ \t]?(?:x|ext\.?|extension)[ \t]?\d{1,6}(?![A-Za-z0-9_])/y;

interface Segment {
  start: number;
  end: number;
  g0: number;
  g1: number;
}

/** An international candidate as libphonenumber-js parses it: `00` becomes `+`. */
function e164(candidate: string, digits: string, plus: boolean): string {
  return digits.startsWith('00') && !plus ? '+' + candidate.slice(candidate.indexOf('00') + 2) : candidate;
}

/** Digits in group `g` of `ch`. */
function groupLength(ch: DigitChunk, g: number): number {
  return ch.groupEnds[g]! - ch.groupStarts[g]!;
}

/** Group `g` of `ch` read as a number. */
function groupValue(text: string, ch: DigitChunk, g: number): number {
  return Number(text.slice(ch.groupStarts[g], ch.groupEnds[g]));
}

/**
 * Groups [g0, g1] have another thing's shape: a version, a decimal, an IPv4 address, an
 * SSN, a date, an ISBN. Read in place, without arrays of the window's lengths and separators: a
 * run of short groups ("x=9 9 9 9 ...") asks this of dozens of windows each.
 */
function looksLikeOtherThing(text: string, ch: DigitChunk, g0: number, g1: number, digits: string): boolean {
  const n = g1 - g0 + 1;
  if (groupLength(ch, g1) < 2) return true; // ISBN-10 check digit, versions "1.2.10.1"
  let allDots = n > 1;
  let anyDash = false;
  for (let g = g0; g < g1; g++) {
    const sep = ch.seps[g];
    if (sep !== '.') allDots = false;
    if (sep === '-') anyDash = true;
  }
  if (allDots) {
    if (n < 3) return true; // decimals
    if (n === 4 && groupLength(ch, g0) <= 3 && groupLength(ch, g0 + 1) <= 3 && groupLength(ch, g0 + 2) <= 3 && groupLength(ch, g1) <= 3) return true; // IPv4
  }
  if (n === 3) {
    const s0 = ch.seps[g0];
    const sameSeps = s0 === ch.seps[g0 + 1];
    const l0 = groupLength(ch, g0);
    const l1 = groupLength(ch, g0 + 1);
    const l2 = groupLength(ch, g1);
    if (l0 === 3 && l1 === 2 && l2 === 4 && sameSeps && s0 === '-') return true; // SSN
    // Dates: 4-2-2 or 2-2-4 with a plausible month and day.
    if (sameSeps && (s0 === '-' || s0 === '.')) {
      if (l0 === 4 && l1 === 2 && l2 === 2) {
        const month = groupValue(text, ch, g0 + 1);
        const day = groupValue(text, ch, g1);
        if (month >= 1 && month <= 12 && day >= 1 && day <= 31) return true;
      }
      if (l0 === 2 && l1 === 2 && l2 === 4) {
        const year = groupValue(text, ch, g1);
        if (groupValue(text, ch, g0) <= 31 && groupValue(text, ch, g0 + 1) <= 31 && year >= 1900 && year <= 2100) return true;
      }
    }
  }
  if (isbn13Valid(digits)) return true;
  if (digits.length === 10 && mod11Valid(digits) && anyDash && n === 4) return true;
  return false;
}

function segmentsOf(ch: DigitChunk): Segment[] {
  const segs: Segment[] = [];
  let g0 = 0;
  const n = ch.groupStarts.length;
  for (let g = 0; g < n; g++) {
    if (g === n - 1 || ch.breakAfter[g]) {
      segs.push({ start: g0 === 0 ? ch.start : ch.groupStarts[g0]!, end: ch.groupEnds[g]!, g0, g1: g });
      g0 = g + 1;
    }
  }
  return segs;
}

/**
 * The card numbers the card detector finds in the chunk, or null when there is none. Chunks too
 * short to hold a card cost one comparison.
 */
function cardsIn(text: string, ch: DigitChunk, plans: readonly CompiledRegion[]): readonly Finding[] | null {
  if (ch.groupEnds[ch.groupEnds.length - 1]! - ch.groupStarts[0]! < 12) return null;
  const cards = chunkCards(text, ch, plans);
  return cards.length === 0 ? null : cards;
}

/**
 * Which groups of `ch` lie inside one of `cards`. One sweep over the groups in start order (a
 * long run can hold thousands of card-shaped windows: not every group per card).
 */
function groupsInCards(ch: DigitChunk, cards: readonly Finding[]): Uint8Array {
  const inCard = new Uint8Array(ch.groupStarts.length);
  const sorted = cards.length > 1 ? cards.slice().sort((a, b) => a.start - b.start) : cards;
  let g = 0;
  let reach = -1; // the furthest end of the cards that start at or before the current group
  let c = 0;
  for (; g < inCard.length; g++) {
    while (c < sorted.length && sorted[c]!.start <= ch.groupStarts[g]!) reach = Math.max(reach, sorted[c++]!.end);
    if (ch.groupEnds[g]! <= reach) inCard[g] = 1;
  }
  return inCard;
}

/**
 * The segments with `cards` cut out: a phone number and a card on one line ("+1 415 555 0134
 * 4111 1111 1111 1111") are one chunk, and as a whole they are no phone number, nor is the card's
 * run of 4-digit blocks a phone list. Only an extra reading: the card may not be reported (not
 * wanted, after "order", allow-listed) and a card-shaped window is often just two phone numbers
 * on one line, so the chunk is searched uncut too (createPhoneDetector).
 */
function segmentsBesideCards(ch: DigitChunk, segs: Segment[], inCard: Uint8Array): Segment[] {
  const out: Segment[] = [];
  for (const seg of segs) {
    let g0 = -1;
    for (let g = seg.g0; g <= seg.g1 + 1; g++) {
      const free = g <= seg.g1 && inCard[g] === 0;
      if (free && g0 < 0) g0 = g;
      else if (!free && g0 >= 0) {
        // A segment the cut left whole was searched already.
        if (g0 !== seg.g0 || g - 1 !== seg.g1) out.push({ start: g0 === 0 ? ch.start : ch.groupStarts[g0]!, end: ch.groupEnds[g - 1]!, g0, g1: g - 1 });
        g0 = -1;
      }
    }
  }
  return out;
}

/**
 * The beside reading's findings that the chunk's findings (`whole`, read uncut) leave room for:
 * one that overlaps no uncut finding, or only uncut findings that run into a card. Those read
 * the card's digits as a phone's, and a reported card wins them ("Amex 3782 822463 10005 (415)
 * 555 2671" reads "10005 (415) 555"): the phone beside the card must then be there to mask what
 * they held. Where the card is not reported the two phone readings partly overlap, and the
 * scanner masks them as one span (resolveOverlaps).
 */
function besideKept(text: string, whole: readonly Finding[], beside: readonly Finding[], cards: readonly Finding[]): Finding[] {
  const overlaps = (a: Finding, b: Finding): boolean => a.start < b.end && b.start < a.end;
  return beside.filter((f) => {
    const over = whole.filter((u) => overlaps(f, u));
    if (over.every((u) => cards.some((c) => overlaps(u, c)))) return true;
    // An uncut reading that took part of this number ("7946 0344 415 555" before "415 555 2009")
    // and leaves a digit of it in clear: kept too, and the scanner masks the two as one span.
    for (let i = f.start; i < f.end; i++) {
      if (isDigitCode(text.charCodeAt(i)) && !over.some((u) => u.start <= i && i < u.end)) return true;
    }
    return false;
  });
}

/** Group `g` of `ch` lies inside one of `fs`. */
function groupIn(ch: DigitChunk, fs: readonly Finding[], g: number): boolean {
  return fs.some((f) => f.start <= ch.groupStarts[g]! && ch.groupEnds[g]! <= f.end);
}

/** Every group of `ch` from g0 to g1 lies inside one of `fs`. */
function groupsCovered(ch: DigitChunk, fs: readonly Finding[], g0: number, g1: number): boolean {
  for (let g = g0; g <= g1; g++) if (!groupIn(ch, fs, g)) return false;
  return true;
}

/**
 * Group `a - 1` of `seg` may lead an amount whose groups of three start at `a`: one to three
 * digits joined to them as thousands are, with no leading '0' (a trunk prefix, never an amount's).
 */
function amountLead(text: string, ch: DigitChunk, seg: Segment, a: number): boolean {
  if (a - 1 < seg.g0 || groupLength(ch, a - 1) > 3) return false;
  if (text.charCodeAt(ch.groupStarts[a - 1]!) === 48 && groupLength(ch, a - 1) > 1) return false;
  const sep = ch.seps[a - 1];
  return sep === ' ' || sep === '.';
}

/**
 * The chunk's first group is the fraction of a decimal-comma number written right before it
 * ("1 234,56 1 234,56": the second chunk's "56"): one or two digits after a digit and ',', and
 * a space after them.
 */
function startsWithFraction(text: string, ch: DigitChunk): boolean {
  const s = ch.groupStarts[0]!;
  if (s !== ch.start || s < 2 || groupLength(ch, 0) > 2 || ch.seps.length === 0 || !ch.seps[0]!.includes(' ')) return false;
  return text.charCodeAt(s - 1) === 44 && isDigitCode(text.charCodeAt(s - 2));
}

/**
 * What a phone detector's tryWindow read of one window (it reads none twice in a chunk read
 * more than once): no number before its validation (NOT_REACHED), none after (REACHED: a
 * segment with such a window gets the context-rule pass), or the number it found.
 */
type WindowRead = typeof NOT_REACHED | typeof REACHED | { start: number; end: number; score: number; word: boolean };
const NOT_REACHED = 0;
const REACHED = 1;

/** A space or a tab separates groups g and g + 1 of `ch`: a window may end or start there. */
function spaceCut(ch: DigitChunk, g: number): boolean {
  const sep = ch.seps[g]!;
  return sep.includes(' ') || sep.includes('\t');
}

/** Digits in groups [g0, g1] of `ch`. */
function digitsIn(ch: DigitChunk, g0: number, g1: number): number {
  let d = 0;
  for (let g = g0; g <= g1; g++) d += ch.groupEnds[g]! - ch.groupStarts[g]!;
  return d;
}

/**
 * tryWindow's cheapest refusals, made before a call: windows of 7 to 17 digits only, and none
 * that ends in a one-digit group (looksLikeOtherThing: a check digit, a version's last part).
 * Most windows of a long run of short groups fail one of them.
 */
function cheaplyRefused(ch: DigitChunk, g1: number, digits: number): boolean {
  return digits < 7 || digits > 17 || ch.groupEnds[g1]! - ch.groupStarts[g1]! < 2;
}

/** Validation results a detect call keeps, or a stream across its scans (see `validated` there). */
const VALIDATED_MAX = 4096;

/**
 * For each group of `seg` (index from seg.g0), the first group at or after it that lies in a
 * run of BLOCK_RUN or more 4-digit groups (the run's first block left out when BLOCK_RUN more
 * follow it); null when the segment has no such run.
 */
function blockRuns(ch: DigitChunk, seg: Segment): Int32Array | null {
  let out: Int32Array | null = null;
  let runStart = -1;
  for (let g = seg.g0; g <= seg.g1 + 1; g++) {
    const block = g <= seg.g1 && ch.groupEnds[g]! - ch.groupStarts[g]! === 4;
    if (block) {
      if (runStart < 0) runStart = g;
      continue;
    }
    if (runStart >= 0 && g - runStart >= BLOCK_RUN) {
      out ??= new Int32Array(seg.g1 - seg.g0 + 1).fill(seg.g1 + 1);
      // With a run's worth of blocks after it, its first block may end the phone before it
      // ("415 555 0199 4111 1111 1111 1111": most phones end in four digits).
      const from = g - runStart > BLOCK_RUN ? runStart + 1 : runStart;
      for (let k = from; k < g; k++) out[k - seg.g0] = k;
    }
    runStart = -1;
  }
  if (out !== null) for (let i = out.length - 2; i >= 0; i--) out[i] = Math.min(out[i]!, out[i + 1]!);
  return out;
}

/**
 * A search that left digits of a segment uncovered (the tail of the next number, as a rule) looks
 * again for a split that covers more, however few: "06 12 34 56 78 06 12 34 56 79 06 11 22 33 44"
 * reads "06 12 34 56 78 06 12" and "34 56 79 06 11 22 33" first, and "44" is a phone number's
 * tail. Fewer than this many left over may also be a number of their own ("+1 415 555 2671 123")
 * or a card's last group ("call me at 3782 8224 6310 005"); there the second search may not read
 * the digits as fewer numbers that stand on their shape alone (not only on a phone word before
 * them) than the first did: two bare pairs of groups after "call" are not a phone number
 * worth giving up the 3-group one for.
 */
const MIN_LEFT_DIGITS = 4;

/**
 * A split of `seg` into windows (each a valid number, from a start to an end where a space cuts
 * groups) that covers every digit the first search's windows (`found`) cover and more, or null
 * when there is none. By dynamic programming from the segment's end, a digit the first search
 * covered weighing more than all the others together: "415 555 2671 536-22-1234" must not trade
 * its phone for a longer window over "2671 536-22-1234". A window that could not beat the best
 * split known from its start is never validated. `coverAll`: only a split that covers every
 * digit of `seg`, else null.
 */
function coveringSplit(
  ch: DigitChunk,
  seg: Segment,
  found: ReadonlyArray<{ g0: number; g1: number }>,
  cut: (g: number) => boolean,
  canEnd: (g1: number) => boolean,
  lastEnd: (g0: number) => number,
  windowAt: (g0: number, g1: number, digits: number) => Finding | null,
  coverAll = false,
): Finding[] | null {
  const size = seg.g1 - seg.g0 + 2;
  const length = (g: number): number => ch.groupEnds[g]! - ch.groupStarts[g]!;
  // Each group's weight: its digits, times `heavy` where the first search covered it.
  let heavy = 1;
  for (let g = seg.g0; g <= seg.g1; g++) heavy += length(g);
  const weight = new Float64Array(size);
  for (let g = seg.g0; g <= seg.g1; g++) weight[g - seg.g0] = length(g);
  let firstScore = 0;
  for (const w of found) {
    for (let g = w.g0; g <= w.g1; g++) {
      weight[g - seg.g0] = length(g) * heavy;
      firstScore += length(g) * heavy;
    }
  }
  const best = new Float64Array(size); // best[i]: the weight covered from group seg.g0 + i on
  const end = new Int32Array(size).fill(-1); // the last group of the window taken there, or -1
  const taken: Array<Finding | undefined> = new Array<Finding | undefined>(size);
  for (let g0 = seg.g1; g0 >= seg.g0; g0--) {
    const i = g0 - seg.g0;
    best[i] = best[i + 1]!;
    if (g0 > seg.g0 && !cut(g0 - 1)) continue;
    const last = lastEnd(g0);
    let digits = 0;
    let covered = 0;
    for (let g = g0; g <= last; g++) {
      digits += length(g);
      covered += weight[g - seg.g0]!;
    }
    // The windows from g0 that would beat the best split known from here, longest first. The
    // one taken is the valid window of the highest total, the longest of those that tie (read
    // longest first, a window replaced the one before only when it beat it): so they are read
    // highest total first, and the first valid one is taken. Reading every one that beat the
    // best found so far read, in a table of numbers, three windows for each one taken.
    let n = 0;
    for (let g1 = last; g1 >= g0; digits -= length(g1), covered -= weight[g1 - seg.g0]!, g1--) {
      if (!canEnd(g1) || (g0 === seg.g0 && g1 === seg.g1)) continue;
      const total = covered + best[g1 - seg.g0 + 1]!;
      if (total <= best[i]!) continue;
      candidateEnd[n] = g1;
      candidateTotal[n] = total;
      candidateDigits[n++] = digits;
    }
    for (;;) {
      let k = -1;
      for (let c = 0; c < n; c++) if (candidateEnd[c]! >= 0 && (k < 0 || candidateTotal[c]! > candidateTotal[k]!)) k = c;
      if (k < 0) break;
      const g1 = candidateEnd[k]!;
      candidateEnd[k] = -1;
      const f = windowAt(g0, g1, candidateDigits[k]!);
      if (!f) continue;
      best[i] = candidateTotal[k]!;
      end[i] = g1;
      taken[i] = f;
      break;
    }
  }
  if (best[0]! <= firstScore) return null;
  if (coverAll) {
    let all = 0;
    for (let i = 0; i < size - 1; i++) all += weight[i]!;
    if (best[0]! < all) return null;
  }
  const windows: Finding[] = [];
  for (let g = seg.g0; g <= seg.g1; g++) {
    const i = g - seg.g0;
    if (end[i]! < 0) continue;
    windows.push(taken[i]!);
    g = end[i]!;
  }
  return windows;
}

/**
 * coveringSplit's windows from one start (at most a chunk's groups, MAX_GROUPS in digit-runs.ts):
 * last group, total, digits. Shared: coveringSplit calls nothing that calls it again.
 */
const candidateEnd = new Int32Array(64);
const candidateTotal = new Float64Array(64);
const candidateDigits = new Int32Array(64);

/** A window the first search found: its finding and its groups. */
export interface FoundWindow {
  f: Finding;
  g0: number;
  g1: number;
}

/**
 * The first search's windows (`found`, in order) with each gap they leave (the groups between
 * two windows, before the first or after the last) repaired from the window before it to the
 * window after it: where the first search took the head of the next number, the numbers shift
 * by a group or two, and the gap's neighbours hold the split that covers it. Gaps that share a
 * window are repaired together. Null when some gap's neighbourhood has no split that covers all
 * of it (the caller searches the whole segment then). `repair(range, inRange, uncovered)`: the
 * split of `range` that covers every digit of it, or null.
 */
export function repairGaps(
  ch: DigitChunk,
  seg: Segment,
  found: readonly FoundWindow[],
  repair: (range: Segment, inRange: readonly FoundWindow[], uncovered: number) => Finding[] | null,
): Finding[] | null {
  const k = found.length;
  const gapFrom = (i: number): number => (i === 0 ? seg.g0 : found[i - 1]!.g1 + 1);
  const gapTo = (i: number): number => (i === k ? seg.g1 : found[i]!.g0 - 1);
  const out: Finding[] = [];
  let next = 0; // the first window not yet in `out`
  for (let i = 0; i <= k; i++) {
    if (gapFrom(i) > gapTo(i)) continue;
    let uncovered = 0;
    let j = i;
    for (;;) {
      for (let g = gapFrom(j); g <= gapTo(j); g++) uncovered += ch.groupEnds[g]! - ch.groupStarts[g]!;
      if (j === k || gapFrom(j + 1) > gapTo(j + 1)) break;
      j++;
    }
    const from = Math.max(i - 1, 0);
    const to = Math.min(j, k - 1);
    const g0 = i === 0 ? seg.g0 : found[from]!.g0;
    const g1 = j === k ? seg.g1 : found[to]!.g1;
    const split = repair({ start: g0 === 0 ? ch.start : ch.groupStarts[g0]!, end: ch.groupEnds[g1]!, g0, g1 }, found.slice(from, to + 1), uncovered);
    if (split === null) return null;
    for (; next < from; next++) out.push(found[next]!.f);
    for (const f of split) out.push(f);
    next = to + 1;
    i = j;
  }
  for (; next < k; next++) out.push(found[next]!.f);
  return out;
}

export function createPhoneDetector(validation: PhoneValidation = 'valid'): Detector {
  return {
    name: 'phone',
    entities: ['PHONE_NUMBER'],
    // A window of one digit chunk holds at least 7 national digits (tryWindow's nationalLen).
    mayMatch: (t) => t.chunkDigits >= 7,
    detect(text, ctx, out: Finding[]) {
      const plans = plansFor(ctx.phoneRegions);
      /** Right length (libphonenumber `isPossible`) for a configured region; `anyCountry` for `+` numbers in `possible` mode. */
      const possible = (candidate: string, e164: string | null, anyCountry: boolean): boolean => {
        if (e164 !== null) {
          const p = parsePhoneNumberFromString(e164);
          if (!p || !p.isPossible()) return false;
          if (anyCountry) return true;
          for (const plan of plans) if (plan.callingCode === p.countryCallingCode) return true;
          return false;
        }
        for (const plan of plans) {
          if (parsePhoneNumberFromString(candidate, plan.region as CountryCode)?.isPossible()) return true;
        }
        return false;
      };
      /**
       * Set when a window of the segment being scanned passed every shape check and was
       * validated: only then can the context-rule pass find anything there (it applies the same
       * checks), so segments of dates, versions, short numbers skip it at no cost.
       */
      let reachedValidation = false;
      /**
       * Validation results by digits: a list of numbers is read by two searches (see
       * coveringSplit), a long run repeats its windows' digits, and a stream scans its window
       * again for every piece (the map is then the stream's, see ScanOptions.phoneValidations).
       */
      const validated = ctx.phoneValidations();
      /** The findings that a phone word before them made (their shape alone is not enough). */
      const byWord = new WeakSet<Finding>();
      const shaped = (fs: readonly Finding[]): number => fs.reduce((n, f) => (byWord.has(f) ? n : n + 1), 0);
      /**
       * The first group of the chunk being read that is an amount's before a decimal comma: no
       * window reaches it. Set by scanSegments for each segment (see scanBesideAmount).
       */
      let amountAt = Number.MAX_SAFE_INTEGER;
      /**
       * What tryWindow read of each window of the chunk being read (see WindowRead), or null
       * where the chunk is read once: a segment beside an amount is read from several starts
       * (scanBesideAmount), and its readings share most windows.
       */
      let windows: Map<number, WindowRead> | null = null;
      const phoneFinding = (start: number, end: number, score: number, word: boolean): Finding => {
        const f: Finding = { entity: 'PHONE_NUMBER', start, end, score };
        if (word) byWord.add(f);
        return f;
      };
      /**
       * The phone finding for groups [g0, g1] of `ch`, or null. `fallback`: the context-rule pass
       * (a possible number after a phone word), run only where the first pass found nothing.
       * `shapedOnly`: only a number whose shape is enough without a phone word (see `byWord`).
       */
      const tryWindow = (ch: DigitChunk, g0: number, g1: number, fallback: boolean, shapedOnly = false): Finding | null => {
        // Into an amount (touchesDecimal below): refused before anything is built or looked up.
        if (g1 >= amountAt) return null;
        if (windows === null) return readWindow(ch, g0, g1, fallback, shapedOnly);
        const key = (((g0 << 6) | g1) << 2) | (fallback ? 2 : 0) | (shapedOnly ? 1 : 0);
        const known = windows.get(key);
        if (known === undefined) {
          const reachedBefore = reachedValidation;
          reachedValidation = false;
          const f = readWindow(ch, g0, g1, fallback, shapedOnly);
          windows.set(key, f === null ? (reachedValidation ? REACHED : NOT_REACHED) : { start: f.start, end: f.end, score: f.score, word: byWord.has(f) });
          reachedValidation ||= reachedBefore;
          return f;
        }
        if (known === NOT_REACHED) return null;
        if (!fallback) reachedValidation = true;
        return known === REACHED ? null : phoneFinding(known.start, known.end, known.score, known.word);
      };
      const readWindow = (ch: DigitChunk, g0: number, g1: number, fallback: boolean, shapedOnly: boolean): Finding | null => {
        // Counted before anything is built: most windows of a long run of short groups ("x=9 9 9
        // 9 ...") hold too few digits or too many, and each was a string and an object for nothing.
        let count = 0;
        for (let g = g0; g <= g1; g++) count += ch.groupEnds[g]! - ch.groupStarts[g]!;
        if (count < 7 || count > 17) return null; // nationalLen (below) is count, or count - 2
        // A '00' lead (an international number) read in place: a window of 16 or 17 digits, the
        // first one tried from each start in a run of short groups, is refused before its
        // digits are copied into a string.
        const s0 = ch.groupStarts[g0]!;
        const lead00 = text.charCodeAt(s0) === 48 && text.charCodeAt(ch.groupEnds[g0]! - s0 > 1 ? s0 + 1 : ch.groupStarts[g0 + 1]!) === 48;
        const intl = (g0 === 0 && ch.plus) || lead00;
        const nationalLen = lead00 ? count - 2 : count;
        if (nationalLen < 7 || nationalLen > 15) return null;
        // "0.415-555-2671", "415 555 2671.25": a decimal number's digits, not a phone's.
        if (touchesDecimal(ch, g0, g1, amountAt)) return null;
        const segEnd = ch.groupEnds[g1]!;
        let start = g0 === 0 ? ch.start : s0;
        if (g0 > 0 && text.charCodeAt(start - 1) === 40) start--; // "(579)" after a separator
        let end = segEnd;
        // Extension ("x0135", " ext. 12") only after the chunk's last group.
        let hasExt = false;
        if (g1 === ch.groupStarts.length - 1) {
          EXTENSION.lastIndex = end;
          const m = EXTENSION.exec(text);
          if (m) {
            end += m[0].length;
            hasExt = true;
          } else if (ch.letterAfter) return null;
        }
        let digits = '';
        for (let g = g0; g <= g1; g++) digits += text.slice(ch.groupStarts[g], ch.groupEnds[g]);
        if (looksLikeOtherThing(text, ch, g0, g1, digits)) return null;
        // A card number is the card detector's (and not worth a phone lookup).
        if (!intl && digits.length >= 12 && issuerMatches(digits) && luhnValid(digits)) return null;
        const formatted = g1 > g0 || text.charCodeAt(start) === 40;
        // Two bare groups ("638 2229") are as often a house and street number as a phone, and
        // a bare digit run is as often an id or a timestamp: both need a context word.
        const groups = g1 - g0 + 1;
        // A leading trunk prefix ("030 12345678") is phone-like enough on its own.
        const trunk = digits.charCodeAt(0) === 48;
        const score = intl ? 0.85 : (formatted && (groups >= 3 || trunk)) || hasExt ? 0.75 : formatted ? 0.45 : 0.4;
        if (score < 0.5 && (shapedOnly || !ctx.contextBefore('PHONE_NUMBER', start))) return null;
        // Last of the shape checks: it reads the word before, and most windows never get here.
        if (afterIdentifierWord(text, start)) return null;
        if (!fallback) reachedValidation = true;
        if (fallback) {
          // The first pass found this window not valid. The libphonenumber-js parse only runs
          // for the few candidates with a phone word before them.
          if (!ctx.contextBefore('PHONE_NUMBER', start)) return null;
          const candidate = text.slice(start, segEnd);
          return possible(candidate, intl ? e164(candidate, digits, g0 === 0 && ch.plus) : null, false) ? phoneFinding(start, end, POSSIBLE_SCORE, true) : null;
        }
        if (validation === 'possible') {
          const candidate = text.slice(start, segEnd);
          return possible(candidate, intl ? e164(candidate, digits, g0 === 0 && ch.plus) : null, true) ? phoneFinding(start, end, score, score < 0.5) : null;
        }
        const key = intl ? `+${digits}` : digits;
        let valid = validated.get(key);
        if (valid === undefined) {
          valid = intl ? validInternational(digits.startsWith('00') ? digits.slice(2) : digits) : validNationalInAny(plans, digits);
          if (validated.size >= VALIDATED_MAX) validated.clear(); // bounded on a long text of varied digits
          validated.set(key, valid);
        }
        return valid ? phoneFinding(start, end, score, score < 0.5) : null;
      };
      /**
       * The last group a window of `seg` from group g0 may end in: MAX_WINDOW_GROUPS past it at
       * most, before a run of 4-digit blocks (blockedFrom, see blockRuns) and before an amount.
       */
      const windowEnd = (ch: DigitChunk, seg: Segment, blockedFrom: Int32Array | null, g0: number): number =>
        Math.min(seg.g1, g0 + MAX_WINDOW_GROUPS, blockedFrom === null ? seg.g1 : blockedFrom[g0 - seg.g0]! - 1, amountAt - 1);
      /** Pushes the numbers found in one segment (whole, else windows inside); how many. */
      const scanSegment = (ch: DigitChunk, seg: Segment, fallback: boolean, sink: Finding[]): number => {
        const whole = tryWindow(ch, seg.g0, seg.g1, fallback);
        if (whole) {
          sink.push(whole);
          return 1;
        }
        // Not one number: look for numbers inside, cut only where a space separates groups
        // ("call 415-555-2671 2 times", two numbers on one line). A '-' or '.' joined group
        // never loses its neighbour. A window spans at most MAX_WINDOW_GROUPS + 1 groups, so a
        // long list of numbers ("415 555 2671 415 555 0134 …") costs in proportion to its length.
        // Runs of 4-digit blocks are cards, tracking and account numbers, not phone lists: no
        // window reaches into one (a phone beside one is still read).
        // Nor into an amount's groups before a decimal comma (touchesDecimal would refuse each).
        const blockedFrom = blockRuns(ch, seg);
        // The longest number from each start, as a reader splits "call 415-555-2671 2 times".
        // (Read with the helpers below, not closures: a segment beside an amount is read up to
        // five times, and most readings end here.)
        const found: FoundWindow[] = [];
        let covered = 0;
        for (let g0 = seg.g0; g0 <= seg.g1; g0++) {
          if (g0 > seg.g0 && !spaceCut(ch, g0 - 1)) continue;
          const last = windowEnd(ch, seg, blockedFrom, g0);
          let digits = digitsIn(ch, g0, last);
          for (let g1 = last; g1 >= g0; digits -= ch.groupEnds[g1]! - ch.groupStarts[g1]!, g1--) {
            if ((g1 !== seg.g1 && !spaceCut(ch, g1)) || (g0 === seg.g0 && g1 === seg.g1)) continue;
            const f = cheaplyRefused(ch, g1, digits) ? null : tryWindow(ch, g0, g1, fallback);
            if (!f) continue;
            found.push({ f, g0, g1 });
            covered += digits;
            g0 = g1;
            break;
          }
        }
        // The longest first can take the head of the next number and leave its tail in clear:
        // "415 555 2671 415 555 0134" reads "4155552671415" (a valid number where lengths vary)
        // and then "555 0134" is no number. When that leaves any digit uncovered, the split that
        // covers the most digits wins (with fewer than MIN_LEFT_DIGITS left, one that reads as
        // many numbers by their shape). Searched first around each gap only (repairGaps): a
        // search of the whole segment for every gap was most of the time of a long list of
        // distinct short groups; the whole segment is searched when a gap's neighbours fail.
        const left = digitsIn(ch, seg.g0, seg.g1) - covered;
        // No window reaches an amount's groups (windowEnd): digits left only there are no gap a
        // split could cover, and each search below would keep `found` (the first reading of a
        // segment beside an amount, scanBesideAmount, left its amount so every time).
        const coverable = amountAt > seg.g1 ? left : digitsIn(ch, seg.g0, amountAt - 1) - covered;
        if (found.length === 0 || coverable === 0) {
          for (const w of found) sink.push(w.f);
          return found.length;
        }
        const lastEnd = (g0: number): number => windowEnd(ch, seg, blockedFrom, g0);
        const cut = (g: number): boolean => spaceCut(ch, g);
        const windowOf =
          (shapedOnly: boolean) =>
          (g0: number, g1: number, digits: number): Finding | null =>
            cheaplyRefused(ch, g1, digits) ? null : tryWindow(ch, g0, g1, fallback, shapedOnly);
        const windowAt = windowOf(false);
        const canEnd = (g1: number): boolean => g1 === seg.g1 || cut(g1);
        /** A split of `range` that covers more than `inRange` (the found windows in it) do. */
        const repair = (range: Segment, inRange: readonly FoundWindow[], uncovered: number, coverAll: boolean): Finding[] | null => {
          const end = range.g1 === seg.g1 ? lastEnd : (g0: number): number => Math.min(range.g1, lastEnd(g0));
          let split = coveringSplit(ch, range, inRange, cut, canEnd, end, windowAt, coverAll);
          if (split !== null && uncovered < MIN_LEFT_DIGITS && shaped(split) < shaped(inRange.map((w) => w.f))) {
            split = coveringSplit(ch, range, inRange, cut, canEnd, end, windowOf(true), coverAll);
          }
          return split;
        };
        const local = repairGaps(ch, seg, found, (range, inRange, uncovered) => repair(range, inRange, uncovered, true));
        const split = local ?? repair(seg, found, left, false);
        if (split !== null) {
          for (const w of split) sink.push(w);
          return split.length;
        }
        for (const w of found) sink.push(w.f);
        return found.length;
      };
      /** Reads one segment into `sink` with no window reaching group `amount` on; `sink`. */
      const readUpTo = (ch: DigitChunk, seg: Segment, amount: number, sink: Finding[] = []): Finding[] => {
        amountAt = amount;
        // Valid numbers first, exactly as without the context rule; the rule only adds a
        // finding where no valid number was found in the segment.
        reachedValidation = false;
        if (scanSegment(ch, seg, false, sink) === 0 && validation === 'valid' && reachedValidation) scanSegment(ch, seg, true, sink);
        return sink;
      };
      /**
       * The last phone of `reading` (read with no window reaching group `a`) is, or ends in, the
       * head of a longer phone that goes on over groups of three into group `a` or past it:
       * "0170 123" into "0170 123 456,78", "+44 7911 123" into "+44 7911 123 456,12" (a phone
       * written in threes may end in them), "… 78 04" into "04 123 456,78" (a group opening
       * with a trunk '0' is a phone's start as much as another's end). Those groups are then as
       * much a phone's digits as an amount's. A phone that ends in another group ("06 12 34 56
       * 78") does not go on in threes, nor does one over an amount's lead of one or two digits
       * ("415 555 0134 1 234 567,89"), whatever a region's long numbers allow.
       */
      const goesOnInThrees = (ch: DigitChunk, seg: Segment, reading: readonly Finding[], a: number): boolean => {
        const f = reading[reading.length - 1];
        if (f === undefined) return false;
        let s = seg.g0;
        while (ch.groupEnds[s]! <= f.start) s++;
        let e = s;
        while (e < seg.g1 && ch.groupEnds[e + 1]! <= f.end) e++;
        if (groupLength(ch, e) !== 3) {
          if (groupLength(ch, e) < 2 || text.charCodeAt(ch.groupStarts[e]!) !== 48) return false;
          s = e;
        }
        let last = e;
        while (last < seg.g1 && groupLength(ch, last + 1) === 3) last++;
        if (last < a) return false;
        amountAt = Number.MAX_SAFE_INTEGER;
        for (let g0 = s; g0 <= e; g0++) {
          if (g0 > s && !ch.seps[g0 - 1]!.includes(' ') && !ch.seps[g0 - 1]!.includes('\t')) continue;
          for (let g1 = a; g1 <= Math.min(last, g0 + MAX_WINDOW_GROUPS); g1++) {
            if (tryWindow(ch, g0, g1, false) !== null || (validation === 'valid' && tryWindow(ch, g0, g1, true) !== null)) return true;
          }
        }
        return false;
      };
      /**
       * Some window over group `h` that ends before group `a` reads as a number (a valid one, or
       * where the context rule applies a possible one): else no reading kept off an amount from
       * `a` on (readUpTo) covers `h`. tryWindow remembers the windows, and a reading that follows
       * reads none of them again.
       */
      const mayCover = (ch: DigitChunk, seg: Segment, h: number, a: number): boolean => {
        amountAt = a;
        for (let g0 = Math.max(seg.g0, h - MAX_WINDOW_GROUPS); g0 <= h; g0++) {
          const last = Math.min(a - 1, g0 + MAX_WINDOW_GROUPS);
          let digits = 0;
          for (let g = g0; g <= last; g++) digits += groupLength(ch, g);
          for (let g1 = last; g1 >= h; digits -= groupLength(ch, g1), g1--) {
            if (digits < 7 || digits > 17) continue; // tryWindow's first refusal
            if (tryWindow(ch, g0, g1, false) !== null || (validation === 'valid' && tryWindow(ch, g0, g1, true) !== null)) return true;
          }
        }
        return false;
      };
      /**
       * A segment ending in groups of three before a decimal comma (ch.amountFrom). They are an
       * amount's only where that leaves no phone digit in clear: where the groups before the
       * amount (its lead aside: one to three digits, no trunk '0', an amount's or a phone's
       * last; and a first group that is the fraction of an amount right before the chunk, "1
       * 234,56 1 234,56") are phones that go on as no longer phone in threes into the amount
       * ("06 12 34 56 78 1 234 567,89", see goesOnInThrees), or where there are none ("12 345
       * 678,90"). A phone's own last groups are threes too ("0170 123 456,78": "0170 123" is a
       * phone as well): the amount is then tried from each next group of three, and failing
       * that the segment is read as if there were no amount. That masks an amount's digits with
       * a phone reading ("2024 1 234 567,89", "07911 123 456 100,00"): a digit masked too many
       * rather than a phone's left in clear.
       */
      const scanBesideAmount = (ch: DigitChunk, seg: Segment, sink: Finding[]): void => {
        const from = Math.max(ch.amountFrom, seg.g0);
        const headStart = seg.g0 === 0 && startsWithFraction(text, ch) ? 1 : seg.g0;
        // Digits before each start, counted as it moves on: a window holds seven at least, so
        // with fewer before the amount no window can be read there and the reading is empty.
        // Nor is a segment read for a start whose head no reading could cover (mayCover).
        let before = 0;
        for (let g = seg.g0; g < from; g++) before += groupLength(ch, g);
        for (let a = from; a <= Math.min(seg.g1, from + AMOUNT_TRIES); before += groupLength(ch, a), a++) {
          const headEnd = amountLead(text, ch, seg, a) ? a - 2 : a - 1;
          const unread = before < 7 || (headEnd >= headStart && !mayCover(ch, seg, headStart, a));
          const reading = unread ? [] : readUpTo(ch, seg, a);
          if (headEnd >= headStart && (!groupsCovered(ch, reading, headStart, headEnd) || goesOnInThrees(ch, seg, reading, a))) continue;
          for (const f of reading) sink.push(f);
          return;
        }
        readUpTo(ch, seg, Number.MAX_SAFE_INTEGER, sink);
      };
      const scanSegments = (ch: DigitChunk, segs: readonly Segment[], sink: Finding[]): void => {
        for (const seg of segs) {
          if (ch.amountFrom <= seg.g1) scanBesideAmount(ch, seg, sink);
          else readUpTo(ch, seg, Number.MAX_SAFE_INTEGER, sink);
        }
      };
      for (const ch of ctx.digitChunks()) {
        if (ch.glued) continue;
        windows = ch.amountFrom < ch.groupStarts.length ? new Map() : null;
        const segs = segmentsOf(ch);
        const first = out.length;
        scanSegments(ch, segs, out);
        // Read beside cards whether or not cards are wanted: the uncut reading of "Amex 3782
        // 822463 10005 (415) 555 2671" takes "822463 10005 (415" for the phone, and with no card
        // reported (cards allowed, or not in the profile) nothing else masked "555 2671".
        const cards = cardsIn(text, ch, plans);
        if (cards === null) continue;
        const inCard = groupsInCards(ch, cards);
        const beside: Finding[] = [];
        scanSegments(ch, segmentsBesideCards(ch, segs, inCard), beside);
        for (const f of besideKept(text, out.slice(first), beside, cards)) out.push(f);
      }
    },
  };
}
