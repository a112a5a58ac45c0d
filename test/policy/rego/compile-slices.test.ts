/**
 * Compiling runs a slice at a time: the work is one generator (compileRegoPolicySteps) that the
 * CLI and tests run at once and a load in a serving process runs giving the event loop turns
 * (time-slices.ts). The answers must not depend on how it was run, other callbacks must run
 * between its steps, and a given-up load (its AbortSignal: the reload deadline) must stop.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileRegoPolicy, compileRegoPolicySteps, loadRegoPolicy } from '../../../src/policy/rego/index.js';
import { createRegoPolicyEngine } from '../../../src/policy/rego-engine.js';
import { runSteps, runStepsYielding } from '../../../src/pipeline/time-slices.js';
import { unmarshalJSON } from '../../../src/policy/rego/builtins/json.js';
import { jsonTextSteps, stringifyJSON, type Value } from '../../../src/policy/rego/value.js';

/** `n` rules of several kinds (partial sets, complete rules, functions with else), one package. */
function generated(n: number): string {
  let src = 'package gen\n\nimport rego.v1\n\n';
  for (let i = 0; i < n; i++) {
    src += `deny contains "r${i}" if { input.model == "m${i % 40}"; input.ns != "n${i}" }\n`;
    src += `limit_${i}(x) := y if { y := x * ${i}; y > 10 } else := 0\n`;
  }
  src += 'decision := {"deny": deny, "limit": limit_7(input.n)}\n';
  return src;
}

const SOURCES = [
  { path: 'gen.rego', source: generated(300) },
  { path: 'main.rego', source: 'package warden\n\nimport rego.v1\n\ndecision := data.gen.decision\n' },
];
const RULES = 300 * 2 + 2;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('compiling a slice at a time', () => {
  it('gives the event loop a turn between steps, and compiles the same policy as at once', async () => {
    let done = false;
    // Slices of 0 ms: a turn after every step, whatever the machine's speed.
    const compiling = runStepsYielding(compileRegoPolicySteps(SOURCES), undefined, 0).finally(() => (done = true));
    let turns = 0;
    while (!done) {
      await turn();
      if (!done) turns++;
    }
    const sliced = await compiling;
    // At least a turn per rule (each is planned as a step of its own), and as many while parsing.
    expect(turns).toBeGreaterThan(2 * RULES);
    const once = compileRegoPolicy(SOURCES);
    expect(sliced.revision).toBe(once.revision);
    for (const input of [{ model: 'm3', ns: 'x', n: 5 }, { model: 'm39', ns: 'n39', n: 1 }, {}]) {
      expect(sliced.evaluate('warden/decision', input)).toEqual(once.evaluate('warden/decision', input));
    }
    expect(sliced.inputDeps()).toEqual(once.inputDeps());
  });

  it('stops at its next turn once its signal is aborted, with the signal\'s reason', async () => {
    const giveUp = new AbortController();
    const steps = compileRegoPolicySteps(SOURCES);
    const compiling = runStepsYielding(steps, giveUp.signal, 0);
    await turn();
    giveUp.abort(new Error('past the deadline'));
    await expect(compiling).rejects.toThrow('past the deadline');
    // The generator was closed: nothing of the compile runs any more.
    expect(steps.next()).toEqual({ done: true, value: undefined });
  });

  it('a policy engine given up while it loads rejects with the reason, where it loaded the set anyway before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-slices-'));
    dirs.push(dir);
    for (const s of SOURCES) writeFileSync(join(dir, s.path), s.source);
    // The set loads when nobody gives it up (the loader's own path, slices of 10 ms).
    const input = { model: 'm1', ns: 'x', n: 2 };
    expect((await loadRegoPolicy([dir])).evaluate('warden/decision', input)).toEqual(compileRegoPolicy(SOURCES).evaluate('warden/decision', input));
    const giveUp = new AbortController();
    const loading = createRegoPolicyEngine({ paths: [dir], entrypoint: 'warden/decision', signal: giveUp.signal });
    giveUp.abort(new Error('policies did not load within 1 ms (reload.timeout_ms)'));
    await expect(loading).rejects.toThrow('did not load within 1 ms');
  });

  it('hashes the base data as its JSON text, streamed: the same text, and data past 16 Mi characters loads', () => {
    const values: Value[] = [
      {},
      { z: 1, a: [], b: {}, c: null, é: 'x', '\u{1f600}': [1.5, -0, 1e21, true, false, null, 'a\u2028b', 'b"q'] },
      unmarshalJSON('{"big": [9007199254740993, 12345678901234567890123], "n": {"k": {"j": [[], [{}]]}}}'),
      JSON.parse('{"__proto__": {"a": 1}, "b": 2}') as Value,
      Array.from({ length: 5000 }, (_, i) => ({ [`k${5000 - i}`]: i })),
    ];
    for (const v of values) {
      let text = '';
      runSteps(jsonTextSteps(v, (t) => (text += t)));
      expect(text).toBe(stringifyJSON(v));
    }
    // The revision's text was built whole and capped as an evaluation's string: data files of
    // 17 MB (the set may hold 32 MiB) failed to load as eval_budget_exceeded.
    const large = compileRegoPolicy(SOURCES, { blob: 'x'.repeat(17_000_000) });
    expect(large.revision).not.toBe(compileRegoPolicy(SOURCES, { blob: 'x'.repeat(17_000_001) }).revision);
  });
});
