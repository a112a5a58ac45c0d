/**
 * `upstream_failure` from the errors the upstream call fails with (pipeline/upstream-failure.ts):
 * the kinds a loopback upstream cannot easily produce (a reset, an unknown failure), and the
 * errors that are no upstream failure at all.
 */
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import { RequestSignal } from '../../src/pipeline/cancel.js';
import { upstreamFailureOf } from '../../src/pipeline/upstream-failure.js';
import { upstreamFailure, upstreamStatusFailure } from '../../src/providers/failure.js';

const live = new RequestSignal();
const failed = (code: string) => upstreamFailure(Object.assign(new Error('undici says something with the prompt in it'), { code }), live, 'openai');

describe('upstreamFailureOf', () => {
  it('names how a call failed without a status', () => {
    expect(upstreamFailureOf(failed('ECONNRESET'))).toEqual({ kind: 'reset', phase: null, status: null });
    expect(upstreamFailureOf(failed('UND_ERR_SOCKET'))).toEqual({ kind: 'reset', phase: null, status: null });
    expect(upstreamFailureOf(failed('ECONNREFUSED'))).toEqual({ kind: 'unreachable', phase: null, status: null });
    expect(upstreamFailureOf(failed('ENOTFOUND'))).toEqual({ kind: 'unreachable', phase: null, status: null });
    expect(upstreamFailureOf(failed('UND_ERR_CONNECT_TIMEOUT'))).toEqual({ kind: 'timeout', phase: 'connect', status: null });
    expect(upstreamFailureOf(failed('UND_ERR_HEADERS_TIMEOUT'))).toEqual({ kind: 'timeout', phase: 'headers', status: null });
    expect(upstreamFailureOf(failed('UND_ERR_BODY_TIMEOUT'))).toEqual({ kind: 'timeout', phase: 'body', status: null });
    expect(upstreamFailureOf(failed('SOMETHING_NEW'))).toEqual({ kind: 'failed', phase: null, status: null });
  });

  it('an answered status is the status, whatever the code it maps to', () => {
    for (const status of [400, 401, 403, 404, 413, 422, 429, 500, 503]) {
      expect(upstreamFailureOf(upstreamStatusFailure('openai', status, {}))).toEqual({ kind: 'status', phase: null, status });
    }
  });

  it('an upstream_* error with no mark is an answer Warden refused; other codes are no upstream failure', () => {
    expect(upstreamFailureOf(new WardenError('upstream_error', 'provider openai returned a stream that ended early'))).toEqual({ kind: 'bad_answer', phase: null, status: null });
    expect(upstreamFailureOf(new WardenError('upstream_timeout', 'provider openai did not answer in time'))).toEqual({ kind: 'timeout', phase: 'deadline', status: null });
    // A phase detail that is not one of the timeouts' own is the deadline's, never copied.
    expect(upstreamFailureOf(new WardenError('upstream_timeout', 'x', { details: { phase: 'CANARY' } }))).toEqual({ kind: 'timeout', phase: 'deadline', status: null });
    // A status that is not an HTTP status is not passed on as one.
    expect(upstreamFailureOf(new WardenError('upstream_error', 'x', { details: { status: 'CANARY' } }))).toEqual({ kind: 'bad_answer', phase: null, status: null });
    expect(upstreamFailureOf(new WardenError('upstream_error', 'x', { details: { status: 1e21 } }))).toEqual({ kind: 'bad_answer', phase: null, status: null });
    for (const code of ['cancelled', 'shutting_down', 'policy_denied', 'audit_unavailable', 'redaction_blocked'] as const) {
      expect(upstreamFailureOf(new WardenError(code, 'x', { details: { status: 500 } }))).toBeNull();
    }
    expect(upstreamFailureOf(undefined)).toBeNull();
  });
});
