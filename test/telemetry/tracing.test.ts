import { describe, expect, it } from 'vitest';
import { TraceFlags } from '@opentelemetry/api';
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent, startTrace, toSpanContext } from '../../src/telemetry/index.js';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('traceparent', () => {
  it('parses the spec example', () => {
    expect(parseTraceparent(VALID)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', sampled: true });
    expect(parseTraceparent(VALID.replace(/01$/, '00'))?.sampled).toBe(false);
  });

  it('rejects malformed headers', () => {
    for (const bad of [
      undefined,
      '',
      'garbage',
      VALID.toUpperCase(),
      `ff${VALID.slice(2)}`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`,
      `${VALID}-extra`, // version 00 has exactly 55 characters
      VALID.replace(/-01$/, '-zz'),
      VALID.replace('-00f0', '_00f0'),
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
  });

  it('accepts a future version with extra fields', () => {
    expect(parseTraceparent(`01${VALID.slice(2)}-what-ever`)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('startTrace continues a valid trace with a new span, else starts one', () => {
    const cont = startTrace(VALID);
    expect(cont.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(cont.parentSpanId).toBe('00f067aa0ba902b7');
    expect(cont.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(cont.spanId).not.toBe('00f067aa0ba902b7');
    const fresh = startTrace('nonsense');
    expect(fresh.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh.parentSpanId).toBeUndefined();
  });

  it('formats the upstream traceparent, round-tripping through the parser', () => {
    const ids = startTrace(VALID);
    const header = formatTraceparent(ids);
    expect(header).toBe(`00-${ids.traceId}-${ids.spanId}-01`);
    expect(parseTraceparent(header)).toEqual({ traceId: ids.traceId, parentId: ids.spanId, sampled: true });
  });

  it('ids are unique and well-formed across pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const t = newTraceId();
      const s = newSpanId();
      expect(t).toMatch(/^[0-9a-f]{32}$/);
      expect(s).toMatch(/^[0-9a-f]{16}$/);
      seen.add(t);
    }
    expect(seen.size).toBe(2000);
  });

  it('exposes an OpenTelemetry SpanContext', () => {
    const ids = startTrace(VALID);
    expect(toSpanContext(ids)).toEqual({ traceId: ids.traceId, spanId: ids.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false });
  });
});
