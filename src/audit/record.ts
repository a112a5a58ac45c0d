/**
 * Builds the audit record for one request from its context. What goes in is chosen field by
 * field: names, ids, counts and an HMAC of the outbound prompt. Variable values, secret values,
 * message text and the token never do.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import { outboundJson } from '../pipeline/canonical-json.js';
import type { RequestContext } from '../pipeline/stage.js';
import type { Approval } from '../pipeline/types.js';
import { canonicalJson } from './canonical.js';
import type { AuditRecordBody } from './chain.js';

export interface AuditRecordOptions {
  /** HMAC key for `prompt_hmac` (from config; lets an investigator confirm a prompt without storing it). */
  hmacKey: string | Buffer | KeyObject;
  environment: string;
  policyRevision: string;
  /** Epoch ms; injectable for tests. */
  now?: number;
}

/** The most recent approval (by `at`, else the last listed). */
export function latestApproval(approvals: readonly Approval[]): Approval | null {
  let best: Approval | null = null;
  for (const a of approvals) {
    if (!best || (a.at ?? '') >= (best.at ?? '')) best = a;
  }
  return best;
}

export function promptHmac(key: string | Buffer | KeyObject, outbound: unknown): string {
  return createHmac('sha256', key).update(canonicalJson(outbound)).digest('hex');
}

/**
 * The HMAC of the text the forward stage sent (`outboundJson`, memoised on the context), or null
 * when nothing was rendered. Made at most once per request: the audit stage's `prepare` computes
 * it while the upstream call is in flight, and the record reuses it when it was made from this
 * very text.
 */
export function outboundHmac(ctx: RequestContext, key: string | Buffer | KeyObject): string | null {
  const json = outboundJson(ctx);
  if (json === undefined) return null;
  const memo = ctx.promptHmac;
  if (memo && memo.of === json) return memo.hex;
  const hex = createHmac('sha256', key).update(json).digest('hex');
  ctx.promptHmac = { of: json, hex };
  return hex;
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

export function buildAuditRecord(ctx: RequestContext, opts: AuditRecordOptions): AuditRecordBody {
  const now = opts.now ?? Date.now();
  const req = ctx.request;
  const p = ctx.principal;
  const t = ctx.template;
  let redaction: AuditRecordBody['redaction'] = null;
  if (ctx.redaction) {
    try {
      const r = ctx.redaction.report();
      redaction = { counts: { ...r.counts }, response_counts: { ...r.responseCounts }, non_text_parts: r.nonTextParts, leaks: r.leaks };
    } catch {
      redaction = null; // a broken redactor must not also lose the audit record
    }
  }
  const approval = ctx.policyInput?.template?.approval ?? (t ? latestApproval(t.approvals) : null);
  return {
    time: new Date(now).toISOString(),
    request_id: req.id,
    trace_id: ctx.trace.traceId,
    span_id: ctx.trace.spanId,
    decision_id: ctx.decision?.id ?? null,
    principal: p ? principalOf(p) : null,
    action: req.action,
    template: t ? { id: t.id, version: t.version, sensitivity: t.sensitivity } : null,
    approval: approval?.ticket ?? null,
    environment: opts.environment,
    policy_revision: opts.policyRevision,
    decision: ctx.decision ? { allow: ctx.decision.allow, reasons: ctx.decision.reasons.slice() } : null,
    secret_refs: ctx.secrets ? [...ctx.secrets.keys()] : [],
    redaction,
    // The text the forward stage sent (memoised on the context), not a second serialisation.
    prompt_hmac: outboundHmac(ctx, opts.hmacKey),
    provider: ctx.provider ?? null,
    model: req.model || null,
    usage: ctx.usage
      ? { prompt_tokens: ctx.usage.prompt_tokens, completion_tokens: ctx.usage.completion_tokens, total_tokens: ctx.usage.total_tokens }
      : null,
    status: ctx.error ? 'error' : 'ok',
    error_code: ctx.error?.code ?? null,
    latency_ms: latencyMs(req.receivedAt),
    stream: req.stream,
  };
}
