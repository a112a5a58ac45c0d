/** Telemetry: logger (pino), metrics (prom-client), trace ids (W3C Trace Context). */
export { createLogger, REDACTED, type Logger, type LoggerConfig, type LogLevel } from './logger.js';
export {
  createMetrics,
  type Metrics,
  type MetricsOptions,
  type Protocol,
  type ReloadKind,
  type UpstreamOutcome,
} from './metrics.js';
export {
  parseTraceparent,
  startTrace,
  formatTraceparent,
  newTraceId,
  newSpanId,
  toSpanContext,
  type TraceIds,
  type TraceParent,
} from './tracing.js';
