/**
 * Connection bounds on a bound grpc-js server's listeners: the connection cap (connections.ts), a
 * deadline for the HTTP/2 preface, and a socket closed for good once its session is. grpc-js
 * closes a session idle for `grpc.max_connection_idle_ms` (set in grpc.ts from
 * limits.idle_timeout_ms), but it turns Node's socket timeout off and has no cap and no preface
 * deadline, so a connection that sends nothing would be held for as long as the idle timeout, and
 * connections without number.
 */
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { guardConnections, type ConnectionGuardOptions } from './connections.js';

/**
 * The Node servers a bound grpc-js server listens with (one per bound address). grpc-js (1.14)
 * does not expose them; its private `http2Servers` map (server → its sessions) is the one place
 * they are. Undefined when that map is not there (another grpc-js): the caller says so in the log.
 * test/server/grpc-connections.test.ts checks this against the installed grpc-js.
 */
export function grpcListeners(server: grpc.Server): Http2Server[] | undefined {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return undefined;
  return [...(servers.keys() as Iterable<unknown>)].filter(isHttp2Server);
}

function isHttp2Server(value: unknown): value is Http2Server {
  return typeof value === 'object' && value !== null && typeof (value as NetServer).listen === 'function' && typeof (value as NetServer).on === 'function';
}

/**
 * How long a connection stays open once Warden has finished writing to it (the GOAWAY of the idle
 * timeout or of a shutdown, then its FIN). Node then waits for the client's FIN before it lets the
 * socket go, and a client that never reads never sends one: it would keep its file descriptor for
 * good, idle timeout or not.
 */
export const HALF_CLOSED_GRACE_MS = 1_000;

/**
 * Bounds each new connection's life outside a call: closed if its client has not sent its HTTP/2
 * preface (the magic string and its SETTINGS) within `prefaceMs`, as the HTTP listener closes one
 * that sends no request within client_timeout_ms, and closed HALF_CLOSED_GRACE_MS after Warden's
 * side of it ended. The session's `socket` is a proxy that may not be destroyed; the socket itself
 * comes with `connection`, which Node answers by making the session and emitting `session` in the
 * same call: the listener prepended here sees the socket just before its session.
 */
export function boundConnectionLife(h2: Http2Server, prefaceMs: number, draining: () => boolean = () => false): () => void {
  let arriving: Socket | undefined;
  /** Sockets whose client has not yet sent its preface (see the returned closeUnprefaced). */
  const unprefaced = new Set<Socket>();
  h2.prependListener('connection', (socket: Socket) => {
    arriving = socket;
    let grace: NodeJS.Timeout | undefined;
    // 'finish': our FIN is out. (A client so far behind in reading that even the GOAWAY cannot go
    // out never gets here; limits.max_connections bounds how many of those there can be.) Not
    // while draining: a shutdown closes sessions with answers still in flight, and 'finish' means
    // only that they reached the kernel; a client paused for a second would lose the rest to a
    // reset. The shutdown's own deadline (shutdown_grace_ms, then a forced close) bounds those.
    socket.once('finish', () => {
      if (!draining()) grace = setTimeout(() => socket.destroy(), HALF_CLOSED_GRACE_MS);
    });
    socket.once('close', () => clearTimeout(grace));
  });
  h2.on('session', (session: ServerHttp2Session) => {
    const socket = arriving;
    arriving = undefined;
    if (socket === undefined) return;
    const preface = setTimeout(() => socket.destroy(), prefaceMs);
    unprefaced.add(socket);
    session.once('remoteSettings', () => {
      clearTimeout(preface);
      unprefaced.delete(socket);
    });
    socket.once('close', () => {
      clearTimeout(preface);
      unprefaced.delete(socket);
    });
  });
  // A shutdown's graceful close (grpc-js tryShutdown) waits for every session to end, and one whose
  // client never sent its preface, and does not read what Warden wrote (its SETTINGS, the GOAWAY),
  // ended only at the preface deadline: such a connection held SIGTERM for client_timeout_ms. Nothing is lost by closing it: a draining Warden
  // refuses every new call anyway, and a call not yet sent is one a gRPC client may retry.
  return () => {
    for (const socket of unprefaced) socket.destroy();
    unprefaced.clear();
  };
}

/** What guardGrpcListeners put on a server's listeners. */
export interface GrpcListenerGuard {
  /** Closes every connection whose client has not sent its HTTP/2 preface (call when draining). */
  closeUnprefaced(): void;
}

/**
 * Puts both bounds on every listener of a bound grpc-js server, and hands each to `screen` (the
 * ingress's reading of header blocks, GrpcIngress.screen). Undefined when its listeners cannot be
 * reached (grpcListeners): the server then runs without them.
 */
export function guardGrpcListeners(
  server: grpc.Server,
  opts: ConnectionGuardOptions & { prefaceTimeoutMs: number; draining?: () => boolean; screen?: (h2: Http2Server) => void },
): GrpcListenerGuard | undefined {
  const listeners = grpcListeners(server);
  if (listeners === undefined || listeners.length === 0) return undefined;
  const closers = listeners.map((h2) => {
    guardConnections(h2, opts);
    const closeUnprefaced = boundConnectionLife(h2, opts.prefaceTimeoutMs, opts.draining);
    opts.screen?.(h2);
    return closeUnprefaced;
  });
  return {
    closeUnprefaced: () => {
      for (const close of closers) close();
    },
  };
}
