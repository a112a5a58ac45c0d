/** Allow-lists: known non-PII (the company's own support address, test card numbers, ...). */
import type RE2 from 're2';
import { WardenError } from '../pipeline/errors.js';
import type { AllowListConfig } from './types.js';
import { anchoredAllowPattern, compileUserPattern } from './custom.js';

/** Values of unrelated kinds: a pattern that allows them all is not a list of known non-PII. */
const UNRELATED_VALUES = ['jane.doe@allow-check.example', '4111111111111111', 'ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5', '10.20.30.40'];

/**
 * A pattern that matches the empty string (`.*`, `a|`) or every one of UNRELATED_VALUES (`.+`,
 * `\S+`) would let any finding through, secrets included: redaction silently off.
 */
function checkNotCatchAll(re: RE2, path: string): void {
  const matches = (v: string): boolean => {
    re.lastIndex = 0;
    return re.test(v);
  };
  const what = matches('') ? 'matches the empty string' : UNRELATED_VALUES.every(matches) ? 'matches any value' : null;
  if (what === null) return;
  throw new WardenError('invalid_request', `${path} ${what}: it would turn redaction off; list the known values it should allow instead`, {
    location: { path },
  });
}

export class AllowList {
  private readonly literals: Set<string>;
  private readonly patterns: RE2[];

  constructor(cfg: AllowListConfig | undefined) {
    this.literals = new Set((cfg?.literals ?? []).map((s) => s.toLowerCase()));
    // Anchored so a pattern must match the whole finding, not just part of it.
    this.patterns = (cfg?.patterns ?? []).map((p, i) => {
      const path = `redaction.allow.patterns[${i}]`;
      const re = compileUserPattern(anchoredAllowPattern(p), 'i', path);
      checkNotCatchAll(re, path);
      return re;
    });
  }

  get empty(): boolean {
    return this.literals.size === 0 && this.patterns.length === 0;
  }

  allows(value: string): boolean {
    if (this.literals.has(value.toLowerCase())) return true;
    for (const p of this.patterns) {
      p.lastIndex = 0;
      if (p.test(value)) return true;
    }
    return false;
  }
}
