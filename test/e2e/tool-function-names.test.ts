/**
 * End to end: PII in a function name (a tool's, a tool call's, `tool_choice`'s) refuses the request
 * with `redaction_blocked` (`details.reason: "pii_in_function_name"`) over the OpenAI and Anthropic
 * HTTP routes and gRPC, through a real Warden and a loopback upstream. A name is matched against
 * the tools by name, so it is never rewritten: before, `tools[].function.name` went upstream in
 * clear while the same name in `tool_choice` was tokenized, naming a tool that did not exist.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import type { FakeUpstream } from './helpers/upstream.js';
import type { WardenFixture } from './helpers/warden.js';

const JANE = 'jane.doe@example.com';
const NAME = `mail_${JANE}`;

let g: GatewayWarden;
let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;
let gateway: any;

beforeAll(async () => {
  g = await startGatewayWarden({}, ['labs', 'raw-bot']); // raw prompts are allowed for labs/raw-bot
  ({ upstream, w, token, gateway } = g);
});

afterAll(async () => {
  await g?.close();
});

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  if (path === '/v1/messages') headers['anthropic-version'] = '2023-06-01';
  const res = await fetch(`${w.addresses.http}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const user = { role: 'user', content: 'Notify the contact.' };
const tool = (name: string) => ({ type: 'function', function: { name, parameters: { type: 'object' } } });

describe('PII in a function name', () => {
  const chat: Array<[string, object]> = [
    ['tools[].function.name', { messages: [user], tools: [tool(NAME)] }],
    [
      'an assistant tool call',
      {
        messages: [
          user,
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: NAME, arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
        ],
      },
    ],
    ['tool_choice.function.name', { messages: [user], tools: [tool('notify')], tool_choice: { type: 'function', function: { name: NAME } } }],
  ];
  for (const [where, body] of chat) {
    it(`/v1/chat/completions, ${where}: 422 redaction_blocked, nothing upstream`, async () => {
      const before = upstream.calls.length;
      const res = await post('/v1/chat/completions', { model: 'gpt-4o-mini', ...body });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('redaction_blocked');
      expect(res.body.error.details).toEqual({ reason: 'pii_in_function_name', entities: ['EMAIL_ADDRESS'] });
      expect(JSON.stringify(res.body)).not.toContain('jane');
      expect(upstream.calls.length).toBe(before);
    });
  }

  it('/v1/messages, a tool and tool_choice naming it: refused alike', async () => {
    const before = upstream.calls.length;
    const res = await post('/v1/messages', {
      model: 'gpt-4o-mini',
      max_tokens: 50,
      messages: [user],
      tools: [{ name: NAME, input_schema: { type: 'object' } }],
      tool_choice: { type: 'tool', name: NAME },
    });
    expect(res.status).toBe(422);
    // Anthropic's error envelope carries the code and the message, not `details`.
    expect(res.body.error.code).toBe('redaction_blocked');
    expect(res.body.error.message).toContain('a function name holds EMAIL_ADDRESS');
    expect(JSON.stringify(res.body)).not.toContain('jane');
    expect(upstream.calls.length).toBe(before);
  });

  it('gRPC Complete, a tool and a tool call: FAILED_PRECONDITION redaction_blocked', async () => {
    const before = upstream.calls.length;
    const err = await unaryCall(
      gateway,
      'Complete',
      {
        model: 'gpt-4o-mini',
        messages: [
          user,
          { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: `notify ${JANE}`, arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
        ],
        tools: [{ type: 'function', function: { name: NAME, parameters_json: '{"type":"object"}' } }],
      },
      bearerMetadata(token),
    ).then(
      () => null,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err!.metadata.get('warden-code')[0]).toBe('redaction_blocked');
    expect(err!.details).not.toContain('jane');
    expect(upstream.calls.length).toBe(before);
  });

  it('ordinary names pass unchanged, tool_choice included', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const res = await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [user], tools: [tool('notify')], tool_choice: { type: 'function', function: { name: 'notify' } } });
    expect(res.status).toBe(200);
    const sent = upstream.calls[before]!.body as { tools: Array<{ function: { name: string } }>; tool_choice: unknown };
    expect(sent.tools[0]!.function.name).toBe('notify');
    expect(sent.tool_choice).toEqual({ type: 'function', function: { name: 'notify' } });
  });

  it('the address reaches neither the log nor the audit records', () => {
    expect(w.logs.join('\n')).not.toContain(JANE);
    expect(JSON.stringify(w.audit())).not.toContain(JANE);
  });
});
