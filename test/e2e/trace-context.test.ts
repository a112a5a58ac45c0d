/**
 * W3C Trace Context at the edges: a caller's `traceparent` is continued to the upstream call and
 * the audit record, and its `tracestate` (vendor state of the caller's tracing) is deliberately
 * not passed on to the provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import type { FakeUpstream } from './helpers/upstream.js';
import type { WardenFixture } from './helpers/warden.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const TRACESTATE = 'vendor=CANARY-TRACESTATE-1,other=x';

let g: GatewayWarden;
let upstream: FakeUpstream;
let w: WardenFixture;
let gateway: any;

beforeAll(async () => {
  g = await startGatewayWarden();
  ({ upstream, w, gateway } = g);
});

afterAll(async () => {
  await g?.close();
});

function expectContinuedWithoutState(requestId: string | undefined): void {
  const sent = upstream.calls.at(-1)!.headers;
  const rec = requestId === undefined ? w.audit().at(-1)! : w.audit().find((r) => r.request_id === requestId)!;
  expect(sent.traceparent).toBe(`00-${TRACE_ID}-${rec.span_id}-01`);
  expect(rec.trace_id).toBe(TRACE_ID);
  expect(sent.tracestate).toBeUndefined();
  expect(JSON.stringify(rec)).not.toContain('CANARY-TRACESTATE');
}

describe('trace context', () => {
  it('HTTP: traceparent continued upstream and in the audit record, tracestate not forwarded', async () => {
    const token = await w.signer.token('support', 'ticket-bot');
    const res = await postChat(
      w.addresses.http,
      token,
      { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hi' } } },
      { traceparent: TRACEPARENT, tracestate: TRACESTATE },
    );
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expectContinuedWithoutState(res.headers.get('x-request-id') ?? '');
  });

  it('gRPC: the same', async () => {
    const token = await w.signer.token('support', 'ticket-bot');
    const res = await unaryCall(
      gateway,
      'Complete',
      { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: 'hi' } },
      bearerMetadata(token, { traceparent: TRACEPARENT, tracestate: TRACESTATE }),
    );
    expect(res.choices).toHaveLength(1);
    expectContinuedWithoutState(undefined);
  });
});
