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
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { SecretProvider } from '../pipeline/ports.js';

export interface FileSecretProviderOptions {
  /** How long a read value may be cached (ms). Default 30 s. */
  ttlMs?: number;
  /** Refuse files larger than this many bytes (a secret is small; a huge file is a mistake). Default 64 KiB. */
  maxBytes?: number;
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

export function createFileSecretProvider(opts: FileSecretProviderOptions = {}): SecretProvider {
  const ttlMs = opts.ttlMs ?? FILE_SECRET_TTL_MS;
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  // fatal: bad bytes are refused, never replaced. ignoreBOM false (explicit): a leading byte order
  // mark, which Windows editors write, is dropped; it is no part of a key.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  return {
    scheme: 'file',
    async fetch(ref: URL, signal?: AbortSignal) {
      // Every message names the path's errno or a reason of ours only: never file content.
      const ioError = (err: unknown) => new SecretFetchError(`cannot read secret file (${(err as NodeJS.ErrnoException).code ?? 'read error'})`);
      let path: string;
      try {
        // Refs are checked at load (ref.ts), so this is a backstop for a URL built elsewhere.
        path = fileURLToPath(ref);
      } catch {
        throw new SecretFetchError('secret ref is not a local file path');
      }
      let fh;
      try {
        fh = await open(path, OPEN_FLAGS);
      } catch (err) {
        throw ioError(err);
      }
      let buf: Buffer;
      let length = 0;
      try {
        let st;
        try {
          st = await fh.stat();
        } catch (err) {
          throw ioError(err);
        }
        if (!st.isFile()) throw new SecretFetchError('secret path is not a regular file');
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
