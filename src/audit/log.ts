/**
 * The audit log: links each record into the hash chain and writes it to every sink. Linking is
 * synchronous (seq assignment, hash and the write calls happen in one turn of the event loop), so
 * concurrent appends can never interleave or fork the chain, and no lock is needed on the hot path.
 * On start it resumes the chain from the last record of a file sink.
 */
import { WardenError } from '../pipeline/errors.js';
import type { AuditLog, AuditRecord } from '../pipeline/ports.js';
import { computeRecordHash, GENESIS, linkRecordLine, type AuditRecordBody, type ChainHead } from './chain.js';
import type { StaticRecordText } from './record-text.js';
import type { AuditSink } from './sinks.js';

export interface AuditLogOptions {
  sinks: AuditSink[];
}

export interface AuditLogHandle extends AuditLog {
  /** Resumes the chain from existing sinks. Called by `append` on first use; call it at startup to fail early. */
  open(): Promise<void>;
  /** The last linked record's seq and hash. */
  readonly head: ChainHead;
  /** Flushes and closes every sink (on shutdown). */
  close(): Promise<void>;
}

function sinkError(sink: AuditSink, err: unknown): WardenError {
  const code = (err as NodeJS.ErrnoException)?.code;
  return new WardenError('audit_unavailable', `audit sink ${sink.name} failed${code ? ` (${code})` : ''}`, { details: { sink: sink.name } });
}

export function createAuditLog(opts: AuditLogOptions): AuditLogHandle {
  const sinks = opts.sinks.slice();
  if (sinks.length === 0) throw new Error('audit: at least one sink is required');
  let head: ChainHead = GENESIS;
  let opening: Promise<void> | undefined;
  let ready = false;

  async function resume(): Promise<void> {
    let best: ChainHead | undefined;
    for (const s of sinks) {
      if (!s.lastLine) continue;
      let line: string | undefined;
      try {
        line = await s.lastLine();
      } catch (err) {
        throw sinkError(s, err);
      }
      if (line === undefined) continue;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // A torn last line (crash mid-write) must be looked at by a human, not papered over.
        throw new WardenError('audit_unavailable', `audit sink ${s.name}: last line is not valid JSON; cannot resume the hash chain (run "warden audit verify")`);
      }
      if (typeof rec.seq !== 'number' || typeof rec.hash !== 'string' || rec.hash !== computeRecordHash(rec)) {
        throw new WardenError('audit_unavailable', `audit sink ${s.name}: last record does not verify; cannot resume the hash chain (run "warden audit verify")`);
      }
      if (!best || rec.seq > best.seq) best = { seq: rec.seq, hash: rec.hash };
    }
    if (best) head = best;
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
    const { record, line } = linkRecordLine(body, head, pieces);
    head = { seq: record.seq, hash: record.hash };
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
    append(body: AuditRecordBody, pieces?: readonly string[]): Promise<AuditRecord> {
      const fixed = pieces?.length === 8 ? (pieces as StaticRecordText) : undefined;
      if (ready) return linkAndWrite(body, fixed);
      // Before the chain is resumed, appends wait; promise reactions run in FIFO order, so they
      // still link in the order they were made.
      return open().then(() => linkAndWrite(body, fixed));
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
    async close() {
      let first: unknown;
      for (const s of sinks) {
        try {
          await s.flush();
          await s.close();
        } catch (err) {
          first ??= sinkError(s, err);
        }
      }
      if (first) throw first;
    },
  };
}
