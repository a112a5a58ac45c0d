/**
 * The audit log: links each record into the hash chain and writes it to every sink. Linking is
 * synchronous (seq assignment, hash and the write calls happen in one turn of the event loop), so
 * concurrent appends can never interleave or fork the chain, and no lock is needed on the hot path.
 * On start it resumes the chain from the last record of a file sink.
 */
import { WardenError } from '../pipeline/errors.js';
import type { AuditLog, AuditRecord } from '../pipeline/ports.js';
import { readFailure } from '../pipeline/regular-file.js';
import { ChainVerifier, GENESIS, linkRecordLine, NOT_JSON, type AuditRecordBody, type ChainHead } from './chain.js';
import type { StaticRecordText } from './record-text.js';
import { AUDIT_FILE_EDITED, KEPT_BYTES_FOR_SENT, type AuditSink } from './sinks.js';

export interface AuditLogOptions {
  sinks: AuditSink[];
  /** Where a failed write is reported with the sink's name (a file path the caller must not see). */
  logger?: { error(obj: object, msg?: string): void };
}

export interface AuditLogHandle extends AuditLog {
  /**
   * Opens every sink for writing and resumes the chain from existing sinks. Called by `append` on
   * first use; call it at startup so that a sink that cannot be written stops the start.
   */
  open(): Promise<void>;
  /**
   * False while a sink is failed: the log links no record then, and a request must not be
   * forwarded (nothing may go upstream unaudited). Cheap: a flag per sink. It turns true again
   * once the sinks recover (a file sink retries once a second, and on `reopen`).
   */
  available(): boolean;
  /**
   * Calls `listener` with the new `available()` each time it changes (a sink broke or recovered):
   * gRPC health follows it, as `/readyz` does.
   */
  onAvailabilityChange(listener: (available: boolean) => void): void;
  /**
   * Reopens every file sink's path (log rotation: call it on SIGHUP after the file was renamed).
   * The chain continues in the new file. Rejects when a path cannot be opened; that sink is then
   * failed (requests are refused, `/readyz` is 503) until it can be.
   */
  reopen(): Promise<void>;
  /** The last linked record's seq and hash. */
  readonly head: ChainHead;
  /** Flushes and closes every sink (on shutdown). */
  close(): Promise<void>;
  /**
   * The sinks that hold records they have not written (a stalled stream, a failed file's kept
   * lines), with how many and their seq range: on shutdown, what exiting now loses. A sink writes
   * in chain order, so its unwritten records are the last ones linked.
   */
  unwritten(): UnwrittenRecords[];
}

export interface UnwrittenRecords {
  sink: string;
  records: number;
  first_seq: number;
  last_seq: number;
}

/**
 * What the caller is told: the code only. The sink's name may be a file path on this host, which
 * is the operator's business (it goes to the log), not the caller's.
 */
function unavailable(err: unknown): WardenError {
  const code = ((err instanceof WardenError ? err.cause : err) as NodeJS.ErrnoException | undefined)?.code;
  return new WardenError('audit_unavailable', `the audit log is unavailable${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
}

/**
 * Whether a record's request may have sent its prompt upstream: it had one (a prompt HMAC) and was
 * not refused by the audit guard before forward (the only source of `audit_unavailable` in a
 * record: a failed audit write is told to the caller after its record was made). Only read while a
 * sink is failed.
 */
function sentUpstream(body: AuditRecordBody): boolean {
  return body.prompt_hmac !== null && body.error_code !== 'audit_unavailable';
}

/**
 * The failure of a chain whose head is at seq 2^53 - 1: the next seq would not count by one (2^53
 * + 1 is 2^53) and verify calls any record after it broken, so none is written. Only a resumed
 * file whose last record was edited or forged to a seq near it gets there.
 */
class ChainExhausted extends Error {
  readonly code = 'ESEQEXHAUSTED';
  constructor() {
    super(`the audit chain reached seq ${Number.MAX_SAFE_INTEGER} (2^53 - 1), the largest it can count to: no record can follow it; rename the audit file(s) and restart (a new chain starts at seq 1)`);
  }
}

export function createAuditLog(opts: AuditLogOptions): AuditLogHandle {
  const sinks = opts.sinks.slice();
  if (sinks.length === 0) throw new Error('audit: at least one sink is required');
  const names = new Set<string>();
  for (const s of sinks) {
    if (names.has(s.name)) throw new WardenError('audit_unavailable', `audit sink ${s.name} is listed twice: every record would be written twice`);
    names.add(s.name);
  }
  const sinkError = (sink: AuditSink, err: unknown): WardenError => {
    opts.logger?.error({ sink: sink.name, code: (err as NodeJS.ErrnoException | undefined)?.code ?? 'error' }, `audit sink ${sink.name}: the record could not be written`);
    return unavailable(err);
  };
  const first = sinks[0]!;
  const single = sinks.length === 1;
  let head: ChainHead = GENESIS;
  /** Set once the head is at the largest seq: every append is refused, for good. */
  let exhausted: ChainExhausted | undefined;
  /** The first failed sink's error, or undefined: one flag read per sink. */
  function failing(): Error | undefined {
    if (exhausted) return exhausted;
    if (single) return first.failure;
    for (const s of sinks) if (s.failure) return s.failure;
    return undefined;
  }

  const availabilityListeners: Array<(available: boolean) => void> = [];
  let wasAvailable = failing() === undefined;
  /** A sink broke or recovered: the log as a whole may have changed (two sinks may overlap). */
  function sinkChanged(): void {
    const available = failing() === undefined;
    if (available === wasAvailable) return;
    wasAvailable = available;
    for (const listener of availabilityListeners) listener(available);
  }
  for (const s of sinks) s.onFailureChange?.(sinkChanged);
  /** The head moved to `next`: at the largest seq, the log stops taking records (and says so once). */
  function advance(next: ChainHead): void {
    head = next;
    if (next.seq < Number.MAX_SAFE_INTEGER) return;
    exhausted = new ChainExhausted();
    opts.logger?.error({ seq: next.seq, code: exhausted.code }, exhausted.message);
    sinkChanged();
  }
  let opening: Promise<void> | undefined;
  let ready = false;

  async function resume(): Promise<void> {
    // Open for writing first: a file that cannot be appended to must stop the start, not fail the
    // first request after its prompt went upstream. The error names the file (it is for the operator).
    const files = new Map<string, string>();
    for (const s of sinks) {
      try {
        s.open?.();
      } catch (err) {
        const location = (err as { location?: unknown }).location;
        throw new WardenError('audit_unavailable', (err as Error).message, {
          cause: err,
          ...(typeof location === 'string' ? { location: { path: location } } : {}),
        });
      }
      const id = s.identity?.();
      if (id === undefined) continue;
      const other = files.get(id);
      if (other !== undefined) throw new WardenError('audit_unavailable', `audit sinks ${other} and ${s.name} are the same file: every record would be written twice`);
      files.set(id, s.name);
    }
    /** The head the file sinks' last lines agree on, and the first sink that named it. */
    let resumed: { head: ChainHead; sink: string } | undefined;
    for (const s of sinks) {
      if (!s.lastLine) continue;
      let line: string | undefined;
      try {
        line = await s.lastLine();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException | undefined)?.code;
        throw new WardenError(
          'audit_unavailable',
          code === 'ELINETOOLONG' || code === AUDIT_FILE_EDITED
            ? `audit sink ${s.name}: ${(err as Error).message}; cannot resume the hash chain (run "warden audit verify")`
            : `audit sink ${s.name}: cannot read its last line (${readFailure(err)})`,
          { cause: err },
        );
      }
      if (line === undefined) continue;
      // The check `warden audit verify --continue` makes of a first line: a well-formed link, the
      // hash of its content, and the canonical text. A last line verify calls broken (torn by a
      // crash, or edited: duplicate members, other spacing, a seq of 4.5) must be looked at by a
      // human, not papered over by appending a chain after it.
      const verifier = new ChainVerifier({});
      const check = verifier.pushLine(line);
      if (!check.ok) {
        const why = check.reason === NOT_JSON ? 'last line is not valid JSON' : `last record does not verify (${check.reason})`;
        throw new WardenError('audit_unavailable', `audit sink ${s.name}: ${why}; cannot resume the hash chain (run "warden audit verify")`);
      }
      const last = verifier.last;
      // Its next record's seq would not be exact (2^53 + 1 is 2^53), and verify calls it broken.
      if (!Number.isSafeInteger(last.seq + 1)) {
        throw new WardenError(
          'audit_unavailable',
          `audit sink ${s.name}: its last record's seq ${last.seq} is the largest a chain can count to; cannot resume the hash chain (rename the file: the sink starts a new one)`,
        );
      }
      if (resumed === undefined) {
        resumed = { head: last, sink: s.name };
        continue;
      }
      // Every record goes to every sink: two files that end at different records (one missed
      // records while it was failed, or holds an older or another chain) cannot both go on. The
      // next record would follow one and break the chain in the other, where verify would call it
      // tampering. An empty file (a new sink, a rotation) has no last line and just goes on.
      const other = resumed.head;
      if (last.seq !== other.seq || last.hash !== other.hash) {
        throw new WardenError(
          'audit_unavailable',
          `audit sinks ${resumed.sink} and ${s.name} end at different records (seq ${other.seq} and seq ${last.seq}${last.seq === other.seq ? ', another hash' : ''}): ` +
            'the next record cannot continue both chains; rename the file that is behind (the sink starts a new file, a segment verified with --from-hash) or remove that sink',
        );
      }
    }
    if (resumed) head = resumed.head;
    ready = true;
  }

  function open(): Promise<void> {
    opening ??= resume().catch((err) => {
      opening = undefined; // let a later call retry (e.g. after an operator fixed the file)
      throw err;
    });
    return opening;
  }

  function linkAndWrite(body: AuditRecordBody, pieces?: StaticRecordText): Promise<AuditRecord> {
    const broken = failing();
    if (exhausted) return Promise.reject(unavailable(exhausted));
    const { record, line } = linkRecordLine(body, head, pieces);
    if (broken) {
      // A failed sink refuses new requests before forward, but a request already in flight when
      // it broke has sent its prompt: its record is linked and kept by the failed sink, written
      // first when it recovers; the caller still gets audit_unavailable. A record no failed sink
      // can keep any more is not linked, so the chain stays whole in every sink.
      // Records of requests that sent nothing (refused meanwhile) leave KEPT_BYTES_FOR_SENT of the
      // room to those whose prompt went upstream, which no refusal may crowd out.
      const room = sentUpstream(body) ? line.length + 1 : line.length + 1 + KEPT_BYTES_FOR_SENT;
      for (const s of sinks) if (s.failure && !s.canKeep?.(room)) return Promise.reject(unavailable(broken));
      advance({ seq: record.seq, hash: record.hash });
      for (const s of sinks) s.write(line).catch(() => undefined);
      // Marked kept (ports.ts auditRecordKept): the pipeline then logs no "could not be written"
      // error for a record that will be written, one line per refused request of an outage.
      return Promise.reject(Object.assign(unavailable(broken), { kept: true }));
    }
    advance({ seq: record.seq, hash: record.hash });
    if (sinks.length === 1) {
      // The usual single sink: one promise reaction instead of a map, an all and a then.
      const sink = sinks[0]!;
      return sink.write(line).then(
        () => record,
        (err: unknown) => Promise.reject(sinkError(sink, err)),
      );
    }
    const writes = sinks.map((s) => s.write(line).catch((err: unknown) => Promise.reject(sinkError(s, err))));
    return Promise.all(writes).then(() => record);
  }

  return {
    get head() {
      return { ...head };
    },
    open,
    available() {
      return failing() === undefined;
    },
    onAvailabilityChange(listener: (available: boolean) => void) {
      availabilityListeners.push(listener);
    },
    async reopen() {
      let firstError: unknown;
      for (const s of sinks) {
        try {
          s.reopen?.();
        } catch (err) {
          firstError ??= err;
        }
      }
      if (firstError !== undefined) throw new WardenError('audit_unavailable', (firstError as Error).message, { cause: firstError });
    },
    append(body: AuditRecordBody, pieces?: readonly string[]): Promise<AuditRecord> {
      const fixed = pieces?.length === 8 ? (pieces as StaticRecordText) : undefined;
      if (ready) return linkAndWrite(body, fixed);
      // Before the chain is resumed, appends wait; promise reactions run in FIFO order, so they
      // still link in the order they were made. An open that fails tells the caller no path.
      return open().then(
        () => linkAndWrite(body, fixed),
        (err: unknown) => Promise.reject(unavailable(err)),
      );
    },
    async flush() {
      for (const s of sinks) {
        try {
          await s.flush();
        } catch (err) {
          throw sinkError(s, err);
        }
      }
    },
    unwritten() {
      const out: UnwrittenRecords[] = [];
      for (const s of sinks) {
        const records = s.unwritten?.() ?? 0;
        if (records > 0) out.push({ sink: s.name, records, first_seq: head.seq - records + 1, last_seq: head.seq });
      }
      return out;
    },
    async close() {
      let firstError: unknown;
      for (const s of sinks) {
        try {
          await s.flush();
        } catch (err) {
          firstError ??= sinkError(s, err);
        }
        try {
          await s.close();
        } catch (err) {
          firstError ??= sinkError(s, err);
        }
      }
      if (firstError) throw firstError;
    },
  };
}
