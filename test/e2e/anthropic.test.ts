/**
 * Anthropic-compatible ingress end to end: plain HTTP requests shaped as Anthropic's Messages API
 * documents them (`POST /v1/messages`, `x-api-key`, `anthropic-version`), through a real Warden,
 * to a loopback OpenAI-contract upstream. Checks what the upstream receives (the canonical mapping)
 * and that answers come back as Anthropic messages and as its SSE event sequence.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARD_LEAK } from './helpers/canaries.js';
import { anthropicEvents } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let rawToken: string;
let botToken: string;

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

async function messages(body: unknown, opts: { token?: string | null; headers?: Record<string, string> } = {}) {
  const token = opts.token === undefined ? rawToken : opts.token;
  const res = await fetch(`${w.addresses.http}/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      ...(token ? { 'x-api-key': token } : {}),
      ...opts.headers,
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
}

const events = anthropicEvents;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  rawToken = await w.signer.token('labs', 'raw-bot'); // raw prompts are allowed for labs/raw-bot
  botToken = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

describe('POST /v1/messages', () => {
  it('numbers in a tool_use input are redacted on the way out, as strings are', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const r = await messages({
      model: 'gpt-4o-mini',
      max_tokens: 64,
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'pay', input: { card: 4111111111111111, ssn: 536221234, n: 3 } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'paid' }] },
      ],
    });
    expect(r.status, r.text).toBe(200);
    const sent = upstream.calls[before]!.body.messages;
    expect(JSON.parse(sent[1].tool_calls[0].function.arguments)).toEqual({ card: '[CREDIT_CARD]', ssn: '[US_SSN]', n: 3 });
    expect(JSON.stringify(sent)).not.toMatch(CARD_LEAK);
  });

  it('a value split across two text blocks of a user message is redacted as one text, as an assistant message\'s is; the blocks stay parts', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const audited = w.audit().length;
    const split = [{ type: 'text', text: 'mail jane.doe@exa' }, { type: 'text', text: 'mple.com now' }];
    const r = await messages({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: split }] });
    expect(r.status, r.text).toBe(200);
    const sent = upstream.calls[before]!.body.messages;
    expect(sent[0].content).toEqual([{ type: 'text', text: 'mail [EMAIL_ADDRESS]' }, { type: 'text', text: ' now' }]);
    await eventually(() => w.audit().length > audited);
    expect(w.audit().at(-1)!.redaction.counts).toEqual({ EMAIL_ADDRESS: 1 });
  });

  it('a value split across two system blocks is redacted as one text too; the blocks go on as text parts', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const audited = w.audit().length;
    const system = [{ type: 'text', text: 'Escalate to jane.doe@exa' }, { type: 'text', text: 'mple.com when stuck.' }];
    const r = await messages({ model: 'gpt-4o-mini', max_tokens: 64, system, messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status, r.text).toBe(200);
    const sent = upstream.calls[before]!.body.messages;
    expect(sent[0]).toEqual({ role: 'system', content: [{ type: 'text', text: 'Escalate to [EMAIL_ADDRESS]' }, { type: 'text', text: ' when stuck.' }] });
    expect(JSON.stringify(sent)).not.toContain('jane.doe');
    await eventually(() => w.audit().length > audited);
    expect(w.audit().at(-1)!.redaction.counts).toEqual({ EMAIL_ADDRESS: 1 });
    // One block is a string, as a message's one block is; no blocks is no system prompt.
    await messages({ model: 'gpt-4o-mini', max_tokens: 64, system: [{ type: 'text', text: 'Be terse.' }], messages: [{ role: 'user', content: 'hi' }] });
    expect(upstream.calls.at(-1)!.body.messages[0]).toEqual({ role: 'system', content: 'Be terse.' });
    await messages({ model: 'gpt-4o-mini', max_tokens: 64, system: [], messages: [{ role: 'user', content: 'hi' }] });
    expect(upstream.calls.at(-1)!.body.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('maps system, content blocks, tools and parameters onto the upstream call; answers a message', async () => {
    upstream.mode = 'ok';
    const r = await messages({
      model: 'gpt-4o-mini',
      max_tokens: 256,
      system: [{ type: 'text', text: 'You are terse.' }, { type: 'text', text: 'Answer in French.' }],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'text', text: 'What is this? Reply to jane.doe@example.com' },
          ],
        },
      ],
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'any' },
      stop_sequences: ['END'],
      temperature: 0.3,
      metadata: { user_id: 'user-42' },
    });
    expect(r.status, r.text).toBe(200);
    const sent = upstream.calls.at(-1)!.body;
    expect(sent.model).toBe('gpt-4o-mini');
    expect(sent.max_tokens).toBe(256);
    expect(sent.messages[0]).toEqual({ role: 'system', content: [{ type: 'text', text: 'You are terse.' }, { type: 'text', text: 'Answer in French.' }] });
    expect(sent.messages[1].role).toBe('user');
    expect(sent.messages[1].content[0]).toEqual({ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } });
    expect(sent.messages[1].content[1].type).toBe('text');
    expect(sent.messages[1].content[1].text).not.toContain('jane.doe@example.com'); // redacted like any prompt
    expect(sent.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: WEATHER_TOOL.input_schema } }]);
    expect(sent.tool_choice).toBe('required');
    expect(sent.stop).toEqual(['END']);
    expect(sent.temperature).toBe(0.3);
    expect(sent.user).toBe('user-42');

    const msg = JSON.parse(r.text);
    expect(msg).toMatchObject({ type: 'message', role: 'assistant', model: 'gpt-4o-mini', stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 11, output_tokens: 7 } });
    expect(msg.id).toMatch(/^msg_/);
    expect(msg.content).toHaveLength(1);
    expect(msg.content[0].type).toBe('text');
    expect(msg.content[0].text).toContain('upstream saw:');
  });

  it('a tool call comes back as a tool_use block with stop_reason tool_use', async () => {
    upstream.mode = 'tool-call';
    const r = await messages({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER_TOOL] });
    expect(r.status, r.text).toBe(200);
    const msg = JSON.parse(r.text);
    expect(msg.stop_reason).toBe('tool_use');
    expect(msg.content).toEqual([{ type: 'tool_use', id: 'call_up_1', name: 'get_weather', input: { city: 'Paris' } }]);
  });

  it('tool_use and tool_result turns become OpenAI tool_calls and tool messages', async () => {
    upstream.mode = 'ok';
    const r = await messages({
      model: 'gpt-4o-mini',
      max_tokens: 64,
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '18 C and sunny' }, { type: 'text', text: 'And tomorrow?' }] },
      ],
    });
    expect(r.status, r.text).toBe(200);
    const sent = upstream.calls.at(-1)!.body;
    expect(sent.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(sent.messages[1]).toMatchObject({
      role: 'assistant',
      content: 'Let me check.',
      tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
    });
    expect(sent.messages[2]).toMatchObject({ role: 'tool', tool_call_id: 'toolu_1', content: '18 C and sunny' });
    expect(sent.messages[3]).toMatchObject({ role: 'user', content: 'And tomorrow?' });
  });

  it('assistant text blocks stay text parts, as user blocks do (not run together); one block is a string; sampling parameters in range pass', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const r = await messages({
      model: 'gpt-4o-mini',
      max_tokens: 64,
      temperature: 1,
      top_p: 0,
      top_k: 40,
      messages: [
        { role: 'user', content: 'Greet me.' },
        { role: 'assistant', content: [{ type: 'text', text: 'Hello' }, { type: 'text', text: 'World' }] },
        { role: 'user', content: [{ type: 'text', text: 'Again.' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Hi' }] },
        { role: 'user', content: 'Thanks.' },
      ],
    });
    expect(r.status, r.text).toBe(200);
    const sent = upstream.calls[before]!.body;
    expect(sent.messages[1]).toEqual({ role: 'assistant', content: [{ type: 'text', text: 'Hello' }, { type: 'text', text: 'World' }] });
    expect(sent.messages[2]).toEqual({ role: 'user', content: 'Again.' });
    expect(sent.messages[3]).toEqual({ role: 'assistant', content: 'Hi' });
    expect([sent.temperature, sent.top_p, sent.top_k]).toEqual([1, 0, 40]);
  });

  it('stream: message_start, text block start/deltas/stop, message_delta, message_stop', async () => {
    upstream.mode = 'ok';
    const r = await messages({ model: 'gpt-4o-mini', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Say hello' }] });
    expect(r.status).toBe(200);
    expect(r.contentType).toContain('text/event-stream');
    const ev = events(r.text);
    for (const e of ev) expect(e.data.type).toBe(e.event); // the SSE name and the JSON type agree
    const names = ev.map((e) => e.event);
    expect(names[0]).toBe('message_start');
    expect(names[1]).toBe('content_block_start');
    expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(names.slice(2, -3).every((n) => n === 'content_block_delta')).toBe(true);
    expect(ev[0]!.data.message).toMatchObject({ type: 'message', role: 'assistant', content: [], stop_reason: null });
    expect(ev[1]!.data).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    const text = ev.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
    expect(text.trim()).toBe('upstream saw: Say hello');
    expect(ev.at(-2)!.data.delta).toEqual({ stop_reason: 'end_turn', stop_sequence: null });
  });

  it("a model's refusal is text with stop_reason refusal, redacted, streamed or not", async () => {
    upstream.mode = 'refusal';
    const body = { model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] };
    const r = await messages(body);
    expect(r.status, r.text).toBe(200);
    const message = JSON.parse(r.text);
    expect(message.content).toEqual([{ type: 'text', text: "I can't write to [EMAIL_ADDRESS] about that." }]);
    expect(message.stop_reason).toBe('refusal');
    const s = await messages({ ...body, stream: true });
    const ev = events(s.text);
    const text = ev.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
    expect(text).toBe("I can't write to [EMAIL_ADDRESS] about that.");
    expect(ev.at(-2)!.data.delta.stop_reason).toBe('refusal');
    upstream.mode = 'ok';
  });

  it('stream: a tool call is a tool_use block with input_json_delta pieces', async () => {
    upstream.mode = 'tool-call';
    const r = await messages({ model: 'gpt-4o-mini', max_tokens: 64, stream: true, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'Weather?' }] });
    expect(r.status).toBe(200);
    const ev = events(r.text);
    const start = ev.find((e) => e.event === 'content_block_start')!;
    expect(start.data.content_block).toEqual({ type: 'tool_use', id: 'call_up_1', name: 'get_weather', input: {} });
    const json = ev.filter((e) => e.event === 'content_block_delta').map((e) => {
      expect(e.data.delta.type).toBe('input_json_delta');
      return e.data.delta.partial_json;
    });
    expect(JSON.parse(json.join(''))).toEqual({ city: 'Paris' });
    expect(ev.at(-2)!.data.delta.stop_reason).toBe('tool_use');
    expect(ev.at(-1)!.event).toBe('message_stop');
  });

  it('stream: text then two tool calls are three blocks in order, each whole and redacted, with the usage', async () => {
    upstream.mode = 'text-then-tools';
    const r = await messages({ model: 'gpt-4o-mini', max_tokens: 64, stream: true, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'Look it up' }] });
    expect(r.status).toBe(200);
    // The card, and its first group where the upstream cut it (after the quote that opens it,
    // in the text and in the arguments); not "4111" alone, which an id in the stream can hold.
    expect(r.text).not.toMatch(CARD_LEAK);
    expect(r.text).not.toContain('\\"4111');
    const ev = events(r.text);
    // One block open at a time: start, its deltas, stop; then the next.
    const blocks: Array<{ block: any; pieces: string[] }> = [];
    let open: number | undefined;
    for (const e of ev) {
      if (e.event === 'content_block_start') {
        expect(open).toBeUndefined();
        expect(e.data.index).toBe(blocks.length);
        open = e.data.index;
        blocks.push({ block: e.data.content_block, pieces: [] });
      } else if (e.event === 'content_block_delta') {
        expect(e.data.index).toBe(open);
        blocks[open!]!.pieces.push(e.data.delta.text ?? e.data.delta.partial_json);
      } else if (e.event === 'content_block_stop') {
        expect(e.data.index).toBe(open);
        open = undefined;
      }
    }
    expect(blocks.map((b) => b.block)).toEqual([
      { type: 'text', text: '' },
      { type: 'tool_use', id: 'call_a', name: 'lookup', input: {} },
      { type: 'tool_use', id: 'call_b', name: 'other', input: {} },
    ]);
    expect(blocks[0]!.pieces.join('')).toBe('Checking "[CREDIT_CARD]" now');
    expect(JSON.parse(blocks[1]!.pieces.join(''))).toEqual({ card: '[CREDIT_CARD]' });
    expect(JSON.parse(blocks[2]!.pieces.join(''))).toEqual({ q: 'hello' });
    expect(ev.at(-2)!.data).toMatchObject({ delta: { stop_reason: 'tool_use' }, usage: { input_tokens: 11, output_tokens: 7 } });
    upstream.mode = 'ok';
  });

  it('stream: an upstream going back to a tool call it left ends in an error event, audited, its call closed', async () => {
    upstream.mode = 'tools-revisit';
    const aborted = upstream.aborted;
    const r = await messages({ model: 'gpt-4o-mini', max_tokens: 64, stream: true, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'x' }] });
    expect(r.status).toBe(200);
    const ev = events(r.text);
    expect(ev.at(-1)).toMatchObject({ event: 'error', data: { error: { code: 'upstream_error' } } });
    expect(ev.some((e) => e.event === 'message_stop')).toBe(false);
    await aborted; // the upstream call was closed, not left open
    await eventually(() => w.audit().at(-1)?.error_code === 'upstream_error');
    upstream.mode = 'ok';
  });

  it('stream: a client that hangs up mid-stream aborts the upstream call and is audited as cancelled', async () => {
    upstream.mode = 'stream-slow';
    const aborted = upstream.aborted;
    const firstEvent = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        `${w.addresses.http}/v1/messages`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': rawToken } },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', (d: Buffer) => {
            req.destroy();
            resolve(d.toString());
          });
        },
      );
      req.on('error', () => {});
      req.once('error', reject);
      req.end(JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Count forever' }] }));
    });
    expect(firstEvent.startsWith('event: message_start\n')).toBe(true);
    await aborted;
    await eventually(() => w.audit().some((r) => r.stream === true && r.error_code === 'cancelled'));
  });

  it('the governed path: a template named in the warden object, the token in x-api-key', async () => {
    upstream.mode = 'ok';
    const r = await messages(
      { model: 'gpt-4o-mini', max_tokens: 128, messages: [], warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-55', customer_message: 'Broken.' } } },
      { token: botToken },
    );
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text).content[0].text).toContain('upstream saw: Ticket T-55:');
    const rec = w.audit().at(-1)!;
    expect(rec).toMatchObject({ status: 'ok', template: { id: 'support/ticket-summary', version: 2 }, principal: { namespace: 'support', service_account: 'ticket-bot' } });
  });

  it('tool_choice.disable_parallel_tool_use: true is parallel_tool_calls: false upstream; false or absent adds nothing', async () => {
    upstream.mode = 'ok';
    const cases: Array<[Record<string, unknown>, unknown, boolean | undefined]> = [
      [{ type: 'auto', disable_parallel_tool_use: true }, 'auto', false],
      [{ type: 'any', disable_parallel_tool_use: true }, 'required', false],
      [{ type: 'tool', name: 'get_weather', disable_parallel_tool_use: true }, { type: 'function', function: { name: 'get_weather' } }, false],
      [{ type: 'auto', disable_parallel_tool_use: false }, 'auto', undefined],
      [{ type: 'any' }, 'required', undefined],
    ];
    for (const [choice, toolChoice, parallel] of cases) {
      const r = await messages({ model: 'gpt-4o-mini', max_tokens: 16, tools: [WEATHER_TOOL], tool_choice: choice, messages: [{ role: 'user', content: 'hi' }] });
      expect(r.status, r.text).toBe(200);
      const sent = upstream.calls.at(-1)!.body;
      expect(sent.tool_choice, JSON.stringify(choice)).toEqual(toolChoice);
      expect(sent.parallel_tool_calls, JSON.stringify(choice)).toBe(parallel);
      expect('parallel_tool_calls' in sent, JSON.stringify(choice)).toBe(parallel !== undefined);
    }
  });

  it('tool_choice and metadata members Anthropic does not document are refused at their field, not dropped', async () => {
    const before = upstream.calls.length;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ metadata: { user_id: 'u-1', session: 'CANARY-7f3a' } }, 'metadata.session'],
      [{ metadata: { tags: ['a'] } }, 'metadata.tags'],
      [{ tool_choice: { type: 'none', disable_parallel_tool_use: true } }, 'tool_choice.disable_parallel_tool_use'],
      [{ tool_choice: { type: 'auto', disable_parallel_tool_use: 'yes' } }, 'tool_choice.disable_parallel_tool_use'],
      [{ tool_choice: { type: 'any', parallel: false } }, 'tool_choice.parallel'],
      [{ tool_choice: { type: 'auto', name: 'get_weather' } }, 'tool_choice.name'],
    ];
    for (const [extra, param] of cases) {
      const r = await messages({ model: 'gpt-4o-mini', max_tokens: 16, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'hi' }], ...extra });
      expect(r.status, r.text).toBe(400);
      const err = JSON.parse(r.text);
      expect(err.type).toBe('error');
      expect(err.error, r.text).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request', param });
      expect(r.text).not.toContain('CANARY');
    }
    expect(upstream.calls.length).toBe(before);
  });

  it('an image source.media_type is one of the four Anthropic documents; anything else is refused there, not echoed', async () => {
    upstream.mode = 'ok';
    const image = (media_type: unknown) => ({ type: 'image', source: { type: 'base64', media_type, data: 'iVBORw0KGgo=' } });
    for (const media of ['image/jpeg', 'image/png', 'image/gif', 'image/webp']) {
      const r = await messages({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: [image(media), { type: 'text', text: 'hi' }] }] });
      expect(r.status, r.text).toBe(200);
      expect(upstream.calls.at(-1)!.body.messages[0].content[0].image_url.url).toBe(`data:${media};base64,iVBORw0KGgo=`);
    }
    const before = upstream.calls.length;
    const bad: Array<[unknown, (img: object) => unknown[], string]> = [
      ['text/plain;jane.doe@example.com CANARY-7f3a', (img) => [{ role: 'user', content: [img] }], 'messages.0.content.0.source.media_type'],
      ['image/svg+xml', (img) => [{ role: 'user', content: [img] }], 'messages.0.content.0.source.media_type'],
      ['IMAGE/PNG', (img) => [{ role: 'user', content: [img] }], 'messages.0.content.0.source.media_type'],
      ['image/png;CANARY-7f3a', (img) => [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [img] }] }], 'messages.0.content.0.content.0.source.media_type'],
      [7, (img) => [{ role: 'user', content: [img] }], 'messages.0.content.0.source.media_type'],
    ];
    for (const [media, msgs, param] of bad) {
      const r = await messages({ model: 'gpt-4o-mini', max_tokens: 16, messages: msgs(image(media)) });
      expect(r.status, r.text).toBe(400);
      expect(JSON.parse(r.text).error, r.text).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request', param });
      expect(r.text).not.toMatch(/CANARY|jane|svg|IMAGE/);
    }
    const text = await messages({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'not base64: jane.doe@example.com' } }] }] });
    expect(text.status, text.text).toBe(400);
    expect(JSON.parse(text.text).error.param).toBe('messages.0.content.0.source.data');
    expect(text.text).not.toContain('jane');
    expect(upstream.calls.length).toBe(before);
  });

  it('a wrong method gets 405 in Anthropic\'s error shape, with the request-id header', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await fetch(`${w.addresses.http}/v1/messages`, { method, headers: { 'x-api-key': rawToken } });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      const rid = res.headers.get('request-id');
      expect(rid).toBeTruthy();
      expect(res.headers.get('x-request-id')).toBe(rid);
      expect(await res.json()).toEqual({
        type: 'error',
        error: { type: 'invalid_request_error', code: 'invalid_request', message: `method ${method} is not allowed here; use POST` },
        request_id: rid,
      });
    }
  });

  it('an answer with neither text nor a tool call is content [] (end_turn), streamed or not, as Anthropic answers an empty turn', async () => {
    upstream.mode = 'scripted';
    upstream.script = { text: '' };
    const plain = await messages({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    expect(plain.status, plain.text).toBe(200);
    expect(JSON.parse(plain.text)).toMatchObject({ content: [], stop_reason: 'end_turn' });
    const streamed = await messages({ model: 'gpt-4o-mini', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    expect(events(streamed.text).map((e) => e.event)).toEqual(['message_start', 'message_delta', 'message_stop']);
    upstream.mode = 'ok';
  });

  it('GET /v1/models reads the x-api-key an Anthropic SDK sends, as /v1/messages does', async () => {
    for (const path of ['/v1/models', '/v1/models/gpt-4o-mini']) {
      const res = await fetch(`${w.addresses.http}${path}`, { headers: { 'x-api-key': rawToken, 'anthropic-version': '2023-06-01' } });
      expect(res.status, path).toBe(200);
      expect(JSON.stringify(await res.json())).toContain('gpt-4o-mini');
    }
    // Two different tokens are no credentials, as on /v1/messages.
    const both = await fetch(`${w.addresses.http}/v1/models`, { headers: { 'x-api-key': rawToken, authorization: `Bearer ${botToken}` } });
    expect(both.status).toBe(401);
  });

  it('errors use Anthropic\'s error shape with the Warden code and the field', async () => {
    const before = upstream.calls.length;
    const cases: Array<[unknown, string | null, number, string, string, string | undefined]> = [
      [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'max_tokens'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'system', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.0.role'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.0.content.0.type'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'mystery', text: 'ssn 536-22-1234' }] }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.0.content.0.type'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'mystery', text: 'ssn 536-22-1234' }] }] }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.0.content.0.content.0.type'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, thinking: { type: 'enabled' }, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'thinking'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'tools.0.type'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, tools: [{ name: 'f', input_schema: JSON.parse(`${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`) }], messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'tools.0.input_schema.a.a.a'],
      // Locations name what the caller sent, not the OpenAI body it is mapped to.
      [{ model: 'gpt-4o-mini', max_tokens: 5, tools: [{ name: '', input_schema: {} }], messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'tools.0.name'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, tools: [WEATHER_TOOL], tool_choice: { type: 'tool', name: '' }, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'tool_choice.name'],
      // Anthropic refuses a tool_choice without tools, or naming none of them; so does an OpenAI upstream, at no field of the caller's.
      [{ model: 'gpt-4o-mini', max_tokens: 5, tool_choice: { type: 'auto' }, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'tool_choice'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, tools: [], tool_choice: { type: 'none' }, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'tool_choice'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, tools: [WEATHER_TOOL], tool_choice: { type: 'tool', name: 'get_time' }, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'tool_choice.name'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, system: 'Be terse.', messages: [], warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'x' } } }, botToken, 400, 'invalid_request_error', 'invalid_request', 'system'],
      // Nothing the caller sent is changed or dropped on the way: an empty content list, a tool call without a name or id.
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: [] }, { role: 'user', content: 'b' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.1.content'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [] }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.0.content'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: '', input: {} }] }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.1.content.0.name'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: [{ type: 'tool_use', id: '', name: 'f', input: {} }] }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.1.content.0.id'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: '', content: 'x' }] }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.0.content.0.tool_use_id'],
      // A last assistant turn is a prefill Anthropic continues; an OpenAI-style upstream would answer anew.
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'JSON please' }, { role: 'assistant', content: '{' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.1'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'f', input: {} }] }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'messages.1'],
      // Sampling parameters are Anthropic's: a number in its documented range (top_k an integer).
      [{ model: 'gpt-4o-mini', max_tokens: 5, temperature: 'hot', messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'temperature'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, temperature: 1.5, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'temperature'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, top_p: -0.1, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'top_p'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, top_k: { a: 'jane.doe@example.com' }, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'top_k'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, top_k: 2.5, messages: [{ role: 'user', content: 'hi' }] }, rawToken, 400, 'invalid_request_error', 'invalid_request', 'top_k'],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, null, 401, 'authentication_error', 'unauthenticated', undefined],
      [{ model: 'gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, botToken, 403, 'permission_error', 'policy_denied', undefined],
    ];
    for (const [body, token, status, type, code, param] of cases) {
      const r = await messages(body, { token });
      expect(r.status, r.text).toBe(status);
      const err = JSON.parse(r.text);
      expect(err.type).toBe('error');
      expect(err.error.type, r.text).toBe(type);
      expect(err.error.code).toBe(code);
      expect(typeof err.error.message).toBe('string');
      if (param) expect(err.error.param).toBe(param);
      // A block type Warden does not map is refused listing the ones it does, never quoting it.
      if (param?.endsWith('.type') && param.startsWith('messages.')) expect(err.error.message).toContain('(accepted: text, image');
      expect(r.text).not.toContain('536-22-1234');
      expect(r.text).not.toContain('mystery');
      expect(r.text).not.toContain('jane.doe');
    }
    // Malformed JSON is audited like on the OpenAI route.
    const res = await fetch(`${w.addresses.http}/v1/messages`, { method: 'POST', headers: { 'x-api-key': rawToken, 'content-type': 'application/json' }, body: '{"model":' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.code).toBe('invalid_request');
    const rid = res.headers.get('x-request-id');
    expect(w.audit().filter((x) => x.request_id === rid)).toHaveLength(1);
    expect(upstream.calls.length).toBe(before);
  });
});
