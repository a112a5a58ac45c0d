/**
 * Hot reload of templates and policies: a debounced `fs.watch` on their paths plus SIGHUP. A
 * reload builds a complete new set off to the side and swaps it in only when all of it loaded;
 * a bad change is logged with its file and line and the last good set keeps serving.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface ReloaderOptions {
  /** Files or directories to watch. */
  paths: readonly string[];
  debounceMs: number;
  /** Performs one reload; must never throw (it logs and counts its own failures). */
  reload: (trigger: string) => Promise<boolean>;
  /** Called when a path cannot be watched (reload via SIGHUP still works). */
  onWatchError: (path: string, code: string) => void;
}

export interface Reloader {
  /** Reloads now (coalesced with one already running). */
  trigger(reason: string): Promise<boolean>;
  close(): void;
}

export async function startReloader(opts: ReloaderOptions): Promise<Reloader> {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;
  let again = false;
  let closed = false;

  async function run(reason: string): Promise<boolean> {
    if (running) {
      // A change arrived during a reload: run once more after it, so the last change always wins.
      again = true;
      return running;
    }
    running = (async () => {
      let ok = await opts.reload(reason);
      while (again && !closed) {
        again = false;
        ok = await opts.reload(`${reason} (coalesced)`);
      }
      return ok;
    })();
    try {
      return await running;
    } finally {
      running = undefined;
    }
  }

  function schedule(reason: string): void {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void run(reason);
    }, opts.debounceMs);
    timer.unref();
  }

  for (const p of opts.paths) {
    let target = p;
    let isDir = false;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch {
      // A missing path may appear later; watch its parent directory.
      target = dirname(p);
      isDir = true;
    }
    try {
      // Watching a file directly loses it when editors replace the file; watch its directory.
      const dir = isDir ? target : dirname(target);
      const w = watch(dir, { recursive: true, persistent: false }, (_event, name) => {
        if (name && /(^|\/)(\.|#)|~$|\.swp$/.test(String(name))) return; // editor temp files
        schedule(`file change in ${dir}`);
      });
      w.on('error', (err: NodeJS.ErrnoException) => opts.onWatchError(dir, err.code ?? 'error'));
      watchers.push(w);
    } catch (err) {
      opts.onWatchError(target, (err as NodeJS.ErrnoException).code ?? 'error');
    }
  }

  return {
    trigger: (reason) => run(reason),
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
