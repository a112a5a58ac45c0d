/**
 * Builds the audit record for one request from its context. What goes in is chosen field by
 * field: names, ids, counts and an HMAC of the outbound prompt. Variable values, secret values,
 * message text and the token never do.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import { outboundJson, outboundText } from '../pipeline/canonical-json.js';
import { mostRecentApproval } from '../pipeline/approvals.js';
import { boundedStrings, MAX_REASONS_CHARS } from '../pipeline/bounded-strings.js';
import { isoTime } from '../pipeline/clock.js';
import { upstreamFailureOf } from '../pipeline/upstream-failure.js';
import type { RequestContext } from '../pipeline/stage.js';
import { canonicalJson } from './canonical.js';
import type { PromptHmac } from './prompt-hmac.js';
import type { AuditRecordBody } from './chain.js';
import { staticRecordText, type FinalRecordMembers, type StaticRecordText } from './record-text.js';

export interface AuditRecordOptions {
  /** HMAC key for `prompt_hmac` (from config; lets an investigator confirm a prompt without storing it). */
  hmacKey: string | Buffer | KeyObject;
  /** The same key's prompt HMAC with prefix states kept across requests (the audit stage's). */
  promptHmac?: PromptHmac;
  environment: string;
  /** The current policy set's revision: recorded only when the context names none (no decide ran). */
  policyRevision: string;
  /** The current template set's revision: recorded only when the context names none (no template was resolved). */
  templateRevision?: string | null;
  /**
   * Whether a model name is one of the configured `models`. Any other name is the caller's data
   * (it may hold anything) and is recorded as null; the error code says why the request failed.
   */
  configuredModel: (model: string) => boolean;
  /** Epoch ms; injectable for tests. */
  now?: number;
}

export function promptHmac(key: string | Buffer | KeyObject, outbound: unknown): string {
  return createHmac('sha256', key).update(canonicalJson(outbound)).digest('hex');
}

/**
 * The HMAC of the text the forward stage sent (`outboundJson`, memoised on the context: not a
 * second serialisation), or null when nothing was rendered. For a forwarded request it is made
 * once, by the draft the audit stage's `prepare` writes while the upstream call is in flight.
 */
function outboundHmac(ctx: RequestContext, opts: AuditRecordOptions): string | null {
  const text = outboundText(ctx);
  if (text === undefined) return null;
  return opts.promptHmac ? opts.promptHmac.digest(text.json, text.prefix) : createHmac('sha256', opts.hmacKey).update(text.json).digest('hex');
}

/**
 * Latency from `receivedAt`, which ingress stamps as `performance.timeOrigin + performance.now()`
 * (epoch-sized, on the monotonic clock). The end is read from the same clock: `Date.now()` drifts
 * from it by milliseconds, enough to turn a sub-millisecond request into 0. A process-relative
 * stamp (plain `performance.now()`, < 1e11) is compared with `performance.now()`.
 */
function latencyMs(receivedAt: number): number {
  const end = receivedAt > 1e11 ? performance.timeOrigin + performance.now() : performance.now();
  return Math.max(0, Math.round((end - receivedAt) * 1000) / 1000);
}

/** Who asked: kind and subject, plus namespace and service account when the principal has them. */
function principalOf(p: NonNullable<RequestContext['principal']>): NonNullable<AuditRecordBody['principal']> {
  const out: NonNullable<AuditRecordBody['principal']> = { kind: p.kind, subject: p.subject };
  if (p.namespace !== undefined) out.namespace = p.namespace;
  if (p.service_account !== undefined) out.service_account = p.service_account;
  return out;
}

/** The redaction counts, or null (also when the redactor fails: that must not lose the record too). */
function redactionOf(ctx: RequestContext): AuditRecordBody['redaction'] {
  if (!ctx.redaction) return null;
  try {
    const r = ctx.redaction.report();
    // report() hands out fresh copies: kept as they are, not copied a second time.
    return {
      counts: r.counts,
      response_counts: r.responseCounts,
      non_text_parts: r.nonTextParts,
      leaks: r.leaks,
      detector_failures: r.detectorFailures,
    };
  } catch {
    return null;
  }
}

function usageOf(ctx: RequestContext): AuditRecordBody['usage'] {
  const u = ctx.usage;
  return u ? { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens } : null;
}

/**
 * The template member: id, version and sensitivity, plus the names of the call's variables when
 * the decision asked for them (`audit.log_variables_names`). Names only: a variable name is an
 * identifier (the ingress refuses any other), a value is the caller's data and never recorded.
 * Sorted, so a record does not depend on the order the caller wrote them in.
 */
function templateOf(ctx: RequestContext): AuditRecordBody['template'] {
  const t = ctx.template;
  if (!t) {
    // Refused at resolve: what was asked for (sensitivity null when no such template exists).
    const r = ctx.refusedTemplate;
    return r ? { id: r.id, version: r.version, sensitivity: r.template?.sensitivity ?? null } : null;
  }
  if (ctx.decision?.allow !== true || ctx.decision.audit.log_variables_names !== true) return { id: t.id, version: t.version, sensitivity: t.sensitivity };
  return { id: t.id, version: t.version, sensitivity: t.sensitivity, variables: Object.keys(ctx.request.variables).sort() };
}

/** The most reason text (UTF-16 units) one record keeps (the bound an HTTP error's reasons have too). */
export const MAX_RECORDED_REASONS_CHARS = MAX_REASONS_CHARS;

/**
 * A copy of the decision's reasons, bounded: a rule that makes one reason per entry of a large
 * data list could make a record larger than MAX_AUDIT_LINE_BYTES (16 MiB), which `warden audit
 * verify` calls broken and from which Warden refuses to resume at its next start.
 */
function recordedReasons(reasons: readonly string[]): string[] {
  const kept = boundedStrings(reasons, MAX_RECORDED_REASONS_CHARS, (rest) => `(${rest} more reason(s) not recorded: a record keeps ${MAX_RECORDED_REASONS_CHARS} characters of reasons)`);
  return kept.slice();
}

/**
 * The members the rest of a request cannot change once its prompt has gone upstream: who, what,
 * which decision and secrets, the prompt HMAC, the provider and the policy revision.
 */
function finalMembers(ctx: RequestContext, opts: AuditRecordOptions): FinalRecordMembers {
  const req = ctx.request;
  const p = ctx.principal;
  const t = ctx.template ?? ctx.refusedTemplate?.template;
  const approval = ctx.policyInput?.template?.approval ?? (t ? mostRecentApproval(t.approvals) : null);
  return {
    request_id: req.id,
    trace_id: ctx.trace.traceId,
    span_id: ctx.trace.spanId,
    decision_id: ctx.decision?.id ?? null,
    principal: p ? principalOf(p) : null,
    action: req.action,
    template: templateOf(ctx),
    approval: approval?.ticket ?? null,
    environment: opts.environment,
    // The set that decided; the current one (opts) only for a request that never reached decide.
    policy_revision: ctx.policyRevision ?? opts.policyRevision,
    // The set the template was resolved in, likewise.
    template_revision: ctx.templateRevision ?? opts.templateRevision ?? null,
    decision: ctx.decision ? { allow: ctx.decision.allow, reasons: recordedReasons(ctx.decision.reasons) } : null,
    secret_refs: ctx.secrets ? [...ctx.secrets.keys()] : [],
    prompt_hmac: outboundHmac(ctx, opts),
    provider: ctx.provider ?? null,
    model: req.model !== '' && opts.configuredModel(req.model) ? req.model : null,
    stream: req.stream,
  };
}

/**
 * The record body from its final members and the outcome as it is now. One object literal, so
 * every record has the same shape (a copy-then-patch would cost V8 a slow object per record).
 */
function recordBody(m: FinalRecordMembers, ctx: RequestContext, now: number): AuditRecordBody {
  return {
    time: isoTime(now),
    request_id: m.request_id,
    trace_id: m.trace_id,
    span_id: m.span_id,
    decision_id: m.decision_id,
    principal: m.principal,
    action: m.action,
    template: m.template,
    approval: m.approval,
    environment: m.environment,
    policy_revision: m.policy_revision,
    template_revision: m.template_revision,
    decision: m.decision,
    secret_refs: m.secret_refs,
    redaction: redactionOf(ctx),
    prompt_hmac: m.prompt_hmac,
    provider: m.provider,
    model: m.model,
    usage: usageOf(ctx),
    status: ctx.error ? 'error' : 'ok',
    error_code: ctx.error?.code ?? null,
    upstream_failure: upstreamFailureOf(ctx.error),
    latency_ms: latencyMs(ctx.request.receivedAt),
    stream: m.stream,
  };
}

export function buildAuditRecord(ctx: RequestContext, opts: AuditRecordOptions): AuditRecordBody {
  return recordBody(finalMembers(ctx, opts), ctx, opts.now ?? Date.now());
}

/**
 * A record drafted while the upstream call is in flight: its final members, already written as
 * the fixed pieces of its canonical text (record-text.ts). After the answer, `finishAuditRecord`
 * adds the outcome (time, latency, status, error code, redaction counts, usage), and linking adds
 * seq and prev_hash between the pieces.
 */
export interface AuditDraft {
  readonly members: FinalRecordMembers;
  readonly pieces: StaticRecordText;
  /** The outbound text its prompt HMAC was made from. */
  readonly outbound: string | undefined;
}

/** The draft of `ctx`'s record, or undefined when it is not of the documented shape. */
export function draftAuditRecord(ctx: RequestContext, opts: AuditRecordOptions): AuditDraft | undefined {
  const members = finalMembers(ctx, opts);
  const pieces = staticRecordText(members);
  return pieces && { members, pieces, outbound: outboundJson(ctx) };
}

/**
 * The record body and its text pieces: the draft's final members with the outcome as it is now.
 * Undefined when the outbound prompt is no longer the one the draft's HMAC covers (then build the
 * record anew).
 */
export function finishAuditRecord(draft: AuditDraft, ctx: RequestContext, now: number): AuditRecordBody | undefined {
  // Normally the very same string: a pointer comparison.
  if (outboundJson(ctx) !== draft.outbound) return undefined;
  return recordBody(draft.members, ctx, now);
}
