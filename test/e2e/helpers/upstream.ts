/**
 * A small OpenAI-compatible upstream on loopback, speaking the documented Chat Completions HTTP
 * contract (JSON and SSE). Its behaviour is switched per test: answer, stream slowly, stall,
 * return garbage. It records what it received and whether the caller aborted.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type UpstreamMode = 'ok' | 'garbage' | 'slow' | 'error500' | 'stream-slow' | 'delayed' | 'tool-call' | 'deep-part' | 'rate-limited' | 'bad-request' | 'refusal' | 'text-then-tools' | 'after-finish' | 'tools-revisit' | 'scripted' | 'held' | 'stream-flood';

/** The `scripted` mode's answer: this text, as content or as one tool call's arguments, streamed in pieces of `piece` units. */
export interface ScriptedAnswer {
  text: string;
  toolArgs?: boolean;
  piece?: number;
  /** The finish_reason (default: `tool_calls` for a tool call, else `stop`; OpenAI says `stop` for a forced call). */
  finish?: string;
}

export interface ReceivedCall {
  /** The request target as received (path and query). */
  url?: string;
  headers: IncomingMessage['headers'];
  body: any;
}

export interface FakeUpstream {
  readonly url: string;
  readonly port: number;
  mode: UpstreamMode;
  /** What the `scripted` mode answers. */
  script: ScriptedAnswer;
  calls: ReceivedCall[];
  /** Resolves when a streaming call sees its client go away (take it before the call: it is re-armed after). */
  aborted: Promise<void>;
  /** The `held` mode's calls not answered yet. */
  readonly held: number;
  /** Answers every call the `held` mode is holding (as `ok` would). */
  release(): void;
  close(): Promise<void>;
}

function answerText(body: any): string {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  const last = msgs[msgs.length - 1];
  return `upstream saw: ${typeof last?.content === 'string' ? last.content : ''}`;
}

function completion(body: any) {
  const text = answerText(body);
  return {
    id: 'chatcmpl-up-1',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: body?.model ?? 'unknown',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
  };
}

function chunk(body: any, delta: object, finish: string | null) {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-up-1',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: body?.model ?? 'unknown',
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;
}

export async function startUpstream(): Promise<FakeUpstream> {
  let resolveAborted: () => void = () => {};
  // Re-armed once resolved: a test takes `aborted` before its call and waits for that call's.
  const arm = (): Promise<void> =>
    new Promise<void>((r) => {
      resolveAborted = () => {
        state.aborted = arm();
        r();
      };
    });
  const state: FakeUpstream = {
    url: '',
    port: 0,
    mode: 'ok',
    script: { text: '' },
    calls: [],
    aborted: Promise.resolve(),
    get held() {
      return heldAnswers.length;
    },
    release() {
      for (const answer of heldAnswers.splice(0)) answer();
    },
    close: async () => {},
  };
  // The `held` mode's answers, each waiting for release(); one whose caller went away is dropped.
  const heldAnswers: Array<() => void> = [];
  state.aborted = arm();
  const sockets = new Set<import('node:net').Socket>();

  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      let body: any = null;
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        body = null;
      }
      state.calls.push({ url: req.url, headers: req.headers, body });
      respond(body, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function respond(body: any, res: ServerResponse): void {
    switch (state.mode) {
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"id": "x", "choices": [ this is not json');
        return;
      case 'deep-part': {
        // Valid JSON and a valid completion shape, with a content part nested 5,000 levels deep.
        const answer = completion(body);
        const deep = `${'{"x":'.repeat(5000)}1${'}'.repeat(5000)}`;
        const text = JSON.stringify(answer).replace(`"content":${JSON.stringify(answerText(body))}`, `"content":[{"type":"output_x","x":${deep}}]`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(text);
        return;
      }
      case 'refusal': {
        // A structured-output refusal, as OpenAI sends it: content null, the text in `refusal`.
        const text = "I can't write to jane.doe@example.com about that.";
        if (body?.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(chunk(body, { role: 'assistant', content: null, refusal: '' }, null));
          for (const piece of text.match(/.{1,5}/g)!) res.write(chunk(body, { refusal: piece }, null));
          res.write(chunk(body, {}, 'stop'));
          res.end('data: [DONE]\n\n');
          return;
        }
        const answer = completion(body);
        answer.choices = [{ index: 0, message: { role: 'assistant', content: null, refusal: text } as any, logprobs: null, finish_reason: 'stop' }];
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
        return;
      }
      case 'rate-limited':
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' });
        res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded', param: null } }));
        return;
      case 'bad-request':
        // As OpenAI words it, quoting what it was sent: none of it may reach the caller.
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `context too long: ${JSON.stringify(body)}`, type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' } }));
        return;
      case 'error500':
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'upstream exploded', type: 'server_error', code: null, param: null } }));
        return;
      case 'delayed':
        // Answers after a pause: long enough for a test to act while the request is in flight.
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(completion(body)));
        }, 400);
        return;
      case 'held': {
        // Each call waits until the test releases it: how many the upstream is holding at once is
        // how many Warden let through.
        const answer = () => respondOk(body, res);
        heldAnswers.push(answer);
        res.on('close', () => {
          const i = heldAnswers.indexOf(answer);
          if (i !== -1) heldAnswers.splice(i, 1);
        });
        return;
      }
      case 'slow':
        // Never answers: the caller's timeout must fire.
        res.on('close', () => resolveAborted());
        return;
      case 'stream-slow': {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk(body, { role: 'assistant', content: '' }, null));
        let n = 0;
        const timer = setInterval(() => {
          n++;
          res.write(chunk(body, { content: `tick ${n} ` }, null));
        }, 20);
        res.on('close', () => {
          clearInterval(timer);
          if (!res.writableEnded) resolveAborted();
        });
        return;
      }
      case 'stream-flood': {
        // An endless answer in 8 KB chunks, as fast as the caller takes them (backpressure kept):
        // enough to fill every buffer between Warden and a client that stops reading.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk(body, { role: 'assistant', content: '' }, null));
        const piece = chunk(body, { content: 'x'.repeat(8192) }, null);
        const flood = () => {
          while (!res.destroyed && res.write(piece));
        };
        res.on('drain', flood);
        res.on('close', () => {
          if (!res.writableEnded) resolveAborted();
        });
        flood();
        return;
      }
      case 'tool-call': {
        // The model calls the first tool it was offered (OpenAI's documented tool-call shape).
        const name = body?.tools?.[0]?.function?.name ?? 'none';
        const call = { id: 'call_up_1', type: 'function', function: { name, arguments: '{"city":"Paris"}' } };
        if (body?.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(chunk(body, { role: 'assistant', content: null, tool_calls: [{ index: 0, ...call, function: { name, arguments: '' } }] }, null));
          res.write(chunk(body, { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }, null));
          res.write(chunk(body, { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, null));
          res.write(chunk(body, {}, 'tool_calls'));
          res.end('data: [DONE]\n\n');
          return;
        }
        const answer = completion(body);
        answer.choices = [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [call] } as any, logprobs: null, finish_reason: 'tool_calls' }];
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
        return;
      }
      case 'text-then-tools': {
        // Text, then two tool calls, one after another, as models stream them; a card number
        // is cut after its first group in the text and in the first call's arguments.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk(body, { role: 'assistant', content: 'Checking "4111' }, null));
        res.write(chunk(body, { content: ' 1111 1111 1111" now' }, null));
        res.write(chunk(body, { tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'lookup', arguments: '' } }] }, null));
        res.write(chunk(body, { tool_calls: [{ index: 0, function: { arguments: '{"card":"4111' } }] }, null));
        res.write(chunk(body, { tool_calls: [{ index: 0, function: { arguments: ' 1111 1111 1111"}' } }] }, null));
        res.write(chunk(body, { tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'other', arguments: '{"q":' } }] }, null));
        res.write(chunk(body, { tool_calls: [{ index: 1, function: { arguments: '"hello"}' } }] }, null));
        res.write(chunk(body, {}, 'tool_calls'));
        const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };
        res.write(`data: ${JSON.stringify({ id: 'chatcmpl-up-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: body?.model, choices: [], usage })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      case 'after-finish': {
        // Misbehaving: the choice finishes with an email cut after its `@`, then goes on.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk(body, { role: 'assistant', content: 'mail jane.doe@' }, 'stop'));
        res.write(chunk(body, { content: 'example.com now' }, null));
        res.end('data: [DONE]\n\n');
        return;
      }
      case 'tools-revisit': {
        // A misbehaving upstream: goes back to tool call 0 after call 1 began.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk(body, { role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'a', arguments: '{"x":' } }] }, null));
        res.write(chunk(body, { tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'b', arguments: '{}' } }] }, null));
        res.write(chunk(body, { tool_calls: [{ index: 0, function: { arguments: '1}' } }] }, null));
        // Then it stalls: only a closed connection ends this call.
        res.on('close', () => {
          if (!res.writableEnded) resolveAborted();
        });
        return;
      }
      case 'scripted': {
        const { text, toolArgs = false, piece = 4 } = state.script;
        const finish = state.script.finish ?? (toolArgs ? 'tool_calls' : 'stop');
        const call = { id: 'call_up_1', type: 'function', function: { name: 'f', arguments: text } };
        if (body?.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(chunk(body, toolArgs ? { role: 'assistant', content: null, tool_calls: [{ index: 0, ...call, function: { name: 'f', arguments: '' } }] } : { role: 'assistant', content: '' }, null));
          for (let i = 0; i < text.length; i += piece) {
            const part = text.slice(i, i + piece);
            res.write(chunk(body, toolArgs ? { tool_calls: [{ index: 0, function: { arguments: part } }] } : { content: part }, null));
          }
          res.write(chunk(body, {}, finish));
          res.end('data: [DONE]\n\n');
          return;
        }
        const answer = completion(body);
        answer.choices = [{ index: 0, message: (toolArgs ? { role: 'assistant', content: null, tool_calls: [call] } : { role: 'assistant', content: text }) as any, logprobs: null, finish_reason: finish as any }];
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
        return;
      }
      case 'ok':
      default:
        respondOk(body, res);
    }
  }

  /** The `ok` mode's answer: the last message quoted back, streamed word by word or whole. */
  function respondOk(body: any, res: ServerResponse): void {
    if (body?.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk(body, { role: 'assistant', content: '' }, null));
      for (const word of answerText(body).split(' ')) res.write(chunk(body, { content: `${word} ` }, null));
      res.write(chunk(body, {}, 'stop'));
      res.end('data: [DONE]\n\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(completion(body)));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
}
