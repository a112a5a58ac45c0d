/**
 * `npm run bench`: the gateway, policy, redaction and streaming benchmarks in one run. Prints one
 * table of figures, then the DESIGN.md targets next to what this run measured, and writes
 * bench/results/latest.json (a full run only).
 *   npm run bench                  every suite
 *   npm run bench -- gateway       only the named suites (gateway, policy, redact, streaming)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runGatewayBench } from './gateway.js';
import { runPolicyBench } from './policy.js';
import { runRedactBench } from './redact.js';
import { runStreamingBench } from './streaming.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));

type Figures = Record<string, number>;

const SUITES: Array<[string, () => Promise<Figures>]> = [
  ['gateway', runGatewayBench],
  ['policy', runPolicyBench],
  ['redact', runRedactBench],
  ['streaming', runStreamingBench],
];

/** DESIGN.md "Performance targets": figure, bound, and whether lower or higher is better. */
const TARGETS: Array<{ figure: string; bound: number; want: 'max' | 'min'; what: string }> = [
  { figure: 'gateway.warden.added_p50_ms', bound: 0.5, want: 'max', what: 'added latency p50 at 500 req/s (ms)' },
  { figure: 'gateway.warden.added_p99_ms', bound: 2, want: 'max', what: 'added latency p99 at 500 req/s (ms)' },
  { figure: 'gateway.warden_over_proxy.overhead_ratio_p50', bound: 1.5, want: 'max', what: 'overhead vs bare proxy (x)' },
  { figure: 'gateway.warden_over_proxy.throughput_ratio', bound: 0.5, want: 'min', what: 'max throughput vs bare proxy' },
  { figure: 'policy.decision_p50_us', bound: 10, want: 'max', what: 'policy decision p50 (µs)' },
  { figure: 'policy.compile_500_rules_ms', bound: 200, want: 'max', what: 'compile of 500 rules (ms)' },
  { figure: 'redact.redact_4kb_mb_per_cpu_s', bound: 50, want: 'min', what: 'redaction MB per CPU-second, 4 KB' },
  { figure: 'redact.redact_4kb_p99_us', bound: 200, want: 'max', what: 'redaction p99 at 4 KB (µs)' },
  { figure: 'streaming.ttft_added_p50_ms', bound: 1, want: 'max', what: 'time to first token added p50 (ms)' },
  { figure: 'streaming.memory_per_stream_kb_n1000', bound: 64, want: 'max', what: 'memory per open stream (KB)' },
];

async function main(): Promise<void> {
  const started = Date.now();
  const results: Record<string, Figures> = {};
  const only = process.argv.slice(2);
  const unknown = only.filter((n) => !SUITES.some(([name]) => name === n));
  if (unknown.length > 0) throw new Error(`unknown suite ${unknown.join(', ')}; the suites are ${SUITES.map(([n]) => n).join(', ')}`);
  for (const [name, run] of SUITES) {
    if (only.length > 0 && !only.includes(name)) continue;
    process.stdout.write(`${name}: running...\n`);
    results[name] = await run();
  }

  const rows: Array<[string, string]> = [];
  for (const [suite, figures] of Object.entries(results)) {
    for (const [key, value] of Object.entries(figures)) rows.push([`${suite}.${key}`, String(value)]);
  }
  const width = Math.max(...rows.map(([k]) => k.length), 6);
  process.stdout.write(`\n${'metric'.padEnd(width)}  value\n${'-'.repeat(width)}  -----\n`);
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);

  process.stdout.write('\ntargets (DESIGN.md)\n');
  for (const t of TARGETS) {
    const [suite, ...rest] = t.figure.split('.');
    const value = results[suite!]?.[rest.join('.')];
    const met = value === undefined ? 'not measured' : (t.want === 'max' ? value <= t.bound : value >= t.bound) ? 'met' : 'MISSED';
    const bound = `${t.want === 'max' ? '≤' : '≥'} ${t.bound}`;
    process.stdout.write(`  ${t.what.padEnd(40)} ${bound.padEnd(8)} ${String(value ?? '-').padEnd(10)} ${met}\n`);
  }

  if (only.length > 0) return; // a partial run does not replace the full record
  const out = join(HERE, 'results');
  mkdirSync(out, { recursive: true });
  const record = {
    time: new Date().toISOString(),
    node: process.version,
    duration_s: Math.round((Date.now() - started) / 1000),
    results,
  };
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify(record, null, 2)}\n`);
  process.stdout.write(`\nwrote bench/results/latest.json (${record.duration_s}s)\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
