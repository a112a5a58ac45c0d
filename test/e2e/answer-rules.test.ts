/**
 * End to end: what an answer must be for Warden to pass it on, the same on every path, through a
 * real Warden from a loopback upstream that answers exactly what each test scripts.
 *   - a choice the caller did not ask for (an index at or past its `n`, 1 when unset) is
 *     `upstream_error` on every ingress: each choice is redacted on its own, so one a format
 *     merges with another (the /v1/messages encoder) would join what redaction saw apart;
 *   - on /v1/messages a tool call's arguments must be a JSON object (Anthropic's `input`) and it
 *     must have an id and a name, streamed or not; the stream's last tool call is checked before
 *     the audit record is written, so the record says what the client was told;
 *   - a missing finish_reason is end_turn, streamed or not;
 *   - a tool name repeated whole in every piece (Fireworks, DeepSeek, Qwen) is that name.
 */
import Anthropic from '@anthropic-ai/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { chunkBody, completionBody } from './helpers/scripted-upstream.js';
import { useScriptedWarden } from './helpers/scripted-warden.js';
import { anthropicEvents, postRoute } from './helpers/http.js';
import { CANARY_SECRET } from './helpers/warden.js';

let completion: Record<string, unknown> = {};
let chunks: Array<Record<string, unknown>> = [];
/** The caller is labs/raw-bot: raw prompts. */
const scripted = useScriptedWarden(() => completion, () => chunks, ['labs', 'raw-bot']);
/** support/ticket-bot: the governed template, which is granted the canary secret. */
let botToken: string;

beforeAll(async () => {
  botToken = await scripted.w.signer.token('support', 'ticket-bot');
});

const answer = completionBody;
const chunk = chunkBody;
const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };
const governed = { model: 'gpt-4o-mini', messages: [], warden: { template: 'ops/incident-brief@1', variables: { service: 'billing-api' } } };

/** A chunk of choice `index`. */
const choiceChunk = (index: number, delta: Record<string, unknown>, finish: string | null = null) => chunk({}, null, { choices: [{ index, delta, finish_reason: finish }] });

function post(path: '/v1/chat/completions' | '/v1/messages', body: Record<string, unknown>, token = scripted.token): Promise<{ status: number; text: string }> {
  return postRoute(scripted.w.addresses.http, path, body, token);
}

const messages = (stream = false) => post('/v1/messages', { ...ask, max_tokens: 32, stream });

const events = anthropicEvents;

function lastRecord(): Record<string, any> {
  return scripted.w.audit().at(-1)!;
}

/** A non-streamed /v1/messages answer Warden must refuse: 502 upstream_error matching `message`, audited as such. */
async function expectMessageRefused(message: RegExp): Promise<void> {
  const { status, text } = await messages(false);
  expect(status, text).toBe(502);
  const err = JSON.parse(text).error;
  expect(err).toMatchObject({ type: 'api_error', code: 'upstream_error' });
  expect(err.message).toMatch(message);
  expect(lastRecord()).toMatchObject({ status: 'error', error_code: 'upstream_error' });
}

/** A streamed /v1/messages answer Warden must end with an upstream_error event matching `message`, no message_stop, audited as such. */
async function expectStreamRefused(message: RegExp, token = scripted.token, body: Record<string, unknown> = { ...ask, max_tokens: 32 }): Promise<Array<{ event: string; data: any }>> {
  const { status, text } = await post('/v1/messages', { ...body, stream: true }, token);
  let evs: Array<{ event: string; data: any }>;
  if (status === 502) {
    // Refused at the first chunk: before any event.
    const err = JSON.parse(text).error;
    expect(err.code).toBe('upstream_error');
    expect(err.message).toMatch(message);
    evs = [];
  } else {
    expect(status, text).toBe(200);
    evs = events(text);
    expect(evs.at(-1)!.event, text).toBe('error');
    expect(evs.at(-1)!.data.error.code).toBe('upstream_error');
    expect(evs.at(-1)!.data.error.message).toMatch(message);
    expect(evs.some((e) => e.event === 'message_stop')).toBe(false);
  }
  expect(lastRecord()).toMatchObject({ status: 'error', error_code: 'upstream_error' });
  return evs;
}

describe('a choice the caller did not ask for', () => {
  it('/v1/messages, streamed: choices 1 and 2 are never merged into the text block (a secret and PII split across them)', async () => {
    const half = CANARY_SECRET.length >> 1;
    chunks = [
      choiceChunk(0, { role: 'assistant', content: 'Mail jane.doe@exa' }),
      choiceChunk(0, {}, 'stop'),
      choiceChunk(1, { role: 'assistant', content: `mple.com code ${CANARY_SECRET.slice(0, half)}` }),
      choiceChunk(1, {}, 'stop'),
      choiceChunk(2, { role: 'assistant', content: `${CANARY_SECRET.slice(half)} end` }),
      choiceChunk(2, {}, 'stop'),
    ];
    const evs = await expectStreamRefused(/choice/, botToken, { ...governed, max_tokens: 32 });
    const text = evs.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
    expect(text).not.toContain('jane.doe@example.com');
    expect(text).not.toContain(CANARY_SECRET);
    expect(JSON.stringify(evs)).not.toContain('mple.com');
  });

  it('/v1/messages, streamed: one chunk carrying choices 0 and 1 is refused, not cut to its first', async () => {
    chunks = [
      chunk({}, null, {
        choices: [
          { index: 0, delta: { role: 'assistant', content: 'first' }, finish_reason: null },
          { index: 1, delta: { role: 'assistant', content: 'second' }, finish_reason: null },
        ],
      }),
      chunk({}, 'stop'),
    ];
    const evs = await expectStreamRefused(/choice/);
    expect(JSON.stringify(evs)).not.toContain('second');
  });

  it('/v1/messages, not streamed: choices [index 1, index 0] are refused, never choice 1 answered as the message', async () => {
    const c = (index: number, content: string) => ({ index, message: { role: 'assistant', content }, finish_reason: 'stop' });
    completion = answer({}, 'stop', { choices: [c(1, 'the second'), c(0, 'the first')] });
    await expectMessageRefused(/choice/);
  });

  it("the refusal does not repeat the unasked index: it is the upstream's number, which may be a phone number or an SSN's digits", async () => {
    for (const index of [536221234, 4155552671]) {
      completion = answer({}, 'stop', { choices: [{ index, message: { role: 'assistant', content: 'x' }, finish_reason: 'stop' }] });
      chunks = [choiceChunk(index, { role: 'assistant', content: 'x' }, 'stop')];
      for (const body of [ask, { ...ask, stream: true }]) {
        const refused = await post('/v1/chat/completions', body);
        expect(refused.status, refused.text).toBe(502);
        expect(refused.text).toMatch(/a choice the request did not ask for/);
        expect(refused.text).not.toContain(String(index));
      }
      const g = await unaryCall(scripted.gateway, 'Complete', ask, bearerMetadata(scripted.token)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((g as Error).message).toMatch(/a choice the request did not ask for/);
      expect((g as Error).message).not.toContain(String(index));
    }
  });

  it('/v1/chat/completions and gRPC with n unset: a second choice is upstream_error, streamed or not; with n: 2 it passes', async () => {
    const c = (index: number, content: string) => ({ index, message: { role: 'assistant', content }, finish_reason: 'stop' });
    completion = answer({}, 'stop', { choices: [c(0, 'a'), c(1, 'b')] });
    const refused = await post('/v1/chat/completions', ask);
    expect(refused.status, refused.text).toBe(502);
    expect(JSON.parse(refused.text).error.message).toMatch(/a choice the request did not ask for \(an index at or past 1: it asked for 1\)/);
    expect(lastRecord()).toMatchObject({ status: 'error', error_code: 'upstream_error' });
    const g = await unaryCall(scripted.gateway, 'Complete', ask, bearerMetadata(scripted.token)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((g as Error).message).toMatch(/a choice the request did not ask for/);
    expect(lastRecord()).toMatchObject({ status: 'error', error_code: 'upstream_error' });

    const res = await scripted.client.chat.completions.create({ ...ask, n: 2 });
    expect(res.choices.map((x) => x.message.content)).toEqual(['a', 'b']);
    const viaGrpc = await unaryCall(scripted.gateway, 'Complete', { ...ask, params_json: JSON.stringify({ n: 2 }) }, bearerMetadata(scripted.token));
    expect(viaGrpc.choices.map((x: any) => x.message.content)).toEqual(['a', 'b']);

    chunks = [choiceChunk(0, { role: 'assistant', content: 'a' }), choiceChunk(1, { role: 'assistant', content: 'b' }), choiceChunk(0, {}, 'stop'), choiceChunk(1, {}, 'stop')];
    const streamed = await post('/v1/chat/completions', { ...ask, stream: true });
    expect(streamed.text).not.toContain('[DONE]');
    expect(streamed.text).toMatch(/a choice the request did not ask for/);
    expect(lastRecord()).toMatchObject({ status: 'error', error_code: 'upstream_error' });
    const ok = await scripted.client.chat.completions.create({ ...ask, n: 2, stream: true });
    const texts = ['', ''];
    for await (const x of ok) for (const ch of x.choices) texts[ch.index] += ch.delta.content ?? '';
    expect(texts).toEqual(['a', 'b']);
  });
});

describe('/v1/messages: a stream that ends on a tool call it cannot carry', () => {
  it('a tool call without an id, with no finish_reason: the error event, and the audit record says upstream_error', async () => {
    chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, type: 'function', function: { name: 'f' } }] })];
    await expectStreamRefused(/without an id or a name/);
  });
});

describe('/v1/messages: tool arguments that are not a JSON object', () => {
  const call = (args: string, id = 'call_1', name = 'lookup') => ({ id, type: 'function', function: { name, arguments: args } });

  for (const [what, args] of [
    ['a JSON array', '[1,2,3]'],
    ['text that is not JSON', 'city=Paris'],
    ['a JSON string', '"Paris"'],
  ] as const) {
    it(`${what}: upstream_error streamed and not, never input {} or the text passed on`, async () => {
      completion = answer({ content: null, tool_calls: [call(args)] }, 'tool_calls');
      await expectMessageRefused(/arguments that are not a JSON object/);
      chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, ...call('') }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: args } }] }), chunk({}, 'tool_calls')];
      await expectStreamRefused(/arguments that are not a JSON object/);
      // With no finish_reason: refused before the record is written, too.
      chunks = chunks.slice(0, 2);
      await expectStreamRefused(/arguments that are not a JSON object/);
      // Before text that follows it, too (the block closes there).
      chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, ...call(args) }] }), chunk({ content: 'done' }), chunk({}, 'stop')];
      await expectStreamRefused(/arguments that are not a JSON object/);
    });
  }

  it('an object nested deeper than 64 levels: upstream_error streamed and not (a few thousand levels were a 500 internal), 64 levels pass', async () => {
    const nested = (depth: number) => `{"a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
    for (const depth of [65, 20_000]) {
      completion = answer({ content: null, tool_calls: [call(nested(depth))] }, 'tool_calls');
      await expectMessageRefused(/arguments nested deeper than 64 levels/);
      chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, ...call('') }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: nested(depth) } }] }), chunk({}, 'tool_calls')];
      await expectStreamRefused(/arguments nested deeper than 64 levels/);
    }
    completion = answer({ content: null, tool_calls: [call(nested(64))] }, 'tool_calls');
    const { status, text } = await messages(false);
    expect(status, text).toBe(200);
    expect(JSON.parse(text).content[0].input).toEqual(JSON.parse(nested(64)));
    expect(lastRecord()).toMatchObject({ status: 'ok' });
  });

  it('arguments cut at the token limit (finish_reason length): upstream_error streamed and not, saying so', async () => {
    completion = answer({ content: null, tool_calls: [call('{"city": "Par')] }, 'length');
    await expectMessageRefused(/cut at the token limit/);
    chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, ...call('{"city": "Par') }] }), chunk({}, 'length')];
    await expectStreamRefused(/cut at the token limit/);
  });

  it('an object, or no arguments at all, is the input, streamed and not', async () => {
    completion = answer({ content: null, tool_calls: [call('{"city":"Paris"}'), call('', 'call_2', 'now')] }, 'tool_calls');
    const { status, text } = await messages(false);
    expect(status, text).toBe(200);
    expect(JSON.parse(text).content).toEqual([
      { type: 'tool_use', id: 'call_1', name: 'lookup', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_2', name: 'now', input: {} },
    ]);
    chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, ...call('{"city":') }] }), chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }), chunk({}, 'tool_calls')];
    const s = await messages(true);
    expect(events(s.text).at(-1)!.event).toBe('message_stop');
    expect(lastRecord()).toMatchObject({ status: 'ok' });
  });

  it('an empty tool call id or name: upstream_error not streamed, as streamed', async () => {
    completion = answer({ content: null, tool_calls: [call('{}', '')] }, 'tool_calls');
    await expectMessageRefused(/without an id or a name/);
    completion = answer({ content: null, tool_calls: [call('{}', 'call_1', '')] }, 'tool_calls');
    await expectMessageRefused(/without an id or a name/);
    chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, ...call('{}', 'call_1', '') }] }), chunk({}, 'tool_calls')];
    await expectStreamRefused(/without an id or a name/);
  });

  it('the Anthropic SDK gets an error, not a message, for a non-object input, streamed and not', async () => {
    const anthropic = new Anthropic({ baseURL: scripted.w.addresses.http, apiKey: scripted.token, maxRetries: 0, timeout: 15_000 });
    const params = { model: 'gpt-4o-mini', max_tokens: 32, messages: [{ role: 'user' as const, content: 'hi' }] };
    completion = answer({ content: null, tool_calls: [call('[1,2,3]')] }, 'tool_calls');
    await expect(anthropic.messages.create(params)).rejects.toBeInstanceOf(Anthropic.InternalServerError);
    chunks = [chunk({ role: 'assistant', tool_calls: [{ index: 0, ...call('city=Paris') }] }), chunk({}, 'tool_calls')];
    await expect(anthropic.messages.stream(params).finalMessage()).rejects.toBeInstanceOf(Anthropic.APIError);
    expect(lastRecord()).toMatchObject({ status: 'error', error_code: 'upstream_error' });
  });
});

describe('/v1/messages: stop_reason when the upstream gives no finish_reason', () => {
  for (const finish of [null, '']) {
    it(`finish_reason ${JSON.stringify(finish)}: end_turn, streamed and not`, async () => {
      completion = answer({ content: 'hello' }, finish);
      const { status, text } = await messages(false);
      expect(status, text).toBe(200);
      expect(JSON.parse(text)).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
      chunks = [chunk({ role: 'assistant', content: 'hello' }), chunk({}, finish)];
      const s = await messages(true);
      expect(events(s.text).find((e) => e.event === 'message_delta')!.data.delta.stop_reason).toBe('end_turn');
    });
  }
});

describe('a tool name repeated whole in every piece (Fireworks, DeepSeek, Qwen)', () => {
  const pieces = (n: number) => [
    chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_7', type: 'function', function: { name: 'debug_tool', arguments: '' } }] }),
    ...Array.from({ length: n }, (_, k) => chunk({ tool_calls: [{ index: 0, id: 'call_7', type: 'function', function: { name: 'debug_tool', arguments: k === 0 ? '{"q":"' : k === n - 1 ? 'x"}' : 'x' } }] })),
    chunk({}, 'tool_calls'),
  ];

  it('/v1/messages, streamed: the block is named once, and the arguments go on', async () => {
    chunks = pieces(3);
    const { status, text } = await messages(true);
    expect(status, text).toBe(200);
    const evs = events(text);
    expect(evs.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block)).toEqual([{ type: 'tool_use', id: 'call_7', name: 'debug_tool', input: {} }]);
    expect(evs.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.partial_json).join('')).toBe('{"q":"xx"}');
    expect(evs.at(-1)!.event).toBe('message_stop');
  });

  it('/v1/chat/completions: a long stream of such pieces passes, each piece as the upstream sent it', async () => {
    // 60 pieces of a 10-character name: 600 characters joined, past the 256 a label may have.
    chunks = pieces(60);
    const { status, text } = await post('/v1/chat/completions', { ...ask, stream: true });
    expect(status, text).toBe(200);
    expect(text).toContain('[DONE]');
    const deltas = text
      .split('\n\n')
      .filter((b) => b.startsWith('data: {'))
      .flatMap((b) => JSON.parse(b.slice(6)).choices.flatMap((c: any) => c.delta.tool_calls ?? []));
    expect(deltas.map((t: any) => t.function?.arguments ?? '').join('')).toBe(`{"q":"${'x'.repeat(59)}"}`);
    for (const t of deltas) if (t.function?.name !== undefined) expect(t.function.name).toBe('debug_tool');
    expect(lastRecord()).toMatchObject({ status: 'ok' });
  });
});
