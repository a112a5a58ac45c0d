/**
 * The door reads the status grpc-js sent by itself, and resets an unread stream, through the
 * HTTP/2 stream under grpc-js's base call, a private field: this checks that field against the
 * installed grpc-js, so an upgrade that changes it fails here by name.
 */
import * as grpc from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import { http2StreamOf } from '../../src/server/grpc-door.js';

it('the call a first server interceptor is handed carries its HTTP/2 stream', async () => {
  const found: boolean[] = [];
  const server = new grpc.Server({
    interceptors: [
      (_method, next) => {
        found.push(http2StreamOf(next) !== undefined);
        return new grpc.ServerInterceptingCall(next);
      },
    ],
  });
  const raw = (b: Buffer) => b;
  server.register('/t.T/M', (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.alloc(0)), raw, raw, 'unary');
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => client.makeUnaryRequest('/t.T/M', raw, raw, Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
    expect(found).toEqual([true]);
  } finally {
    client.close();
    server.forceShutdown();
  }
});
