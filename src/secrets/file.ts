/**
 * `file:` secret provider: reads a file (e.g. a mounted Kubernetes Secret or a local dev secret).
 * The lease is short by default because mounted secrets rotate in place.
 *
 * A secret is a small regular file. The file is opened without blocking (a FIFO would otherwise
 * hold the open, and a threadpool thread, until a writer shows up), checked with fstat (anything
 * but a regular file is refused: `/dev/zero`, a FIFO, a socket), and read through the handle up
 * to `maxBytes + 1` bytes at most, so a huge or endless file costs at most that much memory.
 */
import { constants } from 'node:fs';
import { open, readlink, realpath, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { SecretProvider } from '../pipeline/ports.js';
import { sameFile } from '../pipeline/regular-file.js';
import { isUnder, outsideRootsReason, realRoot, RESERVED_REF_REASON } from '../pipeline/secret-access.js';

export interface FileSecretProviderOptions {
  /** How long a read value may be cached (ms). Default 30 s. */
  ttlMs?: number;
  /** Refuse files larger than this many bytes (a secret is small; a huge file is a mistake). Default 64 KiB. */
  maxBytes?: number;
  /**
   * Where files may be read from (secrets.file_roots): a path must lie under one of `roots` once
   * its symlinks and `..` are resolved, checked before the open and again on the file opened.
   * Paths in `exempt` (the config's own refs, e.g. a provider's key) are read wherever they are.
   * Files in `reserved` (default: `exempt`; the config's credential files too, such as a
   * jwks_bearer_token_file) are never read through a ref held to the roots, whatever name leads
   * to them (compared by device and inode).
   * Unset: any path (a provider built without a config, as in tests and embedding).
   */
  access?: { roots: readonly string[]; exempt: ReadonlySet<string>; reserved?: ReadonlySet<string> };
}

export class SecretFetchError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'SecretFetchError';
  }
}

/** Drops exactly one trailing newline (`\n` or `\r\n`), as editors and `echo` add one. */
export function trimOneTrailingNewline(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

/** Default lease of a file secret: a rotated (mounted) secret is picked up within 30 s. */
export const FILE_SECRET_TTL_MS = 30_000;

// O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
// O_NOCTTY: a terminal device never becomes the controlling terminal. Both are no-ops for regular files.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);
// A path already resolved through its symlinks is opened with O_NOFOLLOW: a last component swapped
// for a symlink since is refused (ELOOP) rather than followed out of the roots.
const OPEN_RESOLVED_FLAGS = OPEN_FLAGS | (constants.O_NOFOLLOW ?? 0);

/** The roots, each with its symlinks resolved now; those that are not there are left out. */
async function realRoots(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) {
    const real = await realRoot(r);
    if (real !== undefined) out.push(real);
  }
  return out;
}

/**
 * Whether the opened file (`st`, its fstat) is one of `paths`' files (each followed through its
 * symlinks): the same device and inode, so a symlink or hard link to Warden's own key made in a
 * root after the load, or a key moved there, is recognised by the file itself, not its name.
 */
async function isOneOf(st: { dev: number; ino: number }, paths: ReadonlySet<string>): Promise<boolean> {
  for (const p of paths) {
    try {
      const other = await stat(p);
      if (sameFile(other, st)) return true;
    } catch {
      // a key file that is not there now
    }
  }
  return false;
}

/** Where an open descriptor's file is, from /proc (Linux); undefined where there is no /proc. */
async function openedPath(fd: number): Promise<string | undefined> {
  try {
    return await readlink(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

export function createFileSecretProvider(opts: FileSecretProviderOptions = {}): SecretProvider {
  const ttlMs = opts.ttlMs ?? FILE_SECRET_TTL_MS;
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  // fatal: bad bytes are refused, never replaced. ignoreBOM false (explicit): a leading byte order
  // mark, which Windows editors write, is dropped; it is no part of a key.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  const access = opts.access;
  const reserved = access?.reserved ?? access?.exempt ?? new Set<string>();
  return {
    scheme: 'file',
    async fetch(ref: URL, signal?: AbortSignal) {
      // Every message names the path's errno or a reason of ours only: never file content.
      const ioError = (err: unknown) => new SecretFetchError(`cannot read secret file (${(err as NodeJS.ErrnoException).code ?? 'read error'})`);
      let path: string;
      try {
        // Refs are checked at load (pipeline/secret-ref.ts), so this is a backstop for a URL built elsewhere.
        path = fileURLToPath(ref);
      } catch {
        throw new SecretFetchError('secret ref is not a local file path');
      }
      // The roots, resolved now, when this path is held to them (undefined: it is not).
      let roots: string[] | undefined;
      if (access !== undefined && !access.exempt.has(path)) {
        roots = await realRoots(access.roots);
        const lexical = roots.some((r) => isUnder(path, r)) || access.roots.some((r) => isUnder(path, r));
        if (!lexical) throw new SecretFetchError(outsideRootsReason(access.roots, 'path', false));
        try {
          path = await realpath(path);
        } catch (err) {
          throw ioError(err);
        }
        if (!roots.some((r) => isUnder(path, r))) throw new SecretFetchError(outsideRootsReason(access.roots, 'symlink', false));
      }
      let fh;
      try {
        fh = await open(path, roots === undefined ? OPEN_FLAGS : OPEN_RESOLVED_FLAGS);
      } catch (err) {
        throw ioError(err);
      }
      let buf: Buffer;
      let length = 0;
      try {
        if (roots !== undefined) {
          // A directory on the way swapped for a symlink between realpath and open: the file
          // opened is judged, not the name.
          const opened = await openedPath(fh.fd);
          if (opened !== undefined && !roots.some((r) => isUnder(opened, r))) throw new SecretFetchError(outsideRootsReason(access!.roots, 'symlink', false));
        }
        let st;
        try {
          st = await fh.stat();
        } catch (err) {
          throw ioError(err);
        }
        if (!st.isFile()) throw new SecretFetchError('secret path is not a regular file');
        // A template's ref (held to the roots) never reads what the config's own refs read, however
        // it came to lead there: the loader checks this at load, this checks the file opened now.
        if (roots !== undefined && reserved.size > 0 && (await isOneOf(st, reserved))) throw new SecretFetchError(RESERVED_REF_REASON);
        if (st.size > maxBytes) throw new SecretFetchError(`secret file is larger than ${maxBytes} bytes`);
        // One byte more than allowed: a file that grew since fstat is caught without reading it all.
        buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
        for (;;) {
          if (signal?.aborted) throw new SecretFetchError('read aborted');
          let n: number;
          try {
            ({ bytesRead: n } = await fh.read(buf, length, buf.length - length, null));
          } catch (err) {
            throw ioError(err);
          }
          if (n === 0) break;
          length += n;
          if (length === buf.length) {
            if (length > maxBytes) throw new SecretFetchError(`secret file is larger than ${maxBytes} bytes`);
            // The file grew since fstat but is still within the limit: make room and go on.
            const next = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
            buf.copy(next, 0, 0, length);
            buf = next;
          }
        }
      } finally {
        await fh.close().catch(() => undefined);
      }
      let text: string;
      try {
        text = utf8.decode(buf.subarray(0, length));
      } catch {
        // Silently replacing bad bytes with U+FFFD would hand upstream a different credential.
        throw new SecretFetchError('secret file is not valid UTF-8');
      }
      const value = trimOneTrailingNewline(text);
      // An empty key would go upstream as a bare "Bearer": refuse it, as env:// refuses an empty variable.
      if (value === '') throw new SecretFetchError('secret file is empty');
      return { value, ttlMs };
    },
  };
}
