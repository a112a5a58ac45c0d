/**
 * How an upstream call's failure becomes a WardenError: `cancelled` / `upstream_timeout` (with the
 * phase) / `upstream_error` (with the provider and, for network failures, the error code). The
 * messages are ours: never an upstream body or an undici message, which could quote the prompt.
 */
import { abortReasonError, type CancelSignal } from '../pipeline/cancel.js';
import { WardenError, isWardenError } from '../pipeline/errors.js';
import { markUpstream } from '../pipeline/upstream-failure.js';
import { SseError } from './sse.js';

/** Upstream statuses that mean the request itself was refused: a client should not retry it. */
const REJECTED_STATUSES = new Set([400, 413, 422]);
/** An HTTP date as RFC 9110 says to send it: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
/** The longest Retry-After passed on to the caller, in seconds. */
const MAX_RETRY_AFTER_S = 86_400;

/**
 * Retry-After (delta-seconds or an HTTP date) as whole seconds from now, or undefined when absent
 * or unreadable.
 */
export function retryAfterSeconds(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  let seconds: number;
  if (/^\d+$/.test(v)) seconds = Number(v);
  else if (IMF_FIXDATE.test(v)) seconds = Math.ceil((Date.parse(v) - now) / 1000);
  else return undefined; // Date.parse alone would read "-5" or "1.5" as dates
  if (Number.isNaN(seconds)) return undefined;
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_S);
}

/**
 * A non-2xx answer as a WardenError, from its status and headers only (never the body: it may
 * quote the prompt back). A refused request and rate limiting keep their meaning for the caller,
 * whose SDK then knows whether and when to retry; anything else is `upstream_error`.
 */
export function upstreamStatusFailure(provider: string, status: number, headers: Record<string, string | string[] | undefined>): WardenError {
  if (status === 429) {
    const details: Record<string, unknown> = { provider, status };
    const retryAfter = retryAfterSeconds(headers['retry-after']);
    if (retryAfter !== undefined) details.retry_after_s = retryAfter;
    return new WardenError('upstream_rate_limited', `provider ${provider} is rate limiting requests (HTTP 429)`, { details });
  }
  if (REJECTED_STATUSES.has(status)) {
    return new WardenError('upstream_rejected', `provider ${provider} refused the request (HTTP ${status})`, { details: { provider, status } });
  }
  return new WardenError('upstream_error', `provider ${provider} answered HTTP ${status}`, { details: { provider, status } });
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CLOSED']);
/**
 * The upstream was reached, then the connection broke: most often a pooled connection the
 * server closed (idle) just as a call was sent on it. Not "unreachable": the next call usually
 * succeeds (see pool.keep_alive_ms).
 */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * Turns whatever the call failed with into a WardenError. The signal decides first: a client
 * abort is `cancelled`, a deadline is `upstream_timeout`, whatever error undici surfaced for it.
 */
export function upstreamFailure(err: unknown, signal: CancelSignal, provider: string): WardenError {
  if (signal.aborted) {
    return abortReasonError(signal.reason, provider) ?? new WardenError('cancelled', 'the request was cancelled', { details: { provider } });
  }
  if (isWardenError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) {
    const phase = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect' : code === 'UND_ERR_HEADERS_TIMEOUT' ? 'headers' : 'body';
    return new WardenError('upstream_timeout', `provider ${provider} timed out (${phase})`, {
      details: { provider, phase },
      cause: err,
    });
  }
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) {
    const unreachable = new WardenError('upstream_error', `provider ${provider} is unreachable (${code})`, {
      details: { provider, reason: code },
      cause: err,
    });
    return markUpstream(unreachable, 'unreachable');
  }
  if (typeof code === 'string' && RESET_CODES.has(code)) {
    const reset = new WardenError('upstream_error', `the connection to provider ${provider} was reset (${code})`, {
      details: { provider, reason: code },
      cause: err,
    });
    return markUpstream(reset, 'reset');
  }
  // The parser's one refusal: an event (or a line) past the event limit.
  if (err instanceof SseError) {
    return new WardenError('upstream_error', `provider ${provider} returned a stream event larger than the limit`, { details: { provider }, cause: err });
  }
  return markUpstream(new WardenError('upstream_error', `provider ${provider} request failed`, { details: { provider }, cause: err }), 'failed');
}

/**
 * The content codings an error names (IANA's registered ones that servers send). A header is the
 * upstream's text: a token-shaped value may still be anything the upstream read in the prompt (a
 * granted secret, a card or social security number), so only a coding from this list is repeated.
 */
const KNOWN_CODINGS: ReadonlySet<string> = new Set(['gzip', 'x-gzip', 'deflate', 'br', 'zstd', 'compress', 'x-compress']);

/**
 * A 2xx answer whose body is content-coded (gzip, br, ...): Warden asks for `accept-encoding:
 * identity` and does not decode bodies, so such a body would read as a body that is not JSON or
 * a stream with no events. Undefined for an identity body. The coding is named when it is a known
 * one (KNOWN_CODINGS; `gzip, br` when each is).
 */
export function encodedAnswer(provider: string, headers: Record<string, string | string[] | undefined>): WardenError | undefined {
  const raw = headers['content-encoding'];
  if (raw === undefined) return undefined;
  const coding = (Array.isArray(raw) ? raw.join(',') : raw).trim().toLowerCase();
  if (coding === '' || coding === 'identity') return undefined;
  const codings = coding.split(',').map((c) => c.trim());
  const shown = codings.every((c) => KNOWN_CODINGS.has(c)) ? codings.join(', ') : 'an unusual coding';
  return new WardenError('upstream_error', `provider ${provider} returned a body encoded as ${shown}, though Warden asks for identity (it does not decode bodies)`, {
    details: { provider },
  });
}

/**
 * The media types an error names: what an upstream or a proxy in front of it answers instead of
 * an event stream (a JSON answer or error, an HTML error page, plain text). The header is the
 * upstream's text, which a `type/subtype`-shaped value may carry too (`text/CANARY…`,
 * `x/4111111111111111`): any other type is only said to be unusual.
 */
const KNOWN_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/json',
  'application/problem+json',
  'application/x-ndjson',
  'application/jsonl',
  'application/xml',
  'application/octet-stream',
  'text/html',
  'text/plain',
  'text/xml',
]);

/** The upstream's media type as an error message may name it (KNOWN_MEDIA_TYPES), else that it was unusual. */
export function mediaTypeForMessage(contentType: string): string {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === '') return '(none)';
  return KNOWN_MEDIA_TYPES.has(type) ? type : '(an unusual one)';
}
