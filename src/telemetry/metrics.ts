/**
 * Prometheus metrics, one Registry per Warden instance (tests and embedded uses can run several
 * in one process). Every label has a bounded value set: protocols and stages are fixed, codes are
 * Warden error codes, providers come from config, entities from the redactor's own list (built-in
 * and configured custom types, the leak guard's; anything else is `custom`), so a caller cannot
 * create series at will. Hot-path methods reuse pre-bound label
 * children instead of hashing label values on every call.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { FastCounter, FastHistogram } from './fast-series.js';
import { ERROR_CODES } from '../pipeline/errors.js';
import type { PoolLoad } from '../pipeline/ports.js';
import type { StageName } from '../pipeline/stage.js';
import type { PromptRequest } from '../pipeline/types.js';

export type Protocol = PromptRequest['protocol'];
export type UpstreamOutcome = 'ok' | 'error' | 'timeout' | 'aborted';
/** What is hot-reloaded. The config file is read at start only: there is no config reload to count. */
export type ReloadKind = 'templates' | 'policies';

const UPSTREAM_OUTCOMES: readonly UpstreamOutcome[] = ['ok', 'error', 'timeout', 'aborted'];
const PROTOCOLS: readonly Protocol[] = ['openai-http', 'anthropic-http', 'grpc'];
const STAGES: readonly StageName[] = ['authenticate', 'resolve', 'decide', 'fetch', 'render', 'redact', 'forward', 'respond', 'audit'];

export interface MetricsOptions {
  /** Prefix for the default process metrics (`collectDefaultMetrics`). Default `warden_`. */
  defaultMetricsPrefix?: string;
  /** Collect process metrics (CPU, memory, event loop). Default true. */
  collectDefault?: boolean;
  /**
   * Entity label values for warden_redactions_total (the redactor's `reportedEntities()`); others
   * are counted as `custom`. Can also be set later with `setRedactionEntities`.
   */
  entities?: readonly string[];
  /** Labels on every metric, e.g. `{ environment: 'production' }`. */
  defaultLabels?: Record<string, string>;
}

export interface Metrics {
  readonly registry: Registry;
  readonly requests: FastCounter<'protocol' | 'code'>;
  readonly requestDuration: FastHistogram<'protocol'>;
  readonly stageDuration: FastHistogram<'stage'>;
  readonly policyDecisions: FastCounter<'allow'>;
  readonly policyCache: FastCounter<'result'>;
  readonly upstreamRequests: FastCounter<'provider' | 'outcome'>;
  readonly upstreamDuration: FastHistogram<'provider'>;
  readonly activeStreams: Gauge;
  readonly redactions: FastCounter<'entity'>;
  readonly auditRecords: FastCounter<'outcome'>;
  readonly reloads: Counter<'kind' | 'outcome'>;
  readonly activeRevision: Gauge<'kind' | 'revision'>;

  /** PipelineMetrics: one finished request. `code` is `ok` or a Warden error code. */
  observeRequest(outcome: { protocol: Protocol; code: string; seconds: number; decision?: 'allow' | 'deny' | 'none' }): void;
  /** PipelineMetrics: one stage's duration. */
  observeStage(stage: StageName, seconds: number): void;
  observeDecision(allow: boolean): void;
  /** One policy evaluation: answered by the decision cache (`hit`), evaluated (`miss`: kept once the same input is seen again), or evaluated without it (`off`). */
  observePolicyCache(result: 'hit' | 'miss' | 'off'): void;
  observeUpstream(provider: string, outcome: UpstreamOutcome, seconds: number): void;
  streamOpened(): void;
  streamClosed(): void;
  /** Adds a request's redaction counts (by entity type). */
  observeRedactions(counts: Readonly<Record<string, number>>): void;
  /**
   * The entity types counted under their own name (the runtime passes the redactor's list once it
   * is built); any other name is counted as `custom`, so the label set stays bounded.
   */
  setRedactionEntities(entities: Iterable<string>): void;
  observeAudit(outcome: 'ok' | 'error'): void;
  observeReload(kind: ReloadKind, outcome: 'ok' | 'error'): void;
  /** Sets the active revision of templates or policies (the previous series is removed). */
  setActiveRevision(kind: 'templates' | 'policies', revision: string): void;
  /**
   * Exposes the requests in flight and their limit (`limits.max_in_flight`), read when scraped:
   * nothing on the request path.
   */
  trackInFlight(read: () => number, limit: number): void;
  /**
   * Exposes each provider's upstream connections (calls on one, calls waiting for one, the limit),
   * read when scraped. Names come from config: the label set is bounded.
   */
  trackUpstreamPools(read: () => Iterable<[string, PoolLoad]>): void;
  /**
   * The configured provider names: each one's warden_upstream_requests_total series (every
   * outcome) is exposed at 0 from now on, so the first error or timeout is seen by `increase()`.
   */
  setProviders(names: Iterable<string>): void;
  /** The exposition text for /metrics, and its content type. */
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * LLM-scale tail shared by every histogram: a provider call often takes 5-30 s, and a stream may
 * run to `limits.upstream_timeout_ms` (300 s by default). Past the top bucket a quantile can only
 * read the top bucket's bound, so the bounds go up to that default.
 */
const LONG_TAIL = [10, 20, 30, 60, 120, 300];
// Request latency includes the upstream.
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, ...LONG_TAIL];
// Stage latency is Warden's own work, mostly sub-millisecond, except `forward`, which includes the
// provider's answer (streams: until the first chunk is ready) and so needs the tail too. The
// 1-2.5-5 steps hold throughout: a large prompt's redaction or a heavy policy takes tens of ms,
// where a 10 -> 50 ms bucket would make 12 ms and 48 ms the same to histogram_quantile().
const STAGE_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, ...LONG_TAIL];

const DEFAULT_GAUGES_NAMED_AS_COUNTERS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultLabels) registry.setDefaultLabels(opts.defaultLabels);
  if (opts.collectDefault !== false) {
    const prefix = opts.defaultMetricsPrefix ?? 'warden_';
    collectDefaultMetrics({ register: registry, prefix });
    // prom-client names three gauges `..._total`, a suffix reserved for counters: `promtool check
    // metrics` rejects the exposition. Each is the sum of its per-type gauge (`nodejs_active_handles`
    // by `type`, ...), so nothing is lost by not exposing it.
    for (const name of DEFAULT_GAUGES_NAMED_AS_COUNTERS) registry.removeSingleMetric(`${prefix}${name}`);
  }
  const registers = [registry];

  const requests = new FastCounter({
    name: 'warden_requests_total',
    help: 'Requests finished, by ingress protocol and outcome code (ok or a Warden error code).',
    labelNames: ['protocol', 'code'] as const,
    registers,
  });
  const requestDuration = new FastHistogram({
    name: 'warden_request_duration_seconds',
    help: 'Time from request received to response finished (streams: to the last chunk), upstream included.',
    labelNames: ['protocol'] as const,
    buckets: REQUEST_BUCKETS,
    registers,
  });
  const stageDuration = new FastHistogram({
    name: 'warden_stage_duration_seconds',
    help: 'Time spent in each pipeline stage.',
    labelNames: ['stage'] as const,
    buckets: STAGE_BUCKETS,
    registers,
  });
  const policyDecisions = new FastCounter({
    name: 'warden_policy_decisions_total',
    help: 'Policy decisions, by result.',
    labelNames: ['allow'] as const,
    registers,
  });
  const policyCache = new FastCounter({
    name: 'warden_policy_cache_total',
    help: 'Policy evaluations by decision cache result: hit, miss (evaluated; kept once the same input is seen again), off (cache not used for this policy or input).',
    labelNames: ['result'] as const,
    registers,
  });
  const upstreamRequests = new FastCounter({
    name: 'warden_upstream_requests_total',
    help: 'Calls to model providers, by provider and outcome (ok, error, timeout, aborted).',
    labelNames: ['provider', 'outcome'] as const,
    registers,
  });
  const upstreamDuration = new FastHistogram({
    name: 'warden_upstream_duration_seconds',
    help: 'Duration of calls to model providers (streams: to the last chunk).',
    labelNames: ['provider'] as const,
    buckets: REQUEST_BUCKETS,
    registers,
  });
  const activeStreams = new Gauge({
    name: 'warden_active_streams',
    help: 'Streaming responses currently open.',
    registers,
  });
  let readInFlight: (() => number) | undefined;
  new Gauge({
    name: 'warden_requests_in_flight',
    help: 'Requests being served now, across the app listeners (limits.max_in_flight caps them).',
    registers,
    collect() {
      this.set(readInFlight?.() ?? 0);
    },
  });
  const inFlightLimit = new Gauge({
    name: 'warden_requests_in_flight_limit',
    help: 'limits.max_in_flight: requests past it are refused with overloaded.',
    registers,
  });
  let readPools: (() => Iterable<[string, PoolLoad]>) | undefined;
  /** One gauge per field of the pools' load, each filled from one read when scraped. */
  const poolGauge = (name: string, help: string, value: (load: PoolLoad) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['provider'] as const,
      registers,
      collect() {
        for (const [provider, load] of readPools?.() ?? []) {
          const v = value(load);
          if (v !== undefined) this.labels(provider).set(v);
        }
      },
    });
  poolGauge('warden_upstream_active', 'Calls to a provider on an upstream connection now (sent, or being answered).', (l) => l.active);
  poolGauge(
    'warden_upstream_queued',
    'Calls to a provider waiting for an upstream connection: all its pool.connections are busy. They wait within limits.upstream_timeout_ms.',
    (l) => l.queued,
  );
  poolGauge(
    'warden_upstream_connections_limit',
    "A provider's pool.connections (default limits.max_in_flight): most calls to it at once.",
    (l) => l.limit,
  );
  const redactions = new FastCounter({
    name: 'warden_redactions_total',
    help: 'PII and secret findings redacted, by entity type (built-in, configured custom, SECRET_VALUE for the leak guard).',
    labelNames: ['entity'] as const,
    registers,
  });
  const auditRecords = new FastCounter({
    name: 'warden_audit_records_total',
    help: 'Audit records written (ok) or that could not be written (error).',
    labelNames: ['outcome'] as const,
    registers,
  });
  const reloads = new Counter({
    name: 'warden_reload_total',
    help: 'Hot reloads of templates or policies, by kind and outcome.',
    labelNames: ['kind', 'outcome'] as const,
    registers,
  });
  const activeRevision = new Gauge({
    name: 'warden_active_revision_info',
    help: 'The revision of templates and policies currently serving (value is always 1).',
    labelNames: ['kind', 'revision'] as const,
    registers,
  });

  // Pre-bound children: the hot path does a Map lookup, not a label hash.
  const codes = ['ok', ...Object.keys(ERROR_CODES)];
  // Every series the hot path touches is resolved here, once.
  const requestChildren = new Map<string, ReturnType<typeof requests.series>>();
  const durationChildren = new Map<string, ReturnType<typeof requestDuration.series>>();
  for (const protocol of PROTOCOLS) {
    durationChildren.set(protocol, requestDuration.series(protocol));
    for (const code of codes) requestChildren.set(`${protocol}\u0000${code}`, requests.series(protocol, code));
  }
  const stageChildren = new Map(STAGES.map((s) => [s, stageDuration.series(s)] as const));
  const allowChild = policyDecisions.series('true');
  const denyChild = policyDecisions.series('false');
  const cacheChildren = { hit: policyCache.series('hit'), miss: policyCache.series('miss'), off: policyCache.series('off') };
  const auditOk = auditRecords.series('ok');
  const auditError = auditRecords.series('error');
  // Every counter series whose label values are known now is exposed at 0 from the start: a series
  // that first appears at 1 has no earlier sample for `rate()`/`increase()` to count from, so the
  // first bad reload, the first leaked secret or the first `internal` would never fire the alerts
  // README suggests. (The providers' series: setProviders, once the config names them.)
  for (const child of requestChildren.values()) child.inc(0);
  for (const child of [allowChild, denyChild, cacheChildren.hit, cacheChildren.miss, cacheChildren.off, auditOk, auditError]) child.inc(0);
  for (const kind of ['templates', 'policies'] as const) for (const outcome of ['ok', 'error'] as const) reloads.labels(kind, outcome).inc(0);
  // Provider names come from config (bounded); their series are made on first use (or by
  // setProviders) and kept.
  const upstreamChildren = new Map<string, { count: ReturnType<typeof upstreamRequests.series>; duration: ReturnType<typeof upstreamDuration.series> }>();
  const upstreamSeries = (provider: string, outcome: UpstreamOutcome) => {
    const c = { count: upstreamRequests.series(provider, outcome), duration: upstreamDuration.series(provider) };
    upstreamChildren.set(`${provider}\u0000${outcome}`, c);
    return c;
  };
  let entityNames = new Set<string>();
  /** The entity types counted under their own name, each exposed at 0 until its first finding. */
  const countEntities = (entities: Iterable<string>): void => {
    entityNames = new Set(entities);
    for (const entity of [...entityNames, 'custom']) redactions.series(entity).inc(0);
  };
  countEntities(opts.entities ?? []);
  const revisions = new Map<string, string>();

  const metrics: Metrics = {
    registry,
    requests,
    requestDuration,
    stageDuration,
    policyDecisions,
    policyCache,
    upstreamRequests,
    upstreamDuration,
    activeStreams,
    redactions,
    auditRecords,
    reloads,
    activeRevision,

    observeRequest({ protocol, code, seconds }) {
      const p = PROTOCOLS.includes(protocol) ? protocol : 'openai-http';
      const child = requestChildren.get(`${p}\u0000${code}`) ?? requestChildren.get(`${p}\u0000internal`)!;
      child.inc();
      durationChildren.get(p)!.observe(seconds);
    },
    observeStage(stage, seconds) {
      stageChildren.get(stage)?.observe(seconds);
    },
    observeDecision(allow) {
      (allow ? allowChild : denyChild).inc();
    },
    observePolicyCache(result) {
      cacheChildren[result].inc();
    },
    observeUpstream(provider, outcome, seconds) {
      const c = upstreamChildren.get(`${provider}\u0000${outcome}`) ?? upstreamSeries(provider, outcome);
      c.count.inc();
      c.duration.observe(seconds);
    },
    streamOpened() {
      activeStreams.inc();
    },
    streamClosed() {
      activeStreams.dec();
    },
    observeRedactions(counts) {
      for (const entity in counts) {
        const n = counts[entity]!;
        if (n > 0) redactions.series(entityNames.has(entity) ? entity : 'custom').inc(n);
      }
    },
    setRedactionEntities(entities) {
      countEntities(entities);
    },
    observeAudit(outcome) {
      (outcome === 'ok' ? auditOk : auditError).inc();
    },
    observeReload(kind, outcome) {
      reloads.labels(kind, outcome).inc();
    },
    setActiveRevision(kind, revision) {
      const previous = revisions.get(kind);
      if (previous === revision) return;
      if (previous !== undefined) activeRevision.remove(kind, previous);
      activeRevision.labels(kind, revision).set(1);
      revisions.set(kind, revision);
    },
    trackInFlight(read, limit) {
      readInFlight = read;
      inFlightLimit.set(limit);
    },
    trackUpstreamPools(read) {
      readPools = read;
    },
    setProviders(names) {
      for (const provider of names) for (const outcome of UPSTREAM_OUTCOMES) upstreamSeries(provider, outcome).count.inc(0);
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
  return metrics;
}
