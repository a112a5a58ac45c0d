/**
 * Credentials that are there but cannot be read: an Authorization header (or gRPC `authorization`
 * metadata) that is not `Bearer <token>`, one sent twice, a bad or conflicting `x-api-key` on
 * `/v1/messages`. Each is refused `unauthenticated` with a message that says what is wrong and
 * never quotes the value. The Warden here lists `dev` after `kubernetes`, and the tests call from
 * loopback: a request with *no* credentials is the dev principal, so a malformed one that were
 * read as "none" would be served as dev too.
 */
import { request as httpRequest } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcCredentials } from '../../src/server/grpc.js';
import { gatewayClient, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

const CANARY = 'CANARY-CRED-7d1e';

let upstream: FakeUpstream;
let w: WardenFixture;
let botToken: string;
let rawToken: string;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    methods: '[kubernetes, dev]\n  dev: { principal: { namespace: support, service_account: ticket-bot } }',
  });
  botToken = await w.signer.token('support', 'ticket-bot');
  rawToken = await w.signer.token('labs', 'raw-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-7', customer_message: 'hello' } } });
const MESSAGES = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });

/**
 * POSTs with exactly these header lines (name, value, name, value, ...): fetch would merge or
 * refuse repeated and empty credential headers, node's client sends them as given.
 */
function post(path: string, headerPairs: string[], body: string): Promise<{ status: number; text: string; json: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${w.addresses.http}${path}`,
      // With headers given as a list node adds none of its own: Host is ours to send.
      { method: 'POST', headers: ['host', 'warden', 'content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)), ...headerPairs] },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The audit record of the last request, once written. */
async function lastRecord(before: number): Promise<Record<string, any>> {
  await eventually(() => w.audit().length > before);
  return w.audit().at(-1)!;
}

function expectNoCanary(...texts: string[]): void {
  for (const t of texts) expect(t).not.toContain(CANARY);
  expect(w.logs.filter((l) => l.includes(CANARY))).toEqual([]);
  expect(JSON.stringify(w.audit())).not.toContain(CANARY);
}

describe('a malformed Authorization header over HTTP', () => {
  it('no header at all: the dev principal (what a malformed one must not become)', async () => {
    const before = w.audit().length;
    const r = await post('/v1/chat/completions', [], CHAT);
    expect(r.status).toBe(200);
    expect((await lastRecord(before)).principal).toMatchObject({ kind: 'dev' });
  });

  const malformed: Array<[string, string]> = [
    ['another scheme', `Basic ${CANARY}`],
    ['the scheme alone', 'Bearer'],
    ['two words after Bearer', `Bearer ${CANARY} ${CANARY}`],
    ['an empty header', ''],
    ['a token without a scheme', CANARY],
  ];
  for (const [name, value] of malformed) {
    it(`${name}: 401 unauthenticated, said so without quoting it, never dev`, async () => {
      const before = w.audit().length;
      const calls = upstream.calls.length;
      const r = await post('/v1/chat/completions', ['authorization', value], CHAT);
      expect(r.status).toBe(401);
      expect(r.json.error).toMatchObject({ code: 'unauthenticated', message: 'the Authorization header is not a Bearer token' });
      expect(upstream.calls.length).toBe(calls);
      expect(await lastRecord(before)).toMatchObject({ principal: null, status: 'error', error_code: 'unauthenticated' });
      expectNoCanary(r.text);
    });
  }

  it('two Authorization headers are refused, even when each holds a valid token', async () => {
    const other = await w.signer.token('labs', 'raw-bot');
    for (const [first, second] of [
      [botToken, botToken],
      [botToken, other],
      [`Basic ${CANARY}`, botToken],
    ]) {
      const before = w.audit().length;
      const r = await post('/v1/chat/completions', ['authorization', first!.startsWith('Basic') ? first! : `Bearer ${first}`, 'Authorization', `Bearer ${second}`], CHAT);
      expect(r.status).toBe(401);
      expect(r.json.error).toMatchObject({ code: 'unauthenticated', message: 'more than one Authorization header' });
      expect(await lastRecord(before)).toMatchObject({ principal: null, error_code: 'unauthenticated' });
      expectNoCanary(r.text);
    }
  });
});

describe('credentials on /v1/messages (Authorization and x-api-key)', () => {
  const anthropic = (headerPairs: string[]) => post('/v1/messages', ['anthropic-version', '2023-06-01', ...headerPairs], MESSAGES);

  it('a valid x-api-key, or the same token in both headers, is served', async () => {
    expect((await anthropic(['x-api-key', rawToken])).status).toBe(200);
    expect((await anthropic(['x-api-key', rawToken, 'authorization', `Bearer ${rawToken}`])).status).toBe(200);
  });

  const refused: Array<[string, string[], string]> = [
    ['a malformed Authorization next to a valid x-api-key', ['authorization', `Basic ${CANARY}`, 'x-api-key', 'TOKEN'], 'the Authorization header is not a Bearer token'],
    ['two x-api-key headers', ['x-api-key', 'TOKEN', 'x-api-key', 'TOKEN'], 'more than one x-api-key header'],
    ['an x-api-key of two words', ['x-api-key', `${CANARY} ${CANARY}`], 'the x-api-key header is not a single token'],
    ['an empty x-api-key', ['x-api-key', ''], 'the x-api-key header is not a single token'],
    ['different tokens in Authorization and x-api-key', ['authorization', `Bearer ${CANARY}`, 'x-api-key', 'TOKEN'], 'the Authorization and x-api-key headers carry different tokens'],
  ];
  for (const [name, pairs, message] of refused) {
    it(`${name}: 401 unauthenticated`, async () => {
      const before = w.audit().length;
      const r = await anthropic(pairs.map((v) => (v === 'TOKEN' ? rawToken : v)));
      expect(r.status).toBe(401);
      expect(r.json.error).toMatchObject({ type: 'authentication_error', code: 'unauthenticated', message });
      expect(await lastRecord(before)).toMatchObject({ principal: null, error_code: 'unauthenticated' });
      expectNoCanary(r.text);
    });
  }
});

describe('malformed authorization metadata over gRPC', () => {
  const request = { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-8', customer_message: 'hi' } };

  it('none: the dev principal; not Bearer <token>: UNAUTHENTICATED, never dev', async () => {
    const client = gatewayClient(w.addresses.grpc);
    try {
      expect((await unaryCall(client, 'Complete', request)).choices).toHaveLength(1);
      for (const value of [`Basic ${CANARY}`, 'Bearer', `Bearer ${CANARY} x`]) {
        const before = w.audit().length;
        const md = new grpc.Metadata();
        md.set('authorization', value);
        const err = (await unaryCall(client, 'Complete', request, md).catch((e: unknown) => e)) as grpc.ServiceError;
        expect(err.code, value).toBe(grpc.status.UNAUTHENTICATED);
        expect(err.metadata.get('warden-code')[0]).toBe('unauthenticated');
        expect(err.details).toBe('the authorization metadata is not a Bearer token');
        expect(await lastRecord(before)).toMatchObject({ principal: null, error_code: 'unauthenticated' });
        expectNoCanary(err.details);
      }
    } finally {
      client.close();
    }
  });
});

describe('repeated authorization metadata', () => {
  // No client here can send it (grpc-js refuses to, node's HTTP/2 server keeps only the first
  // field): the metadata grpc-js would hand over is built directly.
  it('two values are refused, not resolved by order', () => {
    const peer = { address: '127.0.0.1', local: true, transport: 'tcp' } as const;
    const md = new grpc.Metadata();
    md.add('authorization', 'Bearer first');
    expect(grpcCredentials(md, peer)).toEqual({ bearer: 'first', peer });
    md.add('authorization', 'Bearer second');
    expect(grpcCredentials(md, peer)).toEqual({ peer, malformed: 'more than one authorization metadata value' });
    expect(grpcCredentials(new grpc.Metadata(), peer)).toEqual({ peer });
  });
});
