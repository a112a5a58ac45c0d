/**
 * End to end: members of chat messages, tool calls, tools and Anthropic content blocks that
 * Warden does not carry are refused with `invalid_request` at their location, never dropped
 * silently (a dropped `is_error` or `refusal` changes what the call means). The values the SDKs
 * leave on an answer an app appends to its history (`refusal: null`, `citations: null`) are
 * accepted, and a member name that is not identifier-shaped is never repeated back.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SSN_LEAK } from './helpers/canaries.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

/** A member name that is the caller's text (PII), which no error may repeat. */
const ODD = 'bob@example.org';

let upstream: FakeUpstream;
let w: WardenFixture;
/** labs/raw-bot: raw prompts and tools allowed. */
let rawToken: string;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  rawToken = await w.signer.token('labs', 'raw-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

async function postOpenAI(body: unknown) {
  const res = await postChat(w.addresses.http, rawToken, body);
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as any };
}

async function postAnthropic(body: unknown) {
  const res = await fetch(`${w.addresses.http}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': rawToken },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as any };
}

const USER = { role: 'user', content: 'Weather in Paris?' };
const CALL = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } };
const TOOL = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };

describe('OpenAI chat messages, tool calls and tools', () => {
  it('a member Warden does not carry, or one the SDK leaves empty but carrying something, is refused at its location', async () => {
    const before = upstream.calls.length;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ messages: [USER, { role: 'user', content: 'hi', foo: 1 }] }, 'messages.1.foo'],
      // A refusal is the model's, on an assistant message only (as OpenAI defines it).
      [{ messages: [USER, { role: 'user', content: 'hi', refusal: 'I will not tell you about 536-22-1234' }] }, 'messages.1.refusal'],
      [{ messages: [{ role: 'system', content: 'Be brief.', refusal: 'no' }, USER] }, 'messages.0.refusal'],
      [{ messages: [USER, { role: 'assistant', content: null, refusal: 536 }] }, 'messages.1.refusal'],
      [{ messages: [USER, { role: 'assistant', content: 'x', audio: { id: 'audio_1' } }] }, 'messages.1.audio'],
      [{ messages: [USER, { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } }] }, 'messages.1.function_call'],
      [{ messages: [USER, { role: 'assistant', content: 'x', annotations: [{ type: 'url_citation', url_citation: { url: 'https://e.example', title: 't', start_index: 0, end_index: 1 } }] }] }, 'messages.1.annotations'],
      [{ messages: [USER, { role: 'assistant', content: null, tool_calls: [{ ...CALL, extra: 1 }] }] }, 'messages.1.tool_calls.0.extra'],
      [{ messages: [USER, { role: 'assistant', content: null, tool_calls: [{ ...CALL, function: { ...CALL.function, extra: 1 } }] }] }, 'messages.1.tool_calls.0.function.extra'],
      [{ messages: [USER], tools: [{ ...TOOL, extra: 1 }] }, 'tools.0.extra'],
      [{ messages: [USER], tools: [{ ...TOOL, function: { ...TOOL.function, extra: 1 } }] }, 'tools.0.function.extra'],
      [{ messages: [USER], tools: [{ ...TOOL, function: { ...TOOL.function, strict: 'yes' } }] }, 'tools.0.function.strict'],
      // A tool needs a name to be called by (gRPC refuses an empty one too).
      [{ messages: [USER], tools: [{ ...TOOL, function: { ...TOOL.function, name: '' } }] }, 'tools.0.function.name'],
      // A member name that is not identifier-shaped is the caller's text: the object is named instead.
      [{ messages: [USER, { role: 'user', content: 'hi', [ODD]: 1 }] }, 'messages.1'],
      [{ messages: [USER, { role: 'assistant', content: null, tool_calls: [{ ...CALL, [ODD]: 1 }] }] }, 'messages.1.tool_calls.0'],
      [{ messages: [USER, { role: 'assistant', content: null, tool_calls: [{ ...CALL, function: { ...CALL.function, [ODD]: 1 } }] }] }, 'messages.1.tool_calls.0.function'],
      [{ messages: [USER], tools: [{ ...TOOL, [ODD]: 1 }] }, 'tools.0'],
      [{ messages: [USER], tools: [{ ...TOOL, function: { ...TOOL.function, [`a${'b'.repeat(64)}`]: 1 } }] }, 'tools.0.function'],
    ];
    for (const [extra, param] of cases) {
      const r = await postOpenAI({ model: 'gpt-4o-mini', ...extra });
      expect(r.status, param).toBe(400);
      expect(r.json.error.code, param).toBe('invalid_request');
      expect(r.json.error.param, param).toBe(param);
      expect(r.text).not.toContain(ODD);
      expect(r.text).not.toContain('bbbbbbbbbbbbbbbb');
      expect(r.text).not.toMatch(SSN_LEAK);
    }
    expect(upstream.calls.length).toBe(before);
  });

  it('an assistant message as the openai SDK returns it goes back into the history (its empty members are not sent upstream)', async () => {
    upstream.mode = 'ok';
    const client = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: rawToken, maxRetries: 0, timeout: 15_000 });
    const history: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hello' }];
    const first = await client.chat.completions.create({ model: 'echo', messages: history });
    history.push(first.choices[0]!.message, { role: 'user', content: 'And again?' });
    const second = await client.chat.completions.create({ model: 'echo', messages: history });
    expect(second.choices[0]!.message.content).toContain('And again?');

    // As OpenAI itself answers: every member of a ChatCompletionMessage present, all of them empty.
    const fromOpenAI: OpenAI.Chat.Completions.ChatCompletionMessage = { role: 'assistant', content: 'Hi!', refusal: null, annotations: [], audio: null, function_call: null };
    const before = upstream.calls.length;
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }, fromOpenAI, { role: 'user', content: 'Go on' }] });
    expect(upstream.calls[before]!.body.messages[1]).toEqual({ role: 'assistant', content: 'Hi!' });
  });

  it("an answer the model refused goes back into the history: its refusal text reaches the upstream, redacted and audited", async () => {
    const client = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: rawToken, maxRetries: 0, timeout: 15_000 });
    const history: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Write to Jane.' }];
    upstream.mode = 'refusal';
    const first = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: history });
    const refused = first.choices[0]!.message;
    expect(refused.refusal).toBe("I can't write to [EMAIL_ADDRESS] about that.");
    upstream.mode = 'ok';
    history.push(refused, { role: 'user', content: 'Why not?' });
    const before = upstream.calls.length;
    const second = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: history });
    expect(second.choices[0]!.message.content).toContain('Why not?');
    expect(upstream.calls[before]!.body.messages[1]).toEqual({ role: 'assistant', content: null, refusal: "I can't write to [EMAIL_ADDRESS] about that." });

    // A refusal the app kept with PII in it (from another gateway, or its own log) is redacted like content.
    const canary = 'refusal.canary.7f3e@example.com';
    const audited = w.audit().length;
    const ask = (refusal: string) =>
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Write to Jane.' }, { role: 'assistant', content: null, refusal }, { role: 'user', content: 'Why not?' }] });
    await ask(`I can't write to ${canary} about that.`);
    const sent = upstream.calls.at(-1)!.body;
    expect(sent.messages[1]).toEqual({ role: 'assistant', content: null, refusal: "I can't write to [EMAIL_ADDRESS] about that." });
    expect(JSON.stringify(sent)).not.toContain('canary');
    // The prompt HMAC covers the refusal: another refusal text is another prompt.
    await ask("I can't write about that.");
    await eventually(() => w.audit().length >= audited + 2);
    const [withPii, other] = w.audit().slice(audited);
    expect(withPii!.prompt_hmac).toMatch(/^[0-9a-f]{64}$/);
    expect(other!.prompt_hmac).not.toBe(withPii!.prompt_hmac);
    expect(JSON.stringify(w.audit()) + w.logs.join('\n')).not.toContain('canary');
  });

  it("a function definition's strict flag reaches the upstream", async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const r = await postOpenAI({ model: 'gpt-4o-mini', messages: [USER], tools: [{ ...TOOL, function: { ...TOOL.function, strict: true } }] });
    expect(r.status, r.text).toBe(200);
    expect(upstream.calls[before]!.body.tools[0].function.strict).toBe(true);
  });
});

describe('Anthropic messages, content blocks and tools', () => {
  const TOOL_USE = { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } };
  const ASKED = { role: 'assistant', content: [TOOL_USE] };
  const result = (block: Record<string, unknown>) => ({ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '18 C', ...block }] });
  const TOOLS = [{ name: 'get_weather', input_schema: { type: 'object' } }];

  it('an unknown member, or a documented one whose loss would change the meaning, is refused in the Anthropic shape at its location', async () => {
    const before = upstream.calls.length;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ messages: [USER, { role: 'assistant', content: 'x', foo: 1 }] }, 'messages.1.foo'],
      [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', foo: 'x' }] }] }, 'messages.0.content.0.foo'],
      [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', citations: [{ type: 'char_location', cited_text: '536-22-1234' }] }] }] }, 'messages.0.content.0.citations'],
      [{ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'https://e.example/a.png', alt: 'x' } }] }] }, 'messages.0.content.0.source.alt'],
      [{ messages: [USER, { role: 'assistant', content: [{ ...TOOL_USE, foo: 1 }] }] }, 'messages.1.content.0.foo'],
      [{ messages: [USER, ASKED, result({ is_error: true })], tools: TOOLS }, 'messages.2.content.0.is_error'],
      [{ messages: [USER, ASKED, result({ content: [{ type: 'text', text: '18 C', foo: 1 }] })], tools: TOOLS }, 'messages.2.content.0.content.0.foo'],
      [{ system: [{ type: 'text', text: 'Be brief.', foo: 1 }], messages: [USER] }, 'system.0.foo'],
      [{ messages: [USER], tools: [{ ...TOOLS[0], foo: 1 }] }, 'tools.0.foo'],
      // Not identifier-shaped: the holder is named, the name is not repeated.
      [{ messages: [USER, { role: 'assistant', content: 'x', [ODD]: 1 }] }, 'messages.1'],
      [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', [ODD]: 1 }] }] }, 'messages.0.content.0'],
      [{ messages: [USER], tools: [{ ...TOOLS[0], [ODD]: 1 }] }, 'tools.0'],
    ];
    for (const [extra, param] of cases) {
      const r = await postAnthropic({ model: 'gpt-4o-mini', max_tokens: 16, ...extra });
      expect(r.status, param).toBe(400);
      expect(r.json.type, param).toBe('error');
      expect(r.json.error, param).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request', param });
      expect(r.text).not.toContain(ODD);
      expect(r.text).not.toMatch(SSN_LEAK);
    }
    expect(upstream.calls.length).toBe(before);
  });

  it('cache_control is dropped and the empty values the SDK returns are accepted', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const cache = { cache_control: { type: 'ephemeral' } };
    const r = await postAnthropic({
      model: 'gpt-4o-mini',
      max_tokens: 16,
      system: [{ type: 'text', text: 'Be brief.', ...cache }],
      tools: [{ ...TOOLS[0], ...cache }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?', citations: null, ...cache }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Checking.', citations: null }, { ...TOOL_USE, caller: { type: 'direct' }, ...cache }] },
        result({ is_error: false, ...cache }),
      ],
    });
    expect(r.status, r.text).toBe(200);
    const sent = JSON.stringify(upstream.calls[before]!.body);
    expect(sent).not.toContain('cache_control');
    expect(sent).not.toContain('citations');
    expect(sent).not.toContain('caller');
  });

  it("a tool's strict flag reaches the upstream as its function's", async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const r = await postAnthropic({ model: 'gpt-4o-mini', max_tokens: 16, messages: [USER], tools: [{ ...TOOLS[0], strict: true }] });
    expect(r.status, r.text).toBe(200);
    expect(upstream.calls[before]!.body.tools[0].function.strict).toBe(true);
    const bad = await postAnthropic({ model: 'gpt-4o-mini', max_tokens: 16, messages: [USER], tools: [{ ...TOOLS[0], strict: 'yes' }] });
    expect(bad.json.error).toMatchObject({ code: 'invalid_request', param: 'tools.0.strict' });
  });
});
