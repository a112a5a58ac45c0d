/**
 * An answer's text as gRPC carries it: a proto3 `string` must be UTF-8. An upstream may answer a
 * lone surrogate (the JSON escape `"\ud800"` with no pair), which JSON carries and UTF-8 cannot;
 * protobufjs would write it as the surrogate's own 3 bytes (ED A0 80), a message that strict
 * decoders (Go's, C++'s) refuse whole. Warden sends U+FFFD in its place, as Node's UTF-8 encoder
 * does, and keeps a pair split across two upstream chunks whole. Read here with a raw grpc-js
 * client (the message bytes) and with the proto's own (the decoded text).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, encodePromptRequest, unaryCall } from './helpers/grpc.js';
import { chunkBody, completionBody } from './helpers/scripted-upstream.js';
import { useScriptedWarden } from './helpers/scripted-warden.js';

/** Short on purpose: protobufjs writes a string of under 40 bytes with its own UTF-8 encoder. */
const LONE = '<<\ud800>>';
const REPLACED = '<<\ufffd>>';

const s = useScriptedWarden(
  () =>
    completionBody({
      content: LONE,
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":"<<\udc00>>"}' } }],
    }, 'tool_calls'),
  () => [chunkBody({ role: 'assistant', content: 'smile \ud83d' }), chunkBody({ content: '\ude00 and ' }), chunkBody({ content: LONE }), chunkBody({}, 'stop')],
  ['labs', 'raw-bot'],
);
let raw: grpc.Client;

beforeAll(() => {
  raw = new grpc.Client(s.w.addresses.grpc, grpc.credentials.createInsecure());
});

afterAll(() => raw?.close());

const REQUEST = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
const id = (b: Buffer) => b;
/** A lone surrogate as protobufjs writes it: ED, then A0 to BF (no UTF-8 sequence has these). */
const SURROGATE_BYTES = /\xed[\xa0-\xbf][\x80-\xbf]/;

describe('an answer with a lone surrogate, over gRPC', () => {
  it('Complete: the message bytes are UTF-8, with U+FFFD in its place in content and tool-call arguments', async () => {
    const bytes = await new Promise<Buffer>((resolve, reject) =>
      raw.makeUnaryRequest('/warden.v1.PromptGateway/Complete', id, id, encodePromptRequest(REQUEST), bearerMetadata(s.token), (e, v) => (e ? reject(e) : resolve(v!))),
    );
    expect(SURROGATE_BYTES.test(bytes.toString('latin1'))).toBe(false);
    expect(bytes.includes(Buffer.from(REPLACED))).toBe(true);
    const res = await unaryCall(s.gateway, 'Complete', REQUEST, bearerMetadata(s.token));
    expect(res.choices[0].message.content).toBe(REPLACED);
    expect(res.choices[0].message.tool_calls[0].function.arguments).toBe(`{"a":"${REPLACED}"}`);
  });

  it('StreamComplete: every message is UTF-8; a pair split across chunks stays whole', async () => {
    const messages: Buffer[] = [];
    const call = raw.makeServerStreamRequest('/warden.v1.PromptGateway/StreamComplete', id, id, encodePromptRequest(REQUEST), bearerMetadata(s.token));
    call.on('data', (m: Buffer) => messages.push(m));
    await new Promise((resolve) => call.on('status', resolve));
    expect(messages.filter((m) => SURROGATE_BYTES.test(m.toString('latin1')))).toEqual([]);
    const chunks: any[] = [];
    const decoded = s.gateway.StreamComplete(REQUEST, bearerMetadata(s.token));
    decoded.on('data', (c: any) => chunks.push(c));
    await new Promise((resolve) => decoded.on('status', resolve));
    expect(chunks.map((c) => c.choices.map((ch: any) => ch.delta.content).join('')).join('')).toBe(`smile \ud83d\ude00 and ${REPLACED}`);
  });

  it('is audited ok: the answer was carried', () => {
    expect(s.w.audit().slice(-4).map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
  });
});
