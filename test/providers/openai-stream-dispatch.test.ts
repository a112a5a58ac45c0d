/**
 * The streamed call path (pool.dispatch + SseCall): byte boundaries, backpressure, [DONE],
 * non-stream answers, cancellation before and while queued.
 */
import { describe, expect, it, vi } from 'vitest';
import type { ModelProvider } from '../../src/pipeline/ports.js';
import type { CompletionChunk, UpstreamRequest } from '../../src/pipeline/index.js';
import { createOpenAIProvider, type OpenAIProviderOptions } from '../../src/providers/index.js';
import { DISCARD_LIMIT } from '../../src/providers/drain.js';
import { chunk, closeAfterEach, completion, failure, openAIHandler, sse, sseHead, startUpstream, TEST_API_KEY, upstreamRequest, usageChunk, type FakeUpstream } from './fake-upstream.js';
import { MAX_STREAM_CHOICES, MAX_STREAM_TOOL_CALLS } from '../../src/providers/validate.js';

const KEY = TEST_API_KEY;

let upstream: FakeUpstream | undefined;
let provider: ModelProvider | undefined;

closeAfterEach(() => [provider, upstream]);

function request(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return upstreamRequest({ messages: [{ role: 'user', content: 'hello' }], stream: true, ...over });
}

function make(baseUrl: string, over: Partial<OpenAIProviderOptions> = {}): ModelProvider {
  provider = createOpenAIProvider({ name: 'openai', baseUrl, getApiKey: () => KEY, connections: 4, ...over });
  return provider;
}

async function collect(iterable: AsyncIterable<CompletionChunk>, slow = false): Promise<CompletionChunk[]> {
  const out: CompletionChunk[] = [];
  for await (const c of iterable) {
    out.push(c);
    if (slow) await new Promise((r) => setImmediate(r));
  }
  return out;
}

const text = (chunks: CompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');

describe('OpenAI provider, streamed calls', () => {
  it('reassembles events and multi-byte characters split at any byte', async () => {
    const content = 'héllo wörld — 你好 🙂';
    const body = Buffer.from(`data: ${JSON.stringify(chunk({ role: 'assistant', content }))}\r\n\r\ndata: ${JSON.stringify(chunk({}, 'stop'))}\n\ndata: [DONE]\n\n`);
    upstream = await startUpstream((_req, res) => {
      sseHead(res);
      let i = 0;
      // One byte at a time, each its own write: every boundary, inside characters and CRLFs too.
      const next = () => {
        if (i >= body.length) return void res.end();
        res.write(body.subarray(i, ++i));
        setImmediate(next);
      };
      next();
    });
    const chunks = await collect(make(upstream.baseUrl).stream(request()));
    expect(text(chunks)).toBe(content);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
  });

  it('a slow consumer gets every event in order (the socket is paused and resumed)', async () => {
    const n = 600;
    upstream = await startUpstream((_req, res) => {
      sseHead(res);
      let all = '';
      for (let i = 0; i < n; i++) all += `data: ${JSON.stringify(chunk({ content: `${i},` }))}\n\n`;
      all += `data: ${JSON.stringify(chunk({}, 'stop'))}\n\ndata: [DONE]\n\n`;
      res.end(all);
    });
    const chunks = await collect(make(upstream.baseUrl).stream(request()), true);
    expect(chunks).toHaveLength(n + 1);
    expect(text(chunks)).toBe(Array.from({ length: n }, (_, i) => `${i},`).join(''));
  });

  it('a consumer that stops reading pauses the upstream by bytes, not chunks: ~1 MB events are not queued by the dozen', { timeout: 20_000 }, async () => {
    // Each event is just under the 1 MiB event limit; 64 of them (the chunk bound alone) would be 64 MB.
    const big = `data: ${JSON.stringify(chunk({ content: 'word '.repeat(200_000) }))}\n\n`;
    let flushed = 0;
    upstream = await startUpstream((_req, res) => {
      sseHead(res);
      sse(res, chunk({ role: 'assistant', content: '' }));
      // As fast as Warden reads, counting what it actually took off the socket (the write callbacks).
      const pump = (): void => {
        while (!res.destroyed) {
          if (!res.write(big, () => (flushed += big.length))) return void res.once('drain', pump);
        }
      };
      pump();
    });
    const stream = make(upstream.baseUrl).stream(request())[Symbol.asyncIterator]();
    // Closed whatever happens: a paused call left open would hold the provider's close.
    try {
      // Reads the first event and the first big one, then stops reading.
      await stream.next();
      expect((await stream.next()).value?.choices[0]?.delta.content).toHaveLength(1_000_000);
      // The upstream gets stuck once Warden stops reading: wait for its count to stand still, or to
      // pass the bound (what loopback socket buffers can hold plus a few events; the chunk bound alone is 64 MB).
      const bound = 16 * 1024 * 1024;
      let last = -1;
      while (flushed !== last && flushed < bound) {
        last = flushed;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(flushed).toBeLessThan(bound);
      // Still a stream: reading again resumes the upstream, one big event at a time.
      for (let i = 0; i < 3; i++) expect((await stream.next()).value?.choices[0]?.delta.content).toHaveLength(1_000_000);
    } finally {
      await stream.return?.();
    }
  });

  it('[DONE] ends the stream even before the body ends, and the connection is reused', async () => {
    let release!: () => void;
    upstream = await startUpstream((_req, res) => {
      sseHead(res);
      sse(res, chunk({ content: 'only' }));
      sse(res, '[DONE]');
      release = () => res.end();
    });
    const p = make(upstream.baseUrl, { connections: 1 });
    const chunks = await collect(p.stream(request()));
    expect(text(chunks)).toBe('only');
    release();
    upstream.handle((_req, res) => {
      sseHead(res);
      sse(res, chunk({ content: 'again' }, 'stop'));
      res.end();
    });
    expect(text(await collect(p.stream(request())))).toBe('again');
    expect(upstream.sockets).toHaveLength(1);
  });

  it('an error answer with a large body fails with its status and closes the connection', async () => {
    upstream = await startUpstream((req, res) => {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `${JSON.stringify(req.body)} ${'z'.repeat(1024 * 1024)}` }));
    });
    const e = await failure(collect(make(upstream.baseUrl).stream(request())));
    expect(e.details).toEqual({ provider: 'openai', status: 429 });
    await upstream.sockets[0]!.closed;
    expect(upstream.sockets[0]!.isClosed()).toBe(true);
  });

  it('an aborted request is not sent; one aborted while queued fails at once and is not sent either', async () => {
    upstream = await startUpstream();
    const ac = new AbortController();
    ac.abort();
    const p = make(upstream.baseUrl, { connections: 1 });
    expect((await failure(collect(p.stream(request({ signal: ac.signal }))))).code).toBe('cancelled');
    expect(upstream.received).toHaveLength(0);

    let finish: (() => void) | undefined;
    upstream.handle((_req, res) => {
      sseHead(res);
      sse(res, chunk({ content: 'first' }, 'stop'));
      finish = () => res.end();
    });
    const first = p.stream(request())[Symbol.asyncIterator]();
    expect(text([(await first.next()).value as CompletionChunk])).toBe('first');
    const later = new AbortController();
    const queued = collect(p.stream(request({ signal: later.signal })));
    later.abort();
    expect((await failure(queued)).code).toBe('cancelled');
    finish!();
    expect((await first.next()).done).toBe(true);
    expect(upstream.received).toHaveLength(1);
  });

  it('a key that must be fetched (a promise) still streams, with the key', async () => {
    upstream = await startUpstream();
    const chunks = await collect(make(upstream.baseUrl, { getApiKey: async () => KEY }).stream(request()));
    expect(text(chunks)).toBe('Hello there');
    expect(upstream.received[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
  });
});

describe('OpenAI provider, streamed calls: what the upstream sends', () => {
  it('takes the content type case-insensitively (media types are, RFC 9110 §8.3.1)', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'Text/Event-Stream; Charset=UTF-8' });
      sse(res, chunk({ content: 'cased' }, 'stop'));
      sse(res, '[DONE]');
      res.end();
    });
    expect(text(await collect(make(upstream.baseUrl).stream(request())))).toBe('cased');
  });
});

/**
 * Writes `piece` every `ms` until the client goes away; the response never ends by itself.
 * Returns how many bytes it wrote so far.
 */
function trickle(res: import('node:http').ServerResponse, piece: string, ms: number): () => number {
  let written = 0;
  const timer = setInterval(() => {
    res.write(piece);
    written += Buffer.byteLength(piece);
  }, ms);
  res.on('close', () => clearInterval(timer));
  return () => written;
}

describe('OpenAI provider, streamed calls: an upstream that keeps the body open', () => {
  it('after [DONE], the rest of the body is drained within bounds, else the connection is closed (the pool is not pinned)', async () => {
    let afterDone = (): number => 0;
    upstream = await startUpstream((_req, res) => {
      sseHead(res);
      sse(res, chunk({ content: 'done' }, 'stop'));
      sse(res, '[DONE]');
      // Never ends: keeps sending events after [DONE].
      afterDone = trickle(res, `data: ${JSON.stringify(chunk({ content: 'more' }))}\n\n`, 50);
    });
    const p = make(upstream.baseUrl, { connections: 1 });
    expect(text(await collect(p.stream(request())))).toBe('done');
    upstream.handle(openAIHandler);
    // The only pooled connection must come free for the next call: while it is pinned, the next
    // call waits for it past the test's timeout (no clock bound needed).
    expect(text(await collect(p.stream(request())))).toBe('Hello there');
    await upstream.sockets[0]!.closed;
    expect(upstream.sockets).toHaveLength(2);
    // Closed by the drain's time bound, not its byte bound (which alone frees the connection
    // too, once DISCARD_LIMIT bytes have come): a count, not a clock. An event every 50 ms for
    // DRAIN_MS (1 s) is some 20 events, 3 KiB; the byte bound takes 64 KiB, over 450 of them.
    expect(afterDone()).toBeLessThan(DISCARD_LIMIT / 4);
  });

  it('after [DONE], a body that keeps sending bytes fast is closed at the byte bound', async () => {
    upstream = await startUpstream((_req, res) => {
      sseHead(res);
      sse(res, chunk({ content: 'done' }, 'stop'));
      sse(res, '[DONE]');
      trickle(res, `: ${'x'.repeat(16 * 1024)}\n`, 1);
    });
    const p = make(upstream.baseUrl, { connections: 1 });
    // No clock: the drain's time bound (DRAIN_MS) is a setTimeout, and setTimeout is frozen for
    // this call, so only the byte bound can close the socket; without it the test hangs.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      expect(text(await collect(p.stream(request())))).toBe('done');
      await upstream.sockets[0]!.closed;
    } finally {
      vi.useRealTimers();
    }
  });

  it('a streamed call answered 200 text/html a byte at a time fails at once and frees its connection within bounds', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      trickle(res, '<', 100);
    });
    const p = make(upstream.baseUrl, { connections: 1 });
    expect((await failure(collect(p.stream(request())))).code).toBe('upstream_error');
    upstream.handle(openAIHandler);
    expect(text(await collect(p.stream(request())))).toBe('Hello there');
  });

  it('a non-streamed call answered 500 a byte at a time frees its connection within bounds', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      trickle(res, '{', 100);
    });
    const p = make(upstream.baseUrl, { connections: 1 });
    expect((await failure(p.complete(upstreamRequest()))).code).toBe('upstream_error');
    upstream.handle(openAIHandler);
    expect((await p.complete(upstreamRequest())).choices[0]!.message.content).toBe('Hello there');
  });
});

describe('OpenAI provider, streamed calls: what must hold across chunks', () => {
  /** An upstream that streams `events` (chunks or raw data strings), then [DONE]. */
  async function streaming(events: unknown[]): Promise<FakeUpstream> {
    return startUpstream((_req, res) => {
      sseHead(res);
      for (const e of events) sse(res, e);
      sse(res, '[DONE]');
      res.end();
    });
  }
  const withChoices = (choices: unknown[]) => ({ ...chunk({}), choices });

  it('a stream of only [DONE] is upstream_error, not an empty answer', async () => {
    upstream = await streaming([]);
    const e = await failure(collect(make(upstream.baseUrl).stream(request())));
    expect(e.code).toBe('upstream_error');
    expect(e.message).toContain('no answer');
  });

  it('[DONE] after only a usage chunk (no choice) is upstream_error too', async () => {
    upstream = await streaming([usageChunk]);
    expect((await failure(collect(make(upstream.baseUrl).stream(request())))).code).toBe('upstream_error');
  });

  it('a stream with more choices than MAX_STREAM_CHOICES is upstream_error (memory per stream stays bounded)', async () => {
    const events = Array.from({ length: MAX_STREAM_CHOICES + 1 }, (_, i) => withChoices([{ index: i * 1000, delta: { content: 'x' }, finish_reason: null }]));
    upstream = await streaming(events);
    // Asked for: a choice past the request's n is refused first (see the next describe).
    const e = await failure(collect(make(upstream.baseUrl).stream(request({ params: { n: 1_000_000 } }))));
    expect(e.code).toBe('upstream_error');
    expect(e.message).toContain(`more than ${MAX_STREAM_CHOICES} choices`);
  });

  it('a stream with more tool calls than MAX_STREAM_TOOL_CALLS is upstream_error; MAX_STREAM_CHOICES choices and their repeats pass', async () => {
    const calls = Array.from({ length: MAX_STREAM_TOOL_CALLS + 1 }, (_, t) => chunk({ tool_calls: [{ index: t, function: { arguments: '{}' } }] }));
    upstream = await streaming(calls);
    const e = await failure(collect(make(upstream.baseUrl).stream(request())));
    expect(e.message).toContain(`more than ${MAX_STREAM_TOOL_CALLS} tool calls`);

    const many = Array.from({ length: MAX_STREAM_CHOICES }, (_, i) => withChoices([{ index: i, delta: { content: 'a' }, finish_reason: null }]));
    const again = Array.from({ length: MAX_STREAM_CHOICES }, (_, i) => withChoices([{ index: i, delta: { content: 'b' }, finish_reason: 'stop' }]));
    upstream.handle((_req, res) => {
      sseHead(res);
      for (const e of [...many, ...calls.slice(0, MAX_STREAM_TOOL_CALLS), ...calls.slice(0, 3), ...again]) sse(res, e);
      sse(res, '[DONE]');
      res.end();
    });
    expect(await collect(provider!.stream(request({ params: { n: MAX_STREAM_CHOICES } })))).toHaveLength(2 * MAX_STREAM_CHOICES + MAX_STREAM_TOOL_CALLS + 3);
  });

  it("content for a choice after its finish_reason is upstream_error (its held-back tail was already released); a role or an empty piece passes", async () => {
    upstream = await streaming([chunk({ content: 'mail jane.doe@' }, 'stop'), chunk({ content: 'example.com now' })]);
    const e = await failure(collect(make(upstream.baseUrl).stream(request())));
    expect(e.message).toContain('after its finish_reason');

    for (const late of [{ tool_calls: [{ index: 0, function: { arguments: '{}' } }] }, { refusal: 'no' }]) {
      upstream.handle((_req, res) => {
        sseHead(res);
        sse(res, chunk({ content: 'hi' }, 'stop'));
        sse(res, chunk(late));
        res.end();
      });
      expect((await failure(collect(provider!.stream(request())))).message).toContain('after its finish_reason');
    }

    upstream.handle((_req, res) => {
      sseHead(res);
      sse(res, chunk({ content: 'hi' }, 'stop'));
      sse(res, chunk({ role: 'assistant', content: '' }, 'stop'));
      sse(res, withChoices([{ index: 1, delta: { content: 'other choice' }, finish_reason: 'stop' }]));
      sse(res, usageChunk);
      sse(res, '[DONE]');
      res.end();
    });
    expect(await collect(provider!.stream(request({ params: { n: 2 } })))).toHaveLength(4);
  });
});

describe('OpenAI provider: choices the request did not ask for', () => {
  it('a choice index at or past the request\'s n (1 when unset) is upstream_error, streamed or not', async () => {
    let answer: Record<string, unknown> = {};
    let events: unknown[] = [];
    upstream = await startUpstream((req, res) => {
      if (!(req.body as { stream: boolean }).stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
        return;
      }
      sseHead(res);
      for (const e of events) sse(res, e);
      sse(res, '[DONE]');
      res.end();
    });
    const p = make(upstream.baseUrl);
    const ok = completion('fine');
    answer = { ...ok, choices: [ok.choices[0], { ...ok.choices[0]!, index: 1 }] };
    for (const params of [{}, { n: 'two' }, { n: 0 }, { n: 1.5 }]) {
      const e = await failure(p.complete(request({ stream: false, params })));
      expect(e.code).toBe('upstream_error');
      expect(e.message).toContain('a choice the request did not ask for (an index at or past 1: it asked for 1)');
    }
    expect((await p.complete(request({ stream: false, params: { n: 2 } }))).choices).toHaveLength(2);

    events = [chunk({ content: 'a' }), { ...chunk({}), choices: [{ index: 1, delta: { content: 'b' }, finish_reason: null }] }, chunk({}, 'stop')];
    expect((await failure(collect(p.stream(request())))).message).toContain('a choice the request did not ask for (an index at or past 1: it asked for 1)');
    expect(await collect(p.stream(request({ params: { n: 2 } })))).toHaveLength(3);
  });
});

describe('OpenAI provider: numbers beyond the gRPC wire types (uint32)', () => {
  const BIG = 2 ** 32;
  it('a streamed choice index, tool-call index or token count above 2^32-1 is upstream_error; 2^32-1 passes', async () => {
    const bad = [
      { ...chunk({ content: 'x' }, 'stop'), choices: [{ index: BIG + 1, delta: { content: 'x' }, finish_reason: 'stop' }] },
      chunk({ tool_calls: [{ index: 2 ** 40, function: { arguments: '{}' } }] }, 'stop'),
      { ...usageChunk, usage: { prompt_tokens: 2 ** 40, completion_tokens: 1, total_tokens: 2 ** 40 + 1 } },
    ];
    let event: unknown;
    upstream = await startUpstream((_req, res) => {
      sseHead(res);
      sse(res, chunk({ content: 'ok' }, 'stop'));
      sse(res, event);
      sse(res, '[DONE]');
      res.end();
    });
    const p = make(upstream.baseUrl);
    for (const e of bad) {
      event = e;
      expect((await failure(collect(p.stream(request())))).code).toBe('upstream_error');
    }
    event = { ...usageChunk, usage: { prompt_tokens: BIG - 1, completion_tokens: 0, total_tokens: BIG - 1 } };
    expect((await collect(p.stream(request()))).at(-1)!.usage!.total_tokens).toBe(BIG - 1);
  });

  it('a non-streamed choice index or token count above 2^32-1 is upstream_error', async () => {
    let answer: Record<string, any> = {};
    upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
    const p = make(upstream.baseUrl);
    const ok = completion('fine');
    for (const bad of [
      { ...ok, usage: { prompt_tokens: 2 ** 40, completion_tokens: 3, total_tokens: 2 ** 40 + 3 } },
      { ...ok, choices: [{ ...ok.choices[0]!, index: BIG }] },
      { ...ok, choices: [{ ...ok.choices[0]!, message: { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }, index: BIG }] },
    ]) {
      answer = bad;
      expect((await failure(p.complete(upstreamRequest()))).code).toBe('upstream_error');
    }
    answer = { ...ok, usage: { prompt_tokens: BIG - 1, completion_tokens: 0, total_tokens: BIG - 1 } };
    expect((await p.complete(upstreamRequest())).usage!.total_tokens).toBe(BIG - 1);
  });
});
