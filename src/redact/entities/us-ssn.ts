/**
 * US_SSN: 3-2-4 digits with one kind of separator (or 9 digits in a row, which only counts with
 * context). Area 000, 666 and 900-999, group 00 and serial 0000 are never issued; a few numbers
 * famous from advertising and documentation are rejected too.
 */
import type { Detector, Finding } from '../types.js';
import { chunkDigits, type DigitChunk } from './digit-runs.js';

const NEVER_ISSUED = new Set(['078051120', '219099999', '123456789', '111111111', '333333333']);

export function ssnValid(d: string): boolean {
  if (d.length !== 9 || NEVER_ISSUED.has(d)) return false;
  const area = Number(d.slice(0, 3));
  const group = Number(d.slice(3, 5));
  const serial = Number(d.slice(5));
  if (area === 0 || area === 666 || area >= 900) return false;
  if (group === 0 || serial === 0) return false;
  return !/^(\d)\1{8}$/.test(d);
}

/** Kind of a separator: '\n' (holds a line break), ' ' (spaces, tabs), or the punctuation itself. */
function sepKind(s: string): string {
  if (s.includes('\n')) return '\n';
  const t = s.trim();
  return t === '' ? ' ' : t;
}

/**
 * Whether the separator between a window and its neighbouring group cuts the two apart: it holds
 * whitespace (a list's line break, space or tab, with or without parentheses or a comma around
 * it) and is not the separator inside the window. `536 22 1234 5678` is one longer number, and
 * `536-22-1234-5` or `1-536-22-1234` an id; `536-22-1234 536-22-1235` and one SSN per line are two.
 */
function cutsApart(boundary: string, inner: string | null): boolean {
  if (!/\s/.test(boundary)) return false;
  return inner === null || sepKind(boundary) !== sepKind(inner);
}

/** Groups [g, g + span) of the chunk stand on their own: each side is the chunk's end or a cut. */
function standsAlone(ch: DigitChunk, g: number, span: number, inner: string | null): boolean {
  const last = g + span - 1;
  if (g > 0 && !cutsApart(ch.seps[g - 1]!, inner)) return false;
  if (last < ch.groupStarts.length - 1 && !cutsApart(ch.seps[last]!, inner)) return false;
  // Only the chunk's last group touches what follows the chunk (a letter, or a glued '%', '/', ...).
  if (last === ch.groupStarts.length - 1 && (ch.letterAfter || ch.glued)) return false;
  // The '+' belongs to the chunk's first number (a phone); an SSN can only follow on a new line.
  if (ch.plus && !lineBreakBefore(ch, g)) return false;
  return true;
}

function lineBreakBefore(ch: DigitChunk, g: number): boolean {
  for (let k = 0; k < g; k++) if (ch.breakAfter[k]) return true;
  return false;
}

const len = (ch: DigitChunk, g: number): number => ch.groupEnds[g]! - ch.groupStarts[g]!;

/** A bare run of nine digits (only counts with a context word: the low score). */
function bareRun(text: string, ch: DigitChunk, g: number, out: Finding[]): void {
  if (len(ch, g) !== 9 || !standsAlone(ch, g, 1, null)) return;
  const d = text.slice(ch.groupStarts[g], ch.groupEnds[g]);
  if (ssnValid(d)) out.push({ entity: 'US_SSN', start: ch.groupStarts[g]!, end: ch.groupEnds[g]!, score: 0.3 });
}

/** Groups g..g+2 as 3-2-4 with one single-character separator; true when one was pushed. */
function dashedWindow(text: string, ch: DigitChunk, g: number, out: Finding[]): boolean {
  if (len(ch, g) !== 3 || len(ch, g + 1) !== 2 || len(ch, g + 2) !== 4) return false;
  const s1 = ch.seps[g]!;
  if (s1 !== ch.seps[g + 1]! || s1.length !== 1 || !standsAlone(ch, g, 3, s1)) return false;
  const d = chunkDigits(text, ch, g, g + 2);
  if (!ssnValid(d)) return false;
  const score = s1 === '-' ? 0.65 : s1 === ' ' ? 0.5 : 0.4;
  out.push({ entity: 'US_SSN', start: ch.groupStarts[g]!, end: ch.groupEnds[g + 2]!, score });
  return true;
}

/**
 * Every SSN of a chunk. The scanner joins groups across spaces and line breaks, so a list of SSNs
 * (one per line, or several on a line) is one chunk: each 3-2-4 window (or nine-digit group) that
 * stands apart from its neighbours is one SSN; a window glued to more digits by its own separator
 * is part of something longer (a phone, an id) and is not.
 */
function detectInChunk(text: string, ch: DigitChunk, out: Finding[]): void {
  const n = ch.groupStarts.length;
  for (let g = 0; g < n; g++) {
    if (g + 2 < n && dashedWindow(text, ch, g, out)) g += 2;
    else bareRun(text, ch, g, out);
  }
}

export const usSsnDetector: Detector = {
  name: 'us-ssn',
  entities: ['US_SSN'],
  // Both shapes (3-2-4 and a run of 9) are nine digits of one digit chunk.
  mayMatch: (t) => t.chunkDigits >= 9,
  detect(text, ctx, out) {
    for (const ch of ctx.digitChunks()) detectInChunk(text, ch, out);
  },
};
