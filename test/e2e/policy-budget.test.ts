/**
 * The policy evaluation budget from the config (`policy.max_steps`, `policy.timeout_ms`) reaches
 * the built-in Rego engine: a policy that loops past it is denied with `policy_error` (fail
 * closed, nothing upstream), the audit record says so, and the server keeps serving.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime, type BoundAddresses, type Runtime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { prepareWardenDir, type PreparedDir } from './helpers/warden.js';

// Cheap for `echo`; for `gpt-4o-mini` it first walks a 600 x 600 product (360 000 iterations,
// ~100-200 ms here): it completes within a generous budget and not within a tiny one, so the
// outcome shows which budget the engine was given.
const POLICY = `package warden

import rego.v1

default decision := {"allow": false, "reasons": ["no rule allowed this request"]}

decision := {"allow": true, "reasons": ["echo is cheap"], "models": ["echo"], "secrets": [], "redaction": {"profile": "standard"}} if {
	input.request.model == "echo"
}

decision := {"allow": true, "reasons": ["after a long walk"], "models": ["gpt-4o-mini"], "secrets": [], "redaction": {"profile": "standard"}} if {
	input.request.model == "gpt-4o-mini"
	count([p | some i in numbers.range(1, 600); some j in numbers.range(1, 600); p := i * j]) > 0
}
`;

interface Instance {
  prepared: PreparedDir;
  runtime: Runtime;
  addresses: BoundAddresses;
  logs: string[];
}

const instances: Instance[] = [];
let upstream: FakeUpstream | undefined;

async function startWithBudget(budget: string): Promise<Instance> {
  upstream ??= await startUpstream();
  const prepared = await prepareWardenDir({ upstreamUrl: upstream.url });
  mkdirSync(join(prepared.dir, 'budget-policies'));
  writeFileSync(join(prepared.dir, 'budget-policies', 'budget.rego'), POLICY);
  const text = readFileSync(prepared.configFile, 'utf8');
  const next = text.replace(/^policy: .*$/m, `policy: { engine: rego, paths: [budget-policies], entrypoint: warden/decision, ${budget} }`);
  expect(next).not.toBe(text);
  writeFileSync(prepared.configFile, next);
  const logs: string[] = [];
  const config = loadConfig(prepared.configFile, {});
  const runtime = await createRuntime(config, { logger: createLogger({ level: 'debug' }, { write: (s: string) => void logs.push(s) }), configDir: prepared.dir });
  const inst = { prepared, runtime, addresses: await runtime.start(), logs };
  instances.push(inst);
  return inst;
}

async function call(inst: Instance, model: string) {
  const token = await inst.prepared.signer.token('labs', 'raw-bot');
  const res = await postChat(inst.addresses.http, token, { model, messages: [{ role: 'user', content: 'hello' }] });
  return { status: res.status, json: (await res.json()) as any };
}

function lastAudit(inst: Instance): Record<string, any> {
  const lines = readFileSync(inst.prepared.auditFile, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return JSON.parse(lines.at(-1)!) as Record<string, any>;
}

afterAll(async () => {
  for (const i of instances) {
    await i.runtime.shutdown('test finished');
    rmSync(i.prepared.dir, { recursive: true, force: true });
  }
  await upstream?.close();
});

describe('policy evaluation budget from the config', () => {
  it('a generous budget lets the same policy finish and allow', async () => {
    const inst = await startWithBudget('max_steps: 1000000000, timeout_ms: 60000');
    const r = await call(inst, 'gpt-4o-mini');
    expect(r.status, JSON.stringify(r.json)).toBe(200);
  });

  for (const [name, budget] of [
    ['max_steps', 'max_steps: 500'],
    // 25 ms: far past the cheap call's evaluation (microseconds; at 1 ms, a cold first evaluation
    // on Node 24 in CI overran it), far short of the walk's.
    ['timeout_ms', 'max_steps: 1000000000, timeout_ms: 25'],
  ] as const) {
    it(`${name}: a runaway policy is denied with policy_error and the server keeps serving`, async () => {
      const inst = await startWithBudget(budget);
      const before = upstream!.calls.length;

      const cheap = await call(inst, 'echo');
      expect(cheap.status, JSON.stringify(cheap.json)).toBe(200);

      const runaway = await call(inst, 'gpt-4o-mini');
      expect(runaway.status).toBe(500);
      expect(runaway.json.error.code).toBe('policy_error');
      expect(upstream!.calls.length).toBe(before); // fail closed: nothing went upstream
      const rec = lastAudit(inst);
      expect(rec.status).not.toBe('ok');
      expect(rec.error_code ?? rec.error?.code).toBe('policy_error');

      // Still up and serving, on the app and admin listeners.
      const again = await call(inst, 'echo');
      expect(again.status).toBe(200);
      const health = await fetch(`${inst.addresses.admin}/healthz`);
      expect(health.status).toBe(200);
    });
  }
});
