/**
 * End to end: what Warden does with an OpenAI-compatible upstream's wire (a loopback server that
 * writes exactly the bytes each test scripts), and with request parameters that ask for answer
 * parts Warden does not carry back, as the official openai client and grpc-js see it.
 *   - a stream that ends without `[DONE]` is whole only when every choice it began reached its
 *     finish_reason: with `n` > 1, one finished choice does not make a cut one whole;
 *   - a `data: [DONE]` the upstream did not terminate (no blank line, no line end) still ends
 *     the stream: it is the end marker, not a cut event;
 *   - Warden asks for `accept-encoding: identity`; a body content-coded anyway (gzip) is
 *     `upstream_error` saying so, not "a body that is not JSON";
 *   - a JSON number in a pass-through parameter or a tool schema leaves the pod as its decimal
 *     text, so it is redacted as a string is (a card number as `user` goes as "[CREDIT_CARD]");
 *   - `logprobs`, `top_logprobs`, `audio`, `modalities` other than text, and legacy `functions` /
 *     `function_call` are refused naming the parameter, before anything goes upstream, on HTTP
 *     and gRPC: their answers would come back with that part silently missing;
 *   - `stream_options` goes upstream with the members OpenAI documents (`include_usage`, always
 *     true for the audit, and the caller's `include_obfuscation`); any other member, or a value
 *     that is not a boolean, is refused naming it, rather than dropped without a word.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient, streamOutcome, unaryCall } from './helpers/grpc.js';
import { CARD_LEAK, SSN_LEAK } from './helpers/canaries.js';
import { anthropicEvents } from './helpers/http.js';
import { CANARY_API_KEY, CANARY_SECRET, eventually, startWarden, type WardenFixture } from './helpers/warden.js';

/** What the upstream does with the next call (its parsed body in hand). */
let answer: (body: any, res: ServerResponse) => void = (_b, res) => res.end();
const received: any[] = [];
/** The request headers of each call, in order. */
const receivedHeaders: Array<IncomingMessage['headers']> = [];
let server: Server;
let w: WardenFixture;
let token: string;
let client: OpenAI;
let gateway: any;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(text);
      received.push(body);
      receivedHeaders.push(req.headers);
      answer(body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  w = await startWarden({ upstreamUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` });
  token = await w.signer.token('labs', 'raw-bot'); // raw prompts are allowed for labs/raw-bot
  client = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: token, maxRetries: 0, timeout: 15_000 });
  gateway = gatewayClient(w.addresses.grpc);
});

afterAll(async () => {
  gateway?.close();
  await w?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };

/** One SSE event of choice `index`. */
function event(index: number, delta: object, finish: string | null = null): string {
  return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index, delta, finish_reason: finish }] })}\n\n`;
}

/** The upstream streams `text` and ends the body there (no `[DONE]` unless `text` has it). */
function streams(text: string): void {
  answer = (_b, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(text);
  };
}

/** The text of each choice the SDK's stream gave, and what it threw (if anything). */
async function read(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>): Promise<{ texts: string[]; finishes: Array<string | null>; error?: any }> {
  const texts = ['', ''];
  const finishes: Array<string | null> = [null, null];
  try {
    for await (const c of stream) {
      for (const ch of c.choices) {
        texts[ch.index] += ch.delta.content ?? '';
        if (ch.finish_reason) finishes[ch.index] = ch.finish_reason;
      }
    }
  } catch (error) {
    return { texts, finishes, error };
  }
  return { texts, finishes };
}

describe('a stream that ends without [DONE]', () => {
  it('with n: 2, one choice finished and the other cut: upstream_error, audited so, not a whole answer', async () => {
    streams(event(0, { role: 'assistant', content: 'Alpha' }) + event(1, { role: 'assistant', content: 'Beta was cut in the mid' }) + event(0, {}, 'stop'));
    const audited = w.audit().length;
    const got = await read(await client.chat.completions.create({ ...ask, n: 2, stream: true }));
    expect(got.error, JSON.stringify(got)).toBeInstanceOf(OpenAI.APIError);
    expect(got.error.message).toMatch(/stream that ended early/);
    expect(got.finishes[1]).toBeNull();
    await eventually(() => w.audit().length > audited);
    expect(w.audit().at(-1)).toMatchObject({ status: 'error', error_code: 'upstream_error', stream: true });
  });

  it('with n: 2, one choice finished and the other never begun: upstream_error too (cut before its first chunk)', async () => {
    streams(event(0, { role: 'assistant', content: 'Alpha' }) + event(0, {}, 'stop'));
    const audited = w.audit().length;
    const got = await read(await client.chat.completions.create({ ...ask, n: 2, stream: true }));
    expect(got.error, JSON.stringify(got)).toBeInstanceOf(OpenAI.APIError);
    expect(got.error.message).toMatch(/stream that ended early/);
    await eventually(() => w.audit().length > audited);
    expect(w.audit().at(-1)).toMatchObject({ status: 'error', error_code: 'upstream_error', stream: true });
  });

  it('with n: 2, every choice finished: whole, as with one choice', async () => {
    streams(event(0, { role: 'assistant', content: 'Alpha' }) + event(1, { role: 'assistant', content: 'Beta' }) + event(1, {}, 'stop') + event(0, {}, 'length'));
    const got = await read(await client.chat.completions.create({ ...ask, n: 2, stream: true }));
    expect(got.error).toBeUndefined();
    expect(got).toMatchObject({ texts: ['Alpha', 'Beta'], finishes: ['length', 'stop'] });
    streams(event(0, { role: 'assistant', content: 'One' }) + event(0, {}, 'stop'));
    expect(await read(await client.chat.completions.create({ ...ask, stream: true }))).toMatchObject({ texts: ['One', ''], finishes: ['stop', null] });
    await eventually(() => w.audit().at(-1)?.status === 'ok');
  });
});

describe('a stream that ends on a [DONE] it did not terminate', () => {
  const finished = event(0, { role: 'assistant', content: 'Done here' }, 'stop');
  for (const [name, tail] of [
    ['one line end, no blank line', 'data: [DONE]\n'],
    ['no line end at all', 'data: [DONE]'],
    ['no space after the colon, CR', 'data:[DONE]\r'],
  ] as const) {
    it(`${name}: the end marker, so the answer is whole (as [DONE] is)`, async () => {
      streams(finished + tail);
      const audited = w.audit().length;
      expect(await read(await client.chat.completions.create({ ...ask, stream: true }))).toEqual({ texts: ['Done here', ''], finishes: ['stop', null] });
      await eventually(() => w.audit().length > audited);
      expect(w.audit().at(-1)).toMatchObject({ status: 'ok', stream: true });
    });
  }

  it('alone it is no answer, and an event cut mid-line is still a stream that ended early', async () => {
    streams('data: [DONE]');
    const alone = await client.chat.completions.create({ ...ask, stream: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((alone as any)?.status).toBe(502);
    expect((alone as any).message).toMatch(/a stream with no answer/);
    streams(`${finished}data: {"id":"c1","choices":`);
    const cut = await read(await client.chat.completions.create({ ...ask, stream: true }));
    expect(cut.error?.message).toMatch(/stream that ended early/);
    streams(`${finished}data: [DONE]x`);
    const other = await read(await client.chat.completions.create({ ...ask, stream: true }));
    expect(other.error?.message).toMatch(/stream that ended early/);
  });
});

describe('a stream event larger than the limit (1 MiB)', () => {
  it('is upstream_error saying so, before the first chunk and after it, audited so', async () => {
    const huge = 'x'.repeat(1024 * 1024 + 1);
    streams(`data: ${huge}`);
    const audited = w.audit().length;
    const before = await client.chat.completions.create({ ...ask, stream: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((before as any)?.status).toBe(502);
    expect((before as any).message).toMatch(/returned a stream event larger than the limit/);
    // After the first chunk (the stream has begun: an error event), on a comment line, which is
    // read (and bounded) as any other line.
    streams(`${event(0, { role: 'assistant', content: 'Hello' })}:${huge}`);
    const after = await read(await client.chat.completions.create({ ...ask, stream: true }));
    expect(after.error?.message).toMatch(/returned a stream event larger than the limit/);
    await eventually(() => w.audit().length >= audited + 2);
    expect(w.audit().slice(audited).map((r) => r.error_code)).toEqual(['upstream_error', 'upstream_error']);
  });
});

describe('content coding', () => {
  it('Warden asks for identity; a gzip body anyway is upstream_error naming the coding, streamed or not, audited so', async () => {
    const completion = { id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'zipped' }, finish_reason: 'stop' }] };
    const sockets: Socket[] = [];
    answer = (body, res) => {
      sockets.push(res.socket!);
      res.writeHead(200, { 'content-type': body.stream ? 'text/event-stream' : 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(body.stream ? `${event(0, { role: 'assistant', content: 'zipped' }, 'stop')}data: [DONE]\n\n` : JSON.stringify(completion)));
    };
    const audited = w.audit().length;
    const err = await client.chat.completions.create(ask).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as any).status).toBe(502);
    expect((err as any).error).toMatchObject({ code: 'upstream_error' });
    expect((err as any).message).toMatch(/encoded as gzip, though Warden asks for identity/);
    expect(receivedHeaders.at(-1)!['accept-encoding']).toBe('identity');
    const streamed = await client.chat.completions.create({ ...ask, stream: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((streamed as any)?.status).toBe(502);
    expect((streamed as any).message).toMatch(/encoded as gzip/);
    expect(receivedHeaders.at(-1)!['accept-encoding']).toBe('identity');
    await eventually(() => w.audit().length >= audited + 2);
    expect(w.audit().slice(audited).map((r) => r.error_code)).toEqual(['upstream_error', 'upstream_error']);
    // The small encoded bodies were read to their end, not cut: both keep-alive connections are
    // still open after another round trip (an aborted one is closed by then).
    answer = (_b, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ...completion, choices: [{ index: 0, message: { role: 'assistant', content: 'plain' }, finish_reason: 'stop' }] }));
    };
    await client.chat.completions.create(ask);
    expect(sockets.map((s) => s.destroyed)).toEqual([false, false]);
  });
});

describe('a byte order mark', () => {
  // RFC 8259 §8.1 lets a parser ignore one, and the openai SDK does (fetch's json() decodes the
  // body as UTF-8, which drops it): an upstream (or a proxy in front of it) that writes one has
  // its answers read by an app calling it directly. It is no part of the answer's text.
  it('before a JSON answer is skipped, as the openai SDK skips it; before a stream too', async () => {
    const completion = { id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'marked' }, finish_reason: 'stop' }] };
    answer = (body, res) => {
      res.writeHead(200, { 'content-type': body.stream ? 'text/event-stream' : 'application/json; charset=utf-8' });
      res.end(`\ufeff${body.stream ? `${event(0, { role: 'assistant', content: 'marked' }, 'stop')}data: [DONE]\n\n` : JSON.stringify(completion)}`);
    };
    const audited = w.audit().length;
    const answered = await client.chat.completions.create(ask);
    expect(answered.choices[0]!.message.content).toBe('marked');
    const streamed = await read(await client.chat.completions.create({ ...ask, stream: true }));
    expect(streamed).toEqual({ texts: ['marked', ''], finishes: ['stop', null] });
    await eventually(() => w.audit().length >= audited + 2);
    expect(w.audit().slice(audited).map((r) => r.status)).toEqual(['ok', 'ok']);
  });
});

describe('an error event that also has the members of a chunk', () => {
  // OpenRouter's documented report of a generation that fails mid-stream: a chunk with an `error`
  // beside a choice that finishes with "error". OpenAI's SDKs throw on any event whose `error` is
  // set, so an app calling OpenRouter itself is told; through Warden it must be told too.
  const failed = `data: ${JSON.stringify({
    id: 'gen-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-4o-mini',
    provider: 'openai',
    error: { code: 'server_error', message: 'Provider disconnected unexpectedly' },
    choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
  })}\n\n`;

  it('is upstream_error for the openai SDK (not finish_reason "error"), audited so', async () => {
    streams(`${event(0, { role: 'assistant', content: 'Hello there, ' })}${failed}data: [DONE]\n\n`);
    const audited = w.audit().length;
    const got = await read(await client.chat.completions.create({ ...ask, stream: true }));
    expect(got.error, JSON.stringify(got)).toBeInstanceOf(OpenAI.APIError);
    expect(got.error.message).toMatch(/an error in the stream/);
    expect(got.finishes[0]).toBeNull();
    await eventually(() => w.audit().length > audited);
    expect(w.audit().at(-1)).toMatchObject({ status: 'error', error_code: 'upstream_error', stream: true });
  });

  it('is upstream_error on /v1/messages too, and an `error: null` member is no error', async () => {
    streams(`${event(0, { role: 'assistant', content: 'Hello there, ' })}${failed}`);
    const res = await fetch(`${w.addresses.http}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask, max_tokens: 64, stream: true }),
    });
    const events = anthropicEvents(await res.text());
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { error: { code: 'upstream_error' } } });
    const quiet = (index: number, delta: object, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', error: null, choices: [{ index, delta, finish_reason: finish }] })}\n\n`;
    streams(`${quiet(0, { role: 'assistant', content: 'All ' })}${quiet(0, { content: 'good' }, 'stop')}data: [DONE]\n\n`);
    const got = await read(await client.chat.completions.create({ ...ask, stream: true }));
    expect(got.error).toBeUndefined();
    expect(got).toMatchObject({ texts: ['All good', ''], finishes: ['stop', null] });
  });
});

describe("Azure OpenAI's asynchronous content filter", () => {
  // With the asynchronous filter on, Azure streams an annotation for each stretch of the answer it
  // checked, after that stretch: a choice with content_filter_results and offsets and no delta, in
  // a chunk with id "", model "" and created 0 (as its first chunk, prompt_filter_results with no
  // choices, has). It carries nothing of the answer.
  const verdict = { hate: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' } };
  const annotation = (end: number) =>
    `data: ${JSON.stringify({ choices: [{ content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: end }, content_filter_results: verdict, finish_reason: null, index: 0 }], created: 0, id: '', model: '', object: '' })}\n\n`;
  const azure = (delta: object, finish: string | null = null) =>
    `data: ${JSON.stringify({ choices: [{ content_filter_results: {}, delta, finish_reason: finish, index: 0, logprobs: null }], created: 1_700_000_000, id: 'chatcmpl-az', model: 'gpt-4o-2024-08-06', object: 'chat.completion.chunk', system_fingerprint: 'fp_az' })}\n\n`;
  const body =
    `data: ${JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: verdict }] })}\n\n` +
    azure({ role: 'assistant', content: '' }) +
    azure({ content: 'Write to jane.doe@example.com' }) +
    annotation(29) +
    azure({ content: ' today.' }) +
    azure({}, 'stop') +
    annotation(36) +
    `data: ${JSON.stringify({ choices: [{ delta: null, finish_reason: null, index: 0 }], created: 0, id: '', model: '', object: '' })}\n\n` +
    'data: [DONE]\n\n';

  it('its annotations (a choice without a delta) are nothing of the answer: the stream is whole, redacted, audited ok (openai SDK)', async () => {
    streams(body);
    const audited = w.audit().length;
    const got = await read(await client.chat.completions.create({ ...ask, stream: true }));
    expect(got.error).toBeUndefined();
    expect(got.texts[0]).toBe('Write to [EMAIL_ADDRESS] today.');
    expect(got.finishes[0]).toBe('stop');
    await eventually(() => w.audit().length > audited);
    expect(w.audit().at(-1)).toMatchObject({ status: 'ok', error_code: null, stream: true, redaction: { response_counts: { EMAIL_ADDRESS: 1 } } });
  });

  it('over /v1/messages: one text block and message_stop; the message keeps the answer\'s id and model, not the annotations\' empty ones', async () => {
    streams(body);
    const res = await fetch(`${w.addresses.http}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask, max_tokens: 64, stream: true }),
    });
    const events = anthropicEvents(await res.text());
    const names = events.map((e) => e.event);
    expect(names[0]).toBe('message_start');
    expect(names.filter((n) => n === 'content_block_start')).toHaveLength(1);
    expect(names.filter((n) => n !== 'content_block_delta').slice(1)).toEqual(['content_block_start', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('')).toBe('Write to [EMAIL_ADDRESS] today.');
    expect(events[0]!.data.message).toMatchObject({ id: 'msg_chatcmpl-az', model: 'gpt-4o-2024-08-06' });
    expect(events.at(-2)!.data.delta.stop_reason).toBe('end_turn');
  });
});

describe('an upstream that refuses Warden\'s credentials (401, 403)', () => {
  // The caller is told upstream_error with the status: it cannot fix Warden's key, and the audit
  // record has no status. Without a log line the operator learnt of a revoked or rotated key from
  // the apps' error reports.
  it('is logged for the operator (a warning naming the provider, the status and the key setting), never the key or the upstream body', async () => {
    answer = (body, res) => {
      res.writeHead(body.stream ? 403 : 401, { 'content-type': 'application/json', 'www-authenticate': `Bearer realm="${CANARY_API_KEY}"` });
      res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${CANARY_API_KEY}` } }));
    };
    const before = w.logs.length;
    const err = await client.chat.completions.create(ask).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as any)?.status).toBe(502);
    expect((err as any).error).toMatchObject({ code: 'upstream_error', details: { status: 401 } });
    const streamed = await client.chat.completions.create({ ...ask, stream: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((streamed as any)?.status).toBe(502);
    const lines = w.logs.slice(before).map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l.msg?.includes('refused'));
    expect(lines.map((l) => [l.level, l.provider, l.status, l.config_key])).toEqual([
      ['warn', 'upstream', 401, 'providers.upstream.api_key'],
      ['warn', 'upstream', 403, 'providers.upstream.api_key'],
    ]);
    expect(lines[0]!.msg).toBe("provider upstream answered HTTP 401: it refused Warden's API key (providers.upstream.api_key) or its access to the model; calls fail with upstream_error");
    expect(w.logs.join('\n')).not.toContain(CANARY_API_KEY);
    expect(JSON.stringify(w.audit())).not.toContain(CANARY_API_KEY);
  });
});

describe("what the upstream writes in the headers an error names", () => {
  // The ticket bot's templated call: the decision grants the escalation code, which goes upstream
  // in the prompt. An upstream (or a proxy in front of it) that writes it, or PII, into the
  // content type or coding of its answer must not reach the app through the error's message.
  const governed = { model: 'gpt-4o-mini', messages: [], warden: { template: 'ops/incident-brief@1', variables: { service: 'db' } } };
  const echoes = [CANARY_SECRET, CANARY_SECRET.toLowerCase(), '536-22-1234', '4111111111111111'];

  /** What the app is told for a streamed call on each HTTP route, and for a non-streamed one. */
  async function told(bot: string): Promise<string[]> {
    const out: string[] = [];
    for (const [path, body] of [
      ['/v1/chat/completions', { ...governed, stream: true }],
      ['/v1/chat/completions', governed],
      ['/v1/messages', { ...governed, max_tokens: 64, stream: true }],
    ] as const) {
      const res = await fetch(`${w.addresses.http}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bot}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      expect(res.status, text).toBe(502);
      out.push(text);
    }
    return out;
  }

  function expectClean(texts: string[]): void {
    for (const text of texts) {
      expect(text.toLowerCase()).not.toContain(CANARY_SECRET.toLowerCase());
      expect(text).not.toMatch(SSN_LEAK);
      expect(text).not.toMatch(CARD_LEAK);
    }
  }

  it('a content type shaped like type/subtype is named only when it is a known one', async () => {
    const bot = await w.signer.token('support', 'ticket-bot');
    for (const echo of echoes) {
      answer = (_b, res) => {
        res.writeHead(200, { 'content-type': `text/${echo}` });
        res.end('{}');
      };
      const texts = await told(bot);
      expectClean(texts);
      expect(texts[0]).toMatch(/returned content type \(an unusual one\) instead of an event stream/);
    }
    answer = (_b, res) => {
      res.writeHead(200, { 'content-type': 'Text/HTML; charset=utf-8' });
      res.end('<html>login</html>');
    };
    expect((await told(bot))[0]).toMatch(/returned content type text\/html instead of an event stream/);
  });

  it('a content coding is named only when it is a known one', async () => {
    const bot = await w.signer.token('support', 'ticket-bot');
    for (const echo of echoes) {
      answer = (body, res) => {
        res.writeHead(200, { 'content-type': body.stream ? 'text/event-stream' : 'application/json', 'content-encoding': echo });
        res.end('x');
      };
      const texts = await told(bot);
      expectClean(texts);
      for (const text of texts) expect(text).toMatch(/encoded as an unusual coding, though Warden asks for identity/);
    }
    answer = (body, res) => {
      res.writeHead(200, { 'content-type': body.stream ? 'text/event-stream' : 'application/json', 'content-encoding': 'gzip, BR' });
      res.end('x');
    };
    for (const text of await told(bot)) expect(text).toMatch(/encoded as gzip, br, though/);
  });
});

describe('numbers in parameters and tool schemas', () => {
  const CARD = 4111111111111111; // a Luhn-valid test card number, exact as a double

  it('a number holding PII goes upstream as its redaction, counted; other numbers unchanged; on HTTP and gRPC', async () => {
    answer = (_b, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }));
    };
    const audited = w.audit().length;
    const tools = [{ type: 'function' as const, function: { name: 'charge', parameters: { type: 'object', properties: { card: { type: 'integer', default: CARD, minimum: 0 } } } } }];
    const params = { user: CARD, metadata: { card: CARD }, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'integer', enum: [CARD, 7] } } }, temperature: 0.5, seed: 12345 };
    await client.chat.completions.create({ ...ask, ...params, tools } as any);
    const sent = received.at(-1);
    expect(JSON.stringify(sent)).not.toContain(String(CARD));
    expect(sent).toMatchObject({
      user: '[CREDIT_CARD]',
      metadata: { card: '[CREDIT_CARD]' },
      response_format: { json_schema: { schema: { enum: ['[CREDIT_CARD]', 7] } } },
      temperature: 0.5,
      seed: 12345,
      tools: [{ function: { parameters: { properties: { card: { default: '[CREDIT_CARD]', minimum: 0 } } } } }],
    });
    await eventually(() => w.audit().length > audited);
    expect(w.audit().at(-1)!.redaction.counts).toEqual({ CREDIT_CARD: 4 });

    await unaryCall(gateway, 'Complete', { ...ask, params_json: JSON.stringify({ user: CARD, seed: 12345 }) }, bearerMetadata(token));
    expect(received.at(-1)).toMatchObject({ user: '[CREDIT_CARD]', seed: 12345 });
  });
});

describe('parameters asking for answer parts Warden does not carry back', () => {
  const refused: Array<[string, Record<string, unknown>]> = [
    ['logprobs', { logprobs: true }],
    ['top_logprobs', { top_logprobs: 3 }],
    ['audio', { audio: { voice: 'alloy', format: 'wav' } }],
    ['modalities', { modalities: ['text', 'audio'] }],
    ['functions', { functions: [{ name: 'get_weather', parameters: { type: 'object', properties: {} } }] }],
    ['function_call', { function_call: 'auto' }],
  ];
  for (const [param, extra] of refused) {
    it(`${param}: invalid_request naming it, on HTTP and gRPC; nothing goes upstream, audited`, async () => {
      const calls = received.length;
      const audited = w.audit().length;
      const err = await client.chat.completions.create({ ...ask, ...extra } as any).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as any).error).toMatchObject({ code: 'invalid_request', param });
      expect((err as any).message).toMatch(/Warden does not pass on/);
      const g: any = await unaryCall(gateway, 'Complete', { ...ask, params_json: JSON.stringify(extra) }, bearerMetadata(token)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(g?.code).toBe(3); // INVALID_ARGUMENT
      expect(g.metadata.get('warden-param')).toEqual([`params_json.${param}`]);
      expect(received.length).toBe(calls);
      await eventually(() => w.audit().length >= audited + 2);
      expect(w.audit().slice(audited).map((r) => r.error_code)).toEqual(['invalid_request', 'invalid_request']);
    });
  }

  it('a body member named __proto__ is invalid_request at it, not dropped unsent (nor read as the parameters it holds)', async () => {
    const calls = received.length;
    const audited = w.audit().length;
    for (const inner of ['{"seed": 7, "user": "bob@example.org"}', '{"logprobs": true}']) {
      const res = await fetch(`${w.addresses.http}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"__proto__":${inner}}`,
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as any;
      expect(body.error).toMatchObject({ code: 'invalid_request', param: '__proto__' });
      expect(JSON.stringify(body)).not.toContain('bob@example.org');
    }
    expect(received.length).toBe(calls);
    await eventually(() => w.audit().length >= audited + 2);
    expect(w.audit().slice(audited).map((r) => r.error_code)).toEqual(['invalid_request', 'invalid_request']);
  });

  it('a parameter or tool schema holding a number JSON parsing cannot keep (past 2^53, past a double) is invalid_request naming it, on HTTP and gRPC', async () => {
    const calls = received.length;
    const audited = w.audit().length;
    const cases: Array<[string, string]> = [
      ['"seed":12345678901234567890', 'seed'],
      ['"metadata":{"n":[1,1e400]}', 'metadata'],
    ];
    for (const [member, param] of cases) {
      const res = await fetch(`${w.addresses.http}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],${member}}`,
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error).toMatchObject({ code: 'invalid_request', param });
      const g: any = await unaryCall(gateway, 'Complete', { ...ask, params_json: `{${member}}` }, bearerMetadata(token)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(g?.code).toBe(3); // INVALID_ARGUMENT
      expect(g.metadata.get('warden-param')).toEqual([`params_json.${param}`]);
    }
    // In a tool's JSON schema too.
    const schema = '{"type":"object","properties":{"n":{"type":"integer","maximum":12345678901234567890}}}';
    const res = await fetch(`${w.addresses.http}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${schema}}}]}`,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatchObject({ code: 'invalid_request', param: 'tools.0.function.parameters' });
    const g: any = await unaryCall(gateway, 'Complete', { ...ask, tools: [{ type: 'function', function: { name: 'f', parameters_json: schema } }] }, bearerMetadata(token)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(g?.code).toBe(3);
    expect(g.metadata.get('warden-param')).toEqual(['tools.0.function.parameters_json']);
    expect(received.length).toBe(calls);
    await eventually(() => w.audit().length >= audited + 6);
    expect(w.audit().slice(audited).map((r) => r.error_code)).toEqual(Array(6).fill('invalid_request'));
  });

  it('on /v1/messages, a tool_use input or an input_schema holding such a number is invalid_request at the Anthropic field, not sent rounded or as null', async () => {
    // A Python client sends an int past 2^53 exactly; the input goes upstream as JSON text Warden
    // writes, so it would leave as 12345678901234567000 (and 1e400 as null) without a word.
    const calls = received.length;
    const audited = w.audit().length;
    const post = async (body: string) => {
      const res = await fetch(`${w.addresses.http}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': token }, body });
      return { status: res.status, json: (await res.json()) as any };
    };
    const history = (input: string) =>
      `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":${input}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}`;
    for (const input of ['{"order":12345678901234567890}', '{"n":[1,1e400]}']) {
      const r = await post(history(input));
      expect(r.status, input).toBe(400);
      expect(r.json.error, input).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request', param: 'messages.1.content.0.input' });
    }
    // A tool's schema is refused at its own field, not at the OpenAI one it is mapped to.
    const schema = '{"type":"object","properties":{"n":{"type":"integer","maximum":12345678901234567890}}}';
    const r = await post(`{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":${schema}}]}`);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'invalid_request', param: 'tools.0.input_schema' });
    expect(received.length).toBe(calls);
    await eventually(() => w.audit().length >= audited + 3);
    expect(w.audit().slice(audited).map((rec) => rec.error_code)).toEqual(Array(3).fill('invalid_request'));
    // A number it keeps goes upstream as written.
    answer = (_b, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }] }));
    };
    expect((await post(history('{"order":9007199254740991,"x":1.5}'))).status).toBe(200);
    expect(received.at(-1).messages[1].tool_calls[0].function.arguments).toBe('{"order":9007199254740991,"x":1.5}');
  });

  it('the values that ask for nothing pass, and go upstream as sent', async () => {
    answer = (_b, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }] }));
    };
    const none = { logprobs: false, top_logprobs: null, audio: null, modalities: ['text'], functions: null, function_call: null };
    const res = await client.chat.completions.create({ ...ask, ...none } as any);
    expect(res.choices[0]!.message.content).toBe('fine');
    expect(received.at(-1)).toMatchObject(none);
    const viaGrpc = await unaryCall(gateway, 'Complete', { ...ask, params_json: JSON.stringify({ logprobs: false, modalities: ['text'] }) }, bearerMetadata(token));
    expect(viaGrpc.choices[0].message.content).toBe('fine');
  });
});

describe('stream_options', () => {
  const streamed = (): void => streams(`${event(0, { role: 'assistant', content: 'Opts' }, 'stop')}data: [DONE]\n\n`);

  it('goes upstream with the members OpenAI documents: include_usage (always true) and the caller\'s include_obfuscation', async () => {
    streamed();
    const got = await read(await client.chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: false, include_obfuscation: false } }));
    expect(got).toEqual({ texts: ['Opts', ''], finishes: ['stop', null] });
    expect(received.at(-1).stream_options).toEqual({ include_usage: true, include_obfuscation: false });
    // Over gRPC, in params_json.
    streamed();
    const g = await streamOutcome(gateway.StreamComplete({ ...ask, params_json: JSON.stringify({ stream_options: { include_obfuscation: true } }) }, bearerMetadata(token)));
    expect(g.err).toBeUndefined();
    expect(received.at(-1).stream_options).toEqual({ include_usage: true, include_obfuscation: true });
    // Absent or null: include_usage alone, as before.
    streamed();
    await read(await client.chat.completions.create({ ...ask, stream: true, stream_options: null } as OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming));
    expect(received.at(-1).stream_options).toEqual({ include_usage: true });
  });

  it('another member, or a value that is not a boolean, is invalid_request naming it, on HTTP and gRPC; nothing goes upstream, audited', async () => {
    const calls = received.length;
    const audited = w.audit().length;
    const cases: Array<[unknown, string]> = [
      [{ include_usage: true, continuous_usage_stats: true }, 'stream_options.continuous_usage_stats'],
      [{ include_usage: 'yes' }, 'stream_options.include_usage'],
      [{ include_obfuscation: 1 }, 'stream_options.include_obfuscation'],
      ['include_usage', 'stream_options'],
      [[true], 'stream_options'],
      // A member name that is not a parameter name is the caller's text: the object is named, not it.
      [{ 'bob@example.org': true }, 'stream_options'],
    ];
    for (const [options, param] of cases) {
      const err = await client.chat.completions.create({ ...ask, stream: true, stream_options: options } as any).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(options)).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as any).error).toMatchObject({ code: 'invalid_request', param });
      expect(JSON.stringify((err as any).error)).not.toContain('bob@example.org');
      const g = await streamOutcome(gateway.StreamComplete({ ...ask, params_json: JSON.stringify({ stream_options: options }) }, bearerMetadata(token)));
      expect(g.err?.code).toBe(3); // INVALID_ARGUMENT
      expect(g.err.metadata.get('warden-param')).toEqual([`params_json.${param}`]);
    }
    // Refused whether the call streams or not: the parameter is wrong either way.
    const unary = await client.chat.completions.create({ ...ask, stream_options: { foo: true } } as any).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((unary as any)?.error).toMatchObject({ code: 'invalid_request', param: 'stream_options.foo' });
    expect(received.length).toBe(calls);
    await eventually(() => w.audit().length >= audited + 2 * cases.length + 1);
    expect(new Set(w.audit().slice(audited).map((r) => r.error_code))).toEqual(new Set(['invalid_request']));
  });
});

describe('an upstream answer over 64 KiB nested too deep', () => {
  // JSON.parse takes a deeply nested text 10-30x longer than a flat one (16 MiB of `[`, the body
  // limit: ~9 s with every other request on hold), as it does for a request body: such an answer
  // is scanned for its depth before it is parsed, as the request's body and gRPC's JSON fields
  // are. The scan names an unclosed text for its depth too, which JSON.parse would call no JSON:
  // that is what tells here that the scan ran first.
  const levels = 70_000;
  const unclosed = (head: string): string => `${head}${'['.repeat(levels)}`;

  it('a body, a stream event, a tool call\'s arguments: upstream_error naming the depth, on both routes, audited', async () => {
    const audited = w.audit().length;
    answer = (_b, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(unclosed('{"id":"c1","object":"chat.completion","choices":'));
    };
    const body = await client.chat.completions.create(ask).catch((e: unknown) => e);
    expect(body).toBeInstanceOf(OpenAI.APIError);
    expect((body as Error).message).toMatch(/a body nested deeper than 64 levels/);

    streams(`${event(0, { role: 'assistant', content: 'Hi' })}data: ${unclosed('{"id":"c1","choices":')}\n\n`);
    const got = await read(await client.chat.completions.create({ ...ask, stream: true }));
    expect(got.error).toBeInstanceOf(OpenAI.APIError);
    expect(got.error.message).toMatch(/a stream event nested deeper than 64 levels/);

    // Arguments are a string in the answer: parsed only on /v1/messages, into a tool_use input.
    const args = unclosed('{"a":');
    answer = (_b, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: args } }] }, finish_reason: 'tool_calls' }] }));
    };
    const res = await fetch(`${w.addresses.http}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask, max_tokens: 64 }),
    });
    const refused = (await res.json()) as any;
    expect(refused.error, JSON.stringify(refused).slice(0, 300)).toMatchObject({ type: 'api_error' });
    expect(refused.error.message).toMatch(/tool call arguments nested deeper than 64 levels/);
    await eventually(() => w.audit().length >= audited + 3);
    expect(w.audit().slice(audited).map((r) => r.error_code)).toEqual(['upstream_error', 'upstream_error', 'upstream_error']);
  });
});
