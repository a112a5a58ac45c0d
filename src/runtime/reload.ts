/**
 * Hot reload of templates and policies: a debounced `fs.watch` on their paths plus SIGHUP. A
 * reload builds a complete new set off to the side and swaps it in only when all of it loaded;
 * a bad change is logged with its file and line and the last good set keeps serving.
 *
 * Every reload, from the watch or from SIGHUP, goes through one queue (`ReloadQueue.reloadNow`):
 * one reload runs at a time, and a request that arrives during one runs once more after it, so
 * the last change always wins and an older load can never finish last.
 *
 * A watched directory can be replaced (`mv dir dir.old; mv dir.new dir`, rsync or blue/green
 * deploys, a removed and recreated directory): the watch on the old directory then hears
 * nothing more. Each watched path's parent is watched too, and when the path's own entry changes
 * there, the watch is set up again on whatever is at the path now (and a reload runs).
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

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
  /** Performs one reload; must never throw (it logs and counts its own failures). Ignored when `queue` is given. */
  reload: (trigger: string) => Promise<boolean>;
  /** The queue to run reloads through (share it with SIGHUP); default: a queue of its own around `reload`. */
  queue?: ReloadQueue;
  /** Called when a path cannot be watched (reload via SIGHUP still works). */
  onWatchError: (path: string, code: string) => void;
  /** Called when a path's watch is set up again because the path was replaced (or appeared). */
  onRewatch?: (path: string) => void;
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

export async function startReloader(opts: ReloaderOptions): Promise<Reloader> {
  const own = opts.queue ? undefined : createReloadQueue(opts.reload);
  const queue: ReloadQueue = opts.queue ?? own!;
  const closers: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function schedule(reason: string): void {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void queue.reloadNow(reason);
    }, opts.debounceMs);
    timer.unref();
  }

  /** Watches one path: the path itself (re-armed when replaced) and its entry in its parent. */
  async function watchPath(p: string): Promise<void> {
    let current: FSWatcher | undefined;
    /** Whether `current` watches `p` as a directory (a file is watched through its directory). */
    let watchingDir = false;
    let generation = 0;

    const closeCurrent = () => {
      current?.close();
      current = undefined;
    };

    /** Watches whatever is at `p` now; returns false when nothing is there. */
    async function arm(): Promise<boolean> {
      const mine = ++generation;
      let isDir: boolean;
      try {
        isDir = (await stat(p)).isDirectory();
      } catch {
        if (mine === generation) closeCurrent();
        return false;
      }
      if (closed || mine !== generation) return false;
      closeCurrent();
      // A file is watched through its directory: editors replace files, which loses a file watch.
      const dir = isDir ? p : dirname(p);
      try {
        const w = watch(dir, { recursive: isDir, persistent: false }, (_event, name) => {
          if (name && ignored(String(name))) return;
          schedule(`file change in ${dir}`);
        });
        w.on('error', (err: NodeJS.ErrnoException) => {
          opts.onWatchError(dir, err.code ?? 'error');
          if (current === w) closeCurrent();
        });
        current = w;
        watchingDir = isDir;
        return true;
      } catch (err) {
        opts.onWatchError(dir, (err as NodeJS.ErrnoException).code ?? 'error');
        return false;
      }
    }

    const armed = await arm();
    if (!armed) {
      // A missing path may appear later (the parent watch below sees it); say it is not watched yet.
      opts.onWatchError(p, 'ENOENT');
    }

    // The parent sees a directory (or a path still missing) being renamed, removed or created.
    // A file needs nothing more: it is already watched through its directory.
    const parent = dirname(p);
    const name = basename(p);
    if (parent !== p && (!armed || watchingDir)) {
      try {
        const pw = watch(parent, { persistent: false }, (_event, entry) => {
          if (entry !== null && String(entry) !== name) return;
          if (current && !watchingDir) return; // now a file, watched (and reloaded) through this same directory
          void arm().then((ok) => {
            if (closed) return;
            if (ok) {
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
    closers.push(() => {
      generation++;
      closeCurrent();
    });
  }

  for (const p of opts.paths) await watchPath(p);

  const reloadNow = (reason: string) => queue.reloadNow(reason);
  return {
    reloadNow,
    trigger: reloadNow,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      own?.close();
      for (const c of closers) c();
    },
  };
}
