/**
 * grpcListeners depends on a private part of grpc-js (Server's `http2Servers` map), because grpc-js
 * does not expose the Node servers it listens with, where the connection cap and the preface
 * deadline go. These tests pin that dependency against the installed grpc-js with a bare server,
 * so an upgrade that changes the shape fails here, by name, rather than only as connections left
 * open in test/e2e/connections.test.ts.
 */
import { createServer as createHttp2Server } from 'node:http2';
import { connect, type AddressInfo, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { bindGrpc } from '../../src/server/grpc.js';
import { boundConnectionLife, grpcListeners, guardGrpcListeners, HALF_CLOSED_GRACE_MS } from '../../src/server/grpc-connections.js';

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
    expect(guardGrpcListeners(server, { key: 'listen.grpc', maxConnections: 1, logger, prefaceTimeoutMs: 200 })).toBeDefined();
    const order: string[] = [];
    const open = (name: string) => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.resume(); // reading, so the server's FIN is seen
      const started = performance.now();
      return new Promise<number>((resolve) =>
        s.once('close', () => {
          order.push(name);
          resolve(performance.now() - started);
        }),
      );
    };
    const first = open('first');
    await new Promise((r) => setTimeout(r, 50));
    const second = open('second');
    // No upper bound: the second, opened 50 ms after the first, is closed before it, which only the
    // cap can do (by the deadline it would go 50 ms after the first); the first waits its deadline.
    await second;
    expect(order).toEqual(['second']);
    expect(await first).toBeGreaterThanOrEqual(150);
    expect(order).toEqual(['second', 'first']);
    expect(logged.some((l) => l.includes('limits.max_connections'))).toBe(true);
  });

  it('says so when the map is not there', () => {
    expect(grpcListeners({} as grpc.Server)).toBeUndefined();
    expect(guardGrpcListeners({} as grpc.Server, { key: 'k', maxConnections: 1, logger: { warn() {}, error() {} }, prefaceTimeoutMs: 1 })).toBeUndefined();
  });
});

describe('boundConnectionLife: the socket Warden has finished writing to', () => {
  /**
   * A client that sent its preface and never closes its side, on a server that closes the session
   * (its GOAWAY and FIN go out). Resolves with the server's socket once Warden's side of it is
   * finished ('finish', seen after boundConnectionLife's own listener: its grace timer, if any, is
   * armed by then). setTimeout and clearTimeout are fake from the start, so the test moves the
   * clock itself: what it sees does not depend on how loaded the machine is.
   */
  async function finishedConnection(draining: boolean) {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const h2 = createHttp2Server();
    boundConnectionLife(h2, 60_000, () => draining);
    const finished = new Promise<Socket>((resolve) => h2.on('connection', (socket: Socket) => socket.once('finish', () => resolve(socket))));
    h2.on('session', (session) => session.once('remoteSettings', () => setImmediate(() => session.close())));
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', () => r()));
    const client = connect({ port: (h2.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => {});
    client.resume();
    onTestFinished(async () => {
      vi.useRealTimers();
      client.destroy();
      await new Promise<void>((r) => h2.close(() => r()));
    });
    // The HTTP/2 preface and an empty SETTINGS frame; then nothing, not even a FIN.
    client.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    const socket = await finished;
    return { socket, closed: new Promise<void>((r) => socket.once('close', () => r())) };
  }

  it('lets it go HALF_CLOSED_GRACE_MS after its FIN, when the client never sends one', async () => {
    const { socket, closed } = await finishedConnection(false);
    vi.advanceTimersByTime(HALF_CLOSED_GRACE_MS - 1);
    expect(socket.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(socket.destroyed).toBe(true);
    await closed;
  });

  it('keeps it while draining: answers may still be in the kernel, and the shutdown deadline bounds it', async () => {
    const { socket } = await finishedConnection(true);
    // Every timer there is fires now (a grace of any length would be among them); then a turn of
    // the event loop, for a close to be seen.
    vi.runAllTimers();
    await new Promise((r) => setImmediate(r));
    expect(socket.destroyed).toBe(false);
  });
});
