/**
 * An answer sent in many tiny pieces (chunked transfer coding with one byte per chunk, as a proxy
 * that flushes on every write may send it, or an upstream trickling its answer) is held in memory
 * about once, as one sent in a few large pieces is: the caps (16 MiB for a whole answer, 1 MiB for
 * a stream's event) bound what one call holds, whatever the pieces. The calls run in a child with
 * a small V8 heap, where the old ways ran out of memory:
 *   - a non-streamed answer kept each piece as a Buffer of its own, ~100 bytes of heap per byte
 *     of answer (8 MB in one-byte chunks took 835 MB);
 *   - a stream's unterminated line grew by `+=`, a rope node (~32 bytes) per piece: a 1 MB
 *     event sent a byte at a time took 33 MB until its line ended.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBytewiseChunked } from '../e2e/helpers/http.js';

let server: Server;
/** What the upstream answers, by whether the call asked for a stream. */
let answer: (stream: boolean) => { contentType: string; body: string } = () => ({ contentType: 'application/json', body: '' });

beforeAll(async () => {
  server = createServer((s: Socket) => {
    s.on('error', () => {});
    s.once('data', (d: Buffer) => {
      const { contentType, body } = answer(d.toString('latin1').includes('"stream":true'));
      s.write(`HTTP/1.1 200 OK\r\ncontent-type: ${contentType}\r\ntransfer-encoding: chunked\r\n\r\n`);
      writeBytewiseChunked(s, body, true);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

/** Runs body-pieces-child.ts with a 64 MB V8 heap. */
async function child(kind: 'complete' | 'stream', calls: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  const proc = spawn(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', join(import.meta.dirname, 'body-pieces-child.ts'), url, kind, String(calls)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code, signal] = (await once(proc, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr: stderr.slice(0, 300) };
}

describe('an answer in one-byte pieces', () => {
  it('non-streamed, is held about once: 4 MiB of them is read within a 64 MB heap', { timeout: 120_000 }, async () => {
    const content = 4 * 1024 * 1024;
    answer = () => ({
      contentType: 'application/json',
      body: JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'a'.repeat(content) }, finish_reason: 'stop' }] }),
    });
    expect(await child('complete', 1)).toEqual({ code: 0, signal: null, stdout: `ok ${content}\n`, stderr: '' });
  });

  it('streamed, an event\'s line is held about once: three streams of a 1,000,000-character event each, within a 64 MB heap', { timeout: 120_000 }, async () => {
    const content = 1_000_000 - 200;
    const event = JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { role: 'assistant', content: 'a'.repeat(content) }, finish_reason: 'stop' }] });
    answer = () => ({ contentType: 'text/event-stream', body: `data: ${event}\n\ndata: [DONE]\n\n` });
    expect(await child('stream', 3)).toEqual({ code: 0, signal: null, stdout: `ok ${content} ${content} ${content}\n`, stderr: '' });
  });
});
