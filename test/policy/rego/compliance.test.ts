/**
 * OPA's own compliance cases, run against the built-in Rego engine. The cases are read from
 * ../shared/opa-compliance (outside this repository, beside the checkout); where that folder is
 * absent the suite passes without running them. The pass count must never drop below the
 * baseline in compliance-baseline.json, which is only ever raised.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CASES_DIR, runCase, runCompliance } from '../../../scripts/compliance-lib.js';

const baseline = JSON.parse(readFileSync(new URL('./compliance-baseline.json', import.meta.url), 'utf8')) as { passed: number; total: number };

describe('OPA compliance cases', () => {
  it('pass at least as many cases as the committed baseline', () => {
    if (!existsSync(DEFAULT_CASES_DIR)) {
      // Outside the shared layout there is nothing to measure; the baseline file still parses.
      expect(baseline.passed).toBeGreaterThan(0);
      return;
    }
    const summary = runCompliance(DEFAULT_CASES_DIR)!;
    expect(summary.total).toBe(baseline.total);
    const failures = summary.outcomes.filter((o) => !o.passed).map((o) => `${o.file}: ${o.note}`);
    expect(summary.passed, `failing cases:\n${failures.join('\n')}`).toBeGreaterThanOrEqual(baseline.passed);
  }, 120_000);

  it('matches want_error against the error text as OPA\'s runner does (code: message)', () => {
    const c = {
      note: 'n',
      file: 'f.yaml',
      category: 'c',
      query: 'data.test.p = x',
      modules: ['package test\n\np := x if x := net.cidr_merge(["::1"])\n'],
      strict_error: true,
    };
    expect(runCase({ ...c, want_error: 'eval_builtin_error: net.cidr_merge: IPv6 invalid: needs prefix length' }).passed).toBe(true);
    expect(runCase({ ...c, want_error: 'net.cidr_merge: IPv6 invalid' }).passed).toBe(true);
    expect(runCase({ ...c, want_error: 'eval_type_error: net.cidr_merge' }).passed).toBe(false);
  });
});
