/**
 * `file:` secret provider: reads a file (e.g. a mounted Kubernetes Secret or a local dev secret).
 * The lease is short by default because mounted secrets rotate in place.
 */
import { readFile } from 'node:fs/promises';
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

export function createFileSecretProvider(opts: FileSecretProviderOptions = {}): SecretProvider {
  const ttlMs = opts.ttlMs ?? 30_000;
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  return {
    scheme: 'file',
    async fetch(ref: URL, signal?: AbortSignal) {
      const path = fileURLToPath(ref);
      let buf: Buffer;
      try {
        buf = await readFile(path, signal ? { signal } : {});
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'read error';
        // The error names the path and errno only: never file content.
        throw new SecretFetchError(`cannot read secret file (${code})`);
      }
      if (buf.length > maxBytes) throw new SecretFetchError(`secret file is larger than ${maxBytes} bytes`);
      return { value: trimOneTrailingNewline(buf.toString('utf8')), ttlMs };
    },
  };
}
