/**
 * `npm run compliance`: runs OPA's compliance cases from ../shared/opa-compliance against the
 * built-in Rego engine, prints per-category and total `N passed, M failed`, and writes
 * `.compliance-summary.json` at the repository root. Exits 0 (saying so) when the shared folder
 * is absent, e.g. in a checkout outside the usual layout.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CASES_DIR, runCompliance } from './compliance-lib.js';

const dir = process.argv[2] ?? DEFAULT_CASES_DIR;
const verbose = process.argv.includes('-v');
const summary = runCompliance(dir);
if (summary === undefined) {
  process.stdout.write(`compliance cases not found at ${dir}; nothing to run\n`);
  process.exit(0);
}
for (const [name, cat] of Object.entries(summary.categories).sort()) {
  process.stdout.write(`${name.padEnd(22)} ${cat.passed} passed, ${cat.failed} failed\n`);
  for (const f of cat.failures) process.stdout.write(`    FAIL ${f}\n`);
}
if (verbose) {
  for (const o of summary.outcomes) if (!o.passed) process.stdout.write(`\n${o.file}: ${o.note}\n  ${o.detail ?? ''}\n`);
}
const pct = ((100 * summary.passed) / Math.max(1, summary.total)).toFixed(1);
process.stdout.write(`\nTOTAL ${summary.passed} passed, ${summary.failed} failed (${pct}% of ${summary.total})\n`);
const out = fileURLToPath(new URL('../.compliance-summary.json', import.meta.url));
writeFileSync(out, JSON.stringify(summary, null, 2) + '\n');
process.stdout.write(`summary written to ${out}\n`);
// Fail only on a regression below the committed baseline (the vitest gate uses the same number).
const baselineFile = fileURLToPath(new URL('../test/policy/rego/compliance-baseline.json', import.meta.url));
if (existsSync(baselineFile)) {
  const baseline = JSON.parse(readFileSync(baselineFile, 'utf8')) as { passed: number };
  if (summary.passed < baseline.passed) {
    process.stdout.write(`REGRESSION: ${summary.passed} passed, below the baseline of ${baseline.passed}\n`);
    process.exitCode = 1;
  }
}
