/**
 * The test's side of holding a `warden serve` child's libuv thread pool (helpers/pool-staller.ts
 * is the child's side): FIFOs with no writer, a child started with the staller preloaded and a
 * small pool, and the writer ends that release it. Used by the tests of waits that must end in a
 * refusal when the pool does not move (a jwks_file look, a signature check, a key-set fetch).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './cli.js';

/** The child's pool size: two FIFO opens hold all of it. */
export const STALL_POOL = 2;

/** STALL_POOL FIFOs in `dir`, one per pool thread to hold (send `{ stall: fifos }` to the child). */
export function stallFifos(dir: string): string[] {
  const fifos = Array.from({ length: STALL_POOL }, (_, i) => join(dir, `held-${i}.fifo`));
  for (const f of fifos) execFileSync('mkfifo', [f]);
  return fifos;
}

/** `warden serve --config configFile` from the sources, with the staller preloaded and an IPC channel. */
export function spawnStallableWarden(configFile: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--import', join(REPO, 'test', 'e2e', 'helpers', 'pool-staller.ts'), join(REPO, 'src', 'main.ts'), 'serve', '--config', configFile], {
    cwd: REPO,
    env: { ...process.env, UV_THREADPOOL_SIZE: String(STALL_POOL) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
}

/** Opens the writer end of each FIFO: the child's held opens return. Close the descriptors after. */
export function releaseFifos(fifos: readonly string[]): number[] {
  return fifos.map((f) => openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
}
