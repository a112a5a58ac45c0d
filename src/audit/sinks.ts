/**
 * Where audit lines go. A sink receives whole lines in chain order; the log awaits each write so a
 * failing sink fails the request (`audit_unavailable`) instead of silently dropping its record.
 *
 * A sink that failed says so (`failure`): the log then links no new record and the runtime refuses
 * requests before anything goes upstream, until the sink recovers. A file sink recovers by itself
 * (it retries in the background) and on `reopen()`; a stream sink (stdout) whose reader is gone
 * does not.
 */
import { closeSync, constants, fstat, fstatSync, fsync, fsyncSync, ftruncateSync, openSync, statSync, writeSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { NotRegularFileError, notRegular, readFailure, sameFile } from '../pipeline/regular-file.js';
import { MIB } from '../pipeline/sizes.js';

export interface AuditSink {
  readonly name: string;
  /** Writes one line (no trailing newline; the sink adds it). Resolves once handed to the OS. */
  write(line: string): Promise<void>;
  /** Makes everything written so far durable (fsync for files). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** The last complete line already in the sink, for resuming the chain after a restart. */
  lastLine?(): Promise<string | undefined>;
  /** Opens the sink for writing now (at start), so a sink that cannot be written stops the start. Throws. */
  open?(): void;
  /**
   * Closes the file and opens its path again (after a rotation; the runtime calls it on SIGHUP).
   * Throws when the path cannot be opened; the sink is then failed until it can be.
   */
  reopen?(): void;
  /** Undefined while the sink works; the error that broke it while it does not (writes are refused). */
  readonly failure?: Error | undefined;
  /**
   * Calls `listener` each time `failure` is set or cleared (the sink broke or recovered), so that
   * what reports readiness by push (gRPC health `Watch`) hears of it without polling. Absent: the
   * sink cannot fail.
   */
  onFailureChange?(listener: () => void): void;
  /**
   * While failed: whether a line of `bytes` more can still be kept, to be written first when the
   * sink recovers (the record of a request that went upstream before the sink broke must not be
   * lost). Absent: the sink keeps nothing.
   */
  canKeep?(bytes: number): boolean;
  /**
   * How many records the sink took but has not written yet (a stream whose reader is not reading,
   * a failed file's kept lines): they are lost if the process exits now. Absent: none.
   */
  unwritten?(): number;
  /** The file underneath (`dev:ino`), once open: two sinks on one file would write every record twice. */
  identity?(): string | undefined;
}

/** Where a sink reports what happened to it (pino's Logger satisfies it). */
export interface SinkLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

/** Minimal writable the stream sink needs (process.stdout, a pino destination, a socket). */
export interface LineWritable {
  write(chunk: string, cb: (err?: Error | null) => void): boolean;
  /** When present, the sink listens for 'error' (an EPIPE on stdout must not crash the process). */
  on?(event: 'error', listener: (err: Error) => void): unknown;
  off?(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * The writable a stream sink on a process stream (`stdout`, or `stderr` for a dry run) writes to.
 * A pipe or a terminal is the stream itself. A file (or a character device that is not a
 * terminal) is written by Node synchronously through a stream that ignores a short write: a full
 * disk or a file size limit cuts the line and reports it written, so a record cut in half would be
 * answered as audited. There each line is written with `writeSync` until every byte is in, and a
 * write that cannot finish (ENOSPC, EFBIG) is that line's error, which fails the sink. The bytes
 * written before it stay: the stream may be shared (the log lines, another process), so nothing is
 * cut from it. Errors the stream itself raises are still heard through its 'error' event.
 */
export function processStreamWritable(stream: Writable): LineWritable {
  const fd = (stream as { fd?: unknown }).fd;
  if (stream instanceof Socket || typeof fd !== 'number') return stream;
  return {
    write(chunk, cb) {
      try {
        writeFully(fd, chunk);
      } catch (err) {
        cb(err as Error);
        return true;
      }
      cb();
      return true;
    },
    on: (event, listener) => stream.on(event, listener),
    off: (event, listener) => stream.off(event, listener),
  };
}

/** Writes all of `text` to `fd`, finishing a short write; throws when a write makes no progress. */
function writeFully(fd: number, text: string): void {
  let written = writeSync(fd, text);
  const size = Buffer.byteLength(text);
  if (written === size) return;
  const rest = Buffer.from(text);
  while (written < size) {
    const n = writeSync(fd, rest, written, size - written);
    if (n === 0) throw Object.assign(new Error('no space left to write the audit record'), { code: 'ENOSPC' });
    written += n;
  }
}

/**
 * Most text a failed file sink keeps for its recovery: records of requests already in flight when
 * it broke (new requests are refused before forward). Past it, records are refused unlinked.
 */
export const MAX_KEPT_BYTES = 4 * MIB;

/**
 * The part of MAX_KEPT_BYTES that records of requests that sent nothing upstream (refused before
 * forward while the sink is failed) may not use: it is left for the records of requests that were
 * already upstream when the sink broke. Without it a burst of refusals (a few thousand records)
 * fills the backlog, and a stream that was upstream then ends with no record at all.
 */
export const KEPT_BYTES_FOR_SENT = 2 * MIB;

/** A line this long after the previous one is written at once (see createFileSink). */
const IDLE_MS = 1;
const WRITTEN = Promise.resolve();
const ignore = (): void => undefined;

/** Tells each listener that a sink broke or recovered. */
function notify(listeners: readonly (() => void)[]): void {
  for (const listener of listeners) {
    try {
      listener();
    } catch {
      // A listener's own failure must not break the sink's error handling, which called it.
    }
  }
}

/**
 * What the sink found at the audit file's path, for the operator: a rename (a rotation: every
 * record is in the renamed file) reads differently from a deletion. No record is written to a
 * deleted file (each write checks first), but the records it held went with it, unless something
 * copied them first: a compressor that read a renamed file before its last records were appended
 * (a rotation that compresses at once, before Warden noticed the rename) did not.
 */
function rotationMessage(path: string, renamed: boolean, replaced: boolean): string {
  const other = replaced ? ' and another file took its path' : '';
  if (renamed) return `audit file ${path} was renamed or moved${other} (no record lost); reopening the path`;
  return (
    `audit file ${path} was deleted${other}: the records it held went with it unless it was copied first ` +
    '(a rotation that compresses the renamed file at once may miss its last records: use delaycompress); reopening the path'
  );
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function codeOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'error';
}

/**
 * What a failed sink means for requests, for the log line that reports it: with `audit.required`
 * they are refused; without it they are served and their records are lost.
 */
export function failureConsequence(required: boolean, until: string): string {
  return required
    ? `requests are refused (audit_unavailable) ${until}`
    : `requests are still served (audit.required is false) but their records are lost ${until}`;
}

/** How long a write to a stream sink may wait for its reader by default (`audit.write_timeout_ms`). */
export const DEFAULT_WRITE_TIMEOUT_MS = 5000;

export interface StreamSinkOptions {
  /**
   * How long (ms) a line may wait for the stream to take it. On Linux, stdout that is a pipe is
   * written asynchronously: a reader that stops reading (a blocking log driver, a stuck
   * collector) fills the pipe and the write's callback never comes. Past this the sink is failed
   * until the stream drains.
   */
  writeTimeoutMs?: number;
  /** `audit.required`: only what the failure log line says depends on it. */
  required?: boolean;
}

/** A write handed to the stream, waiting for its callback. */
interface InFlightWrite {
  at: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * JSON lines to a writable stream (stdout by default in config). Writes keep call order. Once the
 * stream fails (its reader went away: EPIPE), every later write is refused at once, for good.
 *
 * A write that has not completed within `writeTimeoutMs` (the reader stopped reading) stalls the
 * sink: that write and those behind it fail their requests (audit_unavailable), new writes are
 * refused, and the sink recovers once the stream has written every line it holds (the lines are
 * already in it, in chain order, so the chain stays whole). One timer, armed when a write is
 * waiting, checks the oldest write: no timer per line.
 */
export function createStreamSink(out: LineWritable, name = 'stdout', logger?: SinkLogger, opts: StreamSinkOptions = {}): AuditSink {
  const timeoutMs = opts.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
  const required = opts.required ?? true;
  let failure: Error | undefined;
  /** The failure is a stall (recovers when the stream drains), not an error from the stream. */
  let stalled = false;
  const listeners: Array<() => void> = [];
  /** Writes not yet called back, oldest first (a stream calls back in write order). */
  let waiting: InFlightWrite[] = [];
  let oldest = 0;
  let watchdog: NodeJS.Timeout | undefined;
  /** Resolved when nothing is waiting any more or the sink failed (flush). */
  let drained: { promise: Promise<void>; resolve: () => void } | undefined;
  /** Bytes of the lines kept while stalled (see keep), bounded by MAX_KEPT_BYTES through canKeep. */
  let keptBytes = 0;
  /**
   * Records whose write failed (the reader went away, a file-backed stream is full): linked into
   * the chain and never written, so counted in `unwritten()` for shutdown to report them lost.
   */
  let lost = 0;

  const pending = (): number => waiting.length - oldest;
  const wakeFlush = (): void => {
    drained?.resolve();
    drained = undefined;
  };

  const fail = (err: Error): void => {
    // An error from the stream is final, even for a sink that was only stalled.
    const wasHealthy = failure === undefined;
    if (failure && !stalled) return;
    failure = err;
    stalled = false;
    wakeFlush();
    // Said for a stalled sink too: its stall said "until the stream drains", which is no longer so.
    logger?.error({ sink: name, code: codeOf(err) }, `audit sink ${name} failed; ${failureConsequence(required, 'until Warden is restarted')}`);
    // A stalled sink was already unavailable: its listeners heard of it then.
    if (wasHealthy) notify(listeners);
  };

  function stall(waitedMs: number): void {
    failure = Object.assign(new Error(`a write to ${name} did not complete within ${timeoutMs} ms: its reader is not reading`), { code: 'ETIMEDOUT' });
    stalled = true;
    logger?.error(
      { sink: name, code: 'ETIMEDOUT', waited_ms: Math.round(waitedMs), unwritten: pending() },
      `audit sink ${name} stalled: a record waited more than ${timeoutMs} ms for the stream's reader; ${failureConsequence(required, 'until the stream drains')}`,
    );
    // Their lines are in the stream and will be written if it drains, but their requests must not wait for that.
    for (let i = oldest; i < waiting.length; i++) waiting[i]!.reject(failure);
    wakeFlush();
    notify(listeners);
  }

  function check(): void {
    watchdog = undefined;
    if (pending() === 0 || failure) return;
    const waited = performance.now() - waiting[oldest]!.at;
    if (waited >= timeoutMs) return stall(waited);
    arm(timeoutMs - waited);
  }

  function arm(ms: number): void {
    watchdog = setTimeout(check, ms);
    watchdog.unref(); // a waiting write keeps the process up by itself; the check must not
  }

  /** The oldest waiting write was called back. */
  function settled(): InFlightWrite {
    const w = waiting[oldest]!;
    oldest++;
    if (oldest === waiting.length) {
      waiting = [];
      oldest = 0;
      wakeFlush();
      if (stalled) {
        failure = undefined;
        stalled = false;
        keptBytes = 0;
        logger?.warn({ sink: name }, `audit sink ${name} recovered: its stream took every waiting record; requests are served again`);
        notify(listeners);
      }
    } else if (oldest > 1024 && oldest * 2 > waiting.length) {
      waiting = waiting.slice(oldest);
      oldest = 0;
    }
    return w;
  }

  /** The write just queued never reached the stream (`write()` threw): it leaves the queue. */
  function withdrawNewest(): void {
    waiting.pop();
    if (oldest === waiting.length) {
      waiting = [];
      oldest = 0;
    }
  }

  /**
   * While stalled: a record linked meanwhile (its request was upstream when the sink stalled, or
   * was refused since) goes into the stream behind the waiting lines, in chain order, and is
   * written when the reader reads again (the sink recovers only after it); its caller is refused.
   * Refused instead, such a record would be lost with no trace, and a prompt already upstream
   * would have none. Bounded through canKeep.
   */
  function keep(line: string): void {
    keptBytes += line.length + 1;
    waiting.push({ at: performance.now(), resolve: ignore, reject: ignore });
    try {
      out.write(`${line}\n`, (err) => {
        if (err) {
          lost++;
          fail(err);
        }
        settled();
      });
    } catch (err) {
      withdrawNewest();
      lost++;
      fail(err as Error);
    }
  }

  /** Every line handed over so far is written, or the sink failed (a stall ends the wait). */
  async function flush(): Promise<void> {
    if (pending() === 0 || failure) return;
    if (!drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      drained = { promise, resolve };
    }
    await drained.promise;
  }

  // Without a listener, an EPIPE on stdout is an uncaught 'error' event: the process would crash.
  out.on?.('error', fail);
  return {
    name,
    get failure() {
      return failure;
    },
    onFailureChange(listener: () => void) {
      listeners.push(listener);
    },
    unwritten() {
      return pending() + lost;
    },
    canKeep(bytes: number) {
      // A stream that failed (its reader went away) takes nothing more.
      return stalled && keptBytes + bytes < MAX_KEPT_BYTES;
    },
    write(line: string) {
      if (failure) {
        if (stalled) keep(line);
        return Promise.reject(failure);
      }
      return new Promise<void>((resolve, reject) => {
        waiting.push({ at: performance.now(), resolve, reject });
        if (!watchdog) arm(timeoutMs);
        try {
          out.write(`${line}\n`, (err) => {
            // The error first: settled() would otherwise take the last waiting write of a stalled
            // sink for a drained stream, say it recovered, and tell readiness so, just before it fails.
            if (err) {
              lost++;
              fail(err);
            }
            const w = settled();
            if (!err) return w.resolve();
            w.reject(err);
          });
        } catch (err) {
          // Not settled(): that would settle the oldest waiting write, whose callback is still to come.
          withdrawNewest();
          lost++;
          fail(err as Error);
          reject(err as Error);
        }
      });
    },
    flush,
    async close() {
      await flush();
      // process.stdout outlives the sink: leave no listener behind (runtimes made one after another).
      out.off?.('error', fail);
      if (watchdog) clearTimeout(watchdog);
      watchdog = undefined;
    },
  };
}

export interface FileSinkOptions {
  logger?: SinkLogger;
  /** Names the sink in start-up errors (e.g. `audit.sinks[1].file`). */
  location?: string;
  /**
   * How often (ms) the sink looks, off the request path, whether its path still names the open file
   * (a rotation renamed it, someone deleted it: then it reopens the path), and retries a failed sink.
   */
  checkMs?: number;
  /** `audit.required`: only what the failure log line says depends on it. */
  required?: boolean;
}

/**
 * Appending without waiting: opening a FIFO for writing blocks until a reader comes (with
 * O_NONBLOCK it fails with ENXIO instead, or opens when a reader is there, which fstat then
 * catches), and a serial line may wait for its carrier. O_NONBLOCK does nothing for a regular file.
 */
const NO_WAIT = (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NO_WAIT;

/**
 * What the sink refuses to append to: a FIFO (its open and its writes wait for a reader), a socket
 * and a block device. A character device is accepted: it opens and writes without waiting (or
 * fails each write, which fails the sink), and `/dev/full` is how a full disk is reproduced.
 */
function unfitForAppend(st: Stats): boolean {
  return !st.isFile() && !st.isCharacterDevice();
}

/** A descriptor open for appending, with what it was when opened. */
interface OpenedFile {
  fd: number;
  /** A character device (it has no size). */
  device: boolean;
  size: number;
  /** `dev:ino`: which file it is. */
  id: string;
}

/**
 * Opens `path` for appending (mode 0600 when created), refusing a FIFO, socket or block device by
 * what the open descriptor is (fstat), so nothing can be swapped in between a check and the open.
 * `device`: it is a character device.
 */
function openForAppend(path: string): OpenedFile {
  let fd: number;
  try {
    fd = openSync(path, APPEND_FLAGS, 0o600);
  } catch (err) {
    // ENXIO: a FIFO without a reader (or a socket), named by what it is.
    if (codeOf(err) !== 'ENXIO') throw err;
    let st: Stats | undefined;
    try {
      st = statSync(path);
    } catch {
      throw err;
    }
    throw unfitForAppend(st) ? notRegular(st) : err;
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
    if (unfitForAppend(st)) throw notRegular(st);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  const device = st.isCharacterDevice();
  return { fd: device ? blockingReopen(fd) : fd, device, size: st.size, id: `${st.dev}:${st.ino}` };
}

/**
 * A character device opened without waiting, opened again the usual way: left on, O_NONBLOCK would
 * make a write to a terminal or serial line that is not being read fail with EAGAIN (and fail the
 * sink) instead of waiting, as a write there always did. A regular file ignores the flag. Through
 * /proc/self/fd, so the path is not looked up a second time; where there is no /proc, the first
 * descriptor stays.
 */
function blockingReopen(fd: number): number {
  let again: number;
  try {
    again = openSync(`/proc/self/fd/${fd}`, APPEND_FLAGS & ~(constants.O_NONBLOCK ?? 0));
  } catch {
    return fd;
  }
  closeSync(fd);
  return again;
}

/** An error that says what went wrong with the file without quoting more than its path. */
function openError(path: string, err: unknown, location?: string): Error {
  if (err instanceof NotRegularFileError) {
    // `file: /dev/stdout` in a container is a pipe: the stdout sink is the way to write there.
    const message = `cannot open the audit file ${path} for appending: ${readFailure(err)} (to write records to standard output, use the stdout sink)`;
    return Object.assign(new Error(message, { cause: err }), { code: 'ENOTREG', location });
  }
  const code = codeOf(err);
  const hint =
    code === 'ENOENT' ? ' (its directory does not exist)'
    : code === 'EACCES' || code === 'EPERM' ? ' (permission denied, or the file is immutable)'
    : code === 'EISDIR' ? ' (it is a directory)'
    : code === 'EROFS' ? ' (read-only file system)'
    : '';
  return Object.assign(new Error(`cannot open the audit file ${path} for appending: ${code}${hint}`, { cause: err }), { code, location });
}

/** The code of a file sink's failure when another process appends to its file (see createFileSink). */
export const ANOTHER_WRITER = 'EOTHERWRITER';

function anotherWriter(path: string, bytes: number): Error {
  return Object.assign(new Error(`another process writes this audit file ${path} (it grew by ${bytes} byte(s) this sink did not write)`), { code: ANOTHER_WRITER });
}

/** A reopen found another file at the path, with lines in it: not a fresh rotation target. */
function anotherFile(path: string, bytes: number): Error {
  return Object.assign(new Error(`the audit file ${path} is now another file, which already holds ${bytes} byte(s) this sink did not write (another process writes it)`), { code: ANOTHER_WRITER });
}

/**
 * Appends JSON lines to a file (mode 0600) with synchronous writes to one file descriptor;
 * `flush` fsyncs.
 *
 * Failure: a write that fails (a full disk, an immutable file, an I/O error) is taken back — the
 * bytes of a short write are truncated away, so no record is ever torn — and the lines it carried
 * are kept: the sink is failed, refuses every write, and once a second (a retry) it reopens its
 * path and writes the kept lines first. When that works it is healthy again and the chain goes on
 * where it stopped. The lines kept are only those of the failed write: the log links no new record
 * while a sink is failed.
 *
 * Rotation: once a second the sink compares the open file with what its path names now; when the
 * file was renamed or deleted it reopens the path (a new file continues the chain). `reopen()` does
 * the same at once (SIGHUP).
 *
 * One writer per file: two Wardens on one file (an overlapping restart on a shared volume) would
 * both resume from the same head and fork the chain. Node has no advisory lock (flock), and a lock
 * file outlives a killed process (a PID in another container's namespace cannot be checked), so the
 * sink detects instead: it knows the size its file must have (the size at open plus what it wrote);
 * before each write, and once a second while idle, a file that is larger was written by someone
 * else. The sink then fails for good (ANOTHER_WRITER: no retry, no reopen, since its head is no
 * longer the file's), before it writes a forking record. A smaller file was truncated in place
 * (copytruncate); the sink goes on at its new end.
 */
export function createFileSink(path: string, opts: FileSinkOptions = {}): AuditSink {
  const logger = opts.logger;
  const checkMs = opts.checkMs ?? 1000;
  const name = `file:${path}`;
  let fd: number | undefined;
  let failure: Error | undefined;
  /** The lines of the write that failed, written first when the sink recovers. */
  let backlog = '';
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const listeners: Array<() => void> = [];
  /**
   * The size the open file must have (its size when opened, plus what this sink wrote since), to
   * tell another writer's bytes from ours; undefined for a character device (it has no size).
   */
  let expected: number | undefined;
  /** `dev:ino` of the file `expected` describes: a reopen of that same file keeps what the sink knows of it. */
  let fileId: string | undefined;
  /**
   * Records this sink had linked and will never write, because another writer forked its file:
   * lost, and counted in `unwritten()` so that shutdown reports them (and exits 1).
   */
  let dropped = 0;
  /** Bumped by each write: a background fstat that raced a write says nothing about other writers. */
  let writes = 0;
  /** Another process wrote to the file: the failure never heals (see ANOTHER_WRITER). */
  let forked = false;
  /** `dev:ino` of a file whose last line has no newline (lastLine): one is written before the next line. */
  let unterminated: string | undefined;

  let toldDevice = false;

  function openFd(): number {
    let opened: OpenedFile;
    try {
      opened = openForAppend(path);
    } catch (err) {
      throw openError(path, err, opts.location);
    }
    // Accepted (see unfitForAppend), but `/dev/null` would take every record and keep none, with
    // audit.required still satisfied: said once, so a config meant for a test is seen in production.
    if (!toldDevice && opened.device) {
      toldDevice = true;
      logger?.warn({ sink: name }, `audit sink ${name} is a character device, not a file: its records are not kept where "warden audit verify" can read them, and the hash chain starts afresh at each start`);
    }
    let size: number | undefined;
    try {
      size = expectedAfterOpen(opened);
    } catch (err) {
      closeSync(opened.fd);
      throw err;
    }
    // Set with the descriptor they describe (openFd's callers make it the sink's fd at once).
    expected = size;
    fileId = opened.id;
    return opened.fd;
  }

  /**
   * The size the file just opened must have, or ANOTHER_WRITER. Taking its size as ours on every
   * open would count another writer's bytes as this sink's after any reopen (a SIGHUP for a
   * template reload, the retry of a failed sink) and write the next record after them: a fork.
   * - The first open: the sink resumes from the file's last line, whatever its size.
   * - The same file again (no rotation): what the sink knew of it still holds. Larger: another
   *   writer's; smaller: truncated in place (copytruncate), go on at its end.
   * - Another file (a rotation): it must be empty. One that already has lines is another writer's
   *   (another Warden started on the path meanwhile); appending there would continue someone
   *   else's chain. Failing closed also refuses a copy of this sink's own file put back in place
   *   (a restore from backup, a move across file systems): a restart resumes from it.
   */
  function expectedAfterOpen(opened: OpenedFile): number | undefined {
    if (opened.device) return undefined;
    if (fileId === undefined) return opened.size;
    if (opened.id === fileId) {
      if (expected !== undefined && opened.size > expected) throw anotherWriter(path, opened.size - expected);
      return opened.size;
    }
    if (opened.size > 0) throw anotherFile(path, opened.size);
    return 0;
  }

  function startChecks(): void {
    if (timer || closed) return;
    timer = setInterval(check, checkMs);
    timer.unref();
  }

  function ensureOpen(): void {
    if (fd !== undefined) return;
    fd = openFd();
    startChecks();
  }

  /** Opens the path again, then closes the previous file (fsynced first: its lines stay durable). */
  function reopenFd(): void {
    const next = openFd();
    const prev = fd;
    fd = next;
    if (prev !== undefined) {
      try {
        fsyncSync(prev);
      } catch {
        // A file that can no longer be synced (EIO) is being replaced anyway.
      }
      try {
        closeSync(prev);
      } catch {
        // Already gone.
      }
    }
    startChecks();
  }

  function fail(err: unknown, lines: string): void {
    // Failed for good, with the reason said once: its kept lines would never be written.
    if (forked) {
      dropped += countLines(lines);
      return;
    }
    backlog += lines;
    const wasHealthy = failure === undefined;
    failure = err instanceof Error ? err : new Error(String(err));
    if (codeOf(err) === ANOTHER_WRITER) {
      forked = true;
      // Linked records that will never be written (the lines of the write that found the other
      // writer are among them): lost, and reported as such at shutdown.
      dropped += countLines(backlog);
      backlog = '';
      logger?.error(
        { sink: name, code: ANOTHER_WRITER },
        `audit sink ${name}: ${failure.message}: two writers fork the hash chain, so this sink writes no more and requests are refused (audit_unavailable) until Warden is restarted; run one Warden per audit file, then "warden audit verify" it`,
      );
      if (wasHealthy) notify(listeners);
      return;
    }
    if (wasHealthy) {
      logger?.error(
        { sink: name, code: codeOf(err) },
        `audit sink ${name} failed (${codeOf(err)}); ${failureConsequence(opts.required ?? true, 'until it recovers')}`,
      );
      notify(listeners);
    }
  }

  /** Writes the lines of a failed write and clears the failure; false (still failed) when that fails. */
  function recover(reason: string): boolean {
    // Its head is no longer the file's: writing on (even the kept lines) would fork the chain.
    if (forked) return false;
    try {
      reopenFd();
      if (backlog !== '') writeAll(backlog);
    } catch (err) {
      // Another writer's file (grown, or another non-empty file): failed for good, said why.
      if (codeOf(err) === ANOTHER_WRITER) fail(err, '');
      else failure = err instanceof Error ? err : new Error(String(err));
      return false;
    }
    const kept = backlog !== '';
    backlog = '';
    failure = undefined;
    logger?.warn({ sink: name, reason, wrote_kept_lines: kept }, `audit sink ${name} recovered; requests are served again`);
    notify(listeners);
    return true;
  }

  /** The background check: retry a failed sink; reopen a file that was renamed or deleted. */
  function check(): void {
    if (closed) return;
    if (failure) {
      recover('retry');
      return;
    }
    if (fd === undefined) return;
    const current = fd;
    const writesBefore = writes;
    fstat(current, (err, open) => {
      if (closed || failure || fd !== current) return;
      if (err) return;
      // Grown by bytes this sink did not write (and no write of ours raced the fstat): fail now,
      // so /readyz says so before this Warden's next request would fork the chain.
      if (expected !== undefined && writes === writesBefore && open.size > expected) {
        fail(anotherWriter(path, open.size - expected), '');
        return;
      }
      let now: { dev: number; ino: number } | undefined;
      try {
        now = statSync(path);
      } catch {
        now = undefined;
      }
      if (now && sameFile(now, open)) return;
      if (batch) return; // lines waiting for this turn's write go to the file they were meant for; next check
      // The open file still has a name (nlink > 0): it was renamed or moved, and every record is in
      // it. With none it was deleted (the next write would have noticed it too: see beforeWrite).
      // Read again, after the path's stat: `open` is from before it, and a file deleted and made
      // anew at its path in between would be reported as renamed (tidy, twenty-second session).
      const renamed = linkCount(current) > 0;
      logger?.warn({ sink: name, renamed, replaced: now !== undefined }, rotationMessage(path, renamed, now !== undefined));
      try {
        reopenFd();
      } catch (e) {
        fail(e, '');
      }
    });
  }

  /** The open file's link count now; 0 when it cannot be read (reported as deleted: no name to point to). */
  function linkCount(of: number): number {
    try {
      return fstatSync(of).nlink;
    } catch {
      return 0;
    }
  }

  /** The open file has no name left (see beforeWrite): reopen its path before writing to it. */
  function reopenDeleted(): void {
    let replaced = true;
    try {
      statSync(path);
    } catch {
      replaced = false;
    }
    logger?.warn({ sink: name, renamed: false, replaced }, rotationMessage(path, false, replaced));
    reopenFd();
  }

  /**
   * Writes all of `text` or nothing: a short write (disk nearly full) is finished from a buffer,
   * and when a later write fails the bytes already written are truncated away, so no record is ever
   * torn.
   */
  function writeAll(lines: string): void {
    writes++;
    const text = beforeWrite(lines);
    // Read after beforeWrite, which reopens the path when the open file was deleted.
    const to = fd!;
    let written = 0;
    try {
      written = writeSync(to, text);
      const size = Buffer.byteLength(text);
      if (written < size) {
        const rest = Buffer.from(text);
        while (written < size) {
          const n = writeSync(to, rest, written, size - written);
          if (n === 0) throw Object.assign(new Error('no space left to write the audit record'), { code: 'ENOSPC' });
          written += n;
        }
      }
    } catch (err) {
      if (written > 0) untear(to, written);
      throw err;
    }
    if (expected !== undefined) expected += written;
    // Settled by any write: the newline went first, or the file was emptied meanwhile (logrotate
    // copytruncate) and needed none; kept, the flag would put a blank line after this write.
    unterminated = undefined;
    if (text !== lines) logger?.info({ sink: name }, `audit file ${path}: its last record had no trailing newline; wrote one before the next record`);
  }

  /**
   * Checks, before a write, that nobody else wrote to the file (the fstat costs about a µs, a
   * third of the write), and returns the text to write: with the newline a last line lacked.
   *
   * The same fstat says whether the file still has a name: one that was deleted (`rm`, or a
   * rotation that compresses the renamed file and deletes it before the background check saw the
   * rename) would take the lines and lose them, while their requests are answered as audited. The
   * path is reopened first (a new file continues the chain), or the write fails (audit_unavailable)
   * when it cannot be: as the background check would, up to a second later.
   */
  function beforeWrite(lines: string): string {
    if (expected === undefined) return lines;
    let st = fstatSync(fd!);
    if (st.nlink === 0) {
      reopenDeleted();
      st = fstatSync(fd!);
    }
    if (st.size > expected) throw anotherWriter(path, st.size - expected);
    expected = st.size; // smaller: truncated in place (copytruncate); appends go on at its new end
    return unterminated === `${st.dev}:${st.ino}` && st.size > 0 ? `\n${lines}` : lines;
  }

  function untear(to: number, bytes: number): void {
    try {
      const { size } = fstatSync(to);
      // The file must be exactly what it was plus the bytes just written: anything else is another
      // writer's, and never cut. (A character device has no size: its last bytes are ours.)
      const base = expected ?? size - bytes;
      if (size !== base + bytes) {
        fail(anotherWriter(path, size - base - bytes), '');
        throw Object.assign(new Error('another writer appended after the partly written line'), { code: ANOTHER_WRITER });
      }
      ftruncateSync(to, Math.max(0, base));
    } catch (err) {
      logger?.error({ sink: name, code: codeOf(err), bytes }, `audit sink ${name}: a partly written line could not be truncated away`);
      if (expected !== undefined) expected += bytes; // they stay in the file
    }
  }

  /**
   * Lines wait here (unless the sink was idle: see lastLineAt) for the end of the current
   * event-loop turn, then go to the file in one synchronous write: under load several requests
   * finish in the same turn, and one write call for all of them costs what one call for a single
   * line did. A synchronous append to the page cache costs microseconds; going through the
   * stream's thread-pool round trip cost about a millisecond per request under load, and each
   * request waits for its line (fail closed). Order is the call order.
   */
  let pending: string[] = [];
  let batch: Promise<void> | undefined;
  let settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  /**
   * When the last line came (performance.now()). A line that comes more than IDLE_MS after the one
   * before has nobody to share a write with: it is written at once, in the caller's turn, and the
   * caller gets a settled promise. At 500 requests/s that took the audit stage's median from 30 to
   * 16 µs (a timeline of the request); under load, lines come closer together and are batched.
   */
  let lastLineAt = Number.NEGATIVE_INFINITY;

  function flushPending(): void {
    const lines = pending;
    const done = settle!;
    pending = [];
    batch = undefined;
    settle = undefined;
    const text = lines.length === 1 ? lines[0]! : lines.join('');
    if (failure) {
      fail(failure, text);
      return done.reject(failure);
    }
    try {
      writeAll(text);
    } catch (err) {
      fail(err, text);
      return done.reject(err);
    }
    done.resolve();
  }

  function append(line: string): Promise<void> {
    if (failure) {
      // A record linked while the sink is failed (its request was already in flight, see
      // createAuditLog) keeps its place, to be written first when the sink recovers.
      fail(failure, `${line}\n`);
      return Promise.reject(failure);
    }
    const now = performance.now();
    const idle = now - lastLineAt > IDLE_MS;
    lastLineAt = now;
    if (idle && !batch) {
      const text = `${line}\n`;
      try {
        writeAll(text);
      } catch (err) {
        fail(err, text);
        return Promise.reject(err);
      }
      return WRITTEN;
    }
    pending.push(`${line}\n`);
    if (!batch) {
      batch = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
      setImmediate(flushPending);
    }
    return batch;
  }

  return {
    name,
    get failure() {
      return failure;
    },
    onFailureChange(listener: () => void) {
      listeners.push(listener);
    },
    open() {
      ensureOpen();
    },
    reopen() {
      if (closed) throw new Error(`audit sink ${name} is closed`);
      if (failure) {
        if (!recover('reopen')) throw failure;
        return;
      }
      try {
        reopenFd();
      } catch (err) {
        fail(err, '');
        throw err;
      }
    },
    identity() {
      if (fd === undefined) return undefined;
      try {
        const s = fstatSync(fd);
        return `${s.dev}:${s.ino}`;
      } catch {
        return undefined;
      }
    },
    unwritten() {
      return countLines(backlog) + pending.length + dropped;
    },
    canKeep(bytes: number) {
      // A sink another process writes to never writes its kept lines: it keeps none.
      return !closed && !forked && backlog.length + bytes < MAX_KEPT_BYTES;
    },
    write(line: string) {
      // After close, nothing is written (or reopened): the line could never be fsynced.
      if (closed) return Promise.reject(new Error(`audit sink ${name} is closed`));
      // Opened at start (createAuditLog's open); a sink used on its own opens on its first line.
      if (fd === undefined && !failure) {
        try {
          ensureOpen();
        } catch (err) {
          fail(err, '');
          return Promise.reject(failure!);
        }
      }
      return append(line);
    },
    async flush() {
      // Lines still waiting for the end of this turn go out first.
      if (batch) await batch.catch(() => undefined);
      if (failure && !recover('flush')) throw failure;
      const target = fd;
      if (target === undefined) return;
      await new Promise<void>((resolve, reject) => fsync(target, (err) => (err ? reject(err) : resolve())));
    },
    async close() {
      // Closed first: a line that comes while the pending batch is written is refused, not
      // written to a file reopened after the close.
      closed = true;
      if (batch) await batch.catch(() => undefined);
      if (timer) clearInterval(timer);
      timer = undefined;
      if (fd !== undefined) {
        const target = fd;
        fd = undefined;
        closeSync(target);
      }
    },
    async lastLine() {
      const last = await readLastLineOf(path);
      // Warden ends each record with a lone LF and writes no blank line: a CR or a blank line at
      // the end was put there by an edit (an editor's CRLF conversion, a stray newline), which
      // `warden audit verify` reports as broken. Appending after it would hide the edit under new
      // records, so the chain is not resumed; the operator looks at the file first.
      if (last.line?.includes('\r')) throw edited('its last line holds a carriage return (CRLF line ends: the file was edited)');
      if (last.blankAfter) throw edited('it ends with a blank line (the file was edited)');
      // Remembered by file: after a rotation the new file needs no newline.
      unterminated = last.line !== undefined && !last.terminated ? last.file : undefined;
      return last.line;
    },
  };
}

/** The longest line `readLastLine` and `warden audit verify` accept (a record is a few KB). */
export const MAX_AUDIT_LINE_BYTES = 16 * MIB;

const NL = 0x0a;

/** The code of a `lastLine` refusal: the file's end shows an edit Warden would not have made. */
export const AUDIT_FILE_EDITED = 'EAUDITEDITED';

function edited(what: string): Error {
  return Object.assign(new Error(what), { code: AUDIT_FILE_EDITED });
}

/**
 * Reads the last non-empty line of a file from its end, in chunks (audit files grow large). Linear
 * in the line's length: chunks are kept as they are read and joined and decoded once; a line
 * longer than `maxBytes` is an error (a crash can leave a long tail without a newline).
 */
export async function readLastLine(path: string, maxBytes = MAX_AUDIT_LINE_BYTES): Promise<string | undefined> {
  return (await readLastLineOf(path, maxBytes)).line;
}

/**
 * `readLastLine`, and whether the file ends with a newline (`terminated`; true for an empty or
 * missing file), whether an empty line follows the last line (`blankAfter`: two newlines or more
 * at the end, or any in a file without a line) and which file was read (`dev:ino`).
 */
async function readLastLineOf(path: string, maxBytes = MAX_AUDIT_LINE_BYTES): Promise<{ line: string | undefined; terminated: boolean; blankAfter?: boolean; file?: string }> {
  let fh;
  try {
    // Without waiting: the path may have been swapped for a FIFO since the sink opened it.
    fh = await open(path, constants.O_RDONLY | NO_WAIT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { line: undefined, terminated: true };
    throw err;
  }
  try {
    const st = await fh.stat();
    if (unfitForAppend(st)) throw notRegular(st);
    const { size } = st;
    const CHUNK = 64 * 1024;
    const chunks: Buffer[] = [];
    let lineBytes = 0;
    let end = size;
    let skipping = true; // trailing newlines, before the line's last byte was seen
    let terminated = true;
    let trailingNewlines = 0;
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const buf = Buffer.alloc(end - start);
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      let hi = bytesRead; // exclusive end of the line's bytes within buf
      if (end === size && hi > 0) terminated = buf[hi - 1] === NL;
      if (skipping) {
        while (hi > 0 && buf[hi - 1] === NL) {
          hi--;
          trailingNewlines++;
        }
        if (hi === 0) {
          end = start;
          continue;
        }
        skipping = false;
      }
      const nl = buf.lastIndexOf(NL, hi - 1);
      const piece = buf.subarray(nl + 1, hi);
      lineBytes += piece.length;
      if (lineBytes > maxBytes) throw Object.assign(new Error(`the last line is longer than ${maxBytes} bytes`), { code: 'ELINETOOLONG' });
      chunks.push(piece);
      if (nl >= 0) break;
      end = start;
    }
    const file = `${st.dev}:${st.ino}`;
    // A file of newlines only: blank lines too (a first record after them would not verify).
    if (chunks.length === 0) return { line: undefined, terminated, blankAfter: trailingNewlines > 0, file };
    let line: string;
    try {
      // Strict, as `warden audit verify` reads: a lenient decode would turn bytes that are not
      // UTF-8 into U+FFFD, and a record holding U+FFFD would then resume a line verify calls broken.
      line = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.concat(chunks.reverse(), lineBytes));
    } catch {
      throw edited('its last line is not valid UTF-8');
    }
    return { line, terminated, blankAfter: trailingNewlines > 1, file };
  } finally {
    await fh.close();
  }
}
