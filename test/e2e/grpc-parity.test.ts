/**
 * gRPC parity with the HTTP API: tool definitions, multi-part content (text parts redacted, opaque
 * parts passed through as their JSON), and tool calls in answers, unary and streamed — through a
 * client generated from the proto, a real Warden and a loopback OpenAI-contract upstream.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, streamMessages, unaryCall } from './helpers/grpc.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import type { FakeUpstream } from './helpers/upstream.js';

let g: GatewayWarden;
let upstream: FakeUpstream;
let gateway: any;
let token: string;

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters_json: JSON.stringify({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
  },
};

const IMAGE_PART = { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } };

function metadata(): grpc.Metadata {
  return bearerMetadata(token);
}

function complete(request: object): Promise<any> {
  return unaryCall(gateway, 'Complete', request, metadata());
}

function streamAll(request: object): Promise<any[]> {
  return streamMessages(gateway.StreamComplete(request, metadata()));
}

/** What a call failed with; undefined when it succeeded. */
function failure(call: Promise<unknown>): Promise<grpc.ServiceError | undefined> {
  return call.then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
}

/** A refusal of the request field `param`: INVALID_ARGUMENT, `invalid_request` naming it. */
function expectFieldRefused(err: grpc.ServiceError | undefined, param: string): asserts err is grpc.ServiceError {
  expect(err, param).toBeDefined();
  expect(err!.code, param).toBe(grpc.status.INVALID_ARGUMENT);
  expect(err!.metadata.get('warden-code')[0], param).toBe('invalid_request');
  expect(err!.metadata.get('warden-param')[0], param).toBe(param);
}

beforeAll(async () => {
  g = await startGatewayWarden({}, ['labs', 'raw-bot']); // the fixture policy allows raw prompts for labs/raw-bot
  ({ upstream, token, gateway } = g);
});

afterAll(async () => {
  await g?.close();
});

describe('gRPC tools, multi-part content and tool calls', () => {
  it("a model's refusal comes back in `refusal`, redacted, from Complete and StreamComplete", async () => {
    upstream.mode = 'refusal';
    const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
    const res = await complete(request);
    expect(res.choices[0].message.content).toBe('');
    expect(res.choices[0].message.refusal).toBe("I can't write to [EMAIL_ADDRESS] about that.");
    const chunks = await streamAll(request);
    const refusal = chunks.map((c) => c.choices[0]?.delta.refusal ?? '').join('');
    expect(refusal).toBe("I can't write to [EMAIL_ADDRESS] about that.");
    upstream.mode = 'ok';
  });

  it("an answer's refusal sent back as history reaches the upstream redacted, as over HTTP", async () => {
    upstream.mode = 'refusal';
    const first = await complete({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Write to Jane.' }] });
    upstream.mode = 'ok';
    const refused = first.choices[0].message;
    expect(refused.refusal).toBe("I can't write to [EMAIL_ADDRESS] about that.");
    const before = upstream.calls.length;
    await complete({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Write to Jane.' }, refused, { role: 'user', content: 'Why not?' }] });
    expect(upstream.calls[before]!.body.messages[1]).toEqual({ role: 'assistant', content: null, refusal: "I can't write to [EMAIL_ADDRESS] about that." });
    await complete({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'Hello.', refusal: 'Not to bob@example.org' }] });
    expect(upstream.calls.at(-1)!.body.messages[1]).toEqual({ role: 'assistant', content: 'Hello.', refusal: 'Not to [EMAIL_ADDRESS]' });
  });

  it('Complete: tools and parts reach the upstream in OpenAI shape; the tool call comes back', async () => {
    upstream.mode = 'tool-call';
    const res = await complete({
      model: 'gpt-4o-mini',
      messages: [
        {
          role: 'user',
          parts: [
            { type: 'text', text: 'What is the weather where this photo was taken? Mail jane.doe@example.com' },
            { type: 'image_url', json: JSON.stringify(IMAGE_PART) },
          ],
        },
      ],
      tools: [WEATHER_TOOL],
      params_json: JSON.stringify({ tool_choice: 'auto' }),
    });
    const sent = upstream.calls.at(-1)!.body;
    expect(sent.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Current weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ]);
    expect(sent.tool_choice).toBe('auto');
    const content = sent.messages[0].content;
    expect(Array.isArray(content)).toBe(true);
    expect(content[0].type).toBe('text');
    expect(content[0].text).toContain('What is the weather');
    expect(content[0].text).not.toContain('jane.doe@example.com'); // text parts are redacted
    expect(content[1]).toEqual(IMAGE_PART); // opaque parts pass through exactly

    const choice = res.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.role).toBe('assistant');
    expect(choice.message.content).toBe('');
    expect(choice.message.tool_calls).toEqual([{ id: 'call_up_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
  });

  it("a tool's `strict` reaches the upstream as set (true or false), and is absent when unset", async () => {
    upstream.mode = 'ok';
    const ask = (strict: boolean | undefined) => ({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'function', function: { ...WEATHER_TOOL.function, ...(strict === undefined ? {} : { strict }) } }],
    });
    for (const strict of [true, false]) {
      await complete(ask(strict));
      expect(upstream.calls.at(-1)!.body.tools[0].function.strict).toBe(strict);
    }
    await complete(ask(undefined));
    expect(upstream.calls.at(-1)!.body.tools[0].function).not.toHaveProperty('strict');
  });

  it('tool definitions are redacted before they leave: description and schema strings', async () => {
    upstream.mode = 'ok';
    const leakyTool = {
      type: 'function',
      function: {
        name: 'escalate',
        description: 'Escalate to the on-call lead at oncall.lead@example.com',
        parameters_json: JSON.stringify({
          type: 'object',
          properties: { note: { type: 'string', description: 'Or call +1 415 555 0132 after hours' } },
        }),
      },
    };
    await complete({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Escalate ticket T-9' }], tools: [leakyTool] });
    const sent = upstream.calls.at(-1)!.body.tools[0].function;
    expect(sent.name).toBe('escalate');
    expect(sent.description).not.toContain('oncall.lead@example.com');
    expect(sent.description).toContain('[EMAIL_ADDRESS]');
    expect(JSON.stringify(sent.parameters)).not.toContain('415 555 0132');
    expect(sent.parameters.properties.note.type).toBe('string'); // the schema stays a valid schema
  });

  it('StreamComplete: tool-call deltas arrive in order and assemble to the call', async () => {
    upstream.mode = 'tool-call';
    const chunks = await streamAll({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER_TOOL] });
    expect(upstream.calls.at(-1)!.body.tools[0].function.name).toBe('get_weather');
    const deltas = chunks.flatMap((c) => c.choices.flatMap((ch: any) => ch.delta.tool_calls));
    expect(deltas[0]).toMatchObject({ index: 0, id: 'call_up_1', type: 'function', function: { name: 'get_weather' } });
    expect(deltas.map((d: any) => d.function.arguments).join('')).toBe('{"city":"Paris"}');
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('tool_calls');
  });

  it('a tool-call turn and the tool result are forwarded as OpenAI writes them', async () => {
    upstream.mode = 'ok';
    const res = await complete({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '18 C and sunny' },
      ],
      tools: [WEATHER_TOOL],
    });
    const sent = upstream.calls.at(-1)!.body.messages;
    expect(sent[1]).toMatchObject({ role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
    expect(sent[2]).toMatchObject({ role: 'tool', tool_call_id: 'call_1', content: '18 C and sunny' });
    expect(res.choices[0].message.content).toContain('upstream saw: 18 C and sunny');
  });

  it('bad tools and parts are INVALID_ARGUMENT naming the field, before anything goes upstream', async () => {
    const before = upstream.calls.length;
    const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
    const bad: Array<[object, string]> = [
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: '{not json' }] }] }, 'messages.0.parts.0.json'],
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: '[1,2]' }] }] }, 'messages.0.parts.0.json'],
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: '{"type":"input_audio"}' }] }] }, 'messages.0.parts.0.json'],
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url' }] }] }, 'messages.0.parts.0.json'],
      [{ messages: [{ role: 'user', parts: [{ text: 'no type' }] }] }, 'messages.0.parts.0.type'],
      // A part type Warden does not know: redaction would not read it, so it is refused.
      [{ messages: [{ role: 'user', parts: [{ type: 'mystery', json: '{"text":"ssn 536-22-1234"}' }] }] }, 'messages.0.parts.0.type'],
      [{ messages: [{ role: 'user', parts: [{ type: 'tool_result', json: '{"tool_use_id":"t1","content":"ssn 536-22-1234"}' }] }] }, 'messages.0.parts.0.type'],
      // Members OpenAI does not document would pass redaction untouched: refused, naming the member.
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: '{"image_url":{"url":"https://e.example/a.png"},"text":"card 4111 1111 1111 1111"}' }] }] }, 'messages.0.parts.0.json.text'],
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: '{"image_url":{"url":"https://e.example/a.png","detail":"bob@example.org"}}' }] }] }, 'messages.0.parts.0.json.image_url.detail'],
      [{ messages: [{ role: 'user', parts: [{ type: 'input_audio', json: '{"input_audio":{"data":"AAAA","format":"wav","transcript":"x"}}' }] }] }, 'messages.0.parts.0.json.input_audio.transcript'],
      // A member name that is not identifier-shaped is the caller's text: not repeated, the object is named.
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: '{"image_url":{"url":"https://e.example/a.png"},"bob@example.org":1}' }] }] }, 'messages.0.parts.0.json'],
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: '{"image_url":{"url":"https://e.example/a.png","bob@example.org":1}}' }] }] }, 'messages.0.parts.0.json.image_url'],
      [{ messages: [{ role: 'user', content: 'both', parts: [{ type: 'text', text: 'x' }] }] }, 'messages.0.content'],
      // A refusal is the model's: on an assistant message only.
      [{ messages: [{ role: 'user', content: 'hi', refusal: 'ssn 536-22-1234' }] }, 'messages.0.refusal'],
      [{ messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'retrieval', function: { name: 'x' } }] }, 'tools.0.type'],
      [{ messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: '' } }] }, 'tools.0.function.name'],
      [{ messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f', parameters_json: 'nope' } }] }, 'tools.0.function.parameters_json'],
      [{ messages: [{ role: 'user', content: 'hi' }], params_json: '{"tools": []}' }, 'params_json.tools'],
      // Put into the parameters it would set their prototype: sent nowhere, not even redacted.
      [{ messages: [{ role: 'user', content: 'hi' }], params_json: '{"__proto__": {"seed": 7, "user": "bob@example.org"}}' }, 'params_json'],
      // What HTTP refuses is refused here too, not rewritten on its way upstream.
      [{ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', tool_calls: [{ id: 'c1', type: 'xyz', function: { name: 'f', arguments: '{}' } }] }] }, 'messages.1.tool_calls.0.type'],
      [{ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function' }] }] }, 'messages.1.tool_calls.0.function'],
      [{ template: { id: '', version: 7 }, messages: [{ role: 'user', content: 'hi' }] }, 'template.id'],
      [{ messages: [{ role: 'user', content: 'hi' }], temperature: NaN }, 'temperature'],
      [{ messages: [{ role: 'user', content: 'hi' }], top_p: Infinity }, 'top_p'],
      [{ messages: [{ role: 'user', content: 'hi' }], top_p: -Infinity }, 'top_p'],
      // A parameter given twice (its own field and params_json): which one was meant is not Warden's guess.
      [{ messages: [{ role: 'user', content: 'hi' }], temperature: 0.1, params_json: '{"temperature":0.9}' }, 'params_json.temperature'],
      [{ messages: [{ role: 'user', content: 'hi' }], top_p: 0.5, params_json: '{"top_p":0.9}' }, 'params_json.top_p'],
      [{ messages: [{ role: 'user', content: 'hi' }], stop: ['b'], params_json: '{"stop":["a"]}' }, 'params_json.stop'],
      // JSON fields nested deeper than limits.max_json_depth (64; each field counts from its own top).
      [{ messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f', parameters_json: deep(5000) } }] }, 'tools.0.function.parameters_json.a.a.a.a.a.a'],
      [{ messages: [{ role: 'user', content: 'hi' }], params_json: `{"seed":${deep(64)}}` }, 'params_json.seed.a.a.a.a.a'],
      [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: `{"x":${deep(5000)}}` }] }] }, 'messages.0.parts.0.json.x.a.a.a.a.a'],
    ];
    for (const [request, param] of bad) {
      const err = await failure(complete({ model: 'gpt-4o-mini', ...request }));
      expectFieldRefused(err, param);
      expect(err.details).not.toContain('536-22-1234');
      expect(err.details).not.toContain('mystery');
      expect(err.details).not.toContain('bob@example.org');
    }
    expect(upstream.calls.length).toBe(before);
  });

  it('an image part whose URL holds PII is FAILED_PRECONDITION redaction_blocked, as over HTTP, and nothing goes upstream', async () => {
    const before = upstream.calls.length;
    const part = { type: 'image_url', image_url: { url: 'https://example.com/cat.png?owner=bob@example.org' } };
    const err = await failure(complete({ model: 'gpt-4o-mini', messages: [{ role: 'user', parts: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', json: JSON.stringify(part) }] }] }));
    expect(err).toBeDefined();
    expect(err!.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err!.metadata.get('warden-code')[0]).toBe('redaction_blocked');
    expect(err!.details).not.toContain('bob@example.org');
    expect(upstream.calls.length).toBe(before);
  });
});

describe('a large JSON field nested too deep', () => {
  it('is refused from its text before it is parsed, as a large HTTP body is: INVALID_ARGUMENT invalid_request naming the field, invalid JSON too', async () => {
    // Over 64 KiB a field is scanned before JSON.parse, which takes a deeply nested one some
    // tenths of a second (1 MiB) before any check could refuse it. The scan names the field, not
    // a path inside it (it builds none); an unclosed text is refused for its depth as well.
    const big = await startGatewayWarden({ limits: 'limits: { max_body_bytes: 2097152 }' }, ['labs', 'raw-bot']);
    try {
      const call = (request: object): Promise<any> => unaryCall(big.gateway, 'Complete', request, bearerMetadata(big.token));
      const before = big.upstream.calls.length;
      const levels = 70_000;
      const nested = `{"x":${'['.repeat(levels)}${']'.repeat(levels)}}`;
      const unclosed = `{"x":${'['.repeat(levels)}`;
      const hi = [{ role: 'user', content: 'hi' }];
      const cases: Array<[object, string]> = [];
      for (const text of [nested, unclosed]) {
        cases.push(
          [{ messages: hi, params_json: text }, 'params_json'],
          [{ messages: hi, tools: [{ type: 'function', function: { name: 'f', parameters_json: text } }] }, 'tools.0.function.parameters_json'],
          [{ messages: [{ role: 'user', parts: [{ type: 'image_url', json: text }] }] }, 'messages.0.parts.0.json'],
        );
      }
      for (const [request, param] of cases) {
        const err = await failure(call({ model: 'gpt-4o-mini', ...request }));
        expectFieldRefused(err, param);
        expect(err.details, param).toBe(`field '${param}' is nested deeper than 64 levels (limits.max_json_depth)`);
      }
      // Over 64 KiB and within the depth: served. Its strings hold brackets, escaped quotes and a
      // trailing backslash, which the scan must read as JSON does.
      const text = `${'[[{{ \\" [[[ '.repeat(8000)}\\`;
      const res = await call({ model: 'gpt-4o-mini', messages: hi, params_json: JSON.stringify({ metadata: { note: text, n: JSON.parse(`${'{"n":'.repeat(60)}1${'}'.repeat(60)}`) } }) });
      expect(res.choices[0].message.content).toBeTruthy();
      expect(big.upstream.calls.length).toBe(before + 1);
      expect(big.upstream.calls[before]!.body.metadata.note).toBe(text);
    } finally {
      await big.close();
    }
  });
});

describe("the HTTP routes' template headers, sent as gRPC metadata", () => {
  it('are refused INVALID_ARGUMENT naming them, audited, never ignored (the call would go out as a raw prompt)', async () => {
    const before = upstream.calls.length;
    const audited = g.w.audit().length;
    const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] };
    const sent: Array<[string, string, string]> = [
      ['x-warden-template', 'support/ticket-summary@2', 'template'],
      ['x-warden-variables', '{"ticket_id":"T-1"}', 'variables'],
    ];
    for (const [name, value, field] of sent) {
      const err = await failure(unaryCall(gateway, 'Complete', request, bearerMetadata(token, { [name]: value })));
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details).toBe(`metadata '${name}' is not read over gRPC: give it in the request's '${field}' field`);
      expect(err?.metadata.get('warden-code')).toEqual(['invalid_request']);
      expect(err?.metadata.get('warden-param')).toEqual([name]);
    }
    expect(upstream.calls.length).toBe(before);
    expect(g.w.audit().slice(audited).map((r) => r.error_code)).toEqual(['invalid_request', 'invalid_request']);
  });
});
