/**
 * End to end: what Warden does with an OpenAI-compatible upstream's wire (a loopback server that
 * writes exactly the bytes each test scripts), as the official openai client sees it.
 *   - a stream that ends without `[DONE]` is whole only when every choice it began reached its
 *     finish_reason: with `n` > 1, one finished choice does not make a cut one whole;
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayClient } from './helpers/grpc.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

/** What the upstream does with the next call (its parsed body in hand). */
let answer: (body: any, res: ServerResponse) => void = (_b, res) => res.end();
const received: any[] = [];
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
