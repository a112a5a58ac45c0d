/**
 * grpcListeners depends on a private part of grpc-js (Server's `http2Servers` map), because grpc-js
 * does not expose the Node servers it listens with, where the connection cap and the preface
 * deadline go. These tests pin that dependency against the installed grpc-js with a bare server,
 * so an upgrade that changes the shape fails here, by name, rather than only as connections left
 * open in test/e2e/connections.test.ts.
 */
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindGrpc } from '../../src/server/grpc.js';
import { grpcListeners, guardGrpcListeners } from '../../src/server/grpc-connections.js';

const SHAPE_CHANGED =
  "grpc-js no longer keeps its listeners in its private Server.http2Servers map: grpcListeners (src/server/grpc-connections.ts) cannot reach them; find where they went or a public hook";

let server: grpc.Server;
let port: number;
const logged: string[] = [];

beforeAll(async () => {
  server = new grpc.Server();
  port = await bindGrpc(server, '127.0.0.1:0');
});

afterAll(() => server?.forceShutdown());

describe('grpcListeners (against the installed grpc-js)', () => {
  it('finds the one listening server of a server bound to one address', () => {
    const listeners = grpcListeners(server);
    expect(listeners, SHAPE_CHANGED).toBeDefined();
    expect(listeners!.map((s) => (s.address() as { port: number }).port)).toEqual([port]);
  });

  it('guards it: a connection with no preface is closed after the deadline, one past the cap at once', async () => {
    const logger = { warn: (_: object, msg?: string) => void logged.push(msg ?? ''), error: (_: object, msg?: string) => void logged.push(msg ?? '') };
    expect(guardGrpcListeners(server, { key: 'listen.grpc', maxConnections: 1, logger, prefaceTimeoutMs: 200 })).toBe(true);
    const open = () => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.resume(); // reading, so the server's FIN is seen
      const started = performance.now();
      return new Promise<number>((resolve) => s.once('close', () => resolve(performance.now() - started)));
    };
    const first = open();
    await new Promise((r) => setTimeout(r, 50));
    const second = open();
    expect(await second).toBeLessThan(150);
    expect(await first).toBeGreaterThanOrEqual(150);
    expect(logged.some((l) => l.includes('limits.max_connections'))).toBe(true);
  });

  it('says so when the map is not there', () => {
    expect(grpcListeners({} as grpc.Server)).toBeUndefined();
    expect(guardGrpcListeners({} as grpc.Server, { key: 'k', maxConnections: 1, logger: { warn() {}, error() {} }, prefaceTimeoutMs: 1 })).toBe(false);
  });
});
