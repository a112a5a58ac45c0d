/**
 * End to end: JSON inside a JSON string (a tool result that wraps an HTTP body, a model's
 * structured output whose field holds serialised JSON) escapes its values twice:
 * `+1\\u00a0415\\u00a0555\\u00a02671` is the phone number once JSON.parse has run twice, and
 * `jane.doe\\u0040example.com` the address. Before the fix the escapes were read one level deep
 * only, so such PII went upstream (prompt) and to the app (answer) in clear, and a granted secret
 * written so reached the app. (The prompt's secret check is covered in test/redact/nested-escapes:
 * every secret a request fetches is a template variable, placed in the prompt on purpose, so no
 * caller text on the wire meets a guarded one.) Each must be redacted over its
 * escapes as written, keeping the JSON valid at both levels (the app's second JSON.parse gets the
 * mask), streamed one character per chunk or not. Real server on loopback, the official `openai`
 * SDK and plain HTTP, loopback upstreams.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postRoute } from './helpers/http.js';
import { completionBody, joinedOpenAI, oneCharChunks } from './helpers/scripted-upstream.js';
import { useScriptedWarden } from './helpers/scripted-warden.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { CANARY_SECRET, startWarden, type WardenFixture } from './helpers/warden.js';

const MAIL = 'canary.pii.7f3a@example.com';
/** An inner JSON text whose values, parsed, are the phone number and the address (escaped once). */
const INNER = `{"phone": "+1\\u00a0415\\u00a0555\\u00a02671", "email": "${MAIL.replace('@', '\\u0040')}", "note": "line\\nok"}`;
/** The inner text as the body of an outer JSON document: its escapes escaped again. */
const OUTER = JSON.stringify({ body: INNER });
const REDACTED_INNER = { phone: '[PHONE_NUMBER]', email: '[EMAIL_ADDRESS]', note: 'line\nok' };

/** The two levels hold what they should: the outer parses to a string that parses to `inner`. */
function parsedTwice(text: string): unknown {
  const outer = JSON.parse(text) as { body: string };
  return JSON.parse(outer.body);
}

/** No piece of a canary in `text`, as written or with its escapes decoded up to three times. */
function expectNoCanary(text: string): void {
  let decoded = text;
  const readings = [text];
  for (let i = 0; i < 3; i++) {
    decoded = decoded.replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\\\/g, '\\');
    readings.push(decoded, decoded.replace(/\s/g, ' '));
  }
  for (const t of readings) {
    expect(t).not.toMatch(/canary\.pii|u0040example|415.555.2671|CANARY-SECRET|ANARY-SECRET/);
  }
}

describe('prompt: a tool result whose JSON holds JSON, escaped twice', () => {
  let upstream: FakeUpstream;
  let w: WardenFixture;
  let openai: OpenAI;

  beforeAll(async () => {
    upstream = await startUpstream();
    w = await startWarden({ upstreamUrl: upstream.url });
    const token = await w.signer.token('labs', 'raw-bot');
    openai = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: token, maxRetries: 0, timeout: 15_000 });
  });

  afterAll(async () => {
    await w?.close();
    await upstream?.close();
  });

  const conversation = (content: string): OpenAI.Chat.Completions.ChatCompletionMessageParam[] => [
    { role: 'user', content: 'Summarise the response.' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'fetch', arguments: '{"id": 7}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content },
  ];

  function sentToolResult(before: number): string {
    expect(upstream.calls.length).toBe(before + 1);
    const body = upstream.calls[before]!.body as { messages: Array<{ role: string; content: string }> };
    expectNoCanary(JSON.stringify(body));
    return body.messages.find((m) => m.role === 'tool')!.content;
  }

  it('openai SDK, streamed and not: the upstream gets the phone and address masked inside the inner JSON, both levels valid', async () => {
    // The values really are escaped at the second level only.
    expect(OUTER).toContain('+1\\\\u00a0415\\\\u00a0555\\\\u00a02671');
    expect(OUTER).toContain('canary.pii.7f3a\\\\u0040example.com');
    expect(parsedTwice(OUTER)).toEqual({ phone: '+1\u00a0415\u00a0555\u00a02671', email: MAIL, note: 'line\nok' });
    upstream.mode = 'ok';
    for (const stream of [false, true]) {
      const before = upstream.calls.length;
      if (stream) {
        const s = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: conversation(OUTER), stream: true });
        for await (const chunk of s) void chunk;
      } else {
        await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: conversation(OUTER) });
      }
      const sent = sentToolResult(before);
      expect(parsedTwice(sent)).toEqual(REDACTED_INNER);
      expect(w.audit().at(-1)!['redaction']).toMatchObject({ counts: { EMAIL_ADDRESS: 1, PHONE_NUMBER: 1 } });
    }
  });

  it('the log and the audit records hold no canary', () => {
    expectNoCanary(w.logs.join('\n'));
    expectNoCanary(JSON.stringify(w.audit()));
  });
});

describe('answer: JSON inside a JSON string, escaped twice, in content and in tool-call arguments', () => {
  let completion: Record<string, unknown> = {};
  let chunks: Array<Record<string, unknown>> = [];
  const scripted = useScriptedWarden(() => completion, () => chunks, ['support', 'ticket-bot']);
  const governed = { model: 'gpt-4o-mini', messages: [], warden: { template: 'ops/incident-brief@1', variables: { service: 'billing-api' } } } as any;
  /** The answer's inner JSON also carries the granted secret, escaped twice in the outer text. */
  const ANSWER_INNER = `{"phone": "+1\\u00a0415\\u00a0555\\u00a02671", "email": "${MAIL.replace('@', '\\u0040')}", "code": "\\u0043\\u0041${CANARY_SECRET.slice(2)}", "note": "line\\nok"}`;
  const ANSWER = JSON.stringify({ body: ANSWER_INNER });
  const REDACTED = { ...REDACTED_INNER, code: '[SECRET_VALUE]' };

  it('the answer really holds the values at the second level', () => {
    expect(parsedTwice(ANSWER)).toEqual({ phone: '+1\u00a0415\u00a0555\u00a02671', email: MAIL, code: CANARY_SECRET, note: 'line\nok' });
  });

  it('content (structured output), not streamed and streamed one character per chunk: parsed twice, it holds the masks', async () => {
    completion = completionBody({ content: ANSWER });
    const res = await scripted.client.chat.completions.create(governed);
    expectNoCanary(JSON.stringify(res));
    expect(parsedTwice(res.choices[0]!.message.content!)).toEqual(REDACTED);

    chunks = oneCharChunks(ANSWER, false);
    const { status, text } = await postRoute(scripted.w.addresses.http, '/v1/chat/completions', { ...governed, stream: true }, scripted.token);
    expect(status, text).toBe(200);
    expectNoCanary(text);
    expect(parsedTwice(joinedOpenAI(text, false))).toEqual(REDACTED);
  });

  it('tool-call arguments, not streamed and streamed one character per chunk: parsed twice, they hold the masks', async () => {
    completion = completionBody({ content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'post', arguments: ANSWER } }] }, 'tool_calls');
    const res = await scripted.client.chat.completions.create(governed);
    expectNoCanary(JSON.stringify(res));
    expect(parsedTwice((res.choices[0]!.message.tool_calls![0]! as any).function.arguments)).toEqual(REDACTED);

    chunks = oneCharChunks(ANSWER, true, 'post');
    const { status, text } = await postRoute(scripted.w.addresses.http, '/v1/chat/completions', { ...governed, stream: true }, scripted.token);
    expect(status, text).toBe(200);
    expectNoCanary(text);
    expect(parsedTwice(joinedOpenAI(text, true))).toEqual(REDACTED);
  });

  it('the log and the audit records hold no canary', () => {
    expectNoCanary(scripted.w.logs.join('\n'));
    expectNoCanary(JSON.stringify(scripted.w.audit()));
  });
});
