/**
 * The hash chain: `hash = sha256(prev_hash + canonical JSON of the record without hash)`.
 * `seq` and `prev_hash` are inside the hashed content, so deleting, reordering, inserting or
 * editing any record breaks verification at that record.
 */
import { hash as oneShotHash } from 'node:crypto';
import type { AuditRecord } from '../pipeline/ports.js';
import { canonicalJson, canonicalJsonMerged } from './canonical.js';
import { MAX_RECORD_DEPTH, nestsDeeperThan } from './line-depth.js';
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
    template_revision: b.template_revision,
    decision: b.decision,
    secret_refs: b.secret_refs,
    redaction: b.redaction,
    prompt_hmac: b.prompt_hmac,
    provider: b.provider,
    model: b.model,
    usage: b.usage,
    status: b.status,
    error_code: b.error_code,
    upstream_failure: b.upstream_failure,
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

/**
 * Where a verification starts: genesis (seq 0, 64 zeros), the head a previous segment ended at,
 * or, for a member left out, whatever the first record says (`--continue`: a segment of a rotated
 * file is checked on its own; the caller compares its first link with the previous segment's head).
 */
export interface ChainStart {
  seq?: number | undefined;
  hash?: string | undefined;
}

const HASH_RE = /^[0-9a-f]{64}$/;

/** The reason a line that does not parse is broken for. */
export const NOT_JSON = 'line is not valid JSON';

/** The reason a line nested too deeply to walk is broken for. */
const TOO_DEEP = 'the record nests too deeply to check (no record Warden writes does)';

/** The text a record's line must be, byte for byte: its canonical JSON with `hash` appended last. */
export function canonicalRecordLine(record: Record<string, unknown>): string {
  const text = canonicalJson({ ...record, hash: undefined });
  return `${text.slice(0, -1)},"hash":${JSON.stringify(record.hash)}}`;
}

/**
 * What a record has for `seq`, for a message: a number as it is, anything else by its kind only.
 * The line cannot be trusted: a string or an object there may hold anything (a secret a log line
 * carried, terminal escapes, megabytes), and verify's output never quotes a record's content.
 */
function foundSeq(r: Record<string, unknown>): string {
  if (!('seq' in r)) return 'no seq member';
  const v = r.seq;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return typeof v === 'string' ? 'a string' : Array.isArray(v) ? 'an array' : 'an object';
}

/** Why a record after seq 2^53 - 1 is broken: no number past it counts by one. */
export const SEQ_PAST_SAFE = `seq past ${Number.MAX_SAFE_INTEGER} (2^53 - 1): a chain cannot count further (start a new one)`;

/** Verifies records one at a time (so a large file can be streamed). */
export class ChainVerifier {
  private head: ChainHead;
  private open: { seq: boolean; hash: boolean };
  /** The link the first record was checked against (genesis, the given start, or its own). */
  first: ChainHead | undefined;
  count = 0;

  constructor(start: ChainStart = GENESIS) {
    this.head = { seq: start.seq ?? 0, hash: start.hash ?? GENESIS_HASH };
    this.open = { seq: start.seq === undefined, hash: start.hash === undefined };
  }

  get last(): ChainHead {
    return { ...this.head };
  }

  /** Checks a record given as its line: the record, and that the line is its canonical text. */
  pushLine(line: string): ChainCheck {
    // Refused before it is parsed: a parse would build every level (see line-depth.ts).
    if (nestsDeeperThan(line, MAX_RECORD_DEPTH)) return { ok: false, seq: this.head.seq + 1, reason: TOO_DEEP };
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      return { ok: false, seq: this.head.seq + 1, reason: err instanceof RangeError ? TOO_DEEP : NOT_JSON };
    }
    return this.check(record, line);
  }

  push(record: unknown): ChainCheck {
    return this.check(record, undefined);
  }

  private check(record: unknown, line: string | undefined): ChainCheck {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      return { ok: false, seq: this.head.seq + 1, reason: 'not a JSON object' };
    }
    const r = record as Record<string, unknown>;
    if (this.count === 0) {
      // An unanchored start takes the first record's own link, which must be well formed: there is
      // no previous record to compare it with ("expected seq 1" would name a start nobody gave).
      if (this.open.seq) {
        if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 1) {
          return { ok: false, seq: typeof r.seq === 'number' ? r.seq : this.head.seq + 1, reason: `seq is not a whole number from 1 up (found ${foundSeq(r)})` };
        }
        this.head.seq = r.seq - 1;
      }
      if (this.open.hash) {
        if (typeof r.prev_hash !== 'string' || !HASH_RE.test(r.prev_hash)) return { ok: false, seq: this.head.seq + 1, reason: 'prev_hash is not a hash (64 lowercase hex digits)' };
        this.head.hash = r.prev_hash;
      }
    }
    const expectedSeq = this.head.seq + 1;
    const seq = typeof r.seq === 'number' ? r.seq : expectedSeq;
    // Past 2^53 - 1, seq + 1 rounds (2^53 + 1 is 2^53): every later record could repeat a seq.
    if (!Number.isSafeInteger(expectedSeq)) return { ok: false, seq, reason: SEQ_PAST_SAFE };
    if (r.seq !== expectedSeq) return { ok: false, seq, reason: `expected seq ${expectedSeq}, found ${foundSeq(r)}` };
    if (r.prev_hash !== this.head.hash) return { ok: false, seq, reason: 'prev_hash does not match the previous record' };
    let text: string;
    try {
      text = canonicalJson({ ...r, hash: undefined });
    } catch (err) {
      // Arrays in arrays thousands deep overflow the walk's stack: a broken line, not a read error.
      if (err instanceof RangeError) return { ok: false, seq, reason: TOO_DEEP };
      throw err;
    }
    if (typeof r.hash !== 'string' || r.hash !== oneShotHash('sha256', String(r.prev_hash) + text, 'hex')) {
      return { ok: false, seq, reason: 'hash does not match the record content' };
    }
    // The same record can be written as other text (duplicate members — a parser keeps one of them —,
    // other spacing or member order): only the canonical text is what Warden wrote and hashed.
    if (line !== undefined && line !== `${text.slice(0, -1)},"hash":"${r.hash}"}`) {
      return { ok: false, seq, reason: 'line is not the canonical text of its record (rewritten: duplicate members, spacing or member order)' };
    }
    if (this.count === 0) this.first = { seq: this.head.seq, hash: this.head.hash };
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
