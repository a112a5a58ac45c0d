/**
 * A gRPC request message over `limits.max_body_bytes` is refused as soon as its 5-byte prefix
 * (which declares its length) has arrived, from an authenticated caller too: grpc-js buffered the
 * message whole before any handler saw it, up to its receive ceiling (4 × max_body_bytes), so each
 * of `max_in_flight` callers could have Warden hold 4 MiB (at the default limit) until
 * client_timeout_ms, and a caller that sent the prefix and then held the rest back was answered
 * `request_timeout` after that wait rather than `payload_too_large`. Raw HTTP/2 sends a prefix
 * declaring an oversize message and a part of its body, and holds the rest back: the call must end
 * RESOURCE_EXHAUSTED (`warden-code: payload_too_large`) at once, closed unread, audited once with
 * its caller. A message of exactly max_body_bytes is still read and served.
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, encodePromptRequest, gatewayClient, rpcStatus, streamOutcome, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let session: http2.ClientHttp2Session;

const MAX_BODY_BYTES = 65_536;
// Long enough that a call held until it is never mistaken for the refusal (the old behaviour
// answered request_timeout after it), short enough that the test, failing, does not hang.
const CLIENT_TIMEOUT_MS = 10_000;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url, limits: `limits: { client_timeout_ms: ${CLIENT_TIMEOUT_MS}, max_body_bytes: ${MAX_BODY_BYTES}, shutdown_grace_ms: 2000 }` });
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

/** A gRPC message prefix (uncompressed) declaring `length` bytes. */
function prefix(length: number): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(length, 1);
  return head;
}

/** A PromptRequest of exactly `bytes` bytes (its content padded), framed. */
function messageOf(bytes: number): Buffer {
  const empty = encodePromptRequest({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: '' }] }).length;
  // The content's length varint grows from 1 to 3 bytes (and the message's from 1 to 3) past 127.
  let body = encodePromptRequest({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(bytes - empty - 4) }] });
  body = encodePromptRequest({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(bytes - empty - 4 + (bytes - body.length)) }] });
  expect(body.length).toBe(bytes);
  return Buffer.concat([prefix(body.length), body]);
}

interface Ended {
  status: number | undefined;
  wardenCode: string | undefined;
  rstCode: number | undefined;
}

/** A call to `path` that sends `sent` and holds the rest back (no half-close unless `end`); resolves when its stream closes. */
function call(path: string, sent: Buffer, headers: Record<string, string>, end = false): Promise<Ended> {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  let fields: http2.IncomingHttpHeaders = {};
  stream.on('response', (h) => (fields = { ...fields, ...h }));
  stream.on('trailers', (t) => (fields = { ...fields, ...t }));
  stream.on('error', () => undefined);
  stream.resume();
  if (end) stream.end(sent);
  else stream.write(sent);
  return new Promise<Ended>((resolve) =>
    stream.on('close', () => {
      const status = fields['grpc-status'];
      resolve({ status: status === undefined ? undefined : Number(status), wardenCode: fields['warden-code'] as string | undefined, rstCode: stream.rstCode });
    }),
  );
}

const COMPLETE = '/warden.v1.PromptGateway/Complete';
const STREAM = '/warden.v1.PromptGateway/StreamComplete';
const CALLER = { kind: 'kubernetes', namespace: 'labs', service_account: 'raw-bot' };

describe('gRPC: a message over max_body_bytes is refused from its prefix, not once it is whole', () => {
  for (const [what, path, declared] of [
    ['Complete, 3 × the limit (under grpc-js ceiling)', COMPLETE, 3 * MAX_BODY_BYTES],
    ['StreamComplete, one byte over the limit', STREAM, MAX_BODY_BYTES + 1],
  ] as const) {
    it(`${what}: sent in part, it is refused payload_too_large at once, closed unread, audited once with its caller`, async () => {
      const token = await w.signer.token('labs', 'raw-bot');
      const records = w.audit().length;
      const before = await requestsTotal('payload_too_large');
      const calls = upstream.calls.length;
      // The prefix and 8 KB of the body; the rest is never sent.
      const end = await call(path, Buffer.concat([prefix(declared), Buffer.alloc(8192)]), { authorization: `Bearer ${token}` });
      expect(end).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, wardenCode: 'payload_too_large' });
      // Closed unread after its status (RST_STREAM NO_ERROR): nothing of the rest is waited for.
      expect(end.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
      await eventually(() => w.audit().length > records);
      expect(w.audit().slice(records)).toMatchObject([{ principal: CALLER, status: 'error', error_code: 'payload_too_large', stream: path === STREAM }]);
      expect(await requestsTotal('payload_too_large')).toBe(before + 1);
      expect(await requestsTotal('request_timeout')).toBe(0);
      expect(upstream.calls.length).toBe(calls);
    });
  }

  it('a second message whose prefix is over the limit, after a first one within it, is refused the same way', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const records = w.audit().length;
    const end = await call(COMPLETE, Buffer.concat([messageOf(100), prefix(2 * MAX_BODY_BYTES), Buffer.alloc(4096)]), { authorization: `Bearer ${token}` });
    expect(end).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, wardenCode: 'payload_too_large' });
    await eventually(() => w.audit().length > records);
    expect(w.audit().slice(records)).toMatchObject([{ principal: CALLER, error_code: 'payload_too_large' }]);
  });

  it('a message of exactly max_body_bytes is read whole and served; one byte more sent whole is payload_too_large', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const records = w.audit().length;
    const at = await call(COMPLETE, messageOf(MAX_BODY_BYTES), { authorization: `Bearer ${token}` }, true);
    expect(at).toMatchObject({ status: grpc.status.OK });
    const over = await call(COMPLETE, messageOf(MAX_BODY_BYTES + 1), { authorization: `Bearer ${token}` }, true);
    expect(over).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, wardenCode: 'payload_too_large' });
    await eventually(() => w.audit().length >= records + 2);
    expect(w.audit().slice(records)).toMatchObject([
      { principal: CALLER, status: 'ok' },
      { principal: CALLER, error_code: 'payload_too_large' },
    ]);
  });

  it('without valid credentials the same call is UNAUTHENTICATED (credentials come first), its message unread', async () => {
    const records = w.audit().length;
    const end = await call(COMPLETE, Buffer.concat([prefix(3 * MAX_BODY_BYTES), Buffer.alloc(8192)]), { authorization: 'Bearer not-a-jwt' });
    expect(end).toMatchObject({ status: grpc.status.UNAUTHENTICATED, wardenCode: 'unauthenticated' });
    await eventually(() => w.audit().length > records);
    expect(w.audit().slice(records)).toMatchObject([{ principal: null, error_code: 'unauthenticated' }]);
  });

  it('grpc-js clients sending a message over the limit whole get payload_too_large (with its status details), unary and streaming', async () => {
    const token = await w.signer.token('labs', 'raw-bot');
    const client = gatewayClient(w.addresses.grpc);
    try {
      const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(3 * MAX_BODY_BYTES) }] };
      const unary = await unaryCall(client, 'Complete', request, bearerMetadata(token)).then(
        () => undefined,
        (err: grpc.ServiceError) => err,
      );
      expect(unary).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
      expect(unary!.metadata.get('warden-code')).toEqual(['payload_too_large']);
      expect(rpcStatus(unary!)?.errorInfo?.reason).toBe('payload_too_large');
      const streamed = await streamOutcome(client.StreamComplete(request, bearerMetadata(token)));
      expect(streamed.got).toEqual([]);
      expect(streamed.err).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
      expect(streamed.err.metadata.get('warden-code')).toEqual(['payload_too_large']);
    } finally {
      client.close();
    }
  });

  it('a health Check whose message prefix is over the limit is refused RESOURCE_EXHAUSTED at once too', async () => {
    const end = await call('/grpc.health.v1.Health/Check', Buffer.concat([prefix(2 * MAX_BODY_BYTES), Buffer.alloc(4096)]), {});
    expect(end).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, wardenCode: 'payload_too_large' });
  });
});
