/**
 * End to end: everything of an upstream's answer that reaches the caller goes through answer
 * redaction and the leak guard, not only the content string. The loopback upstream answers with
 * the granted secret (placed in the prompt by ops/incident-brief) and PII in content parts of
 * every kind (a refusal part, extra members of a text part, other part types) and in the
 * answer's labels (its id and model, a tool call's id and function name, finish_reason), streamed
 * and not. The caller (openai SDK, grpc-js, /v1/messages), the log and the audit record must not
 * see them; the audit record counts what was masked.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, streamMessages, unaryCall } from './helpers/grpc.js';
import { chunkBody, completionBody, oneCharChunks } from './helpers/scripted-upstream.js';
import { useScriptedWarden } from './helpers/scripted-warden.js';
import { CANARY_SECRET, FIXTURES, startWarden, type WardenFixture } from './helpers/warden.js';

const PII = 'canary.pii.7f3a@example.com';
const TEMPLATE = 'ops/incident-brief@1';
const VARIABLES = { service: 'billing-api' };

/** What the upstream answers next: a completion (not streamed) or its chunks (streamed). */
let completion: Record<string, unknown> = {};
let chunks: Array<Record<string, unknown>> = [];
const scripted = useScriptedWarden(() => completion, () => chunks, ['support', 'ticket-bot']);

const answer = completionBody;
const chunk = chunkBody;

const governed = { model: 'gpt-4o-mini', messages: [], warden: { template: TEMPLATE, variables: VARIABLES } } as any;

/** The raw body of a non-streamed call over HTTP (status, parsed body). */
async function post(stream = false): Promise<{ status: number; text: string }> {
  const res = await fetch(`${scripted.w.addresses.http}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${scripted.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...governed, stream }),
  });
  return { status: res.status, text: await res.text() };
}

function expectClean(text: string): void {
  expect(text).not.toContain(CANARY_SECRET);
  expect(text).not.toContain('SECRET-9f8e7d');
  expect(text).not.toContain(PII);
}

/** The audit record of the last call. */
function lastRecord(): Record<string, any> {
  return scripted.w.audit().at(-1)!;
}

describe('content parts of a non-streamed answer', () => {
  it('a refusal part is redacted and leak-guarded like text, over the openai SDK', async () => {
    completion = answer({ content: [{ type: 'refusal', refusal: `no ${CANARY_SECRET} for ${PII}` }] });
    const res = await scripted.client.chat.completions.create(governed);
    expect(res.choices[0]!.message.content).toEqual([{ type: 'refusal', refusal: 'no [SECRET_VALUE] for [EMAIL_ADDRESS]' }]);
    expect(lastRecord()['redaction']).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1, EMAIL_ADDRESS: 1 } });
  });

  it('a text part keeps its type and text only: annotations and other members are dropped', async () => {
    completion = answer({
      content: [
        { type: 'output_text', text: `see ${PII}`, annotations: [{ type: 'url_citation', url: `https://e/?k=${CANARY_SECRET}` }] },
        { type: 'text', text: 'ok', secret_note: CANARY_SECRET },
        { type: 'input_text', text: CANARY_SECRET, logprobs: [{ token: PII }] },
      ],
    });
    const { status, text } = await post();
    expect(status, text).toBe(200);
    expect(JSON.parse(text).choices[0].message.content).toEqual([
      { type: 'output_text', text: 'see [EMAIL_ADDRESS]' },
      { type: 'text', text: 'ok' },
      { type: 'input_text', text: '[SECRET_VALUE]' },
    ]);
    expectClean(text);
    expect(lastRecord()['redaction'].leaks).toBe(1);
  });

  it('a part of any other type (reasoning, image_url) is refused as upstream_error, quoting none of it', async () => {
    const parts = [
      { type: 'reasoning', summary: `I will sign with ${CANARY_SECRET}` },
      { type: 'image_url', image_url: { url: `https://img.example/${CANARY_SECRET}.png` } },
      { type: `x-${CANARY_SECRET}`, text: 'hi' },
    ];
    for (const part of parts) {
      completion = answer({ content: [{ type: 'text', text: 'hi' }, part] });
      const { status, text } = await post();
      expect(status, text).toBe(502);
      const err = JSON.parse(text).error;
      expect(err.code).toBe('upstream_error');
      expect(err.message).toMatch(/content part of a type other than text, input_text, output_text or refusal/);
      expectClean(text);
      expect(lastRecord()['error_code']).toBe('upstream_error');
    }
  });

  it('gRPC Complete: parts[].json carries the redacted refusal and text parts, nothing else', async () => {
    completion = answer({
      content: [
        { type: 'refusal', refusal: `no ${CANARY_SECRET}` },
        { type: 'output_text', text: 'x', annotations: [{ type: 'url_citation', url: `https://e/?k=${CANARY_SECRET}` }] },
      ],
    });
    const res = await unaryCall(scripted.gateway, 'Complete', { model: 'gpt-4o-mini', template: { id: 'ops/incident-brief', version: 1 }, variables: VARIABLES }, bearerMetadata(scripted.token));
    const parts = res.choices[0].message.parts as Array<{ type: string; json: string }>;
    expect(parts.map((p) => [p.type, JSON.parse(p.json)])).toEqual([
      ['refusal', { type: 'refusal', refusal: 'no [SECRET_VALUE]' }],
      ['output_text', { type: 'output_text', text: 'x' }],
    ]);
    expectClean(JSON.stringify(res));
  });
});

describe("the answer's annotations (web search url_citation) are dropped, not carried", () => {
  // A citation's url and title can hold the secret or PII, spaced out or not; its start and end
  // index point into the upstream's text, which redaction changes. Dropped on every route.
  const citation = (i: number) => ({
    type: 'url_citation',
    url_citation: { url: `https://e.example/?k=${CANARY_SECRET}&m=${PII}`, title: `${CANARY_SECRET.toLowerCase()} ${PII}`, start_index: i, end_index: i + 5 },
  });

  it('not streamed (openai SDK, /v1/messages, gRPC): the message carries its redacted content and no annotations', async () => {
    completion = answer({ content: `see ${PII} here`, annotations: [citation(4)] });
    const { status, text } = await post();
    expect(status, text).toBe(200);
    const message = JSON.parse(text).choices[0].message;
    expect(message.content).toBe('see [EMAIL_ADDRESS] here');
    expect(message).not.toHaveProperty('annotations');
    expectClean(text);
    expect(text.toLowerCase()).not.toContain(CANARY_SECRET.toLowerCase());
    expect(lastRecord()['redaction']).toMatchObject({ leaks: 0, response_counts: { EMAIL_ADDRESS: 1 } });

    const res = await scripted.client.chat.completions.create(governed);
    expect(res.choices[0]!.message).not.toHaveProperty('annotations');

    const headers = { authorization: `Bearer ${scripted.token}`, 'content-type': 'application/json', 'x-warden-template': TEMPLATE, 'x-warden-variables': JSON.stringify(VARIABLES) };
    const messages = await fetch(`${scripted.w.addresses.http}/v1/messages`, { method: 'POST', headers, body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [] }) });
    const body = await messages.text();
    expect(messages.status, body).toBe(200);
    expect(JSON.parse(body).content).toEqual([{ type: 'text', text: 'see [EMAIL_ADDRESS] here' }]);
    expectClean(body);

    const grpcRes = await unaryCall(scripted.gateway, 'Complete', { model: 'gpt-4o-mini', template: { id: 'ops/incident-brief', version: 1 }, variables: VARIABLES }, bearerMetadata(scripted.token));
    expect(grpcRes.choices[0].message.content).toBe('see [EMAIL_ADDRESS] here');
    expectClean(JSON.stringify(grpcRes));
  });

  it('streamed (openai SDK): a delta\'s annotations are dropped', async () => {
    chunks = [chunk({ role: 'assistant', content: `see ${PII} ` }), chunk({ content: 'here', annotations: [citation(4)] }), chunk({}, 'stop')];
    const stream = await scripted.client.chat.completions.create({ ...governed, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
    const seen: string[] = [];
    let content = '';
    for await (const c of stream) {
      seen.push(JSON.stringify(c));
      expect(c.choices[0]?.delta ?? {}).not.toHaveProperty('annotations');
      content += c.choices[0]?.delta.content ?? '';
    }
    expect(content).toBe('see [EMAIL_ADDRESS] here');
    expectClean(seen.join('\n'));
    expect(seen.join('\n').toLowerCase()).not.toContain(CANARY_SECRET.toLowerCase());
  });
});

describe('labels of the answer: id, model, tool call id and name, finish_reason', () => {
  const labelled = (): Record<string, unknown> =>
    answer(
      { content: null, tool_calls: [{ id: `call_${CANARY_SECRET}`, type: 'function', function: { name: `x${CANARY_SECRET}`, arguments: '{}' } }] },
      'tool_calls',
      { id: `chatcmpl-${CANARY_SECRET}`, model: `m-${CANARY_SECRET}` },
    );

  it('not streamed (openai SDK): a granted secret in each is masked and counted', async () => {
    completion = labelled();
    const res = await scripted.client.chat.completions.create(governed);
    expect(res.id).toBe('chatcmpl-[SECRET_VALUE]');
    expect(res.model).toBe('m-[SECRET_VALUE]');
    expect(res.choices[0]!.finish_reason).toBe('tool_calls');
    const call = res.choices[0]!.message.tool_calls![0]! as any;
    expect(call.id).toBe('call_[SECRET_VALUE]');
    expect(call.function.name).toBe('x[SECRET_VALUE]');
    expect(lastRecord()['redaction'].leaks).toBe(4);
  });

  it('streamed (openai SDK): masked in every chunk, each distinct value counted once', async () => {
    const head = { id: `chatcmpl-${CANARY_SECRET}`, model: `m-${CANARY_SECRET}` };
    chunks = [
      chunk({ role: 'assistant', tool_calls: [{ index: 0, id: `call_${CANARY_SECRET}`, type: 'function', function: { name: `x${CANARY_SECRET}`, arguments: '' } }] }, null, head),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{}' } }] }, null, head),
      chunk({}, 'tool_calls', head),
    ];
    const stream = await scripted.client.chat.completions.create({ ...governed, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
    const seen: string[] = [];
    for await (const c of stream) {
      seen.push(JSON.stringify(c));
      expect(c.id).toBe('chatcmpl-[SECRET_VALUE]');
      expect(c.model).toBe('m-[SECRET_VALUE]');
    }
    // In the chunk of the first arguments piece: a guarded stream's labels wait for it (stream-hold-oracle.test.ts).
    const labels = seen.map((s) => JSON.parse(s).choices[0]?.delta?.tool_calls?.[0]).find((t) => t?.id !== undefined);
    expect(labels).toMatchObject({ id: 'call_[SECRET_VALUE]', function: { name: 'x[SECRET_VALUE]' } });
    expectClean(seen.join('\n'));
    expect(lastRecord()['redaction'].leaks).toBe(4);
  });

  it('gRPC, not streamed and streamed: masked', async () => {
    completion = labelled();
    const req = { model: 'gpt-4o-mini', template: { id: 'ops/incident-brief', version: 1 }, variables: VARIABLES };
    const res = await unaryCall(scripted.gateway, 'Complete', req, bearerMetadata(scripted.token));
    expect(res.id).toBe('chatcmpl-[SECRET_VALUE]');
    expect(res.model).toBe('m-[SECRET_VALUE]');
    expect(res.choices[0].message.tool_calls[0]).toMatchObject({ id: 'call_[SECRET_VALUE]', function: { name: 'x[SECRET_VALUE]' } });
    expectClean(JSON.stringify(res));

    chunks = [chunk({ role: 'assistant', content: 'hi' }, null, { id: CANARY_SECRET, model: CANARY_SECRET }), chunk({}, 'stop')];
    const got = await streamMessages(scripted.gateway.StreamComplete(req, bearerMetadata(scripted.token)));
    expect(got[0].id).toBe('[SECRET_VALUE]');
    expect(got[0].model).toBe('[SECRET_VALUE]');
    expectClean(JSON.stringify(got));
  });

  it('/v1/messages, not streamed and streamed: the message id, model and tool_use name are masked', async () => {
    completion = labelled();
    const headers = { authorization: `Bearer ${scripted.token}`, 'content-type': 'application/json', 'x-warden-template': TEMPLATE, 'x-warden-variables': JSON.stringify(VARIABLES) };
    const body = { model: 'gpt-4o-mini', max_tokens: 16, messages: [] };
    const res = await fetch(`${scripted.w.addresses.http}/v1/messages`, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const msg = JSON.parse(text);
    expect(msg.id).toBe('msg_chatcmpl-[SECRET_VALUE]');
    expect(msg.model).toBe('m-[SECRET_VALUE]');
    expect(msg.content[0]).toMatchObject({ type: 'tool_use', id: 'call_[SECRET_VALUE]', name: 'x[SECRET_VALUE]' });
    expectClean(text);

    const head = { id: `chatcmpl-${CANARY_SECRET}`, model: `m-${CANARY_SECRET}` };
    chunks = [
      chunk({ role: 'assistant', tool_calls: [{ index: 0, id: `call_${CANARY_SECRET}`, type: 'function', function: { name: `x${CANARY_SECRET}`, arguments: '{}' } }] }, null, head),
      chunk({}, 'tool_calls', head),
    ];
    const streamed = await fetch(`${scripted.w.addresses.http}/v1/messages`, { method: 'POST', headers, body: JSON.stringify({ ...body, stream: true }) });
    const events = await streamed.text();
    expect(streamed.status, events).toBe(200);
    expect(events).toContain('"name":"x[SECRET_VALUE]"');
    expect(events).toContain('"model":"m-[SECRET_VALUE]"');
    expectClean(events);
  });

  it('a finish_reason that is not a short identifier is refused as upstream_error, streamed or not', async () => {
    for (const finish of [CANARY_SECRET, `stop ${PII}`, 'x'.repeat(33)]) {
      completion = answer({ content: 'hi' }, finish);
      const plain = await post();
      expect(plain.status, plain.text).toBe(502);
      expect(JSON.parse(plain.text).error.message).toMatch(/finish_reason that is not a short identifier/);
      expectClean(plain.text);

      chunks = [chunk({ role: 'assistant', content: 'hi' }), chunk({}, finish)];
      const streamed = await post(true);
      expect(streamed.status).toBe(200);
      expect(streamed.text).toMatch(/"code":"upstream_error"/);
      expect(streamed.text).not.toContain('[DONE]');
      expectClean(streamed.text);
    }
  });

  it("a compatible server's own finish_reason (TGI's eos_token) is passed on, streamed or not", async () => {
    completion = answer({ content: 'hi' }, 'eos_token');
    const plain = await post();
    expect(plain.status, plain.text).toBe(200);
    expect(JSON.parse(plain.text).choices[0].finish_reason).toBe('eos_token');

    chunks = [chunk({ role: 'assistant', content: 'hi' }), chunk({}, 'model_length')];
    const streamed = await post(true);
    expect(streamed.status).toBe(200);
    expect(streamed.text).toContain('"finish_reason":"model_length"');
    expect(streamed.text).toContain('[DONE]');
  });

  it('an id, model or tool call label over 256 characters is refused as upstream_error', async () => {
    const long = 'a'.repeat(257);
    const answers = [
      answer({ content: 'hi' }, 'stop', { id: long }),
      answer({ content: 'hi' }, 'stop', { model: long }),
      answer({ content: null, tool_calls: [{ id: long, type: 'function', function: { name: 'f', arguments: '{}' } }] }, 'tool_calls'),
      answer({ content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: long, arguments: '{}' } }] }, 'tool_calls'),
    ];
    for (const a of answers) {
      completion = a;
      const { status, text } = await post();
      expect(status, text).toBe(502);
      expect(JSON.parse(text).error.message).toMatch(/longer than 256 characters/);
    }
    completion = answer({ content: 'hi' }, 'stop', { id: 'a'.repeat(256), model: 'b'.repeat(256) });
    expect((await post()).status).toBe(200);
  });

  it('no canary in the log or any audit record', () => {
    expectClean(scripted.w.logs.join('\n'));
    expectClean(JSON.stringify(scripted.w.audit()));
  });
});

/**
 * A tool call's id and function name may arrive in pieces: the caller joins them (openai-python
 * joins both, the Anthropic encoder joins the name into its tool_use block), so the leak guard must
 * see each label whole, not each piece by itself. Every split position, two shapes: the first
 * piece with `arguments: ""` (as OpenAI sends a call's first piece) and the rest with the first
 * arguments, or the name's pieces alone before the arguments.
 */
describe('a tool call id and name streamed in pieces', () => {
  const NAME = `x${CANARY_SECRET}`;
  const ID = `call_${CANARY_SECRET}`;
  const withArgs = (k: number): Array<Record<string, unknown>> => [
    chunk({ role: 'assistant', tool_calls: [{ index: 0, id: ID.slice(0, k + 4), type: 'function', function: { name: NAME.slice(0, k), arguments: '' } }] }),
    chunk({ tool_calls: [{ index: 0, id: ID.slice(k + 4), function: { name: NAME.slice(k), arguments: '{"a":1}' } }] }),
    chunk({}, 'tool_calls'),
  ];
  const nameAlone = (k: number): Array<Record<string, unknown>> => [
    chunk({ role: 'assistant', tool_calls: [{ index: 0, id: ID.slice(0, k + 4), type: 'function', function: { name: NAME.slice(0, k) } }] }),
    chunk({ tool_calls: [{ index: 0, id: ID.slice(k + 4), function: { name: NAME.slice(k) } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":1}' } }] }),
    chunk({}, 'tool_calls'),
  ];
  const positions = Array.from({ length: NAME.length - 1 }, (_, i) => i + 1);
  const shapes = [withArgs, nameAlone];

  /** The id, name and arguments of tool call 0 as a client that joins the pieces reads them. */
  function joined(deltas: any[]): { id: string; name: string; args: string; namePieces: number } {
    const out = { id: '', name: '', args: '', namePieces: 0 };
    for (const d of deltas) {
      for (const t of d?.tool_calls ?? []) {
        out.id += t.id ?? '';
        out.name += t.function?.name ?? '';
        out.args += t.function?.arguments ?? '';
        if (t.function?.name) out.namePieces++;
      }
    }
    return out;
  }

  it('over HTTP (openai SDK): the joined id and name are masked, and the secret counted', async () => {
    for (const shape of shapes) {
      for (const k of positions) {
        chunks = shape(k);
        const stream = await scripted.client.chat.completions.create({ ...governed, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
        const seen: any[] = [];
        for await (const c of stream) seen.push(c);
        const call = joined(seen.map((c) => c.choices[0]?.delta));
        expect({ k, ...call }).toMatchObject({ k, id: 'call_[SECRET_VALUE]', name: 'x[SECRET_VALUE]', args: '{"a":1}' });
        // The name's pieces alone: held until the arguments begin, then sent whole (the openai
        // SDK keeps a name's last piece, not the joined pieces).
        if (shape === nameAlone) expect(call.namePieces, `k=${k}`).toBe(1);
        expectClean(JSON.stringify(seen));
        expect(lastRecord()['redaction'].leaks, `k=${k}`).toBe(2);
      }
    }
  });

  it('over gRPC StreamComplete: the joined id and name are masked', async () => {
    const req = { model: 'gpt-4o-mini', template: { id: 'ops/incident-brief', version: 1 }, variables: VARIABLES };
    for (const shape of shapes) {
      for (const k of positions) {
        chunks = shape(k);
        const got = await streamMessages(scripted.gateway.StreamComplete(req, bearerMetadata(scripted.token)));
        expect({ k, ...joined(got.map((c) => c.choices[0]?.delta)) }).toMatchObject({ k, id: 'call_[SECRET_VALUE]', name: 'x[SECRET_VALUE]', args: '{"a":1}' });
        expectClean(JSON.stringify(got));
        expect(lastRecord()['redaction'].leaks, `k=${k}`).toBe(2);
      }
    }
  });

  it('over /v1/messages, streamed: the tool_use block is named with the masked whole name', async () => {
    const headers = { authorization: `Bearer ${scripted.token}`, 'content-type': 'application/json', 'x-warden-template': TEMPLATE, 'x-warden-variables': JSON.stringify(VARIABLES) };
    const body = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [], stream: true });
    for (const shape of shapes) {
      for (const k of positions) {
        chunks = shape(k);
        const res = await fetch(`${scripted.w.addresses.http}/v1/messages`, { method: 'POST', headers, body });
        const events = await res.text();
        expect(res.status, events).toBe(200);
        expect(events, `k=${k}`).toContain('"name":"x[SECRET_VALUE]"');
        expect(events).toContain('"partial_json":"{\\"a\\":1}"');
        expectClean(events);
        expect(lastRecord()['redaction'].leaks, `k=${k}`).toBe(2); // the id's and the name's
      }
    }
  });

  it('no canary in the log or any audit record', () => {
    expectClean(scripted.w.logs.join('\n'));
    expectClean(JSON.stringify(scripted.w.audit()));
  });
});

/**
 * An answer's content parts (and its refusal) are joined by the caller: /v1/messages puts them
 * in one text block, and a client of the OpenAI route may join them too. A secret or an e-mail
 * address split across two of them must come out masked in the joined text, as if the upstream
 * had sent it in one piece, on every ingress.
 */
describe('a secret or an e-mail split across content parts or content and refusal', () => {
  const MAIL = 'canary.pii@example.com';
  const splits = Array.from({ length: CANARY_SECRET.length - 1 }, (_, i) => [i + 1, (i % (MAIL.length - 1)) + 1] as const);
  const parted = (h: number, p: number): Record<string, unknown> =>
    answer({
      content: [
        { type: 'text', text: `key ${CANARY_SECRET.slice(0, h)}` },
        { type: 'output_text', text: `${CANARY_SECRET.slice(h)} mail ${MAIL.slice(0, p)}` },
        { type: 'text', text: MAIL.slice(p) },
      ],
    });
  const WANT = 'key [SECRET_VALUE] mail [EMAIL_ADDRESS]';
  const partsText = (parts: Array<Record<string, unknown>>): string => parts.map((p) => p.text ?? p.refusal).join('');

  it('over /v1/chat/completions the parts are kept, and their joined text is redacted', async () => {
    for (const [h, p] of splits) {
      completion = parted(h, p);
      const { status, text } = await post();
      expect(status, text).toBe(200);
      const parts = JSON.parse(text).choices[0].message.content;
      expect(parts.map((x: any) => x.type)).toEqual(['text', 'output_text', 'text']);
      expect(partsText(parts), `h=${h} p=${p}`).toBe(WANT);
      expect(lastRecord()['redaction']).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1, EMAIL_ADDRESS: 1 } });
    }
  });

  it('over gRPC Complete the parts joined are redacted', async () => {
    for (const [h, p] of splits) {
      completion = parted(h, p);
      const res = await unaryCall(scripted.gateway, 'Complete', { model: 'gpt-4o-mini', template: { id: 'ops/incident-brief', version: 1 }, variables: VARIABLES }, bearerMetadata(scripted.token));
      // A text part is `text` on the wire, any other its JSON.
      const parts = (res.choices[0].message.parts as Array<{ type: string; text: string; json: string }>).map((x) => (x.json ? JSON.parse(x.json) : x));
      expect(parts.map((x) => x.type)).toEqual(['text', 'output_text', 'text']);
      expect(partsText(parts), `h=${h} p=${p}`).toBe(WANT);
      expectClean(partsText(parts));
    }
  });

  it('over /v1/messages the one text block is redacted, parts or content and refusal alike', async () => {
    const headers = { authorization: `Bearer ${scripted.token}`, 'content-type': 'application/json', 'x-warden-template': TEMPLATE, 'x-warden-variables': JSON.stringify(VARIABLES) };
    const body = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [] });
    for (const [h, p] of splits) {
      completion = parted(h, p);
      let res = await fetch(`${scripted.w.addresses.http}/v1/messages`, { method: 'POST', headers, body });
      let text = await res.text();
      expect(res.status, text).toBe(200);
      expect(JSON.parse(text).content[0].text, `h=${h} p=${p}`).toBe(WANT);
      expectClean(text);
      expect(lastRecord()['redaction']).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1, EMAIL_ADDRESS: 1 } });

      completion = answer({ content: `I cannot share ${CANARY_SECRET.slice(0, h)}`, refusal: `${CANARY_SECRET.slice(h)} with ${MAIL}` });
      res = await fetch(`${scripted.w.addresses.http}/v1/messages`, { method: 'POST', headers, body });
      text = await res.text();
      expect(JSON.parse(text)).toMatchObject({ content: [{ type: 'text', text: 'I cannot share [SECRET_VALUE] with [EMAIL_ADDRESS]' }], stop_reason: 'refusal' });
      expectClean(text);
    }
  });

  // Streamed, content and refusal are two fields of a delta: a value split between them (content
  // ends in its first half, refusal begins with the rest) must be masked whole, as the
  // non-streamed answer masks it, and not leave as two clear halves. The caller's joined text
  // (content, then refusal) is what is compared: a held tail may come out in the other field.
  const streamedSplit = (h: number, p: number): Array<Record<string, unknown>> => [
    chunk({ role: 'assistant', content: `mail ${MAIL.slice(0, p)}` }),
    chunk({ refusal: `${MAIL.slice(p)} no` }),
    chunk({ content: ` I cannot share ${CANARY_SECRET.slice(0, h)}` }),
    chunk({ refusal: `${CANARY_SECRET.slice(h)} now` }),
    chunk({}, 'stop'),
  ];
  /** The text the caller reads, in the order it arrived: each delta's content, then its refusal. */
  const STREAMED_WANT = 'mail [EMAIL_ADDRESS] no I cannot share [SECRET_VALUE] now';

  it('streamed over /v1/chat/completions (openai SDK): a value split between content and refusal is masked whole', async () => {
    for (const [h, p] of splits) {
      chunks = streamedSplit(h, p);
      const stream = await scripted.client.chat.completions.create({ ...governed, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
      let joined = '';
      for await (const c of stream) {
        const d = c.choices[0]?.delta as { content?: string | null; refusal?: string | null } | undefined;
        joined += `${d?.content ?? ''}${d?.refusal ?? ''}`;
      }
      expect(joined, `h=${h} p=${p}`).toBe(STREAMED_WANT);
      expect(lastRecord()['redaction']).toMatchObject({ leaks: 1, response_counts: { SECRET_VALUE: 1, EMAIL_ADDRESS: 1 } });
    }
  });

  it('streamed over gRPC StreamComplete: a value split between content and refusal is masked whole', async () => {
    for (const [h, p] of splits) {
      chunks = streamedSplit(h, p);
      const got = await streamMessages(
        scripted.gateway.StreamComplete({ model: 'gpt-4o-mini', template: { id: 'ops/incident-brief', version: 1 }, variables: VARIABLES }, bearerMetadata(scripted.token)),
      );
      const joined = got.map((c: any) => c.choices.map((x: any) => `${x.delta.content}${x.delta.refusal}`).join('')).join('');
      expect(joined, `h=${h} p=${p}`).toBe(STREAMED_WANT);
    }
  });

  it('no canary in the log or any audit record', () => {
    expectClean(scripted.w.logs.join('\n'));
    expectClean(JSON.stringify(scripted.w.audit()));
    expect(JSON.stringify(scripted.w.audit())).not.toContain(MAIL);
  });
});

/**
 * Redaction mode `tokenize` with `reidentify`: the prompt goes up with `<EMAIL_ADDRESS_1>`, and the
 * answer comes back with the caller's own address in its place. A model that answers in content
 * parts may split that placeholder across two of them; the caller joins them (/v1/messages puts
 * them in one text block), so it is restored all the same, in the part where it begins.
 */
describe('a placeholder split across content parts, restored', () => {
  const MAIL = 'jane.doe@example.com';
  const TOKEN = '<EMAIL_ADDRESS_1>';
  let tokenizing: WardenFixture;
  let raw: string;

  beforeAll(async () => {
    // The e2e policy, with the raw-prompt decision tokenising and letting the caller see the originals.
    const policy = readFileSync(join(FIXTURES, 'policies', 'e2e.rego'), 'utf8');
    const granted = '"secrets": [],\n\t"redaction": {"profile": "standard"},';
    expect(policy).toContain(granted);
    tokenizing = await startWarden({
      upstreamUrl: scripted.upstream.url,
      files: { 'policies/e2e.rego': policy.replace(granted, '"secrets": [],\n\t"redaction": {"profile": "standard", "mode": "tokenize", "reidentify": true},') },
    });
    raw = await tokenizing.signer.token('labs', 'raw-bot');
  });

  afterAll(async () => {
    await tokenizing?.close();
  });

  const ask = { model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user' as const, content: `Write to ${MAIL} please` }] };
  /** Every split of the placeholder between two text parts. */
  const splits = Array.from({ length: TOKEN.length - 1 }, (_, i) => i + 1);
  const parted = (k: number, token = TOKEN): Record<string, unknown> =>
    answer({ content: [{ type: 'text', text: `Sure: ${token.slice(0, k)}` }, { type: 'output_text', text: `${token.slice(k)} it is.` }] });

  it('over /v1/messages (Anthropic SDK) the text block holds the original', async () => {
    const anthropic = new Anthropic({ baseURL: tokenizing.addresses.http, apiKey: raw, maxRetries: 0, timeout: 15_000 });
    for (const k of splits) {
      completion = parted(k);
      const msg = await anthropic.messages.create(ask);
      expect((msg.content[0] as Anthropic.TextBlock).text, `k=${k}`).toBe(`Sure: ${MAIL} it is.`);
    }
  });

  it('over /v1/chat/completions (openai SDK) the parts are kept, the original in the part where the placeholder begins', async () => {
    const openai = new OpenAI({ baseURL: `${tokenizing.addresses.http}/v1`, apiKey: raw, maxRetries: 0, timeout: 15_000 });
    for (const k of splits) {
      completion = parted(k);
      const res = await openai.chat.completions.create({ model: ask.model, messages: ask.messages });
      const parts = res.choices[0]!.message.content as unknown as Array<{ type: string; text: string }>;
      expect(parts, `k=${k}`).toEqual([
        { type: 'text', text: `Sure: ${MAIL}` },
        { type: 'output_text', text: ' it is.' },
      ]);
    }
  });

  it('a placeholder this request did not mint is left as it is, parts and all', async () => {
    const openai = new OpenAI({ baseURL: `${tokenizing.addresses.http}/v1`, apiKey: raw, maxRetries: 0, timeout: 15_000 });
    completion = parted(8, '<EMAIL_ADDRESS_9>');
    const res = await openai.chat.completions.create({ model: ask.model, messages: ask.messages });
    expect(res.choices[0]!.message.content).toEqual([
      { type: 'text', text: 'Sure: <EMAIL_A' },
      { type: 'output_text', text: 'DDRESS_9> it is.' },
    ]);
  });

  it('a placeholder in tool-call arguments with its brackets as JSON escapes (Go re-encoded) is restored, streamed or not', async () => {
    // Go's encoding/json writes '<' and '>' as \u003c and \u003e; the app parses the placeholder.
    const args = '{"to":"\\u003cEMAIL_ADDRESS_1\\u003e","cc":"\\u003cEMAIL_ADDRESS_9\\u003e"}';
    expect(JSON.parse(args)).toEqual({ to: TOKEN, cc: '<EMAIL_ADDRESS_9>' });
    const openai = new OpenAI({ baseURL: `${tokenizing.addresses.http}/v1`, apiKey: raw, maxRetries: 0, timeout: 15_000 });
    completion = answer({ content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'send', arguments: args } }] }, 'tool_calls');
    const res = await openai.chat.completions.create({ model: ask.model, messages: ask.messages });
    const call = res.choices[0]!.message.tool_calls![0]! as { function: { arguments: string } };
    // The request's own token is restored; one it never minted stays as the upstream wrote it.
    expect(JSON.parse(call.function.arguments)).toEqual({ to: MAIL, cc: '<EMAIL_ADDRESS_9>' });
    chunks = oneCharChunks(args, true, 'send');
    const stream = await openai.chat.completions.create({ model: ask.model, messages: ask.messages, stream: true });
    let streamed = '';
    for await (const c of stream) streamed += c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
    expect(JSON.parse(streamed)).toEqual({ to: MAIL, cc: '<EMAIL_ADDRESS_9>' });
  });

  it('a placeholder the caller hid with a zero-width space or tag characters is never minted for the address', async () => {
    const openai = new OpenAI({ baseURL: `${tokenizing.addresses.http}/v1`, apiKey: raw, maxRetries: 0, timeout: 15_000 });
    const tags = [...TOKEN].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
    for (const hidden of ['<EMAIL\u200B_ADDRESS_1>', tags]) {
      // The model reads the hidden text as <EMAIL_ADDRESS_1> and writes it back plainly.
      completion = answer({ content: 'It says <EMAIL_ADDRESS_1>; yours is <EMAIL_ADDRESS_2>.' });
      const res = await openai.chat.completions.create({ model: ask.model, messages: [{ role: 'user', content: `What does ${hidden} say? Write to ${MAIL}` }] });
      expect(res.choices[0]!.message.content, JSON.stringify(hidden)).toBe(`It says <EMAIL_ADDRESS_1>; yours is ${MAIL}.`);
    }
  });

  it('the audit records hold no original', () => {
    expect(JSON.stringify(tokenizing.audit())).not.toContain(MAIL);
  });
});
