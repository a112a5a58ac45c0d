/**
 * The canonical JSON of one audit record (its body plus `seq` and `prev_hash`), written by hand
 * for the record's known shape: the members in sorted order, straight into one string.
 *
 * Why: every request hashes its record, and the generic canonical walk (sorted copies of every
 * nested object, then JSON.stringify) was the largest single cost of the audit stage. This writer
 * produces exactly the same text (test/audit/record-text.test.ts compares it with the reference
 * walk on generated records), so verification, the README's formula and existing files are
 * unchanged. Anything that does not have the documented shape (an extra member, an undefined
 * value, a wrong type) returns undefined, and the caller falls back to the generic walk.
 */
import type { AuditRecordBody } from './chain.js';

const str = JSON.stringify;

/** Members of a record body; the writer refuses any other. */
const BODY_KEYS = new Set([
  'action', 'approval', 'decision', 'decision_id', 'environment', 'error_code', 'latency_ms', 'model', 'policy_revision',
  'principal', 'prompt_hmac', 'provider', 'redaction', 'request_id', 'secret_refs', 'span_id', 'status', 'stream', 'template',
  'template_revision', 'time', 'trace_id', 'upstream_failure', 'usage',
]);

/** Thrown inside the writer when a value is not of the documented shape; never escapes. */
const NOT_CANONICAL = new Error('not the documented audit record shape');

/**
 * Printable ASCII other than `"` and `\`: JSON writes such a string as is, between quotes. Most
 * of a record's strings are ids, hex digests, names and timestamps, and this test is about half
 * the cost of a JSON.stringify call.
 */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function s(v: unknown): string {
  if (typeof v !== 'string') throw NOT_CANONICAL;
  return PLAIN.test(v) ? `"${v}"` : str(v);
}

function sOrNull(v: unknown): string {
  return v === null ? 'null' : s(v);
}

function n(v: unknown): string {
  // Finite numbers print the same with String() as with JSON.stringify (-0 included).
  if (typeof v !== 'number' || !Number.isFinite(v)) throw NOT_CANONICAL;
  return String(v);
}

/**
 * `latency_ms`, which record.ts rounds to whole µs (thousandths of a ms), as n() writes it. Such a
 * number is the double nearest a decimal of at most three places, and for one under 10^9 ms its
 * shortest round-trip digits, which String() writes, are that decimal's: written here from the
 * integer count of µs. A double's conversion to text (~0.5–1 µs from cold caches) was the largest
 * part of writing a record's dynamic members. Anything else goes to n().
 */
function millis(v: unknown): string {
  if (typeof v !== 'number') return n(v);
  const us = Math.round(v * 1000);
  if (!(us >= 0 && us < 1e12 && us / 1000 === v)) return n(v);
  const whole = Math.floor(us / 1000);
  let frac = us - whole * 1000;
  if (frac === 0) return String(whole);
  let places = 3;
  while (frac % 10 === 0) {
    frac /= 10;
    places--;
  }
  return `${whole}.${String(frac).padStart(places, '0')}`;
}

function b(v: unknown): string {
  if (typeof v !== 'boolean') throw NOT_CANONICAL;
  return v ? 'true' : 'false';
}

function strings(v: unknown): string {
  if (!Array.isArray(v)) throw NOT_CANONICAL;
  let out = '[';
  for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + s(v[i]);
  return `${out}]`;
}

/** A map of counts (entity → number), keys sorted as canonical JSON sorts them. */
function counts(v: unknown): string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw NOT_CANONICAL;
  const keys = Object.keys(v).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    out += `${i === 0 ? '' : ','}${str(k)}:${n((v as Record<string, unknown>)[k])}`;
  }
  return `${out}}`;
}

/** Checks that `v` is a plain object whose own keys are all in `allowed` (optional ones may be absent). */
function shaped(v: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw NOT_CANONICAL;
  for (const k in v) if (!allowed.includes(k)) throw NOT_CANONICAL;
  return v as Record<string, unknown>;
}

function principal(v: unknown): string {
  if (v === null) return 'null';
  const p = shaped(v, ['kind', 'namespace', 'service_account', 'subject']);
  let out = `{"kind":${s(p.kind)}`;
  if (p.namespace !== undefined) out += `,"namespace":${s(p.namespace)}`;
  if (p.service_account !== undefined) out += `,"service_account":${s(p.service_account)}`;
  return `${out},"subject":${s(p.subject)}}`;
}

function decision(v: unknown): string {
  if (v === null) return 'null';
  const d = shaped(v, ['allow', 'reasons']);
  return `{"allow":${b(d.allow)},"reasons":${strings(d.reasons)}}`;
}

function redaction(v: unknown): string {
  if (v === null) return 'null';
  const r = shaped(v, ['counts', 'detector_failures', 'leaks', 'non_text_parts', 'response_counts']);
  return `{"counts":${counts(r.counts)},"detector_failures":${n(r.detector_failures)},"leaks":${n(r.leaks)},"non_text_parts":${n(r.non_text_parts)},"response_counts":${counts(r.response_counts)}}`;
}

function template(v: unknown): string {
  if (v === null) return 'null';
  const t = shaped(v, ['id', 'sensitivity', 'variables', 'version']);
  // `variables` is there only when the decision asked for variable names (sorted: after sensitivity).
  const variables = t.variables === undefined ? '' : `,"variables":${strings(t.variables)}`;
  // `sensitivity` null for a template_not_found refusal (a known id, a version it does not have).
  return `{"id":${s(t.id)},"sensitivity":${sOrNull(t.sensitivity)}${variables},"version":${t.version === null ? 'null' : n(t.version)}}`;
}

/** What the upstream did when the call failed (pipeline/upstream-failure.ts): a kind, a timeout's phase and a status. */
function upstreamFailure(v: unknown): string {
  if (v === null) return 'null';
  const u = shaped(v, ['kind', 'phase', 'status']);
  return `{"kind":${s(u.kind)},"phase":${sOrNull(u.phase)},"status":${u.status === null ? 'null' : n(u.status)}}`;
}

function usage(v: unknown): string {
  if (v === null) return 'null';
  const u = shaped(v, ['completion_tokens', 'prompt_tokens', 'total_tokens']);
  return `{"completion_tokens":${n(u.completion_tokens)},"prompt_tokens":${n(u.prompt_tokens)},"total_tokens":${n(u.total_tokens)}}`;
}

/**
 * A record's canonical text cut around the members known only when the request ends (`error_code`,
 * `latency_ms`, `redaction`, `status`, `time`, `upstream_failure`, `usage`) or when it is linked
 * (`prev_hash`, `seq`):
 * eight fixed pieces, the text between those members, in order. The audit stage writes them while
 * the upstream call is in flight (its `prepare`), so after the answer only the short dynamic
 * members are written.
 */
export type StaticRecordText = readonly [string, string, string, string, string, string, string, string];

/** True when `body` has exactly the documented members (values are checked as they are written). */
function documentedMembers(r: Record<string, unknown>): boolean {
  let members = 0;
  for (const k in r) {
    if (!BODY_KEYS.has(k)) return false;
    members++;
  }
  return members === BODY_KEYS.size;
}

/** The members the fixed pieces are written from: all but the outcome (and seq, prev_hash). */
export type FinalRecordMembers = Omit<AuditRecordBody, 'time' | 'redaction' | 'usage' | 'status' | 'error_code' | 'upstream_failure' | 'latency_ms'>;

/**
 * The fixed pieces of a record's canonical text, from its final members (a whole body will do),
 * or undefined when one is not of the documented shape. Members are checked as they are written;
 * whether the body has exactly the documented members is checked when it is linked.
 */
export function staticRecordText(members: FinalRecordMembers): StaticRecordText | undefined {
  const r = members as unknown as Record<string, unknown>;
  try {
    return [
      `{"action":${s(r.action)},"approval":${sOrNull(r.approval)},"decision":${decision(r.decision)}` +
        `,"decision_id":${sOrNull(r.decision_id)},"environment":${s(r.environment)},"error_code":`,
      ',"latency_ms":',
      `,"model":${sOrNull(r.model)},"policy_revision":${s(r.policy_revision)},"prev_hash":`,
      `,"principal":${principal(r.principal)},"prompt_hmac":${sOrNull(r.prompt_hmac)},"provider":${sOrNull(r.provider)},"redaction":`,
      `,"request_id":${s(r.request_id)},"secret_refs":${strings(r.secret_refs)},"seq":`,
      `,"span_id":${s(r.span_id)},"status":`,
      `,"stream":${b(r.stream)},"template":${template(r.template)},"template_revision":${sOrNull(r.template_revision)},"time":`,
      `,"trace_id":${s(r.trace_id)},"upstream_failure":`,
    ];
  } catch (err) {
    if (err === NOT_CANONICAL) return undefined;
    throw err;
  }
}

/**
 * The canonical text from the fixed pieces and the body's dynamic members, or undefined when a
 * dynamic member is not of the documented shape. The caller vouches that `pieces` were made from
 * this body's static members.
 */
export function recordTextFrom(pieces: StaticRecordText, body: AuditRecordBody, seq: number, prevHash: string): string | undefined {
  const r = body as unknown as Record<string, unknown>;
  try {
    return (
      `${pieces[0]}${sOrNull(r.error_code)}${pieces[1]}${millis(r.latency_ms)}${pieces[2]}${s(prevHash)}` +
      `${pieces[3]}${redaction(r.redaction)}${pieces[4]}${n(seq)}${pieces[5]}${s(r.status)}` +
      `${pieces[6]}${s(r.time)}${pieces[7]}${upstreamFailure(r.upstream_failure)},"usage":${usage(r.usage)}}`
    );
  } catch (err) {
    if (err === NOT_CANONICAL) return undefined;
    throw err;
  }
}

/**
 * Canonical JSON of `{ ...body, seq, prev_hash }`, or undefined when the body is not of the
 * documented shape (the caller then uses the generic walk, which handles anything). `pieces`, when
 * given, are the body's fixed pieces written earlier (the caller vouches that they were made from
 * this body's final members); the body's members are checked all the same.
 */
export function canonicalRecordText(body: AuditRecordBody, seq: number, prevHash: string, pieces?: StaticRecordText): string | undefined {
  if (!documentedMembers(body as unknown as Record<string, unknown>)) return undefined;
  const fixed = pieces ?? staticRecordText(body);
  return fixed && recordTextFrom(fixed, body, seq, prevHash);
}
