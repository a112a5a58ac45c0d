/**
 * `npm run bench`: the gateway benchmark, then the policy, redaction and streaming benchmarks when their
 * modules are present. Prints one table and writes bench/results/latest.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runGatewayBench } from './gateway.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));

type Bench = () => Promise<Record<string, number>>;

async function optional(file: string, exportName: string): Promise<Bench | undefined> {
  if (!existsSync(join(HERE, `${file}.ts`))) return undefined;
  const mod = (await import(`./${file}.js`)) as Record<string, unknown>;
  const fn = mod[exportName];
  return typeof fn === 'function' ? (fn as Bench) : undefined;
}

async function main(): Promise<void> {
  const started = Date.now();
  const results: Record<string, Record<string, number>> = {};
  const suites: Array<[string, Bench | undefined]> = [
    ['gateway', runGatewayBench],
    ['policy', await optional('policy', 'runPolicyBench')],
    ['redact', await optional('redact', 'runRedactBench')],
    ['streaming', await optional('streaming', 'runStreamingBench')],
  ];
  for (const [name, run] of suites) {
    if (!run) {
      process.stdout.write(`${name}: skipped (bench/${name}.ts not present)\n`);
      continue;
    }
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
