/**
 * US_SSN: 3-2-4 digits with one kind of separator (or 9 digits in a row, which only counts with
 * context). Area 000, 666 and 900-999, group 00 and serial 0000 are never issued; a few numbers
 * famous from advertising and documentation are rejected too.
 */
import type { Detector, Finding } from '../types.js';
import type { DigitChunk } from './digit-runs.js';

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

function detectInChunk(text: string, ch: DigitChunk, out: Finding[]): void {
  if (ch.plus || ch.glued) return;
  const n = ch.groupStarts.length;
  if (n !== 1 && n !== 3) return;
  const gs = ch.groupStarts;
  const ge = ch.groupEnds;
  if (n === 1) {
    if (ge[0]! - gs[0]! === 9 && !ch.letterAfter) {
      const d = text.slice(ch.groupStarts[0], ch.groupEnds[0]);
      if (ssnValid(d)) out.push({ entity: 'US_SSN', start: ch.groupStarts[0]!, end: ch.groupEnds[0]!, score: 0.3 });
    }
    return;
  }
  // A 3-2-4 window must be the whole chunk, or the chunk would be something longer (a phone, an id).
  if (ge[0]! - gs[0]! !== 3 || ge[1]! - gs[1]! !== 2 || ge[2]! - gs[2]! !== 4 || ch.letterAfter) return;
  const s1 = ch.seps[0]!;
  const s2 = ch.seps[1]!;
  if (s1 !== s2 || s1.length !== 1) return;
  const d = text.slice(ch.groupStarts[0], ch.groupEnds[0]) + text.slice(ch.groupStarts[1], ch.groupEnds[1]) + text.slice(ch.groupStarts[2], ch.groupEnds[2]);
  if (!ssnValid(d)) return;
  const score = s1 === '-' ? 0.65 : s1 === ' ' ? 0.5 : 0.4;
  out.push({ entity: 'US_SSN', start: ch.groupStarts[0]!, end: ch.groupEnds[2]!, score });
}

export const usSsnDetector: Detector = {
  name: 'us-ssn',
  entities: ['US_SSN'],
  // Both shapes (3-2-4 and a run of 9) are one digit chunk of nine digits.
  mayMatch: (t) => t.chunkDigits >= 9,
  detect(text, ctx, out) {
    for (const ch of ctx.digitChunks()) detectInChunk(text, ch, out);
  },
};
