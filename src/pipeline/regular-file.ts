/**
 * Opening a file the tools and loaders read whole (a config, an input document, an audit file):
 * only a regular file is accepted. Opening a FIFO for reading waits for a writer, possibly for
 * good, and a device (`/dev/zero`) never ends; so the file is opened without blocking and
 * refused after fstat when it is anything else. O_NONBLOCK and O_NOCTTY are no-ops for regular
 * files.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { decodeText, TextDecodeError } from './text-file.js';

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/** Raised for a path that exists but is not a regular file; `reason` says what it is. */
export class NotRegularFileError extends Error {
  readonly code = 'ENOTREG';
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'NotRegularFileError';
  }
}

/** Raised for a regular file larger than its reader accepts (read whole, it would fill memory). */
export class FileTooLargeError extends Error {
  readonly code = 'EFBIG';
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`the file is ${size} bytes, more than the ${limit} a file of this kind may have`);
    this.name = 'FileTooLargeError';
  }
}

/** What a path that is not a regular file is, for a message (`a FIFO`, `a device`, ...). */
export function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isDirectory()) return 'a directory';
  return 'not a file';
}

/**
 * Whether two stats are of the same file: the same device and the same inode (an inode number is
 * unique only within its device). Not their paths: one file can have many names (a hard link, a
 * symlink to it, a move since it was named) and one name can come to name another file, so a
 * comparison of paths misses the first and is fooled by the second. The device and the inode are
 * the file itself, whatever name reached it.
 */
export function sameFile(a: { dev: number; ino: number }, b: { dev: number; ino: number }): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

export function notRegular(st: Stats): NotRegularFileError {
  return new NotRegularFileError(`not a regular file: ${kindOf(st)}`);
}

/**
 * Why a file could not be read, for a message: the errno code (`ENOENT`) or what the path is
 * instead of a regular file (`not a regular file: a FIFO`). Never the file's content.
 */
export function readFailure(err: unknown): string {
  if (err instanceof NotRegularFileError) return err.reason;
  if (err instanceof TextDecodeError) return err.message;
  return (err as NodeJS.ErrnoException).code ?? 'read error';
}

/** Opens a regular file for reading; the caller closes the handle. */
export async function openRegularFile(file: string): Promise<FileHandle> {
  const fh = await open(file, OPEN_FLAGS);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(st);
    return fh;
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * A regular file's text; TextDecodeError when it is not UTF-8 text (see pipeline/text-file.ts).
 * A file larger than `maxBytes` is refused by its size before it is read (FileTooLargeError; one
 * that grew past it meanwhile, once `maxBytes` + 1 bytes of it were read: see readAtMost).
 */
export async function readRegularFile(file: string, maxBytes = Infinity): Promise<string> {
  const fh = await openRegularFile(file);
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) throw new FileTooLargeError(size, maxBytes);
    return decodeText(await readAtMost(fh, maxBytes, size));
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * A file's bytes, read from the handle's start to its end but never more than `maxBytes` + 1 of
 * them: a file that grew past its cap after its size was checked (or one that reports no size,
 * as procfs files do) is refused with FileTooLargeError (at its size then, or at least what was
 * read) instead of read whole (`FileHandle.readFile` reads whatever size it finds, and to the
 * end when it finds none). `sizeHint`: the size checked before, the first buffer's size.
 */
export async function readAtMost(fh: FileHandle, maxBytes: number, sizeHint = 0): Promise<Uint8Array> {
  if (maxBytes === Infinity) return fh.readFile();
  let buf = Buffer.allocUnsafe(Math.min(Math.max(sizeHint, 0), maxBytes) + 1);
  let length = 0;
  for (;;) {
    if (length === buf.length) {
      if (length > maxBytes) break;
      const larger = Buffer.allocUnsafe(Math.min(buf.length * 2, maxBytes + 1));
      buf.copy(larger, 0, 0, length);
      buf = larger;
    }
    const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
    if (bytesRead === 0) return buf.subarray(0, length);
    length += bytesRead;
  }
  const { size } = await fh.stat();
  throw new FileTooLargeError(Math.max(size, length), maxBytes);
}

/**
 * The synchronous form, for loaders that are synchronous (the config file). A file whose size is
 * more than `maxBytes` is refused before it is read (FileTooLargeError). One that grows past it
 * after the size was read, or that reports no size (procfs), is read whole and then refused: the
 * cap bounds what is parsed, not (in that case) what is read.
 */
export function readRegularFileSync(file: string, maxBytes = Infinity): string {
  const fd = openSync(file, OPEN_FLAGS);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(st);
    if (st.size > maxBytes) throw new FileTooLargeError(st.size, maxBytes);
    const bytes = readFileSync(fd);
    if (bytes.length > maxBytes) throw new FileTooLargeError(bytes.length, maxBytes);
    return decodeText(bytes);
  } finally {
    closeSync(fd);
  }
}
