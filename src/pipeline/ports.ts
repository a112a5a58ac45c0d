/**
 * The small typed interfaces each stage module implements (DESIGN.md, "The contracts").
 * Implementations live in their stage folder (identity/, policy/, secrets/, templates/,
 * redact/, providers/, audit/); the pipeline only knows these shapes.
 */
import type { CancelSignal } from './cancel.js';
import type {
  ChatMessage,
  CompletionChunk,
  CompletionResult,
  Credentials,
  PolicyInput,
  Principal,
  RedactionDecision,
  Template,
  TextProvenance,
  ToolDefinition,
  UpstreamRequest,
} from './types.js';

// ---------------------------------------------------------------------------------------------
// 1 authenticate
// ---------------------------------------------------------------------------------------------

export interface Authenticator {
  readonly method: string;
  /**
   * Which bearer tokens this method takes, in words of the config (`a JWT whose iss is one of
   * identity.kubernetes.issuer`), for the refusal of a token no method took; never a token's
   * value. A method that takes every request (dev) has none.
   */
  readonly takes?: string;
  /**
   * Returns the principal, or `null` when these credentials are not for this method (so the next
   * method may try). Throws WardenError('unauthenticated') when they are for it but invalid.
   * A method that can answer at once (a token it verified before, a peer it trusts) answers
   * synchronously, so the stage needs no promise; one that must verify returns a promise. The
   * principal is frozen (deeply) and may be shared between requests: stages only read it.
   */
  authenticate(credentials: Credentials): Principal | null | Promise<Principal | null>;
}

// ---------------------------------------------------------------------------------------------
// 2 resolve / 5 render
// ---------------------------------------------------------------------------------------------

export interface TemplateStore {
  /** Content hash of the loaded set, shown on /readyz and in metrics. */
  readonly revision: string;
  /** Without a version: the highest version. */
  get(id: string, version?: number): Template | undefined;
  list(): Template[];
}

// ---------------------------------------------------------------------------------------------
// 3 decide
// ---------------------------------------------------------------------------------------------

export interface PolicyEngine {
  readonly kind: 'rego' | 'wasm';
  /** Content hash (or bundle revision) of the loaded policies. */
  readonly revision: string;
  /**
   * Evaluates the configured entrypoint (e.g. `warden/decision`) against `input`.
   * Returns the JSON value of the entrypoint, or `undefined` when it is undefined.
   * Throws on evaluation errors (the stage turns them into a deny).
   */
  evaluate(input: PolicyInput): unknown;
}

// ---------------------------------------------------------------------------------------------
// 4 fetch
// ---------------------------------------------------------------------------------------------

export interface SecretProvider {
  /** URI scheme this provider serves: `file`, `env`, `vault`, `k8s`. */
  readonly scheme: string;
  /** Resolves one ref. `ttlMs` is the lease: the value may be cached that long. */
  fetch(ref: URL, signal?: AbortSignal): Promise<{ value: string; ttlMs: number }>;
}

export interface SecretResolver {
  /** Resolves exactly these refs (cached within their lease). Throws WardenError('secret_unavailable'). */
  resolve(refs: readonly string[], signal?: CancelSignal): Promise<Map<string, string>>;
  /**
   * The same values, synchronously, when every ref is cached within its lease; else undefined
   * (then call `resolve`). Lets the fetch stage skip a promise on the usual all-cached request.
   */
  peek?(refs: readonly string[]): Map<string, string> | undefined;
  /**
   * Names of the cached values of `refs`, by ref, when every ref is cached within its lease (as
   * for `peek`); else undefined. A name stands for one cached value and is never reused in the
   * process: a refetch gets a new name, even for the same value. Lets a consumer name a text made
   * from these values (render provenance) without hashing the values.
   */
  stamps?(refs: readonly string[]): Map<string, string> | undefined;
}

// ---------------------------------------------------------------------------------------------
// 6 redact / 8 respond
// ---------------------------------------------------------------------------------------------

export interface RedactionReport {
  /** Findings by entity type on the way out (prompt) and back (response). */
  counts: Record<string, number>;
  responseCounts: Record<string, number>;
  /** Non-text content parts passed through untouched. */
  nonTextParts: number;
  /** Secret values caught by the leak guard (counted, never named). */
  leaks: number;
  /**
   * Detectors that failed and were skipped because the decision set `redaction.fail_open` (0
   * otherwise: a failure without it refuses the request). The audit record carries it, so a call
   * that went out only partly redacted says so.
   */
  detectorFailures: number;
}

/** Redaction state for one request (the tokenize mapping lives here and dies with it). */
export interface RedactionSession {
  /**
   * Redacts every text in the messages (content strings, text parts, tool-call arguments) and,
   * when given, tool definitions. Throws WardenError('redaction_blocked') naming entity types
   * for `block` entities and for leaked secret values, WardenError('redaction_failed') when a
   * detector fails (unless the decision set fail_open). `provenance` (the render stage's
   * `ctx.renderProvenance`, by message index) may name a rendered content by what produced it, so
   * a cache of findings need not hash its text; it applies only to a content still equal to its
   * `text`.
   */
  redactMessages(messages: ChatMessage[], provenance?: ReadonlyArray<TextProvenance | undefined>): ChatMessage[];
  /**
   * Redacts tool definitions (descriptions, and every string and member name of the parameter
   * schema); throws like redactMessages.
   */
  redactTools(tools: ToolDefinition[]): ToolDefinition[];
  /**
   * Redacts every string and member name in the pass-through parameters (`user`, `metadata`,
   * `prediction`, legacy `functions`, ...): they leave the pod too. Throws like redactMessages.
   */
  redactParams(params: Readonly<Record<string, unknown>>): Record<string, unknown>;
  /** The outbound messages for a dry run's caller: secret values masked (see Session). */
  maskSecretsForCaller(messages: readonly ChatMessage[]): ChatMessage[];
  /**
   * A JSON value for a dry run's caller (its tools and pass-through parameters, after redaction):
   * secret values masked in every string, number and member name. Throws `redaction_blocked` when
   * two member names of one object mask alike.
   */
  maskSecretsInJson(value: unknown): unknown;
  /**
   * Restores tokens (if re-identification is allowed) and redacts PII the model produced. A
   * choice's `stop_sequence` is kept only when it is one of `stopSequences` (see
   * PromptRequest.stopSequences).
   */
  processCompletion(result: CompletionResult, stopSequences?: readonly string[]): CompletionResult;
  /**
   * Streaming counterpart of processCompletion: bounded hold-back, flushed at end (`sequential`:
   * also when the answer moves on to its next part; see PromptRequest.sequentialStream).
   */
  processStream(chunks: AsyncIterable<CompletionChunk>, sequential?: boolean, stopSequences?: readonly string[]): AsyncIterable<CompletionChunk>;
  /** A snapshot of the counts so far: fresh objects the caller may keep (the audit record does). */
  report(): RedactionReport;
}

export interface Redactor {
  /**
   * @param decision  the policy's redaction decision
   * @param secrets   exact secret values resolved for this request that must not leave in the
   *   prompt (leak guard: the request is refused)
   * @param answerSecrets  secret values masked wherever they appear in the answer (default:
   *   `secrets`); includes those the template placed in the prompt on purpose
   */
  session(decision: RedactionDecision, secrets: readonly string[], answerSecrets?: readonly string[]): RedactionSession;
}

// ---------------------------------------------------------------------------------------------
// 7 forward
// ---------------------------------------------------------------------------------------------

/** A provider's upstream connections now (for /metrics, read when scraped). */
export interface PoolLoad {
  /** Calls on a connection: sent, or being answered. */
  active: number;
  /** Calls waiting for a connection because all `limit` are busy. */
  queued: number;
  /** Most connections (so most calls at once) to this upstream; undefined: no limit of its own. */
  limit: number | undefined;
}

export interface ModelProvider {
  readonly name: string;
  complete(request: UpstreamRequest): Promise<CompletionResult>;
  stream(request: UpstreamRequest): AsyncIterable<CompletionChunk>;
  /** Present on providers that hold upstream connections (not echo). */
  poolLoad?(): PoolLoad;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// 9 audit
// ---------------------------------------------------------------------------------------------

export interface AuditRecord {
  time: string;
  request_id: string;
  trace_id: string;
  span_id: string;
  decision_id: string | null;
  principal: { kind: string; subject: string; namespace?: string; service_account?: string } | null;
  action: string;
  /** `variables`: the names (never values) of the call's variables, only when the decision's `audit.log_variables_names` asked for them. */
  /**
   * For a `template_not_found` refusal: the id and version asked for when a template has that id
   * (in another version), `sensitivity` null; null when none has it (the id is the caller's data).
   */
  template: { id: string; version: number | null; sensitivity: string | null; variables?: string[] } | null;
  approval: string | null;
  environment: string;
  policy_revision: string;
  /** The template set the request's template was resolved in (the current set's when none was). */
  template_revision: string | null;
  decision: { allow: boolean; reasons: string[] } | null;
  secret_refs: string[];
  redaction: {
    counts: Record<string, number>;
    response_counts: Record<string, number>;
    non_text_parts: number;
    leaks: number;
    /** Detectors skipped after failing, under the decision's `redaction.fail_open`. */
    detector_failures: number;
  } | null;
  /** HMAC-SHA256 of the outbound prompt (never the prompt itself). */
  prompt_hmac: string | null;
  provider: string | null;
  model: string | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  status: 'ok' | 'error';
  error_code: string | null;
  /**
   * What the upstream did when the request failed at its call (an HTTP status, or how the call
   * failed without one); null when it did not (no call, an answer passed on, Warden's own ending).
   */
  upstream_failure: { kind: string; phase: string | null; status: number | null } | null;
  latency_ms: number;
  stream: boolean;
  seq: number;
  prev_hash: string;
  hash: string;
}

/** Whether an `AuditLog.append` rejection kept its record (linked, written once the sink recovers). */
export function auditRecordKept(err: unknown): boolean {
  return (err as { kept?: unknown } | null)?.kept === true;
}

export interface AuditLog {
  /**
   * Fills seq/prev_hash/hash and writes to every sink. Throws WardenError('audit_unavailable');
   * with `kept: true` on it (see `auditRecordKept`) when the record was linked and is held by a
   * failed sink, to be written once it recovers: the caller is still refused, but nothing is lost.
   * `pieces`: the record's canonical text already written around its outcome members (the audit
   * stage drafts them while the upstream call is in flight); optional, the log writes it otherwise.
   */
  append(record: Omit<AuditRecord, 'seq' | 'prev_hash' | 'hash'>, pieces?: readonly string[]): Promise<AuditRecord>;
  flush(): Promise<void>;
}
