/**
 * A StreamComplete client that stops reading: Warden queues at most about 16 KB of its answer (as
 * an HTTP response's high-water mark does), not grpc-js's 16 messages, which with 1 MiB upstream
 * events is 16 MB per stalled stream. The client here is a raw HTTP/2 client that stops reading at
 * the HTTP/2 level (no window updates): what Warden had queued for it is exactly what it receives
 * once it reads again after the upstream deadline, since the upstream call is gone by then and
 * only the queued answer and the status are left to send.
 */
import { createServer, type Server } from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePromptRequest } from './helpers/grpc.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

/** One upstream event: a chunk of ~100 KB of content. */
const EVENT = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: 'word '.repeat(20_000) }, finish_reason: null }] })}\n\n`;

let flood: Server;
let w: WardenFixture;

beforeAll(async () => {
  // An endless answer, as fast as Warden takes it.
  flood = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const pump = (): void => {
        while (!res.destroyed) if (!res.write(EVENT)) return void res.once('drain', pump);
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => flood.listen(0, '127.0.0.1', resolve));
  w = await startWarden({
    upstreamUrl: `http://127.0.0.1:${(flood.address() as AddressInfo).port}/v1`,
    limits: 'limits: { upstream_timeout_ms: 1500, shutdown_grace_ms: 1000 }',
  });
});

afterAll(async () => {
  await w?.close();
  flood?.closeAllConnections();
  flood?.close();
});

describe('a StreamComplete client that stops reading', () => {
  it('has at most a few of the upstream events queued for it in Warden, not 16', { timeout: 20_000 }, async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const session = http2.connect(`http://${w.addresses.grpc}`);
    session.on('error', () => undefined);
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/warden.v1.PromptGateway/StreamComplete',
        'content-type': 'application/grpc',
        te: 'trailers',
        authorization: `Bearer ${token}`,
      });
      stream.on('error', () => undefined);
      const message = encodePromptRequest({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      message.copy(frame, 5);
      stream.end(frame);
      // Reads nothing: node sends no window update, and Warden can send 64 KB of the answer.
      stream.pause();
      const audited = w.audit().length;
      // The upstream deadline ends the call while the client is behind.
      await eventually(() => w.audit().length > audited);
      expect(w.audit().slice(audited)).toMatchObject([{ stream: true, status: 'error', error_code: 'upstream_timeout' }]);
      // Read again: what comes is what Warden held for the client, then the status.
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('trailers', resolve));
      stream.resume();
      expect((await trailers)['warden-code']).toBe('upstream_timeout');
      const body = Buffer.concat(parts);
      let messages = 0;
      for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1)) messages++;
      // ~100 KB each: one in the HTTP/2 stream, one past the 16 KB mark. grpc-js alone queues 16.
      expect(messages).toBeGreaterThan(0);
      expect(messages).toBeLessThanOrEqual(3);
    } finally {
      session.destroy();
    }
  });
});
