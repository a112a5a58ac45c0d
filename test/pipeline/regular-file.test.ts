/**
 * readAtMost: a capped read reads no more than the cap + 1 bytes, whatever size the file
 * reported when it was checked (a file that grew since, a procfs file that reports none).
 * Before, `FileHandle.readFile` read whatever it found, to the end, and the cap was only
 * applied afterwards.
 */
import { open } from 'node:fs/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileTooLargeError, readAtMost } from '../../src/pipeline/regular-file.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-read-at-most-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function withFile<T>(bytes: Buffer, fn: (fh: Awaited<ReturnType<typeof open>>) => Promise<T>): Promise<T> {
  const file = join(dir, `f${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, bytes);
  const fh = await open(file, 'r');
  try {
    return await fn(fh);
  } finally {
    await fh.close();
  }
}

describe('readAtMost', () => {
  const data = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));

  it('reads a file up to its cap whole, byte for byte, whatever size it was said to have', async () => {
    for (const hint of [0, 1, 100, 300, 10_000]) {
      expect(Buffer.from(await withFile(data, (fh) => readAtMost(fh, 300, hint)))).toEqual(data);
    }
    expect(Buffer.from(await withFile(Buffer.alloc(0), (fh) => readAtMost(fh, 10, 0)))).toEqual(Buffer.alloc(0));
  });

  it('refuses a file larger than its cap after reading at most cap + 1 bytes, naming its size', async () => {
    // The size hint says 10 (the file "grew" since it was checked).
    const err = await withFile(data, async (fh) => {
      const reads: number[] = [];
      const read = fh.read.bind(fh);
      (fh as unknown as { read: typeof fh.read }).read = (async (...args: Parameters<typeof fh.read>) => {
        const r = await read(...args);
        reads.push(r.bytesRead);
        return r;
      }) as typeof fh.read;
      const e = await readAtMost(fh, 50, 10).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(reads.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(51);
      return e;
    });
    expect(err).toBeInstanceOf(FileTooLargeError);
    expect(err).toMatchObject({ size: 300, limit: 50 });
  });

  it('bounds a procfs file that reports no size', async () => {
    const fh = await open('/proc/self/status', 'r');
    try {
      expect((await fh.stat()).size).toBe(0);
      const err = await readAtMost(fh, 16, 0).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(err).toBeInstanceOf(FileTooLargeError);
      expect((err as FileTooLargeError).size).toBe(17);
    } finally {
      await fh.close();
    }
  });
});
