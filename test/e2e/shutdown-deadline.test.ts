/**
 * The shutdown deadline (limits.shutdown_grace_ms) ends streams that are still running: their
 * audit records say `shutting_down` (Warden stopped), not `cancelled` (which means the client
 * went away), over HTTP and gRPC alike, and for a client that has stopped reading too.
 */
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, gatewayClient } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  upstream.mode = 'stream-slow';
  w = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { client_timeout_ms: 10000, upstream_timeout_ms: 60000, shutdown_grace_ms: 300 }' });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

describe('the shutdown deadline', () => {
  it('ends running streams as shutting_down, over HTTP and gRPC, whether their clients read or not', { timeout: 20_000 }, async () => {
    const token = await w.signer.token('support', 'ticket-bot');
    const body = { model: 'gpt-4o-mini', stream: true, warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-9', customer_message: 'hi' } } };
    // A client that stops reading an answer that floods: Warden waits for its socket to drain
    // when the deadline closes the connection.
    const url = new URL(w.addresses.http);
    const callsBefore = upstream.calls.length;
    upstream.mode = 'stream-flood';
    const stalled = connect({ host: url.hostname, port: Number(url.port) });
    stalled.on('error', () => undefined);
    const stalledBody = JSON.stringify(body);
    stalled.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(stalledBody)}\r\n\r\n${stalledBody}`,
    );
    const stalledClosed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
    await eventually(() => upstream.calls.length > callsBefore);
    upstream.mode = 'stream-slow';
    const http = await fetch(`${w.addresses.http}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    expect(http.status).toBe(200);
    const reading = http.text().catch(() => 'cut');
    const client = gatewayClient(w.addresses.grpc);
    const call = client.StreamComplete(
      { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-9', customer_message: 'hi' } },
      bearerMetadata(token),
    );
    let grpcChunks = 0;
    call.on('data', () => grpcChunks++);
    const grpcEnded = new Promise<void>((resolve) => {
      call.on('error', () => resolve());
      call.on('end', () => resolve());
    });
    await eventually(() => grpcChunks > 2, 10);
    // A request whose headers are still arriving when the drain begins: refused, and audited.
    const late = connect({ host: url.hostname, port: Number(url.port) });
    await new Promise<void>((resolve) => late.once('connect', () => resolve()));
    late.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n');
    let lateAnswer = '';
    late.on('data', (d: Buffer) => (lateAnswer += d.toString()));
    const lateClosed = new Promise<void>((resolve) => late.once('close', () => resolve()));
    const before = w.audit().length;
    const stopping = w.runtime.shutdown('test');
    late.write(`authorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
    await lateClosed;
    expect(lateAnswer).toMatch(/^HTTP\/1\.1 503 /);
    expect(lateAnswer).toContain('"code":"shutting_down"');
    await stopping;
    await reading;
    await grpcEnded;
    client.close();
    stalled.resume();
    await stalledClosed;
    const records = w.audit().slice(before);
    expect(records.filter((r) => r.stream === true).map((r) => r.error_code).sort()).toEqual(['shutting_down', 'shutting_down', 'shutting_down']);
    expect(records.filter((r) => r.stream !== true).map((r) => r.error_code)).toEqual(['shutting_down']);
  });
});

describe('a request still in its header block at the deadline', () => {
  it('is answered 503 shutting_down and audited, not cut unanswered', { timeout: 20_000 }, async () => {
    const own = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { client_timeout_ms: 10000, upstream_timeout_ms: 60000, shutdown_grace_ms: 300 }' });
    try {
      const url = new URL(own.addresses.http);
      const slow = connect({ host: url.hostname, port: Number(url.port) });
      slow.on('error', () => undefined);
      let answer = '';
      slow.on('data', (d: Buffer) => (answer += d.toString()));
      const closed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
      await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
      // Headers that never end: server.close() stops Node's own header deadline (client_timeout_ms).
      slow.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n');
      // Warden (in this process) accepts the connection and reads those bytes in a later turn of
      // the event loop; a connection still in the accept queue would just be reset by the close.
      // Nothing outside tells when it has read them: the wait is long enough for a loaded machine
      // (one turn of this process's loop is all it takes).
      await new Promise((r) => setTimeout(r, 500));
      const result = await own.runtime.shutdown('test');
      await closed;
      expect(result.outcome).toBe('timeout');
      expect(answer).toMatch(/^HTTP\/1\.1 503 /);
      expect(answer).toContain('"code":"shutting_down"');
      expect(answer).toMatch(/x-request-id: [0-9a-f-]{36}/);
      expect(own.audit().map((r) => [r.status, r.error_code, r.principal])).toEqual([['error', 'shutting_down', null]]);
    } finally {
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
});
