/**
 * The phone detector's repair of the gaps its first search leaves (repairGaps): each gap is
 * searched again from the window before it to the window after it, not across the whole digit
 * run, so a long list of short groups costs a search of each gap's neighbourhood. The chunks are
 * real (scanDigits); the first search's windows and the repair are given, to see what is asked.
 */
import { describe, expect, it } from 'vitest';
import { scanDigits } from '../../src/redact/entities/digit-runs.js';
import { repairGaps, type FoundWindow } from '../../src/redact/entities/phone.js';
import type { Finding } from '../../src/redact/types.js';

/** 20 groups of two digits: one digit chunk, one segment. */
const text = Array.from({ length: 20 }, (_, i) => String(10 + i)).join(' ');
const ch = scanDigits(text).chunks[0]!;
const seg = { start: ch.start, end: ch.end, g0: 0, g1: 19 };

function windowOf(g0: number, g1: number): FoundWindow {
  return { f: { entity: 'PHONE_NUMBER', start: ch.groupStarts[g0]!, end: ch.groupEnds[g1]!, score: 0.75 }, g0, g1 };
}

/** repairGaps with a repair that records each range and covers it with one finding. */
function run(found: FoundWindow[], fails = false): { ranges: Array<[number, number, number, number]>; out: Finding[] | null } {
  const ranges: Array<[number, number, number, number]> = [];
  const out = repairGaps(ch, seg, found, (range, inRange, uncovered) => {
    ranges.push([range.g0, range.g1, inRange.length, uncovered]);
    return fails ? null : [{ entity: 'PHONE_NUMBER', start: range.start, end: range.end, score: 0.75 }];
  });
  return { ranges, out };
}

describe('repairGaps: each gap is searched from its neighbours', () => {
  it('a gap at the end: from the last window on, the windows before it kept as found', () => {
    const found = [windowOf(0, 3), windowOf(4, 7), windowOf(8, 11), windowOf(12, 15), windowOf(16, 18)];
    const { ranges, out } = run(found);
    // Group 19 ("29", two digits) is the gap; only the last window and the gap are searched.
    expect(ranges).toEqual([[16, 19, 1, 2]]);
    expect(out).toEqual([...found.slice(0, 4).map((w) => w.f), { entity: 'PHONE_NUMBER', start: ch.groupStarts[16], end: ch.end, score: 0.75 }]);
  });

  it('a gap before the first window and one in the middle: two searches, each of its neighbourhood', () => {
    const found = [windowOf(1, 4), windowOf(5, 8), windowOf(10, 13), windowOf(14, 19)];
    const { ranges, out } = run(found);
    expect(ranges).toEqual([
      [0, 4, 1, 2],
      [5, 13, 2, 2],
    ]);
    expect(out!.map((f) => text.slice(f.start, f.end))).toEqual([text.slice(0, ch.groupEnds[4]), text.slice(ch.groupStarts[5], ch.groupEnds[13]), text.slice(ch.groupStarts[14])]);
  });

  it('two gaps around one window are searched together', () => {
    const found = [windowOf(0, 3), windowOf(5, 8), windowOf(10, 19)];
    expect(run(found).ranges).toEqual([[0, 19, 3, 4]]);
  });

  it('a neighbourhood with no split that covers it: null (the caller searches the whole run)', () => {
    const found = [windowOf(0, 3), windowOf(4, 7), windowOf(8, 11), windowOf(12, 15), windowOf(16, 18)];
    expect(run(found, true).out).toBeNull();
  });
});
