/**
 * Long-run bounds: nothing a caller controls may add metric series or leave state behind. Many
 * distinct caller values go through a real Warden (unknown template ids and versions, unknown
 * model names, distinct principals, request ids, trace contexts, on HTTP, the Anthropic route and
 * gRPC), and clients that vanish mid-request or mid-stream; afterwards `/metrics` has exactly the
 * series it had after one call of each kind, none of them naming a caller's value, and nothing is
 * left in flight.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient, unaryCall } from './helpers/grpc.js';
import { postChat, postRoute } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let gateway: any;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  gateway = gatewayClient(w.addresses.grpc);
});

afterAll(async () => {
  gateway?.close();
  await w?.close();
  await upstream?.close();
});

const metricsText = async () => (await fetch(`${w.addresses.admin}/metrics`)).text();

/** Every series of the exposition (name and labels), without values; process metrics left out (their labels are the runtime's). */
const seriesOf = (text: string) =>
  new Set(
    text
      .split('\n')
      .filter((l) => l.startsWith('warden_') && !l.startsWith('warden_process_') && !l.startsWith('warden_nodejs_'))
      .map((l) => l.slice(0, l.lastIndexOf(' '))),
  );

const gauge = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);

/** One round of calls, each carrying caller values made from `tag`. */
async function round(tag: string): Promise<void> {
  const bot = await w.signer.token('support', 'ticket-bot');
  const stranger = await w.signer.token(`ns-${tag}`, `sa-${tag}`);
  const raw = await w.signer.token('labs', 'raw-bot');
  const trace = { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`, 'x-request-id': `req-${tag}` };
  const statuses = await Promise.all([
    // Served, streamed and not; an unknown template id, an unknown version of a known one, an unknown model.
    postChat(w.addresses.http, bot, { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: `T-${tag}`, customer_message: `hello ${tag}` } } }, trace),
    postChat(w.addresses.http, raw, { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `hi ${tag}` }] }, trace),
    postChat(w.addresses.http, bot, { model: 'gpt-4o-mini', warden: { template: `team/unknown-${tag}`, variables: {} } }, trace),
    postChat(w.addresses.http, bot, { model: 'gpt-4o-mini', warden: { template: `support/ticket-summary@${7000 + Number(tag.replace(/\D/g, '') || 0)}`, variables: {} } }),
    postChat(w.addresses.http, raw, { model: `model-${tag}`, messages: [{ role: 'user', content: 'hi' }] }),
    // A principal the policy has never seen, and one with no valid token.
    postChat(w.addresses.http, stranger, { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1' } } }),
    postChat(w.addresses.http, `bad-${tag}`, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  ]).then((responses) => Promise.all(responses.map(async (r) => (await r.text(), r.status))));
  expect(statuses.slice(0, 2)).toEqual([200, 200]);
  expect(statuses.slice(2).every((s) => s >= 400)).toBe(true);
  const anthropic = await postRoute(w.addresses.http, '/v1/messages', { model: `claude-${tag}`, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }, raw);
  expect(anthropic.status).toBeGreaterThanOrEqual(400);
  const grpcOutcomes = await Promise.all([
    unaryCall(gateway, 'Complete', { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: `T-${tag}`, customer_message: 'x' } }, bearerMetadata(bot)).then(
      () => 'ok',
      (e: grpc.ServiceError) => e.code,
    ),
    unaryCall(gateway, 'Complete', { model: `model-${tag}`, template: { id: `team/unknown-${tag}`, version: 1 } }, bearerMetadata(bot)).then(
      () => 'ok',
      (e: grpc.ServiceError) => e.code,
    ),
  ]);
  expect(grpcOutcomes[0]).toBe('ok');
  expect(grpcOutcomes[1]).not.toBe('ok');
}

/** A client that sends half a request body and vanishes; one that reads a stream's first bytes and vanishes; a gRPC stream cancelled. */
async function vanishing(tag: string): Promise<void> {
  const token = await w.signer.token('labs', 'raw-bot');
  const { hostname, port } = new URL(w.addresses.http);
  const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `vanish ${tag}` }] });
  // Half a body, then gone.
  await new Promise<void>((resolve) => {
    const s = connect(Number(port), hostname, () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body.slice(0, 20)}`);
      s.destroy();
      resolve();
    });
  });
  // A stream read up to its first event, then gone.
  await new Promise<void>((resolve) => {
    const s = connect(Number(port), hostname, () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`);
    });
    s.once('data', () => {
      s.destroy();
      resolve();
    });
  });
  // A gRPC stream cancelled after its first message.
  await new Promise<void>((resolve) => {
    const call = gateway.StreamComplete({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `vanish ${tag}` }] }, bearerMetadata(token));
    call.on('error', () => resolve());
    call.once('data', () => call.cancel());
  });
}

describe('long-run bounds', () => {
  it('many distinct caller values add no metric series, name none, and leave nothing in flight', { timeout: 120_000 }, async () => {
    upstream.mode = 'stream-slow';
    await vanishing('warm');
    upstream.mode = 'ok';
    await round('warm');
    await eventually(async () => gauge(await metricsText(), 'warden_requests_in_flight') === 0 && gauge(await metricsText(), 'warden_active_streams') === 0);
    const before = seriesOf(await metricsText());

    for (let i = 0; i < 40; i++) {
      await round(`r${i}`);
      if (i % 4 === 0) {
        upstream.mode = 'stream-slow';
        await vanishing(`v${i}`);
        upstream.mode = 'ok';
      }
    }
    await eventually(async () => {
      const text = await metricsText();
      return gauge(text, 'warden_requests_in_flight') === 0 && gauge(text, 'warden_active_streams') === 0;
    });
    const text = await metricsText();
    expect([...seriesOf(text)].filter((s) => !before.has(s))).toEqual([]);
    for (const value of ['unknown-r7', 'model-r7', 'ns-r7', 'sa-r7', 'claude-r7', 'req-r7']) expect(text).not.toContain(value);
    // The template version 7007 as a label would hold it (`…@7007`, `"7007"`): not the digits alone, which a
    // sample's value (a memory size, a CPU time) holds now and then.
    expect(text).not.toMatch(/[@"]7007/);
    // Every call was audited, the vanished ones too.
    const audited = w.audit();
    expect(audited.length).toBeGreaterThan(40 * 10);
  });
});
