/**
 * Stable Warden error codes. Every failure that reaches a caller carries one of these codes;
 * ingress adapters map them to HTTP status codes and gRPC status codes (see README, "Errors").
 *
 * A message must never contain a secret value, a variable value or PII: it names keys, entity
 * types and locations only.
 */
export const ERROR_CODES = {
  invalid_request: { http: 400, grpc: 'INVALID_ARGUMENT' },
  unauthenticated: { http: 401, grpc: 'UNAUTHENTICATED' },
  policy_denied: { http: 403, grpc: 'PERMISSION_DENIED' },
  model_not_allowed: { http: 403, grpc: 'PERMISSION_DENIED' },
  policy_error: { http: 500, grpc: 'INTERNAL' },
  not_found: { http: 404, grpc: 'NOT_FOUND' },
  template_not_found: { http: 404, grpc: 'NOT_FOUND' },
  template_retired: { http: 410, grpc: 'FAILED_PRECONDITION' },
  template_invalid: { http: 500, grpc: 'INTERNAL' },
  variable_missing: { http: 400, grpc: 'INVALID_ARGUMENT' },
  variable_invalid: { http: 400, grpc: 'INVALID_ARGUMENT' },
  payload_too_large: { http: 413, grpc: 'RESOURCE_EXHAUSTED' },
  /** The body is encoded (`content-encoding: gzip`, ...): Warden reads only identity bodies. */
  unsupported_media_type: { http: 415, grpc: 'INVALID_ARGUMENT' },
  secret_unavailable: { http: 503, grpc: 'UNAVAILABLE' },
  redaction_blocked: { http: 422, grpc: 'FAILED_PRECONDITION' },
  redaction_failed: { http: 500, grpc: 'INTERNAL' },
  upstream_error: { http: 502, grpc: 'UNAVAILABLE' },
  /** The provider refused the request as invalid (HTTP 400, 413, 422): sending it again will not help. */
  upstream_rejected: { http: 400, grpc: 'INVALID_ARGUMENT' },
  /** The provider is rate-limiting Warden's key (HTTP 429); `details.retry_after_s` when it said when. */
  upstream_rate_limited: { http: 429, grpc: 'RESOURCE_EXHAUSTED' },
  upstream_timeout: { http: 504, grpc: 'DEADLINE_EXCEEDED' },
  audit_unavailable: { http: 503, grpc: 'UNAVAILABLE' },
  overloaded: { http: 503, grpc: 'UNAVAILABLE' },
  shutting_down: { http: 503, grpc: 'UNAVAILABLE' },
  /** The client did not send its whole request within `limits.client_timeout_ms`. */
  request_timeout: { http: 408, grpc: 'DEADLINE_EXCEEDED' },
  /** The client went away (or cancelled the call) before the answer was complete; 499 as in nginx. */
  cancelled: { http: 499, grpc: 'CANCELLED' },
  internal: { http: 500, grpc: 'INTERNAL' },
} as const satisfies Record<string, { http: number; grpc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Names the place a problem was found: a file and position, a config key, a request field. */
export interface ErrorLocation {
  file?: string;
  line?: number;
  column?: number;
  /** Dotted path of a config key or request field, e.g. `warden.variables.ticket_id`. */
  path?: string;
}

export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly location: ErrorLocation | undefined;
  /** Extra, non-sensitive detail for the caller (entity type names, reasons). */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { location?: ErrorLocation; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'WardenError';
    this.code = code;
    this.location = opts.location;
    this.details = opts.details;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  get grpcStatus(): string {
    return ERROR_CODES[this.code].grpc;
  }
}

/**
 * True for a failure the same request meets again at once: a policy that fails to evaluate
 * (conflicting values, a built-in error), a template that does not render, a redaction the
 * decision or a detector cannot run. These are 500s, which the OpenAI and Anthropic SDKs retry
 * twice by default (with 0.5–8 s of backoff): the app would wait seconds for the same answer,
 * and each try is another policy evaluation and audit record. HTTP answers say so with
 * `x-should-retry: false`, the header both SDKs obey. A policy stopped by its evaluation budget
 * (`eval_budget_exceeded`: its deadline may have passed on a busy host) is left retryable, as
 * are every 502/503/504 (the provider, a secret store, the audit sink or Warden's load may
 * recover) and `internal`.
 */
export function failsAgainOnRetry(err: WardenError): boolean {
  switch (err.code) {
    case 'template_invalid':
    case 'redaction_failed':
      return true;
    case 'policy_error':
      return err.details?.['code'] !== 'eval_budget_exceeded';
    default:
      return false;
  }
}

export function isWardenError(err: unknown): err is WardenError {
  return err instanceof WardenError;
}

/** Formats a location as `file:line:col` or `path`, for messages and logs. */
export function formatLocation(loc: ErrorLocation | undefined): string {
  if (!loc) return '';
  if (loc.file) {
    let s = loc.file;
    if (loc.line !== undefined) s += `:${loc.line}`;
    if (loc.column !== undefined) s += `:${loc.column}`;
    return s;
  }
  return loc.path ?? '';
}
