/**
 * The decision cache of the built-in engine: a cached decision is the decision an uncached
 * evaluation gives (differential over random inputs to the default policy), nothing a caller gets
 * can change what the next caller gets, failures are never kept, and the key changes exactly
 * when a field the policy reads changes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { normalizeDecision } from '../../src/policy/decision.js';
import { DecisionCache, type DecisionCacheOutcome } from '../../src/policy/decision-cache.js';
import { createRegoPolicyEngine, type RegoPolicyEngineOptions } from '../../src/policy/rego-engine.js';
import type { PolicyInput } from '../../src/pipeline/types.js';

/** An array with a hole at index 1 (written without a sparse literal). */
function sparse(xs: number[]): unknown[] {
  const out: unknown[] = [xs[0]];
  out[2] = xs[1];
  return out;
}

const POLICIES = fileURLToPath(new URL('../../policies', import.meta.url));

function policyDir(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-decision-cache-'));
  writeFileSync(join(dir, 'p.rego'), source);
  return dir;
}

async function engine(paths: string[], over: Partial<RegoPolicyEngineOptions> = {}) {
  const outcomes: DecisionCacheOutcome[] = [];
  const e = await createRegoPolicyEngine({ paths, entrypoint: 'warden/decision', onDecisionCache: (o) => outcomes.push(o), ...over });
  return { engine: e, outcomes, evaluate: (input: unknown) => e.evaluate(input as PolicyInput) };
}

const TIME = { now_ns: 1_780_000_000_000_000_000, rfc3339: '2026-05-28T08:26:40.000Z' };

/** A small deterministic PRNG (mulberry32): the same inputs on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

function templateInput(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'support/ticket-summary',
    version: 2,
    owner: 'support@example.com',
    sensitivity: 'internal',
    approval: { by: 'dana', ticket: 'SEC-1', at: '2026-03-02' },
    approvals: [{ by: 'dana', ticket: 'SEC-1', at: '2026-03-02' }],
    retire_after: null,
    retired: false,
    allowed_services: ['dev/*', 'support/ticket-bot'],
    models: [],
    secret_refs: ['file:secrets/x'],
    ...over,
  };
}

/** Random inputs from small pools, so that many repeat the fields the default policy reads. */
function randomInput(r: () => number, n: number): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  // Shared frozen templates (as buildPolicyInput makes them) and fresh unfrozen copies of the same.
  const frozen = SHARED_TEMPLATES;
  const fresh = () =>
    pick([
      templateInput(),
      templateInput({ sensitivity: 'restricted', allowed_services: ['billing/*'] }),
      templateInput({ sensitivity: 'public', models: ['gpt-4o'] }),
      templateInput({ retired: true }),
      templateInput({ sensitivity: 'secret' }),
      templateInput({ sensitivity: 'restricted', allowed_services: [], approval: null }),
    ]);
  const ns = pick(['dev', 'support', 'billing', 'payments']);
  const sa = pick(['local', 'ticket-bot', 'refund-worker']);
  const principal: Record<string, unknown> = { kind: 'kubernetes', subject: `system:serviceaccount:${ns}:${sa}`, namespace: ns, service_account: sa, audiences: ['warden'] };
  if (r() < 0.05) delete principal.subject;
  if (r() < 0.05) delete principal.namespace;
  const input: Record<string, unknown> = {
    version: pick([1, 1, 1, 1, 2, null]),
    principal,
    action: pick(['prompt.execute', 'prompt.execute', 'prompt.render', 'models.list', 'files.delete']),
    template: r() < 0.15 ? null : r() < 0.5 ? pick(frozen) : fresh(),
    // Unread by the default policy: different on every call.
    request: { protocol: 'openai-http', provider: 'echo', model: pick(['echo', 'gpt-4o']), max_tokens: n, stream: r() < 0.5, variables: [`v${n}`], raw: false, tools: 0 },
    environment: { name: pick(['development', 'production']), cluster: `c${n}` },
    time: { now_ns: TIME.now_ns + n, rfc3339: TIME.rfc3339 },
  };
  if (r() < 0.03) delete input.version;
  return input;
}

const SHARED_TEMPLATES = [
  deepFreeze(templateInput()),
  deepFreeze(templateInput({ sensitivity: 'restricted', allowed_services: ['billing/*'] })),
  deepFreeze(templateInput({ sensitivity: 'restricted', allowed_services: ['billing/*'], approval: null, approvals: [] })),
  deepFreeze(templateInput({ sensitivity: 'public', models: ['gpt-4o', 'nope'] })),
];

describe('decision cache on the default policy', () => {
  it('gives the decision an uncached evaluation gives, over 3,000 random inputs', async () => {
    const cached = await engine([POLICIES]);
    const plain = await engine([POLICIES], { decisionCache: { enabled: false, maxEntries: 1 } });
    expect(cached.engine.decisionCache.enabled).toBe(true);
    const r = rng(7);
    for (let n = 0; n < 3000; n++) {
      const input = randomInput(r, n);
      const want = plain.evaluate(input);
      const got = cached.evaluate(input);
      expect(got).toEqual(want);
      const { id: _a, ...d1 } = normalizeDecision(got, 'a');
      const { id: _b, ...d2 } = normalizeDecision(want, 'b');
      expect(d1).toEqual(d2);
    }
    const count = (o: DecisionCacheOutcome) => cached.outcomes.filter((x) => x === o).length;
    // The pools repeat: most calls are answered from the cache, and every call was counted.
    expect(count('hit')).toBeGreaterThan(400);
    expect(count('miss')).toBeGreaterThan(500);
    expect(count('hit') + count('miss')).toBe(3000);
    expect(plain.outcomes.every((o) => o === 'off')).toBe(true);
  });

  it('changing a field the policy reads misses; changing one it does not read hits', async () => {
    const { evaluate, outcomes } = await engine([POLICIES]);
    const base = () => randomInput(rng(1), 0);
    const first = base();
    // Kept from the second sight of a key on.
    evaluate(first);
    evaluate(first);
    // Unread: request id-like fields, time, variable names, model, cluster.
    const unread = base();
    (unread.request as Record<string, unknown>).variables = ['other', 'names'];
    (unread.time as Record<string, unknown>).now_ns = 1;
    (unread.environment as Record<string, unknown>).cluster = 'elsewhere';
    evaluate(unread);
    expect(outcomes).toEqual(['miss', 'miss', 'hit']);
    // Read: each one on its own misses.
    const changes: Array<(i: Record<string, unknown>) => void> = [
      (i) => (i.action = 'prompt.render'),
      (i) => ((i.principal as Record<string, unknown>).subject = 'someone:else'),
      (i) => ((i.principal as Record<string, unknown>).namespace = 'elsewhere'),
      (i) => ((i.environment as Record<string, unknown>).name = 'staging'),
      (i) => (i.version = 3),
      (i) => (i.template = templateInput({ id: 'another/template' })),
    ];
    for (const change of changes) {
      const i = base();
      change(i);
      outcomes.length = 0;
      evaluate(i);
      expect(outcomes).toEqual(['miss']);
    }
  });

  it('an absent field and a null field are different keys', async () => {
    const { evaluate, outcomes } = await engine([POLICIES]);
    const withNull = randomInput(rng(3), 0);
    withNull.version = null;
    const without = randomInput(rng(3), 0);
    delete without.version;
    const a = evaluate(withNull) as { reasons: string[] };
    const b = evaluate(without) as { reasons: string[] };
    expect(outcomes).toEqual(['miss', 'miss']);
    expect(a.reasons).toContain('unsupported policy input version null');
    expect(b.reasons).toContain('unsupported policy input version none');
  });

  it('a hit shares nothing a caller can change: the raw result is deeply frozen, decisions are fresh', async () => {
    const { evaluate, outcomes } = await engine([POLICIES]);
    const input = randomInput(rng(5), 0);
    input.template = SHARED_TEMPLATES[0]!;
    input.principal = { kind: 'kubernetes', subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] };
    input.action = 'prompt.execute';
    input.version = 1;
    const first = evaluate(input) as Record<string, unknown>;
    const raw1 = evaluate(input) as Record<string, unknown>;
    const raw2 = evaluate(input) as Record<string, unknown>;
    expect(outcomes).toEqual(['miss', 'miss', 'hit']);
    // A first sight is not kept: that caller got its own copy. The second is kept and shared.
    expect(first).not.toBe(raw1);
    expect(first).toEqual(raw1);
    expect(Object.isFrozen(first)).toBe(false);
    expect(raw2).toBe(raw1);
    expect(raw1.allow).toBe(true);
    const frozenAll = (v: unknown): boolean =>
      v === null || typeof v !== 'object' || (Object.isFrozen(v) && Object.values(v as object).every(frozenAll));
    expect(frozenAll(raw1)).toBe(true);
    expect(() => {
      (raw1 as { allow: unknown }).allow = false;
    }).toThrow(TypeError);
    expect(() => (raw1.models as string[]).push('evil')).toThrow(TypeError);

    const d1 = normalizeDecision(raw1, 'id-1');
    const d2 = normalizeDecision(raw2, 'id-2');
    expect(d1.id).not.toBe(d2.id);
    expect(d1).not.toBe(d2);
    for (const k of ['reasons', 'secrets', 'models', 'redaction', 'audit'] as const) {
      // Normalised once per cached result: requests share its parts, which are frozen copies,
      // never the raw result's own objects.
      expect(d1[k]).not.toBe(raw1[k]);
      expect(frozenAll(d1[k])).toBe(true);
    }
    expect(() => d1.models.push('evil')).toThrow(TypeError);
    expect(() => {
      d1.redaction.profile = 'none';
    }).toThrow(TypeError);
    expect(() => {
      d1.secrets.length = 0;
    }).toThrow(TypeError);
    const d3 = normalizeDecision(evaluate(input), 'id-3');
    expect(outcomes).toEqual(['miss', 'miss', 'hit', 'hit']);
    expect(d3.models).toEqual(d2.models);
    expect(d3.models).not.toContain('evil');
    expect(d3.redaction).toEqual(d2.redaction);
    expect(d3.secrets).toEqual(d2.secrets);
  });

  it('a new engine (what a hot reload builds) starts with an empty cache', async () => {
    const input = randomInput(rng(9), 0);
    const a = await engine([POLICIES]);
    a.evaluate(input);
    a.evaluate(input);
    a.evaluate(input);
    const b = await engine([POLICIES]);
    b.evaluate(input);
    expect(a.outcomes).toEqual(['miss', 'miss', 'hit']);
    expect(b.outcomes).toEqual(['miss']);
  });

  it('is off when the configuration says so, with that as the reason', async () => {
    const { engine: e, evaluate, outcomes } = await engine([POLICIES], { decisionCache: { enabled: false, maxEntries: 10 } });
    expect(e.decisionCache).toMatchObject({ enabled: false, reason: 'disabled in the configuration (policy.decision_cache.enabled: false)' });
    const input = randomInput(rng(2), 0);
    evaluate(input);
    evaluate(input);
    expect(outcomes).toEqual(['off', 'off']);
  });
});

describe('decision cache on other policies', () => {
  it('is off for a policy that reads the clock, naming the call', async () => {
    const dir = policyDir('package warden\nimport rego.v1\ndecision := {"allow": time.now_ns() > 0}\n');
    const { engine: e, evaluate, outcomes } = await engine([dir]);
    expect(e.decisionCache.enabled).toBe(false);
    expect(e.decisionCache.reason).toBe(`calls time.now_ns at ${join(dir, 'p.rego')}:3:23`);
    evaluate({ time: TIME });
    expect(outcomes).toEqual(['off']);
  });

  it('is off for a policy that reads the whole input', async () => {
    const dir = policyDir('package warden\nimport rego.v1\ndecision := {"allow": count(input) > 0}\n');
    const { engine: e } = await engine([dir]);
    expect(e.decisionCache.enabled).toBe(false);
    expect(e.decisionCache.reason).toMatch(/^reads the whole input at .*p\.rego:3:29$/);
  });

  it('never keeps an evaluation error: the same input fails again, then a good one is kept', async () => {
    // Two values for one complete rule when a != b: eval_conflict_error.
    const dir = policyDir('package warden\nimport rego.v1\ndecision := input.a if input.a\ndecision := input.b if input.b\n');
    const { evaluate, outcomes } = await engine([dir]);
    const bad = { a: 1, b: 2, time: TIME };
    expect(() => evaluate(bad)).toThrow(/conflict/);
    expect(() => evaluate(bad)).toThrow(/conflict/);
    expect(outcomes).toEqual(['miss', 'miss']);
    const good = { a: 1, b: 1, time: TIME };
    expect(evaluate(good)).toBe(1);
    expect(evaluate(good)).toBe(1);
    expect(evaluate(good)).toBe(1);
    expect(outcomes).toEqual(['miss', 'miss', 'miss', 'miss', 'hit']);
  });

  it('never keeps a budget failure', async () => {
    const dir = policyDir('package warden\nimport rego.v1\ndecision := count([x | some x in input.list; x > 0])\n');
    const { evaluate, outcomes } = await engine([dir], { maxSteps: 100 });
    const big = { list: Array.from({ length: 1000 }, (_, i) => i), time: TIME };
    expect(() => evaluate(big)).toThrow(/budget/);
    expect(() => evaluate(big)).toThrow(/budget/);
    expect(() => evaluate(big)).toThrow(/budget/);
    expect(outcomes).toEqual(['miss', 'miss', 'miss']);
    const small = { list: [1, 2, 0], time: TIME };
    expect(evaluate(small)).toBe(2);
    expect(evaluate(small)).toBe(2);
    expect(evaluate(small)).toBe(2);
    expect(outcomes.slice(3)).toEqual(['miss', 'miss', 'hit']);
  });

  it('never freezes or keeps the caller\'s own objects, even when the result holds them', async () => {
    // Members of a set the policy builds from input come out of the engine as the input's objects.
    const dir = policyDir('package warden\nimport rego.v1\ndecision := {x | some x in input.items}\n');
    const { evaluate, outcomes } = await engine([dir]);
    const mk = () => ({ items: [{ a: 1 }, { a: 2 }], time: TIME });
    const first = mk();
    const second = mk();
    evaluate(first);
    const kept = evaluate(second) as Array<{ a: number }>;
    expect(outcomes).toEqual(['miss', 'miss']);
    for (const input of [first, second]) for (const item of input.items) expect(Object.isFrozen(item)).toBe(false);
    second.items[0]!.a = 99;
    const hit = evaluate(mk()) as Array<{ a: number }>;
    expect(outcomes.at(-1)).toBe('hit');
    expect(hit).toBe(kept);
    expect(hit).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('keeps nothing from an input seen only once', async () => {
    const dir = policyDir('package warden\nimport rego.v1\ndecision := {"t": input.time.now_ns}\n');
    const { evaluate, outcomes } = await engine([dir]);
    for (let n = 0; n < 100; n++) {
      const r = evaluate({ time: { now_ns: n } }) as Record<string, unknown>;
      expect(r).toEqual({ t: n });
      expect(Object.isFrozen(r)).toBe(false);
    }
    expect(outcomes.every((o) => o === 'miss')).toBe(true);
  });

  it('keeps an undefined result (the entrypoint is undefined for that input)', async () => {
    const dir = policyDir('package warden\nimport rego.v1\ndecision := {"allow": true} if input.a == 1\n');
    const { evaluate, outcomes } = await engine([dir]);
    expect(evaluate({ a: 2, time: TIME })).toBeUndefined();
    expect(evaluate({ a: 2, time: TIME })).toBeUndefined();
    expect(evaluate({ a: 2, time: TIME })).toBeUndefined();
    expect(evaluate({ a: 1, time: TIME })).toEqual({ allow: true });
    expect(outcomes).toEqual(['miss', 'miss', 'hit', 'miss']);
  });

  it('does not cache an input it cannot key exactly (NaN, undefined members, class instances)', async () => {
    const dir = policyDir('package warden\nimport rego.v1\ndecision := {"n": input.n}\n');
    const { evaluate, outcomes } = await engine([dir]);
    for (const n of [Number.NaN, Infinity, undefined, new Date(0), new Map(), sparse([1, 2]), { x: undefined }]) {
      evaluate({ n, time: TIME });
    }
    expect(outcomes).toEqual(['off', 'off', 'off', 'off', 'off', 'off', 'off']);
    evaluate({ n: 1, time: TIME });
    expect(outcomes.at(-1)).toBe('miss');
  });

  it('holds at most max_entries decisions, dropping the least recently used', async () => {
    const dir = policyDir('package warden\nimport rego.v1\ndecision := input.n\n');
    const { evaluate, outcomes } = await engine([dir], { decisionCache: { enabled: true, maxEntries: 2 } });
    for (const n of [1, 1, 2, 2, 1, 3, 3, 2, 1, 2]) expect(evaluate({ n, time: TIME })).toBe(n);
    // 1 and 2 kept on their second sight; 1 hits; 3 kept (drops 2, the least recently used);
    // 2 again: kept (drops 1); 1 again: a miss, kept (drops 3); 2 hits.
    expect(outcomes).toEqual(['miss', 'miss', 'miss', 'miss', 'hit', 'miss', 'miss', 'miss', 'miss', 'hit']);
  });
});

describe('DecisionCache standing aside', () => {
  const evaluateN = (cache: DecisionCache, inputs: unknown[]) => {
    const outcomes: DecisionCacheOutcome[] = [];
    for (const i of inputs) expect(cache.evaluate(i, (x) => (x as { n: number }).n * 2, (o) => outcomes.push(o))).toBe((i as { n: number }).n * 2);
    return outcomes;
  };

  it('stands aside after a window with almost no hits, then looks again', () => {
    const cache = new DecisionCache([['n']], 100, { window: 10, pause: 5 });
    const unique = Array.from({ length: 16 }, (_, n) => ({ n }));
    expect(evaluateN(cache, unique)).toEqual([...Array<string>(10).fill('miss'), ...Array<string>(5).fill('off'), 'miss']);
  });

  it('never stands aside for a workload that repeats', () => {
    const cache = new DecisionCache([['n']], 100, { window: 10, pause: 5 });
    const outcomes = evaluateN(cache, Array.from({ length: 100 }, (_, i) => ({ n: i % 3 })));
    expect(outcomes).not.toContain('off');
    expect(outcomes.filter((o) => o === 'hit')).toHaveLength(94);
  });
});
