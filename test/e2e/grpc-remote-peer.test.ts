/**
 * The `dev` identity over gRPC when one Warden serves gRPC on TCP (all interfaces) and on a Unix
 * socket: a caller from a non-loopback address must never count as local, not even one whose
 * connection is gone by the time its call is handled (grpc-js then reports its peer as `unknown`,
 * as it does for a Unix socket peer).
 */
import http2 from 'node:http2';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';
import { gatewayClient, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

/**
 * This host's first non-loopback IPv4 address. The cases need one (a caller that is not local);
 * a host without one fails them with that said, rather than skipping them (README, Development).
 */
function remoteAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

const REMOTE = remoteAddress();
const REQUEST = { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-7', customer_message: 'hi' } };

/** A gRPC request message as one length-prefixed frame, encoded from the published proto. */
function requestFrame(): Buffer {
  const root = protobuf.loadSync(join(REPO, 'proto', 'warden', 'v1', 'gateway.proto'));
  const type = root.lookupType('warden.v1.PromptRequest');
  const msg = type.encode(type.fromObject(REQUEST)).finish();
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  Buffer.from(msg).copy(frame, 5);
  return frame;
}

/** Sends a whole call to `method` over raw HTTP/2 and drops the connection at once, unanswered. */
function sendAndDrop(authority: string, method: string, frame: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://${authority}`);
    session.on('error', () => resolve());
    session.on('connect', () => {
      const stream = session.request({ ':method': 'POST', ':path': `/warden.v1.PromptGateway/${method}`, 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => undefined);
      stream.end(frame);
      session.destroy();
      resolve();
    });
  });
}

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    methods: '[dev]\n  dev: { principal: { namespace: support, service_account: ticket-bot } }',
    listen: 'listen: { http: 127.0.0.1:0, grpc: "0.0.0.0:0", admin: 127.0.0.1:0, grpc_socket: warden-grpc.sock }',
  });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

describe('dev identity, gRPC on TCP and a Unix socket, caller from a non-loopback address', () => {
  const port = () => Number(w.addresses.grpc.split(':').at(-1));

  it('runs on a host with a non-loopback IPv4 address', () => {
    expect(REMOTE, 'this test needs a non-loopback IPv4 address to call from').toBeDefined();
  });

  it('an ordinary call is refused as unauthenticated', async () => {
    const client = gatewayClient(`${REMOTE}:${port()}`);
    try {
      await expect(unaryCall(client, 'Render', REQUEST)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      client.close();
    }
  });

  it('a call whose connection is dropped right after sending is refused, never run as the dev principal', async () => {
    const before = w.audit().length;
    const frame = requestFrame();
    const calls = [...Array(10).fill('Render'), ...Array(5).fill('Complete')] as string[];
    for (const method of calls) await sendAndDrop(`${REMOTE}:${port()}`, method, frame);
    // A call that arrived leaves one record: refused as unauthenticated when its handler
    // authenticated it, or cancelled when the drop was seen first (at the door, or before the
    // authenticate stage). Never the dev principal. (A connection dropped before its headers were
    // read is no call: hence at most, and a bounded wait for, one record per call.)
    const deadline = Date.now() + 2_000;
    while (w.audit().length - before < calls.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const records = w.audit().slice(before);
    expect(records.length).toBeGreaterThan(0);
    expect(records.length).toBeLessThanOrEqual(calls.length);
    for (const r of records) {
      expect(r.principal).toBeNull();
      expect(['unauthenticated', 'cancelled']).toContain(r.error_code);
    }
  });

  it('the Unix socket peer is still the dev principal', async () => {
    const client = gatewayClient(`unix:${w.addresses.grpcSocket}`);
    try {
      const res = await unaryCall(client, 'Render', REQUEST);
      expect(res.messages.length).toBeGreaterThan(0);
      await eventually(() => w.audit().at(-1)?.action === 'prompt.render');
      expect(w.audit().at(-1)!.principal).toMatchObject({ kind: 'dev', namespace: 'support', service_account: 'ticket-bot' });
    } finally {
      client.close();
    }
  });
});
