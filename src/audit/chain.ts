/**
 * The hash chain: `hash = sha256(prev_hash + canonical JSON of the record without hash)`.
 * `seq` and `prev_hash` are inside the hashed content, so deleting, reordering, inserting or
 * editing any record breaks verification at that record.
 */
import { hash as oneShotHash } from 'node:crypto';
import type { AuditRecord } from '../pipeline/ports.js';
import { canonicalJson, canonicalJsonMerged } from './canonical.js';
import { canonicalRecordText, type StaticRecordText } from './record-text.js';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditRecordBody = Omit<AuditRecord, 'seq' | 'prev_hash' | 'hash'>;

export interface ChainHead {
  seq: number;
  hash: string;
}

export const GENESIS: ChainHead = Object.freeze({ seq: 0, hash: GENESIS_HASH });

/** The record's hash; a `hash` member, if present, is not part of the hashed content. */
export function computeRecordHash(record: Omit<AuditRecord, 'hash'> | Record<string, unknown>): string {
  const r = record as Record<string, unknown>;
  const content = 'hash' in r ? { ...r, hash: undefined } : r; // canonicalJson drops undefined members
  // One-shot hashing: no Hash object per record on the hot path.
  return oneShotHash('sha256', String(r.prev_hash) + canonicalJson(content), 'hex');
}

/** Links a record body to the chain after `head`. */
export function linkRecord(body: AuditRecordBody, head: ChainHead): AuditRecord {
  return linkRecordLine(body, head).record;
}

/**
 * Links a record and also returns its JSON line. The line is the record's canonical text (the
 * hashed content, members sorted) with `hash` appended as the last member, so one serialisation
 * serves both the hash and the write; `JSON.parse(line)` equals the record.
 */
export function linkRecordLine(body: AuditRecordBody, head: ChainHead, pieces?: StaticRecordText): { record: AuditRecord; line: string } {
  const seq = head.seq + 1;
  const prev = head.hash;
  const b = body as unknown as Record<string, unknown>;
  // Not the documented shape: the generic walk writes the same canonical text, only slower. A
  // stray `hash` member in the body is dropped (undefined), never hashed: `hash` is added below.
  const documented = canonicalRecordText(body, seq, prev, pieces);
  const text = documented ?? canonicalJsonMerged(b, { seq, prev_hash: prev, hash: undefined });
  // The slice comes first: it flattens the text (a rope of dozens of pieces) in place, once. The
  // hash of `prev + text` would otherwise copy the rope out without flattening it, and the slice
  // after it walk the whole rope a second time (~2 µs per record in a microbenchmark).
  const open = text.slice(0, -1);
  const hash = oneShotHash('sha256', prev + text, 'hex');
  const record = documented === undefined ? recordOf(b, seq, prev, hash) : documentedRecord(body, seq, prev, hash);
  return { record, line: `${open},"hash":"${hash}"}` };
}

/**
 * The record of a body with exactly the documented members (its canonical text was written by
 * hand): one object literal, the same shape every time, with no per-member keyed copies.
 */
function documentedRecord(b: AuditRecordBody, seq: number, prev: string, hash: string): AuditRecord {
  return {
    time: b.time,
    request_id: b.request_id,
    trace_id: b.trace_id,
    span_id: b.span_id,
    decision_id: b.decision_id,
    principal: b.principal,
    action: b.action,
    template: b.template,
    approval: b.approval,
    environment: b.environment,
    policy_revision: b.policy_revision,
    decision: b.decision,
    secret_refs: b.secret_refs,
    redaction: b.redaction,
    prompt_hmac: b.prompt_hmac,
    provider: b.provider,
    model: b.model,
    usage: b.usage,
    status: b.status,
    error_code: b.error_code,
    latency_ms: b.latency_ms,
    stream: b.stream,
    seq,
    prev_hash: prev,
    hash,
  };
}

/**
 * The record object: the body's members, then seq, prev_hash and hash. Not `Object.assign({}, …)`
 * nor a spread followed by members: the first turns a record-sized object into a dictionary
 * (~3 KB per request, a quarter of the audit's allocation), the second is slow (~5 us). A blank
 * with the record's members (JSON.parse gives it fast properties) is kept for the last body
 * layout seen; each record fills a copy of it.
 */
let recordLayout: { keys: string[]; blank: Record<string, unknown> } | undefined;

function recordOf(body: Record<string, unknown>, seq: number, prev: string, hash: string): AuditRecord {
  const keys = Object.keys(body);
  let layout = recordLayout;
  if (!layout || !sameKeys(layout.keys, keys)) {
    if (keys.some((k) => k === '__proto__' || (k.length > 0 && k.charCodeAt(0) >= 48 && k.charCodeAt(0) <= 57))) {
      // Keys V8 would enumerate out of insertion order: no layout, the plain copy.
      return Object.assign({}, body, { seq, prev_hash: prev, hash }) as unknown as AuditRecord;
    }
    const all = keys.concat(['seq', 'prev_hash', 'hash']);
    layout = { keys, blank: JSON.parse(`{${all.map((k) => `${JSON.stringify(k)}:null`).join(',')}}`) as Record<string, unknown> };
    recordLayout = layout;
  }
  const record = { ...layout.blank };
  for (const k of keys) record[k] = body[k];
  record.seq = seq;
  record.prev_hash = prev;
  record.hash = hash;
  return record as unknown as AuditRecord;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export type ChainCheck = { ok: true } | { ok: false; seq: number; reason: string };

/** Verifies records one at a time (so a large file can be streamed). */
export class ChainVerifier {
  private head: ChainHead;
  count = 0;

  constructor(start: ChainHead = GENESIS) {
    this.head = { ...start };
  }

  get last(): ChainHead {
    return { ...this.head };
  }

  push(record: unknown): ChainCheck {
    const expectedSeq = this.head.seq + 1;
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      return { ok: false, seq: expectedSeq, reason: 'not a JSON object' };
    }
    const r = record as Record<string, unknown>;
    const seq = typeof r.seq === 'number' ? r.seq : expectedSeq;
    if (r.seq !== expectedSeq) return { ok: false, seq, reason: `expected seq ${expectedSeq}, found ${JSON.stringify(r.seq)}` };
    if (r.prev_hash !== this.head.hash) return { ok: false, seq, reason: 'prev_hash does not match the previous record' };
    if (typeof r.hash !== 'string' || r.hash !== computeRecordHash(r)) return { ok: false, seq, reason: 'hash does not match the record content' };
    this.head = { seq, hash: r.hash };
    this.count++;
    return { ok: true };
  }
}

export type ChainVerification =
  | { ok: true; count: number; head: ChainHead }
  | { ok: false; count: number; seq: number; index: number; reason: string };

/** Verifies a whole chain from genesis (or `start`). Reports the first broken record's seq. */
export function verifyChain(records: readonly unknown[], start?: ChainHead): ChainVerification {
  const v = new ChainVerifier(start);
  for (let i = 0; i < records.length; i++) {
    const c = v.push(records[i]);
    if (!c.ok) return { ok: false, count: v.count, seq: c.seq, index: i, reason: c.reason };
  }
  return { ok: true, count: v.count, head: v.last };
}
