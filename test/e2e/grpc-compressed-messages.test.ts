/**
 * A compressed gRPC request message (`grpc-encoding` other than `identity`). grpc-js inflates such a
 * message as it arrives, before any handler and so before the credentials are checked, up to its
 * receive ceiling (4 × max_body_bytes): a caller without credentials could make Warden inflate
 * megabytes for each few kilobytes it sends (a decompression bomb). Warden refuses the call from
 * its headers instead, before a byte of its message is read, as HTTP refuses a compressed body.
 * Raw HTTP/2 sends the frames as written.
 */
import http2 from 'node:http2';
import { deflateSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePromptRequest, rpcStatus } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let session: http2.ClientHttp2Session;
let auth: Record<string, string>;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
  auth = { authorization: `Bearer ${await w.signer.token('support', 'ticket-bot')}` };
  session = http2.connect(`http://${w.addresses.grpc}`);
  session.on('error', () => undefined);
});

afterAll(async () => {
  session?.destroy();
  await w?.close();
  await upstream?.close();
});

/** One gRPC message frame, its compressed flag set when `compressed`. */
function frame(body: Buffer, compressed: boolean): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(compressed ? 1 : 0, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

interface Ended {
  status: number;
  fields: http2.IncomingHttpHeaders;
  /** The response's message bytes. */
  data: number;
}

/** A call to `path` sending `body` in one frame and half-closing; resolves when its stream closes. */
function call(path: string, body: Buffer, compressed: boolean, headers: Record<string, string>): Promise<Ended> {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  let fields: http2.IncomingHttpHeaders = {};
  let data = 0;
  stream.on('response', (h) => (fields = { ...fields, ...h }));
  stream.on('trailers', (t) => (fields = { ...fields, ...t }));
  stream.on('data', (d: Buffer) => (data += d.length));
  stream.on('error', () => undefined);
  stream.end(frame(body, compressed));
  return new Promise((resolve) => stream.on('close', () => resolve({ status: Number(fields['grpc-status']), fields, data })));
}

const RENDER = '/warden.v1.PromptGateway/Render';
const COMPLETE = '/warden.v1.PromptGateway/Complete';
const REQUEST = encodePromptRequest({ model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: 'hello' } });

describe('a gRPC call whose request message is compressed', () => {
  it('is UNIMPLEMENTED unsupported_media_type at grpc-encoding, audited, nothing upstream; the trailers say identity is what Warden takes', async () => {
    const before = w.audit().length;
    const calls = upstream.calls.length;
    const cases: Array<[string, Buffer]> = [
      ['gzip', gzipSync(REQUEST)],
      ['deflate', deflateSync(REQUEST)],
      ['GZIP', gzipSync(REQUEST)],
      ['br', gzipSync(REQUEST)],
    ];
    for (const [encoding, body] of cases) {
      const end = await call(COMPLETE, body, true, { ...auth, 'grpc-encoding': encoding });
      expect(end.status, encoding).toBe(grpc.status.UNIMPLEMENTED);
      expect(end.fields['warden-code'], encoding).toBe('unsupported_media_type');
      expect(end.fields['warden-param'], encoding).toBe('grpc-encoding');
      expect(end.fields['grpc-accept-encoding'], encoding).toBe('identity');
      expect(decodeURIComponent(String(end.fields['grpc-message']))).toBe('the request message is compressed (grpc-encoding): Warden does not decompress messages; send them uncompressed');
      const details = rpcStatus({ metadata: grpc.Metadata.fromHttp2Headers(end.fields) });
      expect(details).toMatchObject({ code: grpc.status.UNIMPLEMENTED, errorInfo: { reason: 'unsupported_media_type', metadata: { param: 'grpc-encoding' } } });
    }
    expect(upstream.calls.length).toBe(calls);
    await eventually(() => w.audit().length - before >= cases.length);
    expect(w.audit().slice(before).map((r) => [r.action, r.status, r.error_code])).toEqual(cases.map(() => ['prompt.execute', 'error', 'unsupported_media_type']));
  });

  it('is refused before its message is inflated: a bomb with bad credentials is not grpc-js\'s "decompresses to a size larger than", nor UNAUTHENTICATED', async () => {
    // 16 MiB of zeros in ~16 KB: past grpc-js's ceiling (4 × 64 KiB) once inflated.
    const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024));
    const end = await call(COMPLETE, bomb, true, { authorization: 'Bearer not-a-token', 'grpc-encoding': 'gzip' });
    expect(end.status).toBe(grpc.status.UNIMPLEMENTED);
    expect(end.fields['warden-code']).toBe('unsupported_media_type');
  });

  it('grpc-encoding identity, or none, is served as before', async () => {
    for (const headers of [{ ...auth, 'grpc-encoding': 'identity' }, auth]) {
      const end = await call(RENDER, REQUEST, false, headers);
      expect(end.status).toBe(grpc.status.OK);
      expect(end.data).toBeGreaterThan(0);
    }
  });

  it('a health Check is refused the same way (it has no credentials to wait for); uncompressed it answers', async () => {
    const check = '/grpc.health.v1.Health/Check';
    const refused = await call(check, gzipSync(Buffer.alloc(1024 * 1024)), true, { 'grpc-encoding': 'gzip' });
    expect(refused.status).toBe(grpc.status.UNIMPLEMENTED);
    expect(refused.fields['warden-code']).toBe('unsupported_media_type');
    const served = await call(check, Buffer.alloc(0), false, {});
    expect(served.status).toBe(grpc.status.OK);
  });
});
