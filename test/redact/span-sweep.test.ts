/**
 * The span relations the scanner merges its readings with: the same answers as a check of every
 * pair, and (the reason they exist) a number of element reads linear in the input, so a 1 MB
 * body with a finding every few characters does not cost seconds of CPU. Reads are counted on
 * the inputs, not timed.
 */
import { describe, expect, it } from 'vitest';
import { holdersInUse, mergeJoined, notContained, notOverlapping } from '../../src/redact/span-sweep.js';
import type { Finding } from '../../src/redact/types.js';

/** A small deterministic generator (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomFindings(n: number, span: number, next: () => number): Finding[] {
  return Array.from({ length: n }, () => {
    const start = Math.floor(next() * span);
    return { entity: 'X', start, end: start + 1 + Math.floor(next() * 12), score: 0.9 };
  });
}

const key = (fs: readonly Finding[]): string[] => fs.map((f) => `${f.start}-${f.end}`).sort();

/** `xs` behind a proxy that counts reads of its elements. */
function counted(xs: Finding[]): { list: Finding[]; reads: () => number } {
  let n = 0;
  const list = new Proxy(xs, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && /^\d+$/.test(prop)) n++;
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  return { list, reads: () => n };
}

describe('span relations agree with a check of every pair', () => {
  for (let seed = 1; seed <= 30; seed++) {
    it(`random lists, seed ${seed}`, () => {
      const next = rng(seed);
      const a = randomFindings(1 + Math.floor(next() * 40), 120, next);
      const b = randomFindings(Math.floor(next() * 40), 120, next);
      expect(key(notContained(a, b))).toEqual(key(a.filter((f) => !b.some((p) => p.start <= f.start && f.end <= p.end))));
      expect(key(notOverlapping(a, b))).toEqual(key(a.filter((f) => !b.some((p) => p.start < f.end && f.start < p.end))));
      const held = a.filter((h) => b.some((f) => h.start <= f.start && f.end <= h.end && h.end - h.start > f.end - f.start));
      expect(key(holdersInUse(a, b))).toEqual(key(held));
    });
  }
  const covered = (fs: readonly Finding[]): string => {
    const on = new Array<number>(140).fill(0);
    for (const f of fs) for (let k = f.start; k < f.end; k++) on[k] = 1;
    return on.join('');
  };
  for (let seed = 1; seed <= 30; seed++) {
    it(`joining covers what either list covers, and an added finding never only partly overlaps, seed ${seed}`, () => {
      const next = rng(1000 + seed);
      const base = randomFindings(Math.floor(next() * 20), 120, next);
      const adds = randomFindings(1 + Math.floor(next() * 20), 120, next);
      const out = mergeJoined(base, adds);
      expect(covered(out)).toBe(covered([...base, ...adds]));
      for (const f of out) {
        if (base.includes(f)) continue;
        // A finding of its own or a union: every base finding it meets lies inside it.
        for (const p of base) if (p.start < f.end && f.start < p.end) expect(f.start <= p.start && p.end <= f.end).toBe(true);
      }
    });
  }
  it('edge cases: equal spans, touching spans, empty lists', () => {
    const f = (start: number, end: number): Finding => ({ entity: 'X', start, end, score: 0.9 });
    expect(notContained([f(2, 5)], [f(2, 5)])).toEqual([]);
    expect(notOverlapping([f(5, 8)], [f(2, 5), f(8, 9)])).toEqual([f(5, 8)]);
    expect(holdersInUse([f(2, 5)], [f(2, 5)])).toEqual([]);
    expect(holdersInUse([f(2, 6)], [f(2, 5), f(2, 6)])).toEqual([f(2, 6)]);
    expect(notContained([f(1, 2)], [])).toEqual([f(1, 2)]);
    expect(holdersInUse([], [f(1, 2)])).toEqual([]);
  });
});

describe('span relations read each element a bounded number of times', () => {
  const N = 4000;
  const shapes: Array<[string, (a: Finding[], b: Finding[]) => unknown]> = [
    ['notContained', notContained],
    ['notOverlapping', notOverlapping],
    ['holdersInUse', holdersInUse],
    ['mergeJoined', mergeJoined],
  ];
  for (const [name, fn] of shapes) {
    it(`${name}: ${N} findings against ${N}`, () => {
      // Disjoint findings in a row, as a long body of short values gives: nothing contains
      // anything, the case a check of every pair pays the most for.
      const a = counted(Array.from({ length: N }, (_, k) => ({ entity: 'X', start: 10 * k, end: 10 * k + 3, score: 0.9 })));
      const b = counted(Array.from({ length: N }, (_, k) => ({ entity: 'X', start: 10 * k + 5, end: 10 * k + 8, score: 0.9 })));
      fn(a.list, b.list);
      expect(a.reads() + b.reads()).toBeLessThan(20 * N);
    });
  }
});
