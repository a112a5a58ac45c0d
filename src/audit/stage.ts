/**
 * Stage 9, audit: one record per request, written whatever happened before (the pipeline calls
 * `auditRequest` in `finally`; for streams, after the last chunk). A context is audited once even
 * if both the stage and the pipeline's `finally` reach it.
 */
import { createSecretKey } from 'node:crypto';
import type { AuditLog, AuditRecord } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import { PromptHmac } from './prompt-hmac.js';
import { buildAuditRecord, draftAuditRecord, finishAuditRecord, type AuditDraft } from './record.js';

export interface AuditStageOptions {
  log: AuditLog;
  hmacKey: string | Buffer;
  environment: string;
  /**
   * The current policy set's revision, for a request that ended before decide (the record names
   * the deciding set's revision, ctx.policyRevision, when there is one). Read per request.
   */
  getPolicyRevision: () => string;
  /**
   * The current template set's revision, for a request that resolved no template (the record
   * names the resolving set's, ctx.templateRevision, when there is one). Read per request;
   * without it such a record has `template_revision: null`.
   */
  getTemplateRevision?: () => string;
  /** Whether a model name is configured: only those are recorded (see AuditRecordOptions). */
  configuredModel: (model: string) => boolean;
  now?: () => number;
}

export interface AuditStage extends Stage {
  /** Builds and appends the record for `ctx`. Throws WardenError('audit_unavailable'). */
  auditRequest(ctx: RequestContext): Promise<AuditRecord | undefined>;
}

/** The shortest prompt-HMAC key accepted, in bytes (a string key counts its UTF-8 bytes). */
export const MIN_HMAC_KEY_BYTES = 16;

/** Whether `key` is long enough for the prompt HMAC (see MIN_HMAC_KEY_BYTES). */
export function hmacKeyLongEnough(key: string | Buffer): boolean {
  return (typeof key === 'string' ? Buffer.byteLength(key, 'utf8') : key.length) >= MIN_HMAC_KEY_BYTES;
}

export function createAuditStage(opts: AuditStageOptions): AuditStage {
  // Checked where the key is resolved, with its config key (components); this guards other callers.
  if (opts.hmacKey === undefined || !hmacKeyLongEnough(opts.hmacKey)) throw new Error(`audit: hmac key must be at least ${MIN_HMAC_KEY_BYTES} bytes`);
  // Imported once: HMAC with a KeyObject skips re-reading the key on every request.
  const hmacKey = createSecretKey(typeof opts.hmacKey === 'string' ? Buffer.from(opts.hmacKey, 'utf8') : opts.hmacKey);
  /**
   * Per request: its draft (made by `prepare`), or DONE once its record was appended (a context is
   * audited once even if both the stage and the pipeline's `finally` reach it).
   */
  const records = new WeakMap<RequestContext, AuditDraft | typeof DONE>();
  const now = opts.now ?? Date.now;
  const promptHmac = new PromptHmac(hmacKey);
  const recordOptions = (at: number) => ({
    hmacKey,
    promptHmac,
    environment: opts.environment,
    policyRevision: opts.getPolicyRevision(),
    templateRevision: opts.getTemplateRevision?.() ?? null,
    configuredModel: opts.configuredModel,
    now: at,
  });
  // Not async: the append's own promise goes back to the caller, without another promise around it.
  function auditRequest(ctx: RequestContext): Promise<AuditRecord | undefined> {
    const draft = records.get(ctx);
    if (draft === DONE) return Promise.resolve(undefined);
    records.set(ctx, DONE);
    let body;
    let pieces;
    try {
      const at = now();
      body = draft ? finishAuditRecord(draft, ctx, at) : undefined;
      if (body) pieces = draft!.pieces;
      else body = buildAuditRecord(ctx, recordOptions(at));
    } catch (err) {
      return Promise.reject(err);
    }
    return opts.log.append(body, pieces);
  }
  return {
    name: 'audit',
    auditRequest,
    run(ctx: RequestContext) {
      return auditRequest(ctx) as Promise<unknown> as Promise<void>;
    },
    prepare(ctx: RequestContext) {
      // The pipeline calls this while the upstream call is in flight: the prompt's HMAC and every
      // member that cannot change any more are written now, not after the answer.
      if (records.has(ctx)) return;
      const draft = draftAuditRecord(ctx, recordOptions(now()));
      if (draft) records.set(ctx, draft);
    },
  };
}

const DONE = Symbol('audited');
