/** Allow-lists: known non-PII (the company's own support address, test card numbers, ...). */
import type RE2 from 're2';
import type { AllowListConfig } from './types.js';
import { compileUserPattern } from './custom.js';

export class AllowList {
  private readonly literals: Set<string>;
  private readonly patterns: RE2[];

  constructor(cfg: AllowListConfig | undefined) {
    this.literals = new Set((cfg?.literals ?? []).map((s) => s.toLowerCase()));
    // Anchored so a pattern must match the whole finding, not just part of it.
    this.patterns = (cfg?.patterns ?? []).map((p, i) => compileUserPattern(`^(?:${p})$`, 'i', `redaction.allow.patterns[${i}]`));
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
