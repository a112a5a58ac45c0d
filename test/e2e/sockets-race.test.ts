/**
 * Two Wardens started at the same moment on one stale Unix socket path: exactly one may take it.
 * Both used to find the socket stale, both remove it and both bind: the later one took the path
 * from the earlier, which went on serving a socket no client could reach. The check and the bind
 * now run under a per-path lock (an abstract Unix socket, released by the kernel when its holder
 * dies), so the second one finds the first one's live socket and stops.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, linkSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketLockName } from '../../src/runtime/listeners.js';
import { healthClient } from './helpers/grpc.js';
import { DOWN_URL, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

const RACER = join(import.meta.dirname, 'helpers', 'socket-racer.ts');
const DEV = '[dev]\n  dev: { principal: { namespace: support, service_account: ticket-bot } }';

interface Racer {
  child: ChildProcess;
  next(): Promise<Record<string, unknown>>;
}

/** Forks a racer and waits until it has loaded. */
async function racer(): Promise<Racer> {
  const child = fork(RACER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const queue: Array<Record<string, unknown>> = [];
  const waiting: Array<(m: Record<string, unknown>) => void> = [];
  child.on('message', (m: Record<string, unknown>) => {
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const next = () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise<Record<string, unknown>>((resolve) => waiting.push(resolve)));
  expect(await next()).toEqual({ ready: true });
  return { child, next };
}

/**
 * Leaves a stale socket at `path`: a socket file no process listens on, as after a `kill -9`.
 * The listener is bound under another name, linked to `path`, and closed (which removes only the
 * name it was bound under).
 */
async function staleSocket(path: string): Promise<void> {
  const bound = `${path}.bind`;
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(bound, resolve));
  linkSync(bound, path);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  expect(lstatSync(path).isSocket()).toBe(true);
  expect(existsSync(bound)).toBe(false);
}

function getModels(socketPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path: '/v1/models', method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function grpcServing(socketPath: string): Promise<string> {
  const client = healthClient(`unix:${socketPath}`);
  try {
    return await new Promise<string>((resolve, reject) =>
      client.Check({ service: '' }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))),
    );
  } finally {
    client.close();
  }
}

const ROUNDS = 20;
const dirs: PreparedDir[] = [];
let racers: Racer[] = [];

beforeAll(async () => {
  racers = await Promise.all([racer(), racer()]);
});

afterAll(async () => {
  for (const r of racers) r.child.kill('SIGKILL');
  for (const d of dirs) rmSync(d.dir, { recursive: true, force: true });
});

/** Races the two racers on `config` for ROUNDS rounds, each on a fresh stale socket at `path`. */
async function race(config: string, path: string, serving: (path: string) => Promise<unknown>, expected: unknown, key: string): Promise<void> {
  const [a, b] = racers as [Racer, Racer];
  for (let round = 0; round < ROUNDS; round++) {
    await staleSocket(path);
    a.child.send({ start: config });
    b.child.send({ start: config });
    const results = await Promise.all([a.next(), b.next()]);
    const winners = results.filter((r) => r.started === true);
    // Exactly one takes the path; the other finds it live and stops, saying so.
    expect(winners.length, `round ${round}: ${JSON.stringify(results)}`).toBe(1);
    const loser = results.find((r) => r.started !== true)!;
    expect(loser.error).toBe(`${key}: cannot listen on ${path}: another process is listening on it; stop that process or choose another path`);
    // The winner's socket is the one at the path: it answers.
    expect(await serving(path)).toEqual(expected);
    const winner = results[0]!.started === true ? a : b;
    winner.child.send('stop');
    expect(await winner.next()).toEqual({ stopped: true });
    // The winner removed its socket at shutdown; neither left anything else in the directory.
    expect(existsSync(path)).toBe(false);
  }
}

describe('two Wardens started at once on one stale socket path', () => {
  let httpDir: PreparedDir;
  let grpcDir: PreparedDir;
  beforeAll(async () => {
    httpDir = await prepareWardenDir({ upstreamUrl: DOWN_URL, methods: DEV, listen: 'listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http_socket: run/h.sock }', files: { 'run/.keep': '' } });
    grpcDir = await prepareWardenDir({ upstreamUrl: DOWN_URL, methods: DEV, listen: 'listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, grpc_socket: run/g.sock }', files: { 'run/.keep': '' } });
    dirs.push(httpDir, grpcDir);
  });

  it('HTTP socket: in every round exactly one starts, and its socket answers', async () => {
    const path = join(httpDir.dir, 'run', 'h.sock');
    await race(httpDir.configFile, path, getModels, 200, 'listen.http_socket');
    expect(readdirSync(join(httpDir.dir, 'run'))).toEqual(['.keep']);
  }, 120_000); // 20 rounds of two real starts and a stop each, on 2 shared cores

  it('gRPC socket: in every round exactly one starts, and its socket answers', async () => {
    const path = join(grpcDir.dir, 'run', 'g.sock');
    await race(grpcDir.configFile, path, grpcServing, 'SERVING', 'listen.grpc_socket');
    expect(readdirSync(join(grpcDir.dir, 'run'))).toEqual(['.keep']);
  }, 120_000);
});

/** A process holding the start-up lock named `name` (an abstract socket: the leading NUL is added in the child). */
async function lockHolder(name: string, then: 'hold' | 'die'): Promise<ChildProcess> {
  const script = `const s = require('node:net').createServer(); s.listen('\\0' + process.argv[1], () => { process.stdout.write('held\\n'); if (process.argv[2] === 'die') process.kill(process.pid, 'SIGKILL'); });`;
  const child = spawn(process.execPath, ['-e', script, name.slice(1), then], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  expect(chunk.toString()).toBe('held\n');
  return child;
}

describe('the start-up lock', () => {
  let dir: PreparedDir;
  let starter: Racer;
  let path: string;
  beforeAll(async () => {
    dir = await prepareWardenDir({ upstreamUrl: DOWN_URL, methods: DEV, listen: 'listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http_socket: run/h.sock }', files: { 'run/.keep': '' } });
    dirs.push(dir);
    starter = racers[0]!;
    path = join(dir.dir, 'run', 'h.sock');
  });

  it('is named after the socket directory and file, whatever the spelling of the path', async () => {
    const name = await socketLockName(path);
    expect(name).toMatch(/^\0warden-socket-lock-[0-9a-f]{64}$/);
    expect(await socketLockName(join(dir.dir, 'run', '..', 'run', 'h.sock'))).toBe(name);
    expect(await socketLockName(join(dir.dir, 'run', 'g.sock'))).not.toBe(name);
    expect(await socketLockName(join(dir.dir, 'missing', 'h.sock'))).toBeNull();
  });

  it('a lock whose holder was killed is no obstacle: the kernel freed it', async () => {
    const holder = await lockHolder((await socketLockName(path))!, 'die');
    await once(holder, 'exit');
    await staleSocket(path);
    starter.child.send({ start: dir.configFile });
    expect(await starter.next()).toEqual({ started: true });
    expect(await getModels(path)).toBe(200);
    starter.child.send('stop');
    expect(await starter.next()).toEqual({ stopped: true });
    expect(readdirSync(join(dir.dir, 'run'))).toEqual(['.keep']);
  });

  it('a start waits while another process holds the lock, and goes on once that one is gone (killed mid-start)', async () => {
    const holder = await lockHolder((await socketLockName(path))!, 'hold');
    await staleSocket(path);
    let answered = false;
    starter.child.send({ start: dir.configFile });
    const result = starter.next().then((m) => ((answered = true), m));
    // Held: the start has not touched the stale socket (nor answered) a moment later.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    await expect(getModels(path)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    holder.kill('SIGKILL');
    expect(await result).toEqual({ started: true });
    expect(await getModels(path)).toBe(200);
    starter.child.send('stop');
    expect(await starter.next()).toEqual({ stopped: true });
  });

  it('a lock held past the wait (a holder stuck mid-start) stops the start with an error, not a hang, and leaves the path alone', async () => {
    const holder = await lockHolder((await socketLockName(path))!, 'hold');
    try {
      await staleSocket(path);
      starter.child.send({ start: dir.configFile });
      expect(await starter.next()).toEqual({
        started: false,
        error: `listen.http_socket: cannot listen on ${path}: another process has been starting on it for 10 s; stop that process or choose another path`,
      });
      // The stale socket is still there: only a start holding the lock may remove it.
      expect(lstatSync(path).isSocket()).toBe(true);
    } finally {
      holder.kill('SIGKILL');
      rmSync(path, { force: true });
    }
  }, 60_000);
});
