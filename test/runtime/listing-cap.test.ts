/**
 * The template and policy walkers stop listing a directory as soon as the set passes its file cap
 * (10,000): a directory of millions of entries is neither read whole into memory nor to its end
 * before it is refused. The reload check's scan of the same paths stops past its own cap (20,000:
 * both sets together). What the walk reads is counted with the real file system under a wrapper
 * of node:fs/promises (every entry handed out by readdir or by an opendir stream), so the bound is
 * on entries read, not on time.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

/** Entries handed to the walk, by directory. */
const read = vi.hoisted(() => ({ entries: new Map<string, number>() }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const count = (path: unknown, n: number) => read.entries.set(String(path), (read.entries.get(String(path)) ?? 0) + n);
  const readdir = (async (path: string, options?: unknown) => {
    const entries = await (real.readdir as (p: string, o?: unknown) => Promise<unknown[]>)(path, options);
    count(path, entries.length);
    return entries;
  }) as typeof real.readdir;
  const opendir = (async (path: string, options?: unknown) => {
    const dir = await (real.opendir as (p: string, o?: unknown) => Promise<import('node:fs').Dir>)(path, options);
    return {
      path: dir.path,
      close: () => dir.close(),
      async *[Symbol.asyncIterator]() {
        for await (const entry of dir) {
          count(path, 1);
          yield entry;
        }
      },
    };
  }) as typeof real.opendir;
  return { ...real, default: { ...real, readdir, opendir }, readdir, opendir };
});

const { scanTemplateFiles, readTemplates } = await import('../../src/templates/loader.js');
const { loadRegoPolicy } = await import('../../src/policy/rego/index.js');
const { SCAN_FILE_CAP, treeScanner } = await import('../../src/runtime/reload.js');

let root: string;
/** 12,000 empty `*.yaml` files: templates to the one walker, data files to the other. */
let many: string;
/** 12,000 links `tN.yaml -> ../target.yaml`, as a ConfigMap mount shows its items. */
let links: string;
/** A directory under the cap: 3 templates among 5,000 other files (which are read, not held). */
let mixed: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'warden-listing-cap-'));
  many = join(root, 'many');
  mixed = join(root, 'mixed');
  links = join(root, 'links');
  for (const d of [many, mixed, links]) mkdirSync(d);
  for (let i = 0; i < 12_000; i++) writeFileSync(join(many, `f${i}.yaml`), '');
  writeFileSync(join(root, 'target.yaml'), '');
  for (let i = 0; i < 12_000; i++) symlinkSync('../target.yaml', join(links, `t${i}.yaml`));
  for (let i = 0; i < 5_000; i++) writeFileSync(join(mixed, `notes${i}.txt`), '');
  for (const id of ['a', 'b', 'c']) {
    writeFileSync(join(mixed, `${id}.yaml`), `id: demo/${id}\nversion: 1\nowner: t@example.com\nsensitivity: internal\ndescription: d\nmodels: [echo]\nmessages:\n  - { role: user, content: hi }\n`);
  }
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Read no more than the cap + 1 entries, and whatever one batch of the OS's listing adds. */
const BOUND = 10_001 + 64;

describe('a directory with more files than the cap', () => {
  for (const [kind, dir, load, refusal] of [
    ['templates', () => many, () => scanTemplateFiles([many]), 'more than 10000 template files'],
    ['policies', () => many, () => loadRegoPolicy([many]), 'more than 10000 policy and data files'],
    ['templates as links (a ConfigMap mount)', () => links, () => scanTemplateFiles([links]), 'more than 10000 template files'],
    ['policies as links (a ConfigMap mount)', () => links, () => loadRegoPolicy([links]), 'more than 10000 policy and data files'],
  ] as const) {
    it(`${kind}: refused having read not much more than 10,000 of its 12,000 entries`, async () => {
      read.entries.clear();
      await expect(load()).rejects.toThrow(refusal);
      const n = read.entries.get(dir()) ?? 0;
      expect(n).toBeGreaterThan(10_000);
      expect(n).toBeLessThanOrEqual(BOUND);
    });
  }
});

describe('a directory under the cap', () => {
  it('is read to its end, and its templates load in name order', async () => {
    read.entries.clear();
    const loaded = await readTemplates([mixed]);
    expect(loaded.issues).toEqual([]);
    expect(loaded.templates.map((t) => t.id)).toEqual(['demo/a', 'demo/b', 'demo/c']);
    expect(read.entries.get(mixed)).toBe(5_003);
  });
});

describe("the reload check's scan of a tree with more files than its cap (20,000)", () => {
  it('stops listing past the cap; its fingerprint says so and still follows the directory it stopped in', async () => {
    const scan = treeScanner([many, links]);
    read.entries.clear();
    const first = await scan();
    // `many` (12,000) is scanned whole; `links` only until the scan's files pass 20,000.
    expect(read.entries.get(many)).toBe(12_000);
    const n = read.entries.get(links) ?? 0;
    expect(n).toBeGreaterThan(8_000);
    expect(n).toBeLessThanOrEqual(8_001 + 64);
    expect(first.complete).toBe(false);
    expect(first.stoppedAt).toBe(links);
    expect(SCAN_FILE_CAP).toBe(20_000);
    expect(first.files).toBe(SCAN_FILE_CAP + 1);
    // Nothing changed: the same fingerprint (no reload on every check).
    expect((await scan()).fingerprint).toBe(first.fingerprint);
    // An entry removed from the directory the scan stopped in changes it (its stamp does).
    unlinkSync(join(links, 't11999.yaml'));
    const after = await scan();
    expect(after.complete).toBe(false);
    expect(after.fingerprint).not.toBe(first.fingerprint);
  });

  it('a tree under the cap is scanned whole', async () => {
    const scan = treeScanner([many, mixed]);
    read.entries.clear();
    const whole = await scan();
    expect(whole.complete).toBe(true);
    expect(whole.files).toBe(17_003);
    expect(read.entries.get(many)).toBe(12_000);
    expect(read.entries.get(mixed)).toBe(5_003);
  });
});
