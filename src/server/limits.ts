import { DEFAULT_MAX_JSON_DEPTH, DEFAULT_MAX_JSON_VALUES } from '../pipeline/json-depth.js';
import { MIB } from '../pipeline/sizes.js';

/** Ingress limits, filled from the config's `limits` section by the runtime. */
export interface IngressLimits {
  /** Largest accepted request body, in bytes (413 `payload_too_large` above it). */
  maxBodyBytes: number;
  /** Largest accepted request header block, in bytes (node's `maxHeaderSize`; 431 above it). */
  maxHeaderBytes: number;
  /** Most template variables one request may carry. */
  maxVariables: number;
  /** Longest variable value, in characters (a template may declare a shorter one). */
  maxVariableLength: number;
  /** Deepest nesting of objects and arrays in a request's JSON (see json-depth.ts). */
  maxJsonDepth: number;
  /**
   * Most values in one large JSON text of a request: the HTTP body, a gRPC JSON field, tool-call
   * arguments (see scanJson: arrays, objects and commas, outside strings).
   */
  maxJsonValues: number;
  /** Requests served at once across the app listeners; more are refused `overloaded`. */
  maxInFlight: number;
  /** How long a client may take to send its request, in milliseconds (node's `requestTimeout`). */
  requestTimeoutMs: number;
  /** How long a connection with nothing under way stays open, in ms (limits.idle_timeout_ms). */
  idleTimeoutMs: number;
  /** Open connections each listener holds at most (limits.max_connections). */
  maxConnections: number;
  /**
   * The upstream deadline (limits.upstream_timeout_ms), which also bounds how long a client that
   * does not read may keep a non-streamed answer unsent. Unset: unbounded.
   */
  upstreamTimeoutMs?: number;
}

export const DEFAULT_LIMITS: IngressLimits = {
  maxBodyBytes: MIB,
  maxHeaderBytes: 16 * 1024,
  maxVariables: 64,
  maxVariableLength: 32 * 1024,
  maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
  maxJsonValues: DEFAULT_MAX_JSON_VALUES,
  maxInFlight: 1024,
  requestTimeoutMs: 120_000,
  idleTimeoutMs: 65_000,
  maxConnections: 1024,
};
