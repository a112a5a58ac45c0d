/**
 * Policy benchmark: latency (p50/p99 µs) and throughput of `data.warden.decision` on the
 * built-in Rego engine for a representative input, against `policies/` (or the stand-in in
 * bench/fixtures/policy until the default policy exists), and the compile time of a generated
 * 500-rule policy set. Targets: p50 ≤ 10 µs, compile ≤ 200 ms.
 * Runs inside `npm run bench` (bench/index.ts) or alone: `npx tsx bench/policy.ts`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compilePolicy, loadPolicy } from '../src/policy/rego/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/policy/', import.meta.url));

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function round(x: number, digits = 2): number {
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}

/** A policy set of `n` rules across 10 packages: partial sets, complete rules and functions. */
export function generatedPolicySet(n: number): Array<{ path: string; source: string }> {
  const modules: Array<{ path: string; source: string }> = [];
  const perPkg = Math.ceil(n / 10);
  for (let p = 0; p < 10; p++) {
    const lines = [`package gen.p${p}`, '', 'import rego.v1', ''];
    for (let r = 0; r < perPkg && p * perPkg + r < n; r++) {
      switch (r % 4) {
        case 0:
          lines.push(`deny contains "rule ${r}" if {`, `\tinput.request.model == "m${r}"`, `\tinput.principal.namespace != "ns${r}"`, '}', '');
          break;
        case 1:
          lines.push(`allow_${r} if {`, `\tsome s in input.template.allowed_services`, `\tstartswith(s, "svc-${r}")`, `\tcount(input.request.variables) < ${r + 3}`, '}', '');
          break;
        case 2:
          lines.push(`limit_${r}(x) := y if {`, `\ty := x * ${r}`, `\ty > 10`, '} else := 0', '');
          break;
        default:
          lines.push(`label_${r} := sprintf("%s-%d", [input.environment.name, ${r}]) if input.environment.name != ""`, '');
      }
    }
    modules.push({ path: `gen/p${p}.rego`, source: lines.join('\n') });
  }
  return modules;
}

export async function runPolicyBench(): Promise<Record<string, number>> {
  const usePolicies = existsSync(`${ROOT}policies/warden.rego`);
  const policy = await loadPolicy(usePolicies ? [`${ROOT}policies`] : [`${FIXTURES}warden.rego`], { excludeTests: true });
  const input = JSON.parse(readFileSync(`${FIXTURES}input.json`, 'utf8')) as Record<string, unknown>;
  const ref = 'data.warden.decision';
  // The options the sidecar's engine evaluates with (src/policy/rego-engine.ts): it builds the
  // input itself from metadata its ingress limits bound, so it skips the engine's size and depth
  // walk over the input, which a decision here would otherwise pay for (more than half of it on
  // this input: p50 25–28 µs with it, 12–13.5 without, on the 2026-11-27 machine) and the sidecar
  // never does. The decision cache is not used: this is the engine's cost per evaluation.
  const options = { inputBounded: true };
  const first = policy.evaluate(ref, input, options);
  if (first === undefined) throw new Error(`${ref} is undefined for the benchmark input`);

  // Warm up the JIT, then time individual decisions.
  for (let i = 0; i < 20_000; i++) policy.evaluate(ref, input, options);
  const n = 50_000;
  const samples = new Float64Array(n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    policy.evaluate(ref, input, options);
    samples[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
  const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
  samples.sort();

  // Compile time of a generated 500-rule set (median of 5 runs, after one warm-up).
  const set = generatedPolicySet(500);
  compilePolicy(set);
  const compiles: number[] = [];
  for (let i = 0; i < 5; i++) {
    const s = process.hrtime.bigint();
    compilePolicy(set);
    compiles.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  compiles.sort((a, b) => a - b);

  // Evaluating the generated set's biggest partial set (indexed on input.request.model).
  const big = compilePolicy(set);
  const genRef = 'data.gen.p0.deny';
  for (let i = 0; i < 5_000; i++) big.evaluate(genRef, input, options);
  const gen = new Float64Array(20_000);
  for (let i = 0; i < gen.length; i++) {
    const s = process.hrtime.bigint();
    big.evaluate(genRef, input, options);
    gen[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
  gen.sort();

  return {
    decision_p50_us: round(percentile(samples, 0.5)),
    decision_p99_us: round(percentile(samples, 0.99)),
    decisions_per_s: Math.round((n / totalMs) * 1000),
    compile_500_rules_ms: round(compiles[2]!),
    generated_set_eval_p50_us: round(percentile(gen, 0.5)),
    default_policy: usePolicies ? 1 : 0,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const figures = await runPolicyBench();
  for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(24)} ${v}\n`);
}
