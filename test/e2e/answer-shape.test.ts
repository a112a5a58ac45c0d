/**
 * End to end: the shape of an upstream's answer, as real clients (openai SDK, grpc-js, fetch on
 * /v1/messages) receive it through a real Warden from a loopback upstream that answers exactly
 * what each test scripts, streamed and not.
 *   - /v1/messages carries every part of an answer: text-like parts as text, a refusal (part or
 *     member) as text with stop_reason `refusal`, a tool name sent in pieces joined;
 *   - a generation the upstream reports failed (finish_reason `error`, `abort`) is an Anthropic
 *     error on /v1/messages, which has no stop_reason for it, and passed on elsewhere;
 *   - the explicit nulls compatible servers send where OpenAI omits a member mean "none";
 *   - an answer that is not an assistant's, two choices with one index, or a `created` that is not
 *     a whole number of seconds the gRPC int64 carries exactly, are `upstream_error`.
 */
import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { bearerMetadata, streamOutcome, unaryCall } from './helpers/grpc.js';
import { chunkBody, completionBody } from './helpers/scripted-upstream.js';
import { useScriptedWarden } from './helpers/scripted-warden.js';
import { anthropicEvents, postRoute } from './helpers/http.js';

/** What the upstream answers next: a completion (not streamed) or its chunks (streamed). */
let completion: Record<string, unknown> = {};
let chunks: Array<Record<string, unknown>> = [];
/** The caller is labs/raw-bot: raw prompts are allowed. */
const scripted = useScriptedWarden(() => completion, () => chunks, ['labs', 'raw-bot']);

const answer = completionBody;
const chunk = chunkBody;

const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };

/** A call over HTTP with fetch: its status and raw body. */
function post(path: '/v1/chat/completions' | '/v1/messages', body: Record<string, unknown>): Promise<{ status: number; text: string }> {
  return postRoute(scripted.w.addresses.http, path, body, scripted.token);
}

const messages = (stream = false) => post('/v1/messages', { ...ask, max_tokens: 32, stream });

const events = anthropicEvents;

/** The audit record of the last call. */
function lastRecord(): Record<string, any> {
  return scripted.w.audit().at(-1)!;
}

/** A non-streamed call over HTTP that Warden must refuse as upstream_error with `message`. */
async function expectRefused(message: RegExp): Promise<void> {
  const { status, text } = await post('/v1/chat/completions', ask);
  expect(status, text).toBe(502);
  const err = JSON.parse(text).error;
  expect(err.code).toBe('upstream_error');
  expect(err.message).toMatch(message);
  expect(lastRecord()['error_code']).toBe('upstream_error');
}

/** A streamed call over HTTP whose stream Warden must end with an upstream_error event matching `message`. */
async function expectStreamRefused(message: RegExp): Promise<void> {
  const { status, text } = await post('/v1/chat/completions', { ...ask, stream: true });
  // Refused at the first chunk: a 502; later: an error event in a 200 stream, with no [DONE].
  if (status === 502) {
    expect(JSON.parse(text).error).toMatchObject({ code: 'upstream_error' });
    expect(JSON.parse(text).error.message).toMatch(message);
  } else {
    expect(status).toBe(200);
    expect(text).not.toContain('[DONE]');
    const last = text.trim().split('\n\n').at(-1)!;
    const err = JSON.parse(last.slice('data: '.length)).error;
    expect(err.code).toBe('upstream_error');
    expect(err.message).toMatch(message);
  }
  expect(lastRecord()['error_code']).toBe('upstream_error');
}

/** A gRPC StreamComplete call: the chunks received, and the error it ended with (if any). */
const grpcStream = () => streamOutcome(scripted.gateway.StreamComplete(ask, bearerMetadata(scripted.token)));

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

  it('streamed: a tool call id sent in pieces is joined before its tool_use block opens', async () => {
    chunks = [
      chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_', type: 'function', function: { name: 'look', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, id: 'abc123', function: { name: 'up', arguments: '{"q":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }),
      chunk({}, 'tool_calls'),
    ];
    const { status, text } = await messages(true);
    expect(status, text).toBe(200);
    const starts = events(text).filter((e) => e.event === 'content_block_start');
    expect(starts.map((e) => e.data.content_block)).toEqual([{ type: 'tool_use', id: 'call_abc123', name: 'lookup', input: {} }]);
  });

  it('streamed: a tool call id repeated whole in every piece (DeepSeek, Qwen, Fireworks) is that id, not doubled', async () => {
    chunks = [
      chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_7', type: 'function', function: { name: 'lookup', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, id: 'call_7', function: { arguments: '{"q":' } }] }),
      chunk({ tool_calls: [{ index: 0, id: 'call_7', function: { arguments: '1}' } }] }),
      chunk({}, 'tool_calls'),
    ];
    const { status, text } = await messages(true);
    expect(status, text).toBe(200);
    const evs = events(text);
    expect(evs.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block.id)).toEqual(['call_7']);
    expect(evs.at(-1)!.event).toBe('message_stop');
  });

  it('streamed: more of a tool call id after its arguments began is upstream_error, not a truncated id', async () => {
    const args = `{"q":"${'lorem ipsum '.repeat(200)}`;
    chunks = [
      chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_', type: 'function', function: { name: 'lookup', arguments: args } }] }),
      chunk({ tool_calls: [{ index: 0, id: 'abc123', function: { arguments: '"}' } }] }),
      chunk({}, 'tool_calls'),
    ];
    const { status, text } = await messages(true);
    expect(status, text).toBe(200);
    const evs = events(text);
    expect(evs.at(-1)!.event).toBe('error');
    expect(evs.at(-1)!.data.error).toMatchObject({ code: 'upstream_error' });
    expect(evs.at(-1)!.data.error.message).toMatch(/tool call's id after its arguments began/);
    expect(evs.some((e) => e.event === 'message_stop')).toBe(false);
    expect(lastRecord()['error_code']).toBe('upstream_error');
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

/**
 * Mistral ends an answer whose generation failed with finish_reason `error`, vLLM one it aborted
 * with `abort`. Anthropic's stop_reason has no such value, and `end_turn` would tell the client the
 * answer is complete: /v1/messages answers it as an upstream failure.
 */
describe('a generation the upstream reports failed (finish_reason error / abort)', () => {
  const anthropic = (): Anthropic => new Anthropic({ baseURL: scripted.w.addresses.http, apiKey: scripted.token, maxRetries: 0, timeout: 15_000 });
  const params = { model: 'gpt-4o-mini', max_tokens: 32, messages: [{ role: 'user' as const, content: 'hi' }] };

  for (const finish of ['error', 'abort']) {
    it(`/v1/messages, not streamed (Anthropic SDK): ${finish} is a 502 upstream_error, audited as such`, async () => {
      completion = answer({ content: 'The answer is' }, finish);
      const err = await anthropic().messages.create(params).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Anthropic.InternalServerError);
      const e = err as InstanceType<typeof Anthropic.InternalServerError>;
      expect(e.status).toBe(502);
      expect(e.type).toBe('api_error');
      const body = (e.error as { error: { code: string; message: string; details?: unknown } }).error;
      expect(body.code).toBe('upstream_error');
      expect(body.message).toMatch(new RegExp(`finish_reason "${finish}"`));
      expect(body.details).toEqual({ finish_reason: finish });
      // No text of the answer in the error.
      expect(JSON.stringify(e.error)).not.toContain('The answer is');
      expect(lastRecord()).toMatchObject({ status: 'error', error_code: 'upstream_error', usage: { completion_tokens: 2 } });
    });

    it(`/v1/messages, streamed: ${finish} ends the stream with an error event and no message_stop`, async () => {
      chunks = [chunk({ role: 'assistant', content: 'The answer is' }), chunk({}, finish)];
      const { status, text } = await messages(true);
      expect(status, text).toBe(200);
      const evs = events(text);
      expect(evs.at(-1)!.event).toBe('error');
      expect(evs.at(-1)!.data.error).toMatchObject({ type: 'api_error', code: 'upstream_error', details: { finish_reason: finish } });
      expect(evs.some((e) => e.event === 'message_delta' || e.event === 'message_stop')).toBe(false);
      expect(lastRecord()).toMatchObject({ status: 'error', error_code: 'upstream_error' });
      // The SDK throws it from the stream instead of handing out a message that looks complete.
      const streamed = anthropic().messages.stream(params).finalMessage();
      await expect(streamed).rejects.toBeInstanceOf(Anthropic.APIError);
    });

    it(`/v1/chat/completions (openai SDK) and gRPC pass ${finish} on as the finish_reason, as the upstream's own clients read it`, async () => {
      completion = answer({ content: 'The answer is' }, finish);
      const res = await scripted.client.chat.completions.create(ask);
      expect(res.choices[0]!.finish_reason).toBe(finish);
      expect(lastRecord()).toMatchObject({ status: 'ok', error_code: null });
      const g = await unaryCall(scripted.gateway, 'Complete', ask, bearerMetadata(scripted.token));
      expect(g.choices[0].finish_reason).toBe(finish);

      chunks = [chunk({ role: 'assistant', content: 'The answer is' }), chunk({}, finish)];
      const stream = await scripted.client.chat.completions.create({ ...ask, stream: true });
      const finishes: Array<string | null> = [];
      for await (const c of stream) for (const ch of c.choices) finishes.push(ch.finish_reason);
      expect(finishes.at(-1)).toBe(finish);
      const { got, err } = await grpcStream();
      expect(err).toBeUndefined();
      expect(got.at(-1).choices[0].finish_reason).toBe(finish);
    });
  }
});

/**
 * Anthropic reports the stop sequence that ended an answer (`stop_reason: "stop_sequence"`,
 * `stop_sequence`). OpenAI's format does not say which stop string matched; vLLM does, as the
 * choice's `stop_reason` (the string, or a token id). It is used only when it is one of the
 * request's stop_sequences, and reaches no caller otherwise.
 */
describe('the stop sequence that ended the answer (vLLM stop_reason)', () => {
  const stopped = (stopReason: unknown): Record<string, unknown> =>
    answer({}, 'stop', { choices: [{ index: 0, message: { role: 'assistant', content: 'Step one' }, finish_reason: 'stop', stop_reason: stopReason }] });
  const stoppedChunks = (stopReason: unknown): Array<Record<string, unknown>> => [
    chunk({ role: 'assistant', content: 'Step one' }),
    chunk({}, 'stop', { choices: [{ index: 0, delta: {}, finish_reason: 'stop', stop_reason: stopReason }] }),
  ];
  const withStops = (stream: boolean) => post('/v1/messages', { ...ask, max_tokens: 32, stream, stop_sequences: ['###', 'END'] });

  it('not streamed: one of the request\'s stop_sequences is stop_reason stop_sequence with that sequence', async () => {
    completion = stopped('END');
    const { status, text } = await withStops(false);
    expect(status, text).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
    // As the Anthropic SDK reads it, not streamed and streamed.
    const sdk = new Anthropic({ baseURL: scripted.w.addresses.http, apiKey: scripted.token, maxRetries: 0, timeout: 15_000 });
    const params = { model: 'gpt-4o-mini', max_tokens: 32, stop_sequences: ['###', 'END'], messages: [{ role: 'user' as const, content: 'hi' }] };
    const msg = await sdk.messages.create(params);
    expect([msg.stop_reason, msg.stop_sequence]).toEqual(['stop_sequence', 'END']);
    chunks = stoppedChunks('END');
    const final = await sdk.messages.stream(params).finalMessage();
    expect([final.stop_reason, final.stop_sequence]).toEqual(['stop_sequence', 'END']);
  });

  it('streamed: message_delta says stop_sequence with that sequence', async () => {
    chunks = stoppedChunks('###');
    const { status, text } = await withStops(true);
    expect(status, text).toBe(200);
    const delta = events(text).find((e) => e.event === 'message_delta')!;
    expect(delta.data.delta).toEqual({ stop_reason: 'stop_sequence', stop_sequence: '###' });
  });

  it('a string not among the request\'s stop_sequences, a token id, or none: end_turn, stop_sequence null, the string nowhere', async () => {
    for (const reason of ['Jane Roe', 128001, null]) {
      completion = stopped(reason);
      const plain = await withStops(false);
      expect(JSON.parse(plain.text), String(reason)).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
      expect(plain.text).not.toContain('Jane Roe');
      chunks = stoppedChunks(reason);
      const streamed = await withStops(true);
      expect(events(streamed.text).find((e) => e.event === 'message_delta')!.data.delta).toEqual({ stop_reason: 'end_turn', stop_sequence: null });
      expect(streamed.text).not.toContain('Jane Roe');
    }
    // Without stop_sequences in the request nothing matches either.
    completion = stopped('END');
    expect(JSON.parse((await messages()).text)).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
  });

  it('the OpenAI route and gRPC pass on finish_reason stop, and not the upstream\'s stop_reason', async () => {
    completion = stopped('Jane Roe');
    const plain = await post('/v1/chat/completions', { ...ask, stop: ['Jane Roe'] });
    expect(JSON.parse(plain.text).choices[0].finish_reason).toBe('stop');
    expect(plain.text).not.toMatch(/stop_reason|stop_sequence/);
    chunks = stoppedChunks('Jane Roe');
    const streamed = await post('/v1/chat/completions', { ...ask, stream: true, stop: ['Jane Roe'] });
    expect(streamed.text).toContain('"finish_reason":"stop"');
    expect(streamed.text).not.toMatch(/stop_reason|stop_sequence|Jane Roe/);
    const { got } = await grpcStream();
    expect(JSON.stringify(got)).not.toContain('Jane Roe');
  });
});

describe('explicit nulls from compatible servers mean "none"', () => {
  it('not streamed (openai SDK): message.tool_calls null is no tool calls', async () => {
    completion = answer({ content: 'hello', tool_calls: null, function_call: null });
    const res = await scripted.client.chat.completions.create(ask);
    expect(res.choices[0]!.message.content).toBe('hello');
    expect(res.choices[0]!.message).not.toHaveProperty('tool_calls');
  });

  it('not streamed (openai SDK and gRPC): usage without total_tokens gets prompt + completion', async () => {
    completion = answer({ content: 'hello' }, 'stop', { usage: { prompt_tokens: 5, completion_tokens: 7 } });
    const res = await scripted.client.chat.completions.create(ask);
    expect(res.usage).toEqual({ prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 });
    expect(lastRecord()['usage']).toMatchObject({ total_tokens: 12 });
    // The schema's path too (a refusal member takes the answer off the common shape).
    completion = answer({ content: null, refusal: 'no' }, 'stop', { usage: { prompt_tokens: 5, completion_tokens: 7 } });
    const g = await unaryCall(scripted.gateway, 'Complete', ask, bearerMetadata(scripted.token));
    expect(g.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 });
  });

  it('a total that would not fit uint32 is still refused', async () => {
    completion = answer({ content: 'hello' }, 'stop', { usage: { prompt_tokens: 0xffff_ffff, completion_tokens: 1 } });
    await expectRefused(/not a chat completion/);
  });

  it('streamed (openai SDK): delta role, tool_calls and a tool call delta\'s type, id and name null', async () => {
    chunks = [
      chunk({ role: 'assistant', content: '', tool_calls: null }),
      chunk({ role: null, content: 'hello', tool_calls: null, function_call: null }),
      chunk({ role: null, content: null, tool_calls: [{ index: 0, id: 'call_0', type: null, function: { name: 'lookup', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, id: null, type: null, function: { name: null, arguments: '{}' } }] }),
      chunk({}, 'tool_calls', { usage: null }),
      { ...chunk({}), choices: [], usage: { prompt_tokens: 4, completion_tokens: 6 } },
    ];
    const stream = await scripted.client.chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } });
    let content = '';
    const calls: Array<{ id?: string; name?: string; args: string }> = [];
    let usage: unknown;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      const d = c.choices[0]?.delta;
      content += d?.content ?? '';
      for (const t of d?.tool_calls ?? []) {
        const call = (calls[t.index] ??= { args: '' });
        if (t.id) call.id = t.id;
        if (t.function?.name) call.name = (call.name ?? '') + t.function.name;
        call.args += t.function?.arguments ?? '';
      }
    }
    expect(content).toBe('hello');
    expect(calls).toEqual([{ id: 'call_0', name: 'lookup', args: '{}' }]);
    expect(usage).toEqual({ prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 });
    expect(lastRecord()['usage']).toMatchObject({ total_tokens: 10 });
  });
});

describe('the answer\'s shape', () => {
  it('a message whose role is not assistant is upstream_error (common shape and schema path)', async () => {
    for (const role of ['system', 'user', 'tool']) {
      completion = answer({ role, content: 'a' });
      await expectRefused(/role other than assistant/);
      completion = answer({ role, content: null, refusal: 'a' });
      await expectRefused(/role other than assistant/);
    }
  });

  it('two choices with the same index are upstream_error (common shape and schema path)', async () => {
    const choice = (content: string | null, extra: Record<string, unknown> = {}) => ({ index: 0, message: { role: 'assistant', content, ...extra }, finish_reason: 'stop' });
    completion = answer({}, 'stop', { choices: [choice('a'), choice('b')] });
    await expectRefused(/two choices with the same index/);
    completion = answer({}, 'stop', { choices: [choice(null, { refusal: 'a' }), choice('b')] });
    await expectRefused(/two choices with the same index/);
    // Distinct indexes pass when the request asked for them (n: 2; see answer-rules.test.ts).
    completion = answer({}, 'stop', { choices: [choice('a'), { ...choice('b'), index: 1 }] });
    const res = await scripted.client.chat.completions.create({ ...ask, n: 2 });
    expect(res.choices.map((c) => c.message.content)).toEqual(['a', 'b']);
  });

  it('streamed (fetch): a delta whose role is not assistant, first or mid-stream, is upstream_error', async () => {
    chunks = [chunk({ role: 'assistant', content: 'Hello ' }), chunk({ role: 'user', content: 'world' }), chunk({}, 'stop')];
    await expectStreamRefused(/role other than assistant/);
    chunks = [chunk({ role: 'system', content: 'Hello' }), chunk({}, 'stop')];
    await expectStreamRefused(/role other than assistant/);
  });

  const badCreated: Array<[string, number]> = [
    ['a fraction', 1.5],
    ['negative', -1],
    ['beyond int64', 1e300],
    ['beyond 2^53 - 1', 2 ** 53],
  ];
  for (const [what, created] of badCreated) {
    it(`created ${what} (${created}) is upstream_error over HTTP and gRPC, streamed and not`, async () => {
      completion = answer({ content: 'hi' }, 'stop', { created });
      await expectRefused(/created that is not a whole number of seconds/);
      await expect(unaryCall(scripted.gateway, 'Complete', ask, bearerMetadata(scripted.token))).rejects.toMatchObject({ code: 14, details: expect.stringMatching(/created/) });
      chunks = [chunk({ role: 'assistant', content: 'hi' }, null, { created }), chunk({}, 'stop', { created })];
      await expectStreamRefused(/created that is not a whole number of seconds/);
      const { got, err } = await grpcStream();
      expect(got).toEqual([]);
      expect(err?.details).toMatch(/created that is not a whole number of seconds/);
    });
  }

  it('created 0 and 2^53 - 1 pass, and gRPC carries them exactly', async () => {
    for (const created of [0, Number.MAX_SAFE_INTEGER]) {
      completion = answer({ content: 'hi' }, 'stop', { created });
      const res = await scripted.client.chat.completions.create(ask);
      expect(res.created).toBe(created);
      const g = await unaryCall(scripted.gateway, 'Complete', ask, bearerMetadata(scripted.token));
      expect(String(g.created)).toBe(String(created));
    }
  });
});
