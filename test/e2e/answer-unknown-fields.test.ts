/**
 * End to end: what of an upstream's answer Warden does not redact never reaches the caller, the
 * log or the audit record. The loopback upstream puts the granted secret and PII in every member
 * of OpenAI's documented answer that Warden does not carry (a legacy `function_call`,
 * `audio.transcript`, `logprobs.content[].token`/`bytes`/`top_logprobs`, `annotations`,
 * `system_fingerprint`, `usage` details) and in the members compatible servers add for reasoning
 * (DeepSeek's and LiteLLM's `reasoning_content`, `thinking_blocks`, OpenRouter's `reasoning`),
 * streamed and not, and in its response headers; and it answers errors (4xx, 5xx, an error event
 * mid-stream, a body that is not JSON) whose message quotes the prompt. README: "Other fields an
 * upstream may add ... are dropped", "with the HTTP status, never the upstream's body".
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient, streamOutcome, unaryCall } from './helpers/grpc.js';
import { CANARY_SECRET, startWarden, type WardenFixture } from './helpers/warden.js';

const PII = 'canary.pii.7f3a@example.com';
const HEADER_CANARY = 'hdr-canary-5e6f';
const TEMPLATE = 'ops/incident-brief';
const VARIABLES = { service: 'billing-api' };

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}
/** What the upstream answers next, from the request body it received. */
let reply: (body: { stream?: boolean; messages: unknown }) => Reply;
let server: Server;
let w: WardenFixture;
let token: string;
let gateway: any;

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString('utf8')));
    req.on('end', () => {
      const r = reply(JSON.parse(text));
      res.writeHead(r.status, r.headers);
      res.end(r.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  w = await startWarden({ upstreamUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` });
  token = await w.signer.token('support', 'ticket-bot');
  gateway = gatewayClient(w.addresses.grpc);
});

afterAll(async () => {
  gateway?.close();
  await w?.close();
  await new Promise<void>((r) => server.close(() => r()));
});

function expectClean(text: string): void {
  expect(text).not.toContain(CANARY_SECRET);
  expect(text).not.toContain('SECRET-9f8e7d');
  expect(text).not.toContain(PII);
  expect(text).not.toContain(HEADER_CANARY);
  // The upstream's error messages quote the prompt, which holds the placed secret.
  expect(text).not.toContain('Sign it with');
}

const headers = { 'x-request-id': HEADER_CANARY, 'openai-organization': HEADER_CANARY, 'x-debug': `${CANARY_SECRET} ${PII}` };
const json = (o: unknown, status = 200): Reply => ({ status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(o) });
const sse = (events: unknown[]): Reply => ({
  status: 200,
  headers: { 'content-type': 'text/event-stream', ...headers },
  body: `${events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`,
});

const base = { id: 'chatcmpl-1', created: 1_700_000_000, model: 'gpt-4o-mini', system_fingerprint: CANARY_SECRET, service_tier: PII };
const logprobs = {
  content: [{ token: CANARY_SECRET, logprob: -0.1, bytes: [...Buffer.from(CANARY_SECRET)], top_logprobs: [{ token: PII, logprob: -1, bytes: [...Buffer.from(PII)] }] }],
  refusal: null,
};
/** Members of a message or delta that hold model text Warden does not carry. */
const uncarried = {
  function_call: { name: 'lookup', arguments: `{"code":"${CANARY_SECRET}"}` },
  audio: { id: 'audio_1', data: Buffer.from(CANARY_SECRET).toString('base64'), transcript: `${CANARY_SECRET} ${PII}`, expires_at: 1 },
  annotations: [{ type: 'url_citation', url_citation: { url: `https://e.example/?k=${CANARY_SECRET}`, title: PII, start_index: 0, end_index: 2 } }],
  reasoning_content: `the code is ${CANARY_SECRET}`,
  reasoning: `mail ${PII}`,
  thinking_blocks: [{ type: 'thinking', thinking: CANARY_SECRET, signature: PII }],
};
const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, completion_tokens_details: { note: CANARY_SECRET } };

/** The same call on every route, streamed or not: each caller's raw view (status, headers, body). */
async function everyRoute(stream: boolean): Promise<Record<string, string>> {
  const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const warden = { template: TEMPLATE, variables: VARIABLES };
  const out: Record<string, string> = {};
  const openai = await fetch(`${w.addresses.http}/v1/chat/completions`, {
    method: 'POST',
    headers: h,
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [], stream, stream_options: stream ? { include_usage: true } : undefined, warden }),
  });
  out['openai'] = `${openai.status} ${JSON.stringify([...openai.headers])} ${await openai.text()}`;
  const anthropic = await fetch(`${w.addresses.http}/v1/messages`, { method: 'POST', headers: h, body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 64, messages: [], stream, warden }) });
  out['anthropic'] = `${anthropic.status} ${JSON.stringify([...anthropic.headers])} ${await anthropic.text()}`;
  const req = { model: 'gpt-4o-mini', template: { id: TEMPLATE, version: 1 }, variables: VARIABLES };
  const metadata = (m: any): string => JSON.stringify(m?.toJSON?.() ?? {});
  if (!stream) {
    out['grpc'] = await unaryCall(gateway, 'Complete', req, bearerMetadata(token)).then(
      (r) => `ok ${JSON.stringify(r)}`,
      (e) => `error ${e.code} ${e.details} ${metadata(e.metadata)}`,
    );
  } else {
    const { got, err } = await streamOutcome(gateway.StreamComplete(req, bearerMetadata(token)));
    out['grpc'] = err === undefined ? `ok ${JSON.stringify(got)}` : `error ${JSON.stringify(got)} ${err.code} ${err.details} ${metadata(err.metadata)}`;
  }
  return out;
}

describe("members of the answer Warden does not carry", () => {
  it('not streamed: dropped on every route, the answer passed on with its content', async () => {
    reply = () =>
      json({
        ...base,
        object: 'chat.completion',
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: { note: CANARY_SECRET } }],
        choices: [{ index: 0, logprobs, content_filter_results: { note: PII }, message: { role: 'assistant', content: 'all good', refusal: null, ...uncarried }, finish_reason: 'stop' }],
        usage,
      });
    const out = await everyRoute(false);
    for (const [route, text] of Object.entries(out)) {
      expect(text, route).toContain('all good');
      expectClean(text);
    }
    expect(JSON.parse(out['openai']!.slice(out['openai']!.indexOf('{'))).choices[0]).toEqual({
      index: 0,
      message: { role: 'assistant', content: 'all good' },
      logprobs: null,
      finish_reason: 'stop',
    });
  });

  it('streamed: dropped from every chunk on every route', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs, finish_reason: finish }] });
    reply = () =>
      sse([
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: 'all ', ...uncarried }),
        chunk({ content: 'good', reasoning_content: CANARY_SECRET }),
        chunk({}, 'stop'),
        { ...base, object: 'chat.completion.chunk', choices: [], usage },
      ]);
    const out = await everyRoute(true);
    for (const [route, text] of Object.entries(out)) {
      expect(text, route).toMatch(/^(200|ok) /);
      expectClean(text);
    }
    // The answer's text whole, however the chunks cut it (this fixture's template guards a secret,
    // so the leak guard's window joins 'all ' to what follows).
    const deltas = [...out['openai']!.matchAll(/"content":"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join('');
    expect(deltas).toBe('all good');
    expect(out['openai']).toContain('"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}');
  });
});

describe('upstream errors whose message quotes the prompt', () => {
  const quoting = (body: { messages: unknown }) => ({ error: { message: `bad request: ${JSON.stringify(body.messages)}`, type: 'invalid_request_error', param: CANARY_SECRET, code: PII } });

  for (const status of [400, 401, 404, 422, 429, 500, 503]) {
    it(`HTTP ${status}, streamed and not: the callers get Warden's own error, nothing of the body`, async () => {
      reply = (body) => json(quoting(body), status);
      for (const stream of [false, true]) {
        const out = await everyRoute(stream);
        for (const [route, text] of Object.entries(out)) {
          expect(text, route).toMatch(/upstream_(error|rejected|rate_limited)/);
          expectClean(text);
        }
      }
    });
  }

  it('an error event mid-stream, or an event or body that is not JSON: upstream_error naming none of it', async () => {
    const first = { ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: 'hi' }, finish_reason: null }] };
    const replies: Array<(body: { stream?: boolean; messages: unknown }) => Reply> = [
      (body) => (body.stream ? sse([first, quoting(body)]) : json(quoting(body), 200)),
      (body) => (body.stream ? sse([first, `not json ${JSON.stringify(body.messages)}`]) : { status: 200, headers: { 'content-type': 'application/json' }, body: `not json ${JSON.stringify(body.messages)}` }),
      (body) => ({ status: 200, headers: { 'content-type': 'text/html' }, body: `<p>${JSON.stringify(body.messages)}</p>` }),
    ];
    for (const r of replies) {
      reply = r;
      for (const stream of [false, true]) {
        const out = await everyRoute(stream);
        for (const [route, text] of Object.entries(out)) {
          expect(text, route).toContain('upstream_error');
          expectClean(text);
        }
      }
    }
  });

  it('the SDKs raise their error classes with Warden\'s message only', async () => {
    reply = (body) => json(quoting(body), 400);
    const openai = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: token, maxRetries: 0 });
    const e1 = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [], warden: { template: TEMPLATE, variables: VARIABLES } } as any).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(OpenAI.BadRequestError);
    expectClean(`${(e1 as Error).message} ${JSON.stringify((e1 as any).error)}`);
    const anthropic = new Anthropic({ baseURL: w.addresses.http, apiKey: token, maxRetries: 0 });
    const e2 = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: [], warden: { template: TEMPLATE, variables: VARIABLES } } as any).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(Anthropic.BadRequestError);
    expectClean(`${(e2 as Error).message} ${JSON.stringify((e2 as any).error)}`);
  });
});

describe('the log and the audit records', () => {
  it('hold none of it, and the failed calls are audited by code', () => {
    expectClean(w.logs.join('\n'));
    const records = w.audit();
    expectClean(JSON.stringify(records));
    expect(records.some((r) => r['error_code'] === 'upstream_rejected')).toBe(true);
    expect(records.some((r) => r['error_code'] === 'upstream_error')).toBe(true);
  });
});
