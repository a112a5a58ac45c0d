/**
 * Reading stdin for the command-line tools: whole (with a cap) and with read failures named the
 * way a file's are (`stdin: file_unreadable: cannot read stdin (EIO)`), never as an internal error.
 */
import { fstatSync } from 'node:fs';
import { Readable } from 'node:stream';
import { WardenError } from '../pipeline/errors.js';
import { MIB } from '../pipeline/sizes.js';

/** `64 MiB` for a whole number of MiB, else bytes: the cap as README states it. */
function sizeText(bytes: number): string {
  return bytes >= MIB && bytes % MIB === 0 ? `${bytes / MIB} MiB` : `${bytes} bytes`;
}

/**
 * All of `stream` as UTF-8 text, refused with `payload_too_large` (at `stdin`) as soon as it passes
 * `maxBytes`: what is read whole is held whole, so without a cap a large input grows until node
 * runs out of string length (and memory well before). `hint` is said after the size.
 */
export async function readAllCapped(stream: NodeJS.ReadableStream, maxBytes: number, hint = ''): Promise<string> {
  return (await readAllCappedBytes(stream, maxBytes, hint)).toString('utf8');
}

/** readAllCapped's bytes, undecoded: for a reader that refuses what is not UTF-8 (pipeline/text-file.ts). */
export async function readAllCappedBytes(stream: NodeJS.ReadableStream, maxBytes: number, hint = ''): Promise<Buffer> {
  const parts: Buffer[] = [];
  let held = 0;
  for await (const c of stream) {
    const chunk = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    held += chunk.length;
    if (held > maxBytes) {
      throw new WardenError('payload_too_large', `input is larger than ${sizeText(maxBytes)}${hint ? ` (${hint})` : ''}`, { location: { file: 'stdin' } });
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts, held);
}

/**
 * The errno code of a failed read of stdin (`EIO`), or undefined when `err` is no system error
 * (a bug, which stays an internal error).
 */
export function stdinReadFailure(err: unknown): string | undefined {
  const e = err as Partial<NodeJS.ErrnoException> | null;
  return e !== null && typeof e === 'object' && typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.syscall === 'string' ? e.code : undefined;
}

/** The one line for stdin that cannot be read, in the `file: code: message` form of every tool. */
export function stdinUnreadable(reason: string): string {
  return `stdin: file_unreadable: cannot read stdin (${reason})\n`;
}

/**
 * A directory redirected onto stdin (`warden redact < dir`). Node reads it as an empty stream, so a
 * mistaken redirect would pass for empty input with exit 0; `cat` says EISDIR, and so do we.
 */
export function stdinIsDirectory(fd = 0): boolean {
  try {
    return fstatSync(fd).isDirectory();
  } catch {
    return false; // no stdin at all (closed): reading it says what is wrong
  }
}

/**
 * What to read in place of a directory on stdin: a stream whose first read fails with EISDIR, as
 * read(2) on the directory would, so the tool reports it where it reports any read failure.
 */
export function directoryStdin(): NodeJS.ReadableStream {
  const err = Object.assign(new Error('EISDIR: illegal operation on a directory, read'), { code: 'EISDIR', syscall: 'read' });
  return new Readable({
    read() {
      this.destroy(err);
    },
  });
}

/**
 * The process's stdin as a command reads it: a directory redirected onto it fails when read
 * (directoryStdin), as `cat < dir` does. What CliIO.stdin stands for when it is unset.
 */
export function processStdin(): NodeJS.ReadableStream {
  return stdinIsDirectory() ? directoryStdin() : process.stdin;
}
