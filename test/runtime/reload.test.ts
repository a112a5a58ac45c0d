/**
 * The reload queue and the file watch: reloads never overlap, a watched directory that is
 * replaced (moved away and back, removed and recreated) is watched again, a file saved by
 * rename is still watched afterwards, and the periodic check catches what no watch reports.
 */
import { linkSync, mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createReloadQueue, startReloader, treeFingerprint, treeScanner, type Reloader, type TreeScan } from '../../src/runtime/reload.js';

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

  async function start(pollMs = 0, debounceMs = 20): Promise<{ dir: string; reasons: string[]; rewatched: string[] }> {
    root = mkdtempSync(join(tmpdir(), 'warden-reload-'));
    const dir = join(root, 'templates');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'a.yaml'), '1');
    const reasons: string[] = [];
    const rewatched: string[] = [];
    reloader = await startReloader({
      paths: [dir],
      debounceMs,
      pollMs,
      reload: async (reason) => (reasons.push(reason), true),
      onWatchError: () => {},
      onRewatch: (p) => rewatched.push(p),
    });
    return { dir, reasons, rewatched };
  }

  /** What `sed -i`, vim and most editors do: write a temp file, rename it over the original. */
  function replaceByRename(file: string, text: string): void {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  }

  // Node 20 and 24's recursive fs.watch on Linux stop reporting a file once it was replaced by
  // rename: a later in-place edit (here: one that could revoke a grant) was never reloaded.
  it('reloads on an in-place edit of a file that was earlier saved by rename (watch alone, no periodic check)', async () => {
    const { dir, reasons } = await start(0);
    for (const file of [join(dir, 'sub', 'a.yaml'), join(dir, 'top.yaml')]) {
      writeFileSync(file, 'first');
      await until(() => reasons.length >= 1);
      await sleep(100);
      const beforeRename = reasons.length;
      replaceByRename(file, 'second');
      await until(() => reasons.length > beforeRename);
      await sleep(100);
      const beforeEdit = reasons.length;
      writeFileSync(file, 'third, in place');
      await until(() => reasons.length > beforeEdit);
      await sleep(100);
      const beforeAppend = reasons.length;
      writeFileSync(file, 'fourth, in place again');
      await until(() => reasons.length > beforeAppend);
    }
  });

  // Each change pushed the debounce back, the periodic check's too: a change made while something
  // kept writing in a watched directory (a log, a build's output) waited for as long as that went on.
  it('a burst of changes that never settles does not hold a change back: it is reloaded while the burst goes on', async () => {
    const { dir, reasons } = await start(500, 200);
    writeFileSync(join(dir, 'sub', 'a.yaml'), 'a revocation');
    let writing = true;
    const storm = (async () => {
      for (let i = 0; writing; i++) {
        writeFileSync(join(dir, 'build.log'), `line ${i}\n`);
        await sleep(10);
      }
    })();
    try {
      await until(() => reasons.length >= 1, 15_000);
    } finally {
      writing = false;
      await storm;
    }
  }, 20_000);

  it('watches a sub-directory created (or moved in) after the start, including its later in-place edits', async () => {
    const { dir, reasons } = await start(0);
    mkdirSync(join(dir, 'new', 'deeper'), { recursive: true });
    await sleep(150);
    const beforeCreate = reasons.length;
    writeFileSync(join(dir, 'new', 'deeper', 'b.yaml'), '1');
    await until(() => reasons.length > beforeCreate);
    await sleep(100);
    const beforeEdit = reasons.length;
    writeFileSync(join(dir, 'new', 'deeper', 'b.yaml'), '2');
    await until(() => reasons.length > beforeEdit);

    const outside = join(root!, 'staged');
    mkdirSync(outside);
    writeFileSync(join(outside, 'c.yaml'), '1');
    renameSync(outside, join(dir, 'moved-in'));
    await sleep(150);
    const beforeMoved = reasons.length;
    writeFileSync(join(dir, 'moved-in', 'c.yaml'), '2');
    await until(() => reasons.length > beforeMoved);
  });

  it('the periodic check reloads on a change no watch reports (a hard-linked file edited through its other name)', async () => {
    root = mkdtempSync(join(tmpdir(), 'warden-reload-poll-'));
    const dir = join(root, 'policies');
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(dir);
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'p.rego'), 'package a\n');
    linkSync(join(elsewhere, 'p.rego'), join(dir, 'p.rego'));
    const reasons: string[] = [];
    reloader = await startReloader({ paths: [dir], debounceMs: 20, pollMs: 100, reload: async (r) => (reasons.push(r), true), onWatchError: () => {} });
    await sleep(300);
    expect(reasons).toEqual([]); // nothing changed: the check alone never reloads
    writeFileSync(join(elsewhere, 'p.rego'), 'package b\n');
    await until(() => reasons.length >= 1);
    expect(reasons[0]).toMatch(/periodic check/);
    await sleep(300);
    expect(reasons).toHaveLength(1); // and it reloads once per change, not on every check
  });

  it('a change made after the serving set was loaded but before the reloader started is reloaded at once', async () => {
    root = mkdtempSync(join(tmpdir(), 'warden-reload-start-'));
    const dir = join(root, 'policies');
    mkdirSync(dir);
    writeFileSync(join(dir, 'p.rego'), 'package a\n');
    const baseline = await treeFingerprint([dir]); // taken before the first load
    writeFileSync(join(dir, 'p.rego'), 'package revoked\n'); // lands during start-up
    const reasons: string[] = [];
    reloader = await startReloader({ paths: [dir], baseline, debounceMs: 20, pollMs: 0, reload: async (r) => (reasons.push(r), true), onWatchError: () => {} });
    await until(() => reasons.length >= 1);
    expect(reasons).toEqual(['a file changed while Warden started']);
  });

  it('with nothing changed since the baseline, starting reloads nothing', async () => {
    root = mkdtempSync(join(tmpdir(), 'warden-reload-start-'));
    const dir = join(root, 'policies');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'p.rego'), 'package a\n');
    writeFileSync(join(dir, 'sub', 'q.rego'), 'package b\n');
    const reasons: string[] = [];
    reloader = await startReloader({ paths: [dir], baseline: await treeFingerprint([dir]), debounceMs: 20, pollMs: 0, reload: async (r) => (reasons.push(r), true), onWatchError: () => {} });
    await sleep(200);
    expect(reasons).toEqual([]);
  });

  it('follows a symlinked file to its target: an in-place edit of the target outside the tree reloads at once', async () => {
    root = mkdtempSync(join(tmpdir(), 'warden-reload-link-'));
    const dir = join(root, 'policies');
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(dir);
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'p.rego'), 'package a\n');
    writeFileSync(join(elsewhere, 'unrelated.txt'), '1');
    symlinkSync(join(elsewhere, 'p.rego'), join(dir, 'p.rego'));
    const reasons: string[] = [];
    reloader = await startReloader({ paths: [dir], debounceMs: 20, pollMs: 0, reload: async (r) => (reasons.push(r), true), onWatchError: () => {} });
    writeFileSync(join(elsewhere, 'unrelated.txt'), '2');
    await sleep(300);
    expect(reasons).toEqual([]); // only the linked entry of that directory counts
    writeFileSync(join(elsewhere, 'p.rego'), 'package b\n');
    await until(() => reasons.length >= 1);
  });

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

/**
 * A mounted ConfigMap as the kubelet lays it out: the files in `..<timestamp>/`, `..data ->
 * ..<timestamp>`, and `<file> -> ..data/<file>` for each file. `publish` is the kubelet's update:
 * a new timestamped directory, a new `..data` link renamed over the old one, the old directory
 * removed, and the top-level links of the files added or gone.
 */
function kubeletMount(dir: string, files: Record<string, string>): { publish(next: Record<string, string>): string; current(): string } {
  let n = 0;
  let names: string[] = [];
  const publish = (next: Record<string, string>): string => {
    const old = n > 0 ? `..2026_11_26_13_00_0${n}.123` : undefined;
    n++;
    const stampDir = `..2026_11_26_13_00_0${n}.123`;
    mkdirSync(join(dir, stampDir), { recursive: true });
    for (const [name, text] of Object.entries(next)) writeFileSync(join(dir, stampDir, name), text);
    symlinkSync(stampDir, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    for (const name of Object.keys(next)) if (!names.includes(name)) symlinkSync(`..data/${name}`, join(dir, name));
    for (const name of names) if (!(name in next)) unlinkSync(join(dir, name));
    names = Object.keys(next);
    if (old) rmSync(join(dir, old), { recursive: true });
    return join(dir, stampDir);
  };
  publish(files);
  return { publish, current: () => join(dir, `..2026_11_26_13_00_0${n}.123`) };
}

describe('the periodic check on a Kubernetes ConfigMap mount', () => {
  let root: string | undefined;
  let reloader: Reloader | undefined;
  afterEach(() => {
    reloader?.close();
    reloader = undefined;
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** The entries watched in each directory, by real path (undefined: all of them). */
  const watched = (s: TreeScan): Map<string, string[] | undefined> =>
    new Map([...s.dirs.values()].map((t) => [t.path, t.only && [...t.only].sort()]));

  // The check reuses where each link led while neither the link's directory nor the file it
  // leads to changed: every kind of change must still change the fingerprint, and the watch
  // must follow the files to their new directory after a swap.
  it('every kind of change is seen, scan after scan, and the watch follows each ..data swap', async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'warden-reload-kubelet-')));
    const dir = join(root, 'templates');
    const files = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`t${String(i).padStart(2, '0')}.yaml`, `id: t/${i}\n`]));
    const mount = kubeletMount(dir, files);
    const scan = treeScanner([dir]);
    let last = (await scan()).fingerprint;
    /** Applies a change; the next scan must differ from the last, and the one after it must not. */
    const seen = async (change: () => void): Promise<TreeScan> => {
      change();
      const after = await scan();
      expect(after.fingerprint).not.toBe(last);
      last = after.fingerprint;
      expect((await scan()).fingerprint).toBe(last);
      return after;
    };
    expect((await scan()).fingerprint).toBe(last); // nothing changed: nothing seen

    // An in-place edit through the link's target (same inode, same size).
    const target = join(mount.current(), 't07.yaml');
    const inode = statSync(target).ino;
    await seen(() => writeFileSync(target, 'id: t/X\n'));
    expect(statSync(target).ino).toBe(inode);
    // A save by rename in the timestamped directory.
    await seen(() => {
      writeFileSync(join(mount.current(), 't08.yaml.tmp'), 'id: t/8 renamed\n');
      renameSync(join(mount.current(), 't08.yaml.tmp'), join(mount.current(), 't08.yaml'));
    });
    // The kubelet's swap: same names, new content; the watch moves to the new directory.
    const swapped = await seen(() => mount.publish({ ...files, 't00.yaml': 'id: t/0 v2\n' }));
    expect(watched(swapped).get(mount.current())).toEqual(Object.keys(files).sort());
    expect([...watched(swapped).keys()].filter((p) => p.includes('..2026'))).toEqual([mount.current()]);
    // A file added, then one deleted (each by a swap, as the kubelet does).
    const added = await seen(() => mount.publish({ ...files, 'new.yaml': 'id: new\n' }));
    expect(watched(added).get(mount.current())).toContain('new.yaml');
    const deleted = await seen(() => mount.publish(files));
    expect(watched(deleted).get(mount.current())).not.toContain('new.yaml');
    // A plain file next to the links, then replaced by a link to another name of itself (a hard
    // link: the same inode and size; its ctime changes as it loses the name).
    writeFileSync(join(root, 'plain.yaml'), 'id: plain\n');
    await seen(() => linkSync(join(root!, 'plain.yaml'), join(dir, 'plain.yaml')));
    await seen(() => {
      symlinkSync(join(root!, 'plain.yaml'), join(dir, 'plain.yaml.tmp'));
      renameSync(join(dir, 'plain.yaml.tmp'), join(dir, 'plain.yaml'));
    });
    expect(watched(await scan()).get(root)).toEqual(['plain.yaml']);
  });

  it('after a swap, an in-place edit of a file in the new ..data is reloaded by the watch alone', async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'warden-reload-kubelet-')));
    const dir = join(root, 'policies');
    const mount = kubeletMount(dir, { 'a.rego': 'package a\n', 'b.rego': 'package b\n' });
    const reasons: string[] = [];
    reloader = await startReloader({ paths: [dir], debounceMs: 20, pollMs: 0, reload: async (r) => (reasons.push(r), true), onWatchError: () => {} });
    mount.publish({ 'a.rego': 'package a2\n', 'b.rego': 'package b\n' });
    await until(() => reasons.length >= 1);
    await sleep(300);
    const before = reasons.length;
    writeFileSync(join(mount.current(), 'b.rego'), 'package b2\n');
    await until(() => reasons.length > before);
    expect(reasons.at(-1)).toMatch(/\.\.2026_11_26_13_00_02\.123/);
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
