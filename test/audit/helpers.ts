/** Shared by the audit tests: a minimal record body, and `warden audit verify` run in-process. */
import { runAuditCli, type AuditRecordBody } from '../../src/audit/index.js';

/** The body of record `i`: every member present, times one millisecond apart. */
export function body(i: number): AuditRecordBody {
  return {
    time: new Date(1_750_000_000_000 + i).toISOString(),
    request_id: `req-${i}`,
    trace_id: '0af7651916cd43dd8448eb211c80319c',
    span_id: 'b7ad6b7169203331',
    decision_id: null,
    principal: null,
    action: 'prompt.execute',
    template: null,
    approval: null,
    environment: 'test',
    policy_revision: 'rev',
    template_revision: 'template-rev',
    decision: null,
    secret_refs: [],
    redaction: null,
    prompt_hmac: null,
    provider: null,
    model: 'echo',
    usage: null,
    status: 'ok',
    error_code: null,
    upstream_failure: null,
    latency_ms: 1.5,
    stream: false,
  };
}

/** Runs `warden audit verify ARGS` and collects its exit code and output. */
export async function verify(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runAuditCli(['verify', ...args], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}
