/**
 * A gRPC call's credentials are checked from its headers, at the door (grpc-door.ts, admitAtDoor
 * in grpc.ts), before a byte of its message is read: grpc-js runs a handler only once the whole
 * message has arrived, and the credentials used to be checked there, so a caller with a bad token
 * could have Warden hold what it sent of a message (up to 4 × max_body_bytes) until
 * client_timeout_ms, and was then answered `request_timeout`, not `unauthenticated`. Raw HTTP/2
 * sends a large message's first part and holds the rest back: the call must be refused
 * UNAUTHENTICATED while its message is still incomplete, audited once. A caller whose credentials
 * pass is served as before, once its message is whole.
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePromptRequest, healthClient } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let session: http2.ClientHttp2Session;

// Long enough that a call held until it is never mistaken for a prompt refusal (the old behaviour
// answered request_timeout after it), short enough that the test, failing, does not hang.
const CLIENT_TIMEOUT_MS = 10_000;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url, limits: `limits: { client_timeout_ms: ${CLIENT_TIMEOUT_MS}, max_body_bytes: 1048576, shutdown_grace_ms: 2000 }` });
  session = http2.connect(`http://${w.addresses.grpc}`);
  session.on('error', () => undefined);
});

afterAll(async () => {
  session?.destroy();
  await w?.close();
  await upstream?.close();
});

async function requestsTotal(code: string): Promise<number> {
  const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('warden_requests_total{') && l.includes('protocol="grpc"') && l.includes(`code="${code}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A ~600 KB PromptRequest in one message frame (its 5-byte prefix declares the whole length). */
function largeMessage(): Buffer {
  const body = encodePromptRequest({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(600_000) }] });
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

interface Ended {
  status: number | undefined;
  wardenCode: string | undefined;
  rstCode: number | undefined;
}

/**
 * A Complete call that sends the first `sent` bytes of `message` and holds the rest back (no
 * half-close); `rest()` sends the remainder and half-closes. `ended` resolves when its stream closes.
 */
function slowCall(message: Buffer, sent: number, headers: Record<string, string>) {
  const stream = session.request({ ':method': 'POST', ':path': '/warden.v1.PromptGateway/Complete', 'content-type': 'application/grpc', te: 'trailers', ...headers });
  let fields: http2.IncomingHttpHeaders = {};
  stream.on('response', (h) => (fields = { ...fields, ...h }));
  stream.on('trailers', (t) => (fields = { ...fields, ...t }));
  stream.on('error', () => undefined);
  stream.resume();
  stream.write(message.subarray(0, sent));
  const ended = new Promise<Ended>((resolve) =>
    stream.on('close', () => {
      const status = fields['grpc-status'];
      resolve({ status: status === undefined ? undefined : Number(status), wardenCode: fields['warden-code'] as string | undefined, rstCode: stream.rstCode });
    }),
  );
  return { ended, rest: () => stream.end(message.subarray(sent)) };
}

describe('gRPC: credentials are checked from the call headers, before its message is read', () => {
  for (const [what, headers] of [
    ['a bad token', { authorization: 'Bearer not-a-jwt' }],
    ['no credentials', {}],
  ] as const) {
    it(`${what}, with a large message sent slowly, is refused UNAUTHENTICATED without waiting for the message, audited once`, async () => {
      const records = w.audit().length;
      const before = await requestsTotal('unauthenticated');
      const message = largeMessage();
      // 32 KB of ~600 KB sent; the rest is never sent. Before the fix the call was held until
      // client_timeout_ms and ended DEADLINE_EXCEEDED (`request_timeout`).
      const call = slowCall(message, 32 * 1024, headers);
      const end = await call.ended;
      expect(end).toMatchObject({ status: grpc.status.UNAUTHENTICATED, wardenCode: 'unauthenticated' });
      // Closed unread after its status (RST_STREAM NO_ERROR): nothing of the rest is waited for.
      expect(end.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
      await eventually(() => w.audit().length > records);
      expect(w.audit().slice(records)).toMatchObject([{ principal: null, status: 'error', error_code: 'unauthenticated' }]);
      expect(await requestsTotal('unauthenticated')).toBe(before + 1);
      expect(await requestsTotal('request_timeout')).toBe(0);
    });
  }

  it('a token whose signature does not verify (checked asynchronously) is refused the same way', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const dot = token.lastIndexOf('.');
    const i = dot + 10;
    const forged = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
    const records = w.audit().length;
    const end = await slowCall(largeMessage(), 32 * 1024, { authorization: `Bearer ${forged}` }).ended;
    expect(end).toMatchObject({ status: grpc.status.UNAUTHENTICATED, wardenCode: 'unauthenticated' });
    await eventually(() => w.audit().length > records);
    expect(w.audit().slice(records)).toMatchObject([{ principal: null, error_code: 'unauthenticated' }]);
  });

  it('a call reset right after its headers leaves one record: unauthenticated for a bad token, cancelled (naming the caller) for a valid one', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const records = w.audit().length;
    for (const authorization of ['Bearer not-a-jwt', `Bearer ${token}`]) {
      const stream = session.request({ ':method': 'POST', ':path': '/warden.v1.PromptGateway/Complete', 'content-type': 'application/grpc', te: 'trailers', authorization });
      stream.on('error', () => undefined);
      // Reset while (or just after) its credentials are checked: the door decides its record once they are.
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await new Promise((resolve) => stream.on('close', resolve));
      await eventually(() => w.audit().length > records + (authorization === 'Bearer not-a-jwt' ? 0 : 1));
    }
    // A last call, served: every record of the two before it has been written by the time its is.
    const last = slowCall(largeMessage(), 0, { authorization: `Bearer ${token}` });
    last.rest();
    expect(await last.ended).toMatchObject({ status: grpc.status.OK });
    await eventually(() => w.audit().length >= records + 3);
    expect(w.audit().slice(records)).toMatchObject([
      { principal: null, error_code: 'unauthenticated' },
      { principal: { kind: 'kubernetes', namespace: 'labs', service_account: 'raw-bot' }, error_code: 'cancelled' },
      { principal: { kind: 'kubernetes', namespace: 'labs', service_account: 'raw-bot' }, status: 'ok' },
    ]);
  });

  it('a valid token with the same message sent in two parts is served once the message is whole, its record naming the caller', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const records = w.audit().length;
    const calls = upstream.calls.length;
    const message = largeMessage();
    const call = slowCall(message, 32 * 1024, { authorization: `Bearer ${token}` });
    call.rest();
    expect(await call.ended).toMatchObject({ status: grpc.status.OK });
    await eventually(() => w.audit().length > records);
    expect(w.audit().slice(records)).toMatchObject([{ principal: { kind: 'kubernetes', namespace: 'labs', service_account: 'raw-bot' }, status: 'ok' }]);
    expect(upstream.calls.length).toBe(calls + 1);
  });

  it('a message refused after the credentials passed (over max_body_bytes) names the caller; with a bad token the same call is UNAUTHENTICATED', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const body = encodePromptRequest({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] });
    const head = Buffer.alloc(5);
    head.writeUInt32BE(body.length, 1);
    const message = Buffer.concat([head, body]);
    const records = w.audit().length;
    const good = slowCall(message, message.length, { authorization: `Bearer ${token}` });
    good.rest();
    expect(await good.ended).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, wardenCode: 'payload_too_large' });
    const bad = slowCall(message, message.length, { authorization: 'Bearer not-a-jwt' });
    bad.rest();
    expect(await bad.ended).toMatchObject({ status: grpc.status.UNAUTHENTICATED, wardenCode: 'unauthenticated' });
    await eventually(() => w.audit().length >= records + 2);
    expect(w.audit().slice(records)).toMatchObject([
      { principal: { kind: 'kubernetes', namespace: 'labs', service_account: 'raw-bot' }, error_code: 'payload_too_large' },
      { principal: null, error_code: 'unauthenticated' },
    ]);
  });

  it('health Check needs no credentials, as before', async () => {
    const health = healthClient(w.addresses.grpc);
    try {
      const answer = await new Promise<{ status: string }>((resolve, reject) => health.Check({ service: '' }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res))));
      expect(answer.status).toBe('SERVING');
    } finally {
      health.close();
    }
  });
});
