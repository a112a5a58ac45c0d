/**
 * The test's side of holding a `warden serve` child's libuv thread pool (helpers/pool-staller.ts
 * is the child's side): FIFOs with no writer, a child started with the staller preloaded and a
 * small pool, and the writer ends that release it. Used by the tests of waits that must end in a
 * refusal when the pool does not move (a jwks_file look, a signature check, a key-set fetch).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { REPO, watchServe } from './cli.js';
import { postChat } from './http.js';
import { eventually } from './warden.js';

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

/** What a chat call got back: status, and the error's code and message (undefined on success). */
export interface CallOutcome {
  status: number;
  code: string | undefined;
  message: string | undefined;
}

export const SERVED: CallOutcome = { status: 200, code: undefined, message: undefined };

/** A stallable `warden serve` child, listening, with its log lines and the staller's messages. */
export interface StallableWarden {
  lines: string[];
  /** `{ stalled: n }` / `{ released: n }` from the staller, in order; may be cleared between episodes. */
  messages: Array<Record<string, number>>;
  /** POST /v1/chat/completions with `token` and a one-line raw prompt. */
  call(token: string): Promise<CallOutcome>;
  /** Holds the child's whole pool and waits until the staller says so. */
  stall(): Promise<void>;
  /** Opens the FIFOs' writer ends, waits until the held opens returned, then closes them (so the FIFOs hold the next opens again). */
  release(): Promise<void>;
  /** Kills the child (if it still runs) and closes any writer end left open. */
  stop(): Promise<void>;
}

/** Starts `warden serve --config configFile` with a pool the test can hold by FIFOs made in `dir`. */
export async function startStallableWarden(dir: string, configFile: string): Promise<StallableWarden> {
  const fifos = stallFifos(dir);
  const writers: number[] = [];
  const child = spawnStallableWarden(configFile);
  const stop = async () => {
    for (const fd of writers.splice(0)) closeSync(fd);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  };
  const messages: Array<Record<string, number>> = [];
  child.on('message', (m: Record<string, number>) => messages.push(m));
  const { lines, listening } = watchServe(child);
  let http: string;
  try {
    http = (await listening).http;
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    lines,
    messages,
    async call(token) {
      const res = await postChat(http, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      const json = (await res.json()) as { error?: { code?: string; message?: string } };
      return { status: res.status, code: json.error?.code, message: json.error?.message };
    },
    async stall() {
      messages.length = 0;
      child.send({ stall: fifos });
      await eventually(() => messages.some((m) => m.stalled === STALL_POOL));
    },
    async release() {
      writers.push(...releaseFifos(fifos));
      await eventually(() => messages.some((m) => m.released === STALL_POOL));
      for (const fd of writers.splice(0)) closeSync(fd);
    },
    stop,
  };
}

/**
 * Serves `jwks` from a loopback URL and points the config's kubernetes method at it instead of its
 * `jwks_file: jwks.json` (with `extra` keys appended, e.g. a `jwks_bearer_token_file`). The set is
 * fetched once and kept in memory, so no look at a key file is involved.
 */
export async function serveKeySetFor(configFile: string, jwks: unknown, extra = ''): Promise<{ url: string; close: () => void }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  writeFileSync(configFile, readFileSync(configFile, 'utf8').replace('jwks_file: jwks.json', `jwks_url: "${url}"${extra}`));
  return { url, close: () => server.close() };
}
