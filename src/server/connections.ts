/**
 * Bounds on connections, as opposed to requests: every listener holds at most
 * `limits.max_connections` open connections (Node's `server.maxConnections`: one more is closed on
 * accept), so one local client cannot take every file descriptor of the process with connections
 * that send nothing; the app's requests, the upstream calls, the audit file and the admin port need
 * some too. Idle time is bounded per protocol (http.ts: keep-alive; grpc.ts: max_connection_idle).
 */
import type { Server } from 'node:net';

/** The log calls used here (a pino logger, or a test's). */
export interface ConnectionLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** At most one "connection limit reached" line per listener in this many ms. */
export const DROP_LOG_INTERVAL_MS = 10_000;

export interface ConnectionGuardOptions {
  /** The listener's config key (`listen.http`, `listen.grpc`, …), named in the log. */
  key: string;
  /** limits.max_connections. */
  maxConnections: number;
  logger: ConnectionLogger;
}

/**
 * Counts events and says when a line about them is due: at most one per DROP_LOG_INTERVAL_MS (a
 * client hammering a port must not flood the log), with how many happened since the last line.
 */
export class RateLimitedCount {
  private since = 0;
  private lastAt = -Infinity;

  /** Counts one event; the count to log now, or undefined while the last line is too recent. */
  add(): number | undefined {
    this.since++;
    const now = performance.now();
    if (now - this.lastAt < DROP_LOG_INTERVAL_MS) return undefined;
    this.lastAt = now;
    const n = this.since;
    this.since = 0;
    return n;
  }
}

/**
 * Caps `server`'s open connections and logs when the cap turns one away (rate-limited) and when
 * accepting fails (logAcceptFailures).
 */
export function guardConnections(server: Server, opts: ConnectionGuardOptions): void {
  const { key, maxConnections, logger } = opts;
  server.maxConnections = maxConnections;
  const drops = new RateLimitedCount();
  server.on('drop', () => {
    const dropped = drops.add();
    if (dropped === undefined) return;
    logger.warn(
      { listener: key, max_connections: maxConnections, dropped },
      `${key}: ${maxConnections} connections open (limits.max_connections); new connections are closed until some end`,
    );
  });
  logAcceptFailures(server, key, logger);
}

/**
 * Logs when accepting fails for lack of file descriptors (once per error code: that state lasts,
 * and each accept would repeat it). Node emits accept failures on the server; with no listener one
 * would end the process. libuv mostly absorbs EMFILE itself (it closes the waiting connections),
 * so max_connections, kept below the fd limit, is what keeps this from happening at all.
 */
export function logAcceptFailures(server: Server, key: string, logger: ConnectionLogger): void {
  const reported = new Set<string>();
  server.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? 'error';
    if (reported.has(code)) return;
    reported.add(code);
    const why = code === 'EMFILE' || code === 'ENFILE' ? 'out of file descriptors (raise the open-file limit or lower limits.max_connections)' : 'accept failed';
    logger.error({ listener: key, code }, `${key}: cannot accept connections: ${why} (${code}); logged once`);
  });
}
