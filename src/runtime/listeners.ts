/**
 * Binding the listeners: TCP `host:port` (port 0 = any free port, read back after listen) and the
 * optional Unix domain sockets for the app listeners.
 */
import { lstat, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/listen.js';

export function listenTcp(server: Server, addr: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
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
 * Makes `path` ready for a Unix socket listener (`key` names its config key in errors): refuses a
 * path too long to bind as written, and removes a stale socket left by a previous process —
 * only a socket: a regular file or a directory there is an error, not something to delete.
 */
export async function prepareSocketPath(path: string, key: string): Promise<void> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`${key}: ${path} is ${Buffer.byteLength(path)} bytes long; a Unix socket path can have at most ${MAX_SOCKET_PATH_BYTES}`);
  }
  let st;
  try {
    st = await lstat(path);
  } catch {
    return; // Absent: nothing to remove.
  }
  if (!st.isSocket()) {
    throw new Error(`${key}: ${path} exists and is not a socket but ${st.isDirectory() ? 'a directory' : 'a file'}; remove it or choose another path`);
  }
  await unlink(path);
}

export async function listenUnix(server: Server, path: string, key: string): Promise<string> {
  await prepareSocketPath(path, key);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve();
    });
  });
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
