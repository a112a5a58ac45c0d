/**
 * End to end: PII used as a member name (a JSON key) in tool-call arguments, tool schemas and
 * pass-through parameters, through a real Warden with the official `openai` SDK. On the prompt
 * side (the assistant turn of the history, `tools`, `metadata`) the name is redacted before it
 * goes upstream, and two names of one object that would redact
 * alike refuse the request; on the answer side the model's names are redacted too, streamed or
 * not. The addresses reach neither the upstream, the app, the log nor the audit record.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

const JANE = 'jane.doe@example.com';
const JOHN = 'john.roe@example.com';

let upstream: FakeUpstream;
let w: WardenFixture;
let client: OpenAI;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  const labsToken = await w.signer.token('labs', 'raw-bot'); // raw prompts are allowed for labs/raw-bot
  client = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: labsToken, maxRetries: 0, timeout: 15_000 });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

/** A conversation whose assistant turn called a tool with `args`, and the tool's result. */
function history(args: string): OpenAI.Chat.Completions.ChatCompletionMessageParam[] {
  return [
    { role: 'user', content: 'Score these contacts.' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'score', arguments: args } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'done' },
  ];
}

describe('PII as a member name in prompt tool-call arguments', () => {
  it('is redacted before it goes upstream, and the arguments stay JSON', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: history(`{"${JANE}": 1, "nested": {"+14155552671": [2]}}`) });
    const sent = upstream.calls[before]!.body as { messages: Array<{ tool_calls?: Array<{ function: { arguments: string } }> }> };
    const args = sent.messages[1]!.tool_calls![0]!.function.arguments;
    expect(args).toBe('{"[EMAIL_ADDRESS]": 1, "nested": {"[PHONE_NUMBER]": [2]}}');
    expect(JSON.parse(args)).toEqual({ '[EMAIL_ADDRESS]': 1, nested: { '[PHONE_NUMBER]': [2] } });
  });

  it('two names that would redact alike refuse the request (422 redaction_blocked), naming entity types only', async () => {
    const before = upstream.calls.length;
    const err = (await client.chat.completions.create({ model: 'gpt-4o-mini', messages: history(`{"${JANE}": 1, "${JOHN}": 2}`) }).then(
      () => null,
      (e: unknown) => e,
    )) as InstanceType<typeof OpenAI.APIError> | null;
    expect(err).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect(err!.status).toBe(422);
    expect(err!.code).toBe('redaction_blocked');
    expect(err!.message).toContain('EMAIL_ADDRESS');
    expect(`${err!.message}${JSON.stringify(err!.error)}`).not.toMatch(/jane|john/);
    expect(upstream.calls.length).toBe(before);
  });
});

describe('PII as a member name in answer tool-call arguments', () => {
  const request = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Score the contact.' }] };
  const ARGS = `{\n  "${JANE}": {"+14155552671": 1}\n}`;
  const EXPECTED = { '[EMAIL_ADDRESS]': { '[PHONE_NUMBER]': 1 } };

  it('is redacted, streamed in pieces or not', async () => {
    upstream.mode = 'scripted';
    upstream.script = { text: ARGS, toolArgs: true };
    const answer = await client.chat.completions.create(request);
    const call = answer.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expect(JSON.parse(call.function.arguments)).toEqual(EXPECTED);
    for (const piece of [1, 3, 7]) {
      upstream.script = { text: ARGS, toolArgs: true, piece };
      const stream = await client.chat.completions.create({ ...request, stream: true });
      let args = '';
      for await (const chunk of stream) for (const t of chunk.choices[0]?.delta.tool_calls ?? []) args += t.function?.arguments ?? '';
      expect(args, `pieces of ${piece}`).toBe(call.function.arguments);
    }
  });
});

describe('PII as a member name in a tool schema and in pass-through parameters', () => {
  it('is redacted before it goes upstream, the schema\'s `required` entry alike', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Notify the contact.' }],
      tools: [{ type: 'function', function: { name: 'notify', parameters: { type: 'object', properties: { [JANE]: { type: 'boolean' } }, required: [JANE] } } }],
      metadata: { [JOHN]: 'vip' },
    });
    const sent = upstream.calls[before]!.body as { tools: Array<{ function: { parameters: unknown } }>; metadata: unknown };
    expect(sent.tools[0]!.function.parameters).toEqual({ type: 'object', properties: { '[EMAIL_ADDRESS]': { type: 'boolean' } }, required: ['[EMAIL_ADDRESS]'] });
    expect(sent.metadata).toEqual({ '[EMAIL_ADDRESS]': 'vip' });
  });

  it('two schema properties that would redact alike refuse the request (422 redaction_blocked)', async () => {
    const before = upstream.calls.length;
    const properties = { [JANE]: { type: 'boolean' }, [JOHN]: { type: 'boolean' } };
    const err = (await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Notify.' }], tools: [{ type: 'function', function: { name: 'notify', parameters: { type: 'object', properties } } }] })
      .then(
        () => null,
        (e: unknown) => e,
      )) as InstanceType<typeof OpenAI.APIError> | null;
    expect(err).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect(err!.code).toBe('redaction_blocked');
    expect(`${err!.message}${JSON.stringify(err!.error)}`).not.toMatch(/jane|john/);
    expect(upstream.calls.length).toBe(before);
  });
});

describe('leaks', () => {
  it('the addresses reach neither the log nor the audit records', () => {
    const records = w.audit();
    expect(records.length).toBeGreaterThanOrEqual(5);
    for (const pii of [JANE, JOHN, '4155552671']) {
      expect(w.logs.join('\n')).not.toContain(pii);
      expect(JSON.stringify(records)).not.toContain(pii);
    }
  });
});
