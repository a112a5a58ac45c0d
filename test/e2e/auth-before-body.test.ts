/**
 * Credentials are checked before the body is read: a caller whose credentials fail gets its 401
 * without Warden asking for the body (`100 Continue`), waiting for it, or parsing it (a body that
 * is not JSON is still refused `unauthenticated`, not `invalid_request`), on both HTTP routes and
 * over gRPC (the JSON fields are not parsed). Each such request leaves one audit record and is
 * counted once; a caller whose credentials pass is served as before. Every refusal that comes
 * before the body is read comes instead of `100 Continue`.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient, rpcStatus, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';
import { sendRaw, rawHeader, rawError } from './helpers/http.js';

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

async function requestsTotal(protocol: string, code: string): Promise<number> {
  const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('warden_requests_total{') && l.includes(`protocol="${protocol}"`) && l.includes(`code="${code}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const ROUTES = [
  ['/v1/chat/completions', 'openai-http'],
  ['/v1/messages', 'anthropic-http'],
] as const;

describe('HTTP: credentials before the body', () => {
  for (const [path, protocol] of ROUTES) {
    it(`${path}: Expect: 100-continue without credentials is answered 401 at once, never asked for its body`, async () => {
      const before = await requestsTotal(protocol, 'unauthenticated');
      const records = w.audit().length;
      const answer = await sendRaw(w.addresses.http, `POST ${path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n`);
      expect(answer).not.toContain('100 Continue');
      expect(answer.startsWith('HTTP/1.1 401 '), answer.slice(0, 80)).toBe(true);
      expect(rawHeader(answer, 'connection')).toBe('close');
      expect(rawError(answer)).toMatchObject({ code: 'unauthenticated' });
      const requestId = rawHeader(answer, 'x-request-id');
      await eventually(() => w.audit().length > records);
      expect(w.audit().slice(records)).toMatchObject([{ request_id: requestId, principal: null, status: 'error', error_code: 'unauthenticated' }]);
      expect(await requestsTotal(protocol, 'unauthenticated')).toBe(before + 1);
    });

    it(`${path}: a bad token with a body that stalls after its headers is refused without waiting for the body`, async () => {
      const records = w.audit().length;
      const answer = await sendRaw(w.addresses.http, `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not-a-jwt\r\nx-api-key: not-a-jwt\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"model":`);
      expect(answer.startsWith('HTTP/1.1 401 '), answer.slice(0, 80)).toBe(true);
      // The body was not read: the connection is not kept for the next request behind it.
      expect(rawHeader(answer, 'connection')).toBe('close');
      const requestId = rawHeader(answer, 'x-request-id');
      await eventually(() => w.audit().length > records);
      expect(w.audit().slice(records)).toMatchObject([{ request_id: requestId, principal: null, error_code: 'unauthenticated' }]);
    });

    it(`${path}: a chunked body with no credentials is refused at its first chunk, without its end`, async () => {
      const records = w.audit().length;
      const answer = await sendRaw(w.addresses.http, `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{"model":\r\n`);
      expect(answer.startsWith('HTTP/1.1 401 '), answer.slice(0, 80)).toBe(true);
      expect(rawHeader(answer, 'connection')).toBe('close');
      await eventually(() => w.audit().length > records);
      expect(w.audit().slice(records)).toMatchObject([{ principal: null, error_code: 'unauthenticated' }]);
    });

    it(`${path}: a body that is not JSON, without credentials, is refused unauthenticated (it is not parsed)`, async () => {
      const records = w.audit().length;
      const res = await fetch(`${w.addresses.http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[[],[],{"a":0,"a":0},' });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
      await eventually(() => w.audit().length > records);
      expect(w.audit().slice(records)).toMatchObject([{ request_id: res.headers.get('x-request-id'), principal: null, error_code: 'unauthenticated' }]);
    });

    it(`${path}: with valid credentials, Expect: 100-continue is asked for its body, which is then read and judged`, async () => {
      const token = await w.signer.token('labs', 'raw-bot');
      const answer = await sendRaw(w.addresses.http, `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      expect(answer.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), answer.slice(0, 80)).toBe(true);
      // Read and refused for what it is ({} has no model), after its credentials passed.
      expect(answer).toContain('HTTP/1.1 400 ');
      expect(rawError(answer.slice(answer.indexOf('HTTP/1.1 400 ')))).toMatchObject({ code: 'invalid_request' });
    });
  }

  it('other refusals before the body (a wrong route, an encoded body) also come instead of 100 Continue', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const cases: Array<[string, string, string]> = [
      ['POST /v1/nowhere', '', '404'],
      ['POST /v1/chat/completions', 'Content-Encoding: gzip\r\n', '415'],
    ];
    for (const [line, extra, status] of cases) {
      const answer = await sendRaw(w.addresses.http, `${line} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${extra}Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n`);
      expect(answer).not.toContain('100 Continue');
      expect(answer.startsWith(`HTTP/1.1 ${status} `), answer.slice(0, 80)).toBe(true);
      expect(rawHeader(answer, 'connection')).toBe('close');
    }
  });

  it('a refused request whose body had arrived keeps the connection: the request pipelined behind it is served', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const records = w.audit().length;
    const calls = upstream.calls.length;
    const answer = await sendRaw(w.addresses.http, 
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not-a-jwt\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(['401', '200']);
    await eventually(() => w.audit().length >= records + 2);
    expect(w.audit().slice(records).map((r) => r.error_code)).toEqual(['unauthenticated', null]);
    expect(upstream.calls.length).toBe(calls + 1);
  });
});

describe('gRPC: credentials before the JSON fields', () => {
  it('a bad token with params_json that is not JSON is UNAUTHENTICATED (the field is not parsed), audited once', async () => {
    const client = gatewayClient(w.addresses.grpc);
    try {
      const records = w.audit().length;
      const err = await unaryCall(client, 'Complete', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], params_json: '[[],[],{"a":0,"a":0},' }, bearerMetadata('not-a-jwt')).catch((e: grpc.ServiceError) => e);
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(rpcStatus(err)?.errorInfo?.reason).toBe('unauthenticated');
      await eventually(() => w.audit().length > records);
      expect(w.audit().slice(records)).toMatchObject([{ principal: null, error_code: 'unauthenticated' }]);
    } finally {
      client.close();
    }
  });

  it('with a valid token the same params_json is parsed and refused as invalid JSON', async () => {
    const client = gatewayClient(w.addresses.grpc);
    try {
      const md = bearerMetadata(await w.signer.token('labs', 'raw-bot'));
      const err = await unaryCall(client, 'Complete', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], params_json: '[[],[],{"a":0,"a":0},' }, md).catch((e: grpc.ServiceError) => e);
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(rpcStatus(err)?.errorInfo?.reason).toBe('invalid_request');
    } finally {
      client.close();
    }
  });
});
