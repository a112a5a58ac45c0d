import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import type { PolicyEngine } from '../../src/pipeline/ports.js';
import type { RequestContext } from '../../src/pipeline/stage.js';
import { POLICY_INPUT_VERSION, type Template } from '../../src/pipeline/types.js';
import { buildPolicyInput, createDecideStage, createRegoPolicyEngine, normalizeDecision } from '../../src/policy/index.js';
import { frozenCopy } from '../../src/policy/decision-cache.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { makeContext } from '../stage-context.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
/** A decision rule that exists but is undefined for the inputs here (an entrypoint naming no rule fails the load). */
const UNDEFINED_HERE = 'package warden\nimport rego.v1\ndecision := {"allow": true} if input.no_such_field\n';
const ENV = { name: 'test', cluster: 'local' };

const template: Template = {
  id: 'billing/refund-review', version: 1, owner: 'billing', sensitivity: 'restricted', description: 'd',
  approvals: [{ by: 'a', ticket: 'SEC-1', at: '2026-02-14' }, { by: 'b', ticket: 'SEC-2', at: '2026-04-01' }],
  retire_after: '2026-05-31',
  allowed_services: ['dev/local'], models: ['echo'],
  variables: {
    reason: { source: 'request', type: 'string', required: true, pii: true },
    key: { source: 'secret', type: 'string', required: true, pii: false, ref: 'env://REFUND_KEY' },
    key2: { source: 'secret', type: 'string', required: true, pii: false, ref: 'env://REFUND_KEY' },
  },
  messages: [{ role: 'user', content: '{{reason}} {{key}} {{key2}}' }],
};

function ctxWith(over: Parameters<typeof makeContext>[0] = {}, extra: Partial<RequestContext> = {}): RequestContext {
  return makeContext(over, {
    principal: { kind: 'dev', subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] },
    ...extra,
  });
}

describe('buildPolicyInput', () => {
  it('carries names and metadata, never variable values', () => {
    const ctx = ctxWith({ variables: { reason: 'CANARY-VALUE-77 card 4111111111111111' }, template: { id: template.id, version: 1 }, max_tokens: 50 }, { template, provider: 'echo' });
    const input = buildPolicyInput(ctx, ENV, NOW);
    expect(JSON.stringify(input, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).not.toContain('CANARY');
    expect(input).toEqual({
      version: POLICY_INPUT_VERSION,
      principal: { kind: 'dev', subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] },
      action: 'prompt.execute',
      template: {
        id: 'billing/refund-review', version: 1, owner: 'billing', sensitivity: 'restricted',
        approval: { by: 'b', ticket: 'SEC-2', at: '2026-04-01' },
        approvals: template.approvals,
        retire_after: '2026-05-31', retired: true,
        allowed_services: ['dev/local'], models: ['echo'],
        secret_refs: ['env://REFUND_KEY'],
        pii_variables: ['reason'],
      },
      request: { protocol: 'openai-http', provider: 'echo', model: 'echo', max_tokens: 50, stream: false, variables: ['reason'], raw: false, tools: 0, attachments: { image: 0, audio: 0, file: 0 }, params: {} },
      environment: ENV,
      time: { now_ns: BigInt(NOW) * 1_000_000n, rfc3339: '2026-06-01T12:00:00.000Z' },
    });
  });

  it('shares the principal part of a frozen principal and the environment, and copies a mutable principal', () => {
    const frozen = Object.freeze({ kind: 'dev' as const, subject: 's', namespace: 'dev', service_account: 'local', audiences: Object.freeze(['a']) as string[], extra: 'not documented' });
    const a = buildPolicyInput(ctxWith({}, { principal: frozen }), ENV, NOW);
    const b = buildPolicyInput(ctxWith({}, { principal: frozen }), ENV, NOW);
    expect(a.principal).toBe(b.principal);
    expect(a.principal).toEqual({ kind: 'dev', subject: 's', namespace: 'dev', service_account: 'local', audiences: ['a'] });
    expect(Object.isFrozen(a.principal) && Object.isFrozen(a.principal.audiences)).toBe(true);
    expect(a.environment).toBe(b.environment);
    expect(a.environment).toEqual(ENV);
    expect(Object.isFrozen(a.environment)).toBe(true);
    // A principal that is not frozen could change: each input gets its own copy of what it is now.
    const mutable = { kind: 'dev' as const, subject: 's', namespace: 'dev', service_account: 'local', audiences: ['a'] };
    const c = buildPolicyInput(ctxWith({}, { principal: mutable }), ENV, NOW);
    mutable.namespace = 'other';
    const d = buildPolicyInput(ctxWith({}, { principal: mutable }), ENV, NOW);
    expect(c.principal).not.toBe(d.principal);
    expect([c.principal.namespace, d.principal.namespace]).toEqual(['dev', 'other']);
  });

  it('marks raw requests and refuses to build without a principal', () => {
    const input = buildPolicyInput(ctxWith(), ENV, NOW);
    expect(input.template).toBeNull();
    expect(input.request.raw).toBe(true);
    // A models listing carries no prompt at all: neither raw nor templated.
    const listing = buildPolicyInput(ctxWith({ action: 'models.list', model: '' }), ENV, NOW);
    expect([listing.template, listing.request.raw]).toEqual([null, false]);
    expect(() => buildPolicyInput(makeContext(), ENV, NOW)).toThrow(WardenError);
  });
});

describe('normalizeDecision', () => {
  it('denies anything but a well-formed allow', () => {
    for (const raw of [undefined, null, true, 'allow', [], { allow: 'true' }, { allow: 1 }, {}]) {
      const d = normalizeDecision(raw, 'id');
      expect(d.allow, JSON.stringify(raw)).toBe(false);
      expect(d.secrets).toEqual([]);
      expect(d.models).toEqual([]);
      expect(d.reasons.length).toBeGreaterThan(0);
    }
    expect(normalizeDecision({ allow: false, reasons: ['not on weekends'] }, 'id').reasons).toEqual(['not on weekends']);
  });

  it('fills least-privilege defaults and ignores unknown fields', () => {
    expect(normalizeDecision({ allow: true, surprise: { anything: 1 } }, 'd1')).toEqual({
      allow: true, reasons: [], secrets: [], models: [], id: 'd1',
      redaction: { profile: 'standard', entities: [], modes: {}, reidentify: false, fail_open: false },
      audit: { log_variables_names: false },
    });
  });

  it('gives a decision that names no profile the configured default profile, and no mode over its own modes', () => {
    for (const raw of [{ allow: true }, { allow: true, redaction: {} }, { allow: true, redaction: { reidentify: true } }]) {
      const d = normalizeDecision(raw, 'id', 'strict');
      expect(d.redaction.profile, JSON.stringify(raw)).toBe('strict');
      expect(d.redaction.mode, JSON.stringify(raw)).toBeUndefined();
    }
    expect(normalizeDecision({ allow: true, redaction: { profile: 'standard' } }, 'id', 'strict').redaction.profile).toBe('standard');
    // The decision cache's shared normal form follows the default it was made with.
    const cached = frozenCopy({ allow: true, models: ['echo'] });
    expect(normalizeDecision(cached, 'a', 'strict').redaction.profile).toBe('strict');
    expect(normalizeDecision(cached, 'b', 'standard').redaction.profile).toBe('standard');
  });

  it('reports an undefined, non-object or malformed decision and unknown fields, by path only', () => {
    const seen = (raw: unknown): unknown[] => {
      const out: unknown[] = [];
      normalizeDecision(raw, 'id', 'standard', (p) => out.push(p));
      return out;
    };
    expect(seen(undefined)).toEqual([{ kind: 'undefined', path: '' }]);
    expect(seen([1])).toEqual([{ kind: 'not_object', path: '' }]);
    expect(seen({ allow: true, redaction: { profile: 7 } })).toEqual([{ kind: 'malformed', path: 'redaction.profile' }]);
    expect(seen({ allow: true, max_token: 10, redaction: { profil: 'strict' }, audit: { log_variable_names: true } })).toEqual([
      { kind: 'unknown_field', path: 'max_token' },
      { kind: 'unknown_field', path: 'redaction.profil' },
      { kind: 'unknown_field', path: 'audit.log_variable_names' },
    ]);
    expect(seen({ allow: true, reasons: ['ok'], models: ['echo'], max_tokens: 5, redaction: { profile: 'strict' } })).toEqual([]);
  });

  it('keeps well-formed grants', () => {
    const d = normalizeDecision(
      { allow: true, reasons: ['ok'], secrets: ['env://A', 'env://A'], models: ['echo'], max_tokens: 256n,
        redaction: { profile: 'strict', entities: ['EMAIL'], modes: { EMAIL: 'tokenize' }, reidentify: true, fail_open: true },
        audit: { log_variables_names: true } },
      'd2',
    );
    expect(d).toMatchObject({ secrets: ['env://A'], models: ['echo'], max_tokens: 256, audit: { log_variables_names: true } });
    expect(d.redaction).toEqual({ profile: 'strict', entities: ['EMAIL'], modes: { EMAIL: 'tokenize' }, reidentify: true, fail_open: true });
  });

  it('drops duplicates of a long list too, keeping the first of each in order, and refuses a non-string anywhere in it', () => {
    // 20,000 reasons (one per entry of a data list): found quadratic, over a second a request.
    const reasons = Array.from({ length: 20_000 }, (_, i) => `reason ${i % 15_000}`);
    const d = normalizeDecision({ allow: true, reasons, models: [...reasons, 'echo'] }, 'd3');
    expect(d.reasons).toEqual(Array.from({ length: 15_000 }, (_, i) => `reason ${i}`));
    expect(d.models.at(-1)).toBe('echo');
    expect(d.models.length).toBe(15_001);
    const seen: string[] = [];
    const bad = normalizeDecision({ allow: true, models: [...reasons, 7] }, 'd4', 'standard', (p) => seen.push(JSON.stringify(p)));
    expect(bad.allow).toBe(false);
    expect(seen.join()).toContain('models');
  });

  it('denies when a known field is malformed instead of guessing', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ secrets: 'env://A' }, 'secrets'],
      [{ models: [1] }, 'models'],
      [{ max_tokens: -5 }, 'max_tokens'],
      [{ max_tokens: 1.5 }, 'max_tokens'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ redaction: { mode: 'shred' } }, 'redaction.mode'],
      [{ redaction: { fail_open: 'yes' } }, 'redaction.fail_open'],
      [{ redaction: { profile: '' } }, 'redaction.profile'],
      [{ redaction: { entities: 'EMAIL' } }, 'redaction.entities'],
      [{ redaction: { modes: { EMAIL: 'shred' } } }, 'redaction.modes'],
      [{ redaction: { reidentify: 1 } }, 'redaction.reidentify'],
      [{ redaction: 'none' }, 'redaction'],
      [{ audit: { log_variables_names: 'yes' } }, 'audit.log_variables_names'],
      [{ audit: true }, 'audit'],
    ];
    for (const [extra, fieldName] of cases) {
      const d = normalizeDecision({ allow: true, ...extra }, 'x');
      expect(d.allow, JSON.stringify(extra)).toBe(false);
      expect(d.reasons).toEqual([`policy decision field "${fieldName}" is malformed`]);
    }
  });

  it('reports a non-boolean allow as malformed, like any other known field of the wrong type', () => {
    for (const allow of ['true', 1, null, [true], { yes: true }]) {
      const seen: unknown[] = [];
      const d = normalizeDecision({ allow, reasons: ['from the policy'] }, 'x', 'standard', (p) => seen.push(p));
      expect(d.allow, JSON.stringify(allow)).toBe(false);
      expect(d.reasons).toEqual(['policy decision field "allow" is malformed']);
      expect(seen).toEqual([{ kind: 'malformed', path: 'allow' }]);
    }
    // false and absent are ordinary denies, not problems.
    for (const raw of [{ allow: false }, {}]) {
      const seen: unknown[] = [];
      expect(normalizeDecision(raw, 'x', 'standard', (p) => seen.push(p)).allow).toBe(false);
      expect(seen).toEqual([]);
    }
  });

  it('normalises a frozen (cached) result once, gives each request its own id, and shares only frozen parts', () => {
    const raw = frozenCopy({
      allow: true,
      reasons: ['ok'],
      secrets: ['env://A'],
      models: ['echo'],
      max_tokens: 64,
      redaction: { profile: 'strict', entities: ['EMAIL_ADDRESS'], modes: { EMAIL_ADDRESS: 'hash' } },
    });
    const a = normalizeDecision(raw, 'id-a');
    const b = normalizeDecision(raw, 'id-b');
    // The same result a fresh normalisation of an unfrozen copy gives, each with its own id.
    expect(a).toEqual(normalizeDecision(JSON.parse(JSON.stringify(raw)), 'id-a'));
    expect(b.id).toBe('id-b');
    expect(a).not.toBe(b);
    // Shared parts cannot be changed by one request for the next: the write throws.
    expect(Object.isFrozen(a.secrets) && Object.isFrozen(a.redaction.modes)).toBe(true);
    expect(() => a.secrets.push('env://B')).toThrow(TypeError);
    expect(() => {
      a.redaction.profile = 'none';
    }).toThrow(TypeError);
    expect(normalizeDecision(raw, 'id-c').secrets).toEqual(['env://A']);
    // A malformed frozen result is still a deny naming the field.
    const bad = normalizeDecision(frozenCopy({ allow: true, models: [1] }), 'id-d');
    expect(bad.allow).toBe(false);
    expect(bad.reasons).toEqual(['policy decision field "models" is malformed']);
    // An unfrozen result is the caller's own: nothing in it is frozen.
    expect(Object.isFrozen(normalizeDecision({ allow: true, secrets: ['env://A'] }, 'id-e').secrets)).toBe(false);
  });
});

const POLICY = `package warden

import rego.v1

default decision := {"allow": false, "reasons": ["no rule allowed this request"]}

service := sprintf("%s/%s", [input.principal.namespace, input.principal.service_account])

template_ok if input.template == null
template_ok if {
  not input.template.retired
  some pattern in input.template.allowed_services
  glob.match(pattern, ["/"], service)
}

decision := {
  "allow": true,
  "reasons": ["dev may run it"],
  "secrets": secrets,
  "models": ["echo", "gpt-4o-mini"],
  "max_tokens": 100,
  "redaction": {"profile": "standard"},
} if {
  input.principal.namespace == "dev"
  template_ok
}

secrets := [ref | some ref in input.template.secret_refs] if input.template != null
secrets := [] if input.template == null

decision := {"allow": false, "reasons": [sprintf("namespace %s may not use Warden", [input.principal.namespace])]} if {
  input.principal.namespace == "blocked"
}
`;

const POLICY_TEST = `package warden_test
import rego.v1
test_nothing if { true }
`;

describe('decide stage with the built-in Rego engine', () => {
  let dir: string;
  let engine: PolicyEngine;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warden-policy-'));
    await mkdir(join(dir, 'p'));
    await writeFile(join(dir, 'p', 'decision.rego'), POLICY);
    // Test files are excluded when loading for serving (this one would otherwise be loaded too).
    await writeFile(join(dir, 'p', 'decision_test.rego'), POLICY_TEST);
    engine = await createRegoPolicyEngine({ paths: [join(dir, 'p')], entrypoint: 'warden/decision' });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const stage = () => createDecideStage({ getEngine: () => engine, environment: ENV, now: () => NOW });

  async function run(ctx: RequestContext): Promise<WardenError | undefined> {
    try {
      await stage().run(ctx);
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(WardenError);
      return err as WardenError;
    }
  }

  it('allows, grants the template secrets and clamps max_tokens', async () => {
    expect(engine.kind).toBe('rego');
    expect(engine.revision).toMatch(/^[0-9a-f]{64}$/);
    const live = { ...template, retire_after: '2027-01-01' };
    const ctx = ctxWith({ template: { id: live.id, version: 1 }, max_tokens: 4000 }, { template: live });
    expect(await run(ctx)).toBeUndefined();
    expect(ctx.decision).toMatchObject({ allow: true, secrets: ['env://REFUND_KEY'], models: ['echo', 'gpt-4o-mini'], max_tokens: 100 });
    expect(ctx.decision!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(ctx.policyInput?.template?.id).toBe(live.id);
    expect(ctx.request.max_tokens).toBe(100);
    const small = ctxWith({ max_tokens: 10 });
    await run(small);
    expect(small.request.max_tokens).toBe(10);
    const unset = ctxWith();
    await run(unset);
    expect(unset.request.max_tokens).toBe(100);
  });

  it('input.time.now_ns is exact: it equals time.parse_rfc3339_ns(input.time.rfc3339) and time.now_ns(), whatever the millisecond', async () => {
    const exactDir = join(dir, 'exact');
    await mkdir(exactDir);
    await writeFile(
      join(exactDir, 'x.rego'),
      'package warden\nimport rego.v1\ndecision := {"allow": true, "models": ["*"]} if {\n  time.parse_rfc3339_ns(input.time.rfc3339) == input.time.now_ns\n  input.time.now_ns == time.now_ns()\n  json.marshal(input.time.now_ns) == sprintf("%d", [input.time.now_ns])\n}\n',
    );
    const exact = await createRegoPolicyEngine({ paths: [exactDir], entrypoint: 'warden/decision' });
    // 1795679453039 ms is the probe's instant: as a double, its nanoseconds end in ...039000064.
    for (const ms of [1_795_679_453_039, 1_795_679_453_039, 1_780_000_000_001, 1_780_000_000_007, NOW + 3]) {
      const ctx = ctxWith();
      await createDecideStage({ getEngine: () => exact, environment: ENV, now: () => ms }).run(ctx);
      expect(ctx.decision?.allow, String(ms)).toBe(true);
      expect(ctx.policyInput?.time.now_ns).toBe(BigInt(ms) * 1_000_000n);
    }
  });

  it('time.now_ns() equals input.time.now_ns, whatever the millisecond (above 2^53 the input is a rounded double)', async () => {
    const clockDir = join(dir, 'clock');
    await mkdir(clockDir);
    await writeFile(join(clockDir, 'c.rego'), 'package warden\nimport rego.v1\ndecision := {"allow": input.time.now_ns == time.now_ns(), "models": ["*"]}\n');
    const clock = await createRegoPolicyEngine({ paths: [clockDir], entrypoint: 'warden/decision' });
    for (const ms of [NOW, NOW + 1, 1_780_000_000_001, 1_780_000_000_007]) {
      const ctx = ctxWith();
      await createDecideStage({ getEngine: () => clock, environment: ENV, now: () => ms }).run(ctx);
      expect(ctx.decision?.allow, String(ms)).toBe(true);
    }
  });

  it('denies with the policy reasons', async () => {
    const blocked = ctxWith({}, { principal: { kind: 'dev', subject: 's', namespace: 'blocked', service_account: 'x', audiences: [] } });
    const err = await run(blocked);
    expect(err).toMatchObject({ code: 'policy_denied', message: 'denied by policy: namespace blocked may not use Warden' });
    expect(err?.details).toMatchObject({ reasons: ['namespace blocked may not use Warden'] });
    expect(blocked.decision?.allow).toBe(false);
    // Retired template (input.template.retired) and an unlisted service fall to the default deny.
    expect((await run(ctxWith({ template: { id: template.id } }, { template })))?.details).toMatchObject({ reasons: ['no rule allowed this request'] });
    const other = { ...template, retire_after: '2027-01-01', allowed_services: ['billing/*'] };
    expect((await run(ctxWith({ template: { id: template.id } }, { template: other })))?.code).toBe('policy_denied');
  });

  it('says once that the policy denied when it gave no reason', async () => {
    const quietDir = join(dir, 'quiet');
    await mkdir(quietDir);
    await writeFile(join(quietDir, 'q.rego'), 'package warden\nimport rego.v1\ndecision := {"allow": false}\n');
    const quiet = await createRegoPolicyEngine({ paths: [quietDir], entrypoint: 'warden/decision' });
    const err = await (async () => createDecideStage({ getEngine: () => quiet, environment: ENV, now: () => NOW }).run(ctxWith()))().catch((e: unknown) => e as WardenError);
    expect(err).toMatchObject({ code: 'policy_denied', message: 'denied by policy: no reason given', details: { reasons: ['no reason given'] } });
  });

  it('refuses a model the decision does not list, in the same words whether it is configured or not', async () => {
    // Configured (resolve routed it to a provider) or not: naming only a configured one would tell
    // the caller which models exist that it may not use.
    const err = await run(ctxWith({ model: 'gpt-5' }, { provider: 'openai' }));
    expect(err).toMatchObject({ code: 'model_not_allowed', message: 'the requested model is not allowed for this request', location: { path: 'model' } });
    expect(err?.details).toEqual({ allowed: ['echo', 'gpt-4o-mini'], decision_id: expect.any(String) });
    // Not configured: the name is the caller's data and is not repeated either.
    const unrouted = await run(ctxWith({ model: 'gpt-5 jane@example.com' }));
    expect(unrouted).toMatchObject({ code: 'model_not_allowed', message: 'the requested model is not allowed for this request', location: { path: 'model' } });
    expect(JSON.stringify({ m: unrouted?.message, d: unrouted?.details })).not.toContain('jane');
    expect(unrouted?.details).toEqual({ allowed: ['echo', 'gpt-4o-mini'], decision_id: expect.any(String) });
    expect(await run(ctxWith({ model: 'gpt-5', action: 'models.list' }))).toBeUndefined();
  });

  it('turns an evaluation error into policy_error (a deny)', async () => {
    const conflictDir = join(dir, 'conflict');
    await mkdir(conflictDir);
    await writeFile(join(conflictDir, 'c.rego'), 'package warden\nimport rego.v1\ndecision := {"allow": true} if true\ndecision := {"allow": false} if true\n');
    const broken = await createRegoPolicyEngine({ paths: [conflictDir], entrypoint: 'data.warden.decision' });
    const ctx = ctxWith();
    const err = await (async () => createDecideStage({ getEngine: () => broken, environment: ENV, now: () => NOW }).run(ctx))().catch((e: unknown) => e as WardenError);
    expect(err).toMatchObject({ code: 'policy_error', details: { code: 'eval_conflict_error' } });
    expect(ctx.decision).toBeUndefined();
  });

  it('fails closed when the policy calls http.send for real, even with raise_error: false and `not`', async () => {
    const riskDir = join(dir, 'risk');
    await mkdir(riskDir);
    await writeFile(join(riskDir, 'r.rego'), [
      'package warden', 'import rego.v1',
      'decision := {"allow": true, "models": ["echo"]} if not blocked',
      'blocked if {', '  resp := http.send({"method": "GET", "url": "http://risk.internal/check", "raise_error": false})', '  resp.status_code != 200', '}', '',
    ].join('\n'));
    const risky = await createRegoPolicyEngine({ paths: [riskDir], entrypoint: 'warden/decision' });
    const ctx = ctxWith();
    const err = await (async () => createDecideStage({ getEngine: () => risky, environment: ENV, now: () => NOW }).run(ctx))().catch((e: unknown) => e as WardenError);
    expect(err).toMatchObject({ code: 'policy_error', details: { code: 'eval_builtin_error' } });
    expect(ctx.decision).toBeUndefined();
  });

  it('fails closed on a failed built-in under `not` (1 / 0), unless configured as OPA by default (strictBuiltinErrors: false)', async () => {
    const divDir = join(dir, 'div');
    await mkdir(divDir);
    await writeFile(join(divDir, 'd.rego'), [
      'package warden', 'import rego.v1',
      'decision := {"allow": true, "models": ["echo"]} if not blocked',
      'blocked if 100 / count(input.request.variables) < 10', '',
    ].join('\n'));
    const decide = (e: PolicyEngine) => createDecideStage({ getEngine: () => e, environment: ENV, now: () => NOW });
    const strict = await createRegoPolicyEngine({ paths: [divDir], entrypoint: 'warden/decision' });
    const ctx = ctxWith({ variables: {} });
    const err = await (async () => decide(strict).run(ctx))().catch((e: unknown) => e as WardenError);
    expect(err).toMatchObject({ code: 'policy_error', details: { code: 'eval_builtin_error' } });
    expect(ctx.decision).toBeUndefined();
    // OPA's default leaves the division undefined: nothing blocks, and the call is allowed.
    const lenient = await createRegoPolicyEngine({ paths: [divDir], entrypoint: 'warden/decision', strictBuiltinErrors: false });
    const allowed = ctxWith({ variables: {} });
    await decide(lenient).run(allowed);
    expect(allowed.decision?.allow).toBe(true);
  });

  it('logs a broken decision once per policy revision and problem, naming the field, never input values', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const typoDir = join(dir, 'typo');
    await mkdir(typoDir);
    // The unknown key comes first: the malformed field still denies and is logged too.
    await writeFile(join(typoDir, 't.rego'), 'package warden\nimport rego.v1\ndecision := {"allow": true, "models": ["*"], "max_token": 5, "redaction": {"mode": input.request.model}}\n');
    const typo = await createRegoPolicyEngine({ paths: [typoDir], entrypoint: 'warden/decision' });
    let engine: PolicyEngine = typo;
    const decide = createDecideStage({ getEngine: () => engine, environment: ENV, now: () => NOW, logger, entrypoint: 'warden/decision' });
    const runWith = async (model: string) => decide.run(ctxWith({ model }));
    await expect(runWith('CANARY-MODEL-1')).rejects.toMatchObject({ code: 'policy_denied', details: { reasons: ['policy decision field "redaction.mode" is malformed'] } });
    await expect(runWith('CANARY-MODEL-2')).rejects.toMatchObject({ code: 'policy_denied' });
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((l) => [l.level, l.problem, l.field, l.policy_revision, l.entrypoint])).toEqual([
      ['warn', 'unknown_field', 'max_token', typo.revision, 'warden/decision'],
      ['warn', 'malformed', 'redaction.mode', typo.revision, 'warden/decision'],
    ]);
    expect(lines.join('\n')).not.toContain('CANARY');
    // An entrypoint undefined for the input under a new revision is logged as such; repeats are not.
    const empty = join(dir, 'empty-log');
    await mkdir(empty);
    await writeFile(join(empty, 'e.rego'), UNDEFINED_HERE);
    engine = await createRegoPolicyEngine({ paths: [empty], entrypoint: 'warden/decision' });
    await expect(runWith('echo')).rejects.toMatchObject({ code: 'policy_denied' });
    await expect(runWith('echo')).rejects.toMatchObject({ code: 'policy_denied' });
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[2]!)).toMatchObject({ level: 'warn', problem: 'undefined', policy_revision: engine.revision, msg: expect.stringContaining('entrypoint undefined') });
  });

  it('an unknown decision key built from input is not logged: no caller text, no raw newline, one line', async () => {
    const writes: string[] = [];
    const logger = createLogger({ level: 'info', format: 'text' }, { write: (l: string) => void writes.push(l) });
    const keyed = join(dir, 'keyed');
    await mkdir(keyed);
    // A policy that (by mistake) keys its decision, and its redaction object, by the requested model,
    // next to a genuine typo.
    await writeFile(join(keyed, 'k.rego'), [
      'package warden', 'import rego.v1',
      'decision := {"allow": true, "models": ["*"], "max_token": 5, input.request.model: true, "redaction": {input.request.model: 1}}', '',
    ].join('\n'));
    const engine = await createRegoPolicyEngine({ paths: [keyed], entrypoint: 'warden/decision' });
    const decide = createDecideStage({ getEngine: () => engine, environment: ENV, now: () => NOW, logger, entrypoint: 'warden/decision' });
    const models = ['CANARY-a\nFAKE ERROR msg="forged line"', `CANARY-${'x'.repeat(100_000)}`, 'CANARY_ident', 'jane@example.com'];
    for (const model of models) await decide.run(ctxWith({ model }));
    const text = writes.join('');
    expect(text).not.toContain('CANARY');
    expect(text).not.toContain('jane@example.com');
    expect(text).not.toContain('FAKE');
    // Every write is one line: nothing the caller chose split it.
    for (const w of writes) expect(w.indexOf('\n')).toBe(w.length - 1);
    expect(text.length).toBeLessThan(4_000);
    // The typo is still named; keys built from input collapse to one line per object, unnamed.
    expect(writes.filter((w) => w.includes('max_token'))).toHaveLength(1);
    expect(writes).toHaveLength(3);
    expect(writes.filter((w) => w.includes('redaction.'))).toHaveLength(1);
  });

  it('denies when the entrypoint is undefined for the input', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await writeFile(join(empty, 'e.rego'), UNDEFINED_HERE);
    const e = await createRegoPolicyEngine({ paths: [empty], entrypoint: 'warden/decision' });
    const err = await (async () => createDecideStage({ getEngine: () => e, environment: ENV }).run(ctxWith()))().catch((x: unknown) => x as WardenError);
    expect(err).toMatchObject({ code: 'policy_denied', details: { reasons: ['policy returned no decision (entrypoint undefined)'] } });
  });

  it('reports a policy that does not compile with file:line:col', async () => {
    const bad = join(dir, 'bad');
    await mkdir(bad);
    await writeFile(join(bad, 'b.rego'), 'package warden\n\ndecision := {\n');
    const err = (await createRegoPolicyEngine({ paths: [bad], entrypoint: 'warden/decision' }).catch((e: unknown) => e)) as WardenError;
    expect(err).toBeInstanceOf(WardenError);
    expect(err.code).toBe('policy_error');
    expect(err.location?.file).toContain('b.rego');
    expect(err.location?.line).toBeGreaterThanOrEqual(3);
    await expect(createRegoPolicyEngine({ paths: [bad], entrypoint: 'warden decision' })).rejects.toMatchObject({ location: { path: 'policy.entrypoint' } });
  });
});
