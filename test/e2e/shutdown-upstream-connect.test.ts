/**
 * The shutdown with an upstream call still connecting: an `https` upstream that accepts the TCP
 * connection and never answers the TLS handshake holds the call in undici's connect phase until
 * `timeouts.connect_ms`. The deadline cuts the request (503 `shutting_down`, audited), and the
 * provider's pool is then destroyed, not closed: nothing of Warden's is in flight any more. Its
 * graceful close waited for the connect to time out, held the exit for the rest of the closing
 * margin (or of the grace period), and logged that the audit flush had not finished, which it had.
 * (undici cannot end a connect under way: the socket goes with the process's exit.)
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let server: Server;
const sockets: Socket[] = [];
let w: WardenFixture;

beforeAll(async () => {
  // A TLS server in name only: it takes the connection and the ClientHello, and says nothing.
  server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  w = await startWarden({
    upstreamUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    // Far beyond the test: a graceful close of the pool would wait for it.
    upstreamTimeouts: '{ connect_ms: 120000 }',
    limits: 'limits: { client_timeout_ms: 60000, upstream_timeout_ms: 60000, shutdown_grace_ms: 300 }',
  });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
  await w?.close();
});

describe('the shutdown with an upstream call still connecting', () => {
  it('cuts the request, then does not wait for the connect; the audit flush is not blamed', { timeout: 20_000 }, async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const answer = postChat(w.addresses.http, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).then(async (r) => ({ status: r.status, body: await r.text() }));
    await eventually(() => sockets.length > 0);

    await w.runtime.shutdown('test');

    const { status, body } = await answer;
    expect(status).toBe(503);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'shutting_down' } });
    expect(w.audit().map((r) => r.error_code)).toEqual(['shutting_down']);
    expect(w.logs.join('\n')).not.toContain('did not finish in time');
    expect(w.logs.at(-1)).toContain('shutdown complete');
  });
});
