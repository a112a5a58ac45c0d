/**
 * answerUnknownMethods depends on a private part of grpc-js (Server's `handlers` map, read with
 * `get` for each call), because grpc-js has no public hook for calls to unregistered methods.
 * These tests pin that dependency against the installed grpc-js with a bare server and a real
 * client, so a grpc-js upgrade that changes the shape fails here, by name, rather than only as a
 * missing `warden-code` in test/e2e/unparsed-refusals.test.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerUnknownMethods, bindGrpc } from '../../src/server/grpc.js';

const SHAPE_CHANGED =
  "grpc-js no longer looks handlers up in its private Server.handlers map: answerUnknownMethods (src/server/grpc.ts) cannot catch unknown methods; find grpc-js's new lookup or a public hook";

const identity = (b: Buffer) => b;
let server: grpc.Server;
let client: grpc.Client;
let installed: boolean;
const answered: string[] = [];

beforeAll(async () => {
  server = new grpc.Server();
  server.register('/t.Known/Echo', (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request), identity, identity, 'unary');
  installed = answerUnknownMethods(server, (call) => {
    answered.push(call.getPath());
    call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'caught', metadata: new grpc.Metadata() });
  });
  const port = await bindGrpc(server, '127.0.0.1:0');
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

function unary(path: string): Promise<{ err: grpc.ServiceError | null; res: Buffer | undefined }> {
  return new Promise((resolve) => client.makeUnaryRequest(path, identity, identity, Buffer.from('x'), (err, res) => resolve({ err, res })));
}

describe('answerUnknownMethods against the installed grpc-js', () => {
  it('finds the private handlers map', () => {
    expect(installed, SHAPE_CHANGED).toBe(true);
  });

  it('gets the unknown calls (unary and streaming), not grpc-js answering them itself', async () => {
    const { err } = await unary('/t.Unknown/Call');
    expect(err?.details, SHAPE_CHANGED).toBe('caught');
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
    const stream = client.makeServerStreamRequest('/t.Known/Tail', identity, identity, Buffer.from('x'));
    const streamErr = await new Promise<grpc.ServiceError>((resolve) => {
      stream.on('data', () => undefined);
      stream.on('error', resolve);
    });
    expect(streamErr.details, SHAPE_CHANGED).toBe('caught');
    expect(answered).toEqual(['/t.Unknown/Call', '/t.Known/Tail']);
  });

  it('leaves registered methods to their handlers', async () => {
    const before = answered.length;
    const { err, res } = await unary('/t.Known/Echo');
    expect(err).toBeNull();
    expect(res?.toString()).toBe('x');
    expect(answered.length).toBe(before);
  });
});
