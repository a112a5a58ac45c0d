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
 *
 * The check costs one `stat` per file and one streamed listing per directory, up to SCAN_FILE_CAP
 * files: past it, the scan stops (see SCAN_FILE_CAP). Where a symlinked file's
 * target sits (its directory is watched for that entry) is resolved again only when the link's
 * directory or the file it leads to changed: on a ConfigMap of 2,000 `x -> ..data/x` links a
 * `realpath` and a `stat` per link per check were two thirds of the check's cost.
 */
import { createHash } from 'node:crypto';
import { watch, type BigIntStats, type Dirent, type FSWatcher } from 'node:fs';
import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readDirectoryEntries, type DirectoryFilter } from '../pipeline/dir-entries.js';
import { MAX_POLICY_FILES } from '../policy/rego/data.js';
import { MAX_TEMPLATE_FILES } from '../templates/loader.js';

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

/**
 * The longest a change waits for its burst to settle, in debounces: then it is reloaded while the
 * burst goes on (and the rest of the burst after it).
 */
export const MAX_WAIT_DEBOUNCES = 10;

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
  /**
   * Called when a path cannot be watched (reload via SIGHUP still works); also, with the code
   * `too_many_files`, once when a scan stops at SCAN_FILE_CAP (naming the directory it stopped
   * in), until a scan is whole again.
   */
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
export interface TreeScan {
  /** The directories to watch, by `dev:ino` (a directory replaced at the same path is a new one). */
  dirs: Map<string, WatchTarget>;
  /** A digest of every file's path and identity: it differs when any file changed. */
  fingerprint: string;
  /** The symlinked files' resolutions, by link path: the next scan reuses those still valid. */
  links: Map<string, LinkResolution>;
  /**
   * False: the scan stopped past SCAN_FILE_CAP (the fingerprint then ends in "too many entries"
   * and the stamp of the directory it stopped in; `dirs` holds only what it walked before).
   */
  complete: boolean;
  /** Where a scan stopped at its cap: the directory it was listing. */
  stoppedAt?: string;
  /** The files (and links, and whatever is not a directory) the scan listed, up to SCAN_FILE_CAP + 1. */
  files: number;
}

/**
 * The most files (links included, directories not) one scan lists and fingerprints: as many as the
 * template and policy loaders read together (MAX_TEMPLATE_FILES + MAX_POLICY_FILES), so a tree both
 * accept is scanned whole unless it also holds that many files they do not read. Past it, the scan
 * stops listing (a directory of 500,000 entries dropped into a watched path is not listed, nor
 * stat'ed, on every change and every check): the fingerprint becomes "too many entries" and the
 * stamp of the directory it stopped in, which differs from the last scan's, so a reload runs and
 * the loader refuses the set with its own error (logged; the last good set keeps serving). While
 * the tree stays that large, what changes the directory it stopped in (an entry added, removed or
 * renamed) changes the fingerprint, so the check sees the tree brought back under the cap; an
 * in-place edit of a file past the stop is seen by its directory's watch only.
 */
export const SCAN_FILE_CAP = MAX_TEMPLATE_FILES + MAX_POLICY_FILES;

/** What the scan lists of a directory, and counts towards SCAN_FILE_CAP (as the loaders, dot-entries skipped). */
const SCAN_FILTER: DirectoryFilter = {
  keep: (e) => !e.name.startsWith('.'),
  counts: (e) => !e.isDirectory(),
};

const identity = (st: BigIntStats): string => `${st.dev}:${st.ino}`;
/** What changes when a file's content, or a directory's entries, change (or it is another one). */
const stamp = (st: BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/**
 * How many of a directory's entries are stat'ed at once. One at a time, each stat paid a round
 * trip through libuv's threadpool on its own; a whole directory at once would queue thousands of
 * stats ahead of the request path's file work (the audit file) on that pool's four threads.
 */
const STAT_BATCH = 32;

const statQuietly = (path: string): Promise<BigIntStats | NodeJS.ErrnoException> =>
  stat(path, { bigint: true }).catch((err: NodeJS.ErrnoException) => err);

/** Where a symlinked file led at a scan: the directory its target sits in, and that entry's name. */
interface LinkResolution {
  /** The stamp of the directory holding the link: replacing the link changes it. */
  dirStamp: string;
  /** The stamp of the file the link led to: a link (or a `..data` on its way) swapped leads to another file. */
  fileStamp: string;
  realDir: string;
  realDirKey: string;
  realName: string;
}

/**
 * Walks the watched paths the way the template and policy loaders do (dot-entries skipped,
 * symlinks followed, each real directory once). It never throws: what cannot be read goes
 * into the fingerprint as such, so its coming back is a change too.
 */
async function scanTree(paths: readonly string[], previous: ReadonlyMap<string, LinkResolution> = new Map()): Promise<TreeScan> {
  const links = new Map<string, LinkResolution>();
  const dirs = new Map<string, WatchTarget>();
  const hash = createHash('sha256');
  const walked = new Set<string>();
  /** Entries counted towards SCAN_FILE_CAP so far; past it, the scan stops (`complete` false). */
  let files = 0;
  let complete = true;
  let stoppedAt: string | undefined;

  const watchDir = (key: string, path: string, entry?: string): void => {
    const known = dirs.get(key);
    if (!known) dirs.set(key, { path, only: entry === undefined ? undefined : new Set([entry]) });
    else if (entry === undefined) known.only = undefined;
    else known.only?.add(entry);
  };

  /** A stat's result, or (into the digest, so that its coming back is a change) why there is none. */
  const noted = (path: string, st: BigIntStats | NodeJS.ErrnoException): BigIntStats | undefined => {
    if (!(st instanceof Error)) return st;
    hash.update(`${path}\0${st.code ?? 'error'}\n`);
    return undefined;
  };
  const statOf = async (path: string): Promise<BigIntStats | undefined> => noted(path, await statQuietly(path));

  /**
   * A file's identity; for a symlink, also the directory its target sits in, for that one entry.
   * `dirStamp`: the stamp of the directory holding the entry.
   */
  async function file(path: string, st: BigIntStats, linked: boolean, dirStamp: string): Promise<void> {
    const fileStamp = stamp(st);
    hash.update(`${path}\0${fileStamp}\n`);
    if (!linked) return;
    const known = previous.get(path);
    const resolved = known && known.dirStamp === dirStamp && known.fileStamp === fileStamp ? known : await resolveLink(path, dirStamp, fileStamp);
    if (!resolved) return;
    links.set(path, resolved);
    watchDir(resolved.realDirKey, resolved.realDir, resolved.realName);
  }

  async function resolveLink(path: string, dirStamp: string, fileStamp: string): Promise<LinkResolution | undefined> {
    try {
      const real = await realpath(path);
      const realDir = dirname(real);
      const realDirKey = identity(await stat(realDir, { bigint: true }));
      return { dirStamp, fileStamp, realDir, realDirKey, realName: basename(real) };
    } catch {
      return undefined; // gone between the calls: the next event or check sees it
    }
  }

  async function walk(dir: string, st: BigIntStats): Promise<void> {
    if (!complete || walked.has(identity(st))) return;
    walked.add(identity(st));
    watchDir(identity(st), dir);
    const dirStamp = stamp(st);
    let listed: Dirent[] | undefined;
    try {
      // As the loaders: a ConfigMap's `..data` and editors' temp files are skipped; the listing is
      // streamed and stops once the scan's files pass SCAN_FILE_CAP.
      listed = await readDirectoryEntries(dir, SCAN_FILTER, SCAN_FILE_CAP - files);
    } catch (err) {
      hash.update(`${dir}\0${(err as NodeJS.ErrnoException).code ?? 'error'}\n`);
      return;
    }
    if (listed === undefined) {
      // Past the cap: the rest of the tree is not scanned. This directory's own stamp changes
      // with its entries, so bringing the tree back under the cap is a change too.
      complete = false;
      stoppedAt = dir;
      files = SCAN_FILE_CAP + 1;
      hash.update(`too many entries\0${dir}\0${dirStamp}\n`);
      return;
    }
    for (const e of listed) if (SCAN_FILTER.counts(e)) files++;
    const shown = listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 0; i < shown.length && complete; i += STAT_BATCH) {
      const batch = shown.slice(i, i + STAT_BATCH);
      const stats = await Promise.all(batch.map((e) => statQuietly(join(dir, e.name))));
      // In name order, whatever order the stats finished in: the digest must not depend on it.
      for (const [j, e] of batch.entries()) {
        if (!complete) return; // a sub-directory before this entry passed the cap
        const child = join(dir, e.name);
        const childSt = noted(child, stats[j]!);
        if (!childSt) continue;
        if (childSt.isDirectory()) await walk(child, childSt);
        else await file(child, childSt, e.isSymbolicLink(), dirStamp);
      }
    }
  }

  for (const p of paths) {
    if (!complete) break;
    const st = await statOf(p);
    if (!st) continue;
    if (st.isDirectory()) {
      await walk(p, st);
      continue;
    }
    // A file is watched through its directory, all of it: editors replace files, and a
    // ConfigMap swaps `..data` next to it.
    const parentSt = await statOf(dirname(p));
    if (parentSt) watchDir(identity(parentSt), dirname(p));
    files++;
    let linked = false;
    try {
      linked = (await lstat(p)).isSymbolicLink();
    } catch {
      // Gone meanwhile: the fingerprint has its identity from a moment ago; the next check sees it.
    }
    await file(p, st, linked, parentSt ? stamp(parentSt) : '');
  }
  return { dirs, fingerprint: hash.digest('hex'), links, complete, files, ...(stoppedAt === undefined ? {} : { stoppedAt }) };
}

/** The watched paths' fingerprint now (ReloaderOptions.baseline): take it before a load. */
export async function treeFingerprint(paths: readonly string[]): Promise<string> {
  return (await scanTree(paths)).fingerprint;
}

/**
 * Scans the watched paths, again and again (the reloader's every scan, the periodic check's
 * too): each scan reuses the symlink resolutions of the one before that are still valid. Call
 * it one scan at a time.
 */
export function treeScanner(paths: readonly string[]): () => Promise<TreeScan> {
  let links = new Map<string, LinkResolution>();
  return async () => {
    const result = await scanTree(paths, links);
    links = result.links;
    return result;
  };
}

export async function startReloader(opts: ReloaderOptions): Promise<Reloader> {
  const own = opts.queue ? undefined : createReloadQueue(opts.reload);
  const queue: ReloadQueue = opts.queue ?? own!;
  const closers: Array<() => void> = [];
  /** The directory watches, by `dev:ino`, as the last scan found them. */
  const watches = new Map<string, { watcher: FSWatcher; target: WatchTarget }>();
  /** Whether the scan's stopping at SCAN_FILE_CAP was reported (see sync). */
  let capReported = false;
  /** Directories that could not be watched, reported once each (the periodic check still covers them). */
  const reported = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  /** When the first change of the burst the timer is waiting out was reported (performance.now()). */
  let burstSince = 0;
  let closed = false;
  /** The fingerprint the last reload (or the start) saw. */
  let seen = '';

  function schedule(reason: string): void {
    if (closed) return;
    const now = performance.now();
    if (timer) {
      // A burst that never settles (something writing in a watched directory all the time) would
      // push the reload back for good, the periodic check's too: once the burst's first change has
      // waited MAX_WAIT_DEBOUNCES debounces, the timer is left to fire.
      if (now - burstSince >= opts.debounceMs * MAX_WAIT_DEBOUNCES) return;
      clearTimeout(timer);
    } else {
      burstSince = now;
    }
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

  /**
   * Makes the directory watches match a scan: new directories watched, gone ones closed. A scan
   * stopped at its cap (`complete` false) did not walk the whole tree: the watches of what it did
   * not reach are kept until a whole scan.
   */
  function sync({ dirs, complete, stoppedAt }: TreeScan): void {
    if (closed) return;
    if (!complete && !capReported) {
      // Said once until a scan is whole again: what lies past where the scan stopped (in walk
      // order) is neither checked nor, if it was never scanned, watched. SIGHUP still reloads.
      capReported = true;
      opts.onWatchError(stoppedAt ?? opts.paths[0] ?? '', 'too_many_files');
    }
    if (complete) {
      capReported = false;
      // A directory no scan lists any more is forgotten, its report too (one made anew gets its own).
      for (const key of reported) if (!dirs.has(key)) reported.delete(key);
      for (const [key, entry] of watches) {
        if (dirs.has(key)) continue;
        entry.watcher.close();
        watches.delete(key);
      }
    }
    for (const [key, target] of dirs) {
      const entry = watches.get(key);
      if (entry) entry.target = target; // the entries that count may have changed
      else watchDir(key, target);
    }
  }

  /** One scan at a time; a request meanwhile shares the one queued after it. */
  const scan = treeScanner(opts.paths);
  let scanning: Promise<TreeScan> = Promise.resolve({ dirs: new Map(), fingerprint: '', links: new Map(), complete: true, files: 0 });
  let queued: Promise<TreeScan> | undefined;
  function rescan(): Promise<TreeScan> {
    queued ??= scanning.then(async () => {
      queued = undefined;
      const result = await scan();
      sync(result);
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

/**
 * A load failed because a file or directory it had listed was gone when it came to read it (the
 * loaders keep the errno error as the cause): the tree changed while it was read, an rsync or
 * deploy tool's temporary directory, or `rm -r` during a reload. Not a bad change: the set is
 * read again once the change has settled. (A configured root that is missing is not this: its
 * error has no such cause, and it is a rejected change.)
 */
export function removedWhileRead(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return true;
    e = e.cause;
  }
  return false;
}
