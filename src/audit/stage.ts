/**
 * Stage 9, audit: one record per request, written whatever happened before (the pipeline calls
 * `auditRequest` in `finally`; for streams, after the last chunk). A context is audited once even
 * if both the stage and the pipeline's `finally` reach it.
 */
import { createSecretKey } from 'node:crypto';
import type { AuditLog, AuditRecord } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import { buildAuditRecord, outboundHmac } from './record.js';

export interface AuditStageOptions {
  log: AuditLog;
  hmacKey: string | Buffer;
  environment: string;
  /** Read per request: the policy may be hot-reloaded. */
  getPolicyRevision: () => string;
  now?: () => number;
}

export interface AuditStage extends Stage {
  /** Builds and appends the record for `ctx`. Throws WardenError('audit_unavailable'). */
  auditRequest(ctx: RequestContext): Promise<AuditRecord | undefined>;
}

export function createAuditStage(opts: AuditStageOptions): AuditStage {
  if (opts.hmacKey === undefined || opts.hmacKey.length < 16) throw new Error('audit: hmac key must be at least 16 bytes');
  // Imported once: HMAC with a KeyObject skips re-reading the key on every request.
  const hmacKey = createSecretKey(typeof opts.hmacKey === 'string' ? Buffer.from(opts.hmacKey, 'utf8') : opts.hmacKey);
  const audited = new WeakSet<RequestContext>();
  const now = opts.now ?? Date.now;
  // Not async: the append's own promise goes back to the caller, without another promise around it.
  function auditRequest(ctx: RequestContext): Promise<AuditRecord | undefined> {
    if (audited.has(ctx)) return Promise.resolve(undefined);
    audited.add(ctx);
    let body;
    try {
      body = buildAuditRecord(ctx, {
        hmacKey,
        environment: opts.environment,
        policyRevision: opts.getPolicyRevision(),
        now: now(),
      });
    } catch (err) {
      return Promise.reject(err);
    }
    return opts.log.append(body);
  }
  return {
    name: 'audit',
    auditRequest,
    run(ctx: RequestContext) {
      return auditRequest(ctx) as Promise<unknown> as Promise<void>;
    },
    prepare(ctx: RequestContext) {
      // The prompt's HMAC, while the upstream call is in flight (the pipeline calls this then).
      if (!audited.has(ctx)) outboundHmac(ctx, hmacKey);
    },
  };
}
