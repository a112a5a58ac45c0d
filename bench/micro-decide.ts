/**
 * Micro-benchmark of the decide stage's parts on the bench's request (default policy, the bench
 * template): building the policy input, the engine's evaluation, normalising the decision, and the
 * whole stage. Median ns per call of each part, so a change to one can be judged on its own.
 *   npx tsx bench/micro-decide.ts [iterations]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../src/config/load.js';
import { createRuntime, ingressLimits } from '../src/runtime/runtime.js';
import { toPromptRequest } from '../src/server/request.js';
import { createLogger } from '../src/telemetry/logger.js';
import { buildPolicyInput } from '../src/policy/input.js';
import { normalizeDecision } from '../src/policy/decision.js';
import { createDecideStage } from '../src/policy/stage.js';
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
  const raw = live.policy.evaluate(input);
  const stage = createDecideStage({ getEngine: () => live.policy, environment });

  function measure(name: string, fn: () => unknown): void {
    const rounds = 21;
    const per = Math.max(1, Math.floor(iterations / rounds));
    const xs: number[] = [];
    for (let i = 0; i < per; i++) fn();
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < per; i++) fn();
      xs.push(((performance.now() - t0) * 1e6) / per);
    }
    xs.sort((a, b) => a - b);
    process.stdout.write(`${name.padEnd(28)} ${xs[Math.floor(rounds / 2)]!.toFixed(0).padStart(7)} ns\n`);
  }
  measure('buildPolicyInput', () => buildPolicyInput(ctx(), environment, Date.now()));
  measure('engine.evaluate', () => live.policy.evaluate(input));
  measure('normalizeDecision', () => normalizeDecision(raw, 'id'));
  measure('randomUUID', () => randomUUID());
  measure('decide stage (all)', () => stage.run(ctx()));
  await runtime.shutdown('done');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
