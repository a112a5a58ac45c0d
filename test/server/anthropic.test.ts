import { describe, expect, it } from 'vitest';
import { AnthropicStreamEncoder, anthropicMessageBody, anthropicPromptRequest, anthropicToChatBody } from '../../src/server/anthropic.js';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';

describe('anthropicMessageBody', () => {
  const answer = (finish: string) =>
    JSON.parse(
      anthropicMessageBody({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: finish }] }),
    ) as { stop_reason: unknown };

  it('maps finish_reason to stop_reason, and anything unknown to end_turn, including names every object has', () => {
    expect(answer('length').stop_reason).toBe('max_tokens');
    expect(answer('model_length').stop_reason).toBe('max_tokens');
    expect(answer('content_filter').stop_reason).toBe('refusal');
    for (const finish of ['whatever', 'constructor', 'toString', '__proto__']) expect(answer(finish).stop_reason, finish).toBe('end_turn');
  });
});

describe('an empty refusal', () => {
  it('refuses nothing, streamed or not: end_turn, content []', () => {
    for (const message of [
      { role: 'assistant' as const, content: '', refusal: '' },
      { role: 'assistant' as const, content: [{ type: 'refusal' as const, refusal: '' }] },
    ]) {
      const plain = JSON.parse(anthropicMessageBody({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, message, finish_reason: 'stop' }] })) as { stop_reason: unknown; content: unknown };
      expect(plain).toMatchObject({ stop_reason: 'end_turn', content: [] });
    }
    const enc = new AnthropicStreamEncoder('r', 'm');
    const out = enc.encode({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { content: '', refusal: '' }, finish_reason: 'stop' }] }) + enc.finish('r', 'm');
    expect(out).toContain('"stop_reason":"end_turn"');
    expect(out).not.toContain('content_block_start');
  });
});

describe('stop_reason of a message with tool_use blocks', () => {
  const call = { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Paris"}' } };
  const message = (finish: string | null, toolCalls: (typeof call)[]) =>
    JSON.parse(
      anthropicMessageBody({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, message: { role: 'assistant', content: null, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) }, finish_reason: finish }] }),
    ) as { stop_reason: unknown; content: { type: string }[] };
  const streamed = (finish: string | null, toolCalls: (typeof call)[]) => {
    const enc = new AnthropicStreamEncoder('r', 'm');
    let out = '';
    toolCalls.forEach((t, index) => {
      out += enc.encode({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index, ...t }] }, finish_reason: null }] });
    });
    out += enc.encode({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: {}, finish_reason: finish }] });
    out += enc.finish('r', 'm');
    const delta = out.split('\n').find((l) => l.startsWith('data: {"type":"message_delta"'))!;
    return (JSON.parse(delta.slice('data: '.length)) as { delta: { stop_reason: unknown } }).delta.stop_reason;
  };

  it('is tool_use when the upstream finished with stop or none, as OpenAI does for a named tool_choice, streamed or not', () => {
    for (const finish of ['stop', null, 'eos_token']) {
      expect(message(finish, [call]).stop_reason, String(finish)).toBe('tool_use');
      expect(message(finish, [call]).content.map((b) => b.type)).toEqual(['tool_use']);
      expect(streamed(finish, [call]), String(finish)).toBe('tool_use');
    }
    expect(message('tool_calls', [call]).stop_reason).toBe('tool_use');
    expect(streamed('tool_calls', [call])).toBe('tool_use');
  });

  it('stays max_tokens for a call the limit cut, and refusal for a filtered answer', () => {
    expect(message('length', [call]).stop_reason).toBe('max_tokens');
    expect(streamed('length', [call])).toBe('max_tokens');
    expect(message('content_filter', [call]).stop_reason).toBe('refusal');
  });

  it('is end_turn, not tool_use, for a tool_calls finish without any call (no tool_use block to run)', () => {
    expect(message('tool_calls', []).stop_reason).toBe('end_turn');
    expect(streamed('tool_calls', [])).toBe('end_turn');
  });

  it('a stream that ends without a finish_reason after a tool call stops with tool_use', () => {
    const enc = new AnthropicStreamEncoder('r', 'm');
    enc.encode({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, ...call }] }, finish_reason: null }] });
    expect(enc.finish('r', 'm')).toContain('"stop_reason":"tool_use"');
  });
});

describe('the message id and model of an upstream that leaves them empty', () => {
  it('are the request id and the requested model, as the streamed message has them', () => {
    const result = { id: '', model: '', created: 1, choices: [{ index: 0, message: { role: 'assistant' as const, content: 'hi' }, finish_reason: 'stop' }] };
    expect(JSON.parse(anthropicMessageBody(result, 'req-1', 'gpt-4o-mini'))).toMatchObject({ id: 'msg_req-1', model: 'gpt-4o-mini' });
    const enc = new AnthropicStreamEncoder('req-1', 'gpt-4o-mini');
    expect(enc.encode({ ...result, choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }] })).toContain('"id":"msg_req-1","type":"message","role":"assistant","model":"gpt-4o-mini"');
    // The upstream's own, when it sent them.
    expect(JSON.parse(anthropicMessageBody({ ...result, id: 'chatcmpl-9', model: 'gpt-4o-2024-08-06' }, 'req-1', 'gpt-4o-mini'))).toMatchObject({ id: 'msg_chatcmpl-9', model: 'gpt-4o-2024-08-06' });
  });
});

describe('the non-streamed answer with a refusal', () => {
  it('keeps the text before the refusal and the refusal, as the streamed answer does', () => {
    const body = JSON.parse(
      anthropicMessageBody({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, message: { role: 'assistant', content: 'Part one. ', refusal: 'I cannot go on.' }, finish_reason: 'stop' }] }),
    ) as { content: unknown; stop_reason: string };
    expect(body.content).toEqual([{ type: 'text', text: 'Part one. I cannot go on.' }]);
    expect(body.stop_reason).toBe('refusal');
  });
});

describe('anthropicToChatBody', () => {
  it('names an unknown parameter back only when it looks like one (a key is the caller\'s text)', () => {
    const base = { model: 'm', max_tokens: 5, messages: [] };
    expect(() => anthropicToChatBody({ ...base, thinking: {} })).toThrow(expect.objectContaining({ message: expect.stringContaining("field 'thinking'"), location: { path: 'thinking' } }));
    const canary = `jane.CANARY@example.com ${'x'.repeat(2000)}`;
    let message = '';
    try {
      anthropicToChatBody({ ...base, [canary]: 1 });
    } catch (err) {
      message = JSON.stringify(err) + String((err as Error).message);
    }
    expect(message).toContain('not an Anthropic parameter name');
    expect(message).not.toContain('CANARY');
  });
});

describe('a tool_result without content', () => {
  it('is an empty tool message, whether its content is absent, "" or an empty list (OpenAI refuses an empty part list)', () => {
    const ask = { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'f', input: {} }] };
    for (const content of [undefined, '', []]) {
      const result = { type: 'tool_result', tool_use_id: 'toolu_1', ...(content === undefined ? {} : { content }) };
      const body = anthropicToChatBody({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'go' }, ask, { role: 'user', content: [result] }] });
      expect((body.messages as unknown[])[2], JSON.stringify(content)).toEqual({ role: 'tool', tool_call_id: 'toolu_1', content: '' });
    }
  });
});

describe('a last assistant turn (a prefill)', () => {
  it('is refused at that message: an OpenAI-style upstream answers with a new message, which the app would append to its prefill', () => {
    const prefill = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'JSON please' }, { role: 'assistant', content: [{ type: 'text', text: '{' }] }] };
    expect(() => anthropicToChatBody(prefill)).toThrow(expect.objectContaining({ code: 'invalid_request', message: expect.stringContaining('prefill'), location: { path: 'messages.1' } }));
    // An assistant turn before the last user turn is history, as before.
    expect(anthropicToChatBody({ ...prefill, messages: [...prefill.messages, { role: 'user', content: 'go on' }] }).messages).toHaveLength(3);
  });
});

describe('AnthropicStreamEncoder', () => {
  const chunk = (tool: number, args: string, extra: object = {}) => ({
    id: 'c',
    model: 'm',
    created: 1,
    choices: [{ index: 0, delta: { tool_calls: [{ index: tool, function: { arguments: args }, ...extra }] }, finish_reason: null }],
  });

  it('refuses an upstream that goes back to a tool call whose block it closed, instead of a nameless block', () => {
    const enc = new AnthropicStreamEncoder();
    expect(enc.encode(chunk(0, '{"a":1}', { id: 'call_a', function: { name: 'a', arguments: '{"a":1}' } }))).toContain('"name":"a"');
    expect(enc.encode(chunk(1, '{}', { id: 'call_b', function: { name: 'b', arguments: '{}' } }))).toContain('"name":"b"');
    expect(() => enc.encode(chunk(0, ' '))).toThrow(expect.objectContaining({ code: 'upstream_error', message: expect.stringContaining('went back to an earlier tool call') }));
  });

  it('refuses a tool call left with arguments that are not a JSON object when the next block begins', () => {
    const enc = new AnthropicStreamEncoder();
    enc.encode(chunk(0, '{"a":', { id: 'call_a', function: { name: 'a', arguments: '{"a":' } }));
    expect(() => enc.encode(chunk(1, '{}', { id: 'call_b', function: { name: 'b', arguments: '{}' } }))).toThrow(
      expect.objectContaining({ code: 'upstream_error', message: expect.stringContaining('not a JSON object') }),
    );
  });

  it('refuses a tool call whose arguments pass 16 MiB, the cap of a whole non-streamed answer, rather than holding them without bound', () => {
    const enc = new AnthropicStreamEncoder();
    const MiB = 1024 * 1024;
    let sent = enc.encode(chunk(0, '{"x":"', { id: 'call_a', function: { name: 'a', arguments: '{"x":"' } })).length;
    const piece = 'a'.repeat(MiB);
    let refused: unknown;
    for (let i = 0; i < 17 && refused === undefined; i++) {
      try {
        sent += enc.encode(chunk(0, piece)).length;
      } catch (err) {
        refused = err;
      }
    }
    expect(refused).toMatchObject({ code: 'upstream_error', message: expect.stringContaining('16 MiB') });
    // The piece that would pass the cap is not sent either: what went out fits under it.
    expect(sent).toBeLessThan(16 * MiB + 64 * 1024);
  });

  it('refuses a tool call whose first piece has no id or name, instead of a nameless block', () => {
    expect(() => new AnthropicStreamEncoder().encode(chunk(0, '{}'))).toThrow(expect.objectContaining({ code: 'upstream_error' }));
    expect(() => new AnthropicStreamEncoder().encode(chunk(0, '{}', { id: 'call_a' }))).toThrow(expect.objectContaining({ code: 'upstream_error' }));
  });
});

describe('anthropicPromptRequest', () => {
  const meta = (templateHeader?: string) => ({ id: 'r', credentials: { peer: { address: 'unix', local: true, transport: 'unix' as const } }, signal: new AbortController().signal, receivedAt: 0, ...(templateHeader ? { templateHeader } : {}) });
  const refusal = (body: unknown, templateHeader?: string) => {
    try {
      anthropicPromptRequest(body, meta(templateHeader) as never, DEFAULT_LIMITS);
    } catch (err) {
      return err as { code: string; location?: { path: string } };
    }
    throw new Error('expected a refusal');
  };

  it('a system prompt on the governed path is refused at system, whether the template is named in the body or a header', () => {
    const base = { model: 'm', max_tokens: 5, system: 'Be terse.', messages: [] };
    expect(refusal({ ...base, warden: { template: 'support/ticket-summary@2' } })).toMatchObject({ code: 'invalid_request', location: { path: 'system' } });
    expect(refusal(base, 'support/ticket-summary@2')).toMatchObject({ code: 'invalid_request', location: { path: 'system' } });
    // A template that is no template is refused as such, not as a system prompt beside it.
    expect(refusal({ ...base, warden: { template: 5 } })).toMatchObject({ location: { path: 'warden.template' } });
  });

  it('system blocks are text parts, as a message\'s blocks are (redaction reads them as one text), not joined', () => {
    const req = anthropicPromptRequest(
      { model: 'm', max_tokens: 5, system: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b', cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: 'hi' }] },
      meta() as never,
      DEFAULT_LIMITS,
    );
    expect(req.messages![0]).toEqual({ role: 'system', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] });
  });

  it('a system prompt on the raw path goes on as a leading system message', () => {
    const req = anthropicPromptRequest({ model: 'm', max_tokens: 5, system: 'Be terse.', messages: [{ role: 'user', content: 'hi' }] }, meta() as never, DEFAULT_LIMITS);
    expect(req.messages).toEqual([{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'hi' }]);
  });
});

describe('usage in the streamed message', () => {
  const events = (out: string) =>
    out
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice('data: '.length)) as { type: string; message?: { usage: unknown }; usage?: unknown });
  const text = (usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number }) => ({
    id: 'c',
    model: 'm',
    created: 1,
    choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }],
    ...(usage ? { usage } : {}),
  });

  it("message_start has the input tokens when the upstream's first chunk reports them, else 0; message_delta has them once reported", () => {
    const early = new AnthropicStreamEncoder();
    let out = early.encode(text({ prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 }));
    out += early.finish('r', 'm');
    expect(events(out).find((e) => e.type === 'message_start')!.message!.usage).toEqual({ input_tokens: 9, output_tokens: 0 });
    expect(events(out).find((e) => e.type === 'message_delta')!.usage).toEqual({ input_tokens: 9, output_tokens: 1 });

    // OpenAI's order: usage in a last chunk without choices.
    const late = new AnthropicStreamEncoder();
    out = late.encode(text());
    out += late.encode({ id: 'c', model: 'm', created: 1, choices: [], usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } });
    out += late.finish('r', 'm');
    expect(events(out).find((e) => e.type === 'message_start')!.message!.usage).toEqual({ input_tokens: 0, output_tokens: 0 });
    expect(events(out).find((e) => e.type === 'message_delta')!.usage).toEqual({ input_tokens: 9, output_tokens: 1 });
  });
});
