/**
 * Where audit lines go. A sink receives whole lines in chain order; the log awaits each write so a
 * failing sink fails the request (`audit_unavailable`) instead of silently dropping its record.
 */
import { createWriteStream, fsync, writeSync, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';

const RESOLVED: Promise<void> = Promise.resolve();

export interface AuditSink {
  readonly name: string;
  /** Writes one line (no trailing newline; the sink adds it). Resolves once handed to the OS. */
  write(line: string): Promise<void>;
  /** Makes everything written so far durable (fsync for files). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** The last complete line already in the sink, for resuming the chain after a restart. */
  lastLine?(): Promise<string | undefined>;
}

/** Minimal writable the stream sink needs (process.stdout, a pino destination, a socket). */
export interface LineWritable {
  write(chunk: string, cb: (err?: Error | null) => void): boolean;
}

/** JSON lines to a writable stream (stdout by default in config). Writes keep call order. */
export function createStreamSink(out: LineWritable, name = 'stdout'): AuditSink {
  let last: Promise<void> = Promise.resolve();
  return {
    name,
    write(line: string) {
      last = new Promise<void>((resolve, reject) => {
        out.write(`${line}\n`, (err) => (err ? reject(err) : resolve()));
      });
      return last;
    },
    async flush() {
      await last.catch(() => undefined);
    },
    async close() {
      await last.catch(() => undefined);
    },
  };
}

/**
 * Appends JSON lines to a file (mode 0600). One WriteStream keeps writes in order without a
 * queue of our own; `flush` waits for them and fsyncs.
 */
export function createFileSink(path: string): AuditSink {
  let stream: WriteStream | undefined;
  let fd: number | undefined;
  let opened: Promise<void> | undefined;
  let failed: Error | undefined;

  function ensureOpen(): Promise<void> {
    if (!opened) {
      opened = new Promise<void>((resolve, reject) => {
        const s = createWriteStream(path, { flags: 'a', mode: 0o600 });
        s.once('open', (d) => {
          fd = d;
          resolve();
        });
        s.once('error', (err) => {
          failed = err;
          reject(err);
        });
        s.on('error', (err) => (failed = err));
        stream = s;
      });
    }
    return opened;
  }

  /**
   * A synchronous append of one short line to the page cache costs microseconds; going through
   * the stream's thread-pool round trip cost about a millisecond per request under load, and the
   * request waits for it (fail closed). Order is the call order either way.
   */
  function append(line: string): Promise<void> {
    if (failed) return Promise.reject(failed);
    try {
      writeSync(fd!, `${line}\n`);
    } catch (err) {
      failed = err as Error;
      return Promise.reject(err);
    }
    return RESOLVED;
  }

  return {
    name: `file:${path}`,
    write(line: string) {
      // Once open (every request but the first), write at once: no async function, no await.
      if (fd !== undefined) return append(line);
      return ensureOpen().then(() => append(line));
    },
    async flush() {
      if (!opened) return;
      // Writes are synchronous once open, so everything written is already with the OS.
      await opened;
      await new Promise<void>((resolve, reject) => fsync(fd!, (err) => (err ? reject(err) : resolve())));
    },
    async close() {
      if (!opened) return;
      await opened.catch(() => undefined);
      await new Promise<void>((resolve) => (stream ? stream.end(() => resolve()) : resolve()));
    },
    async lastLine() {
      return readLastLine(path);
    },
  };
}

/** Reads the last non-empty line of a file from its end, in chunks (audit files grow large). */
export async function readLastLine(path: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    let end = size;
    let tail = Buffer.alloc(0);
    const CHUNK = 64 * 1024;
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const buf = Buffer.alloc(end - start);
      await fh.read(buf, 0, buf.length, start);
      tail = Buffer.concat([buf, tail]);
      end = start;
      const text = tail.toString('utf8').replace(/\n+$/, '');
      const nl = text.lastIndexOf('\n');
      if (nl >= 0) return text.slice(nl + 1);
      if (end === 0) return text === '' ? undefined : text;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}
