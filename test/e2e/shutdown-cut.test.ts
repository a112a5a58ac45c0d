/**
 * What a client sees when the shutdown deadline cuts its request: `shutting_down` wherever the
 * protocol still allows it. HTTP before any header: 503 with the OpenAI error body; an HTTP stream
 * already under way: an SSE error event before the close; gRPC: UNAVAILABLE with the
 * `warden-code: shutting_down` trailer (not CANCELLED, which says the caller cancelled).
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { client_timeout_ms: 10000, upstream_timeout_ms: 60000, shutdown_grace_ms: 300 }' });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

/** warden_upstream_requests_total of the fixture's `upstream` provider with this outcome (0 when absent). */
function upstreamSample(text: string, outcome: string): number {
  const line = text.split('\n').find((l) => l.startsWith('warden_upstream_requests_total{') && l.includes('provider="upstream"') && l.includes(`outcome="${outcome}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('requests the shutdown deadline cuts', () => {
  it('HTTP non-stream: 503 shutting_down; HTTP stream: an SSE error event; gRPC: UNAVAILABLE with warden-code', { timeout: 20_000 }, async () => {
    const token = await w.signer.token('support', 'ticket-bot');
    const governed = { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-9', customer_message: 'hi' } } };
    // An upstream that never answers: the non-stream request has sent no header when the deadline comes.
    upstream.mode = 'slow';
    let calls = upstream.calls.length;
    const plain = postChat(w.addresses.http, token, governed).then(async (r) => ({ status: r.status, headers: r.headers, text: await r.text() }));
    await eventually(() => upstream.calls.length > calls);
    upstream.mode = 'stream-slow';
    calls = upstream.calls.length;
    const streamed = await postChat(w.addresses.http, token, { ...governed, stream: true });
    expect(streamed.status).toBe(200);
    const streamText = streamed.text();
    const anthropic = await fetch(`${w.addresses.http}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': token },
      body: JSON.stringify({ ...governed, max_tokens: 64, stream: true, messages: [] }),
    });
    expect(anthropic.status).toBe(200);
    const anthropicText = anthropic.text();
    const client = gatewayClient(w.addresses.grpc);
    const call = client.StreamComplete(
      { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-9', customer_message: 'hi' } },
      bearerMetadata(token),
    );
    let chunks = 0;
    call.on('data', () => chunks++);
    const grpcEnd = new Promise<grpc.ServiceError | 'ended'>((resolve) => {
      call.on('error', (err: grpc.ServiceError) => resolve(err));
      call.on('end', () => resolve('ended'));
    });
    await eventually(() => chunks > 2, 10);

    const before = w.audit().length;
    const upstreamCalls = async (outcome: string) => upstreamSample(await w.runtime.metrics.render(), outcome);
    const abortedBefore = await upstreamCalls('aborted');
    const erroredBefore = await upstreamCalls('error');
    await w.runtime.shutdown('test');

    const answer = await plain;
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.text)).toMatchObject({ error: { code: 'shutting_down', type: expect.any(String) } });
    const text = await streamText;
    const events = text.split('\n\n').filter(Boolean);
    expect(events.length).toBeGreaterThan(1);
    expect(JSON.parse(events.at(-1)!.replace(/^data: /, ''))).toMatchObject({ error: { code: 'shutting_down' } });
    expect(text).not.toContain('[DONE]');
    const anthropicEvents = (await anthropicText).split('\n\n').filter(Boolean);
    expect(anthropicEvents.at(-1)).toMatch(/^event: error\ndata: .*"shutting_down"/);
    expect(anthropicEvents.some((e) => e.startsWith('event: message_stop'))).toBe(false);
    const status = await grpcEnd;
    expect(status).not.toBe('ended');
    const err = status as grpc.ServiceError;
    expect(err.code).toBe(14); // UNAVAILABLE
    expect(err.metadata.get('warden-code')).toEqual(['shutting_down']);
    client.close();
    // Audited as before: shutting_down, once each.
    const records = w.audit().slice(before);
    expect(records.map((r) => r.error_code)).toEqual(['shutting_down', 'shutting_down', 'shutting_down', 'shutting_down']);
    // Warden ended those four provider calls, the provider did not fail them: `aborted`, not
    // `error` (which an alert on provider failures reads, and every rolling deploy would trip).
    expect((await upstreamCalls('aborted')) - abortedBefore).toBe(4);
    expect(await upstreamCalls('error')).toBe(erroredBefore);
  });
});
