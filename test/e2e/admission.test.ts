/**
 * limits.max_in_flight: one gate for every app listener. With a limit of one and a request held
 * by an upstream that does not answer, the next request on any protocol is refused at once with
 * `overloaded` (told to retry in a second), counted and audited; the place is free again when the
 * first ends.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/index.js';
import { bearerMetadata, gatewayClient, rpcStatus } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;

const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'The parcel is late.' } },
});

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { max_in_flight: 1, upstream_timeout_ms: 5000 }' });
  token = await w.signer.token('support', 'ticket-bot');
  // One request first, so the audit file exists when the test counts its records.
  expect((await postChat(w.addresses.http, token, BODY)).status).toBe(200);
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

async function overloadedCount(): Promise<number> {
  const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('warden_requests_total{') && l.includes('code="overloaded"'))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('limits.max_in_flight', () => {
  it('refuses what is over the limit on every listener at once, and admits again when a place frees', async () => {
    // The first request holds the only place: its upstream never answers, until the client gives
    // up (no race with a timer, however slow the machine).
    upstream.mode = 'slow';
    const counted = await overloadedCount();
    const audited = w.audit().length;
    const before = upstream.calls.length;
    const ac = new AbortController();
    const first = fetch(`${w.addresses.http}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: BODY,
      signal: ac.signal,
    }).catch((e: unknown) => e);
    await eventually(() => upstream.calls.length > before);

    // SREs see it: the gauge counts the held request against the limit.
    const scraped = await (await fetch(`${w.addresses.admin}/metrics`)).text();
    expect(scraped).toMatch(/^warden_requests_in_flight(\{[^}]*\})? 1$/m);
    expect(scraped).toMatch(/^warden_requests_in_flight_limit(\{[^}]*\})? 1$/m);

    const second = await postChat(w.addresses.http, token, BODY);
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('1');
    const json = (await second.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe('overloaded');
    expect(json.error.message).toContain('limit of 1 requests');

    const anthropic = await fetch(`${w.addresses.http}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': token },
      body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
    // Anthropic's status for an overload: its SDKs raise OverloadedError and back off.
    expect(anthropic.status).toBe(529);
    expect(anthropic.headers.get('retry-after')).toBe('1');
    expect(((await anthropic.json()) as { type: string; error: { type: string; code: string } }).error).toMatchObject({ type: 'overloaded_error', code: 'overloaded' });

    const gateway = gatewayClient(w.addresses.grpc);
    try {
      const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
        gateway.Complete(
          { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: 'late' } },
          bearerMetadata(token),
          (e: grpc.ServiceError | null) => (e ? resolve(e) : reject(new Error('expected an error'))),
        ),
      );
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.metadata.get('warden-code')[0]).toBe('overloaded');
      expect(err.metadata.get('retry-after')[0]).toBe('1');
      // The same wait in the trailer gRPC clients' retry machinery reads (gRFC A6 pushback).
      expect(err.metadata.get('grpc-retry-pushback-ms')).toEqual(['1000']);
      // And in the status details, as google.rpc.RetryInfo.
      expect(rpcStatus(err)).toMatchObject({
        code: grpc.status.UNAVAILABLE,
        message: err.details,
        errorInfo: { reason: 'overloaded', domain: 'warden' },
        retryInfo: { retry_delay: { seconds: 1, nanos: 0 } },
      });
    } finally {
      gateway.close();
    }
    // None of the refused ones reached the upstream.
    expect(upstream.calls.length).toBe(before + 1);

    ac.abort();
    expect(await first).toBeInstanceOf(Error);
    upstream.mode = 'ok';
    // The place comes back when the abandoned request's response closes.
    await eventually(async () => (await postChat(w.addresses.http, token, BODY)).status === 200);

    await eventually(() => w.audit().slice(audited).some((r) => r.status === 'ok'));
    const records = w.audit().slice(audited);
    // The three above, and any of the retries above that came before the place was back: each
    // refusal is one audit record (no principal) and one count in the metric.
    const refused = records.filter((r) => r.error_code === 'overloaded');
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(refused.every((r) => r.principal === null)).toBe(true);
    expect(await overloadedCount()).toBe(counted + refused.length);
    expect(records.filter((r) => r.error_code === 'cancelled')).toHaveLength(1);
    // Refusals written while another request was in flight still chain in order.
    expect(verifyChain(w.audit())).toMatchObject({ ok: true });
    expect(await (await fetch(`${w.addresses.admin}/metrics`)).text()).toMatch(/^warden_requests_in_flight(\{[^}]*\})? 0$/m);
  });

  it('a stream the client abandons gives its place back', async () => {
    upstream.mode = 'stream-slow';
    const ac = new AbortController();
    const res = await fetch(`${w.addresses.http}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: BODY.replace('"model"', '"stream":true,"model"'),
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    ac.abort();
    upstream.mode = 'ok';
    await eventually(async () => (await postChat(w.addresses.http, token, BODY)).status === 200);
  });
});
