/**
 * A caller the policy allows some models must not learn which *other* models are configured:
 * `GET /v1/models/{id}` answers 404 for a configured model it may not use exactly as for a name
 * nobody configured, and the chat routes and gRPC must not tell the two apart either (the error
 * body once named a configured model and left any other name out). A real Warden whose policy
 * allows one model, configured with a second it does not allow, driven over HTTP (both routes)
 * and gRPC.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { postRoute } from './helpers/http.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import type { FakeUpstream } from './helpers/upstream.js';
import type { WardenFixture } from './helpers/warden.js';

/** Configured (routed to echo) but never allowed by the policy below. */
const HIDDEN = 'internal-finetune-7';
/** Configured nowhere. */
const ABSENT = 'internal-finetune-8';

const POLICY = 'package warden\n\nimport rego.v1\n\ndecision := {"allow": true, "models": ["gpt-4o-mini"], "secrets": input.template.secret_refs}\n';
const GOVERNED = { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hi' } };

let g: GatewayWarden;
let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;
let gateway: any;

beforeAll(async () => {
  g = await startGatewayWarden({
    files: { 'policies/e2e.rego': POLICY },
    models: `models: { gpt-4o-mini: upstream, echo: echo, ${HIDDEN}: echo }`,
  });
  ({ upstream, w, token, gateway } = g);
});

afterAll(async () => {
  await g?.close();
});

/** The error body without its per-request ids (decision, and request on /v1/messages), so two answers compare whole. */
function withoutIds(text: string): unknown {
  const body = JSON.parse(text) as { error: { details?: Record<string, unknown> }; request_id?: string };
  expect(body.error.details?.decision_id).toEqual(expect.any(String));
  delete body.error.details!.decision_id;
  delete body.request_id;
  return body;
}

async function grpcRefusal(model: string): Promise<{ code: number | undefined; details: string; warden: string[] }> {
  try {
    await unaryCall(gateway, 'Complete', { model, template: { id: 'support/ticket-summary', version: 2 }, variables: GOVERNED.variables }, bearerMetadata(token));
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details, warden: e.metadata.get('warden-code').map(String) };
  }
  throw new Error('expected the call to be refused');
}

describe('a configured model the policy does not allow', () => {
  it('GET /v1/models/{id}: the same 404 as a model nobody configured', async () => {
    const answers = [];
    for (const id of [HIDDEN, ABSENT]) {
      const res = await fetch(`${w.addresses.http}/v1/models/${id}`, { headers: { authorization: `Bearer ${token}` } });
      answers.push({ status: res.status, body: await res.text() });
    }
    expect(answers[0]!.status).toBe(404);
    expect(answers[0]).toEqual(answers[1]);
  });

  for (const route of ['/v1/chat/completions', '/v1/messages']) {
    it(`POST ${route}: the same refusal as a model nobody configured, naming neither`, async () => {
      const body = (model: string) => (route === '/v1/messages' ? { model, max_tokens: 64, messages: [], warden: GOVERNED } : { model, warden: GOVERNED });
      const hidden = await postRoute(w.addresses.http, route, body(HIDDEN), token);
      const absent = await postRoute(w.addresses.http, route, body(ABSENT), token);
      expect(hidden.status, hidden.text).toBe(403);
      expect(hidden.text).toContain('model_not_allowed');
      expect(hidden.text).not.toContain(HIDDEN);
      expect(withoutIds(hidden.text)).toEqual(withoutIds(absent.text));
      expect(upstream.calls).toHaveLength(0);
    });
  }

  it('gRPC: the same PERMISSION_DENIED as a model nobody configured, naming neither', async () => {
    const hidden = await grpcRefusal(HIDDEN);
    const absent = await grpcRefusal(ABSENT);
    expect(hidden).toMatchObject({ code: grpc.status.PERMISSION_DENIED, warden: ['model_not_allowed'] });
    expect(hidden.details).not.toContain(HIDDEN);
    expect(hidden.details).toBe(absent.details);
  });

  it('is still named in the audit record, for the operator', () => {
    const refused = w.audit().filter((r) => r.error_code === 'model_not_allowed');
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(refused.filter((r) => r.model === HIDDEN).length).toBe(refused.filter((r) => r.model === null).length);
  });
});
