/**
 * The runtime: everything one Warden process runs, built from a Config. It owns the live
 * policy/template set (swapped atomically on reload), the listeners (HTTP, gRPC, admin, optional
 * Unix sockets), and the orderly shutdown: stop accepting, let in-flight requests finish within
 * the grace period, flush the audit log.
 */
import { writeSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { failureConsequence } from '../audit/sinks.js';
import type { Config } from '../config/schema.js';
import { formatListen } from '../config/listen.js';
import { configDirOf } from '../config/load.js';
import { createPipeline, type Pipeline } from '../pipeline/pipeline.js';
import type { Principal } from '../pipeline/types.js';
import { createAdminServer, type Readiness } from '../server/admin.js';
import { guardConnections, logAcceptFailures } from '../server/connections.js';
import { guardGrpcListeners, type GrpcListenerGuard } from '../server/grpc-connections.js';
import { bindGrpc, createGrpcIngress, HealthState, type GrpcIngress } from '../server/grpc.js';
import { Admission } from '../server/admission.js';
import { createHttpIngress, serverOptions, type HttpIngress } from '../server/http.js';
import type { IngressLimits } from '../server/limits.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { createMetrics, type Metrics } from '../telemetry/metrics.js';
import { buildComponents, describeLoadError, type Components } from './components.js';
import { LiveSetHolder, type LiveSet } from './live-set.js';
import { bindSocketPath, closeServer, formatAddress, listenFailure, listenTcp, listenUnix } from './listeners.js';
import { createReloadQueue, removedWhileRead, startReloader, treeFingerprint, type Reloader } from './reload.js';

export interface RuntimeOptions {
  /** A logger to use instead of one built from `config.log` (tests collect lines with it). */
  logger?: Logger;
  /** Dry runs (`warden render --principal ns/sa`): act as this principal instead of authenticating. */
  principalOverride?: Principal;
  /** Watch files for changes (default: `config.reload.watch`). */
  watch?: boolean;
  /** Directory relative secret refs (`file:secrets/x`) resolve against. Default: the directory of the file the config was loaded from (configDirOf), else cwd. */
  configDir?: string;
  /** Dry runs: audit records go to stderr instead of the configured sinks (stdout stays the result). */
  auditToStderr?: boolean;
}

export interface BoundAddresses {
  /** `http://host:port` of the OpenAI-compatible listener. */
  http: string;
  /** `host:port` of the gRPC listener. */
  grpc: string;
  /** `http://host:port` of the admin listener. */
  admin: string;
  httpSocket?: string;
  grpcSocket?: string;
}

export interface Runtime {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly pipeline: Pipeline;
  /** The live set now serving (undefined before the first successful load). */
  live(): LiveSet | undefined;
  /** Binds every listener; resolves with the bound addresses. */
  start(): Promise<BoundAddresses>;
  /** Reloads templates and policies; false when the change was rejected (the old set keeps serving). */
  reload(reason: string): Promise<boolean>;
  readiness(): Readiness;
  /**
   * Reopens the audit file sinks' paths (log rotation; `warden serve` calls it on SIGHUP). Resolves
   * true when every sink is open again; false (logged) when a path cannot be opened: that sink is
   * then failed, requests are refused with `audit_unavailable` and `/readyz` is 503 until it can.
   * Never rejects.
   */
  reopenAudit(reason: string): Promise<boolean>;
  /**
   * Stops accepting, drains within `limits.shutdown_grace_ms`, flushes audit, closes everything.
   * The audit flush gets what is left of the grace period (at least AUDIT_CLOSE_MARGIN_MS).
   */
  shutdown(reason: string): Promise<ShutdownResult>;
}

export interface ShutdownResult {
  outcome: 'drained' | 'timeout';
  /** Audit records linked into the chain but never written (logged, by count and seq range). */
  lostRecords: number;
}

/**
 * How long the audit flush and the closes may take at shutdown when the grace period is over:
 * the records of the requests the deadline just cut are written then. A sink that cannot take
 * them by then (a stdout nobody reads) must not keep a terminating process alive.
 */
export const AUDIT_CLOSE_MARGIN_MS = 1000;

/** A reload put off because the tree changed while it was read is tried again after this long... */
const REREAD_DELAY_MS = 250;
/** ...at most this many times in a row; then it is a rejected change like any other. */
const REREAD_TRIES = 5;

/** `work`, or 'timeout' once `ms` have passed (work goes on, unawaited). */
/** Binds a gRPC listener (`prefix` + `where`); a failure names its config key `key` (listenFailure). */
function bindGrpcAs(server: Parameters<typeof bindGrpc>[0], where: string, key: string, prefix = ''): Promise<number> {
  return bindGrpc(server, prefix + where).catch((err: unknown) => {
    throw listenFailure(key, where, err);
  });
}

async function within<T>(work: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export function ingressLimits(config: Config): IngressLimits {
  return {
    maxBodyBytes: config.limits.max_body_bytes,
    maxHeaderBytes: config.limits.max_header_bytes,
    maxVariables: config.limits.max_variables,
    maxVariableLength: config.limits.max_variable_length,
    maxJsonDepth: config.limits.max_json_depth,
    maxJsonValues: config.limits.max_json_values,
    maxInFlight: config.limits.max_in_flight,
    requestTimeoutMs: config.limits.client_timeout_ms,
    idleTimeoutMs: config.limits.idle_timeout_ms,
    maxConnections: config.limits.max_connections,
    upstreamTimeoutMs: config.limits.upstream_timeout_ms,
  };
}

/**
 * Builds the runtime and loads the first policy/template set. A bad first set is an error (the
 * process must not start serving nothing); later bad sets are rejected by reload.
 */
export async function createRuntime(config: Config, opts: RuntimeOptions = {}): Promise<Runtime> {
  const logger =
    opts.logger ??
    createLogger({ level: config.log.level, format: config.log.format, base: { service: 'warden' } });
  const metrics = createMetrics({ defaultLabels: { environment: config.environment.name } });
  const holder = new LiveSetHolder();
  const health = new HealthState();

  const components: Components = await buildComponents(config, {
    holder,
    logger,
    metrics,
    principalOverride: opts.principalOverride,
    auditToStderr: opts.auditToStderr,
    // Unset: the config file's own directory, which its secrets.file_roots are anchored to too
    // (the working directory only for a config that came from no file).
    configDir: opts.configDir ?? configDirOf(config) ?? process.cwd(),
  });

  const pipeline = createPipeline({
    stages: components.stages,
    audit: components.audit,
    auditRequired: config.audit.required,
    metrics,
    logger,
  });

  function activate(set: LiveSet): void {
    holder.swap(set);
    metrics.setActiveRevision('policies', set.policy.revision);
    metrics.setActiveRevision('templates', set.templates.revision);
  }

  // The watched files' fingerprint before the first load reads them: a change made between this
  // load and the reloader's start (below) is reloaded at once, not missed until the next one.
  const watching = opts.watch ?? config.reload.watch;
  const watchedPaths = [...config.policy.paths, ...config.templates.paths];
  const baseline = watching ? await treeFingerprint(watchedPaths) : undefined;
  // First load: failures propagate to the caller (serve exits with the error), after what was
  // built is closed (the audit file, its check timer, the provider pools).
  try {
    activate(await components.loadLiveSet());
  } catch (err) {
    await components.close().catch(() => undefined);
    throw err;
  }
  logger.info(
    {
      policy_revision: holder.get()?.policy.revision,
      template_revision: holder.get()?.templates.revision,
      templates: holder.get()?.templates.list().length,
    },
    'policies and templates loaded',
  );

  /** Reloads in a row put off because the tree changed while it was read (see removedWhileRead). */
  let putOff = 0;
  let putOffTimer: NodeJS.Timeout | undefined;

  /** Aborted when the shutdown starts: a reload under way is given up (see loadLiveSet). */
  const stopLoads = new AbortController();

  async function reload(reason: string): Promise<boolean> {
    try {
      const next = await components.loadLiveSet(stopLoads.signal);
      const prev = holder.get();
      putOff = 0;
      activate(next);
      metrics.observeReload('templates', 'ok');
      metrics.observeReload('policies', 'ok');
      logger.info(
        {
          reason,
          policy_revision: next.policy.revision,
          template_revision: next.templates.revision,
          changed:
            prev?.policy.revision !== next.policy.revision || prev?.templates.revision !== next.templates.revision,
        },
        'reload applied',
      );
      return true;
    } catch (err) {
      // Given up for the shutdown (see stopLoads): no bad change, nothing to count or alert on.
      if (stopLoads.signal.aborted) {
        logger.info({ reason }, 'reload given up: Warden is shutting down');
        return false;
      }
      const described = describeLoadError(err);
      // Something it listed was removed before it was read: the tree is changing. Read it again
      // shortly (the last good set serves meanwhile) instead of rejecting what is not a bad
      // change; a tree that keeps changing under every read is rejected after a few tries.
      if (removedWhileRead(err) && putOff < REREAD_TRIES) {
        putOff++;
        logger.info({ reason, kind: described.kind, problems: described.problems }, 'reload put off: the watched files changed while they were read; reading them again');
        clearTimeout(putOffTimer);
        putOffTimer = setTimeout(() => void reloads.reloadNow(`${reason} (read again)`), REREAD_DELAY_MS);
        putOffTimer.unref();
        return false;
      }
      putOff = 0;
      metrics.observeReload(described.kind, 'error');
      logger.error(
        {
          reason,
          kind: described.kind,
          problems: described.problems,
          policy_revision: holder.get()?.policy.revision,
          template_revision: holder.get()?.templates.revision,
        },
        `reload rejected, the last good set keeps serving: ${described.problems[0] ?? 'unknown problem'}`,
      );
      return false;
    }
  }

  /** Every reload (file watch and SIGHUP alike) runs through this queue: one at a time, the last change wins. */
  const reloads = createReloadQueue(reload);
  let draining = false;
  let reloader: Reloader | undefined;
  let httpIngress: HttpIngress | undefined;
  const httpIngresses: HttpIngress[] = [];
  /** The TCP server, then the Unix-socket one when listen.grpc_socket is set. */
  const grpcIngresses: GrpcIngress[] = [];
  /** The connection bounds of each gRPC listener, to close preface-less connections at shutdown. */
  const grpcGuards: GrpcListenerGuard[] = [];
  const httpServers: Server[] = [];
  let adminServer: Server | undefined;
  let shutdownPromise: Promise<ShutdownResult> | undefined;

  function readiness(): Readiness {
    const set = holder.get();
    // A required audit log that cannot be written refuses every request: not ready. (A sink that
    // is optional — audit.required false — only loses records; the requests are served.)
    const audit = components.auditLog.available() ? 'ok' : 'unavailable';
    const reason = draining
      ? 'draining'
      : !set
        ? 'policies and templates not loaded'
        : audit !== 'ok' && config.audit.required
          ? 'audit log unavailable'
          : undefined;
    return {
      ready: reason === undefined,
      ...(reason === undefined ? {} : { reason }),
      policy_revision: set?.policy.revision ?? null,
      template_revision: set?.templates.revision ?? null,
      audit,
      draining,
    };
  }

  /** Set once every listener is bound: gRPC health may say SERVING from then on. */
  let listening = false;

  /**
   * gRPC health says what `/readyz` says. `/readyz` asks on each request; health `Watch` streams
   * must be told, so this runs on each change: start, shutdown, and the audit log breaking or
   * recovering (which it pushes).
   */
  function followReadiness(): void {
    health.set(listening && readiness().ready ? 'SERVING' : 'NOT_SERVING');
  }
  components.auditLog.onAvailabilityChange(followReadiness);

  async function reopenAudit(reason: string): Promise<boolean> {
    try {
      await components.auditLog.reopen();
      logger.info({ reason }, 'audit sinks reopened');
      return true;
    } catch (err) {
      logger.error(
        { reason, code: (err as { code?: unknown }).code ?? 'error', problem: err instanceof Error ? err.message : String(err) },
        `audit sink could not be reopened; ${failureConsequence(config.audit.required, 'until it can be')}`,
      );
      return false;
    }
  }

  async function start(): Promise<BoundAddresses> {
    await components.checkProviderKeys();
    const limits = ingressLimits(config);
    const configuredModels = () => Object.keys(config.models);
    const onRejected = (code: string, seconds: number, protocol: 'openai-http' | 'anthropic-http' = 'openai-http') =>
      metrics.observeRequest({ protocol, code, seconds });
    // One gate for every app listener: the limit is on the process, not per protocol.
    const admission = new Admission(limits.maxInFlight);
    metrics.trackInFlight(() => admission.inFlight, admission.max);
    httpIngress = createHttpIngress({ pipeline, limits, logger, draining: () => draining, configuredModels, onRejected, admission });
    const grpcIngressFor = (unixListener: boolean) =>
      createGrpcIngress({
        pipeline,
        limits,
        logger,
        admission,
        health,
        draining: () => draining,
        unixListener,
        onRejected: (code, seconds) => metrics.observeRequest({ protocol: 'grpc', code, seconds }),
      });
    const grpcIngress = grpcIngressFor(false);
    adminServer = createAdminServer({ registry: metrics.registry, readiness, serverOptions: serverOptions(limits), maxConnections: limits.maxConnections, logger });
    /** The connection cap (and its log lines) on a listener once it is bound. */
    const guard = (server: NetServer, key: string) => guardConnections(server, { key, maxConnections: limits.maxConnections, logger });
    const guardGrpc = (ingress: GrpcIngress, key: string) => {
      const guarded = guardGrpcListeners(ingress.server, {
        key,
        maxConnections: limits.maxConnections,
        logger,
        prefaceTimeoutMs: limits.requestTimeoutMs,
        draining: () => draining,
        screen: (h2) => ingress.screen(h2),
      });
      if (guarded) grpcGuards.push(guarded);
      // Said once at start: otherwise nothing would tell that the port runs without its bounds.
      else {
        logger.warn(
          { listener: key },
          `${key}: this @grpc/grpc-js does not expose its listeners, so Warden cannot read its calls' header blocks: limits.max_connections, the preface deadline, the refusal of an authorization metadata grpc-js drops (not printable ASCII, or authorization-bin), the proxy headers it drops (a relayed call can look local to the dev identity), the metadata size as sent and the refusal of x-warden-* metadata do not apply there`,
        );
      }
    };

    const out: BoundAddresses = { http: '', grpc: '', admin: '' };
    try {
      const httpInfo = await listenTcp(httpIngress.server, config.listen.http, 'listen.http');
      guard(httpIngress.server, 'listen.http');
      httpServers.push(httpIngress.server);
      httpIngresses.push(httpIngress);
      out.http = `http://${formatAddress(httpInfo)}`;
      if (config.listen.http_socket) {
        // A second server object on the same handler: one node server cannot listen twice.
        const unixIngress = createHttpIngress({ pipeline, limits, logger, draining: () => draining, configuredModels, onRejected, admission, unixListener: true });
        out.httpSocket = await listenUnix(unixIngress.server, config.listen.http_socket, 'listen.http_socket');
        guard(unixIngress.server, 'listen.http_socket');
        httpServers.push(unixIngress.server);
        httpIngresses.push(unixIngress);
      }

      const g = config.listen.grpc;
      grpcIngresses.push(grpcIngress);
      const grpcPort = await bindGrpcAs(grpcIngress.server, formatListen(g), 'listen.grpc');
      out.grpc = formatListen({ host: g.host, port: grpcPort });
      guardGrpc(grpcIngress, 'listen.grpc');
      if (config.listen.grpc_socket) {
        // A server of its own, as for HTTP: grpc-js cannot say which listener a call came in on,
        // and the dev identity must know a Unix-socket caller from a TCP one (grpcPeerInfo).
        const unixIngress = grpcIngressFor(true);
        grpcIngresses.push(unixIngress);
        const path = config.listen.grpc_socket;
        await bindSocketPath(path, 'listen.grpc_socket', () => bindGrpcAs(unixIngress.server, path, 'listen.grpc_socket', 'unix:'));
        guardGrpc(unixIngress, 'listen.grpc_socket');
        out.grpcSocket = config.listen.grpc_socket;
      }

      const adminInfo = await listenTcp(adminServer, config.listen.admin, 'listen.admin');
      out.admin = `http://${formatAddress(adminInfo)}`;
      // Capped by createAdminServer itself (the connection unused longest makes room, not the new
      // one, which Node's cap would close): only the accept-failure log here.
      logAcceptFailures(adminServer, 'listen.admin', logger);
    } catch (err) {
      // A listener that cannot bind stops the start: the ones bound before it are closed, so
      // their Unix socket files are removed (not left for the next start to find) and their
      // ports freed in a process that goes on (an embedding, a test).
      await unbind();
      throw err;
    }

    if (watching) {
      reloader = await startReloader({
        paths: watchedPaths,
        baseline,
        debounceMs: config.reload.debounce_ms,
        pollMs: config.reload.poll_ms,
        reload,
        queue: reloads,
        onWatchError: (path, code) => logger.warn({ path, code }, 'cannot watch path for changes; SIGHUP still reloads'),
        onRewatch: (path) => logger.info({ path }, 'watching path again'),
      });
    }
    listening = true;
    followReadiness();
    logger.info({ ...out }, 'warden listening');
    return out;
  }

  /** Closes every listener a failed start bound (see start). */
  async function unbind(): Promise<void> {
    for (const s of httpServers) s.closeAllConnections();
    adminServer?.closeAllConnections();
    for (const i of grpcIngresses) i.server.forceShutdown();
    await Promise.all([...httpServers, ...(adminServer ? [adminServer] : [])].map((s) => closeServer(s)));
  }

  async function shutdown(reason: string): Promise<ShutdownResult> {
    shutdownPromise ??= (async () => {
      const started = Date.now();
      draining = true;
      followReadiness();
      // Health Watch streams get their last NOT_SERVING and end: open, they would hold the drain.
      health.shutDown();
      reloader?.close();
      reloads.close();
      stopLoads.abort();
      clearTimeout(putOffTimer);
      const graceMs = config.limits.shutdown_grace_ms;
      logger.info({ reason, grace_ms: graceMs, in_flight: (httpIngress?.inFlight() ?? 0) + grpcIngresses.reduce((n, i) => n + i.inFlight(), 0) }, 'shutting down');

      // Stop accepting; idle keep-alive connections close now, busy ones after their response.
      const closing = httpServers.map((s) => {
        const done = closeServer(s);
        s.closeIdleConnections();
        return done;
      });
      const grpcDone = Promise.all(grpcIngresses.map((i) => new Promise<void>((resolve) => i.server.tryShutdown(() => resolve()))));
      // Their graceful close would wait for connections that never sent a preface (a client's spare).
      for (const g of grpcGuards) g.closeUnprefaced();

      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const drained = (async () => {
        await Promise.all([grpcDone, ...httpIngresses.map((i) => i.idle())]);
        // Every response is out: keep-alive sockets that went idle meanwhile, and connections that
        // never sent a request (a client pool's spare), can close now.
        await Promise.all(httpIngresses.map((i) => i.closeIdle()));
        await Promise.all(closing);
        return 'drained' as const;
      })();
      const outcome = await Promise.race([drained, deadline]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        logger.warn({ grace_ms: graceMs }, 'grace period over: closing the remaining connections');
        // Each request still running is told shutting_down where its protocol still allows it;
        // the connections close once those answers are out (at most CUT_ANSWER_WAIT_MS).
        await Promise.all([...httpIngresses.map((i) => i.closeAll()), ...grpcIngresses.map((i) => i.forceShutdown(grpcDone))]);
      }
      if (adminServer) {
        adminServer.closeAllConnections();
        await closeServer(adminServer);
      }
      const closeMs = Math.max(started + graceMs - Date.now(), AUDIT_CLOSE_MARGIN_MS);
      const closed = await within(flushAndClose(), closeMs);
      if (closed === 'timeout') logger.error({ waited_ms: closeMs }, 'audit log flush did not finish in time during shutdown; exiting without it');
      const lostRecords = reportLostRecords();
      logger.info({ outcome, lost_records: lostRecords }, 'shutdown complete');
      return { outcome, lostRecords };
    })();
    return shutdownPromise;
  }

  async function flushAndClose(): Promise<void> {
    try {
      await components.auditLog.flush();
    } catch (err) {
      logger.error({ code: (err as { code?: unknown }).code ?? 'error' }, 'audit log flush failed during shutdown');
    }
    try {
      await components.close();
    } catch (err) {
      // Exit anyway: a sink that cannot close must not keep a terminating process alive.
      logger.error({ code: (err as { code?: unknown }).code ?? 'error' }, 'closing providers or audit sinks failed during shutdown');
    }
  }

  /** Logs, per sink, the records exiting now loses (their number and seqs, never their content). */
  function reportLostRecords(): number {
    let lost = 0;
    for (const u of components.auditLog.unwritten()) {
      lost = Math.max(lost, u.records);
      const message = `audit sink ${u.sink}: ${u.records} record(s) (seq ${u.first_seq} to ${u.last_seq}) could not be written before exit and are lost`;
      logger.error({ sink: u.sink, lost_records: u.records, first_seq: u.first_seq, last_seq: u.last_seq }, message);
      tellStderr(message);
    }
    return lost;
  }

  /**
   * Says `message` on stderr at once as well: a stalled stdout (the usual reason records are lost)
   * holds the log line, and the exit right after drops it. Not when the audit records themselves go
   * to stderr (a dry run): a line written there could land inside a record still being written.
   */
  function tellStderr(message: string): void {
    if (opts.auditToStderr) return;
    try {
      writeSync(2, `warden: ${message}\n`);
    } catch {
      // stderr full or closed: the log line is all there is.
    }
  }

  return {
    config,
    logger,
    metrics,
    pipeline,
    live: () => holder.get(),
    start,
    reload: (reason) => reloads.reloadNow(reason),
    readiness,
    reopenAudit,
    shutdown,
  };
}
