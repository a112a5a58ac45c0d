/**
 * Binding the listeners: TCP `host:port` (port 0 = any free port, read back after listen) and the
 * optional Unix domain sockets for the app listeners.
 */
import { createHash } from 'node:crypto';
import { lstat, stat, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Server } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { formatListen, type ListenAddress } from '../config/listen.js';

/** Why a bind failed, in words, from its errno code (kept in the text: it is what to search for). */
function bindReason(code: string | undefined): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'the address is already in use (EADDRINUSE)';
    case 'EACCES':
      return 'permission denied (EACCES)';
    case 'EADDRNOTAVAIL':
      return 'the address is not one of this host\'s (EADDRNOTAVAIL)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host name does not resolve (${code})`;
    default:
      return code ? `the bind failed (${code})` : 'the bind failed';
  }
}

/**
 * The start-up error for a listener that could not bind: its config key, the address and the
 * reason (Node's own `listen EADDRINUSE: address already in use …` names neither the key nor,
 * for three listeners on one host, which one it was). grpc-js gives no code, only its text.
 */
export function listenFailure(key: string, where: string, err: unknown): Error {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : /\b(E[A-Z_]{3,})\b/.exec(String(e.message ?? ''))?.[1];
  return new Error(`${key}: cannot listen on ${where}: ${bindReason(code)}`, { cause: err });
}

/** Binds `server` to `addr`; `key` names the listener's config key in errors. */
export function listenTcp(server: Server, addr: ListenAddress, key: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(listenFailure(key, formatListen(addr), err));
    server.once('error', onError);
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * The longest Unix socket path, in bytes: `sun_path` is 108 bytes on Linux, NUL included. A
 * longer path is silently cut by the kernel, so the socket would appear under another name.
 */
export const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Runs `bind` (which binds a Unix socket listener at `path`; `key` names its config key in errors)
 * once the path is ready for it: refuses a path too long to bind as written, and removes a stale
 * socket left by a previous process — only a socket no process listens on: a live socket, a
 * regular file or a directory there is an error, not something to delete.
 *
 * The check and the bind run under the path's start-up lock (see lockSocketPath): without it two
 * processes started at the same moment could both find the socket stale, both remove it and both
 * bind, the later one taking the path from the earlier one (which would go on serving a socket no
 * client can reach). Under the lock the second one finds the first one's socket live, and stops.
 */
export async function bindSocketPath<T>(path: string, key: string, bind: () => Promise<T>): Promise<T> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`${key}: ${path} is ${Buffer.byteLength(path)} bytes long; a Unix socket path can have at most ${MAX_SOCKET_PATH_BYTES}`);
  }
  const release = await lockSocketPath(path, key);
  try {
    await prepareSocketPath(path, key);
    return await bind();
  } finally {
    await release();
  }
}

async function prepareSocketPath(path: string, key: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    // Absent: nothing to remove. The kernel would refuse a bind in a missing directory with an
    // errno that reads like a permission problem, so that case is named here.
    await requireDirectory(dirname(path), path, key);
    return;
  }
  if (!st.isSocket()) {
    // A symbolic link is not followed (lstat): one to a live socket is not this listener's to take.
    const kind = st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : 'a file';
    throw new Error(`${key}: ${path} exists and is not a socket but ${kind}; remove it or choose another path`);
  }
  // Only a socket no process listens on is stale. Removing a live one (a second Warden started on
  // the same path) would take it from the running process without a word: that one goes on
  // serving a socket no client can reach any more, and loses it for good when this one stops.
  const holder = await socketHolder(path);
  if (holder === 'listening') {
    throw new Error(`${key}: cannot listen on ${path}: another process is listening on it; stop that process or choose another path`);
  }
  if (holder !== 'stale') {
    throw new Error(`${key}: cannot listen on ${path}: cannot tell whether another process listens on it (${holder}); remove the socket if it is left over, or choose another path`);
  }
  await unlink(path).catch((err: unknown) => {
    if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
  });
}

/**
 * The name of the start-up lock for a socket at `path`: an abstract Unix socket (Linux: a name
 * outside the file system, `@warden-socket-lock-…` in `/proc/net/unix`), derived from the device
 * and inode of the socket's directory and the socket's file name, so that every spelling of one
 * path (relative, through a symbolic link or a bind mount) has one lock. Null when the directory
 * cannot be read (the check under the lock says why).
 */
export async function socketLockName(path: string): Promise<string | null> {
  const dir = await stat(dirname(path), { bigint: true }).catch(() => null);
  if (!dir?.isDirectory()) return null;
  const id = createHash('sha256').update(`${dir.dev}:${dir.ino}:${basename(path)}`).digest('hex');
  return `\0warden-socket-lock-${id}`;
}

/** How long a start waits for another process's start-up lock on the same path. */
const SOCKET_LOCK_WAIT_MS = 10_000;
const SOCKET_LOCK_RETRY_MS = 20;

/**
 * Takes the start-up lock of the socket at `path` (see socketLockName); resolves to its release.
 *
 * The lock is a listener bound to an abstract socket name: binding it is atomic (EADDRINUSE while
 * another process holds it), it creates no file (a read-only root file system is no obstacle, and
 * nothing is left behind), and the kernel frees the name when its holder closes it or dies in any
 * way, `kill -9` included: there is no stale lock to recover and no process id to trust (a pid
 * from another container's pid namespace, or a restarted container's pid 1 that is the same number,
 * says nothing). A lock file created with O_EXCL would need exactly that recovery, and removing a
 * lock file judged stale is the same check-then-remove race one level up. Linking a socket bound
 * under a temporary name to the path (EEXIST when taken) makes the claim atomic but not the
 * removal of a stale socket before it, which still races.
 *
 * Abstract names are scoped to the network namespace: two processes in different network
 * namespaces sharing the directory (two pods on one hostPath) do not see each other's lock. On a
 * system without abstract sockets (not Linux) there is no lock (README: listen).
 */
async function lockSocketPath(path: string, key: string): Promise<() => Promise<void>> {
  if (process.platform !== 'linux') return async () => {};
  const name = await socketLockName(path);
  // No readable directory: the check under the lock refuses the path, naming why.
  if (name === null) return async () => {};
  const deadline = Date.now() + SOCKET_LOCK_WAIT_MS;
  for (;;) {
    const lock = createServer((conn) => conn.destroy());
    const code = await new Promise<string | null>((resolve) => {
      lock.once('error', (err: Error & { code?: string }) => resolve(err.code ?? 'the bind failed'));
      lock.listen(name, () => resolve(null));
    });
    if (code === null) {
      lock.unref();
      return () => new Promise<void>((resolve) => lock.close(() => resolve()));
    }
    if (code !== 'EADDRINUSE') {
      throw new Error(`${key}: cannot listen on ${path}: cannot take its start-up lock (${code})`);
    }
    // Another process is between its check and its bind on this path: once it has bound (or
    // failed), the check here sees its socket live (or still stale).
    if (Date.now() >= deadline) {
      throw new Error(`${key}: cannot listen on ${path}: another process has been starting on it for ${SOCKET_LOCK_WAIT_MS / 1000} s; stop that process or choose another path`);
    }
    await new Promise((resolve) => setTimeout(resolve, SOCKET_LOCK_RETRY_MS));
  }
}

/** How long a connect to an existing socket may take before it counts as held (a full backlog). */
const SOCKET_PROBE_MS = 1000;

/**
 * Whether a process listens on the socket at `path`: `stale` when the connect is refused (no one
 * accepts on it: the process that bound it is gone) or the file went away meanwhile, `listening`
 * when it connects or stays pending (a listener whose backlog is full), else the errno code
 * (EACCES: a socket this user may not connect to, whoever holds it).
 */
function socketHolder(path: string): Promise<'stale' | 'listening' | string> {
  return new Promise((resolve) => {
    const probe = connect(path);
    const done = (answer: string) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done('listening'), SOCKET_PROBE_MS);
    probe.once('connect', () => done('listening'));
    probe.once('error', (err: Error & { code?: string }) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') done('stale');
      else if (err.code === 'EAGAIN') done('listening');
      else done(err.code ?? 'the connect failed');
    });
  });
}

async function requireDirectory(dir: string, path: string, key: string): Promise<void> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new Error(`${key}: cannot listen on ${path}: the directory ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`${key}: cannot listen on ${path}: ${dir} is not a directory`);
}

export async function listenUnix(server: Server, path: string, key: string): Promise<string> {
  await bindSocketPath(path, key, () =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(listenFailure(key, path, err));
      server.once('error', onError);
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    }),
  );
  return path;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

/** `host:port` for a bound TCP address (IPv6 bracketed). */
export function formatAddress(info: AddressInfo): string {
  return info.family === 'IPv6' || info.address.includes(':') ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}
