/**
 * End to end: a seeded mutation fuzzer (helpers/ingress-fuzz.ts) drives the real Warden's
 * ingress — `/v1/chat/completions`, `/v1/messages`, `/v1/models`, gRPC `PromptGateway` (from
 * mutated messages and from damaged protobuf bytes) and the admin listener — with bad input of
 * every kind: values of the wrong type, dropped and repeated members, duplicate keys, odd numbers,
 * deep nesting, long and odd strings (lone surrogate escapes, U+0000, BOM, RTL marks), truncated
 * or non-UTF-8 bodies, odd content types and encodings, chunked bodies cut anywhere, odd
 * credentials and template headers, against an upstream that sometimes refuses, fails or answers
 * garbage. Every answer is held to the oracle: a code README documents with the status it gives
 * for that route, in the route's error shape; never `internal` (or another code bad input cannot
 * cause); a streamed failure ends with the documented error event; an answer within 8 s; Warden
 * still serving; no canary (PII, a secret, a token) in an answer, a log line or an audit record;
 * an unknown member where README says none is carried refused at its location.
 *
 * A fixed seed and a few hundred cases per route keep it deterministic and short; the same code
 * ran at volume (tens of thousands of cases) when it was written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';
import { CANARY_EMAIL, CANARY_KEY, canariesIn, checkGrpc, checkHttp, runFuzz, type FuzzTarget, type RawResponse } from './helpers/ingress-fuzz.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let target: FuzzTarget;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  target = {
    http: w.addresses.http,
    grpc: w.addresses.grpc,
    admin: w.addresses.admin,
    logs: w.logs,
    auditFile: w.auditFile,
    rawToken: await w.signer.token('labs', 'raw-bot'),
    governedToken: await w.signer.token('support', 'ticket-bot'),
    setUpstreamMode: (mode) => {
      upstream.mode = mode;
    },
  };
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

function response(status: number, body: unknown, headers: Array<[string, string]> = [['content-type', 'application/json'], ['x-request-id', 'r-1']]): RawResponse {
  return { status, headers, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) };
}

describe('the oracle', () => {
  it('refuses what README does not document: internal, a status that does not match the code, the wrong shape, a stream without its end, a canary', () => {
    expect(checkHttp('chat', 'POST', response(400, { error: { message: 'm', type: 'invalid_request_error', code: 'invalid_request', param: 'model' } }))).toEqual([]);
    expect(checkHttp('chat', 'POST', response(500, { error: { message: 'internal error', type: 'server_error', code: 'internal', param: null } }))).toEqual(['code internal']);
    expect(checkHttp('chat', 'POST', response(400, { error: { message: 'm', type: 'invalid_request_error', code: 'policy_denied', param: null } }))).toEqual(['status 400 for code policy_denied']);
    expect(checkHttp('chat', 'POST', response(400, { error: { message: 'm', type: 'x', code: 'made_up', param: null } }))).toEqual(['undocumented code made_up']);
    // OpenAI's shape sent on the Anthropic route.
    expect(checkHttp('messages', 'POST', response(400, { error: { message: 'm', type: 'invalid_request_error', code: 'invalid_request', param: null } }))).toContain('anthropic error without type: error');
    expect(checkHttp('chat', 'POST', response(200, 'data: {"object":"chat.completion.chunk"}\n\n', [['content-type', 'text/event-stream']]))).toEqual(['stream ends without [DONE] or error: data: {"object":"chat.completion.chunk"}']);
    expect(checkHttp('chat', 'POST', response(200, 'data: {"error":{"code":"internal"}}\n\n', [['content-type', 'text/event-stream']]))).toEqual(['stream error event: code internal']);
    expect(checkHttp('messages', 'POST', response(200, 'event: message_start\ndata: {}\n\nevent: content_block_delta\ndata: {}\n\n', [['content-type', 'text/event-stream']]))).toEqual(['stream ends with content_block_delta']);
    expect(checkGrpc({ kind: 'status', status: 13, headers: {}, trailers: { 'grpc-message': 'Internal' }, messages: [] })[0]).toMatch(/^status 13 with warden-code undefined/);
    expect(checkGrpc({ kind: 'timeout', headers: {}, trailers: {}, messages: [] })).toEqual(['no status within the deadline']);
    expect(canariesIn(`{"message":"bad ${CANARY_EMAIL}"}`)).toEqual([CANARY_EMAIL]);
    expect(canariesIn(`key ${CANARY_KEY.slice(0, 12)}`)).toEqual([]);
  });
});

describe('ingress fuzzing', () => {
  it('every mutated request on every route gets a documented answer, leaks no canary and leaves Warden serving', { timeout: 120_000 }, async () => {
    const report = await runFuzz(target, 19, { chat: 250, messages: 250, models: 30, admin: 15, grpc: 250 });
    expect(report.failures).toEqual([]);
    expect(report.cases).toEqual({ chat: 250, messages: 250, models: 30, admin: 15, grpc: 250 });
    // The seed reaches both ends on each route: answers and refusals (a fuzzer that only ever
    // sent malformed JSON would prove little), and unknown-member probes that had to be refused.
    const seen = (prefix: string) => Object.entries(report.statuses).filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
    for (const route of ['chat', 'messages']) {
      expect(seen(`${route} 200`), route).toBeGreaterThan(20);
      expect(seen(`${route} 400 invalid_request`), route).toBeGreaterThan(20);
    }
    expect(seen('grpc 0')).toBeGreaterThan(20);
    expect(seen('grpc 3 invalid_request')).toBeGreaterThan(20);
    expect(report.strictChecked).toBeGreaterThan(10);
  });
});
