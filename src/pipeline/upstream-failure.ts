/**
 * What the upstream did when a request failed at its call, for the audit record's
 * `upstream_failure`: an HTTP status it answered, or how the call failed without one. Bounded: a
 * kind from a fixed set and an integer status, never the upstream's body or message (which may
 * echo the prompt, a secret or PII) nor a header value.
 *
 * The providers (and ingress encoders) make the errors; the audit stage reads them. Neither may
 * import the other (DESIGN.md, Layout), so the kind travels with the error itself: `markUpstream`
 * where a failure is not an answer Warden refused (the network, a deadline), read back by
 * `upstreamFailureOf`. Only failures are marked: nothing is added to a served request.
 */
import type { WardenError } from './errors.js';

/**
 * `status`: the provider answered an HTTP status that is not 2xx. `timeout`: no (whole) answer in
 * time. `unreachable`: no connection could be made. `reset`: the connection broke. `bad_answer`: it
 * answered, but with what Warden refuses to pass on (not the API's shape, too large, cut short, a
 * generation it reported failed, one the route cannot carry). `failed`: anything else.
 */
export type UpstreamFailureKind = 'status' | 'timeout' | 'unreachable' | 'reset' | 'bad_answer' | 'failed';

/**
 * Which part of a `timeout` ran out: the provider's `connect`, `headers` or `body` timeout (an
 * idle gap in a stream included), or the whole call's `deadline` (`limits.upstream_timeout_ms`).
 */
export type UpstreamTimeoutPhase = 'connect' | 'headers' | 'body' | 'deadline';

export interface UpstreamFailure {
  kind: UpstreamFailureKind;
  /** The phase of a `timeout`; null otherwise. */
  phase: UpstreamTimeoutPhase | null;
  /** The HTTP status of a `status` failure; null otherwise. */
  status: number | null;
}

/** The timeouts' own phases (failure.ts puts them in `details.phase`); any other timeout is the deadline's. */
const TIMEOUT_PHASES: ReadonlySet<unknown> = new Set(['connect', 'headers', 'body']);

const UPSTREAM_CODES: ReadonlySet<string> = new Set(['upstream_error', 'upstream_rejected', 'upstream_rate_limited', 'upstream_timeout']);

const marks = new WeakMap<WardenError, UpstreamFailureKind>();

/** Says how `err`, an upstream failure with no HTTP status, came about; returns it. */
export function markUpstream(err: WardenError, kind: UpstreamFailureKind): WardenError {
  marks.set(err, kind);
  return err;
}

/**
 * The upstream failure `err` reports, or null when it is none (no error, or one of Warden's own:
 * a refusal before the call, the client leaving, the shutdown). An `upstream_*` error that was not
 * marked is an answer Warden refused (`bad_answer`), or a deadline (`timeout`).
 */
export function upstreamFailureOf(err: WardenError | undefined): UpstreamFailure | null {
  if (err === undefined || !UPSTREAM_CODES.has(err.code)) return null;
  const status = err.details?.['status'];
  if (typeof status === 'number' && Number.isInteger(status) && status >= 100 && status <= 599) return { kind: 'status', phase: null, status };
  const kind = marks.get(err) ?? (err.code === 'upstream_timeout' ? 'timeout' : 'bad_answer');
  if (kind !== 'timeout') return { kind, phase: null, status: null };
  const phase = err.details?.['phase'];
  return { kind, phase: TIMEOUT_PHASES.has(phase) ? (phase as UpstreamTimeoutPhase) : 'deadline', status: null };
}
