/**
 * Requests refused before Warden's handlers could see them as requests: HTTP that Node's parser
 * refuses (a header block over `limits.max_header_bytes`, a bad method or HTTP version) and gRPC
 * calls to methods Warden does not serve. Each is still counted in `warden_requests_total` and
 * leaves one audit record with the code, and none repeats the caller's text.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcStatus } from './helpers/grpc.js';
import { eventually, startWarden, DOWN_URL, type WardenFixture } from './helpers/warden.js';
import { sendRaw, rawHeader } from './helpers/http.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

let w: WardenFixture;

beforeAll(async () => {
  w = await startWarden({ upstreamUrl: DOWN_URL });
});

afterAll(async () => {
  await w?.close();
});

async function requestsTotal(protocol: string, code: string): Promise<number> {
  const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('warden_requests_total{') && l.includes(`protocol="${protocol}"`) && l.includes(`code="${code}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Sends raw bytes, half-closing after them, and resolves with the whole answer once the server closes. */
const raw = (text: string): Promise<string> => sendRaw(w.addresses.http, text, true);

/**
 * A token Warden has verified already (a request with it came before), so a request that carries
 * it is authenticated at once: raw() half-closes after its request, and Node ends a connection
 * whose client half-closed before its answer is under way (a first verification is not).
 */
async function verifiedToken(): Promise<string> {
  const token = await w.signer.token('labs', 'raw-bot');
  const res = await fetch(`${w.addresses.http}/v1/models`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return token;
}

describe('HTTP requests refused by the parser', () => {
  const CANARY = 'CANARY-HEADER-7f3a';
  const cases: Array<[string, string, number, string]> = [
    [
      'a header block over max_header_bytes',
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ntraceparent: ${TRACEPARENT}\r\nX-Big: ${CANARY}${'a'.repeat(20_000)}\r\nContent-Length: 2\r\n\r\n{}`,
      431,
      'payload_too_large',
    ],
    ['an invalid method', `FOO /v1/chat/${CANARY} HTTP/1.1\r\nHost: x\r\n\r\n`, 400, 'invalid_request'],
    ['an invalid HTTP version', `POST /v1/chat/${CANARY} HTTP/9.9\r\nHost: x\r\n\r\n`, 400, 'invalid_request'],
  ];
  for (const [name, request, status, code] of cases) {
    it(`${name}: ${status} ${code}, counted once and audited once`, async () => {
      const before = await requestsTotal('openai-http', code);
      const records = w.audit().length;
      const answer = await raw(request);
      expect(answer.startsWith(`HTTP/1.1 ${status} `), answer.slice(0, 80)).toBe(true);
      expect(rawHeader(answer, 'connection')).toBe('close');
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      expect(body.error.code).toBe(code);
      expect(answer).not.toContain(CANARY);
      const requestId = rawHeader(answer, 'x-request-id');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(await requestsTotal('openai-http', code)).toBe(before + 1);
      const added = w.audit().slice(records);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ request_id: requestId, principal: null, status: 'error', error_code: code, model: null, template: null });
      expect(JSON.stringify(added[0])).not.toContain(CANARY);
    });
  }

  it('a body error inside a request the handler already has is counted once, not twice', async () => {
    // Credentials that pass: the body is read only then (a request refused for its credentials is not read).
    const token = await verifiedToken();
    const records = w.audit().length;
    const before = await requestsTotal('openai-http', 'invalid_request');
    const answer = await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    await eventually(() => w.audit().length > records);
    expect(w.audit().slice(records)).toHaveLength(1);
    expect(await requestsTotal('openai-http', 'invalid_request')).toBe(before + 1);
  });

  // Node hands CONNECT to a 'connect' listener, not to the request handler, and with none it
  // destroys the socket unanswered: no answer, no record, no metric.
  for (const target of [`${CANARY}.example:443`, `/v1/chat/${CANARY}`]) {
    it(`a CONNECT request (${target.startsWith('/') ? 'a path' : 'an authority'} as target): 405 invalid_request with allow, counted once and audited once`, async () => {
      const before = await requestsTotal('openai-http', 'invalid_request');
      const records = w.audit().length;
      const answer = await raw(`CONNECT ${target} HTTP/1.1\r\nHost: x\r\ntraceparent: ${TRACEPARENT}\r\n\r\n`);
      expect(answer.startsWith('HTTP/1.1 405 '), answer.slice(0, 80)).toBe(true);
      expect(rawHeader(answer, 'allow')).toBe('GET, POST');
      expect(rawHeader(answer, 'connection')).toBe('close');
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      expect(body.error).toMatchObject({ code: 'invalid_request', type: 'invalid_request_error' });
      expect(body.error.message).toContain('method CONNECT is not allowed');
      expect(answer).not.toContain(CANARY);
      const requestId = rawHeader(answer, 'x-request-id');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(await requestsTotal('openai-http', 'invalid_request')).toBe(before + 1);
      const added = w.audit().slice(records);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ request_id: requestId, principal: null, status: 'error', error_code: 'invalid_request', trace_id: TRACE_ID });
      expect(JSON.stringify(added[0])).not.toContain(CANARY);
    });
  }

  // Node answers an Expect it does not know (anything but 100-continue) itself when nothing listens
  // for 'checkExpectation': a bare 417 with no body and no request id, never audited.
  for (const [path, anthropic] of [['/v1/chat/completions', false], ['/v1/messages', true]] as const) {
    it(`an Expect other than 100-continue on ${path}: 417 invalid_request at expect in the route's shape, counted once and audited once`, async () => {
      const protocol = anthropic ? 'anthropic-http' : 'openai-http';
      const before = await requestsTotal(protocol, 'invalid_request');
      const records = w.audit().length;
      const answer = await raw(`POST ${path} HTTP/1.1\r\nHost: x\r\nExpect: ${CANARY}\r\ntraceparent: ${TRACEPARENT}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      expect(answer.startsWith('HTTP/1.1 417 '), answer.slice(0, 80)).toBe(true);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      if (anthropic) expect(body.type).toBe('error');
      expect(body.error).toMatchObject({ code: 'invalid_request', type: 'invalid_request_error', param: 'expect' });
      expect(body.error.message).toContain('Expect header');
      expect(answer).not.toContain(CANARY);
      const requestId = rawHeader(answer, 'x-request-id');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      if (anthropic) expect(rawHeader(answer, 'request-id')).toBe(requestId);
      expect(await requestsTotal(protocol, 'invalid_request')).toBe(before + 1);
      const added = w.audit().slice(records);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ request_id: requestId, principal: null, status: 'error', error_code: 'invalid_request', trace_id: TRACE_ID });
      expect(JSON.stringify(added[0])).not.toContain(CANARY);
    });
  }

  // Node answers `Expect: 100-continue` with `100 Continue` itself when nothing listens for
  // 'checkContinue', so a client waiting to be asked sent a body already refused by its length.
  for (const [path, anthropic] of [['/v1/chat/completions', false], ['/v1/messages', true]] as const) {
    it(`Expect: 100-continue with a Content-Length over max_body_bytes on ${path}: 413 at once, no 100 Continue, counted once and audited once`, async () => {
      const protocol = anthropic ? 'anthropic-http' : 'openai-http';
      const before = await requestsTotal(protocol, 'payload_too_large');
      const records = w.audit().length;
      // The body is never sent: the client waits for the 100 (the fixture's limit is 65536).
      const answer = await raw(`POST ${path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\ntraceparent: ${TRACEPARENT}\r\nContent-Type: application/json\r\nContent-Length: 65537\r\n\r\n`);
      expect(answer.startsWith('HTTP/1.1 413 '), answer.slice(0, 80)).toBe(true);
      expect(answer).not.toContain('100 Continue');
      expect(rawHeader(answer, 'connection')).toBe('close');
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      expect(body.error).toMatchObject({ code: 'payload_too_large', param: '$' });
      const requestId = rawHeader(answer, 'x-request-id');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      await eventually(() => w.audit().length > records);
      expect(w.audit().slice(records)).toMatchObject([{ request_id: requestId, principal: null, status: 'error', error_code: 'payload_too_large', trace_id: TRACE_ID }]);
      expect(await requestsTotal(protocol, 'payload_too_large')).toBe(before + 1);
    });
  }

  it('Expect: 100-continue within max_body_bytes is still asked for its body with 100 Continue, and then read', async () => {
    // With credentials that pass: one without is refused before its body is asked for (auth-before-body.test.ts).
    const token = await verifiedToken();
    const answer = await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(answer.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), answer.slice(0, 80)).toBe(true);
    // Read and refused for what it is ({} has no model), not for its length.
    expect(answer).toContain('HTTP/1.1 400 ');
  });

  it('a request asking to upgrade the connection (websocket) is served as a plain request, and audited once', async () => {
    const records = w.audit().length;
    const answer = await raw('GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    // No credentials: the request handler's 401, not a 101 or a dropped connection.
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    const requestId = rawHeader(answer, 'x-request-id');
    await eventually(() => w.audit().length > records);
    expect(w.audit().slice(records)).toMatchObject([{ request_id: requestId, status: 'error', error_code: 'unauthenticated' }]);
  });

  it('a connection that sends nothing is no request: neither counted nor audited', async () => {
    const records = w.audit().length;
    const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
    expect(await raw('')).toBe('');
    expect(w.audit().length).toBe(records);
    const sum = (t: string) => t.split('\n').filter((l) => l.startsWith('warden_requests_total{')).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(sum(await (await fetch(`${w.addresses.admin}/metrics`)).text())).toBe(sum(text));
  });
});

describe('gRPC calls to a method Warden does not serve', () => {
  const identity = (b: Buffer) => b;
  let client: grpc.Client;

  beforeAll(() => {
    client = new grpc.Client(w.addresses.grpc, grpc.credentials.createInsecure());
  });

  afterAll(() => client?.close());

  function unaryUnknown(path: string): Promise<grpc.ServiceError> {
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', TRACEPARENT);
    return new Promise((resolve, reject) =>
      client.makeUnaryRequest(path, identity, identity, Buffer.from('CANARY-BODY'), metadata, (err) => (err ? resolve(err) : reject(new Error('expected an error')))),
    );
  }

  for (const path of ['/warden.v1.PromptGateway/Delete', '/warden.v2.PromptGateway/Complete', '/x.CANARY/Z']) {
    it(`${path}: UNIMPLEMENTED with warden-code not_found, counted and audited, the path not echoed`, async () => {
      const before = await requestsTotal('grpc', 'not_found');
      const records = w.audit().length;
      const err = await unaryUnknown(path);
      expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(err.metadata.get('warden-code')).toEqual(['not_found']);
      expect(err.details).not.toContain(path);
      expect(err.details).not.toContain('CANARY');
      // The status details agree with the status: UNIMPLEMENTED, ErrorInfo's reason not_found.
      expect(rpcStatus(err)).toMatchObject({ code: grpc.status.UNIMPLEMENTED, message: err.details, errorInfo: { reason: 'not_found', domain: 'warden' } });
      expect(await requestsTotal('grpc', 'not_found')).toBe(before + 1);
      const added = w.audit().slice(records);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ principal: null, status: 'error', error_code: 'not_found', trace_id: TRACE_ID });
      expect(JSON.stringify(added[0])).not.toContain('CANARY');
    });
  }

  it('a server-streaming call to an unknown method gets the same answer', async () => {
    const records = w.audit().length;
    const call = client.makeServerStreamRequest('/warden.v1.PromptGateway/Tail', identity, identity, Buffer.from('x'));
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      call.on('data', () => undefined);
      call.on('error', resolve);
    });
    expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(err.metadata.get('warden-code')).toEqual(['not_found']);
    expect(w.audit().slice(records)).toHaveLength(1);
  });
});
