/**
 * toGrpcError's status details for the codes the end-to-end tests cannot easily provoke: a
 * refusal while draining says no wait (the call belongs on another instance), an upstream rate
 * limit without a Retry-After neither.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import { toGrpcError } from '../../src/server/grpc.js';
import { rpcStatus } from '../e2e/helpers/grpc.js';

describe('toGrpcError status details', () => {
  it('shutting_down: ErrorInfo only, no RetryInfo and no pushback', () => {
    const err = toGrpcError(new WardenError('shutting_down', 'warden is shutting down; retry on another instance'));
    expect(err.metadata?.get('grpc-retry-pushback-ms')).toEqual([]);
    expect(rpcStatus(err)).toEqual({
      code: grpc.status.UNAVAILABLE,
      message: 'warden is shutting down; retry on another instance',
      types: ['type.googleapis.com/google.rpc.ErrorInfo'],
      errorInfo: { reason: 'shutting_down', domain: 'warden', metadata: {} },
    });
  });

  it('a rate limit the provider gave no wait for: no RetryInfo', () => {
    const err = toGrpcError(new WardenError('upstream_rate_limited', 'provider x is rate limiting requests (HTTP 429)', { details: { provider: 'x', status: 429 } }));
    expect(rpcStatus(err)).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, errorInfo: { reason: 'upstream_rate_limited' } });
    expect(rpcStatus(err)?.retryInfo).toBeUndefined();
  });

  it("HTTP's `details` are in ErrorInfo.metadata, member by member: strings as they are, anything else as JSON text", () => {
    const cases: Array<[WardenError, Record<string, string>]> = [
      [
        new WardenError('redaction_blocked', 'a tool call id holds PII', { location: { path: 'messages.1.tool_calls.0.id' }, details: { reason: 'pii_in_id', entities: ['EMAIL_ADDRESS'] } }),
        { reason: 'pii_in_id', entities: '["EMAIL_ADDRESS"]', param: 'messages.1.tool_calls.0.id' },
      ],
      [new WardenError('upstream_rejected', 'the provider refused the request', { details: { provider: 'upstream', status: 400 } }), { provider: 'upstream', status: '400' }],
      [new WardenError('template_not_found', 'template support/ticket-summary@9 not found', { details: { template: 'support/ticket-summary@9' } }), { template: 'support/ticket-summary@9' }],
      [new WardenError('policy_denied', 'denied', { details: { reasons: ['not allowed', 'Zoë'], allow: false, cap: null } }), { reasons: '["not allowed","Zoë"]', allow: 'false', cap: 'null' }],
      // warden-param's field wins over a detail of the same name.
      [new WardenError('invalid_request', 'x', { location: { path: 'model' }, details: { param: 'other' } }), { param: 'model' }],
    ];
    for (const [error, metadata] of cases) expect(rpcStatus(toGrpcError(error))?.errorInfo, error.code).toEqual({ reason: error.code, domain: 'warden', metadata });
  });

  it('a status code given by the caller (UNIMPLEMENTED for an unknown method) is the details\' code too', () => {
    const err = toGrpcError(new WardenError('not_found', 'no such method'), grpc.status.UNIMPLEMENTED);
    expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(rpcStatus(err)).toMatchObject({ code: grpc.status.UNIMPLEMENTED, message: 'no such method', errorInfo: { reason: 'not_found' } });
  });
});
