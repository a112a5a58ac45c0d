/**
 * HTTP/1.1 pipelining: requests written back to back on one connection, before their answers.
 * Node queues each answer behind the one being sent, and a queued answer's response never gets a
 * socket, so it emits no `close` when the connection closes first. Each such request must still
 * give back its place under max_in_flight and its count for the shutdown drain, and its audit
 * record must say the client left (`cancelled`), not `ok`: its answer never went out.
 */
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

const LIMITS = 'limits: { max_in_flight: 8, client_timeout_ms: 10000, upstream_timeout_ms: 20000, shutdown_grace_ms: 4000 }';

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url, limits: LIMITS });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

function governed(model: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model, ...extra, warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-7', customer_message: 'The parcel is late.' } } });
}

/** One request's bytes, as a pipelining client writes them. */
function rawRequest(bearer: string, body: string, extraHeaders = ''): string {
  return (
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${bearer}\r\ncontent-type: application/json\r\n` +
    `${extraHeaders}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** A streamed chat request, an Anthropic message and a model lookup: each route's own way to answer. */
function otherRoutes(bearer: string): string {
  const message = JSON.stringify({ ...(JSON.parse(governed('echo')) as object), max_tokens: 64 });
  return (
    rawRequest(bearer, governed('echo', { stream: true })) +
    `POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: ${bearer}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(message)}\r\n\r\n${message}` +
    `GET /v1/models/echo HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${bearer}\r\n\r\n`
  );
}

async function open(fixture: WardenFixture): Promise<{ socket: Socket; closed: Promise<void>; received: () => string }> {
  const url = new URL(fixture.addresses.http);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  socket.on('error', () => undefined);
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed, received: () => text };
}

async function inFlight(fixture: WardenFixture): Promise<number> {
  const text = await (await fetch(`${fixture.addresses.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => /^warden_requests_in_flight(\{[^}]*\})? /.test(l));
  return Number(line?.slice(line.lastIndexOf(' ') + 1));
}

/**
 * One write: a request Warden answers with `connection: close` (415, a compressed body), then
 * `behind` ordinary requests pipelined after it. Resolves with the records those left.
 */
async function closedAfterFirst(fixture: WardenFixture, bearer: string, behind: number, more = ''): Promise<{ received: string; records: Array<Record<string, any>> }> {
  const before = fixture.audit().length;
  const conn = await open(fixture);
  conn.socket.write(rawRequest(bearer, governed('echo'), 'content-encoding: gzip\r\n') + rawRequest(bearer, governed('echo')).repeat(behind) + more);
  await conn.closed;
  await eventually(() => fixture.audit().length >= before + 1 + behind + (more === '' ? 0 : 3));
  return { received: conn.received(), records: fixture.audit().slice(before) };
}

describe('pipelined HTTP/1.1 requests whose connection closes before their answers go out', () => {
  it('give their places back and are audited cancelled when the first answer closes the connection', { timeout: 20_000 }, async () => {
    // Twice five: more than max_in_flight (8), had they kept their places.
    for (let round = 0; round < 2; round++) {
      const { received, records } = await closedAfterFirst(w, token, 5);
      // Only the first answer went out (it closed the connection).
      expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 415']);
      expect(records).toHaveLength(6);
      expect(records.filter((r) => r.status === 'error' && r.error_code === 'cancelled')).toHaveLength(5);
      expect(records.filter((r) => r.status === 'ok')).toHaveLength(0);
      await eventually(async () => (await inFlight(w)) === 0);
    }
    expect(await inFlight(w)).toBe(0);
    // Every place is free: as many requests as the limit are served at once.
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        fetch(`${w.addresses.http}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: governed('echo'),
        }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(200));
    await Promise.all(answers.map((r) => r.text()));
  });

  it('are audited cancelled on every route, a stream, a message and a model lookup too', { timeout: 20_000 }, async () => {
    const { received, records } = await closedAfterFirst(w, token, 0, otherRoutes(token));
    expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 415']);
    // Records in the order the requests ended, not the order they came in.
    expect(records.map((r) => `${r.action} ${r.error_code ?? r.status}`).sort()).toEqual([
      'models.list cancelled',
      'prompt.execute cancelled',
      'prompt.execute cancelled',
      'prompt.execute unsupported_media_type',
    ]);
    await eventually(async () => (await inFlight(w)) === 0);
  });

  it('give their places back and are audited cancelled when the client leaves during a stream ahead of them', { timeout: 20_000 }, async () => {
    upstream.mode = 'stream-slow';
    const before = w.audit().length;
    const calls = upstream.calls.length;
    const conn = await open(w);
    // A slow stream, and quick requests (the echo model answers at once) queued behind it.
    conn.socket.write(rawRequest(token, governed('gpt-4o-mini', { stream: true })) + rawRequest(token, governed('echo')).repeat(3));
    await eventually(() => upstream.calls.length > calls && conn.received().includes('data: '));
    // All four are admitted: the stream and the three waiting for it.
    expect(await inFlight(w)).toBe(4);
    conn.socket.destroy();
    await eventually(() => w.audit().length >= before + 4);
    const records = w.audit().slice(before);
    expect(records.map((r) => r.error_code ?? r.status)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    await eventually(async () => (await inFlight(w)) === 0);
    upstream.mode = 'ok';
  });

  it('answer every pipelined request in order while the connection stays open', { timeout: 20_000 }, async () => {
    const before = w.audit().length;
    const conn = await open(w);
    conn.socket.write(rawRequest(token, governed('echo')) + otherRoutes(token) + rawRequest(token, governed('echo'), 'connection: close\r\n'));
    await conn.closed;
    expect(conn.received().match(/HTTP\/1\.1 \d{3}/g)).toEqual(Array(5).fill('HTTP/1.1 200'));
    // Each answer whole, in order: the stream's [DONE] before the Anthropic message, before the model.
    const text = conn.received();
    expect(text.indexOf('data: [DONE]')).toBeGreaterThan(0);
    expect(text.indexOf('"type":"message"')).toBeGreaterThan(text.indexOf('data: [DONE]'));
    expect(text.indexOf('"object":"model"')).toBeGreaterThan(text.indexOf('"type":"message"'));
    await eventually(() => w.audit().length >= before + 5);
    expect(w.audit().slice(before).map((r) => r.status)).toEqual(Array(5).fill('ok'));
    expect(await inFlight(w)).toBe(0);
  });

  it('does not hold the shutdown for requests whose connection is gone', { timeout: 20_000 }, async () => {
    const own = await startWarden({ upstreamUrl: upstream.url, limits: LIMITS });
    try {
      await closedAfterFirst(own, await own.signer.token('support', 'ticket-bot'), 5);
      // Nothing is running: the drain ends at once, not at shutdown_grace_ms (4 s).
      const result = await own.runtime.shutdown('test finished');
      expect(result.outcome).toBe('drained');
    } finally {
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
});

describe('pipelined requests when the drain begins', () => {
  it('are all answered, in order, and one written after it began gets its 503 behind them before the connection closes', { timeout: 20_000 }, async () => {
    const own = await startWarden({ upstreamUrl: upstream.url, limits: LIMITS });
    upstream.mode = 'delayed';
    try {
      const bearer = await own.signer.token('support', 'ticket-bot');
      const conn = await open(own);
      const callsBefore = upstream.calls.length;
      // Three requests in flight upstream (answered after 400 ms) when the drain begins.
      conn.socket.write(rawRequest(bearer, governed('gpt-4o-mini')).repeat(3));
      await eventually(() => upstream.calls.length >= callsBefore + 3);
      const stopping = own.runtime.shutdown('test');
      conn.socket.write(rawRequest(bearer, governed('gpt-4o-mini')));
      await conn.closed;
      // The first answer used to say `connection: close` and the connection closed after it: the
      // two in flight behind it were dropped unsent (audited `cancelled`), the 503 too.
      const answers = conn.received().split(/(?=HTTP\/1\.1 )/);
      expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 503']);
      expect(answers.slice(0, 3).every((a) => a.includes('upstream saw: '))).toBe(true);
      expect(answers.slice(0, 2).some((a) => /^connection: close/im.test(a))).toBe(false);
      expect(answers[3]).toMatch(/^connection: close/im);
      expect(answers[3]).toContain('"code":"shutting_down"');
      expect((await stopping).outcome).toBe('drained');
      expect(own.audit().map((r) => r.error_code ?? r.status).sort()).toEqual(['ok', 'ok', 'ok', 'shutting_down']);
    } finally {
      upstream.mode = 'ok';
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
});

describe('a bad request pipelined behind a good one', () => {
  it('is its own refusal, answered after the good one goes out, not charged to it', async () => {
    const before = w.audit().length;
    const conn = await open(w);
    conn.socket.write(`GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n\r\nGARBAGE\r\n\r\n`);
    await conn.closed;
    await eventually(() => w.audit().length >= before + 2);
    const answers = conn.received().split(/(?=HTTP\/1\.1 )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 400']);
    expect(answers[0]).toContain('"object":"list"');
    expect(answers[1]).toMatch(/x-request-id: [0-9a-f-]{36}/);
    expect(answers[1]).toContain('"code":"invalid_request"');
    // Two records, in the order they were written (the refusal's at once, the answer's at its end).
    const records = w.audit().slice(before);
    expect(records.map((r) => `${r.status} ${r.error_code ?? ''}`).sort()).toEqual(['error invalid_request', 'ok ']);
  });
});
