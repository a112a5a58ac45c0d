/**
 * End to end: a model's tool-call arguments with PII in a JSON number, in a string after an
 * escape, and numbers without PII, come back through a real Warden as JSON the app can parse —
 * with the official `openai` SDK, streamed in pieces and not, and as an Anthropic `tool_use`
 * block. The card number reaches neither the app, the log nor the audit record.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

const CARD = '4111111111111111';
/** The arguments the scripted model writes: pretty-printed, so a stream releases them in parts. */
const ARGS = `{\n  "card": ${CARD},\n  "amount": 12.50,\n  "ref": 12345678901234567890,\n  "note": "line\\nbob@corp.example.com"\n}`;
const EXPECTED = { card: '[CREDIT_CARD]', amount: 12.5, ref: JSON.parse('12345678901234567890') as number, note: 'line\n[EMAIL_ADDRESS]' };
const PAY_TOOL = { type: 'function' as const, function: { name: 'pay', parameters: { type: 'object', properties: { card: { type: 'number' } } } } };

let upstream: FakeUpstream;
let w: WardenFixture;
let client: OpenAI;
let labsToken: string;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  labsToken = await w.signer.token('labs', 'raw-bot'); // raw prompts are allowed for labs/raw-bot
  client = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: labsToken, maxRetries: 0, timeout: 15_000 });
  upstream.mode = 'scripted';
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

const request = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Pay the invoice.' }], tools: [PAY_TOOL] };

describe('answer tool-call arguments stay JSON through Warden', () => {
  it('openai SDK, not streamed: JSON.parse of the arguments gives the redacted values, the rest exact', async () => {
    upstream.script = { text: ARGS, toolArgs: true };
    const answer = await client.chat.completions.create(request);
    const call = answer.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    const args = call.function.arguments;
    expect(JSON.parse(args)).toEqual(EXPECTED);
    // Untouched literals keep their text (a parse would round the 20-digit number).
    expect(args).toContain('"ref": 12345678901234567890');
    expect(args).toContain('"amount": 12.50');
  });

  it('openai SDK, streamed in pieces of 1 to 9: the joined arguments parse, and equal the non-streamed ones', async () => {
    upstream.script = { text: ARGS, toolArgs: true };
    const whole = (await client.chat.completions.create(request)).choices[0]!.message.tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    for (let piece = 1; piece <= 9; piece++) {
      upstream.script = { text: ARGS, toolArgs: true, piece };
      const stream = await client.chat.completions.create({ ...request, stream: true });
      let args = '';
      for await (const chunk of stream) for (const t of chunk.choices[0]?.delta.tool_calls ?? []) args += t.function?.arguments ?? '';
      expect(args, `pieces of ${piece}`).toBe(whole.function.arguments);
      expect(JSON.parse(args)).toEqual(EXPECTED);
    }
  });

  it('Anthropic /v1/messages: the tool_use input holds the redaction, streamed (input_json_delta) or not', async () => {
    const body = { model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: 'Pay the invoice.' }], tools: [{ name: 'pay', input_schema: PAY_TOOL.function.parameters }] };
    const post = async (stream: boolean): Promise<string> => {
      const res = await fetch(`${w.addresses.http}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': labsToken },
        body: JSON.stringify({ ...body, stream }),
      });
      const text = await res.text();
      expect(res.status, text.slice(0, 200)).toBe(200);
      return text;
    };
    upstream.script = { text: ARGS, toolArgs: true, piece: 3 };
    const msg = JSON.parse(await post(false)) as { content: Array<{ type: string; input?: unknown }> };
    expect(msg.content.find((b) => b.type === 'tool_use')?.input).toEqual(EXPECTED);
    let partial = '';
    for (const line of (await post(true)).split('\n')) {
      if (!line.startsWith('data: ')) continue;
      const e = JSON.parse(line.slice(6)) as { type: string; delta?: { type: string; partial_json?: string } };
      if (e.type === 'content_block_delta' && e.delta?.type === 'input_json_delta') partial += e.delta.partial_json ?? '';
    }
    expect(JSON.parse(partial)).toEqual(EXPECTED);
  });

  it('the card number reaches neither the log nor the audit records', () => {
    expect(w.logs.join('\n')).not.toContain(CARD);
    const records = w.audit();
    expect(records.length).toBeGreaterThanOrEqual(13);
    expect(JSON.stringify(records)).not.toContain(CARD);
  });
});
