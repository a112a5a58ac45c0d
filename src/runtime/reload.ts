/**
 * Hot reload of templates and policies: a debounced watch on their paths, a periodic check as a
 * backstop, plus SIGHUP. A reload builds a complete new set off to the side and swaps it in only
 * when all of it loaded; a bad change is logged with its file and line and the last good set
 * keeps serving.
 *
 * Every reload, from the watch, the check or SIGHUP, goes through one queue
 * (`ReloadQueue.reloadNow`): one reload runs at a time, and a request that arrives during one runs
 * once more after it, so the last change always wins and an older load can never finish last.
 *
 * Each directory of the tree is watched on its own, never with `recursive: true`: on Linux, Node
 * 20 and 24 build a recursive watch from one watch per file, which follows the file's inode, so
 * once a file was saved by rename (sed -i, vim, most editors) a later in-place edit of it was
 * never reported. A directory's own watch reports its entries by name, whatever inode they have
 * now. When an entry comes or goes, the tree is walked again (as the loaders walk it: dot-entries
 * skipped, symlinks followed) and the set of watched directories follows it: new sub-directories,
 * a ConfigMap's swapped `..data` (its links now lead elsewhere), the directory a symlinked file's
 * target sits in (for that entry only).
 *
 * A watched directory can be replaced (`mv dir dir.old; mv dir.new dir`, rsync or blue/green
 * deploys, a removed and recreated directory): each watched path's parent is watched too, and
 * when the path's own entry changes there, the watch follows whatever is at the path now (and a
 * reload runs).
 *
 * What no watch reports (a hard link edited through another name, a lost event, a platform whose
 * watch misses something) the periodic check finds: every `pollMs` it compares a digest of every
 * file's identity (device, inode, size, mtime, ctime) with the one the last reload saw.
 */
import { createHash } from 'node:crypto';
import { watch, type BigIntStats, type Dirent, type FSWatcher } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface ReloadQueue {
  /**
   * Reloads now, serialized with every other reload through this queue: when one is running,
   * this one runs right after it (several requests meanwhile are coalesced into one run).
   * Resolves with that run's outcome (false: rejected, the last good set keeps serving).
   */
  reloadNow(reason: string): Promise<boolean>;
}

/**
 * The one entry point for reloads. `reload` performs one reload and must never throw (it logs
 * and counts its own failures) and must settle in bounded time (the runtime's load has a
 * deadline, `reload.timeout_ms`).
 */
export function createReloadQueue(reload: (reason: string) => Promise<boolean>): ReloadQueue & { close(): void } {
  let running: Promise<boolean> | undefined;
  let again: string | undefined;
  let closed = false;

  async function reloadNow(reason: string): Promise<boolean> {
    if (running) {
      // A request arrived during a reload: run once more after it, so the last change always wins.
      again = reason;
      return running;
    }
    running = (async () => {
      let ok = await reload(reason);
      while (again !== undefined && !closed) {
        const next = again;
        again = undefined;
        ok = await reload(`${next} (coalesced)`);
      }
      return ok;
    })();
    try {
      return await running;
    } finally {
      running = undefined;
    }
  }

  return {
    reloadNow,
    close() {
      closed = true;
    },
  };
}

export interface ReloaderOptions {
  /** Files or directories to watch. */
  paths: readonly string[];
  debounceMs: number;
  /**
   * How often to compare every watched file's identity (device, inode, size, mtime, ctime) with
   * the last check, as a backstop for what no watch reports; 0: never. Off the request path.
   */
  pollMs?: number;
  /** Performs one reload; must never throw (it logs and counts its own failures). Ignored when `queue` is given. */
  reload: (trigger: string) => Promise<boolean>;
  /** The queue to run reloads through (share it with SIGHUP); default: a queue of its own around `reload`. */
  queue?: ReloadQueue;
  /** Called when a path cannot be watched (reload via SIGHUP still works). */
  onWatchError: (path: string, code: string) => void;
  /** Called when a path's watch is set up again because the path was replaced (or appeared). */
  onRewatch?: (path: string) => void;
  /**
   * The paths' fingerprint (treeFingerprint) taken before the set now serving was loaded: a
   * change made between that load and this start is then seen at once. Without it, the
   * reloader's own first scan is the baseline.
   */
  baseline?: string;
}

export interface Reloader {
  /** Reloads now, through the same queue as the watch (see ReloadQueue.reloadNow). */
  reloadNow(reason: string): Promise<boolean>;
  /** Same as reloadNow (kept for existing callers). */
  trigger(reason: string): Promise<boolean>;
  close(): void;
}

/** Editor temp and swap files, and dot-entries other than a ConfigMap's `..data` switch. */
function ignored(name: string): boolean {
  if (name === '..data') return false; // the kubelet's atomic swap of a mounted ConfigMap
  return /(^|\/)(\.|#)|~$|\.swp$/.test(name);
}

/** A directory to watch (on its own, never recursively) and which of its entries count. */
interface WatchTarget {
  path: string;
  /** The entries whose events count; undefined: all of them (but `ignored` ones). */
  only: Set<string> | undefined;
}

/** What one walk of the watched paths found. */
interface TreeScan {
  /** The directories to watch, by `dev:ino` (a directory replaced at the same path is a new one). */
  dirs: Map<string, WatchTarget>;
  /** A digest of every file's path and identity: it differs when any file changed. */
  fingerprint: string;
}

const identity = (st: BigIntStats): string => `${st.dev}:${st.ino}`;

/**
 * Walks the watched paths the way the template and policy loaders do (dot-entries skipped,
 * symlinks followed, each real directory once). It never throws: what cannot be read goes
 * into the fingerprint as such, so its coming back is a change too.
 */
async function scanTree(paths: readonly string[]): Promise<TreeScan> {
  const dirs = new Map<string, WatchTarget>();
  const hash = createHash('sha256');
  const walked = new Set<string>();

  const watchDir = (st: BigIntStats, path: string, entry?: string): void => {
    const key = identity(st);
    const known = dirs.get(key);
    if (!known) dirs.set(key, { path, only: entry === undefined ? undefined : new Set([entry]) });
    else if (entry === undefined) known.only = undefined;
    else known.only?.add(entry);
  };

  const statOf = async (path: string): Promise<BigIntStats | undefined> => {
    try {
      return await stat(path, { bigint: true });
    } catch (err) {
      hash.update(`${path}\0${(err as NodeJS.ErrnoException).code ?? 'error'}\n`);
      return undefined;
    }
  };

  /** A file's identity; for a symlink, also the directory its target sits in, for that one entry. */
  async function file(path: string, st: BigIntStats, linked: boolean): Promise<void> {
    hash.update(`${path}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}\n`);
    if (!linked) return;
    try {
      const real = await realpath(path);
      const dirSt = await stat(dirname(real), { bigint: true });
      watchDir(dirSt, dirname(real), basename(real));
    } catch {
      // Gone between the two calls: the next event or check sees it.
    }
  }

  async function walk(dir: string, st: BigIntStats): Promise<void> {
    if (walked.has(identity(st))) return;
    walked.add(identity(st));
    watchDir(st, dir);
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      hash.update(`${dir}\0${(err as NodeJS.ErrnoException).code ?? 'error'}\n`);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue; // as the loaders: a ConfigMap's `..data` and editors' temp files
      const child = join(dir, e.name);
      const childSt = await statOf(child);
      if (!childSt) continue;
      if (childSt.isDirectory()) await walk(child, childSt);
      else await file(child, childSt, e.isSymbolicLink());
    }
  }

  for (const p of paths) {
    const st = await statOf(p);
    if (!st) continue;
    if (st.isDirectory()) {
      await walk(p, st);
      continue;
    }
    // A file is watched through its directory, all of it: editors replace files, and a
    // ConfigMap swaps `..data` next to it.
    const parentSt = await statOf(dirname(p));
    if (parentSt) watchDir(parentSt, dirname(p));
    let linked = false;
    try {
      linked = (await lstat(p)).isSymbolicLink();
    } catch {
      // Gone meanwhile: the fingerprint has its identity from a moment ago; the next check sees it.
    }
    await file(p, st, linked);
  }
  return { dirs, fingerprint: hash.digest('hex') };
}

/** The watched paths' fingerprint now (ReloaderOptions.baseline): take it before a load. */
export async function treeFingerprint(paths: readonly string[]): Promise<string> {
  return (await scanTree(paths)).fingerprint;
}

export async function startReloader(opts: ReloaderOptions): Promise<Reloader> {
  const own = opts.queue ? undefined : createReloadQueue(opts.reload);
  const queue: ReloadQueue = opts.queue ?? own!;
  const closers: Array<() => void> = [];
  /** The directory watches, by `dev:ino`, as the last scan found them. */
  const watches = new Map<string, { watcher: FSWatcher; target: WatchTarget }>();
  /** Directories that could not be watched, reported once each (the periodic check still covers them). */
  const reported = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  /** The fingerprint the last reload (or the start) saw. */
  let seen = '';

  function schedule(reason: string): void {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      // The fingerprint is taken before the load reads the files: a change after it is seen
      // again by the next check (one reload too many at worst, never one too few).
      void rescan().then(({ fingerprint }) => {
        seen = fingerprint;
        if (!closed) void queue.reloadNow(reason);
      });
    }, opts.debounceMs);
    timer.unref();
  }

  function onDirEvent(key: string, event: string, name: string | Buffer | null): void {
    const entry = watches.get(key);
    if (!entry) return;
    if (event === 'rename' && name !== null && String(name) === basename(entry.target.path)) {
      // The directory itself was removed or moved (inotify names it by its own name). Its watch is
      // dead, and a directory created anew at its path may get the same inode number: drop the
      // watch so that the scan below sets up a new one rather than taking the dead one for it.
      entry.watcher.close();
      watches.delete(key);
    }
    if (name !== null) {
      const n = String(name);
      if (ignored(n) || (entry.target.only && !entry.target.only.has(n))) return;
    }
    // An entry came, went or was replaced (a new directory, a file saved by rename, `..data`
    // swapped): the set of directories to watch may have changed.
    if (event === 'rename' || name === null) void rescan();
    schedule(`file change in ${entry.target.path}`);
  }

  /**
   * Says once per directory that it cannot be watched: every later scan would try it again. A
   * directory gone between the scan and its watch is no news: the next scan no longer lists it.
   */
  function report(key: string, path: string, err: NodeJS.ErrnoException): void {
    if (err.code === 'ENOENT' || reported.has(key)) return;
    reported.add(key);
    opts.onWatchError(path, err.code ?? 'error');
  }

  function watchDir(key: string, target: WatchTarget): void {
    try {
      const w = watch(target.path, { persistent: false }, (event, name) => onDirEvent(key, event, name));
      w.on('error', (err: NodeJS.ErrnoException) => {
        report(key, target.path, err);
        if (watches.get(key)?.watcher === w) watches.delete(key);
        w.close();
      });
      watches.set(key, { watcher: w, target });
    } catch (err) {
      report(key, target.path, err as NodeJS.ErrnoException);
    }
  }

  /** Makes the directory watches match a scan: new directories watched, gone ones closed. */
  function sync(dirs: Map<string, WatchTarget>): void {
    if (closed) return;
    // A directory no scan lists any more is forgotten, its report too (one made anew gets its own).
    for (const key of reported) if (!dirs.has(key)) reported.delete(key);
    for (const [key, entry] of watches) {
      if (dirs.has(key)) continue;
      entry.watcher.close();
      watches.delete(key);
    }
    for (const [key, target] of dirs) {
      const entry = watches.get(key);
      if (entry) entry.target = target; // the entries that count may have changed
      else watchDir(key, target);
    }
  }

  /** One scan at a time; a request meanwhile shares the one queued after it. */
  let scanning: Promise<TreeScan> = Promise.resolve({ dirs: new Map(), fingerprint: '' });
  let queued: Promise<TreeScan> | undefined;
  function rescan(): Promise<TreeScan> {
    queued ??= scanning.then(async () => {
      queued = undefined;
      const result = await scanTree(opts.paths);
      sync(result.dirs);
      return result;
    });
    scanning = queued;
    return queued;
  }

  const first = await rescan();
  seen = opts.baseline ?? first.fingerprint;
  // Changed since the serving set was loaded (a deploy's edit, a ConfigMap swap during start-up):
  // no watch was there to see it.
  if (first.fingerprint !== seen) schedule('a file changed while Warden started');
  for (const p of opts.paths) {
    // A missing path may appear later (the parent watch below sees it); say it is not watched yet.
    if (!(await exists(p))) opts.onWatchError(p, 'ENOENT');
  }

  // A watched directory (or a path still missing) can be replaced or removed as a whole: its
  // parent sees its entry change, and the watch follows whatever is at the path now.
  for (const p of opts.paths) {
    const parent = dirname(p);
    const name = basename(p);
    if (parent === p || (await isFile(p))) continue; // a file is watched through its directory already
    try {
      const pw = watch(parent, { persistent: false }, (_event, entry) => {
        if (entry !== null && String(entry) !== name) return;
        void rescan().then(async () => {
          if (closed) return;
          if (await exists(p)) {
            opts.onRewatch?.(p);
            schedule(`${p} was replaced; watching it again`);
          } else {
            schedule(`${p} was removed`);
          }
        });
      });
      pw.on('error', (err: NodeJS.ErrnoException) => opts.onWatchError(parent, err.code ?? 'error'));
      closers.push(() => pw.close());
    } catch (err) {
      opts.onWatchError(parent, (err as NodeJS.ErrnoException).code ?? 'error');
    }
  }

  // The backstop: whatever a watch missed (a platform's watch limits, an event lost, a symlink
  // target edited outside the tree) is seen within `pollMs`.
  if (opts.pollMs && opts.pollMs > 0) {
    let checking = false;
    const poll = setInterval(() => {
      if (checking || closed) return;
      checking = true;
      void rescan()
        .then(({ fingerprint }) => {
          if (fingerprint !== seen && !timer) schedule('a file changed (found by the periodic check)');
        })
        .finally(() => {
          checking = false;
        });
    }, opts.pollMs);
    poll.unref();
    closers.push(() => clearInterval(poll));
  }

  const reloadNow = (reason: string) => queue.reloadNow(reason);
  return {
    reloadNow,
    trigger: reloadNow,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      own?.close();
      for (const c of closers) c();
      for (const { watcher } of watches.values()) watcher.close();
      watches.clear();
    },
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return !(await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
