/**
 * A non-streamed answer sent in many tiny pieces (chunked transfer coding with one byte per chunk,
 * as a proxy that flushes on every write may send it, or an upstream trickling its answer) is held
 * in memory about once, as one sent in a few large pieces is: the 16 MiB cap bounds what one call
 * holds, whatever the pieces. Each piece was kept as a Buffer of its own, ~100 bytes of heap per
 * byte of answer: 8 MB in one-byte chunks took 835 MB of heap, so a few such answers (or one in a
 * pod with a memory limit) ended the process. The call runs in a child with a small V8 heap,
 * where the old way ran out of memory.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CONTENT_LENGTH = 4 * 1024 * 1024;
let server: Server;

beforeAll(async () => {
  server = createServer((s: Socket) => {
    s.on('error', () => {});
    s.once('data', () => {
      const body = JSON.stringify({
        id: 'c1',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'a'.repeat(CONTENT_LENGTH) }, finish_reason: 'stop' }],
      });
      s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
      // One byte per chunk, written in blocks of many chunks (so it is quick to send).
      const BLOCK = 8192;
      let at = 0;
      const next = (): void => {
        while (at < body.length) {
          let block = '';
          for (const c of body.slice(at, at + BLOCK)) block += `1\r\n${c}\r\n`;
          at += BLOCK;
          if (!s.write(block)) return void s.once('drain', next);
        }
        s.end('0\r\n\r\n');
      };
      next();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('a non-streamed answer in one-byte pieces', () => {
  it('is held about once: 4 MiB of them is read within a 64 MB heap', { timeout: 120_000 }, async () => {
    const child = spawn(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', join(import.meta.dirname, 'body-pieces-child.ts'), `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    expect({ code, signal, stdout, stderr: stderr.slice(0, 300) }).toEqual({ code: 0, signal: null, stdout: `ok ${CONTENT_LENGTH}\n`, stderr: '' });
  });
});
