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

  it('a status code given by the caller (UNIMPLEMENTED for an unknown method) is the details\' code too', () => {
    const err = toGrpcError(new WardenError('not_found', 'no such method'), grpc.status.UNIMPLEMENTED);
    expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(rpcStatus(err)).toMatchObject({ code: grpc.status.UNIMPLEMENTED, message: 'no such method', errorInfo: { reason: 'not_found' } });
  });
});
