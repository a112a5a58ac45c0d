/**
 * The non-streamed call path (pool.dispatch + our own body collector): limits, aborts, non-2xx
 * bodies, queued requests, and the synchronous send when the API key is cached.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { RequestSignal } from '../../src/pipeline/cancel.js';
import type { ModelProvider } from '../../src/pipeline/ports.js';
import { createOpenAIProvider, type OpenAIProviderOptions } from '../../src/providers/index.js';
import { retryAfterSeconds } from '../../src/providers/failure.js';
import { closeAfterEach, completion, failure, startUpstream, TEST_API_KEY, upstreamRequest, type FakeUpstream } from './fake-upstream.js';

const KEY = TEST_API_KEY;

let upstream: FakeUpstream | undefined;
let provider: ModelProvider | undefined;

closeAfterEach(() => [provider, upstream]);

const request = upstreamRequest;

function make(baseUrl: string, over: Partial<OpenAIProviderOptions> = {}): ModelProvider {
  provider = createOpenAIProvider({ name: 'openai', baseUrl, getApiKey: () => KEY, connections: 4, ...over });
  return provider;
}

/** Resolves once the fake upstream has received `n` requests. */
async function received(u: FakeUpstream, n: number): Promise<void> {
  while (u.received.length < n) await new Promise((r) => setTimeout(r, 5));
}

describe('OpenAI provider, non-streamed calls', () => {
  it('refuses a body over maxResponseBytes, declared or chunked, and closes the connection', async () => {
    const big = JSON.stringify(completion('x'.repeat(4000)));
    let chunked = false;
    upstream = await startUpstream((_req, res) => {
      if (chunked) {
        // No content-length: the limit is found while reading.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(big.slice(0, 2000));
        setTimeout(() => res.end(big.slice(2000)), 10);
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) });
        res.end(big);
      }
    });
    const p = make(upstream.baseUrl, { maxResponseBytes: 1000 });
    const declared = await failure(p.complete(request()));
    expect(declared.code).toBe('upstream_error');
    expect(declared.message).toBe('provider openai returned a response larger than the limit');
    await upstream.sockets[0]!.closed;
    chunked = true;
    const read = await failure(p.complete(request()));
    expect(read.message).toBe('provider openai returned a response larger than the limit');
    await upstream.sockets[1]!.closed;
    expect(upstream.received).toHaveLength(2);
    expect(upstream.sockets[0]!.isClosed() && upstream.sockets[1]!.isClosed()).toBe(true);
  });

  it('accepts a body split over many chunks, up to the limit, its length declared or not', async () => {
    const body = JSON.stringify(completion('y'.repeat(3000)));
    let declared = false;
    upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', ...(declared ? { 'content-length': String(Buffer.byteLength(body)) } : {}) });
      let i = 0;
      const next = () => {
        if (i >= body.length) return void res.end();
        res.write(body.slice(i, (i += 500)));
        setImmediate(next);
      };
      next();
    });
    const p = make(upstream.baseUrl, { maxResponseBytes: Buffer.byteLength(body) });
    for (const d of [false, true]) {
      declared = d;
      const result = await p.complete(request());
      expect(result.choices[0]!.message.content).toBe('y'.repeat(3000));
    }
  });

  it('a client abort mid-body is cancelled and closes the upstream socket', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"id":"chatcmpl-test",'); // ... and stalls
    });
    const signal = new RequestSignal();
    const pending = make(upstream.baseUrl).complete(request({ signal }));
    await received(upstream, 1);
    signal.abort(new Error('client went away'));
    const e = await failure(pending);
    expect(e.code).toBe('cancelled');
    await upstream.sockets[0]!.closed;
    expect(upstream.sockets[0]!.isClosed()).toBe(true);
  });

  it('a deadline (TimeoutError reason) mid-body is upstream_timeout', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"id":');
    });
    const ac = new AbortController();
    const pending = make(upstream.baseUrl).complete(request({ signal: ac.signal }));
    await received(upstream, 1);
    ac.abort(new DOMException('upstream deadline exceeded', 'TimeoutError'));
    const e = await failure(pending);
    expect(e.code).toBe('upstream_timeout');
    await upstream.sockets[0]!.closed;
  });

  it('a request aborted while queued for a connection fails at once and is never sent', async () => {
    let answerFirst: (() => void) | undefined;
    upstream = await startUpstream((_req, res) => {
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completion('first')));
      };
      // The first request waits for the test; later ones are answered at once.
      if (answerFirst === undefined) answerFirst = answer;
      else answer();
    });
    const p = make(upstream.baseUrl, { connections: 1 });
    const first = p.complete(request());
    await received(upstream, 1);
    const ac = new AbortController();
    const queued = p.complete(request({ signal: ac.signal }));
    ac.abort();
    // Rejected while the only connection is still busy with the first request.
    expect((await failure(queued)).code).toBe('cancelled');
    answerFirst!();
    expect((await first).choices[0]!.message.content).toBe('first');
    // The connection is free again, and the cancelled request did not go out on it.
    await p.complete(request());
    expect(upstream.received).toHaveLength(2);
  });

  it('a non-2xx answer fails with its status; a small body keeps the connection, a large one closes it', async () => {
    let size = 100;
    upstream = await startUpstream((req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      // The body quotes the prompt: it must never surface.
      res.end(JSON.stringify({ error: `${JSON.stringify(req.body)} ${'z'.repeat(size)}` }));
    });
    const p = make(upstream.baseUrl, { connections: 1 });
    for (let i = 0; i < 2; i++) {
      const e = await failure(p.complete(request()));
      expect(e.code).toBe('upstream_error');
      expect(e.details).toEqual({ provider: 'openai', status: 503 });
    }
    expect(upstream.sockets).toHaveLength(1);
    size = 1024 * 1024;
    expect((await failure(p.complete(request()))).details).toEqual({ provider: 'openai', status: 503 });
    await upstream.sockets[0]!.closed;
    expect(upstream.sockets[0]!.isClosed()).toBe(true);
  });

  it('a refused request and rate limiting keep their meaning, streamed or not; the body never surfaces', async () => {
    const answers: Array<[number, Record<string, string>]> = [
      [400, {}],
      [413, {}],
      [422, {}],
      [429, { 'retry-after': '17' }],
      [429, {}],
      [404, {}],
      [500, {}],
    ];
    let next = 0;
    upstream = await startUpstream((req, res) => {
      const [status, headers] = answers[next % answers.length]!;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ error: { message: `you sent ${JSON.stringify(req.body)}`, code: 'context_length_exceeded' } }));
    });
    const p = make(upstream.baseUrl);
    const want = [
      ['upstream_rejected', { provider: 'openai', status: 400 }],
      ['upstream_rejected', { provider: 'openai', status: 413 }],
      ['upstream_rejected', { provider: 'openai', status: 422 }],
      ['upstream_rate_limited', { provider: 'openai', status: 429, retry_after_s: 17 }],
      ['upstream_rate_limited', { provider: 'openai', status: 429 }],
      ['upstream_error', { provider: 'openai', status: 404 }],
      ['upstream_error', { provider: 'openai', status: 500 }],
    ];
    for (const stream of [false, true]) {
      for (let i = 0; i < answers.length; i++) {
        next = i;
        const call = stream ? p.stream(request({ stream: true })) : p.complete(request());
        const e = await failure(
          stream
            ? (async () => {
                for await (const _ of call as AsyncIterable<unknown>);
              })()
            : (call as Promise<unknown>),
        );
        expect([e.code, e.details], `${stream ? 'stream' : 'complete'} ${answers[i]![0]}`).toEqual(want[i]);
        expect(JSON.stringify(e)).not.toContain('CANARY');
        expect(e.message).not.toContain('you sent');
      }
    }
  });

  it('skips an informational (1xx) answer and reads the final one', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeEarlyHints({ link: '</x>; rel=preload' });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(completion('after hints')));
    });
    const result = await make(upstream.baseUrl).complete(request());
    expect(result.choices[0]!.message.content).toBe('after hints');
  });

  it('with a cached (synchronous) key the request is handed to undici before complete() returns', async () => {
    upstream = await startUpstream();
    let created = 0;
    const onCreate = () => void created++;
    let key: string | Promise<string> = KEY;
    const p = make(upstream.baseUrl, { getApiKey: () => key });
    await p.complete(request()); // opens the keep-alive connection
    subscribe('undici:request:create', onCreate);
    try {
      const pending = p.complete(request());
      expect(created).toBe(1);
      await pending;
      // A key that must still be fetched (a promise) defers the dispatch.
      key = Promise.resolve(KEY);
      const deferred = p.complete(request());
      expect(created).toBe(1);
      await deferred;
      expect(created).toBe(2);
    } finally {
      unsubscribe('undici:request:create', onCreate);
    }
    expect(upstream.received.map((r) => r.headers.authorization)).toEqual([`Bearer ${KEY}`, `Bearer ${KEY}`, `Bearer ${KEY}`]);
  });

  it('a key getter that throws synchronously is secret_unavailable and nothing is sent', async () => {
    upstream = await startUpstream();
    const p = make(upstream.baseUrl, {
      getApiKey: () => {
        throw new Error(`cannot read ${KEY}`);
      },
    });
    expect((await failure(p.complete(request()))).code).toBe('secret_unavailable');
    expect(upstream.received).toHaveLength(0);
  });

  it('writes the common request body directly, equal to the general form', async () => {
    upstream = await startUpstream();
    const p = make(upstream.baseUrl);
    const messagesJson = JSON.stringify([{ role: 'user', content: 'hi "there"' }]);
    await p.complete(request({ messagesJson, max_tokens: 64 }));
    await p.complete(request({ messagesJson, max_tokens: 64, params: { temperature: 0.5 } }));
    const [direct, general] = upstream.received;
    expect(direct!.body).toEqual({ model: 'gpt-4o-mini', stream: false, max_tokens: 64, messages: [{ role: 'user', content: 'hi "there"' }] });
    expect(general!.body).toEqual({ ...direct!.body, temperature: 0.5 });
  });
});

describe('retryAfterSeconds', () => {
  it('reads delta-seconds and HTTP dates, bounded to a day; anything else is absent', () => {
    const now = Date.parse('2026-11-26T04:00:00Z');
    expect(retryAfterSeconds('30', now)).toBe(30);
    expect(retryAfterSeconds(' 0 ', now)).toBe(0);
    expect(retryAfterSeconds('Thu, 26 Nov 2026 04:01:30 GMT', now)).toBe(90);
    expect(retryAfterSeconds('Thu, 26 Nov 2026 03:00:00 GMT', now)).toBe(0);
    expect(retryAfterSeconds('999999999', now)).toBe(86_400);
    expect(retryAfterSeconds(['5', '7'], now)).toBe(5);
    for (const bad of [undefined, '', 'soon', '-5', '1.5']) expect(retryAfterSeconds(bad, now), String(bad)).toBeUndefined();
  });
});
