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

/** Longest run of groups searched for numbers inside (bounds the window search). */
const MAX_WINDOW_GROUPS = 12;
import { detectCardsInChunk, issuerMatches } from './credit-card.js';
import { compileRegion, validInternational, validNationalInAny, type CompiledRegion } from './phone-metadata.js';
import { isbn13Valid, luhnValid, mod11Valid } from './util.js';

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
  let i = start - 1;
  // Bounded look-back: a few separators and one token, twice at most.
  const floor = Math.max(0, start - 48);
  const previousWord = (): string => {
    while (i >= floor) {
      const c = text.charCodeAt(i);
      // ' ', tab, ':', '=', '#', '-', '.': a key's '=' names its value as its ':' does ("ref=...").
      if (c === 32 || c === 9 || c === 58 || c === 61 || c === 35 || c === 45 || c === 46) i--;
      else break;
    }
    const end = i + 1;
    while (i >= floor && isTokenChar(text.charCodeAt(i))) i--;
    let letters = i + 1;
    while (letters < end && isAsciiLetter(text.charCodeAt(letters))) letters++;
    // No identifier word is longer than LONGEST_IDENTIFIER: skip the copy for longer words.
    return letters - (i + 1) > LONGEST_IDENTIFIER ? '' : text.slice(i + 1, letters).toLowerCase();
  };
  let w = previousWord();
  if (NUMBER_WORDS.has(w)) w = previousWord();
  return IDENTIFIER_WORDS.has(w);
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
 * Groups [seg.g0, seg.g1] have another thing's shape: a version, a decimal, an IPv4 address, an
 * SSN, a date, an ISBN. Read in place, without arrays of the window's lengths and separators: a
 * run of short groups ("x=9 9 9 9 ...") asks this of dozens of windows each.
 */
function looksLikeOtherThing(text: string, ch: DigitChunk, seg: Segment, digits: string): boolean {
  const { g0, g1 } = seg;
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
function cardsIn(text: string, ch: DigitChunk): Finding[] | null {
  if (ch.groupEnds[ch.groupEnds.length - 1]! - ch.groupStarts[0]! < 12) return null;
  const cards: Finding[] = [];
  detectCardsInChunk(text, ch, cards);
  return cards.length === 0 ? null : cards;
}

/** Which groups of `ch` lie inside one of `cards`. */
function groupsInCards(ch: DigitChunk, cards: readonly Finding[]): Uint8Array {
  const inCard = new Uint8Array(ch.groupStarts.length);
  for (const c of cards) {
    for (let g = 0; g < inCard.length; g++) if (ch.groupStarts[g]! >= c.start && ch.groupEnds[g]! <= c.end) inCard[g] = 1;
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
function besideKept(whole: readonly Finding[], beside: readonly Finding[], cards: readonly Finding[]): Finding[] {
  const overlaps = (a: Finding, b: Finding): boolean => a.start < b.end && b.start < a.end;
  return beside.filter((f) => whole.every((u) => !overlaps(f, u) || cards.some((c) => overlaps(u, c))));
}

export function createPhoneDetector(validation: PhoneValidation = 'valid'): Detector {
  return {
    name: 'phone',
    entities: ['PHONE_NUMBER'],
    // A window of one digit chunk holds at least 7 national digits (tryWindow's nationalLen).
    mayMatch: (t) => t.chunkDigits >= 7,
    detect(text, ctx, out: Finding[]) {
      const plans: CompiledRegion[] = [];
      for (const r of ctx.phoneRegions) {
        const p = compileRegion(r);
        if (p) plans.push(p);
      }
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
       * The phone finding for groups [g0, g1] of `ch`, or null. `fallback`: the context-rule pass
       * (a possible number after a phone word), run only where the first pass found nothing.
       */
      const tryWindow = (ch: DigitChunk, g0: number, g1: number, fallback: boolean): Finding | null => {
        // Counted before anything is built: most windows of a long run of short groups ("x=9 9 9
        // 9 ...") hold too few digits or too many, and each was a string and an object for nothing.
        let count = 0;
        for (let g = g0; g <= g1; g++) count += ch.groupEnds[g]! - ch.groupStarts[g]!;
        if (count < 7 || count > 17) return null; // nationalLen (below) is count, or count - 2
        const seg: Segment = { start: g0 === 0 ? ch.start : ch.groupStarts[g0]!, end: ch.groupEnds[g1]!, g0, g1 };
        let start = seg.start;
        if (g0 > 0 && text.charCodeAt(start - 1) === 40) start--; // "(579)" after a separator
        let digits = '';
        for (let g = g0; g <= g1; g++) digits += text.slice(ch.groupStarts[g], ch.groupEnds[g]);
        const intl = (g0 === 0 && ch.plus) || digits.startsWith('00');
        const nationalLen = intl ? digits.length - (digits.startsWith('00') ? 2 : 0) : digits.length;
        if (nationalLen < 7 || nationalLen > 15) return null;
        // "0.415-555-2671", "415 555 2671.25": a decimal number's digits, not a phone's.
        if (touchesDecimal(ch, g0, g1)) return null;
        let end = seg.end;
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
        if (looksLikeOtherThing(text, ch, seg, digits)) return null;
        // A card number is the card detector's (and not worth a phone lookup).
        if (!intl && digits.length >= 12 && issuerMatches(digits) && luhnValid(digits)) return null;
        const formatted = g1 > g0 || text.charCodeAt(start) === 40;
        // Two bare groups ("638 2229") are as often a house and street number as a phone, and
        // a bare digit run is as often an id or a timestamp: both need a context word.
        const groups = g1 - g0 + 1;
        // A leading trunk prefix ("030 12345678") is phone-like enough on its own.
        const trunk = digits.charCodeAt(0) === 48;
        const score = intl ? 0.85 : (formatted && (groups >= 3 || trunk)) || hasExt ? 0.75 : formatted ? 0.45 : 0.4;
        if (score < 0.5 && !ctx.contextBefore('PHONE_NUMBER', start)) return null;
        // Last of the shape checks: it reads the word before, and most windows never get here.
        if (afterIdentifierWord(text, start)) return null;
        if (!fallback) reachedValidation = true;
        const candidate = text.slice(start, seg.end);
        if (fallback) {
          // The first pass found this window not valid. The libphonenumber-js parse only runs
          // for the few candidates with a phone word before them.
          if (!ctx.contextBefore('PHONE_NUMBER', start)) return null;
          return possible(candidate, intl ? e164(candidate, digits, g0 === 0 && ch.plus) : null, false) ? { entity: 'PHONE_NUMBER', start, end, score: POSSIBLE_SCORE } : null;
        }
        if (validation === 'possible') return possible(candidate, intl ? e164(candidate, digits, g0 === 0 && ch.plus) : null, true) ? { entity: 'PHONE_NUMBER', start, end, score } : null;
        const valid = intl ? validInternational(digits.startsWith('00') ? digits.slice(2) : digits) : validNationalInAny(plans, digits);
        return valid ? { entity: 'PHONE_NUMBER', start, end, score } : null;
      };
      /** Pushes the numbers found in one segment (whole, else windows inside); how many. */
      const scanSegment = (ch: DigitChunk, seg: Segment, fallback: boolean, sink: Finding[]): number => {
        const whole = tryWindow(ch, seg.g0, seg.g1, fallback);
        if (whole) {
          sink.push(whole);
          return 1;
        }
        // Not one number: look for numbers inside, cut only where a space separates groups
        // ("call 415-555-2671 2 times", two numbers on one line). A '-' or '.' joined group
        // never loses its neighbour.
        if (seg.g1 - seg.g0 > MAX_WINDOW_GROUPS) return 0;
        // Runs of 4-digit blocks are cards, tracking and account numbers, not phone lists.
        let blocks = 0;
        for (let g = seg.g0; g <= seg.g1; g++) if (ch.groupEnds[g]! - ch.groupStarts[g]! === 4) blocks++;
        if (blocks >= 4) return 0;
        const cut = (g: number): boolean => {
          const sep = ch.seps[g]!;
          return sep.includes(' ') || sep.includes('\t');
        };
        let n = 0;
        for (let g0 = seg.g0; g0 <= seg.g1; g0++) {
          if (g0 > seg.g0 && !cut(g0 - 1)) continue;
          let found: Finding | null = null;
          let at = -1;
          for (let g1 = seg.g1; g1 >= g0 && !found; g1--) {
            if (g1 < seg.g1 && !cut(g1)) continue;
            if (g0 === seg.g0 && g1 === seg.g1) continue;
            found = tryWindow(ch, g0, g1, fallback);
            at = g1;
          }
          if (found) {
            sink.push(found);
            n++;
            g0 = at;
          }
        }
        return n;
      };
      const scanSegments = (ch: DigitChunk, segs: readonly Segment[], sink: Finding[]): void => {
        for (const seg of segs) {
          // Valid numbers first, exactly as without the context rule; the rule only adds a
          // finding where no valid number was found in the segment.
          reachedValidation = false;
          if (scanSegment(ch, seg, false, sink) === 0 && validation === 'valid' && reachedValidation) scanSegment(ch, seg, true, sink);
        }
      };
      for (const ch of ctx.digitChunks()) {
        if (ch.glued) continue;
        const segs = segmentsOf(ch);
        const first = out.length;
        scanSegments(ch, segs, out);
        // Read beside cards whether or not cards are wanted: the uncut reading of "Amex 3782
        // 822463 10005 (415) 555 2671" takes "822463 10005 (415" for the phone, and with no card
        // reported (cards allowed, or not in the profile) nothing else masked "555 2671".
        const cards = cardsIn(text, ch);
        if (cards === null) continue;
        const inCard = groupsInCards(ch, cards);
        const beside: Finding[] = [];
        scanSegments(ch, segmentsBesideCards(ch, segs, inCard), beside);
        for (const f of besideKept(out.slice(first), beside, cards)) out.push(f);
      }
    },
  };
}
