/**
 * OPA's own compliance cases, run against the built-in Rego engine. The cases are read from
 * ../shared/opa-compliance (outside this repository, beside the checkout); where that folder is
 * absent the suite passes without running them. The pass count must never drop below the
 * baseline in compliance-baseline.json, which is only ever raised.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CASES_DIR, runCompliance } from '../../../scripts/compliance-lib.js';

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
});
