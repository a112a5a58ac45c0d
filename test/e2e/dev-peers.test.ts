/**
 * The `dev` identity over HTTP, by who the caller is: with the app listeners on every address
 * (`[::]`), a caller on this host (127.0.0.1, which arrives as ::ffff:127.0.0.1, and ::1) is the
 * dev principal, one from another address is not, whatever headers it sends. A request a local
 * reverse proxy relays (it carries x-forwarded-for, forwarded or x-real-ip) is not local either:
 * the proxy is the peer, another host the caller.
 */
import { networkInterfaces } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayClient, rpcStatus, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

/** This host's first non-loopback IPv4 address (a caller that is not local); see grpc-remote-peer.test.ts. */
function remoteAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

const REMOTE = remoteAddress();
const BODY = { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-5', customer_message: 'hi' } } };

let upstream: FakeUpstream;
let w: WardenFixture;
let port: number;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    methods: '[dev]\n  dev: { principal: { namespace: support, service_account: ticket-bot } }',
    listen: 'listen: { http: "[::]:0", grpc: "[::]:0", admin: 127.0.0.1:0 }',
  });
  port = Number(new URL(w.addresses.http).port);
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

async function call(host: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://${host}:${port}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(BODY) });
  return { status: res.status, json: await res.json() };
}

describe('dev identity: which HTTP callers are local', () => {
  it('127.0.0.1 (an IPv4-mapped ::ffff:127.0.0.1 on a [::] listener) and ::1 are the dev principal', async () => {
    for (const host of ['127.0.0.1', '[::1]']) {
      const before = w.audit().length;
      const client = new OpenAI({ baseURL: `http://${host}:${port}/v1`, apiKey: 'ignored-by-dev', maxRetries: 0 });
      const res = await client.chat.completions.create(BODY as never);
      expect(res.choices[0]!.message.content).toBe('upstream saw: Ticket T-5:\nhi');
      expect(w.audit().slice(before).map((r) => r.principal?.subject)).toEqual(['system:serviceaccount:support:ticket-bot']);
    }
  });

  it('a caller from another address is refused, also when it claims to be 127.0.0.1 in x-forwarded-for', async () => {
    expect(REMOTE, 'the host needs a non-loopback IPv4 address for this case').toBeDefined();
    for (const headers of [{}, { 'x-forwarded-for': '127.0.0.1' }, { forwarded: 'for=127.0.0.1' }] as Array<Record<string, string>>) {
      const r = await call(REMOTE!, headers);
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('unauthenticated');
      expect(r.json.error.message).toBe('dev authentication is accepted only from loopback or Unix-socket peers');
    }
  });

  it('a request a web page made (a browser adds Origin) is refused on both routes, though it comes from loopback: nothing goes upstream', async () => {
    // What a page on any site can send to a loopback port without a preflight: a "simple" POST
    // (text/plain, the JSON as its body), cross-site; or, by DNS rebinding, a same-origin one.
    const calls = upstream.calls.length;
    const before = w.audit().length;
    const json = JSON.stringify(BODY);
    const anthropic = JSON.stringify({ ...BODY, max_tokens: 16 });
    const cases: Array<[string, string, Record<string, string>]> = [
      ['/v1/chat/completions', json, { 'content-type': 'text/plain;charset=UTF-8', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }],
      ['/v1/chat/completions', json, { 'content-type': 'application/json', Origin: 'http://rebound.example:8700', 'sec-fetch-site': 'same-origin' }],
      ['/v1/messages', anthropic, { 'content-type': 'text/plain;charset=UTF-8', origin: 'null' }],
    ];
    for (const [path, body, headers] of cases) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body });
      expect(res.status, path).toBe(401);
      const error = ((await res.json()) as any).error;
      expect(error.code).toBe('unauthenticated');
      expect(error.message).toBe('dev authentication is not accepted for a request a web page made (it carries origin): the caller is a browser, not the local workload');
    }
    expect(upstream.calls.length).toBe(calls);
    const records = w.audit().slice(before);
    expect(records.map((r) => [r.error_code, r.principal])).toEqual(Array(3).fill(['unauthenticated', null]));
    expect(JSON.stringify(records)).not.toContain('evil.example');
    // The same call without Origin (what the SDKs and curl send) is the dev principal.
    const plain = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: json });
    expect(plain.status).toBe(200);
  });

  it('a request relayed by a local proxy (x-forwarded-for, forwarded, x-real-ip, or what Envoy adds by default) is refused, over HTTP and gRPC', async () => {
    const relayed = [
      ['x-forwarded-for', '203.0.113.9'],
      ['Forwarded', 'for=203.0.113.9;proto=https'],
      ['X-Real-IP', '203.0.113.9'],
      // Envoy adds these without being told to; an HTTP proxy must add Via.
      ['X-Forwarded-Proto', 'http'],
      ['x-envoy-external-address', '203.0.113.9'],
      ['X-Forwarded-Host', 'warden.example'],
      ['Via', '1.1 proxy.example'],
    ] as const;
    for (const [name, value] of relayed) {
      const before = w.audit().length;
      // The official SDK, as a proxy relaying it would send it on.
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'ignored-by-dev', maxRetries: 0, defaultHeaders: { [name]: value } });
      const err = await client.chat.completions.create(BODY as never).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      const error = (err as InstanceType<typeof OpenAI.AuthenticationError>).error as { code?: string; message?: string };
      expect(error.code).toBe('unauthenticated');
      expect(error.message).toBe(`dev authentication is not accepted for a request relayed by a proxy (it carries ${name.toLowerCase()}): the caller is not the local peer`);
      const records = w.audit().slice(before);
      expect(records.map((r) => [r.error_code, r.principal])).toEqual([['unauthenticated', null]]);
      // The address it names is not repeated anywhere.
      expect(JSON.stringify(records)).not.toContain('203.0.113.9');
    }
    const client = gatewayClient(`127.0.0.1:${w.addresses.grpc.split(':').at(-1)}`);
    try {
      const metadata = new grpc.Metadata();
      metadata.set('x-forwarded-proto', 'http');
      const err = await unaryCall(client, 'Complete', { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-6', customer_message: 'hi' } }, metadata).then(
        () => undefined,
        (e: unknown) => e as grpc.ServiceError,
      );
      expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err?.details).toBe('dev authentication is not accepted for a request relayed by a proxy (it carries x-forwarded-proto): the caller is not the local peer');
      expect(rpcStatus(err!)?.errorInfo?.reason).toBe('unauthenticated');
    } finally {
      client.close();
    }
  });
});
