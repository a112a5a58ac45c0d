import { describe, expect, it } from 'vitest';
import { bodyBuffer } from '../../src/providers/body-slab.js';

describe('bodyBuffer', () => {
  it('hands out regions that never overlap, so no body can overwrite another still queued', () => {
    const bodies: Buffer[] = [];
    // Enough 4.4 KB bodies to span several slabs, plus odd sizes.
    for (let i = 0; i < 60; i++) bodies.push(bodyBuffer(i % 5 === 0 ? 4401 + i : 4400));
    bodies.forEach((b, i) => b.fill(i));
    bodies.forEach((b, i) => {
      expect(b.length).toBe(i % 5 === 0 ? 4401 + i : 4400);
      expect(b.every((byte) => byte === i)).toBe(true);
    });
    // Regions within one slab are disjoint and 8-byte aligned.
    for (let i = 1; i < bodies.length; i++) {
      const a = bodies[i - 1]!;
      const b = bodies[i]!;
      if (a.buffer === b.buffer) expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + a.length);
      expect(b.byteOffset % 8).toBe(0);
    }
    expect(new Set(bodies.map((b) => b.buffer)).size).toBeGreaterThan(3);
  });

  it('gives a large body a buffer of its own', () => {
    const big = bodyBuffer(100_000);
    const small = bodyBuffer(100);
    expect(big.length).toBe(100_000);
    expect(big.buffer).not.toBe(small.buffer);
    expect(bodyBuffer(0).length).toBe(0);
  });
});
