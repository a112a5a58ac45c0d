/**
 * CREDIT_CARD: digit-group-aligned windows of 12..19 digits that pass Luhn and fall in an issuer
 * range with a length that issuer uses. A 13-digit millisecond timestamp starts with 1 (until
 * 2033) and no issuer issues 13-digit numbers outside Visa's 4, so it never qualifies.
 */
import type { Detector, Finding } from '../types.js';
import { chunkDigits, touchesDecimal, type DigitChunk } from './digit-runs.js';
import { plansFor, validInternational, validNationalInAny, type CompiledRegion } from './phone-metadata.js';
import { luhnValid } from './util.js';

interface IssuerRange {
  lo: number;
  hi: number;
  /** lo/hi compare against the number's first four digits divided by this (10^(4 - width)). */
  div: number;
  lengths: readonly number[];
}

const R = (lo: number, hi: number, lengths: readonly number[]): IssuerRange => ({
  lo,
  hi,
  div: 10 ** (4 - String(lo).length),
  lengths,
});

const L12_19 = [12, 13, 14, 15, 16, 17, 18, 19];
const L16_19 = [16, 17, 18, 19];

const ISSUERS: readonly IssuerRange[] = [
  R(4, 4, [13, 16, 19]), // Visa
  R(51, 55, [16]), // Mastercard
  R(2221, 2720, [16]), // Mastercard 2-series
  R(34, 34, [15]), // American Express
  R(37, 37, [15]),
  R(300, 305, [14, 15, 16, 17, 18, 19]), // Diners Club
  R(3095, 3095, [14, 16, 17, 18, 19]),
  R(36, 36, [14, 15, 16, 17, 18, 19]),
  R(38, 39, [14, 15, 16, 17, 18, 19]),
  R(6011, 6011, L16_19), // Discover
  R(644, 649, L16_19),
  R(65, 65, L16_19),
  R(35, 35, L16_19), // JCB (3528-3589; test generators use all of 35xx)
  R(1800, 1800, [15]), // JCB 15-digit
  R(2131, 2131, [15]),
  R(62, 62, L16_19), // UnionPay
  // UnionPay's 81 series (8100-8171) and RuPay's 60, 81 and 82 (RuPay's 508 and 65 are Maestro's
  // and Discover's ranges here): India's domestic scheme issues hundreds of millions of cards.
  R(60, 60, [16]),
  R(81, 82, L16_19),
  R(636, 639, L16_19), // InterPayment 636, InstaPayment 637-639
  R(9792, 9792, [16]), // Troy
  R(2200, 2204, L16_19), // Mir
  R(50, 50, L12_19), // Maestro
  R(56, 58, L12_19),
  R(6304, 6304, L12_19),
  R(6390, 6390, L12_19),
  R(67, 67, L12_19),
];

/** Maestro UK "0604", the only issuer prefix with a leading zero: 12 to 19 digits. */
const MAESTRO_UK = 604;
const ALL_CARD_LENGTHS = L12_19.reduce((m, n) => m | (1 << n), 0);

/**
 * The card lengths some issuer uses for numbers starting with these four digits (as an integer:
 * "0604" is 604), as a bit mask (bit n: n digits). Found once per window start, so a long run of
 * digit groups costs a few comparisons per window, not a string and a parse per issuer.
 */
export function issuerLengths(first4: number): number {
  if (first4 < 1000) return first4 === MAESTRO_UK ? ALL_CARD_LENGTHS : 0;
  // Each answer is kept: the phone and card detectors ask it for every window start and every
  // 12- to 19-digit window of a table of numbers, and it walked every issuer range each time.
  let mask = issuerMasks[first4]!;
  if (mask >= 0) return mask;
  mask = 0;
  for (const r of ISSUERS) {
    const prefix = Math.floor(first4 / r.div);
    if (prefix >= r.lo && prefix <= r.hi) for (const n of r.lengths) mask |= 1 << n;
  }
  issuerMasks[first4] = mask;
  return mask;
}

/** issuerLengths by its four digits, -1 until asked (masks use bits 12 to 19: never negative). */
const issuerMasks = new Int32Array(10000).fill(-1);

export function issuerMatches(digits: string): boolean {
  const len = digits.length;
  if (len < 12 || len > 19) return false;
  let first4 = 0;
  for (let i = 0; i < 4; i++) first4 = first4 * 10 + (digits.charCodeAt(i) - 48);
  return ((issuerLengths(first4) >> len) & 1) === 1;
}

/** The first four digits of the chunk from group g0 on, as an integer (see issuerLengths). */
function firstFourDigits(text: string, ch: DigitChunk, g0: number): number {
  let value = 0;
  let n = 0;
  for (let g = g0; g < ch.groupStarts.length && n < 4; g++) {
    for (let i = ch.groupStarts[g]!; i < ch.groupEnds[g]! && n < 4; i++, n++) value = value * 10 + (text.charCodeAt(i) - 48);
  }
  return value;
}

/**
 * Separators inside one card number are uniform (all spaces, all dashes, or none). One written as
 * a percent escape or a form body's '+' (`4111 1111 1111%2d1111`) takes the kind of the others:
 * an encoder or a hand hiding the number chose it, not the number's layout.
 */
function uniformSeparators(ch: DigitChunk, g0: number, g1: number): boolean {
  let first: string | undefined;
  for (let g = g0; g < g1; g++) {
    const s = ch.seps[g]!;
    if (s.includes('(') || s.includes(')')) return false;
    const kind = s.includes('\n') ? ' ' : s.trim() === '' ? ' ' : s.trim();
    if (kind.length > 1) return false;
    if (ch.decodedSeps?.[g] === true) continue;
    if (first === undefined) first = kind;
    else if (kind !== first) return false;
  }
  return true;
}

/** Kind of a separator: ' ' (spaces), '\n' (a line break), or the punctuation itself. */
function sepKind(s: string): string {
  if (s.includes('\n')) return '\n';
  const t = s.trim();
  return t === '' ? ' ' : t;
}

/**
 * A window may only stop short of the chunk where the separator differs from the ones inside the
 * window ("Card 4111-1111-1111-1111 2030" but not a 22-digit tracking number in groups of four).
 */
function windowBoundaryOk(text: string, ch: DigitChunk, g0: number, g1: number, plans: readonly CompiledRegion[]): boolean {
  return leftEdgeOk(text, ch, g0, g1, plans) && rightEdgeOk(text, ch, g0, g1);
}

/**
 * The same separator is a boundary only next to a group that is not a card-style block of four
 * ("4111 1111 1111 1111 123" with a CVV), so long runs of 4-digit blocks stay whole. A compact
 * window (one group) is no such run: a space or a line break ends it even before a block of
 * four ("4111111111111111 2026", a year); a dash or a dot does not. Whether separator kind `k`
 * joins a block to groups [g0, g1] so.
 */
function joinsWindow(ch: DigitChunk, g0: number, g1: number, k: string): boolean {
  const inner = g1 > g0 ? sepKind(ch.seps[writtenSep(ch, g0, g1)]!) : null;
  return k !== '\n' && (inner === null ? k !== ' ' : k === inner);
}

/**
 * Windows' left edge (windowBoundaryOk). A block before the window joins it, unless the block is
 * the one other number of the chunk and reads as something else: a year ("ref 2024 4111 1111
 * 1111 1111", an expiry "… 1111 2026"), or the end of the international phone number the chunk
 * starts with ("+1 415 555 0134 4111 1111 1111 1111"), or of a national one ("415 555 0199 4111
 * 1111 1111 1111": most phone numbers end in four digits) where the window begins with a block
 * as a card does (in a list of "415 555 dddd" numbers a window "415 555 dddd 415" that passes
 * Luhn is the next phone's digits, read as such).
 */
function leftEdgeOk(text: string, ch: DigitChunk, g0: number, g1: number, plans: readonly CompiledRegion[]): boolean {
  if (g0 === 0 || ch.groupEnds[g0 - 1]! - ch.groupStarts[g0 - 1]! !== 4 || !joinsWindow(ch, g0, g1, sepKind(ch.seps[g0 - 1]!))) return true;
  const last = ch.groupStarts.length - 1;
  const otherBefore = g0 - 1 === 0 || (ch.plus && g0 >= 2);
  if (g1 === last && otherBefore && (ch.plus || yearAt(text, ch, 0))) return true;
  return cardLayout(ch, g0, g1) && nationalPhoneEndsAt(text, ch, g0 - 1, g1 - g0 + 1, plans);
}

/** Windows' right edge (windowBoundaryOk): a block after the window joins it, unless it is a year ending the chunk. */
function rightEdgeOk(text: string, ch: DigitChunk, g0: number, g1: number): boolean {
  const last = ch.groupStarts.length - 1;
  if (g1 === last || ch.groupEnds[g1 + 1]! - ch.groupStarts[g1 + 1]! !== 4 || !joinsWindow(ch, g0, g1, sepKind(ch.seps[g1]!))) return true;
  return g0 === 0 && g1 + 1 === last && yearAt(text, ch, last);
}

/**
 * A card wrapped at a line's end mixes a line break with its other separators; a line break at
 * the window's edge after which (or before which) the chunk holds more digits on that line is
 * the end of that line's number, not a wrap: "+1 415 555 2671\n4111 1111 1111 1111" is a phone
 * and then a card, not the card "2671\n4111 1111 1111".
 */
function splitsOffEdgeGroup(ch: DigitChunk, g0: number, g1: number): boolean {
  if (g1 - g0 < 2) return false;
  const kinds = (from: number, to: number): boolean => {
    for (let g = from; g < to; g++) if (sepKind(ch.seps[g]!) !== '\n') return true;
    return false;
  };
  if (g0 > 0 && sepKind(ch.seps[g0]!) === '\n' && kinds(g0 + 1, g1)) return true;
  return g1 < ch.groupStarts.length - 1 && sepKind(ch.seps[g1 - 1]!) === '\n' && kinds(g0, g1 - 1);
}

/** Groups 0..k of a '+' chunk, for some k >= 2, read as a valid international phone number. */
function phoneFromPlus(text: string, ch: DigitChunk): boolean {
  let digits = text.slice(ch.groupStarts[0], ch.groupEnds[0]) + text.slice(ch.groupStarts[1], ch.groupEnds[1]);
  for (let g = 2; g < ch.groupStarts.length; g++) {
    digits += text.slice(ch.groupStarts[g], ch.groupEnds[g]);
    if (digits.length > 15) return false; // E.164 holds 15 digits at most
    if (validInternational(digits)) return true;
  }
  return false;
}

/** Most digits a national phone number has (libphonenumber's longest national number). */
const NATIONAL_MAX = 15;

/** Groups in a row of 4 digits each that make a block run (a card's, a tracking number's). */
export const BLOCK_RUN = 4;

/**
 * Some groups of the chunk that end with group `last` (a 4-digit block) read as a national phone
 * number valid in one of `plans`, by their shape alone as the phone detector reads one (three
 * groups or more, or a trunk prefix: "415 555 0199", "020 7946 0958"), and not only of 4-digit
 * blocks: a run of blocks ("1234 5678 4111 1111 1111 1111", a tracking number) stays whole. A
 * phone that ends in more than one block leaves a card of fewer than BLOCK_RUN groups no room:
 * "415 555 2671 1234 5678 9012 3456" is a phone and a run of four blocks (the phone detector's
 * reading, blockRuns), not a 13-digit phone and a 12-digit card.
 */
function nationalPhoneEndsAt(text: string, ch: DigitChunk, last: number, cardGroups: number, plans: readonly CompiledRegion[]): boolean {
  if (cardGroups < BLOCK_RUN && last > 0 && ch.groupEnds[last - 1]! - ch.groupStarts[last - 1]! === 4) return false;
  let digits = '';
  let onlyBlocks = true;
  for (let s = last; s >= 0; s--) {
    const group = text.slice(ch.groupStarts[s], ch.groupEnds[s]);
    digits = group + digits;
    if (digits.length > NATIONAL_MAX) return false;
    if (group.length !== 4) onlyBlocks = false;
    // A phone starts the chunk or follows a space, as the phone detector cuts a line.
    if (s > 0 && sepKind(ch.seps[s - 1]!) !== ' ') continue;
    // A '+' chunk's first group is a country code, not national digits ("+44 20 7946 5744 …": the
    // phone is +44 20 7946 5744, though "44207946" is a national number somewhere).
    if (s === 0 && ch.plus) continue;
    if (onlyBlocks || digits.length < 7 || (last - s < 2 && digits.charCodeAt(0) !== 48)) continue;
    if (!validNationalInAny(plans, digits)) continue;
    // A two-group reading (trunk prefix and one block) that is still a number with the next group
    // is too short a reading: "020 7946" is valid somewhere, but so is "020 7946 6221", and that
    // block is the phone's, not a card's first. (Three groups or more stand on their own: a long
    // enough digit string is valid in some region, so "415 555 0199 4111" proves nothing.)
    if (last - s < 2 && last + 1 < ch.groupStarts.length && validNationalInAny(plans, digits + text.slice(ch.groupStarts[last + 1], ch.groupEnds[last + 1]))) continue;
    return true;
  }
  return false;
}

/**
 * Whether groups g0..g1 are laid out as cards are printed: four-digit blocks with at most a
 * shorter last one (4-4-4-4, 4-4-4-1, 4-4-4-4-3), or an Amex's 4-6-5. Only such a window may end
 * a phone's block run (nationalPhoneEndsAt): a window that merely starts with a block
 * ("3577 031 496 10 56 5318") is digits of the numbers around it.
 */
function cardLayout(ch: DigitChunk, g0: number, g1: number): boolean {
  const len = (g: number): number => ch.groupEnds[g]! - ch.groupStarts[g]!;
  if (g1 - g0 === 2 && len(g0) === 4 && len(g0 + 1) === 6 && len(g1) === 5) return true;
  for (let g = g0; g < g1; g++) if (len(g) !== 4) return false;
  return len(g1) >= 1 && len(g1) <= 4;
}

/** Group `g` of the chunk is a year of four digits, 1900 to 2099. */
function yearAt(text: string, ch: DigitChunk, g: number): boolean {
  const s = ch.groupStarts[g]!;
  if (ch.groupEnds[g]! - s !== 4) return false;
  const century = text.slice(s, s + 2);
  return century === '19' || century === '20';
}

/** The first separator of groups [g0, g1] written as such (not decoded), else the first one. */
function writtenSep(ch: DigitChunk, g0: number, g1: number): number {
  if (ch.decodedSeps === null) return g0;
  for (let g = g0; g < g1; g++) if (!ch.decodedSeps[g]) return g;
  return g0;
}

/**
 * The cards in one digit chunk (detectCardsInChunk), found once for the chunk: the phone detector
 * reads a chunk's cards too (to read the phones beside them), and in a table of numbers the card
 * search, run twice, was a tenth of the time. A chunk belongs to one scan of one text, and its
 * cards depend on nothing else but the regions, which are the scanner's. Not to be changed: the
 * card detector reports copies.
 */
export function chunkCards(text: string, ch: DigitChunk, plans: readonly CompiledRegion[]): readonly Finding[] {
  if (ch.cards === null) {
    const found: Finding[] = [];
    detectCardsInChunk(text, ch, found, plans);
    ch.cards = found;
  }
  return ch.cards;
}

/**
 * The cards in one digit chunk. `plans`: the configured phone regions, against which a national
 * phone number right before a card is read (nationalPhoneEndsAt).
 */
export function detectCardsInChunk(text: string, ch: DigitChunk, out: Finding[], plans: readonly CompiledRegion[]): void {
  const groups = ch.groupStarts.length;
  if (ch.glued) return;
  // A '+' begins a phone number, never a card; a card may follow it in the chunk. After a
  // country code written apart, a group of up to three digits ("+1 415 555 2671 123") begins
  // the phone's national number, not a card (a card's first group has four digits or more),
  // when the groups from the '+' on read as a valid phone number: "+1 415 5550623266" is none,
  // and the card its digits hold would otherwise go out with no finding at all.
  const len = (g: number): number => ch.groupEnds[g]! - ch.groupStarts[g]!;
  let g0 = ch.plus ? (groups > 2 && len(0) <= 3 && len(1) <= 3 && phoneFromPlus(text, ch) ? 2 : 1) : 0;
  let sideBySide: SideBySide | null = null;
  while (g0 < groups) {
    let found = -1;
    // A card window that only its edges kept out (a block joined to it on either side).
    let walled = false;
    let digits = 0;
    // Which lengths an issuer allows depends on the first digits only: known before any window.
    const lengths = issuerLengths(firstFourDigits(text, ch, g0));
    for (let g1 = g0; g1 < groups && lengths !== 0; g1++) {
      digits += ch.groupEnds[g1]! - ch.groupStarts[g1]!;
      if (digits > 19) break;
      if (digits < 12 || ((lengths >> digits) & 1) === 0) continue;
      if (!cardAt(text, ch, g0, g1)) continue;
      if (windowBoundaryOk(text, ch, g0, g1, plans)) found = g1;
      else walled = true;
    }
    if (found >= 0) {
      // Luhn plus an issuer range with a matching length: confident without context.
      out.push({ entity: 'CREDIT_CARD', start: ch.groupStarts[g0]!, end: ch.groupEnds[found]!, score: 0.9 });
      g0 = found + 1;
      continue;
    }
    if (walled) {
      sideBySide ??= cardsSideBySide(text, ch);
      const first = sideBySide.cont[g0]!;
      if (first >= 0 && leftEdgeOk(text, ch, g0, first, plans)) {
        g0 = pushSideBySide(ch, sideBySide, g0, out);
        continue;
      }
    }
    g0++;
  }
}

/**
 * Groups [g0, g1] of the chunk are a card number wherever it stands: Luhn-valid, one kind of
 * separator, no line break that ends another number's line, no decimal number's part, no letter
 * glued after it. (The issuer's lengths are the caller's to check; the edges too.)
 */
function cardAt(text: string, ch: DigitChunk, g0: number, g1: number): boolean {
  if (g1 === ch.groupStarts.length - 1 && ch.letterAfter) return false;
  return luhnValid(chunkDigits(text, ch, g0, g1)) && uniformSeparators(ch, g0, g1) && !splitsOffEdgeGroup(ch, g0, g1) && !touchesDecimal(ch, g0, g1);
}

/**
 * Card numbers written one after the other ("4111 1111 1111 1111 5500 0000 0000 0004") make one
 * run of 4-digit blocks, where windowBoundaryOk lets no window stop (a tracking or account
 * number's blocks stay whole). A run that splits into back-to-back cards, each Luhn-valid in an
 * issuer's range at its length and joined by the separator inside them, the last ending where
 * a card may end, is those cards: a tracking number's blocks split so against the odds of a
 * Luhn check and an issuer range per card. For each group g: `cont[g]`, the last group of a card
 * from g that another such split follows; `term[g]`, that of a card from g that may end the
 * run (rightEdgeOk); -1 for none.
 */
interface SideBySide {
  cont: Int32Array;
  term: Int32Array;
}

/** The splits of the whole chunk (see SideBySide), from its last group back: each group once. */
function cardsSideBySide(text: string, ch: DigitChunk): SideBySide {
  const groups = ch.groupStarts.length;
  const cont = new Int32Array(groups + 1).fill(-1);
  const term = new Int32Array(groups + 1).fill(-1);
  for (let g = groups - 1; g >= 0; g--) {
    const lengths = issuerLengths(firstFourDigits(text, ch, g));
    let digits = 0;
    for (let g1 = g; g1 < groups && lengths !== 0; g1++) {
      digits += ch.groupEnds[g1]! - ch.groupStarts[g1]!;
      if (digits > 19) break;
      if (digits < 12 || ((lengths >> digits) & 1) === 0 || !cardAt(text, ch, g, g1)) continue;
      // The longest card that ends the run, and the longest one another card follows with the
      // same separator between them as inside them.
      if (rightEdgeOk(text, ch, g, g1)) term[g] = g1;
      if (g1 + 1 < groups && (cont[g1 + 1]! >= 0 || term[g1 + 1]! >= 0) && uniformSeparators(ch, g, g1 + 1)) cont[g] = g1;
    }
  }
  return { cont, term };
}

/** Pushes the cards of the split from g0 (cont[g0] is set); the group after the last of them. */
function pushSideBySide(ch: DigitChunk, split: SideBySide, g0: number, out: Finding[]): number {
  let g = g0;
  for (;;) {
    const next = split.cont[g]!;
    const end = next >= 0 ? next : split.term[g]!;
    out.push({ entity: 'CREDIT_CARD', start: ch.groupStarts[g]!, end: ch.groupEnds[end]!, score: 0.9 });
    if (next < 0) return end + 1;
    g = next + 1;
  }
}

export const creditCardDetector: Detector = {
  name: 'credit-card',
  entities: ['CREDIT_CARD'],
  // A card is a window of 12 to 19 digits of one digit chunk.
  mayMatch: (t) => t.chunkDigits >= 12,
  detect(text, ctx, out) {
    const plans = plansFor(ctx.phoneRegions);
    for (const ch of ctx.digitChunks()) for (const f of chunkCards(text, ch, plans)) out.push({ ...f });
  },
};
