import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/telemetry/index.js';
import { BUILTIN_ENTITIES, createRedactor } from '../../src/redact/index.js';
import type { PipelineMetrics } from '../../src/pipeline/index.js';

function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('createMetrics', () => {
  it('each instance has its own registry with process metrics under the prefix', async () => {
    const a = createMetrics();
    const b = createMetrics({ defaultMetricsPrefix: 'other_' });
    a.observeDecision(true);
    const textA = await a.render();
    const textB = await b.render();
    expect(textA).toContain('warden_process_cpu_user_seconds_total');
    expect(textB).toContain('other_process_cpu_user_seconds_total');
    expect(valueOf(textA, 'warden_policy_decisions_total{allow="true"}')).toBe(1);
    expect(valueOf(textB, 'warden_policy_decisions_total{allow="true"}')).toBe(0);
    expect(a.contentType).toMatch(/^text\/plain/);
  });

  it('satisfies the pipeline metrics port and counts requests by protocol and code', async () => {
    const m = createMetrics({ collectDefault: false });
    const port: PipelineMetrics = m;
    port.observeRequest({ protocol: 'openai-http', action: 'prompt.execute', code: 'ok', stream: false, seconds: 0.002, decision: 'allow' });
    port.observeRequest({ protocol: 'grpc', action: 'prompt.execute', code: 'policy_denied', stream: false, seconds: 0.001, decision: 'deny' });
    // An unknown code cannot mint a new series: it is counted as internal.
    port.observeRequest({ protocol: 'grpc', action: 'prompt.execute', code: 'made-up', stream: false, seconds: 0.001, decision: 'none' });
    port.observeStage('decide', 0.00002);
    const text = await m.render();
    expect(valueOf(text, 'warden_requests_total{protocol="openai-http",code="ok"}')).toBe(1);
    expect(valueOf(text, 'warden_requests_total{protocol="grpc",code="policy_denied"}')).toBe(1);
    expect(valueOf(text, 'warden_requests_total{protocol="grpc",code="internal"}')).toBe(1);
    expect(text).not.toContain('made-up');
    expect(valueOf(text, 'warden_request_duration_seconds_count{protocol="grpc"}')).toBe(2);
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="0.000025",stage="decide"}')).toBe(1);
    expect(valueOf(text, 'warden_stage_duration_seconds_count{stage="decide"}')).toBe(1);
  });

  it('histogram buckets reach an LLM call (forward includes the provider) and a 300 s stream', async () => {
    const m = createMetrics({ collectDefault: false });
    m.observeStage('forward', 8);
    m.observeStage('decide', 0.00002);
    m.observeRequest({ protocol: 'openai-http', code: 'ok', seconds: 290 });
    m.observeUpstream('openai', 'ok', 290);
    const text = await m.render();
    // An 8 s provider call lands in a finite bucket, so a quantile reads 8-ish, not the top bucket.
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="5",stage="forward"}')).toBe(0);
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="10",stage="forward"}')).toBe(1);
    // A stream as long as the default upstream_timeout_ms (300 s) is still inside the buckets.
    expect(valueOf(text, 'warden_request_duration_seconds_bucket{le="120",protocol="openai-http"}')).toBe(0);
    expect(valueOf(text, 'warden_request_duration_seconds_bucket{le="300",protocol="openai-http"}')).toBe(1);
    expect(valueOf(text, 'warden_upstream_duration_seconds_bucket{le="300",provider="openai"}')).toBe(1);
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="300",stage="forward"}')).toBe(1);
    // Modest: a stage series stays under 25 buckets, sub-millisecond resolution kept.
    const decideBuckets = text.split('\n').filter((l) => l.startsWith('warden_stage_duration_seconds_bucket{') && l.includes('stage="decide"'));
    expect(decideBuckets.length).toBeLessThanOrEqual(25);
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="0.000025",stage="decide"}')).toBe(1);
  });

  it('stage buckets keep the 1-2.5-5 steps from 10 µs to 5 s: a 20 ms stage reads apart from a 45 ms one', async () => {
    const m = createMetrics({ collectDefault: false });
    // A redaction of a large prompt or a heavy policy takes tens of milliseconds: with a bucket
    // from 10 ms to 50 ms, histogram_quantile() could not tell 12 ms from 48 ms, nor an SLO at
    // 25 ms be written.
    m.observeStage('redact', 0.02);
    m.observeStage('redact', 0.045);
    m.observeStage('decide', 0.2);
    const text = await m.render();
    const bounds = text
      .split('\n')
      .filter((l) => l.startsWith('warden_stage_duration_seconds_bucket{') && l.includes('stage="redact"'))
      .map((l) => /le="([^"]+)"/.exec(l)![1]!)
      .filter((le) => le !== '+Inf')
      .map(Number)
      .filter((b) => b <= 5);
    for (let i = 1; i < bounds.length; i++) expect(bounds[i]! / bounds[i - 1]!, `${bounds[i - 1]} -> ${bounds[i]}`).toBeLessThanOrEqual(2.5);
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="0.025",stage="redact"}')).toBe(1);
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="0.05",stage="redact"}')).toBe(2);
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="0.1",stage="decide"}')).toBe(0);
    expect(valueOf(text, 'warden_stage_duration_seconds_bucket{le="0.25",stage="decide"}')).toBe(1);
  });

  it('upstream, streams, audit, reload', async () => {
    const m = createMetrics({ collectDefault: false });
    m.observeUpstream('openai', 'ok', 0.1);
    m.observeUpstream('openai', 'timeout', 5);
    m.streamOpened();
    m.streamOpened();
    m.streamClosed();
    m.observeAudit('ok');
    m.observeAudit('error');
    m.observeReload('templates', 'error');
    const text = await m.render();
    expect(valueOf(text, 'warden_upstream_requests_total{provider="openai",outcome="ok"}')).toBe(1);
    expect(valueOf(text, 'warden_upstream_requests_total{provider="openai",outcome="timeout"}')).toBe(1);
    expect(valueOf(text, 'warden_upstream_duration_seconds_count{provider="openai"}')).toBe(2);
    expect(valueOf(text, 'warden_active_streams')).toBe(1);
    expect(valueOf(text, 'warden_audit_records_total{outcome="error"}')).toBe(1);
    expect(valueOf(text, 'warden_reload_total{kind="templates",outcome="error"}')).toBe(1);
  });

  it('warden_reload_total names only what is reloaded: templates and policies (the config file is read at start)', async () => {
    const m = createMetrics({ collectDefault: false });
    const help = (await m.render()).split('\n').find((l) => l.startsWith('# HELP warden_reload_total '));
    expect(help).toBeDefined();
    expect(help).toMatch(/templates/);
    expect(help).toMatch(/polic/);
    expect(help).not.toMatch(/config/);
    // @ts-expect-error -- there is no config reload to count (tsc fails here if 'config' is a kind again).
    m.observeReload('config', 'ok');
  });

  it('redaction entity labels are bounded to known names plus custom', async () => {
    const m = createMetrics({ collectDefault: false, entities: ['EMAIL_ADDRESS', 'PHONE_NUMBER'] });
    m.observeRedactions({ EMAIL_ADDRESS: 2, CUSTOMER_ID: 3, 'user-chosen-name-1': 1, PHONE_NUMBER: 0 });
    const text = await m.render();
    expect(valueOf(text, 'warden_redactions_total{entity="EMAIL_ADDRESS"}')).toBe(2);
    expect(valueOf(text, 'warden_redactions_total{entity="custom"}')).toBe(4);
    expect(text).not.toContain('CUSTOMER_ID');
    expect(text).not.toContain('user-chosen');
    expect(valueOf(text, 'warden_redactions_total{entity="PHONE_NUMBER"}')).toBe(0);
  });

  it('exposes every counter series with known labels at 0 before its first event, so rate() and increase() see the first one', async () => {
    const m = createMetrics({ collectDefault: false, entities: ['EMAIL_ADDRESS'] });
    m.setRedactionEntities(['EMAIL_ADDRESS', 'SECRET_VALUE']);
    const text = await m.render();
    // The series README's alerts read: a first rejected reload, leaked secret, internal error.
    for (const kind of ['templates', 'policies']) {
      for (const outcome of ['ok', 'error']) expect(valueOf(text, `warden_reload_total{kind="${kind}",outcome="${outcome}"}`), `${kind} ${outcome}`).toBe(0);
    }
    expect(valueOf(text, 'warden_redactions_total{entity="SECRET_VALUE"}')).toBe(0);
    expect(valueOf(text, 'warden_redactions_total{entity="EMAIL_ADDRESS"}')).toBe(0);
    expect(valueOf(text, 'warden_redactions_total{entity="custom"}')).toBe(0);
    for (const protocol of ['openai-http', 'anthropic-http', 'grpc']) {
      for (const code of ['ok', 'internal', 'audit_unavailable', 'policy_error']) expect(valueOf(text, `warden_requests_total{protocol="${protocol}",code="${code}"}`), `${protocol} ${code}`).toBe(0);
    }
    expect(valueOf(text, 'warden_audit_records_total{outcome="error"}')).toBe(0);
    expect(valueOf(text, 'warden_policy_decisions_total{allow="false"}')).toBe(0);
    expect(valueOf(text, 'warden_policy_cache_total{result="off"}')).toBe(0);
    m.setProviders(['openai', 'local']);
    for (const outcome of ['ok', 'error', 'timeout', 'aborted']) {
      expect(valueOf(await m.render(), `warden_upstream_requests_total{provider="openai",outcome="${outcome}"}`), outcome).toBe(0);
    }
    // Histograms are not: an empty one would be two dozen lines per series, and no alert needs its first observation.
    expect(text).not.toMatch(/^warden_request_duration_seconds_count/m);
    expect(await m.render()).not.toMatch(/^warden_upstream_duration_seconds_count/m);
  });

  it("labels every entity type the redactor reports with its own name, and only those", async () => {
    const redactor = createRedactor({ customEntities: [{ name: 'CUSTOMER_ID', pattern: 'CUST-[0-9]{6}' }] });
    const names = redactor.reportedEntities();
    // Built-in detectors, the configured custom entity and the leak guard's SECRET_VALUE.
    expect(names).toEqual(expect.arrayContaining([...BUILTIN_ENTITIES, 'CUSTOMER_ID', 'SECRET_VALUE']));
    const m = createMetrics({ collectDefault: false });
    m.setRedactionEntities(names);
    m.observeRedactions(Object.fromEntries(names.map((n) => [n, 1])));
    m.observeRedactions({ NOT_CONFIGURED: 2 });
    const text = await m.render();
    for (const n of names) expect(valueOf(text, `warden_redactions_total{entity="${n}"}`), n).toBe(1);
    expect(valueOf(text, 'warden_redactions_total{entity="custom"}')).toBe(2);
    expect(text).not.toContain('NOT_CONFIGURED');
  });

  it('active revision keeps exactly one series per kind', async () => {
    const m = createMetrics({ collectDefault: false });
    m.setActiveRevision('templates', 'aaa');
    m.setActiveRevision('policies', 'p1');
    m.setActiveRevision('templates', 'bbb');
    const text = await m.render();
    expect(valueOf(text, 'warden_active_revision_info{kind="templates",revision="bbb"}')).toBe(1);
    expect(valueOf(text, 'warden_active_revision_info{kind="policies",revision="p1"}')).toBe(1);
    expect(text).not.toContain('revision="aaa"');
  });
});
