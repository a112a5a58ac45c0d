/**
 * Admin listener: `/metrics` (Prometheus text format from the prom-client registry), `/healthz`
 * (the process is alive), `/readyz` (200 only once policies and templates are loaded, the audit
 * log can be written and the process is not draining; the body names the active revisions). Kept on its own port so scraping never competes with app traffic
 * limits and the app port never exposes operational data.
 */
import { createServer, type Server, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { RateLimitedCount, type ConnectionLogger } from './connections.js';

/** The prom-client Registry surface we use. */
export interface MetricsRegistry {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface Readiness {
  /** Whether requests are served now: false while draining too. */
  ready: boolean;
  /** Why not ready (`draining`, `policies and templates not loaded`, `audit log unavailable`), when not. */
  reason?: string;
  policy_revision: string | null;
  template_revision: string | null;
  /** `unavailable` while an audit sink is failed (then, with a required audit, not ready). */
  audit?: 'ok' | 'unavailable';
  draining: boolean;
}

export interface AdminOptions {
  registry: MetricsRegistry;
  readiness: () => Readiness;
  /**
   * node:http's limits (the app listener's: http.ts serverOptions), so a client trickling its
   * headers is cut off after limits.client_timeout_ms here too, not after Node's own 60 s or more.
   */
  serverOptions?: ServerOptions;
  /**
   * limits.max_connections. Past it the connection used least recently with no answer under way is
   * closed for the new one, rather than the new one (see AdminConnections). Unset: no cap.
   */
  maxConnections?: number;
  /** Where the cap says it closed a connection (rate-limited), as `listen.admin`. */
  logger?: ConnectionLogger;
}

const PATHS = new Set(['/metrics', '/healthz', '/readyz']);
const ABSOLUTE_FORM = /^https?:\/\//i;

/**
 * The path of a request target. Origin-form (`/metrics?x`) is the path before the query;
 * absolute-form (`http://host/metrics`, which an HTTP/1.1 server must accept, RFC 9112 3.2.2) is
 * the URL's path. Anything else (`*`, authority-form) is no path of ours.
 */
export function targetPath(target: string): string | undefined {
  if (target.startsWith('/')) {
    const q = target.indexOf('?');
    return q === -1 ? target : target.slice(0, q);
  }
  if (!ABSOLUTE_FORM.test(target)) return undefined;
  try {
    return new URL(target).pathname;
  } catch {
    return undefined;
  }
}

/** The answer to a CONNECT: Node hands its socket over with no response object. */
const CONNECT_ANSWER =
  'HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD\r\ncontent-type: text/plain\r\ncontent-length: 19\r\nconnection: close\r\n\r\nmethod not allowed\n';

/**
 * How long a connection of the admin port may have an answer under way, without a break, before
 * it counts as unused for the cap (AdminConnections). Every admin answer is made at once and is
 * small, and a kubelet probe gives up after 1 s (its default timeoutSeconds): a connection busy
 * longer is a client that does not take its answers. One that pipelines requests and stops
 * reading fills the socket buffers, and its answers never finish: it would be busy for good.
 */
export const STALLED_ANSWER_MS = 1_000;

/**
 * A connection of the admin port: how many answers are under way on it, and since when
 * (performance.now()) it has had one under way without a break.
 */
interface AdminConnection {
  busy: number;
  busySince: number;
}

/**
 * The admin port's connection cap. The app ports close the connection past the cap (Node's
 * `maxConnections`); here that would let whoever reaches the port (it listens beyond loopback in
 * Kubernetes, for the kubelet and Prometheus) fail the liveness and readiness probes, and so
 * restart the pod, by holding `max_connections` connections that send nothing (each lasts until
 * the header deadline, about `client_timeout_ms` + 1 s). An admin answer takes a moment and its
 * clients make a connection per probe or keep one for their scrapes, so past the cap the
 * connection that has waited longest without a request under way (in connection or last-answer
 * order) is closed and the new one served: the descriptors stay bounded, and holding connections
 * no longer shuts out the probes. Failing that, the first (in the same order) that has had an
 * answer under way for STALLED_ANSWER_MS without a break: a client that asks and never reads its
 * answers (or reads one now and then) would otherwise hold its connection for good, with no
 * deadline on it. Only when every connection has an answer under way, none stalled, is the new
 * one closed.
 */
class AdminConnections {
  /** Open connections, least recently used first, with their answers under way. */
  private readonly open = new Map<Socket, AdminConnection>();
  private readonly closes = new RateLimitedCount();

  constructor(
    private readonly max: number,
    private readonly logger: ConnectionLogger | undefined,
  ) {}

  accept(socket: Socket): void {
    this.open.set(socket, { busy: 0, busySince: 0 });
    socket.once('close', () => this.open.delete(socket));
    if (this.open.size <= this.max) return;
    let victim: Socket = socket;
    let stalled: Socket | undefined;
    const now = performance.now();
    for (const [s, use] of this.open) {
      if (s === socket) continue;
      if (use.busy === 0) {
        victim = s;
        break;
      }
      if (stalled === undefined && now - use.busySince >= STALLED_ANSWER_MS) stalled = s;
    }
    if (victim === socket && stalled !== undefined) victim = stalled;
    this.open.delete(victim);
    victim.destroy();
    this.report(victim === socket);
  }

  /** An answer begins on `socket`. */
  begin(socket: Socket): void {
    const use = this.open.get(socket);
    if (use === undefined) return;
    if (use.busy++ === 0) use.busySince = performance.now();
  }

  /** An answer on `socket` ended: it is now the most recently used. */
  end(socket: Socket): void {
    const use = this.open.get(socket);
    if (use === undefined) return;
    this.open.delete(socket);
    use.busy = Math.max(0, use.busy - 1);
    // Not restarted while pipelined answers are still under way: a client reading one answer now
    // and then would otherwise keep its connection from ever counting as stalled.
    this.open.set(socket, use);
  }

  private report(newOne: boolean): void {
    const closed = this.closes.add();
    if (closed === undefined) return;
    this.logger?.warn(
      { listener: 'listen.admin', max_connections: this.max, closed },
      newOne
        ? `listen.admin: ${this.max} connections open (limits.max_connections), each with an answer under way; new connections are closed until some end or stall`
        : `listen.admin: ${this.max} connections open (limits.max_connections); the one unused longest is closed for each new one`,
    );
  }
}

export function createAdminServer(opts: AdminOptions): Server {
  const connections = opts.maxConnections === undefined ? undefined : new AdminConnections(opts.maxConnections, opts.logger);
  const server = createServer(opts.serverOptions ?? {}, (req, res) => {
    if (connections) {
      const socket = req.socket;
      connections.begin(socket);
      res.once('close', () => connections.end(socket));
    }
    req.resume();
    const path = targetPath(req.url ?? '/');
    if (path === undefined || !PATHS.has(path)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    // 405 only where GET would work: on another path it would claim a resource that is not there.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        () => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('metrics collection failed\n');
        },
      );
      return;
    }
    if (path === '/healthz') {
      const body = JSON.stringify({ status: 'ok' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/readyz') {
      const r = opts.readiness();
      const ok = r.ready && !r.draining;
      // One answer: a draining process is not ready, whatever else holds.
      const body = JSON.stringify({ status: ok ? 'ready' : 'not_ready', ...r, ready: ok, ...(ok || r.reason ? {} : { reason: 'draining' }) });
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    }
  });
  if (connections) server.on('connection', (socket: Socket) => connections.accept(socket));
  // Without a listener Node drops a CONNECT's connection unanswered. The admin port is no proxy.
  server.on('connect', (_req, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    socket.end(CONNECT_ANSWER, () => socket.destroy());
  });
  return server;
}
