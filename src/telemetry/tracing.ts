/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): continue the caller's trace when it
 * sends a valid `traceparent`, otherwise start one; give each request its own span id; pass a
 * `traceparent` upstream so the provider's spans join the same trace. Ids are exposed as an
 * OpenTelemetry SpanContext so a span exporter can be attached later without changing callers.
 */
import { randomFillSync } from 'node:crypto';
import { TraceFlags, type SpanContext } from '@opentelemetry/api';

export interface TraceParent {
  traceId: string;
  /** The caller's span id (our parent). */
  parentId: string;
  sampled: boolean;
}

export interface TraceIds {
  traceId: string;
  spanId: string;
  /** The caller's span, when the trace was continued. */
  parentSpanId?: string;
  sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** Parses a `traceparent` header; undefined when absent or invalid (the spec says: start a new trace). */
export function parseTraceparent(header: string | undefined): TraceParent | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value.length < 55) return undefined;
  const version = value.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return undefined;
  // Version 00 is exactly 55 characters; a later version may append fields after a dash.
  if (version === '00' ? value.length !== 55 : value.length > 55 && value[55] !== '-') return undefined;
  if (value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return undefined;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!HEX.test(traceId) || traceId === ZERO_TRACE) return undefined;
  if (!HEX.test(parentId) || parentId === ZERO_SPAN) return undefined;
  if (!HEX.test(flags)) return undefined;
  return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

// Ids come from a pooled random buffer: one randomFillSync per 256 ids instead of one per id.
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL_BYTES) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
    poolOffset += bytes;
    // All-zero ids are invalid per the spec (vanishingly rare, but cheap to rule out).
    if (hex !== ZERO_TRACE && hex !== ZERO_SPAN) return hex;
  }
}

export function newTraceId(): string {
  return randomHex(16);
}

export function newSpanId(): string {
  return randomHex(8);
}

/** Ids for one request: the caller's trace continued when valid, a new span either way. */
export function startTrace(traceparent?: string): TraceIds {
  const parent = parseTraceparent(traceparent);
  if (parent) return { traceId: parent.traceId, spanId: newSpanId(), parentSpanId: parent.parentId, sampled: parent.sampled };
  return { traceId: newTraceId(), spanId: newSpanId(), sampled: false };
}

/** The `traceparent` to send upstream: our span is the upstream call's parent. */
export function formatTraceparent(ids: { traceId: string; spanId: string; sampled?: boolean }): string {
  return `00-${ids.traceId}-${ids.spanId}-${ids.sampled ? '01' : '00'}`;
}

/** The same ids as an OpenTelemetry SpanContext (for `trace.wrapSpanContext` or an exporter). */
export function toSpanContext(ids: TraceIds): SpanContext {
  return { traceId: ids.traceId, spanId: ids.spanId, traceFlags: ids.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: false };
}
