/**
 * End to end: the shape of an upstream's answer, as real clients (openai SDK, grpc-js, fetch on
 * /v1/messages) receive it through a real Warden from a loopback upstream that answers exactly
 * what each test scripts, streamed and not.
 *   - /v1/messages carries every part of an answer: text-like parts as text, a refusal (part or
 *     member) as text with stop_reason `refusal`, a tool name sent in pieces joined;
 *   - the explicit nulls compatible servers send where OpenAI omits a member mean "none";
 *   - an answer that is not an assistant's, two choices with one index, or a `created` that is not
 *     a whole number of seconds the gRPC int64 carries exactly, are `upstream_error`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayClient } from './helpers/grpc.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

/** What the upstream answers next: a completion (not streamed) or its chunks (streamed). */
let completion: Record<string, unknown> = {};
let chunks: Array<Record<string, unknown>> = [];
let server: Server;
let w: WardenFixture;
let token: string;
let gateway: any;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      if ((JSON.parse(body) as { stream?: boolean }).stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const c of chunks) res.write(`data: ${JSON.stringify(c)}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(completion));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  w = await startWarden({ upstreamUrl: `http://127.0.0.1:${port}/v1` });
  token = await w.signer.token('labs', 'raw-bot'); // raw prompts are allowed for labs/raw-bot
  gateway = gatewayClient(w.addresses.grpc);
});

afterAll(async () => {
  gateway?.close();
  await w?.close();
  await new Promise((r) => server?.close(r));
});

function answer(message: Record<string, unknown>, finish: string | null = 'stop', head: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', ...message }, logprobs: null, finish_reason: finish }],
    usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    ...head,
  };
}

function chunk(delta: Record<string, unknown>, finish: string | null = null, head: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }], ...head };
}

const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };

/** A call over HTTP with fetch: its status and raw body. */
async function post(path: '/v1/chat/completions' | '/v1/messages', body: Record<string, unknown>): Promise<{ status: number; text: string }> {
  const res = await fetch(`${w.addresses.http}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

const messages = (stream = false) => post('/v1/messages', { ...ask, max_tokens: 32, stream });

/** An Anthropic SSE body's events, in order. */
function events(text: string): Array<{ event: string; data: any }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => ({ event: /^event: (.+)$/m.exec(block)?.[1] ?? '', data: JSON.parse(/^data: (.+)$/m.exec(block)?.[1] ?? 'null') }));
}

/** The audit record of the last call. */
function lastRecord(): Record<string, any> {
  return w.audit().at(-1)!;
}

describe('/v1/messages carries the whole answer', () => {
  it('not streamed: an output_text or input_text part is text', async () => {
    completion = answer({ content: [{ type: 'output_text', text: 'hello from ' }, { type: 'input_text', text: 'output_text' }] });
    const { status, text } = await messages();
    expect(status, text).toBe(200);
    const msg = JSON.parse(text);
    expect(msg.content).toEqual([{ type: 'text', text: 'hello from output_text' }]);
    expect(msg.stop_reason).toBe('end_turn');
  });

  it('not streamed: a refusal part is text after what came before it, with stop_reason refusal', async () => {
    completion = answer({ content: [{ type: 'text', text: 'Partly: ' }, { type: 'refusal', refusal: 'I refuse' }] });
    const { status, text } = await messages();
    expect(status, text).toBe(200);
    const msg = JSON.parse(text);
    expect(msg.content).toEqual([{ type: 'text', text: 'Partly: I refuse' }]);
    expect(msg.stop_reason).toBe('refusal');
  });

  it('streamed: a tool name sent in pieces is joined before its tool_use block opens', async () => {
    chunks = [
      chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_0', type: 'function', function: { name: 'look', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { name: 'up', arguments: '{"q":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }),
      chunk({}, 'tool_calls'),
    ];
    const { status, text } = await messages(true);
    expect(status, text).toBe(200);
    const evs = events(text);
    const starts = evs.filter((e) => e.event === 'content_block_start');
    expect(starts.map((e) => e.data.content_block)).toEqual([{ type: 'tool_use', id: 'call_0', name: 'lookup', input: {} }]);
    const json = evs.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.partial_json).join('');
    expect(json).toBe('{"q":1}');
    expect(evs.find((e) => e.event === 'message_delta')!.data.delta.stop_reason).toBe('tool_use');
    expect(evs.at(-1)!.event).toBe('message_stop');
  });

  it('streamed: a tool name whose first piece comes only at the finish still opens a named block', async () => {
    chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_0', type: 'function', function: { name: 'get_', arguments: '' } }] }), chunk({ tool_calls: [{ index: 0, function: { name: 'time' } }] }, 'tool_calls')];
    const { status, text } = await messages(true);
    expect(status, text).toBe(200);
    const starts = events(text).filter((e) => e.event === 'content_block_start');
    expect(starts.map((e) => e.data.content_block.name)).toEqual(['get_time']);
  });

  it('streamed: more of a tool name after its arguments began is upstream_error, not a truncated name', async () => {
    // Arguments long enough that redaction releases some of them (it holds back a short tail)
    // before the next piece comes.
    const args = `{"q":"${'lorem ipsum '.repeat(200)}`;
    chunks = [
      chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_0', type: 'function', function: { name: 'look', arguments: args } }] }),
      chunk({ tool_calls: [{ index: 0, function: { name: 'up', arguments: '"}' } }] }),
      chunk({}, 'tool_calls'),
    ];
    const { status, text } = await messages(true);
    expect(status, text).toBe(200);
    const evs = events(text);
    expect(evs.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block.name)).toEqual(['look']);
    expect(evs.at(-1)!.event).toBe('error');
    expect(evs.at(-1)!.data.error).toMatchObject({ code: 'upstream_error' });
    expect(evs.at(-1)!.data.error.message).toMatch(/tool call's name after its arguments began/);
    expect(evs.some((e) => e.event === 'message_stop')).toBe(false);
    expect(lastRecord()['error_code']).toBe('upstream_error');
  });
});
