/**
 * A gRPC request message is decoded only once the call's credentials passed: grpc-js runs the
 * request deserializer as the message arrives, before the handler, so Warden's deserializer only
 * walks the wire bytes (UTF-8, wire types, the field count) and the handler decodes after
 * authenticating. A caller without valid credentials costs the walk, never the decode (which
 * builds an object per message entry: 100,000 empty entries took 0.3 s and more).
 *
 * Seen structurally, not by time: the decoder of Warden's loaded proto (the one the server wraps,
 * in this process) is counted, and a message past limits.max_json_values, which the decode would
 * refuse, is refused UNAUTHENTICATED with a bad token. The credentials are checked from the call's
 * headers (the door), so what the walk refuses comes after them too.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProtos, lookupService } from '../../src/server/proto.js';
import { bearerMetadata, encodePromptRequest, gatewayClient, rpcStatus, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;
let client: any;
/** Decodes of a gateway request message by the server so far. */
let decodes = 0;

const MAX_VALUES = 65536;

beforeAll(async () => {
  // Before the server is made: its deserializers wrap the decoders they find here.
  for (const method of Object.values(lookupService(loadProtos(), 'warden.v1.PromptGateway').service)) {
    const decode = method.requestDeserialize;
    method.requestDeserialize = (bytes: Buffer) => {
      decodes++;
      return decode(bytes);
    };
  }
  upstream = await startUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    limits: `limits: { max_body_bytes: 1048576, max_json_values: ${MAX_VALUES}, client_timeout_ms: 10000, upstream_timeout_ms: 5000, shutdown_grace_ms: 2000 }`,
  });
  token = await w.signer.token('labs', 'raw-bot');
  client = gatewayClient(w.addresses.grpc);
});

afterAll(async () => {
  client?.close();
  await w?.close();
  await upstream?.close();
});

/** A Complete call of `bytes` as they are (no client-side encoding): how it ended. */
function rawComplete(bytes: Buffer, metadata: grpc.Metadata): Promise<grpc.ServiceError | undefined> {
  return new Promise((resolve) => {
    const raw = new grpc.Client(w.addresses.grpc, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    raw.makeUnaryRequest('/warden.v1.PromptGateway/Complete', identity, identity, bytes, metadata, (err) => {
      raw.close();
      resolve(err ?? undefined);
    });
  });
}

const emptyEntries = (n: number) => ({ model: 'gpt-4o-mini', messages: Array.from({ length: n }, () => ({})) });

describe('gRPC: the request message is decoded after the credentials', () => {
  it('a large message with a bad token is UNAUTHENTICATED and never decoded; audited once', async () => {
    const before = decodes;
    const records = w.audit().length;
    // 60,000 empty entries (~120 KB): under the field limit, so only decoding would refuse nothing.
    const err = await unaryCall(client, 'Complete', emptyEntries(60_000), bearerMetadata('not-a-jwt')).catch((e: grpc.ServiceError) => e);
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(rpcStatus(err)?.errorInfo?.reason).toBe('unauthenticated');
    await eventually(() => w.audit().length > records);
    expect(w.audit().slice(records)).toMatchObject([{ principal: null, error_code: 'unauthenticated' }]);
    expect(decodes).toBe(before);
  });

  it('a message of more fields than limits.max_json_values: UNAUTHENTICATED with a bad token, invalid_request at $ with a valid one; never decoded', async () => {
    const before = decodes;
    const over = emptyEntries(MAX_VALUES);
    const bad = await unaryCall(client, 'Complete', over, bearerMetadata('not-a-jwt')).catch((e: grpc.ServiceError) => e);
    expect(bad.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(rpcStatus(bad)?.errorInfo?.reason).toBe('unauthenticated');
    const records = w.audit().length;
    const good = await unaryCall(client, 'Complete', over, bearerMetadata(token)).catch((e: grpc.ServiceError) => e);
    expect(good.code).toBe(grpc.status.INVALID_ARGUMENT);
    // Refused after its credentials passed: the record names the caller.
    await eventually(() => w.audit().length > records);
    expect(w.audit().slice(records)).toMatchObject([{ principal: { kind: 'kubernetes', namespace: 'labs', service_account: 'raw-bot' }, error_code: 'invalid_request' }]);
    expect(rpcStatus(good)?.errorInfo?.reason).toBe('invalid_request');
    expect(good.metadata.get('warden-param')[0]).toBe('$');
    expect(good.details).toBe(`the request message holds more than ${MAX_VALUES} fields (each entry of a repeated field counts; limits.max_json_values)`);
    expect(decodes).toBe(before);
  });

  it('what the wire walk refuses comes after the credentials too (a string that is not UTF-8: UNAUTHENTICATED with a bad token, INVALID_ARGUMENT with a valid one)', async () => {
    const bytes = Buffer.from(encodePromptRequest({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'card ZZZZ end' }] }));
    bytes.set([0xff, 0xfe, 0xc3, 0x28], bytes.indexOf('ZZZZ'));
    const before = decodes;
    const bad = await rawComplete(bytes, bearerMetadata('not-a-jwt'));
    expect(bad?.code).toBe(grpc.status.UNAUTHENTICATED);
    const err = await rawComplete(bytes, bearerMetadata(token));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toBe("field 'messages.0.content' is not valid UTF-8");
    expect(err?.metadata.get('warden-param')[0]).toBe('messages.0.content');
    expect(decodes).toBe(before);
  });

  it('with a valid token the message is decoded once and served, and a bad JSON field in it refused as before', async () => {
    const before = decodes;
    const md = bearerMetadata(token);
    const ok = await unaryCall(client, 'Complete', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, md);
    expect(ok.choices.length).toBeGreaterThan(0);
    expect(decodes).toBe(before + 1);
    const err = await unaryCall(client, 'Complete', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], params_json: '[1,' }, md).catch((e: grpc.ServiceError) => e);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.metadata.get('warden-param')[0]).toBe('params_json');
    expect(decodes).toBe(before + 2);
  });
});
