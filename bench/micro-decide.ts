/**
 * Micro-benchmark of the decide stage's parts on the bench's request (default policy, the bench
 * template): building the policy input, the engine's evaluation, normalising the decision, and the
 * whole stage — each with the decision cache off (every call evaluates the policy), on and hit
 * (the same policy-relevant input again, as most requests of a workload are), and for a workload
 * whose inputs never repeat (a new principal every call: misses until the cache sees it gains
 * nothing and stands aside, see src/policy/decision-cache.ts).
 * Median CPU ns per call (process.cpuUsage over 21 rounds), so a change to one part can be judged
 * on its own.
 *   npx tsx bench/micro-decide.ts [iterations]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../src/config/load.js';
import { createRuntime, ingressLimits } from '../src/runtime/runtime.js';
import { toPromptRequest } from '../src/server/request.js';
import { createLogger } from '../src/telemetry/logger.js';
import { buildPolicyInput } from '../src/policy/input.js';
import { normalizeDecision } from '../src/policy/decision.js';
import { createDecideStage } from '../src/policy/stage.js';
import { createRegoPolicyEngine, type RegoPolicyEngine } from '../src/policy/rego-engine.js';
import type { RequestContext } from '../src/pipeline/stage.js';
import { wardenBody, writeWardenSetup } from './gateway.js';

const iterations = Number(process.argv[2] ?? 50_000);
const dir = mkdtempSync(join(tmpdir(), 'warden-micro-decide-'));
try {
  const file = writeWardenSetup(dir, 9);
  const config = loadConfig(file, {});
  const runtime = await createRuntime(config, { logger: createLogger({ level: 'error' }), watch: false, configDir: dirname(file) });
  const live = runtime.live()!;
  const template = live.templates.get('bench/summary', 1)!;
  const environment = { ...config.environment.labels, name: config.environment.name, cluster: config.environment.cluster };
  const request = toPromptRequest(
    JSON.parse(wardenBody()),
    { id: 'r1', credentials: { bearer: 'x', peer: { address: '127.0.0.1', local: true, transport: 'tcp' } }, signal: new AbortController().signal, receivedAt: Date.now() },
    ingressLimits(config),
  );
  const ctx = (): RequestContext => ({
    request,
    trace: { traceId: '0'.repeat(32), spanId: '0'.repeat(16) },
    timings: {},
    template,
    provider: 'upstream',
    principal: { kind: 'dev', subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] },
  });
  const input = buildPolicyInput(ctx(), environment, Date.now());
  const cached = live.policy;
  const uncached = await createRegoPolicyEngine({
    paths: config.policy.paths,
    entrypoint: config.policy.entrypoint,
    maxSteps: config.policy.max_steps,
    deadlineMs: config.policy.timeout_ms,
    decisionCache: { enabled: false, maxEntries: 1 },
  });
  const raw = uncached.evaluate(input);
  const stageCached = createDecideStage({ getEngine: () => cached, environment });
  const stageUncached = createDecideStage({ getEngine: () => uncached, environment });
  // Inputs that never repeat: a principal the cache has not seen, every call.
  let n = 0;
  const missCtx = (): RequestContext => {
    const c = ctx();
    const sa = `sa-${n++}`;
    c.principal = { kind: 'dev', subject: `system:serviceaccount:dev:${sa}`, namespace: 'dev', service_account: sa, audiences: [] };
    return c;
  };

  function measure(name: string, fn: () => unknown): void {
    const rounds = 21;
    const per = Math.max(1, Math.floor(iterations / rounds));
    const xs: number[] = [];
    for (let i = 0; i < per; i++) fn();
    for (let r = 0; r < rounds; r++) {
      const t0 = process.cpuUsage();
      for (let i = 0; i < per; i++) fn();
      const t = process.cpuUsage(t0);
      xs.push(((t.user + t.system) * 1e3) / per);
    }
    xs.sort((a, b) => a - b);
    process.stdout.write(`${name.padEnd(40)} ${xs[Math.floor(rounds / 2)]!.toFixed(0).padStart(7)} ns\n`);
  }
  process.stdout.write(`decision cache: ${(cached as RegoPolicyEngine).decisionCache.enabled ? 'on' : `off (${(cached as RegoPolicyEngine).decisionCache.reason})`}\n`);
  measure('buildPolicyInput', () => buildPolicyInput(ctx(), environment, Date.now()));
  measure('engine.evaluate, cache off', () => uncached.evaluate(input));
  measure('engine.evaluate, cache hit', () => cached.evaluate(input));
  measure('normalizeDecision', () => normalizeDecision(raw, 'id'));
  measure('randomUUID', () => randomUUID());
  measure('decide stage (all), cache off', () => stageUncached.run(ctx()));
  measure('decide stage (all), cache hit', () => stageCached.run(ctx()));
  measure('decide stage, never repeats, cache on', () => stageCached.run(missCtx()));
  measure('decide stage, never repeats, cache off', () => stageUncached.run(missCtx()));
  await runtime.shutdown('done');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
