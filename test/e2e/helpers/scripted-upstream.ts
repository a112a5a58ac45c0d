/**
 * A loopback OpenAI-compatible upstream that answers exactly what a test scripts: the current
 * `completion()` to a call, the current `chunks()` (as SSE events, then `[DONE]`) to a streamed
 * one. For tests of what Warden does with an upstream's answer, whatever its shape.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedUpstream {
  /** The base URL a provider's `base_url` takes (`http://127.0.0.1:PORT/v1`). */
  url: string;
  close(): Promise<void>;
}

export async function startScriptedUpstream(completion: () => unknown, chunks: () => readonly unknown[]): Promise<ScriptedUpstream> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      if ((JSON.parse(body) as { stream?: boolean }).stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const c of chunks()) res.write(`data: ${JSON.stringify(c)}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(completion()));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A chat completion with one assistant `message`; `head` members are set last (they may replace `choices` or `usage`). */
export function completionBody(message: Record<string, unknown>, finish: string | null = 'stop', head: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', ...message }, logprobs: null, finish_reason: finish }],
    usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    ...head,
  };
}

/** A chat completion chunk of choice 0; `head` members are set last, as in completionBody. */
export function chunkBody(delta: Record<string, unknown>, finish: string | null = null, head: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }], ...head };
}

/** One chunk per character of `text`, as content or as one tool call's arguments (a call to `name`). */
export function oneCharChunks(text: string, asArgs: boolean, name = 'lookup'): Array<Record<string, unknown>> {
  const first = asArgs
    ? chunkBody({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name, arguments: '' } }] })
    : chunkBody({ role: 'assistant', content: '' });
  const pieces = [...text].map((c) => chunkBody(asArgs ? { tool_calls: [{ index: 0, function: { arguments: c } }] } : { content: c }));
  return [first, ...pieces, chunkBody({}, asArgs ? 'tool_calls' : 'stop')];
}

/** The joined content, or the first tool call's joined arguments, of an OpenAI SSE body. */
export function joinedOpenAI(body: string, asArgs: boolean): string {
  let out = '';
  for (const block of body.split('\n\n')) {
    if (!block.startsWith('data: {')) continue;
    const delta = JSON.parse(block.slice(6)).choices[0]?.delta ?? {};
    out += asArgs ? (delta.tool_calls?.[0]?.function?.arguments ?? '') : (delta.content ?? '');
  }
  return out;
}
