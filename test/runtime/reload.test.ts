/**
 * The reload queue and the file watch: reloads never overlap, and a watched directory that is
 * replaced (moved away and back, removed and recreated) is watched again.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createReloadQueue, startReloader, type Reloader } from '../../src/runtime/reload.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 4000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('reload queue', () => {
  it('runs one reload at a time and coalesces requests made meanwhile into one more run', async () => {
    let active = 0;
    let maxActive = 0;
    const reasons: string[] = [];
    const q = createReloadQueue(async (reason) => {
      active++;
      maxActive = Math.max(maxActive, active);
      reasons.push(reason);
      await sleep(30);
      active--;
      return true;
    });
    const results = await Promise.all([q.reloadNow('watch'), q.reloadNow('SIGHUP'), q.reloadNow('SIGHUP 2')]);
    expect(results).toEqual([true, true, true]);
    expect(maxActive).toBe(1);
    expect(reasons).toEqual(['watch', 'SIGHUP 2 (coalesced)']);
    await q.reloadNow('later');
    expect(reasons.at(-1)).toBe('later');
  });

  it('a reloader shares the queue it is given: its watch reloads and reloadNow never overlap', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-reload-q-'));
    let active = 0;
    let maxActive = 0;
    const q = createReloadQueue(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await sleep(50);
      active--;
      return true;
    });
    const r = await startReloader({ paths: [dir], debounceMs: 0, reload: async () => true, queue: q, onWatchError: () => {} });
    try {
      writeFileSync(join(dir, 'a.yaml'), 'x');
      await sleep(10);
      await Promise.all([r.reloadNow('SIGHUP'), q.reloadNow('SIGHUP')]);
      expect(maxActive).toBe(1);
    } finally {
      r.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('file watch', () => {
  let reloader: Reloader | undefined;
  let root: string | undefined;
  afterEach(() => {
    reloader?.close();
    reloader = undefined;
    if (root) rmSync(root, { recursive: true, force: true });
  });

  async function start(): Promise<{ dir: string; reasons: string[]; rewatched: string[] }> {
    root = mkdtempSync(join(tmpdir(), 'warden-reload-'));
    const dir = join(root, 'templates');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'a.yaml'), '1');
    const reasons: string[] = [];
    const rewatched: string[] = [];
    reloader = await startReloader({
      paths: [dir],
      debounceMs: 20,
      reload: async (reason) => (reasons.push(reason), true),
      onWatchError: () => {},
      onRewatch: (p) => rewatched.push(p),
    });
    return { dir, reasons, rewatched };
  }

  it('keeps reloading on changes after the directory is moved away and back', async () => {
    const { dir, reasons, rewatched } = await start();
    writeFileSync(join(dir, 'sub', 'a.yaml'), '2');
    await until(() => reasons.length >= 1);
    renameSync(dir, `${dir}.bak`);
    await sleep(150);
    renameSync(`${dir}.bak`, dir);
    await sleep(300);
    const before = reasons.length;
    writeFileSync(join(dir, 'sub', 'a.yaml'), '3');
    await until(() => reasons.length > before);
    expect(reasons.at(-1)).toMatch(/file change in/);
    // The replacement itself was reloaded and said so.
    expect(rewatched).toContain(dir);
    expect(reasons.some((r) => r.includes('was replaced; watching it again'))).toBe(true);
  });

  it('watches a directory that was removed and created anew (a new inode)', async () => {
    const { dir, reasons } = await start();
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    await sleep(300);
    const before = reasons.length;
    writeFileSync(join(dir, 'b.yaml'), '1');
    await until(() => reasons.length > before);
  });

  it("reloads on a Kubernetes ConfigMap swap (..data renamed over)", async () => {
    root = mkdtempSync(join(tmpdir(), 'warden-reload-cm-'));
    const dir = join(root, 'templates');
    mkdirSync(join(dir, '..ts1'), { recursive: true });
    writeFileSync(join(dir, '..ts1', 'a.yaml'), '1');
    const { symlinkSync } = await import('node:fs');
    symlinkSync('..ts1', join(dir, '..data'));
    symlinkSync('..data/a.yaml', join(dir, 'a.yaml'));
    const reasons: string[] = [];
    reloader = await startReloader({ paths: [dir], debounceMs: 20, reload: async (r) => (reasons.push(r), true), onWatchError: () => {} });
    mkdirSync(join(dir, '..ts2'));
    writeFileSync(join(dir, '..ts2', 'a.yaml'), '2');
    symlinkSync('..ts2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, '..ts1'), { recursive: true });
    await until(() => reasons.length >= 1);
  });
});

describe('describeLoadError', () => {
  it('names the part a non-Warden failure (or a timeout) came from', async () => {
    const { describeLoadError, LoadFailure } = await import('../../src/runtime/components.js');
    expect(describeLoadError(new LoadFailure('templates', 'templates did not load within 10 ms (reload.timeout_ms)'))).toEqual({
      kind: 'templates',
      problems: ['templates did not load within 10 ms (reload.timeout_ms)'],
    });
    expect(describeLoadError(new LoadFailure('policies', new RangeError('boom')))).toEqual({ kind: 'policies', problems: ['policies failed to load: boom'] });
  });
});
