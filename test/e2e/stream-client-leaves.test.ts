/**
 * A streaming client that leaves, at each phase of its stream: before the answer's headers (the
 * upstream has the call and has not answered), mid-stream (after a first chunk), and during the
 * redaction hold (a value still arriving is held back). On each route (OpenAI SSE, Anthropic SSE,
 * gRPC StreamComplete): the upstream call is aborted, the request has exactly one audit record
 * (`cancelled`), counted once under its protocol, and the held text never reaches the client.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient, unaryCall } from './helpers/grpc.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

const chunk = (delta: object) => JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: null }] });

type Phase = 'headers' | 'mid' | 'hold';
let phase: Phase = 'mid';
/** Each upstream call: whether its request had all arrived, and whether its response was closed. */
const upstreamCalls: Array<{ arrived: boolean; closed: boolean }> = [];
let up: Server;
let w: WardenFixture;
let token: string;

beforeAll(async () => {
  // Answers the phase's first part and then nothing more, until Warden closes the call.
  up = createServer((req, res) => {
    const call = { arrived: false, closed: false };
    upstreamCalls.push(call);
    res.on('close', () => (call.closed = true));
    req.resume();
    req.on('end', () => {
      call.arrived = true;
      if (phase === 'headers') return;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // An e-mail address still arriving (`jane.do`): held back, since it may grow into one.
      res.write(`data: ${chunk({ role: 'assistant', content: phase === 'mid' ? 'Hello there. ' : 'Hello there. Write to jane.do' })}\n\n`);
    });
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(up.address() as AddressInfo).port}/v1`;
  // Upstream timeouts far longer than the test: only the client's leaving ends a call.
  w = await startWarden({ upstreamUrl: url, upstreamTimeouts: '{ connect_ms: 1000, headers_ms: 60000, body_ms: 60000 }' });
  token = await w.signer.token('labs', 'raw-bot');
});

afterAll(async () => {
  up?.closeAllConnections();
  up?.close();
  await w?.close();
});

async function cancelledTotal(protocol: string): Promise<number> {
  const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('warden_requests_total{') && l.includes(`protocol="${protocol}"`) && l.includes('code="cancelled"'));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** What the client must have received before it leaves (nothing before the headers). */
const SEEN: Record<Phase, string | undefined> = { headers: undefined, mid: 'Hello there. ', hold: 'Write to ' };

/** Starts a stream on `route`; `got` collects what it received; `leave` ends it from the client's side. */
function open(route: string): { got: () => string; leave: () => void } {
  let got = '';
  if (route === 'grpc') {
    const client = gatewayClient(w.addresses.grpc);
    const call = client.StreamComplete({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, bearerMetadata(token));
    call.on('error', () => undefined);
    call.on('data', (d: { choices?: Array<{ delta?: { content?: string } }> }) => (got += d.choices?.[0]?.delta?.content ?? ''));
    return {
      got: () => got,
      leave: () => {
        call.cancel();
        client.close();
      },
    };
  }
  const body = { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }], ...(route === '/v1/messages' ? { max_tokens: 50 } : {}) };
  const u = new URL(w.addresses.http);
  const req = httpRequest({ host: u.hostname, port: u.port, path: route, method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'anthropic-version': '2023-06-01' } });
  req.on('error', () => undefined);
  req.on('response', (res) => res.on('data', (d: Buffer) => (got += d.toString())));
  req.end(JSON.stringify(body));
  return { got: () => got, leave: () => req.destroy() };
}

describe('a streaming client that leaves', () => {
  for (const [route, protocol] of [
    ['/v1/chat/completions', 'openai-http'],
    ['/v1/messages', 'anthropic-http'],
    ['grpc', 'grpc'],
  ] as const) {
    for (const p of ['headers', 'mid', 'hold'] as const) {
      it(`${route}, ${p === 'headers' ? 'before the headers' : p === 'mid' ? 'mid-stream' : 'during the hold'}: upstream aborted, one cancelled record, counted once`, { timeout: 30_000 }, async () => {
        phase = p;
        const n = upstreamCalls.length;
        const audited = w.audit().length;
        const before = await cancelledTotal(protocol);
        const stream = open(route);
        await eventually(() => upstreamCalls[n]?.arrived === true);
        const seen = SEEN[p];
        if (seen !== undefined) await eventually(() => stream.got().includes(seen));
        stream.leave();
        await eventually(() => upstreamCalls[n]!.closed);
        await eventually(() => w.audit().length > audited);
        expect(w.audit().slice(audited)).toMatchObject([{ status: 'error', error_code: 'cancelled', stream: true }]);
        expect(await cancelledTotal(protocol)).toBe(before + 1);
        // The held part of the address never left Warden.
        expect(stream.got()).not.toContain('jane');
        expect(upstreamCalls.length).toBe(n + 1);
      });
    }
  }

  it('no record came late: the next request is the only one after them', async () => {
    phase = 'headers';
    const audited = w.audit().length;
    const client = gatewayClient(w.addresses.grpc);
    try {
      // Render (refused by the fixture's policy for a raw prompt: a record all the same, and no
      // upstream call); its record follows any late one of the streams above.
      await unaryCall(client, 'Render', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, bearerMetadata(token)).catch(() => undefined);
    } finally {
      client.close();
    }
    await eventually(() => w.audit().length > audited);
    expect(w.audit().slice(audited)).toMatchObject([{ action: 'prompt.render' }]);
  });
});
