/**
 * The Anthropic-compatible route (`POST /v1/messages`) driven by the official `@anthropic-ai/sdk`,
 * as an app would use it: a real Warden on loopback in front of the loopback upstream speaking
 * OpenAI's contract (Warden translates). Whatever the SDK cannot parse, types wrongly or misses
 * (an event, a field, an error class, a header) is a defect of the route, not of this test.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic, { type APIError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { CANARY_API_KEY, CANARY_SECRET, FIXTURES, eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
/** labs/raw-bot: raw prompts allowed. */
let rawToken: string;
/** support/ticket-bot: runs support/ticket-summary, no raw prompts. */
let botToken: string;

const TEMPLATE = 'support/ticket-summary@2';
const TICKET = { ticket_id: 'T-1001', customer_message: 'The parcel arrived broken. Reach me at jane.doe@example.com' };
const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] },
};
/** The governed path named in headers: what an app sets once in `defaultHeaders`. */
const TEMPLATE_HEADERS = { 'x-warden-template': TEMPLATE, 'x-warden-variables': JSON.stringify(TICKET) };

function client(token: string, opts: { maxRetries?: number; headers?: Record<string, string>; baseURL?: string } = {}): Anthropic {
  return new Anthropic({
    baseURL: opts.baseURL ?? w.addresses.http,
    apiKey: token,
    maxRetries: opts.maxRetries ?? 0,
    timeout: 15_000,
    ...(opts.headers ? { defaultHeaders: opts.headers } : {}),
  });
}

/** What the SDK rejected with (the test fails when the call succeeds). */
async function rejection(call: Promise<unknown>): Promise<APIError> {
  const outcome = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(outcome, 'the call should have failed').toBeInstanceOf(Anthropic.APIError);
  return outcome as APIError;
}

/** The body Warden sent, as the SDK exposes it (`err.error`): `{type, error: {type, message, code, param}}`. */
function wardenError(err: APIError): { type: string; message: string; code: string; param?: string } {
  return (err.error as { error: { type: string; message: string; code: string; param?: string } }).error;
}

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  rawToken = await w.signer.token('labs', 'raw-bot');
  botToken = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

describe('messages.create with the Anthropic SDK', () => {
  it('runs a governed template named in headers (defaultHeaders): content, stop_reason, usage, request id', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const msg = await client(botToken, { headers: TEMPLATE_HEADERS }).messages.create({ model: 'gpt-4o-mini', max_tokens: 256, messages: [] });
    expect(msg.type).toBe('message');
    expect(msg.role).toBe('assistant');
    expect(msg.id).toMatch(/^msg_/);
    expect(msg.model).toBe('gpt-4o-mini');
    expect(msg.content).toHaveLength(1);
    const block = msg.content[0]!;
    expect(block.type).toBe('text');
    expect((block as Anthropic.TextBlock).text).toContain('upstream saw: Ticket T-1001:');
    expect(msg.stop_reason).toBe('end_turn');
    expect(msg.stop_sequence).toBeNull();
    expect(msg.usage).toMatchObject({ input_tokens: 11, output_tokens: 7 });
    // The template's prompt went upstream, with the decision's cap on max_tokens.
    const sent = upstream.calls[before]!.body;
    expect(JSON.stringify(sent.messages)).toContain('Summarize the ticket in exactly three bullet points.');
    expect(sent.max_tokens).toBe(256);
    // The SDK reads Anthropic's `request-id` header: the id the audit record carries.
    expect(msg._request_id).toMatch(/^[0-9a-f-]{36}$/);
    await eventually(() => w.audit().some((r) => r.request_id === msg._request_id));
    expect(w.audit().find((r) => r.request_id === msg._request_id)).toMatchObject({ status: 'ok', template: { id: 'support/ticket-summary', version: 2 } });
  });

  it('runs a governed template named in the body (the warden object) and in per-request headers', async () => {
    upstream.mode = 'ok';
    const inBody = await client(botToken).messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 64,
      messages: [],
      // Warden's extension of the body, which the SDK sends as it is:
      warden: { template: TEMPLATE, variables: { ticket_id: 'T-2', customer_message: 'Late.' } },
    } as Anthropic.MessageCreateParamsNonStreaming);
    expect((inBody.content[0] as Anthropic.TextBlock).text).toContain('Ticket T-2:');
    // As the README shows it: the template once in defaultHeaders, the variables per request.
    const readme = client(botToken, { headers: { 'x-warden-template': TEMPLATE } });
    const headers = { 'x-warden-variables': JSON.stringify(TICKET) };
    const perRequest = await readme.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [] }, { headers });
    expect((perRequest.content[0] as Anthropic.TextBlock).text).toContain('Ticket T-1001:');
    const streamed = await readme.messages.stream({ model: 'gpt-4o-mini', max_tokens: 64, messages: [] }, { headers }).finalMessage();
    expect((streamed.content[0] as Anthropic.TextBlock).text).toContain('Ticket T-1001:');
  });

  it('sends raw messages where the policy allows them: system, blocks and parameters reach the upstream', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const msg = await client(rawToken).messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 100,
      system: 'You are terse.',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
      stop_sequences: ['END'],
      metadata: { user_id: 'user-7' },
    });
    expect((msg.content[0] as Anthropic.TextBlock).text).toBe('upstream saw: Say hello');
    expect(msg.stop_reason).toBe('end_turn');
    const sent = upstream.calls[before]!.body;
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'You are terse.' });
    expect(sent).toMatchObject({ max_tokens: 100, stop: ['END'], user: 'user-7' });
  });
});

describe('streaming with the Anthropic SDK', () => {
  it("messages.stream(): the text events, finalMessage() and its stop reason", async () => {
    upstream.mode = 'ok';
    const stream = client(rawToken).messages.stream({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: 'Say hello' }] });
    const deltas: string[] = [];
    stream.on('text', (delta) => deltas.push(delta));
    const final = await stream.finalMessage();
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('').trim()).toBe('upstream saw: Say hello');
    expect(final.content).toHaveLength(1);
    expect((final.content[0] as Anthropic.TextBlock).text).toBe(deltas.join(''));
    expect(final.stop_reason).toBe('end_turn');
    expect(final.id).toMatch(/^msg_/);
    expect(stream.request_id).toMatch(/^[0-9a-f-]{36}$/);
    await eventually(() => w.audit().some((r) => r.request_id === stream.request_id && r.stream === true));
  });

  it('create({stream: true}): every event Warden sends parses, in Anthropic\'s order', async () => {
    upstream.mode = 'text-then-tools';
    const stream = await client(rawToken).messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 64,
      stream: true,
      tools: [WEATHER_TOOL],
      messages: [{ role: 'user', content: 'Look it up' }],
    });
    const events: Anthropic.RawMessageStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('message_start');
    expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
    const blockEvents = types.slice(1, -2);
    expect(new Set(blockEvents)).toEqual(new Set(['content_block_start', 'content_block_delta', 'content_block_stop']));
    const starts = events.filter((e): e is Anthropic.RawContentBlockStartEvent => e.type === 'content_block_start');
    expect(starts.map((s) => [s.index, s.content_block.type])).toEqual([
      [0, 'text'],
      [1, 'tool_use'],
      [2, 'tool_use'],
    ]);
    const delta = events.at(-2) as Anthropic.RawMessageDeltaEvent;
    expect(delta.delta.stop_reason).toBe('tool_use');
    expect(delta.usage).toMatchObject({ input_tokens: 11, output_tokens: 7 });
    upstream.mode = 'ok';
  });

  it('messages.stream() over text and two tool calls: finalMessage() has the three blocks, inputs parsed, usage', async () => {
    upstream.mode = 'text-then-tools';
    const stream = client(rawToken).messages.stream({ model: 'gpt-4o-mini', max_tokens: 64, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'Look it up' }] });
    const json: string[] = [];
    stream.on('inputJson', (piece) => json.push(piece));
    const final = await stream.finalMessage();
    expect(final.content.map((b) => b.type)).toEqual(['text', 'tool_use', 'tool_use']);
    expect((final.content[0] as Anthropic.TextBlock).text).toBe('Checking "[CREDIT_CARD]" now');
    expect(final.content.slice(1)).toMatchObject([
      { id: 'call_a', name: 'lookup', input: { card: '[CREDIT_CARD]' } },
      { id: 'call_b', name: 'other', input: { q: 'hello' } },
    ]);
    expect(json.join('')).not.toContain('4111');
    expect(final.stop_reason).toBe('tool_use');
    expect(final.usage).toMatchObject({ input_tokens: 11, output_tokens: 7 });
    upstream.mode = 'ok';
  });

  it('a tool call whose arguments are only white space: input {} in the streamed finalMessage(), as not streamed (no piece the SDK cannot parse)', async () => {
    upstream.mode = 'scripted';
    upstream.script = { text: ' \n ', toolArgs: true, piece: 1 };
    const params = { model: 'gpt-4o-mini', max_tokens: 64, tools: [WEATHER_TOOL], messages: [{ role: 'user' as const, content: 'x' }] };
    const plain = await client(rawToken).messages.create(params);
    expect(plain.content).toMatchObject([{ type: 'tool_use', id: 'call_up_1', name: 'f', input: {} }]);
    const stream = client(rawToken).messages.stream(params);
    const json: string[] = [];
    stream.on('inputJson', (piece) => json.push(piece));
    const final = await stream.finalMessage();
    // The SDK parses a tool_use input from its pieces when it is read: ' \n ' was no JSON to it.
    expect(final.content).toMatchObject([{ type: 'tool_use', id: 'call_up_1', name: 'f', input: {} }]);
    expect(final.stop_reason).toBe('tool_use');
    expect(json).toEqual([]);
    // Leading white space before an object is dropped from the pieces, the object kept whole.
    upstream.script = { text: ' {"city": "Paris"}', toolArgs: true, piece: 2 };
    const spaced = await client(rawToken).messages.stream(params).finalMessage();
    expect(spaced.content).toMatchObject([{ type: 'tool_use', input: { city: 'Paris' } }]);
    upstream.mode = 'ok';
  });

  it('a failure after the stream began reaches the SDK as the error event: its type and Warden code', async () => {
    upstream.mode = 'tools-revisit';
    const aborted = upstream.aborted;
    const stream = client(rawToken).messages.stream({ model: 'gpt-4o-mini', max_tokens: 64, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'x' }] });
    const err = await rejection(stream.finalMessage());
    expect(err.type).toBe('api_error');
    expect(wardenError(err).code).toBe('upstream_error');
    // Call 0's arguments ('{"x":') are not a JSON object when call 1 begins: its block closes there.
    expect(err.message).toContain('tool call arguments that are not a JSON object');
    await aborted;

    const raw = await client(rawToken).messages.create({ model: 'gpt-4o-mini', max_tokens: 64, stream: true, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'x' }] });
    const seen: string[] = [];
    const rawErr = await rejection(
      (async () => {
        for await (const e of raw) seen.push(e.type);
      })(),
    );
    expect(seen[0]).toBe('message_start');
    expect(seen).not.toContain('message_stop');
    expect(wardenError(rawErr).code).toBe('upstream_error');
    upstream.mode = 'ok';
  });
});

describe('tool use with the Anthropic SDK', () => {
  it('a tool call is a tool_use block with its input parsed; the tool_result follow-up reaches the upstream as a tool message', async () => {
    upstream.mode = 'scripted';
    upstream.script = { text: '{"city":"Paris"}', toolArgs: true };
    const anthropic = client(rawToken);
    const tool = { ...WEATHER_TOOL, name: 'f' }; // the scripted model calls `f`
    const question: Anthropic.MessageParam = { role: 'user', content: 'Weather in Paris?' };
    const first = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, tools: [tool], tool_choice: { type: 'auto' }, messages: [question] });
    expect(first.stop_reason).toBe('tool_use');
    const call = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
    expect(call).toMatchObject({ type: 'tool_use', id: 'call_up_1', name: 'f', input: { city: 'Paris' } });

    // Streamed, the SDK assembles the same input from the input_json_delta pieces.
    upstream.script = { text: '{"city":"Paris"}', toolArgs: true, piece: 3 };
    const streamed = await anthropic.messages.stream({ model: 'gpt-4o-mini', max_tokens: 64, tools: [tool], messages: [question] }).finalMessage();
    expect(streamed.content).toMatchObject([{ type: 'tool_use', id: 'call_up_1', name: 'f', input: { city: 'Paris' } }]);

    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const answer = await anthropic.messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 64,
      tools: [tool],
      // The assistant turn as the SDK returned it, then the result.
      messages: [question, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '18 C and sunny' }] }],
    });
    expect(answer.stop_reason).toBe('end_turn');
    const sent = upstream.calls[before]!.body.messages;
    expect(sent[1]).toMatchObject({ role: 'assistant', tool_calls: [{ id: 'call_up_1', type: 'function', function: { name: 'f' } }] });
    expect(JSON.parse(sent[1].tool_calls[0].function.arguments)).toEqual({ city: 'Paris' });
    expect(sent[2]).toEqual({ role: 'tool', tool_call_id: 'call_up_1', content: '18 C and sunny' });
  });
});

describe('a forced tool call with the Anthropic SDK', () => {
  it("tool_choice {type: 'tool'}: OpenAI finishes the forced call with stop, and the message still stops with tool_use, streamed or not", async () => {
    upstream.mode = 'scripted';
    // OpenAI's finish_reason for a call a named tool_choice forced (vllm-project/vllm#25054).
    upstream.script = { text: '{"city":"Paris"}', toolArgs: true, finish: 'stop' };
    const anthropic = client(rawToken);
    const params: Anthropic.MessageCreateParamsNonStreaming = {
      model: 'gpt-4o-mini',
      max_tokens: 64,
      tools: [{ ...WEATHER_TOOL, name: 'f' }],
      tool_choice: { type: 'tool', name: 'f' },
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    };
    const before = upstream.calls.length;
    const plain = await anthropic.messages.create(params);
    expect(upstream.calls[before]!.body.tool_choice).toEqual({ type: 'function', function: { name: 'f' } });
    expect(plain.stop_reason).toBe('tool_use');
    expect(plain.content).toMatchObject([{ type: 'tool_use', name: 'f', input: { city: 'Paris' } }]);
    const streamed = await anthropic.messages.stream(params).finalMessage();
    expect(streamed.stop_reason).toBe('tool_use');
    expect(streamed.content).toMatchObject([{ type: 'tool_use', name: 'f', input: { city: 'Paris' } }]);
    upstream.mode = 'ok';
  });
});

describe('edges of the Anthropic SDK', () => {
  it('an empty answer is content [] whether created or streamed (finalMessage())', async () => {
    upstream.mode = 'scripted';
    upstream.script = { text: '' };
    const params = { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user' as const, content: 'x' }] };
    const plain = await client(rawToken).messages.create(params);
    expect(plain).toMatchObject({ content: [], stop_reason: 'end_turn' });
    const streamed = await client(rawToken).messages.stream(params).finalMessage();
    expect(streamed).toMatchObject({ content: [], stop_reason: 'end_turn' });
    upstream.mode = 'ok';
  });

  it('tool_choice without tools is a BadRequestError at tool_choice, nothing sent upstream', async () => {
    const before = upstream.calls.length;
    const err = await rejection(client(rawToken).messages.create({ model: 'gpt-4o-mini', max_tokens: 16, tool_choice: { type: 'any' }, messages: [{ role: 'user', content: 'x' }] }));
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(wardenError(err)).toMatchObject({ code: 'invalid_request', param: 'tool_choice' });
    expect(upstream.calls.length).toBe(before);
  });

  it('models.list() of a client sending its key as x-api-key (as SDKs before 1.x do) lists the models', async () => {
    const legacy = new Anthropic({ baseURL: w.addresses.http, apiKey: null, authToken: null, maxRetries: 0, defaultHeaders: { 'x-api-key': rawToken } });
    const ids: string[] = [];
    for await (const m of legacy.models.list()) ids.push(m.id);
    expect(ids).toContain('gpt-4o-mini');
  });
});

describe('errors as the Anthropic SDK raises them', () => {
  const plain: Anthropic.MessageCreateParamsNonStreaming = { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };

  it('unauthenticated: AuthenticationError, authentication_error, the token not repeated', async () => {
    const expired = await w.signer.token('labs', 'raw-bot', { audience: 'someone-else' });
    const err = await rejection(client(expired).messages.create(plain));
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.type).toBe('authentication_error');
    expect(wardenError(err).code).toBe('unauthenticated');
    expect(JSON.stringify(err.error) + err.message).not.toContain(expired);
  });

  it('policy denied: PermissionDeniedError, permission_error', async () => {
    const err = await rejection(client(botToken).messages.create(plain));
    expect(err).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(err.status).toBe(403);
    expect(err.type).toBe('permission_error');
    expect(wardenError(err).code).toBe('policy_denied');
  });

  it('unknown template: NotFoundError, not_found_error', async () => {
    const err = await rejection(client(botToken).messages.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [] }, { headers: { 'x-warden-template': 'support/no-such-template@1' } }));
    expect(err).toBeInstanceOf(Anthropic.NotFoundError);
    expect(err.status).toBe(404);
    expect(err.type).toBe('not_found_error');
    expect(wardenError(err).code).toBe('template_not_found');
  });

  it("routes of Anthropic's API Warden does not serve (countTokens, batches): NotFoundError in Anthropic's shape, with the request id, audited", async () => {
    // Each call is made when its turn comes: a promise made earlier rejects unhandled meanwhile.
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['countTokens', () => client(rawToken).messages.countTokens({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })],
      ['batches.list', () => client(rawToken).messages.batches.list()],
    ];
    for (const [name, call] of calls) {
      const err = await rejection(call());
      expect(err, name).toBeInstanceOf(Anthropic.NotFoundError);
      expect(err.type, name).toBe('not_found_error');
      expect(wardenError(err), name).toMatchObject({ code: 'not_found' });
      expect(err.requestID, name).toMatch(/^[0-9a-f-]{36}$/);
      expect((err.error as { request_id?: string }).request_id, name).toBe(err.requestID);
      await eventually(() => w.audit().some((r) => r.request_id === err.requestID && r.error_code === 'not_found'));
    }
  });

  it('bad request: BadRequestError, invalid_request_error naming the field', async () => {
    const err = await rejection(client(rawToken).messages.create({ ...plain, thinking: { type: 'enabled', budget_tokens: 1024 } }));
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.type).toBe('invalid_request_error');
    expect(wardenError(err)).toMatchObject({ code: 'invalid_request', param: 'thinking' });
    expect(err.message).toContain("field 'thinking' is not supported");
  });

  /** A tool call id holding an e-mail address: ids pass on unchanged, so the request is refused. */
  const PII_IN_ID: Anthropic.MessageParam[] = [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_jane.doe@example.com', name: 'f', input: {} }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_jane.doe@example.com', content: 'done' }] },
  ];

  it('PII the redaction cannot rewrite: UnprocessableEntityError, the entity type named, not the value', async () => {
    const err = await rejection(
      client(rawToken).messages.create({
        ...plain,
        messages: PII_IN_ID,
      }),
    );
    expect(err).toBeInstanceOf(Anthropic.UnprocessableEntityError);
    expect(err.status).toBe(422);
    expect(err.type).toBe('invalid_request_error');
    expect(wardenError(err).code).toBe('redaction_blocked');
    expect(`${err.message}${JSON.stringify(err.error)}`).not.toContain('jane.doe');
  });

  it('an image block whose url source holds PII is refused (pii_in_image_url); a base64 one goes on', async () => {
    const before = upstream.calls.length;
    const image = (source: Anthropic.ImageBlockParam['source']): Anthropic.MessageParam[] => [{ role: 'user', content: [{ type: 'image', source }, { type: 'text', text: 'what is this?' }] }];
    const err = await rejection(client(rawToken).messages.create({ ...plain, messages: image({ type: 'url', url: 'https://img.example/a.png?owner=jane.doe@example.com' }) }));
    expect(err).toBeInstanceOf(Anthropic.UnprocessableEntityError);
    expect((wardenError(err) as { details?: unknown }).details).toEqual({ reason: 'pii_in_image_url', entities: ['EMAIL_ADDRESS'] });
    expect(`${err.message}${JSON.stringify(err.error)}`).not.toContain('jane.doe');
    expect(upstream.calls.length).toBe(before);
    upstream.mode = 'ok';
    const ok = await client(rawToken).messages.create({ ...plain, messages: image({ type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' }) });
    expect(ok.type).toBe('message');
    expect(upstream.calls[before]!.body.messages[0].content[0]).toEqual({ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } });
  });

  it("an error carries the OpenAI route's details in error.details, which the SDK keeps in err.error", async () => {
    const details = (err: APIError) => (wardenError(err) as { details?: Record<string, unknown> }).details;
    const denied = await rejection(client(botToken).messages.create(plain));
    expect(denied).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(details(denied)).toMatchObject({ decision_id: expect.stringMatching(/^[0-9a-f-]{36}$/), reasons: [expect.any(String)] });
    // The same refusal on the OpenAI route: the same details, but for the decision's own id.
    const openai = await fetch(`${w.addresses.http}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${botToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const openaiDetails = ((await openai.json()) as { error: { details: Record<string, unknown> } }).error.details;
    expect({ ...details(denied), decision_id: 'x' }).toEqual({ ...openaiDetails, decision_id: 'x' });

    const blocked = await rejection(
      client(rawToken).messages.create({
        ...plain,
        messages: PII_IN_ID,
      }),
    );
    expect(blocked).toBeInstanceOf(Anthropic.UnprocessableEntityError);
    expect(details(blocked)).toMatchObject({ reason: 'pii_in_id' });

    upstream.mode = 'bad-request';
    try {
      const rejected = await rejection(client(rawToken).messages.create(plain));
      expect(rejected).toBeInstanceOf(Anthropic.BadRequestError);
      expect(details(rejected)).toMatchObject({ status: 400 });
    } finally {
      upstream.mode = 'ok';
    }
  });

  it('an error carries the request id: the request-id header (err.requestID) and the body', async () => {
    const err = await rejection(client(botToken).messages.create(plain));
    expect(err.requestID).toMatch(/^[0-9a-f-]{36}$/);
    expect((err.error as { request_id?: string }).request_id).toBe(err.requestID);
    await eventually(() => w.audit().some((r) => r.request_id === err.requestID && r.error_code === 'policy_denied'));
  });

  it('upstream down: InternalServerError (api_error), retried by the SDK as a 5xx', async () => {
    const down = { ...plain, model: 'down-model' };
    const err = await rejection(client(rawToken).messages.create(down));
    expect(err).toBeInstanceOf(Anthropic.InternalServerError);
    expect(err.status).toBe(502);
    expect(err.type).toBe('api_error');
    expect(wardenError(err).code).toBe('upstream_error');
    // With one retry allowed the SDK asks twice: two audited attempts.
    const audited = w.audit().length;
    await rejection(client(rawToken, { maxRetries: 1 }).messages.create(down));
    await eventually(() => w.audit().length >= audited + 2);
    expect(w.audit().slice(audited).map((r) => r.error_code)).toEqual(['upstream_error', 'upstream_error']);
  });

  it('upstream rate limiting: RateLimitError with the upstream retry-after', async () => {
    upstream.mode = 'rate-limited';
    const err = await rejection(client(rawToken).messages.create(plain));
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect(err.type).toBe('rate_limit_error');
    expect(wardenError(err).code).toBe('upstream_rate_limited');
    expect(err.headers?.get('retry-after')).toBe('3');
    upstream.mode = 'ok';
  });

  it('upstream too slow: a 504 the SDK raises as GatewayTimeoutError, typed timeout_error as Anthropic documents it', async () => {
    const short = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { upstream_timeout_ms: 300 }' });
    try {
      upstream.mode = 'slow';
      const token = await short.signer.token('labs', 'raw-bot');
      const err = await rejection(client(token, { baseURL: short.addresses.http }).messages.create(plain));
      expect(err.status).toBe(504);
      expect(err).toBeInstanceOf(Anthropic.GatewayTimeoutError);
      expect(err.type).toBe('timeout_error');
      expect(wardenError(err).code).toBe('upstream_timeout');
    } finally {
      upstream.mode = 'ok';
      await short.close();
    }
  });

  it('secrets, the upstream key and PII never reach an error the SDK shows', async () => {
    const errors: APIError[] = [];
    // The secret-bearing template, for a caller it does not list; a variable too long; PII in a bad request.
    errors.push(await rejection(client(rawToken).messages.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [] }, { headers: { 'x-warden-template': 'ops/incident-brief@1', 'x-warden-variables': '{"service":"jane.doe@example.com"}' } })));
    errors.push(await rejection(client(botToken, { headers: { 'x-warden-template': TEMPLATE, 'x-warden-variables': JSON.stringify({ ...TICKET, ticket_id: `jane.doe@example.com${'z'.repeat(40)}` }) } }).messages.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [] })));
    upstream.mode = 'bad-request'; // the upstream quotes the prompt in its error
    errors.push(await rejection(client(rawToken).messages.create({ ...plain, messages: [{ role: 'user', content: 'mail jane.doe@example.com' }] })));
    upstream.mode = 'ok';
    expect(errors.map((e) => e.status)).toEqual([403, 400, 400]);
    expect(errors.map((e) => wardenError(e).code)).toEqual(['policy_denied', 'variable_invalid', 'upstream_rejected']);
    expect(errors[2]).toBeInstanceOf(Anthropic.BadRequestError);
    for (const err of errors) {
      const shown = `${err.message}\n${JSON.stringify(err.error)}`;
      for (const canary of [CANARY_SECRET, CANARY_API_KEY, 'jane.doe', rawToken, botToken]) expect(shown).not.toContain(canary);
    }
  });
});

describe('overload with the Anthropic SDK', () => {
  let held: FakeUpstream;
  let busy: WardenFixture;

  beforeAll(async () => {
    held = await startUpstream();
    busy = await startWarden({ upstreamUrl: held.url, limits: 'limits: { max_in_flight: 1, upstream_timeout_ms: 5000 }' });
  });

  afterAll(async () => {
    await busy?.close();
    await held?.close();
  });

  it("Warden at its in-flight limit: OverloadedError (529 overloaded_error), and the SDK's retry waits the retry-after it was told", async () => {
    const token = await busy.signer.token('labs', 'raw-bot');
    const plain = { model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user' as const, content: 'hi' }] };
    // One request holds the only place until it is aborted.
    held.mode = 'slow';
    const hold = new AbortController();
    const holding = client(token, { baseURL: busy.addresses.http }).messages.create(plain, { signal: hold.signal }).catch(() => undefined);
    await eventually(() => held.calls.length === 1);

    const err = await rejection(client(token, { baseURL: busy.addresses.http }).messages.create(plain));
    expect(err).toBeInstanceOf(Anthropic.OverloadedError);
    expect(err.status).toBe(529);
    expect(err.type).toBe('overloaded_error');
    expect(wardenError(err).code).toBe('overloaded');
    expect(err.headers?.get('retry-after')).toBe('1');

    // Allowed to retry, the SDK is refused, waits the second it was told, and gets in: the place
    // was freed meanwhile. (A second retry only covers a machine too slow to free it in that second.)
    held.mode = 'ok';
    const started = performance.now();
    const retried = client(token, { baseURL: busy.addresses.http, maxRetries: 2 }).messages.create(plain);
    await eventually(() => busy.audit().filter((r) => r.error_code === 'overloaded').length === 2);
    hold.abort();
    await holding;
    const msg = await retried;
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
    expect((msg.content[0] as Anthropic.TextBlock).text).toBe('upstream saw: hi');
  });
});

describe('PII redaction round trip with the Anthropic SDK', () => {
  it('the upstream sees the masked prompt; the answer comes back masked, streamed or not', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const anthropic = client(botToken, { headers: TEMPLATE_HEADERS });
    const msg = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [] });
    const sent = JSON.stringify(upstream.calls[before]!.body.messages);
    expect(sent).not.toContain('jane.doe@example.com');
    expect(sent).toContain('[EMAIL_ADDRESS]');
    const text = (msg.content[0] as Anthropic.TextBlock).text;
    expect(text).toContain('[EMAIL_ADDRESS]');
    expect(text).not.toContain('jane.doe');

    const streamed: string[] = [];
    const final = await anthropic.messages
      .stream({ model: 'gpt-4o-mini', max_tokens: 64, messages: [] })
      .on('text', (t) => streamed.push(t))
      .finalMessage();
    expect(streamed.join('')).toBe((final.content[0] as Anthropic.TextBlock).text);
    expect(streamed.join('')).toContain('[EMAIL_ADDRESS]');
    expect(streamed.join('')).not.toContain('jane.doe');
  });

  it('tokenised with reidentify: the upstream sees <EMAIL_ADDRESS_1>, the app gets its own address back, streamed or not', async () => {
    // The e2e policy, with the templated decision tokenising and letting the caller see the originals.
    const policy = readFileSync(join(FIXTURES, 'policies', 'e2e.rego'), 'utf8');
    const granted = '"redaction": {"profile": "standard"},\n\t"max_tokens": 512,';
    expect(policy).toContain(granted);
    const tokenizing = await startWarden({
      upstreamUrl: upstream.url,
      files: { 'policies/e2e.rego': policy.replace(granted, '"redaction": {"profile": "standard", "mode": "tokenize", "reidentify": true},\n\t"max_tokens": 512,') },
    });
    try {
      upstream.mode = 'ok';
      const token = await tokenizing.signer.token('support', 'ticket-bot');
      const anthropic = client(token, { baseURL: tokenizing.addresses.http, headers: TEMPLATE_HEADERS });
      const before = upstream.calls.length;
      const msg = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [] });
      const sent = JSON.stringify(upstream.calls[before]!.body.messages);
      expect(sent).toContain('<EMAIL_ADDRESS_1>');
      expect(sent).not.toContain('jane.doe@example.com');
      expect((msg.content[0] as Anthropic.TextBlock).text).toContain('Reach me at jane.doe@example.com');

      const streamed: string[] = [];
      const final = await anthropic.messages
        .stream({ model: 'gpt-4o-mini', max_tokens: 64, messages: [] })
        .on('text', (t) => streamed.push(t))
        .finalMessage();
      expect(streamed.join('')).toContain('Reach me at jane.doe@example.com');
      expect((final.content[0] as Anthropic.TextBlock).text).toBe(streamed.join(''));
      expect(JSON.stringify(tokenizing.audit())).not.toContain('jane.doe');
    } finally {
      await tokenizing.close();
    }
  });
});
