/**
 * End to end: model output written with JSON string escapes is read as the caller's JSON parser
 * reads it. Tool-call arguments are JSON, and so is the content of a structured output
 * (`response_format` json_schema / json_object: the openai SDK's `chat.completions.parse()`
 * JSON-parses it into `message.parsed`). A model that writes `canary.pii.7f3a\u0040example.com`,
 * `4111\u00201111…` or `\u0043\u0041NARY-SECRET-…` hands the app the address, the card and the
 * granted secret once parsed, and on /v1/messages Warden parses the arguments itself into
 * `tool_use.input`, so they would go out in clear. Each must be redacted / masked over its
 * escaped span, streamed (one character per chunk) or not, on every route; the log and the audit
 * record hold none of it.
 */
import { describe, expect, it } from 'vitest';
import { bearerMetadata, streamMessages, unaryCall } from './helpers/grpc.js';
import { anthropicEvents, postRoute } from './helpers/http.js';
import { completionBody, joinedOpenAI, oneCharChunks } from './helpers/scripted-upstream.js';
import { useScriptedWarden } from './helpers/scripted-warden.js';
import { CANARY_SECRET } from './helpers/warden.js';

const PII = 'canary.pii.7f3a@example.com';
const CARD = '4111 1111 1111 1111';
const TEMPLATE = 'ops/incident-brief';
const VARIABLES = { service: 'billing-api' };

/** The secret, the address and the card as a model may write them in JSON: escapes a parser decodes. */
const ESCAPED_SECRET = `\\u0043\\u0041${CANARY_SECRET.slice(2)}`;
const ESCAPED_PII = PII.replace('@', '\\u0040');
const ESCAPED_CARD = CARD.replaceAll(' ', '\\u0020');
/** JSON text whose values, parsed, are the secret, the address and the card. */
const ESCAPED_JSON = `{"code":"${ESCAPED_SECRET}","mail":"${ESCAPED_PII}","card":"${ESCAPED_CARD}","note":"line\\nok"}`;

let completion: Record<string, unknown> = {};
let chunks: Array<Record<string, unknown>> = [];
const scripted = useScriptedWarden(() => completion, () => chunks, ['support', 'ticket-bot']);

const governed = { model: 'gpt-4o-mini', messages: [], warden: { template: `${TEMPLATE}@1`, variables: VARIABLES } } as any;
const grpcRequest = (params: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  template: { id: TEMPLATE, version: 1 },
  variables: VARIABLES,
  params_json: JSON.stringify(params),
});

function expectClean(text: string): void {
  expect(text).not.toContain(CANARY_SECRET);
  expect(text).not.toContain('SECRET-9f8e7d');
  expect(text).not.toContain(PII);
  expect(text).not.toContain(CARD);
}

/** What a caller's JSON parser makes of the value: the canaries must not be in it. */
function expectParsedClean(json: string): Record<string, string> {
  const parsed = JSON.parse(json) as Record<string, string>;
  expectClean(JSON.stringify(parsed));
  expect(parsed).toEqual({ code: '[SECRET_VALUE]', mail: '[EMAIL_ADDRESS]', card: '[CREDIT_CARD]', note: 'line\nok' });
  return parsed;
}

function lastRecord(): Record<string, any> {
  return scripted.w.audit().at(-1)!;
}

function grpcStream(params: Record<string, unknown> = {}): Promise<any[]> {
  const call = scripted.gateway.StreamComplete(grpcRequest(params), bearerMetadata(scripted.token));
  return streamMessages(call);
}

describe('tool-call arguments written with JSON escapes', () => {
  const toolAnswer = () => completionBody({ content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: ESCAPED_JSON } }] }, 'tool_calls');

  it('not streamed (openai SDK): the parsed arguments hold the redactions, counted in the audit record', async () => {
    completion = toolAnswer();
    const res = await scripted.client.chat.completions.create(governed);
    const args = (res.choices[0]!.message.tool_calls![0]! as any).function.arguments as string;
    expectParsedClean(args);
    expect(lastRecord()['redaction']).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1, EMAIL_ADDRESS: 1, CREDIT_CARD: 1 } });
  });

  it('streamed one character per chunk (HTTP): the joined arguments parse to the redactions', async () => {
    chunks = oneCharChunks(ESCAPED_JSON, true);
    const { status, text } = await postRoute(scripted.w.addresses.http, '/v1/chat/completions', { ...governed, stream: true }, scripted.token);
    expect(status, text).toBe(200);
    expect(text).toContain('[DONE]');
    expectParsedClean(joinedOpenAI(text, true));
    expect(lastRecord()['redaction']).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1, EMAIL_ADDRESS: 1, CREDIT_CARD: 1 } });
  });

  it('/v1/messages, not streamed and streamed: tool_use.input holds the redactions, never the decoded values', async () => {
    completion = toolAnswer();
    const body = { model: 'gpt-4o-mini', max_tokens: 64, messages: [], warden: governed.warden };
    const plain = await postRoute(scripted.w.addresses.http, '/v1/messages', body, scripted.token);
    expect(plain.status, plain.text).toBe(200);
    expectClean(plain.text);
    expectParsedClean(JSON.stringify(JSON.parse(plain.text).content[0].input));

    chunks = oneCharChunks(ESCAPED_JSON, true);
    const streamed = await postRoute(scripted.w.addresses.http, '/v1/messages', { ...body, stream: true }, scripted.token);
    expect(streamed.status, streamed.text).toBe(200);
    const json = anthropicEvents(streamed.text)
      .filter((e) => e.data?.delta?.type === 'input_json_delta')
      .map((e) => e.data.delta.partial_json as string)
      .join('');
    expectParsedClean(json);
  });

  it('gRPC, Complete and StreamComplete: the arguments parse to the redactions', async () => {
    completion = toolAnswer();
    const res = await unaryCall(scripted.gateway, 'Complete', grpcRequest(), bearerMetadata(scripted.token));
    expectParsedClean(res.choices[0].message.tool_calls[0].function.arguments);

    chunks = oneCharChunks(ESCAPED_JSON, true);
    const got = await grpcStream();
    expectParsedClean(got.map((c) => c.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '').join(''));
  });
});

describe('structured output content (response_format json_schema) written with JSON escapes', () => {
  const schema = {
    type: 'json_schema',
    json_schema: {
      name: 'brief',
      strict: true,
      schema: {
        type: 'object',
        properties: { code: { type: 'string' }, mail: { type: 'string' }, card: { type: 'string' }, note: { type: 'string' } },
        required: ['code', 'mail', 'card', 'note'],
        additionalProperties: false,
      },
    },
  } as const;

  it('not streamed (openai SDK parse()): message.parsed holds the redactions', async () => {
    completion = completionBody({ content: ESCAPED_JSON });
    const res = await scripted.client.chat.completions.parse({ ...governed, response_format: schema });
    const message = res.choices[0]!.message;
    expectClean(JSON.stringify(message.parsed));
    expect(message.parsed).toEqual({ code: '[SECRET_VALUE]', mail: '[EMAIL_ADDRESS]', card: '[CREDIT_CARD]', note: 'line\nok' });
    expect(lastRecord()['redaction']).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1, EMAIL_ADDRESS: 1, CREDIT_CARD: 1 } });
  });

  it('streamed one character per chunk (openai SDK stream helper): the final content parses to the redactions', async () => {
    chunks = oneCharChunks(ESCAPED_JSON, false);
    const runner = scripted.client.chat.completions.stream({ ...governed, response_format: schema });
    const final = await runner.finalChatCompletion();
    // The helper parses only a zod response format itself; the app parses the content.
    expectParsedClean(final.choices[0]!.message.content!);
    expect(lastRecord()['redaction']).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1, EMAIL_ADDRESS: 1, CREDIT_CARD: 1 } });
  });

  it('/v1/messages and gRPC, streamed and not: the text parses to the redactions', async () => {
    completion = completionBody({ content: ESCAPED_JSON });
    const body = { model: 'gpt-4o-mini', max_tokens: 64, messages: [], warden: governed.warden };
    const plain = await postRoute(scripted.w.addresses.http, '/v1/messages', body, scripted.token);
    expect(plain.status, plain.text).toBe(200);
    expectParsedClean(JSON.parse(plain.text).content[0].text);
    const res = await unaryCall(scripted.gateway, 'Complete', grpcRequest({ response_format: schema }), bearerMetadata(scripted.token));
    expectParsedClean(res.choices[0].message.content);

    chunks = oneCharChunks(ESCAPED_JSON, false);
    const streamed = await postRoute(scripted.w.addresses.http, '/v1/messages', { ...body, stream: true }, scripted.token);
    expect(streamed.status, streamed.text).toBe(200);
    expectParsedClean(
      anthropicEvents(streamed.text)
        .filter((e) => e.data?.delta?.type === 'text_delta')
        .map((e) => e.data.delta.text as string)
        .join(''),
    );
    const got = await grpcStream({ response_format: schema });
    expectParsedClean(got.map((c) => c.choices[0]?.delta?.content ?? '').join(''));
  });

  it('a plain answer with no escape is unchanged, and a backslash that is no escape stays as written', async () => {
    const text = `path C:\\new\\x and \\u00zz, mail ${PII}`;
    completion = completionBody({ content: text });
    const res = await scripted.client.chat.completions.create(governed);
    expect(res.choices[0]!.message.content).toBe('path C:\\new\\x and \\u00zz, mail [EMAIL_ADDRESS]');
  });
});

describe('the log and the audit records', () => {
  it('hold none of the decoded values', () => {
    const logs = scripted.w.logs.join('\n');
    const audit = JSON.stringify(scripted.w.audit());
    expectClean(logs);
    expectClean(audit);
  });
});
