/**
 * Guards the redaction quality: scores may not drop below the committed baseline
 * (test/redact/eval-baseline.json, written by `npm run eval:redact -- --write-baseline`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BASELINE_PATH, evalCorpus, evalPresidio, type EvalBaseline } from '../../scripts/eval-redact.js';

const baseline = JSON.parse(readFileSync(BASELINE_PATH, 'utf8')) as EvalBaseline;

describe('redaction evaluation', () => {
  it('generated corpus: F1 ≥ 0.95 per entity, never below the baseline; look-alike false positives ≤ 1%', () => {
    const c = evalCorpus();
    for (const [entity, base] of Object.entries(baseline.corpus)) {
      const s = c.scores[entity];
      expect(s, entity).toBeDefined();
      expect(s!.f1, `${entity} F1`).toBeGreaterThanOrEqual(0.95);
      expect(s!.f1, `${entity} F1 vs baseline`).toBeGreaterThanOrEqual(base.f1);
      expect(s!.precision, `${entity} precision vs baseline`).toBeGreaterThanOrEqual(base.precision);
      expect(s!.recall, `${entity} recall vs baseline`).toBeGreaterThanOrEqual(base.recall);
    }
    expect(c.lookalikes.rate).toBeLessThanOrEqual(0.01);
    expect(c.lookalikes.rate).toBeLessThanOrEqual(baseline.lookalikeFalsePositiveRate);
    // The phone context rule's samples: every possible-only number after a phone word is found
    // (and only through the rule: valid-only finds none), no look-alike after a phone word and
    // an identifier word is.
    const pc = c.phoneContext;
    expect(pc.possibleTotal).toBeGreaterThan(0);
    expect(pc.possibleFound).toBe(pc.possibleTotal);
    expect(pc.possibleFoundValidOnly).toBe(0);
    expect(pc.lookalikeTotal).toBeGreaterThan(0);
    expect(pc.lookalikeWithFindings).toBe(0);
  });

  // Reads ../shared/pii-eval/presidio-synth-v2.json (outside the repo); passes when it is absent,
  // as on a machine without the shared data set.
  it('presidio-synth-v2 structured entities: never below the baseline', () => {
    const p = evalPresidio();
    if (!p || !baseline.presidio) return;
    for (const [entity, base] of Object.entries(baseline.presidio)) {
      const s = p.scores[entity]!;
      expect(s.f1, `${entity} F1 vs baseline`).toBeGreaterThanOrEqual(base.f1);
      expect(s.precision, `${entity} precision vs baseline`).toBeGreaterThanOrEqual(base.precision);
      expect(s.recall, `${entity} recall vs baseline`).toBeGreaterThanOrEqual(base.recall);
      expect(s.f1, entity).toBeGreaterThanOrEqual(0.95);
    }
    // Phone numbers reach it through the context rule (possible numbers after a phone word),
    // not by loosening validation: valid-only stays below, and the rule recovers gold values.
    expect(p.phoneStrictRejected).toBeLessThanOrEqual(p.phoneTotal);
    expect(p.phoneContextRecovered).toBeGreaterThan(0);
    expect(p.phoneValidOnly.recall).toBeLessThan(p.scores['PHONE_NUMBER']!.recall);
  });
});
