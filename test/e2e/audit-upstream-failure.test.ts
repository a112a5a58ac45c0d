/**
 * The audit record says what the upstream did when a request failed at its call
 * (`upstream_failure`): the HTTP status it answered, or how the call failed without one (a
 * deadline, no connection, an answer Warden refused). Bounded (a kind and a status), and never
 * anything of the upstream's body, which may quote the prompt back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/index.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream, type UpstreamMode } from './helpers/upstream.js';
import { DOWN_URL, eventually, startWarden, type WardenFixture } from './helpers/warden.js';

// In the prompt: an upstream that quotes its input back (bad-request mode) has it in its body.
const CANARY = 'CANARY-UPSTREAM-3b9d21';

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;

beforeAll(async () => {
  upstream = await startUpstream();
  // A deadline short enough for the stalled upstream, long enough for a loaded machine's answers.
  w = await startWarden({
    upstreamUrl: upstream.url,
    limits: 'limits: { max_body_bytes: 65536, max_variables: 8, max_variable_length: 4096, client_timeout_ms: 10000, upstream_timeout_ms: 2000, shutdown_grace_ms: 2000 }',
  });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

function governed(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: `My code is ${CANARY}` } }, ...extra });
}

/** Sends one governed call through `fixture` and resolves with its HTTP status and its audit record. */
async function call(fixture: WardenFixture, extra: Record<string, unknown> = {}, bearer = token): Promise<{ status: number; record: Record<string, any> }> {
  const res = await postChat(fixture.addresses.http, bearer, governed(extra));
  await res.text();
  const id = res.headers.get('x-request-id');
  await eventually(() => fixture.audit().some((r) => r.request_id === id));
  return { status: res.status, record: fixture.audit().find((r) => r.request_id === id)! };
}

describe('upstream_failure in the audit record', () => {
  const cases: Array<[UpstreamMode, boolean, number, string, { kind: string; phase: unknown; status: number | null } | null]> = [
    ['ok', false, 200, 'ok', null],
    ['ok', true, 200, 'ok', null],
    ['bad-request', false, 400, 'upstream_rejected', { kind: 'status', phase: null, status: 400 }],
    ['rate-limited', false, 429, 'upstream_rate_limited', { kind: 'status', phase: null, status: 429 }],
    ['error500', false, 502, 'upstream_error', { kind: 'status', phase: null, status: 500 }],
    ['error500', true, 502, 'upstream_error', { kind: 'status', phase: null, status: 500 }],
    ['garbage', false, 502, 'upstream_error', { kind: 'bad_answer', phase: null, status: null }],
    // The headers timeout (1.5 s after the call went out) or the deadline (2 s after the request came in), whichever a loaded machine meets first.
    ['slow', false, 504, 'upstream_timeout', { kind: 'timeout', phase: expect.stringMatching(/^(headers|deadline)$/), status: null }],
  ];
  for (const [mode, stream, status, outcome, failure] of cases) {
    it(`${mode}${stream ? ' (stream)' : ''}: ${status} ${outcome}, upstream_failure ${failure === null ? 'null' : failure.kind}`, async () => {
      upstream.mode = mode;
      const { status: got, record } = await call(w, stream ? { stream: true } : {});
      expect(got).toBe(status);
      expect(record).toMatchObject({ status: outcome === 'ok' ? 'ok' : 'error', error_code: outcome === 'ok' ? null : outcome, upstream_failure: failure });
      // Exactly these members: a kind, a timeout's phase, a status.
      if (failure) expect(Object.keys(record.upstream_failure as object).sort()).toEqual(['kind', 'phase', 'status']);
    });
  }

  it('a stream the deadline cuts after its first chunk is a timeout', async () => {
    upstream.mode = 'stream-slow';
    const { status, record } = await call(w, { stream: true });
    expect(status).toBe(200);
    expect(record).toMatchObject({ status: 'error', error_code: 'upstream_timeout', upstream_failure: { kind: 'timeout', phase: 'deadline', status: null } });
  });

  it('a stream the client leaves mid-way is cancelled: no upstream failure', async () => {
    upstream.mode = 'stream-slow';
    const aborted = upstream.aborted;
    const controller = new AbortController();
    const res = await fetch(`${w.addresses.http}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: governed({ stream: true }),
      signal: controller.signal,
    });
    const id = res.headers.get('x-request-id');
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await aborted;
    await eventually(() => w.audit().some((r) => r.request_id === id));
    expect(w.audit().find((r) => r.request_id === id)).toMatchObject({ stream: true, error_code: 'cancelled', upstream_failure: null });
  });

  it('an upstream nobody listens on is unreachable', async () => {
    const down = await startWarden({ upstreamUrl: DOWN_URL });
    try {
      const { status, record } = await call(down, {}, await down.signer.token('support', 'ticket-bot'));
      expect(status).toBe(502);
      expect(record).toMatchObject({ error_code: 'upstream_error', upstream_failure: { kind: 'unreachable', phase: null, status: null } });
      expect(verifyChain(down.audit()).ok).toBe(true);
    } finally {
      await down.close();
    }
  });

  it('a request refused before the call has none; nothing of the prompt or the upstream body is recorded', async () => {
    upstream.mode = 'ok';
    const res = await postChat(w.addresses.http, token, JSON.stringify({ model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1' } } }));
    expect(res.status).toBe(400);
    const id = res.headers.get('x-request-id');
    await eventually(() => w.audit().some((r) => r.request_id === id));
    expect(w.audit().find((r) => r.request_id === id)).toMatchObject({ error_code: 'variable_missing', upstream_failure: null });
    const records = w.audit();
    expect(verifyChain(records).ok).toBe(true);
    expect(JSON.stringify(records)).not.toContain(CANARY);
    expect(JSON.stringify(records)).not.toContain('context too long');
    expect(w.logs.join('\n')).not.toContain(CANARY);
  });
});
