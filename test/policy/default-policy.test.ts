/**
 * The shipped default policy (policies/), evaluated by the built-in engine over a matrix of
 * inputs shaped by the PolicyInput contract, then its own test_ rules through the CLI.
 */
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runPolicyCli } from '../../src/policy/cli.js';
import { normalizeDecision } from '../../src/policy/decision.js';
import { loadPolicy, type CompiledPolicy } from '../../src/policy/rego/index.js';
import { POLICY_INPUT_VERSION, type Decision, type PolicyInput, type Sensitivity } from '../../src/pipeline/types.js';

const POLICIES = fileURLToPath(new URL('../../policies', import.meta.url));

type TemplateInput = NonNullable<PolicyInput['template']>;

function template(over: Partial<TemplateInput> = {}): TemplateInput {
  return {
    id: 'support/ticket-summary',
    version: 2,
    owner: 'support-platform@example.com',
    sensitivity: 'internal',
    approval: { by: 'dana.lee@example.com', ticket: 'SEC-1042', at: '2026-03-02' },
    approvals: [{ by: 'dana.lee@example.com', ticket: 'SEC-1042', at: '2026-03-02' }],
    retire_after: '2027-12-31',
    retired: false,
    allowed_services: ['dev/*', 'support/ticket-bot', 'billing/refund-worker'],
    models: [],
    secret_refs: ['file:secrets/escalation-code'],
    pii_variables: ['customer_message'],
    ...over,
  };
}

function input(opts: {
  ns?: string;
  sa?: string;
  env?: string;
  action?: PolicyInput['action'];
  template?: TemplateInput | null;
  model?: string;
  params?: PolicyInput['request']['params'];
}): PolicyInput {
  const ns = opts.ns ?? 'support';
  const sa = opts.sa ?? 'ticket-bot';
  const tpl = opts.template === undefined ? template() : opts.template;
  return {
    version: POLICY_INPUT_VERSION,
    principal: {
      kind: 'kubernetes',
      subject: `system:serviceaccount:${ns}:${sa}`,
      namespace: ns,
      service_account: sa,
      audiences: ['warden'],
    },
    action: opts.action ?? 'prompt.execute',
    template: tpl,
    request: {
      protocol: 'openai-http',
      provider: 'echo',
      model: opts.model ?? 'echo',
      max_tokens: null,
      stream: false,
      variables: ['ticket_id'],
      raw: tpl === null,
      tools: 0,
      attachments: { image: 0, audio: 0, file: 0 },
      params: opts.params ?? {},
    },
    environment: { name: opts.env ?? 'development', cluster: 'local' },
    time: { now_ns: 1_780_000_000_000_000_000, rfc3339: '2026-05-28T08:26:40.000Z' },
  };
}

let policy: CompiledPolicy;
const decide = (i: PolicyInput): Decision => normalizeDecision(policy.evaluate('data.warden.decision', i), 'test');

beforeAll(async () => {
  policy = await loadPolicy([POLICIES]);
});

describe('default policy decisions', () => {
  const restricted = (over: Partial<TemplateInput> = {}) =>
    template({ id: 'billing/refund-review', sensitivity: 'restricted', allowed_services: ['billing/refund-worker'], ...over });

  const matrix: Array<{ name: string; in: PolicyInput; allow: boolean; reason?: string }> = [
    { name: 'internal template, listed service', in: input({}), allow: true },
    { name: 'internal template, namespace glob', in: input({ ns: 'dev', sa: 'local' }), allow: true },
    {
      name: 'internal template, unlisted service',
      in: input({ ns: 'payments', sa: 'checkout' }),
      allow: false,
      reason: 'system:serviceaccount:payments:checkout may not use template support/ticket-summary',
    },
    { name: 'internal template in production', in: input({ env: 'production' }), allow: true },
    { name: 'render (dry run) follows the same rules', in: input({ action: 'prompt.render' }), allow: true },
    { name: 'restricted, listed service, approved', in: input({ ns: 'billing', sa: 'refund-worker', template: restricted() }), allow: true },
    {
      name: 'restricted, unlisted service',
      in: input({ template: restricted() }),
      allow: false,
      reason: 'system:serviceaccount:support:ticket-bot may not use template billing/refund-review',
    },
    {
      name: 'restricted without approval',
      in: input({ ns: 'billing', sa: 'refund-worker', template: restricted({ approval: null, approvals: [] }) }),
      allow: false,
      reason: 'restricted template billing/refund-review has no approval',
    },
    {
      name: 'restricted listing no services',
      in: input({ ns: 'billing', sa: 'refund-worker', template: restricted({ allowed_services: [] }) }),
      allow: false,
      reason: 'restricted template billing/refund-review lists no allowed services',
    },
    {
      name: 'retired template',
      in: input({ template: template({ retired: true }) }),
      allow: false,
      reason: 'template support/ticket-summary@2 is retired',
    },
    { name: 'raw prompt in development', in: input({ template: null }), allow: true },
    {
      name: 'raw prompt in production',
      in: input({ template: null, env: 'production' }),
      allow: false,
      reason: 'raw (untemplated) prompts are not allowed in production',
    },
    { name: 'listing models in production', in: input({ template: null, env: 'production', action: 'models.list' }), allow: true },
    {
      name: 'unknown action',
      in: { ...input({}), action: 'files.delete' as PolicyInput['action'] },
      allow: false,
      reason: 'unknown action',
    },
  ];

  for (const c of matrix) {
    it(`${c.allow ? 'allows' : 'denies'}: ${c.name}`, () => {
      const d = decide(c.in);
      expect(d.allow).toBe(c.allow);
      if (c.reason) expect(d.reasons).toContain(c.reason);
      if (c.allow) expect(d.reasons).toEqual([]);
      else {
        // Least privilege: a denied call is granted nothing.
        expect(d.secrets).toEqual([]);
        expect(d.models).toEqual([]);
      }
    });
  }

  it('denies an empty input without failing', () => {
    const raw = policy.evaluate('data.warden.decision', {}) as { allow: boolean; reasons: string[] };
    expect(raw.allow).toBe(false);
    expect(raw.reasons).toEqual(['unknown action', 'unsupported policy input version none']);
  });

  it('refuses an input version it was not written for', () => {
    const d = decide({ ...input({}), version: 2 });
    expect(d.allow).toBe(false);
    expect(d.reasons).toEqual(['unsupported policy input version 2']);
  });

  it('gives models and redaction by sensitivity', () => {
    const by = (s: Sensitivity) => decide(input({ ns: 'billing', sa: 'refund-worker', template: template({ sensitivity: s }) }));
    const pub = by('public');
    const internal = by('internal');
    const restrictedDecision = by('restricted');

    expect(pub.models).toContain('echo');
    expect(pub.models.length).toBeGreaterThan(internal.models.length);
    expect(internal.models.length).toBeGreaterThan(restrictedDecision.models.length);
    expect(restrictedDecision.models).toEqual(['echo', 'gpt-4o-mini']);

    expect(pub.redaction).toEqual({ profile: 'standard', entities: [], mode: 'mask', modes: {}, reidentify: false, fail_open: false });
    expect(internal.redaction).toMatchObject({ profile: 'standard', mode: 'tokenize', reidentify: true, fail_open: false });
    expect(restrictedDecision.redaction).toEqual({
      profile: 'strict',
      entities: [],
      mode: 'tokenize',
      modes: { SECRETS: 'block' },
      reidentify: false,
      fail_open: false,
    });
    expect(restrictedDecision.max_tokens).toBe(2048);
    expect(restrictedDecision.audit.log_variables_names).toBe(false);
    expect(internal.audit.log_variables_names).toBe(true);
  });

  it("narrows models to the template's own list", () => {
    const d = decide(input({ template: template({ models: ['gpt-4o', 'unlisted-model'] }) }));
    expect(d.models).toEqual(['gpt-4o']);
  });

  it('grants exactly the template secret refs, and none to raw prompts', () => {
    expect(decide(input({})).secrets).toEqual(['file:secrets/escalation-code']);
    expect(decide(input({ template: template({ secret_refs: ['vault://kv/a#b', 'env://X'] }) })).secrets).toEqual([
      'vault://kv/a#b',
      'env://X',
    ]);
    expect(decide(input({ template: null })).secrets).toEqual([]);
  });

  it('raw prompts are redacted as internal', () => {
    expect(decide(input({ template: null })).redaction).toMatchObject({ profile: 'standard', mode: 'tokenize' });
  });
});

describe('default policy unit tests (test_ rules)', () => {
  it('all pass through `warden policy test policies`', async () => {
    let out = '';
    let err = '';
    const sink = (append: (s: string) => void) =>
      new Writable({
        write(chunk, _enc, cb) {
          append(String(chunk));
          cb();
        },
      });
    const code = await runPolicyCli(['test', POLICIES], {
      stdout: sink((s) => (out += s)),
      stderr: sink((s) => (err += s)),
      stdin: () => Readable.from([]),
    });
    expect(err).toBe('');
    expect(out).toMatch(/\b0 failed\b/);
    const passed = Number(/(\d+) passed/.exec(out)?.[1]);
    expect(passed).toBeGreaterThanOrEqual(30);
    expect(code).toBe(0);
  });
});
