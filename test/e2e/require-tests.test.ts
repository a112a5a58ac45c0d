/**
 * `policy.require_tests: true`: each load of the policy set (start and every reload) runs the
 * set's `*_test.rego` tests as `warden policy test` does, and refuses the set when one fails or
 * errors, or when there is none. A change that compiles but allows what it must not is rejected
 * at the reload (the last good set keeps serving), and a start with a failing test stops with
 * the test's name and file:line.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { runServe } from './helpers/cli.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, prepareWardenDir, startWarden, type PreparedDir, type WardenFixture } from './helpers/warden.js';

const REQUIRE = 'policy: { engine: rego, paths: [policies], entrypoint: warden/decision, require_tests: true }';

/** Tests of the fixture policy (test/e2e/fixtures/policies/e2e.rego): a listed service is allowed, another is not. */
const TESTS = `package warden_test

import rego.v1

listed := {
	"action": "prompt.execute",
	"principal": {"namespace": "support", "service_account": "ticket-bot"},
	"template": {"id": "support/ticket-summary@2", "allowed_services": ["support/ticket-bot"], "retired": false, "secret_refs": []},
}

test_listed_service_allowed if data.warden.decision.allow with input as listed

test_other_service_denied if {
	not data.warden.decision.allow with input as object.union(listed, {"principal": {"namespace": "labs", "service_account": "raw-bot"}})
}
`;

/** Line of `test_other_service_denied` in TESTS. */
const OTHER_LINE = TESTS.split('\n').findIndex((l) => l.startsWith('test_other_service_denied')) + 1;

const quiet = () => createLogger({ level: 'error' }, { write: () => undefined });

/** Why a runtime on `dir`'s config did not start (undefined: it started, and was shut down). */
async function startFailure(dir: PreparedDir): Promise<unknown> {
  const config = loadConfig(dir.configFile, {});
  const runtime = await createRuntime(config, { logger: quiet(), configDir: dir.dir }).catch((e: unknown) => e);
  if (runtime instanceof Error) return runtime;
  await (runtime as Awaited<ReturnType<typeof createRuntime>>).shutdown('test');
  return undefined;
}

async function withDir(files: Record<string, string>, fn: (dir: PreparedDir) => Promise<void>): Promise<void> {
  const dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1', policy: REQUIRE, files });
  try {
    await fn(dir);
  } finally {
    rmSync(dir.dir, { recursive: true, force: true });
  }
}

describe('policy.require_tests at a reload', () => {
  let upstream: FakeUpstream;
  let w: WardenFixture;

  beforeAll(async () => {
    upstream = await startUpstream();
    w = await startWarden({ upstreamUrl: upstream.url, watch: true, policy: REQUIRE, files: { 'policies/e2e_test.rego': TESTS } });
  });

  afterAll(async () => {
    await w?.close();
    await upstream?.close();
  });

  async function call(namespace: string, sa: string): Promise<number> {
    const token = await w.signer.token(namespace, sa);
    const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hello' } } });
    await res.arrayBuffer();
    return res.status;
  }

  const readyz = async (): Promise<{ policy_revision: string }> => (await fetch(`${w.addresses.admin}/readyz`)).json() as Promise<{ policy_revision: string }>;

  it('serves a set whose tests pass', async () => {
    expect(await call('support', 'ticket-bot')).toBe(200);
    expect(await call('labs', 'raw-bot')).toBe(403);
  });

  it('rejects a change that fails a test, naming it with file:line; the last good set keeps serving', { timeout: 60_000 }, async () => {
    const policy = join(w.dir, 'policies', 'e2e.rego');
    const original = readFileSync(policy, 'utf8');
    const good = await readyz();
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected'));
    const applied = () => w.logs.filter((l) => l.includes('reload applied')).length;
    const before = rejected().length;
    const appliedBefore = applied();
    // Compiles, and allows every caller as if it were support/ticket-bot.
    writeFileSync(policy, original.replace('service := sprintf("%s/%s", [input.principal.namespace, input.principal.service_account])', 'service := "support/ticket-bot"'));
    try {
      // The write may be seen half done first (an empty file, rejected for that): wait for the tests' verdict.
      await eventually(() => rejected().slice(before).some((l) => l.includes('policy tests failed')));
      const line = rejected().find((l) => l.includes('policy tests failed'))!;
      const test = join(w.dir, 'policies', 'e2e_test.rego');
      expect(JSON.parse(line)).toMatchObject({ level: 'error', kind: 'policies', policy_revision: good.policy_revision });
      expect(JSON.parse(line).msg).toBe(
        `reload rejected, the last good set keeps serving: ${test}:${OTHER_LINE}: 1 of 2 policy tests failed: data.warden_test.test_other_service_denied FAIL at ${test}:${OTHER_LINE} (policy.require_tests is true)`,
      );
      expect(applied()).toBe(appliedBefore);
      expect((await readyz()).policy_revision).toBe(good.policy_revision);
      // The old set decides: the other service is still denied.
      expect(await call('labs', 'raw-bot')).toBe(403);
      expect(await call('support', 'ticket-bot')).toBe(200);
      const metrics = await (await fetch(`${w.addresses.admin}/metrics`)).text();
      expect(metrics).toMatch(/warden_reload_total\{[^}]*kind="policies"[^}]*outcome="error"[^}]*\} [1-9]/);
    } finally {
      writeFileSync(policy, original);
    }
    await eventually(() => applied() > appliedBefore);
    expect(await call('labs', 'raw-bot')).toBe(403);
  });

  it('rejects a set whose tests were all removed', { timeout: 60_000 }, async () => {
    const test = join(w.dir, 'policies', 'e2e_test.rego');
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected'));
    const applied = () => w.logs.filter((l) => l.includes('reload applied')).length;
    const before = rejected().length;
    const appliedBefore = applied();
    rmSync(test);
    try {
      await eventually(() => rejected().length > before);
      expect(JSON.parse(rejected().at(-1)!).msg).toBe(
        'reload rejected, the last good set keeps serving: policy.paths: the policy set has no tests: no test_ rule in a *_test.rego file under policy.paths (policy.require_tests is true)',
      );
    } finally {
      writeFileSync(test, TESTS);
    }
    await eventually(() => applied() > appliedBefore);
  });
});

describe('policy.require_tests at the start', () => {
  it('a failing test stops `warden serve`, naming the test with file:line', { timeout: 60_000 }, async () => {
    const failing = TESTS.replace('"namespace": "labs"', '"namespace": "support"').replace('"service_account": "raw-bot"', '"service_account": "ticket-bot"');
    await withDir({ 'policies/e2e_test.rego': failing }, async (dir) => {
      const { code, started, stderr } = await runServe(['serve', '--config', dir.configFile]);
      expect(started).toBe(false);
      expect(code).not.toBe(0);
      const test = join(dir.dir, 'policies', 'e2e_test.rego');
      expect(stderr).toContain(
        `warden: ${test}:${OTHER_LINE}: policy_error: 1 of 2 policy tests failed: data.warden_test.test_other_service_denied FAIL at ${test}:${OTHER_LINE} (policy.require_tests is true)`,
      );
    });
  });

  it('a test that errors names the engine error (its position and code, no value); what a failing test prints is not kept', async () => {
    const erroring = `${TESTS}\ntest_budget if to_number(data.warden.models[0]) > 0\n\ntest_printing if {\n\tprint("CANARY-PRINTED", data.warden.models)\n\tfalse\n}\n`;
    await withDir({ 'policies/e2e_test.rego': erroring }, async (dir) => {
      const err = (await startFailure(dir)) as Error & { code?: string };
      expect(err).toMatchObject({ code: 'policy_error', details: { code: 'policy_tests_failed', failed: 2, total: 4 } });
      const test = join(dir.dir, 'policies', 'e2e_test.rego');
      const line = (name: string) => erroring.split('\n').findIndex((l) => l.startsWith(name)) + 1;
      expect(err.message).toBe(
        `2 of 4 policy tests failed: data.warden_test.test_budget ERROR at ${test}:${line('test_budget')} (${test}:${line('test_budget')}:16: eval_builtin_error: to_number: strconv.ParseFloat: parsing the operand: invalid syntax); ` +
          `data.warden_test.test_printing FAIL at ${test}:${line('test_printing')} (policy.require_tests is true)`,
      );
      expect(err.message).not.toContain('gpt-4o-mini');
      expect(err.message).not.toContain('CANARY-PRINTED');
    });
  });

  it('a set with no tests at all is refused, saying so', async () => {
    await withDir({}, async (dir) => {
      const err = await startFailure(dir);
      expect(err).toMatchObject({ code: 'policy_error', location: { path: 'policy.paths' }, details: { code: 'policy_tests_missing' } });
      expect((err as Error).message).toBe('the policy set has no tests: no test_ rule in a *_test.rego file under policy.paths (policy.require_tests is true)');
    });
  });

  it('a test file that does not compile is refused at its position', async () => {
    await withDir({ 'policies/e2e_test.rego': `${TESTS}\ntest_broken if {\n` }, async (dir) => {
      const err = await startFailure(dir);
      expect(err).toMatchObject({ code: 'policy_error', location: { file: join(dir.dir, 'policies', 'e2e_test.rego') } });
      expect((err as Error).message).toMatch(/^the policy tests do not compile: rego_parse_error: .* \(policy\.require_tests is true\)$/);
    });
  });

  it('a test file holding a rule of the served package is refused: the tests would judge a rule that does not serve', async () => {
    // Under the tests, `models` of this file would conflict with (or stand in for) the served one.
    await withDir({ 'policies/e2e_test.rego': TESTS, 'policies/extra_test.rego': 'package warden\nimport rego.v1\n\nallow_all := true\n' }, async (dir) => {
      const err = await startFailure(dir);
      expect(err).toMatchObject({ code: 'policy_error', location: { file: join(dir.dir, 'policies', 'extra_test.rego'), line: 4 }, details: { code: 'policy_tests_mismatch' } });
    });
  });

  it('the tests count against reload.timeout_ms: a set whose tests outlast it is refused by the deadline', { timeout: 120_000 }, async () => {
    // Each test runs to its evaluation budget (1,000,000 steps): 200 of them take far longer than 5 s.
    const slow = Array.from({ length: 200 }, (_, i) => `test_slow_${i} if {\n\tsome a in numbers.range(1, 100000)\n\tsome b in numbers.range(1, 100000)\n\ta + b < 0\n}\n`).join('\n');
    await withDir({ 'policies/e2e_test.rego': `${TESTS}\n${slow}` }, async (dir) => {
      writeFileSync(dir.configFile, readFileSync(dir.configFile, 'utf8').replace('debounce_ms: 50 }', 'debounce_ms: 50, timeout_ms: 5000 }'));
      const err = await startFailure(dir);
      expect((err as Error).message).toBe('policies did not load within 5000 ms (reload.timeout_ms)');
    });
  });

  it('a set whose tests pass starts; without require_tests nothing changes (no tests needed)', async () => {
    await withDir({ 'policies/e2e_test.rego': TESTS }, async (dir) => {
      expect(await startFailure(dir)).toBeUndefined();
    });
    const plain = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
    try {
      expect(await startFailure(plain)).toBeUndefined();
    } finally {
      rmSync(plain.dir, { recursive: true, force: true });
    }
  });
});
