/**
 * End to end: a tool result written with JSON string escapes, as Python's `json.dumps` writes it
 * (every non-ASCII character escaped: a no-break space is `\u00a0`) or as an app escapes `@`,
 * goes upstream with its PII redacted, as its plain form does. The model reads
 * `canary.pii.7f3a\u0040example.com` as the address; before the fix the text went up as
 * written. The official `openai` SDK (a `tool` message, streamed and not) and
 * `@anthropic-ai/sdk` (a `tool_result` block) against a loopback upstream that records what it
 * received; the upstream, the caller, the log and the audit record hold no canary.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

const MAIL = 'canary.pii.7f3a@example.com';
const PHONE = '+1 415 555 2671';
const CARD = '4111 1111 1111 1111';
/** The tool's result as json.dumps writes it: `@` escaped by the app, the spaces no-break ones. */
const TOOL_RESULT = JSON.stringify({ customer: 'José', mail: MAIL, phone: PHONE.replaceAll(' ', '\u00a0'), card: CARD, note: 'line\nok' })
  .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  .replace('@', '\\u0040')
  .replaceAll(' ', '\\u0020');
const REDACTED = { customer: 'José', mail: '[EMAIL_ADDRESS]', phone: '[PHONE_NUMBER]', card: '[CREDIT_CARD]', note: 'line\nok' };

let upstream: FakeUpstream;
let w: WardenFixture;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  const token = await w.signer.token('labs', 'raw-bot'); // raw prompts are allowed for labs/raw-bot
  openai = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: token, maxRetries: 0, timeout: 15_000 });
  anthropic = new Anthropic({ baseURL: w.addresses.http, apiKey: token, maxRetries: 0, timeout: 15_000 });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

/** No piece of a canary in `text`, as written or with its JSON escapes decoded (twice: a body quoting the text escapes it again). */
function expectNoCanary(text: string): void {
  let decoded = text;
  for (let i = 0; i < 2; i++) decoded = decoded.replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\\\/g, '\\');
  for (const t of [text, decoded, decoded.replace(/\s/g, ' ')]) {
    expect(t).not.toMatch(/canary\.pii|u0040example|415.555.2671|4111.1111/);
  }
}

function conversation(): OpenAI.Chat.Completions.ChatCompletionMessageParam[] {
  return [
    { role: 'user', content: 'Summarise the customer record.' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"id": 7}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: TOOL_RESULT },
  ];
}

/** What the upstream received for the call made after `before` calls: its tool message's content. */
function sentToolResult(before: number): string {
  expect(upstream.calls.length).toBe(before + 1);
  const body = upstream.calls[before]!.body as { messages: Array<{ role: string; content: string }> };
  expectNoCanary(JSON.stringify(body));
  const tool = body.messages.find((m) => m.role === 'tool')!;
  expect(JSON.parse(tool.content)).toEqual(REDACTED);
  return tool.content;
}

describe('a tool result with JSON escapes in the prompt', () => {
  it('openai SDK, not streamed: the upstream gets the PII masked over its escapes, the rest as written', async () => {
    // The escapes really are there, and plain nowhere.
    expect(TOOL_RESULT).toContain('canary.pii.7f3a\\u0040example.com');
    expect(TOOL_RESULT).toContain('+1\\u00a0415\\u00a0555\\u00a02671');
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const answer = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: conversation() });
    const sent = sentToolResult(before);
    // Only the values are rewritten: the other escapes go up as the app wrote them.
    expect(sent).toBe('{"customer":"Jos\\u00e9","mail":"[EMAIL_ADDRESS]","phone":"[PHONE_NUMBER]","card":"[CREDIT_CARD]","note":"line\\nok"}');
    // The loopback upstream echoes the last message: the caller reads the redacted text.
    expect(answer.choices[0]!.message.content).toBe(`upstream saw: ${sent}`);
    expect(w.audit().at(-1)!['redaction']).toMatchObject({ counts: { EMAIL_ADDRESS: 1, PHONE_NUMBER: 1, CREDIT_CARD: 1 } });
  });

  it('openai SDK, streamed', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: conversation(), stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    const sent = sentToolResult(before);
    // The loopback upstream streams the echo a word at a time, each with a space after it.
    expect(text).toBe(`upstream saw: ${sent} `);
  });

  it('@anthropic-ai/sdk: a tool_result block on /v1/messages', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    await anthropic.messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 64,
      messages: [
        { role: 'user', content: 'Summarise the customer record.' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { id: 7 } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: TOOL_RESULT }] },
      ],
    });
    sentToolResult(before);
  });

  it('the log and the audit records hold no canary', () => {
    expectNoCanary(w.logs.join('\n'));
    expectNoCanary(JSON.stringify(w.audit()));
  });
});
