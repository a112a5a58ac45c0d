/**
 * How an upstream call's failure becomes a WardenError: `cancelled` / `upstream_timeout` (with the
 * phase) / `upstream_error` (with the provider and, for network failures, the error code). The
 * messages are ours: never an upstream body or an undici message, which could quote the prompt.
 */
import type { CancelSignal } from '../pipeline/cancel.js';
import { WardenError, isWardenError } from '../pipeline/errors.js';
import { SseError } from './sse.js';

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/**
 * Turns whatever the call failed with into a WardenError. The signal decides first: a client
 * abort is `cancelled`, a deadline is `upstream_timeout`, whatever error undici surfaced for it.
 */
export function upstreamFailure(err: unknown, signal: CancelSignal, provider: string): WardenError {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (isWardenError(reason)) return reason;
    if (reason instanceof Error && reason.name === 'TimeoutError') {
      return new WardenError('upstream_timeout', `provider ${provider} did not answer in time`, { details: { provider } });
    }
    return new WardenError('cancelled', 'the request was cancelled', { details: { provider } });
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
    return new WardenError('upstream_error', `provider ${provider} is unreachable (${code})`, {
      details: { provider, reason: code },
      cause: err,
    });
  }
  if (err instanceof SseError) {
    return new WardenError('upstream_error', `provider ${provider} sent an invalid stream`, { details: { provider }, cause: err });
  }
  return new WardenError('upstream_error', `provider ${provider} request failed`, { details: { provider }, cause: err });
}
