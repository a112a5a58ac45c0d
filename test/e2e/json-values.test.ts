/**
 * `limits.max_json_values`: a large JSON text of a request (the HTTP body, a gRPC JSON field,
 * tool-call arguments sent back as history) holding more values than the limit is refused
 * `invalid_request` at its location before JSON.parse builds them, while a large prompt (one long
 * string) is served; and tool-call arguments over 64 KiB are held to `limits.max_json_depth`
 * before redaction parses them. A gRPC message of more fields than the limit is not decoded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient, rpcStatus, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;

const MAX_VALUES = 65536;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    limits: `limits: { max_body_bytes: 1048576, max_json_values: ${MAX_VALUES}, client_timeout_ms: 10000, upstream_timeout_ms: 5000, shutdown_grace_ms: 2000 }`,
  });
  token = await w.signer.token('labs', 'raw-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

async function post(path: string, body: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${w.addresses.http}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
  return { status: res.status, json: await res.json() };
}

/** `n` empty arrays, comma-separated: n + (n - 1) values. */
const emptyArrays = (n: number) => Array(n).fill('[]').join(',');

describe('limits.max_json_values', () => {
  it('a body of more values than the limit is refused at $, naming the limit, on both routes', async () => {
    const calls = upstream.calls.length;
    for (const [path, extra] of [['/v1/chat/completions', ''], ['/v1/messages', '"max_tokens":5,']] as const) {
      const body = `{"model":"gpt-4o-mini",${extra}"messages":[{"role":"user","content":"hi"}],"metadata":{"x":[${emptyArrays(40_000)}]}}`;
      const r = await post(path, body);
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      expect(r.json.error).toMatchObject({ code: 'invalid_request', param: '$' });
      expect(r.json.error.message).toContain(`holds more than ${MAX_VALUES} JSON values`);
      expect(r.json.error.message).toContain('limits.max_json_values');
    }
    expect(upstream.calls.length).toBe(calls);
  });

  it('a prompt of nearly 1 MiB in one string, commas and brackets in it, is served', async () => {
    const content = 'a, [b], {c}; '.repeat(75_000);
    const r = await post('/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }));
    expect(r.status, JSON.stringify(r.json).slice(0, 300)).toBe(200);
  });

  it('tool-call arguments over 64 KiB with too many values, or nested too deep, are refused at their field before redaction', async () => {
    const calls = upstream.calls.length;
    const history = (args: string) =>
      JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'user', content: 'go' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }] },
          { role: 'tool', tool_call_id: 'c1', content: 'done' },
        ],
      });
    const many = await post('/v1/chat/completions', history(`[${emptyArrays(40_000)}]`));
    expect(many.status).toBe(400);
    expect(many.json.error).toMatchObject({ code: 'invalid_request', param: 'messages.1.tool_calls.0.function.arguments' });
    expect(many.json.error.message).toContain('limits.max_json_values');
    const deep = await post('/v1/chat/completions', history(`${'['.repeat(40_000)}${']'.repeat(40_000)}`));
    expect(deep.status).toBe(400);
    expect(deep.json.error).toMatchObject({ code: 'invalid_request', param: 'messages.1.tool_calls.0.function.arguments' });
    expect(deep.json.error.message).toContain('nested deeper than 64 levels (limits.max_json_depth)');
    // Large arguments within both bounds are carried.
    const fine = await post('/v1/chat/completions', history(JSON.stringify({ text: 'x'.repeat(70_000), list: [1, 2, 3] })));
    expect(fine.status, JSON.stringify(fine.json).slice(0, 300)).toBe(200);
    expect(upstream.calls.length).toBe(calls + 1);
  });

  it('over gRPC: a JSON field and tool-call arguments, each on its own', async () => {
    const client = gatewayClient(w.addresses.grpc);
    try {
      const md = bearerMetadata(token);
      const params = await unaryCall(client, 'Complete', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], params_json: `{"metadata":[${emptyArrays(40_000)}]}` }, md).catch((e) => e);
      expect(rpcStatus(params)?.errorInfo?.reason).toBe('invalid_request');
      expect(params.metadata.get('warden-param')[0]).toBe('params_json');
      expect(params.details).toContain('limits.max_json_values');
      const args = await unaryCall(
        client,
        'Complete',
        {
          model: 'gpt-4o-mini',
          messages: [
            { role: 'user', content: 'go' },
            { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: `${'['.repeat(40_000)}${']'.repeat(40_000)}` } }] },
            { role: 'tool', tool_call_id: 'c1', content: 'done' },
          ],
        },
        md,
      ).catch((e) => e);
      expect(rpcStatus(args)?.errorInfo?.reason).toBe('invalid_request');
      expect(args.metadata.get('warden-param')[0]).toBe('messages.1.tool_calls.0.function.arguments');
      // The message itself: decoding builds an object for each entry, so a message of more fields
      // than the limit is refused undecoded (after its credentials: grpc-decode-after-auth.test.ts).
      const fields = await unaryCall(client, 'Complete', { model: 'gpt-4o-mini', messages: Array.from({ length: MAX_VALUES }, () => ({})) }, md).catch((e) => e);
      expect(rpcStatus(fields)?.errorInfo?.reason).toBe('invalid_request');
      expect(fields.details).toBe(`the request message holds more than ${MAX_VALUES} fields (each entry of a repeated field counts; limits.max_json_values)`);
    } finally {
      client.close();
    }
  });
});
