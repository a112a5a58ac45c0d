/**
 * The decision cache as the sidecar uses it: through the decide stage (fresh decisions and ids
 * per request), counted in warden_policy_cache_total, configured by policy.decision_cache, logged
 * once per policy load, and rebuilt empty on a hot reload.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import type { RequestContext } from '../../src/pipeline/stage.js';
import { createDecideStage, createRegoPolicyEngine } from '../../src/policy/index.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import type { PolicyInput } from '../../src/pipeline/types.js';
import { makeContext } from '../stage-context.js';

const POLICIES = fileURLToPath(new URL('../../policies', import.meta.url));
const ENV = { name: 'development', cluster: 'local' };

function ctx(id: string, variables: Record<string, string>): RequestContext {
  return makeContext(
    { id, variables },
    { principal: { kind: 'dev', subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] }, provider: 'echo' },
  );
}

function cacheSeries(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^warden_policy_cache_total\{[^}]*result="(\w+)"[^}]*\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

describe('the decide stage with a cached engine', () => {
  it('gives each request its own decision and id; changing one does not touch the next', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const engine = await createRegoPolicyEngine({ paths: [POLICIES], entrypoint: 'warden/decision', onDecisionCache: (r) => metrics.observePolicyCache(r) });
    const stage = createDecideStage({ getEngine: () => engine, environment: ENV, now: () => Date.parse('2026-06-01T12:00:00Z') });
    const a = ctx('req-1', { name: 'x' });
    const b = ctx('req-2', { other: 'y', more: 'z' });
    const c = ctx('req-3', {});
    await stage.run(a);
    a.decision!.models.push('evil');
    a.decision!.reasons.push('tampered');
    a.decision!.redaction.modes.EMAIL_ADDRESS = 'allow';
    await stage.run(b);
    await stage.run(c);
    expect(b.decision!.allow).toBe(true);
    expect(b.decision!.models).not.toContain('evil');
    expect(b.decision!.reasons).toEqual([]);
    expect(b.decision!.redaction.modes).toEqual({});
    expect(new Set([a.decision!.id, b.decision!.id, c.decision!.id]).size).toBe(3);
    const { id: _b, ...restB } = b.decision!;
    const { id: _c, ...restC } = c.decision!;
    expect(restB).toEqual(restC);
    // a and b miss (b's result is kept: the second sight of that key); c hits.
    expect(cacheSeries(await metrics.render())).toEqual({ hit: 1, miss: 2, off: 0 });
  });

  it('counts off for every evaluation when the cache is disabled', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const engine = await createRegoPolicyEngine({
      paths: [POLICIES],
      entrypoint: 'warden/decision',
      decisionCache: { enabled: false, maxEntries: 10 },
      onDecisionCache: (r) => metrics.observePolicyCache(r),
    });
    const stage = createDecideStage({ getEngine: () => engine, environment: ENV });
    await stage.run(ctx('r1', {}));
    await stage.run(ctx('r2', {}));
    expect(cacheSeries(await metrics.render())).toEqual({ hit: 0, miss: 0, off: 2 });
  });
});

describe('policy.decision_cache configuration', () => {
  const problems = (text: string): string[] => {
    try {
      parseConfig(text, 'w.yaml', {});
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).message.split('\n').slice(1).map((l) => l.trim());
    }
    throw new Error('expected a ConfigError');
  };

  it('defaults to on with 10,000 entries', () => {
    expect(parseConfig('{}', 'w.yaml', {}).policy.decision_cache).toEqual({ enabled: true, max_entries: 10_000 });
    expect(parseConfig('policy: { decision_cache: { enabled: false } }', 'w.yaml', {}).policy.decision_cache).toEqual({ enabled: false, max_entries: 10_000 });
  });

  it('rejects bad values with the key and a reason', () => {
    expect(problems('policy:\n  decision_cache:\n    max_entries: 0\n')).toEqual([
      'w.yaml:3:5: policy.decision_cache.max_entries: must be at least 1 (use enabled: false to turn the cache off)',
    ]);
    expect(problems('policy:\n  decision_cache:\n    max_entries: 2000000\n    enabled: "yes"\n    size: 1\n')).toEqual([
      'w.yaml:3:5: policy.decision_cache.max_entries: must be at most 1000000 (each entry holds a decision)',
      'w.yaml:4:5: policy.decision_cache.enabled: must be true or false, got a string',
      'w.yaml:5:5: policy.decision_cache.size: unknown key',
    ]);
    expect(problems('policy:\n  decision_cache: true\n')).toEqual(['w.yaml:2:3: policy.decision_cache: must be a mapping, got a boolean']);
  });
});

describe('the runtime', () => {
  async function runtimeWith(policyDir: string, cache = '') {
    const dir = mkdtempSync(join(tmpdir(), 'warden-cache-runtime-'));
    const config = parseConfig(
      `listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }
environment: { name: development, cluster: local }
identity: { methods: [dev], dev: { principal: { namespace: dev, service_account: local } } }
policy: { paths: [${JSON.stringify(policyDir)}]${cache} }
audit: { sinks: [{ file: ${JSON.stringify(join(dir, 'audit.jsonl'))} }] }
reload: { watch: false }
`,
      join(dir, 'warden.yaml'),
      {},
    );
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const runtime = await createRuntime(config, { logger: createLogger({ level: 'info', format: 'json' }, sink), watch: false, configDir: dir });
    return { runtime, lines };
  }

  const input = (): PolicyInput =>
    ({
      version: 1,
      principal: { kind: 'dev', subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] },
      action: 'models.list',
      template: null,
      request: { protocol: 'openai-http', provider: 'echo', model: 'echo', max_tokens: null, stream: false, variables: [], raw: true, tools: 0, attachments: { image: 0, audio: 0, file: 0 }, params: {} },
      environment: { name: 'development', cluster: 'local' },
      time: { now_ns: 1, rfc3339: '1970-01-01T00:00:00.000Z' },
    }) as PolicyInput;

  it('logs once per load whether the cache is on, counts results, and a reload starts an empty cache', async () => {
    const { runtime, lines } = await runtimeWith(POLICIES);
    try {
      const logged = () => lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('policy decision cache'));
      expect(logged()).toHaveLength(1);
      expect(logged()[0]).toMatchObject({ level: 'info', decision_cache: true, max_entries: 10_000, msg: 'policy decision cache on: keyed on 8 input path(s)' });
      // Paths as Rego writes them, so input["a.b"] and input.a.b cannot look alike.
      for (const p of logged()[0]!.input_paths as string[]) expect(p).toMatch(/^input(\.[A-Za-z_][A-Za-z0-9_]*|\["[^"]*"\])+$/);
      const first = runtime.live()!.policy;
      first.evaluate(input());
      first.evaluate(input());
      first.evaluate(input());
      expect(await runtime.reload('test')).toBe(true);
      const second = runtime.live()!.policy;
      expect(second).not.toBe(first);
      second.evaluate(input());
      expect(logged()).toHaveLength(2);
      expect(cacheSeries(await runtime.metrics.render())).toEqual({ hit: 1, miss: 3, off: 0 });
    } finally {
      await runtime.shutdown('test');
    }
  });

  it('logs why the cache is off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-cache-policy-'));
    writeFileSync(join(dir, 'p.rego'), 'package warden\nimport rego.v1\ndecision := {"allow": false, "reasons": [sprintf("%v", [input])]}\n');
    const off = await runtimeWith(dir);
    const config = await runtimeWith(POLICIES, ', decision_cache: { enabled: false }');
    try {
      const line = (ls: Array<Record<string, unknown>>) => ls.find((l) => typeof l.msg === 'string' && l.msg.startsWith('policy decision cache'));
      expect(line(off.lines)).toMatchObject({ level: 'info', decision_cache: false, reason: `reads the whole input at ${join(dir, 'p.rego')}:3:57` });
      expect(line(off.lines)!.msg).toBe(`policy decision cache off: reads the whole input at ${join(dir, 'p.rego')}:3:57`);
      expect(line(config.lines)).toMatchObject({ decision_cache: false, reason: 'disabled in the configuration (policy.decision_cache.enabled: false)' });
    } finally {
      await off.runtime.shutdown('test');
      await config.runtime.shutdown('test');
    }
  });
});
