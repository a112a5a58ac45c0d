/**
 * End to end with real parts: a node:http server speaking OpenAI's streaming Chat Completions
 * contract writes the SSE bytes in small pieces (splitting multi-byte characters and events);
 * the official openai client parses them; the redaction session restores and redacts. The
 * result must equal the non-streamed processing of the same answer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompletionChunk } from '../../src/pipeline/types.js';
import { createRedactor } from '../../src/redact/index.js';
import { collect, decision, joinChunks, openAiSse } from './helpers.js';

const CONTENT = 'Sure — I wrote to <EMAIL_ADDRESS_1> (😀 ok) and found eve@corp.example.com, card 4111 1111 1111 1111; ring <PHONE_NUMBER_1>.';
const ARGS = '{"to":"<EMAIL_ADDRESS_1>","cc":"mallory@corp.example.com","note":"東京"}';

let server: Server;
let baseURL = '';
let pieceSize = 1;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const bytes = openAiSse(CONTENT.match(/[\s\S]{1,3}/gu)!, { toolArgs: ARGS.match(/[\s\S]{1,4}/gu)! });
      let i = 0;
      const pump = (): void => {
        while (i < bytes.length) {
          const part = bytes.subarray(i, i + pieceSize);
          i += pieceSize;
          if (!res.write(part)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('streaming through the openai client from a loopback upstream', () => {
  for (const size of [1, 2, 3, 7, 64]) {
    it(`SSE written in ${size}-byte pieces`, async () => {
      pieceSize = size;
      const redactor = createRedactor({});
      const session = redactor.session(decision({ mode: 'tokenize' }), []);
      session.redactMessages([{ role: 'user', content: 'mail alice@example.com, call +1 415-555-2671' }]);
      const client = new OpenAI({ apiKey: 'test-key', baseURL, maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
      const upstream = (async function* () {
        for await (const c of stream) yield c as unknown as CompletionChunk;
      })();
      const got = joinChunks(await collect(session.processStream(upstream)));
      const whole = session.processCompletion({
        id: 'x',
        model: 'gpt-4o-mini',
        created: 1,
        choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: CONTENT, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'send', arguments: ARGS } }] } }],
      }).choices[0]!.message;
      expect(got.content).toBe(whole.content);
      expect(got.args).toBe(whole.tool_calls![0]!.function.arguments);
      expect(got.content).toBe('Sure — I wrote to alice@example.com (😀 ok) and found [EMAIL_ADDRESS], card [CREDIT_CARD]; ring +1 415-555-2671.');
      expect(JSON.parse(got.args)).toEqual({ to: 'alice@example.com', cc: '[EMAIL_ADDRESS]', note: '東京' });
    });
  }
});
