/**
 * The policy decision contract end to end: what a decision leaves out (redaction profile and
 * modes), what it asks for (variable names in the audit record), what the policy sees of the
 * caller's token limit on every ingress and what the upstream then receives, and the log lines a
 * broken decision leaves. A real Warden with its own policy, real HTTP and gRPC clients, and the
 * loopback OpenAI-contract upstream recording each body.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/index.js';
import { bearerMetadata, gatewayClient, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

const POLICY_HEAD = 'package warden\n\nimport rego.v1\n\n';
/** A GitHub token: a SECRETS entity (the strict profile blocks secrets, standard masks them). */
const GITHUB_TOKEN = 'ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5';
const VARIABLE_VALUE = 'CANARY-VARIABLE-VALUE-31';
const TEMPLATE = { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: VARIABLE_VALUE } };

interface Harness {
  w: WardenFixture;
  up: FakeUpstream;
  token: string;
}

async function withWarden(policy: string, fn: (h: Harness) => Promise<void>, extraConfig?: string): Promise<void> {
  const up = await startUpstream();
  const w = await startWarden({ upstreamUrl: up.url, extraConfig, files: { 'policies/e2e.rego': POLICY_HEAD + policy } });
  try {
    await fn({ w, up, token: await w.signer.token('support', 'ticket-bot') });
  } finally {
    await w.close();
    await up.close();
  }
}

async function chat(h: Harness, body: object): Promise<{ status: number; body: any }> {
  const r = await fetch(`${h.w.addresses.http}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token}` },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

function grpcComplete(h: Harness, request: object): Promise<any> {
  return unaryCall(gatewayClient(h.w.addresses.grpc), 'Complete', request, bearerMetadata(h.token));
}

const GRPC_TEMPLATE = { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary' }, variables: TEMPLATE.variables };

const withToken = { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: `my token is ${GITHUB_TOKEN}` } };

describe('a decision that names no redaction profile', () => {
  it('gets config redaction.default_profile (strict blocks the token), with or without an empty redaction block', async () => {
    for (const redaction of ['', ', "redaction": {}', ', "redaction": {"reidentify": false}']) {
      await withWarden(
        `decision := {"allow": true, "models": ["*"]${redaction}}\n`,
        async (h) => {
          const r = await chat(h, { model: 'gpt-4o-mini', warden: withToken });
          expect([r.status, r.body.error?.code], redaction).toEqual([422, 'redaction_blocked']);
          expect(h.up.calls).toHaveLength(0);
        },
        'redaction: { default_profile: strict }',
      );
    }
  });

  it('keeps the profile own per-entity modes when the redaction block is left out, as with an empty one', async () => {
    const blockSecrets = 'redaction: { profiles: { standard: { entities: [EMAIL_ADDRESS, SECRETS], mode: mask, settings: { SECRETS: { mode: block } } } } }';
    for (const redaction of ['', ', "redaction": {}']) {
      await withWarden(
        `decision := {"allow": true, "models": ["*"]${redaction}}\n`,
        async (h) => {
          const r = await chat(h, { model: 'gpt-4o-mini', warden: withToken });
          expect([r.status, r.body.error?.code], redaction || 'no redaction block').toEqual([422, 'redaction_blocked']);
          expect(h.up.calls).toHaveLength(0);
        },
        blockSecrets,
      );
    }
  });

  it('still masks with the built-in standard profile when nothing is configured', async () => {
    await withWarden('decision := {"allow": true, "models": ["*"]}\n', async (h) => {
      const r = await chat(h, { model: 'gpt-4o-mini', warden: withToken });
      expect(r.status).toBe(200);
      const sent = JSON.stringify(h.up.calls[0]!.body.messages);
      expect(sent).toContain('[GITHUB_TOKEN]');
      expect(sent).not.toContain(GITHUB_TOKEN);
    });
  });
});

describe('a decision naming a redaction entity type the redactor does not know', () => {
  it('in redaction.modes fails closed with redaction_failed, whatever the key, __proto__ included', async () => {
    for (const key of ['SECRET', 'constructor', '__proto__']) {
      await withWarden(`decision := {"allow": true, "models": ["*"], "redaction": {"modes": {${JSON.stringify(key)}: "allow"}}}\n`, async (h) => {
        const r = await chat(h, { model: 'gpt-4o-mini', warden: withToken });
        expect([r.status, r.body.error?.code, r.body.error?.param], key).toEqual([500, 'redaction_failed', 'decision.redaction.modes']);
        expect(h.up.calls, key).toHaveLength(0);
      });
    }
  });
});

describe('a decision naming a redaction profile the redactor does not know', () => {
  it('fails with redaction_failed before any secret is read, is logged once by field, never by value, and does not stop a models listing', async () => {
    const policy = 'decision := {"allow": true, "models": ["*"], "secrets": input.template.secret_refs, "redaction": {"profile": "CANARY-PROFILE-9"}} if input.action != "models.list"\n' +
      'decision := {"allow": true, "models": ["*"], "redaction": {"profile": "CANARY-PROFILE-9"}} if input.action == "models.list"\n';
    await withWarden(policy, async (h) => {
      // The secret's file is gone: reading it would fail the call with secret_unavailable instead.
      rmSync(join(h.w.dir, 'secrets', 'escalation-code'));
      for (let i = 0; i < 2; i++) {
        const r = await chat(h, { model: 'gpt-4o-mini', warden: { template: 'ops/incident-brief@1', variables: { service: 'db' } } });
        expect([r.status, r.body.error?.code, r.body.error?.param]).toEqual([500, 'redaction_failed', 'decision.redaction.profile']);
      }
      expect(h.up.calls).toHaveLength(0);
      const lines = h.w.logs.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l.problem === 'unknown_value');
      expect(lines.map((l) => [l.level, l.field, l.entrypoint])).toEqual([['warn', 'redaction.profile', 'warden/decision']]);
      expect(h.w.logs.join('\n')).not.toContain('CANARY');
      const models = await fetch(`${h.w.addresses.http}/v1/models`, { headers: { authorization: `Bearer ${h.token}` } });
      expect(models.status).toBe(200);
      expect(((await models.json()) as { data: unknown[] }).data.length).toBeGreaterThan(0);
    });
  });
});

describe('a policy whose evaluation fails', () => {
  it('is denied with policy_error, and logged once per revision and problem with the engine code and policy location, never input', async () => {
    // Two complete definitions that disagree (the first one's value is built from the caller's model),
    // and a rule that calls http.send for real when the caller asks for gpt-4o-mini.
    const policy =
      'decision := {"allow": true, "models": [input.request.model]} if input.request.model != "gpt-4o-mini"\n' +
      'decision := {"allow": false, "reasons": [input.request.model]} if input.request.model != "gpt-4o-mini"\n' +
      'decision := {"allow": true, "models": ["*"]} if {\n  http.send({"method": "GET", "url": sprintf("http://%s.invalid/", [input.request.model])})\n}\n';
    await withWarden(policy, async (h) => {
      for (const model of ['CANARY-MODEL-1', 'CANARY-MODEL-2', 'gpt-4o-mini', 'gpt-4o-mini']) {
        const r = await chat(h, { model, warden: TEMPLATE });
        expect([r.status, r.body.error?.code], model).toEqual([500, 'policy_error']);
      }
      expect(h.up.calls).toHaveLength(0);
      const lines = h.w.logs.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l.problem === 'eval_error');
      expect(lines.map((l) => [l.level, l.code, l.location, l.entrypoint])).toEqual([
        ['warn', 'eval_conflict_error', expect.stringMatching(/e2e\.rego:\d+:\d+$/), 'warden/decision'],
        ['warn', 'eval_builtin_error', expect.stringMatching(/e2e\.rego:\d+:\d+$/), 'warden/decision'],
      ]);
      expect(lines.every((l) => typeof l.policy_revision === 'string')).toBe(true);
      expect(h.w.logs.join('\n')).not.toContain('CANARY');
      expect(h.w.logs.join('\n')).not.toContain('.invalid');
    });
  });
});

describe('a failure a retry would meet again', () => {
  it('tells the OpenAI and Anthropic SDKs not to retry it (x-should-retry: false), and leaves a 502 retryable', async () => {
    // max_tokens 7 makes two complete definitions disagree (eval_conflict_error); any other call is allowed.
    const policy =
      'decision := {"allow": true, "models": ["*"], "secrets": input.template.secret_refs} if not input.request.max_tokens == 7\n' +
      'decision := {"allow": true, "models": ["*"]} if input.request.max_tokens == 7\n' +
      'decision := {"allow": false} if input.request.max_tokens == 7\n';
    await withWarden(policy, async (h) => {
      const records = (code: string) => h.w.audit().filter((r) => r.error_code === code).length;
      // Both SDKs at their default of two retries, which they spend on any 5xx the header does not rule out.
      const openai = new OpenAI({ baseURL: `${h.w.addresses.http}/v1`, apiKey: h.token, maxRetries: 2, timeout: 15_000 });
      const anthropic = new Anthropic({ baseURL: h.w.addresses.http, apiKey: h.token, maxRetries: 2, timeout: 15_000 });
      const governed = { warden: TEMPLATE } as object;

      const e1 = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [], max_tokens: 7, ...governed }).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(OpenAI.InternalServerError);
      expect([(e1 as InstanceType<typeof OpenAI.APIError>).status, (e1 as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')]).toEqual([500, 'false']);
      const e2 = await anthropic.messages.create({ model: 'gpt-4o-mini', messages: [], max_tokens: 7, ...governed } as Anthropic.MessageCreateParamsNonStreaming).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(Anthropic.InternalServerError);
      expect((e2 as InstanceType<typeof Anthropic.APIError>).headers?.get('x-should-retry')).toBe('false');
      // One try each: two records, no policy evaluation repeated.
      expect(records('policy_error')).toBe(2);

      // The provider failing is worth a retry: no header, and the SDK tries again (one retry here).
      h.up.mode = 'error500';
      const once = new OpenAI({ baseURL: `${h.w.addresses.http}/v1`, apiKey: h.token, maxRetries: 1, timeout: 15_000 });
      const e3 = await once.chat.completions.create({ model: 'gpt-4o-mini', messages: [], max_tokens: 8, ...governed }).catch((e: unknown) => e);
      expect(e3).toBeInstanceOf(OpenAI.APIError);
      expect([(e3 as InstanceType<typeof OpenAI.APIError>).status, (e3 as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')]).toEqual([502, null]);
      expect([records('upstream_error'), h.up.calls.length]).toEqual([2, 2]);
    });
  });
});

describe('a built-in that fails in a rule the decision negates', () => {
  it('denies with policy_error (a division by zero, an operand of the wrong type), never allows through `not`, on HTTP and gRPC', async () => {
    // A deny-list policy: allowed unless `blocked`. Each check fails at run time for the calls
    // below (two variables: 100 / 0; with max_tokens, a string plus a number); left undefined,
    // as OPA's default evaluation leaves a failed built-in, `not blocked` would allow them.
    const policy =
      'default decision := {"allow": false, "reasons": ["default"]}\n' +
      'decision := {"allow": true, "models": ["*"], "secrets": input.template.secret_refs} if not blocked\n' +
      'blocked if {\n  input.request.max_tokens == null\n  100 / (count(input.request.variables) - 2) < 10\n}\n' +
      'blocked if {\n  input.request.max_tokens != null\n  input.request.model + 1 > 1000\n}\n';
    await withWarden(policy, async (h) => {
      for (const body of [{ model: 'gpt-4o-mini', warden: TEMPLATE }, { model: 'gpt-4o-mini', max_tokens: 5, warden: TEMPLATE }]) {
        const r = await chat(h, body);
        expect([r.status, r.body.error?.code, r.body.error?.details?.code], JSON.stringify(body)).toEqual([500, 'policy_error', expect.stringMatching(/^eval_(builtin|type)_error$/)]);
      }
      await expect(grpcComplete(h, GRPC_TEMPLATE)).rejects.toMatchObject({ code: 13 });
      expect(h.up.calls).toHaveLength(0);
      const lines = h.w.logs.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l.problem === 'eval_error');
      expect(lines.map((l) => [l.level, l.location])).toEqual([
        ['warn', expect.stringMatching(/e2e\.rego:\d+:\d+$/)],
        ['warn', expect.stringMatching(/e2e\.rego:\d+:\d+$/)],
      ]);
      expect(h.w.logs.join('\n')).not.toContain(VARIABLE_VALUE);
    });
  });
});

describe('decision audit.log_variables_names', () => {
  it('puts the names of the call variables, never their values, in the audit record only when the decision asks', async () => {
    for (const lvn of [true, false]) {
      await withWarden(`decision := {"allow": true, "models": ["*"], "audit": {"log_variables_names": ${lvn}}}\n`, async (h) => {
        expect((await chat(h, { model: 'gpt-4o-mini', warden: TEMPLATE })).status).toBe(200);
        const record = h.w.audit().at(-1)!;
        expect(record.template).toMatchObject({ id: 'support/ticket-summary', version: 2 });
        if (lvn) expect(record.template.variables).toEqual(['customer_message', 'ticket_id']);
        else expect('variables' in record.template).toBe(false);
        expect(JSON.stringify(h.w.audit())).not.toContain(VARIABLE_VALUE);
        // The record with its names is still part of a verifiable chain.
        expect(verifyChain(h.w.audit())).toMatchObject({ ok: true });
      });
    }
  });
});

describe('the caller token limit', () => {
  it('reaches the policy as input.request.max_tokens on HTTP and on gRPC, whichever name params_json gives it', async () => {
    const policy =
      'decision := {"allow": true, "models": ["*"]} if input.request.max_tokens == null\n' +
      'decision := {"allow": false, "reasons": [sprintf("caller asked for %d tokens", [input.request.max_tokens])]} if input.request.max_tokens != null\n';
    await withWarden(policy, async (h) => {
      const http = await chat(h, { model: 'gpt-4o-mini', max_completion_tokens: 100000, warden: TEMPLATE });
      expect([http.status, http.body.error?.message]).toEqual([403, 'denied by policy: caller asked for 100000 tokens']);
      for (const params of ['{"max_completion_tokens":100000}', '{"max_tokens":100000}']) {
        await expect(grpcComplete(h, { ...GRPC_TEMPLATE, params_json: params }), params).rejects.toMatchObject({ code: 7, details: expect.stringContaining('caller asked for 100000 tokens') });
      }
      // No limit at all is still allowed: the policy saw null.
      await expect(grpcComplete(h, GRPC_TEMPLATE)).resolves.toBeDefined();
      expect(h.up.calls).toHaveLength(1);
    });
  });

  it('goes upstream under the caller own name, clamped to the decision cap', async () => {
    await withWarden('decision := {"allow": true, "models": ["*"], "max_tokens": 50}\n', async (h) => {
      const sent = () => {
        const body = h.up.calls.at(-1)!.body;
        return { max_tokens: body.max_tokens, max_completion_tokens: body.max_completion_tokens };
      };
      expect((await chat(h, { model: 'gpt-4o-mini', max_completion_tokens: 1000, warden: TEMPLATE })).status).toBe(200);
      expect(sent()).toEqual({ max_tokens: undefined, max_completion_tokens: 50 });
      expect((await chat(h, { model: 'gpt-4o-mini', max_completion_tokens: 10, temperature: 0.5, warden: TEMPLATE })).status).toBe(200);
      expect(sent()).toEqual({ max_tokens: undefined, max_completion_tokens: 10 });
      expect((await chat(h, { model: 'gpt-4o-mini', max_tokens: 1000, warden: TEMPLATE })).status).toBe(200);
      expect(sent()).toEqual({ max_tokens: 50, max_completion_tokens: undefined });
      expect((await chat(h, { model: 'gpt-4o-mini', warden: TEMPLATE })).status).toBe(200);
      expect(sent()).toEqual({ max_tokens: 50, max_completion_tokens: undefined });
      await grpcComplete(h, { ...GRPC_TEMPLATE, params_json: '{"max_completion_tokens":1000}' });
      expect(sent()).toEqual({ max_tokens: undefined, max_completion_tokens: 50 });
      await grpcComplete(h, { ...GRPC_TEMPLATE, params_json: '{"max_tokens":1000}' });
      expect(sent()).toEqual({ max_tokens: 50, max_completion_tokens: undefined });
      await grpcComplete(h, { ...GRPC_TEMPLATE, max_tokens: 1000 });
      expect(sent()).toEqual({ max_tokens: 50, max_completion_tokens: undefined });
    });
  });

  // llama.cpp's server reads `n_predict` before `max_tokens` (and -1 there is "no limit"): as a
  // pass-through parameter it would have carried any caller past the decision's cap.
  it('in llama.cpp\'s n_predict is clamped to the decision cap as well (no limit, -1, is the cap), on HTTP and gRPC; never added', async () => {
    await withWarden('decision := {"allow": true, "models": ["*"], "max_tokens": 50}\n', async (h) => {
      const sent = () => {
        const body = h.up.calls.at(-1)!.body;
        return { max_tokens: body.max_tokens, n_predict: body.n_predict, has: 'n_predict' in body };
      };
      expect((await chat(h, { model: 'gpt-4o-mini', n_predict: 100000, warden: TEMPLATE })).status).toBe(200);
      expect(sent()).toEqual({ max_tokens: 50, n_predict: 50, has: true });
      expect((await chat(h, { model: 'gpt-4o-mini', max_tokens: 20, n_predict: -1, warden: TEMPLATE })).status).toBe(200);
      expect(sent()).toEqual({ max_tokens: 20, n_predict: 50, has: true });
      expect((await chat(h, { model: 'gpt-4o-mini', n_predict: 10, warden: TEMPLATE })).status).toBe(200);
      expect(sent()).toEqual({ max_tokens: 50, n_predict: 10, has: true });
      expect((await chat(h, { model: 'gpt-4o-mini', warden: TEMPLATE })).status).toBe(200);
      expect(sent()).toEqual({ max_tokens: 50, n_predict: undefined, has: false });
      await grpcComplete(h, { ...GRPC_TEMPLATE, params_json: '{"n_predict":100000}' });
      expect(sent()).toEqual({ max_tokens: 50, n_predict: 50, has: true });
    });
    // Without a cap it goes as sent.
    await withWarden('decision := {"allow": true, "models": ["*"]}\n', async (h) => {
      expect((await chat(h, { model: 'gpt-4o-mini', n_predict: -1, warden: TEMPLATE })).status).toBe(200);
      expect(h.up.calls.at(-1)!.body.n_predict).toBe(-1);
    });
  });

  it('is refused on gRPC when it is not a positive integer or is given twice', async () => {
    await withWarden('decision := {"allow": true, "models": ["*"]}\n', async (h) => {
      await expect(grpcComplete(h, { ...GRPC_TEMPLATE, params_json: '{"max_tokens":"lots"}' })).rejects.toMatchObject({ code: 3, details: expect.stringContaining('params_json.max_tokens') });
      await expect(grpcComplete(h, { ...GRPC_TEMPLATE, max_tokens: 10, params_json: '{"max_completion_tokens":20}' })).rejects.toMatchObject({ code: 3, details: expect.stringContaining("field 'max_tokens'") });
      expect(h.up.calls).toHaveLength(0);
    });
  });
});
