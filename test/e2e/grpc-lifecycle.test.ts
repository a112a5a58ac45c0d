/**
 * The life of a gRPC call around its handler: grpc-js runs a handler only once the request message
 * and the client's half-close have arrived, so what happens before (a call that never half-closes,
 * a call grpc-js refuses itself) and after (health Watch streams at shutdown) is Warden's door
 * (src/server/grpc-door.ts) and health service to account for. Raw HTTP/2 sessions send what a
 * grpc-js client would not.
 */
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, encodePromptRequest, gatewayClient, healthClient } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

/** One gRPC message frame (uncompressed unless `compressed`). */
function frame(body: Buffer, compressed = false): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(compressed ? 1 : 0, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

interface RawEnd {
  /** grpc-status from the trailers (or a trailers-only answer); undefined when none came. */
  status: number | undefined;
  wardenCode: string | undefined;
  message: string | undefined;
  /** The RST_STREAM code the stream closed with (NO_ERROR: closed after a complete answer). */
  rstCode: number | undefined;
}

/**
 * A raw call on `session`: sends `frames`, then half-closes when `halfClose`. Resolves when the
 * stream closes, with the status Warden sent. With `read` false the client reads nothing of the
 * answer (its stream stays paused).
 */
function rawCall(session: http2.ClientHttp2Session, method: string, frames: Buffer[], halfClose: boolean, headers: Record<string, string> = {}, read = true) {
  const stream = session.request({
    ':method': 'POST',
    // A method of the gateway, or a whole path (`/other.v1.Service/Method`).
    ':path': method.startsWith('/') ? method : `/warden.v1.PromptGateway/${method}`,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  let fields: http2.IncomingHttpHeaders = {};
  stream.on('response', (h) => (fields = { ...fields, ...h }));
  stream.on('trailers', (t) => (fields = { ...fields, ...t }));
  stream.on('error', () => undefined);
  if (read) stream.resume();
  for (const f of frames) stream.write(f);
  if (halfClose) stream.end();
  const ended = new Promise<RawEnd>((resolve) =>
    stream.on('close', () => {
      const status = fields['grpc-status'];
      resolve({
        status: status === undefined ? undefined : Number(status),
        wardenCode: fields['warden-code'] as string | undefined,
        message: fields['grpc-message'] === undefined ? undefined : decodeURIComponent(String(fields['grpc-message'])),
        rstCode: stream.rstCode,
      });
    }),
  );
  return { stream, ended };
}

function connect(address: string): http2.ClientHttp2Session {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined);
  return session;
}

describe('a call that sends its message but never half-closes', () => {
  let w: WardenFixture;
  let token: string;
  // The held calls' places must still be taken when the probe arrives: at 1 s, a loaded machine
  // (polling the metrics, connecting a client) was sometimes slower than that, and the probe served.
  const TIMEOUT_MS = 3000;

  beforeAll(async () => {
    w = await startWarden({ upstreamUrl: upstream.url, limits: `limits: { client_timeout_ms: ${TIMEOUT_MS}, max_in_flight: 2, shutdown_grace_ms: 2000 }` });
    token = await w.signer.token('support', 'ticket-bot');
  });

  afterAll(async () => {
    await w?.close();
  });

  it('counts against max_in_flight from its arrival and ends with request_timeout after client_timeout_ms, audited', { timeout: 20_000 }, async () => {
    const before = w.audit().length;
    const session = connect(w.addresses.grpc);
    const client = gatewayClient(w.addresses.grpc);
    try {
      const auth = { authorization: `Bearer ${token}` };
      const message = frame(Buffer.alloc(0));
      // Connected before the held calls, so the probe's call is all that is left to do then.
      await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 20_000, (e: Error | undefined) => (e ? reject(e) : resolve())));
      const started = Date.now();
      const held = [rawCall(session, 'Render', [message], false, auth), rawCall(session, 'StreamComplete', [message], false, auth)];
      await eventually(async () => (await inFlight(w)) === 2);

      // Both places are taken by calls whose request has not finished arriving.
      const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
        client.Render({ model: 'echo' }, bearerMetadata(token), (e: grpc.ServiceError | null) => (e ? resolve(e) : reject(new Error('expected an error')))),
      );
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.metadata.get('warden-code')).toEqual(['overloaded']);

      const ends = await Promise.all(held.map((c) => c.ended));
      const waited = Date.now() - started;
      for (const end of ends) {
        expect(end).toMatchObject({ status: grpc.status.DEADLINE_EXCEEDED, wardenCode: 'request_timeout' });
        expect(end.message).toContain(`client_timeout_ms (${TIMEOUT_MS} ms)`);
      }
      // Not early; and without the deadline nothing else ends a call whose request never finishes
      // arriving (the message names the deadline that did), so the test would hang instead.
      expect(waited).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
      await eventually(() => w.audit().slice(before).filter((r) => r.error_code === 'request_timeout').length === 2);
      const records = w.audit().slice(before);
      expect(records.filter((r) => r.error_code === 'request_timeout').map((r) => [r.action, r.stream]).sort()).toEqual([
        ['prompt.execute', true],
        ['prompt.render', false],
      ]);
      expect(records.filter((r) => r.error_code === 'overloaded')).toHaveLength(1);
      // The places are free again.
      await eventually(async () => (await inFlight(w)) === 0);
    } finally {
      client.close();
      session.close();
    }
  });
});

/** The `warden_requests_in_flight` gauge: the places taken under max_in_flight. */
async function inFlight(w: WardenFixture): Promise<number> {
  const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('warden_requests_in_flight ') || l.startsWith('warden_requests_in_flight{'));
  return Number(line?.slice(line.lastIndexOf(' ') + 1));
}

describe('calls grpc-js answers before any handler runs', () => {
  let w: WardenFixture;
  let token: string;

  beforeAll(async () => {
    w = await startWarden({ upstreamUrl: upstream.url });
    token = await w.signer.token('support', 'ticket-bot');
  });

  afterAll(async () => {
    await w?.close();
  });

  it('no request message or two are INVALID_ARGUMENT invalid_request; a compressed message and a bad grpc-timeout are counted and audited', { timeout: 20_000 }, async () => {
    const before = w.audit().length;
    const session = connect(w.addresses.grpc);
    try {
      const auth = { authorization: `Bearer ${token}` };
      const empty = frame(Buffer.alloc(0));
      const none = await rawCall(session, 'Complete', [], true, auth).ended;
      const two = await rawCall(session, 'StreamComplete', [empty, empty], true, auth).ended;
      for (const end of [none, two]) expect(end).toMatchObject({ status: grpc.status.INVALID_ARGUMENT, wardenCode: 'invalid_request' });

      // A compressed message is refused from the call's headers, never inflated (whether it would
      // inflate or not: grpc-js's own answers were INTERNAL and UNIMPLEMENTED).
      const notGzip = await rawCall(session, 'Complete', [frame(Buffer.from('not gzip at all'), true)], true, { ...auth, 'grpc-encoding': 'gzip' }).ended;
      const brotli = await rawCall(session, 'Complete', [frame(gzipSync(Buffer.alloc(0)), true)], true, { ...auth, 'grpc-encoding': 'br' }).ended;
      for (const end of [notGzip, brotli]) expect(end).toMatchObject({ status: grpc.status.UNIMPLEMENTED, wardenCode: 'unsupported_media_type' });
      // grpc-js answers this below every interceptor, with its own status (no warden-code).
      const badTimeout = await rawCall(session, 'Render', [empty], true, { ...auth, 'grpc-timeout': 'abc' }).ended;
      expect(badTimeout.status).toBe(grpc.status.INTERNAL);

      await eventually(() => w.audit().length - before >= 5);
      const records = w.audit().slice(before);
      expect(records.map((r) => r.error_code)).toEqual(['invalid_request', 'invalid_request', 'unsupported_media_type', 'unsupported_media_type', 'invalid_request']);
      expect(records.every((r) => r.status === 'error')).toBe(true);
      // The credentials are checked from the call's headers: a call refused after them (its
      // messages, its grpc-timeout) names its caller; a compressed one is refused before them.
      const caller = { kind: 'kubernetes', namespace: 'support', service_account: 'ticket-bot' };
      expect(records.map((r) => r.principal)).toMatchObject([caller, caller, null, null, caller]);
    } finally {
      session.close();
    }
  });
});

describe('calls grpc-js answers before their handler, from a client that has not half-closed', () => {
  it('are closed once answered (a second message, an expired grpc-timeout, a message over the ceiling, a compressed message): shutdown drains at once', { timeout: 20_000 }, async () => {
    const w = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { max_body_bytes: 65536, client_timeout_ms: 10000, shutdown_grace_ms: 3000 }' });
    const session = connect(w.addresses.grpc);
    try {
      const before = w.audit().length;
      const auth = { authorization: `Bearer ${await w.signer.token('support', 'ticket-bot')}` };
      const empty = frame(Buffer.alloc(0));
      // Only the head of a message that declares more than grpc-js's ceiling (4 × max_body_bytes).
      const overCeiling = Buffer.alloc(5);
      overCeiling.writeUInt32BE(4 * 65536 + 1, 1);
      const calls = [
        rawCall(session, 'Complete', [empty, empty], false, auth),
        rawCall(session, 'Render', [empty], false, { ...auth, 'grpc-timeout': '200m' }),
        rawCall(session, 'StreamComplete', [overCeiling], false, auth),
        rawCall(session, 'Complete', [frame(gzipSync(Buffer.alloc(0)), true)], false, { ...auth, 'grpc-encoding': 'br' }),
        rawCall(session, 'Complete', [frame(Buffer.from('not gzip at all'), true)], false, { ...auth, 'grpc-encoding': 'gzip' }),
      ];
      // A call left open would never end here: the test's timeout is what catches that.
      const ends = await Promise.all(calls.map((c) => c.ended));
      expect(ends).toMatchObject([
        { status: grpc.status.INVALID_ARGUMENT, wardenCode: 'invalid_request', rstCode: http2.constants.NGHTTP2_NO_ERROR },
        { status: grpc.status.DEADLINE_EXCEEDED, rstCode: http2.constants.NGHTTP2_NO_ERROR },
        { status: grpc.status.RESOURCE_EXHAUSTED, rstCode: http2.constants.NGHTTP2_NO_ERROR },
        { status: grpc.status.UNIMPLEMENTED, wardenCode: 'unsupported_media_type', rstCode: http2.constants.NGHTTP2_NO_ERROR },
        { status: grpc.status.UNIMPLEMENTED, wardenCode: 'unsupported_media_type', rstCode: http2.constants.NGHTTP2_NO_ERROR },
      ]);
      await eventually(() => w.audit().length - before >= 5);
      // grpc-js's DEADLINE_EXCEEDED is the client's own deadline: it gave up (as over HTTP).
      expect(w.audit().slice(before).map((r) => r.error_code).sort()).toEqual(['cancelled', 'invalid_request', 'payload_too_large', 'unsupported_media_type', 'unsupported_media_type']);
      await eventually(async () => (await inFlight(w)) === 0);

      // Nothing is left open to hold the graceful close: a call left open would hold it until its
      // client_timeout_ms (10 s), past the grace period (3 s), and the outcome would be 'timeout'.
      const result = await w.runtime.shutdown('test');
      expect(result.outcome).toBe('drained');
    } finally {
      session.destroy();
      await w.close();
    }
  });

  it('a call to a method Warden does not serve, from a client that has not half-closed, is closed once answered UNIMPLEMENTED: it cannot stay open and hold the shutdown', { timeout: 20_000 }, async () => {
    const w = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { max_body_bytes: 65536, client_timeout_ms: 10000, shutdown_grace_ms: 3000 }' });
    const session = connect(w.addresses.grpc);
    try {
      const before = w.audit().length;
      // Neither is under max_in_flight or client_timeout_ms: left open, one would hold the
      // graceful close for the whole grace (3 s), and a client could keep any number open.
      const calls = [
        rawCall(session, '/other.v1.Service/Method', [], false),
        rawCall(session, '/other.v1.Service/Method', [frame(Buffer.alloc(0))], false),
        rawCall(session, '/warden.v1.PromptGateway/Nope', [frame(Buffer.alloc(0))], false),
        rawCall(session, '/grpc.health.v1.Health/List', [frame(Buffer.alloc(0))], false),
      ];
      const ends = await Promise.all(calls.map((c) => c.ended));
      expect(ends).toEqual(calls.map(() => ({ status: grpc.status.UNIMPLEMENTED, wardenCode: 'not_found', message: expect.any(String), rstCode: http2.constants.NGHTTP2_NO_ERROR })));
      await eventually(() => w.audit().length - before >= calls.length);
      expect(w.audit().slice(before).map((r) => r.error_code)).toEqual(calls.map(() => 'not_found'));
      expect((await w.runtime.shutdown('test')).outcome).toBe('drained');
    } finally {
      session.destroy();
      await w.close();
    }
  });

  it('a client that cancels before its request message is complete is audited cancelled, not invalid_request', { timeout: 20_000 }, async () => {
    const w = await startWarden({ upstreamUrl: upstream.url });
    const session = connect(w.addresses.grpc);
    try {
      const before = w.audit().length;
      const auth = { authorization: `Bearer ${await w.signer.token('support', 'ticket-bot')}` };
      // Headers only, or part of a message (its head declares 100 bytes, 10 follow).
      const part = Buffer.concat([Buffer.from([0, 0, 0, 0, 100]), Buffer.alloc(10)]);
      const sent: Array<[string, Buffer[]]> = [
        ['Complete', []],
        ['StreamComplete', []],
        ['Render', []],
        ['Complete', [part]],
        ['StreamComplete', [part]],
      ];
      for (const [method, frames] of sent) {
        const call = rawCall(session, method, frames, false, auth);
        await new Promise((resolve) => setTimeout(resolve, 30));
        call.stream.close(http2.constants.NGHTTP2_CANCEL);
        await call.ended;
      }
      await eventually(() => w.audit().length - before >= sent.length);
      const records = w.audit().slice(before);
      expect(records.map((r) => r.error_code)).toEqual(sent.map(() => 'cancelled'));
      await eventually(async () => (await inFlight(w)) === 0);
    } finally {
      session.destroy();
      await w.close();
    }
  });
});

describe('a unary answer the client does not read', () => {
  it('is reset limits.upstream_timeout_ms after it was answered (audited ok); shutdown drains at once', { timeout: 30_000 }, async () => {
    // Long enough for an 8 MB answer to arrive and be redacted inside it on a loaded machine (at
    // 1 s, and at 3 s with both calls at once, an answer came too late there: upstream_timeout).
    const DEADLINE_MS = 4000;
    const w = await startWarden({
      upstreamUrl: upstream.url,
      limits: `limits: { client_timeout_ms: 10000, upstream_timeout_ms: ${DEADLINE_MS}, max_in_flight: 4, shutdown_grace_ms: 3000 }`,
    });
    const session = connect(w.addresses.grpc);
    // Larger than every window and buffer between Warden and the client: it cannot go out unread.
    upstream.mode = 'scripted';
    upstream.script = { text: 'y'.repeat(8 * 1024 * 1024) };
    try {
      const before = w.audit().length;
      const auth = { authorization: `Bearer ${await w.signer.token('labs', 'raw-bot')}` };
      const message = frame(encodePromptRequest({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }));
      // One after the other, each with the time it was answered: its audit record's, stamped
      // before its handler ends, where its delivery deadline starts. (Not a clock read here: after
      // polling for the record it could come late on a loaded machine, and the wait look short.)
      // The second is answered while the first's answer waits: the deadlines of two are kept.
      const calls: Array<{ ended: Promise<{ rstCode: number | undefined; at: number }>; answered: number }> = [];
      for (let i = 0; i < 2; i++) {
        const call = rawCall(session, 'Complete', [message], true, auth, false);
        const ended = call.ended.then((end) => ({ rstCode: end.rstCode, at: Date.now() }));
        await eventually(() => w.audit().length - before > i);
        const record = w.audit()[before + i]!;
        expect(record).toMatchObject({ status: 'ok', error_code: null });
        calls.push({ ended, answered: Date.parse(record.time) });
      }
      // Its place is back at once; its delivery has a whole deadline from the answer on.
      await eventually(async () => (await inFlight(w)) === 0);
      for (const { ended, answered } of calls) {
        const end = await ended;
        expect(end.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
        // A few ms of slack: the record's Date clock and the deadline's monotonic one may drift apart.
        expect(end.at - answered).toBeGreaterThanOrEqual(DEADLINE_MS - 5);
      }
      expect(w.audit()).toHaveLength(before + 2);

      // A client that reads gets all of it.
      const reader = connect(w.addresses.grpc);
      try {
        const read = rawCall(reader, 'Complete', [message], true, auth);
        let got = 0;
        read.stream.on('data', (d: Buffer) => (got += d.length));
        expect(await read.ended).toMatchObject({ status: grpc.status.OK, rstCode: http2.constants.NGHTTP2_NO_ERROR });
        expect(got).toBeGreaterThan(8 * 1024 * 1024);
      } finally {
        reader.destroy();
      }

      // An unread answer left open would hold the drain past the grace period: 'timeout'.
      const result = await w.runtime.shutdown('test');
      expect(result.outcome).toBe('drained');
    } finally {
      upstream.mode = 'ok';
      session.destroy();
      await w.close();
    }
  });
});

describe('health Watch at shutdown', () => {
  it('watchers are told NOT_SERVING and their streams end, so an idle server drains at once', { timeout: 20_000 }, async () => {
    const w = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { shutdown_grace_ms: 4000 }' });
    const health = healthClient(w.addresses.grpc);
    try {
      const statuses: string[] = [];
      const unknown: string[] = [];
      const watch = health.Watch({ service: '' });
      const other = health.Watch({ service: 'no.such.Service' });
      watch.on('data', (m: { status: string }) => statuses.push(m.status));
      other.on('data', (m: { status: string }) => unknown.push(m.status));
      const ends = [watch, other].map((c) => new Promise<number>((resolve) => c.on('status', (s: grpc.StatusObject) => resolve(s.code))));
      for (const c of [watch, other]) c.on('error', () => undefined);
      await eventually(() => statuses.length > 0 && unknown.length > 0);

      // A Watch left open would hold the drain for good: the outcome would be 'timeout' (4 s).
      const result = await w.runtime.shutdown('test');
      expect(result.outcome).toBe('drained');
      expect(await Promise.all(ends)).toEqual([grpc.status.OK, grpc.status.OK]);
      expect(statuses).toEqual(['SERVING', 'NOT_SERVING']);
      expect(unknown).toEqual(['SERVICE_UNKNOWN']);
    } finally {
      health.close();
      await w.close();
    }
  });
});

describe('health calls are bounded too', () => {
  /** A raw health call on `session` (`grpc.health.v1.HealthCheckRequest` with an empty service). */
  function healthCall(session: http2.ClientHttp2Session, method: 'Check' | 'Watch', halfClose: boolean) {
    const stream = session.request({ ':method': 'POST', ':path': `/grpc.health.v1.Health/${method}`, 'content-type': 'application/grpc', te: 'trailers' });
    let fields: http2.IncomingHttpHeaders = {};
    let messages = 0;
    stream.on('response', (h) => (fields = { ...fields, ...h }));
    stream.on('trailers', (t) => (fields = { ...fields, ...t }));
    stream.on('data', () => messages++);
    stream.on('error', () => undefined);
    stream.write(frame(Buffer.alloc(0)));
    if (halfClose) stream.end();
    const ended = new Promise<RawEnd>((resolve) =>
      stream.on('close', () => {
        const status = fields['grpc-status'];
        resolve({ status: status === undefined ? undefined : Number(status), wardenCode: fields['warden-code'] as string | undefined, message: undefined, rstCode: stream.rstCode });
      }),
    );
    return { stream, ended, messages: () => messages };
  }

  it('at most limits.max_connections Checks and as many Watches at once; open Watches never leave a Check refused; a Check that never half-closes ends after client_timeout_ms; neither is audited; shutdown drains at once', { timeout: 20_000 }, async () => {
    const w = await startWarden({ upstreamUrl: upstream.url, limits: 'limits: { max_connections: 2, client_timeout_ms: 1000, shutdown_grace_ms: 4000 }' });
    const session = connect(w.addresses.grpc);
    const client = healthClient(w.addresses.grpc);
    const check = () =>
      new Promise<{ status: string }>((resolve, reject) =>
        client.Check({ service: '' }, (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res))),
      );
    try {
      const before = w.audit().length;
      // Two watchers on one connection take every Watch place: the next Watch is refused...
      const watches = [healthCall(session, 'Watch', true), healthCall(session, 'Watch', true)];
      await eventually(() => watches.every((c) => c.messages() > 0));
      expect(await healthCall(session, 'Watch', true).ended).toMatchObject({ status: grpc.status.UNAVAILABLE, wardenCode: 'overloaded' });
      // ...but a probe's Check, from another connection, is still answered.
      expect((await check()).status).toBe('SERVING');

      // Two Checks that never half-close hold the Check places until their deadline.
      const held = [healthCall(session, 'Check', false), healthCall(session, 'Check', false)];
      // Calls on one session reach the server in order: the held Checks are in before the next one.
      expect(await healthCall(session, 'Check', true).ended).toMatchObject({ status: grpc.status.UNAVAILABLE, wardenCode: 'overloaded' });
      for (const h of held) {
        expect(await h.ended).toMatchObject({ status: grpc.status.DEADLINE_EXCEEDED, wardenCode: 'request_timeout', rstCode: http2.constants.NGHTTP2_NO_ERROR });
      }
      // Their places are back: a Check is answered.
      expect((await check()).status).toBe('SERVING');

      // A Check still sending its request when the drain begins does not hold it: it ends at once.
      // (The two take the last places: the call after them is refused, which shows they arrived.)
      const pending = [healthCall(session, 'Check', false), healthCall(session, 'Check', false)];
      expect(await healthCall(session, 'Check', true).ended).toMatchObject({ status: grpc.status.UNAVAILABLE, wardenCode: 'overloaded' });
      const result = await w.runtime.shutdown('test');
      expect(result.outcome).toBe('drained');
      for (const p of pending) expect(await p.ended).toMatchObject({ status: grpc.status.UNAVAILABLE, wardenCode: 'shutting_down' });
      expect(await Promise.all(watches.map((c) => c.ended))).toMatchObject([{ status: grpc.status.OK }, { status: grpc.status.OK }]);
      expect(w.audit()).toHaveLength(before);
    } finally {
      client.close();
      session.destroy();
      await w.close();
    }
  });
});
