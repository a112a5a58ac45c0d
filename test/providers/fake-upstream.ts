/**
 * A loopback HTTP server speaking OpenAI's Chat Completions contract (POST /v1/chat/completions:
 * a JSON `chat.completion`, or with `stream: true` an SSE stream of `data: {chunk}\n\n` events
 * ending with `data: [DONE]\n\n`). Each test chooses how it behaves and reads back what Warden sent.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, expect } from 'vitest';
import { WardenError, type UpstreamRequest } from '../../src/pipeline/index.js';

/** The API key the provider tests configure: a canary that must never reach an error or a log. */
export const TEST_API_KEY = 'sk-CANARY-SECRET-9f8e7d';
/** Prompt text that must never come back in an error. */
export const PROMPT_CANARY = 'CANARY-PROMPT-5a4b3c';

/** Awaits `p`, which must fail with a WardenError whose message and details carry no canary. */
export async function failure(p: Promise<unknown>): Promise<WardenError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    const e = err as WardenError;
    // Never the key, never the prompt, in what a caller or a log could see.
    const visible = `${e.message} ${JSON.stringify(e.details ?? {})}`;
    expect(visible).not.toContain('CANARY');
    return e;
  }
  throw new Error('expected a failure');
}

/** An upstream request as the forward stage builds one (non-streamed); `over` replaces members. */
export function upstreamRequest(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: `summarise ${PROMPT_CANARY}` }],
    stream: false,
    params: {},
    signal: new AbortController().signal,
    ...over,
  };
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: any;
}

export type Handler = (req: ReceivedRequest, res: ServerResponse) => void;

export interface FakeUpstream {
  baseUrl: string;
  received: ReceivedRequest[];
  /** Sockets the server has seen, with whether each has closed. */
  sockets: Array<{ socket: Socket; closed: Promise<void>; isClosed: () => boolean }>;
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export function completion(content: string, model = 'gpt-4o-mini') {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 1700000000,
    model,
    system_fingerprint: 'fp_x',
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 },
  };
}

export function chunk(delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...extra,
  };
}

export const usageChunk = {
  id: 'chatcmpl-test',
  object: 'chat.completion.chunk',
  created: 1700000000,
  model: 'gpt-4o-mini',
  choices: [],
  usage: { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 },
};

export function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
}

export function sse(res: ServerResponse, data: unknown): void {
  res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

/** The documented happy path: JSON, or SSE when the request asks to stream. */
export const openAIHandler: Handler = (req, res) => {
  if (req.body?.stream) {
    sseHead(res);
    sse(res, chunk({ role: 'assistant', content: '' }));
    sse(res, chunk({ content: 'Hello' }));
    sse(res, chunk({ content: ' there' }));
    sse(res, chunk({}, 'stop'));
    sse(res, usageChunk);
    sse(res, '[DONE]');
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(completion('Hello there')));
};

export async function startUpstream(handler: Handler = openAIHandler): Promise<FakeUpstream> {
  let current = handler;
  const received: ReceivedRequest[] = [];
  const sockets: FakeUpstream['sockets'] = [];
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep raw text
      }
      const r: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      received.push(r);
      current(r, res);
    });
  });
  server.on('connection', (socket: Socket) => {
    let closed = false;
    const done = new Promise<void>((resolve) => socket.on('close', () => ((closed = true), resolve())));
    sockets.push({ socket, closed: done, isClosed: () => closed });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    received,
    sockets,
    handle(h) {
      current = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * After each test of the calling file, closes what `open()` lists, in that order (a provider or
 * registry before the upstream it talks to). A test that opens nothing new leaves the variables
 * pointing at the last test's resources: each is closed once, never twice.
 */
export function closeAfterEach(open: () => ReadonlyArray<{ close(): Promise<unknown> } | undefined>): void {
  const closed = new WeakSet<object>();
  afterEach(async () => {
    for (const resource of open()) {
      if (!resource || closed.has(resource)) continue;
      closed.add(resource);
      await resource.close();
    }
  });
}
