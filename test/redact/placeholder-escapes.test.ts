/**
 * compatibilityReading's pre-check (placeholder-escapes.ts): a text is folded (NFKC) for
 * placeholders only when it holds a character of a listed block. The list must hold every code
 * point whose fold holds a placeholder's character, or a placeholder written with it is not
 * reserved (see session.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { compatibilityReading } from '../../src/redact/placeholder-escapes.js';

describe('compatibilityReading', () => {
  it('folds a text holding any code point whose NFKC holds <, >, _, a capital or a digit', () => {
    const missed: string[] = [];
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      const folded = c.normalize('NFKC');
      if (folded === c || !/[<>_A-Z0-9]/.test(folded)) continue;
      if (compatibilityReading(`<EMAIL_ADDRESS_${c}>`) === null) missed.push(`U+${cp.toString(16).toUpperCase()}`);
    }
    expect(missed).toEqual([]);
  });

  it('leaves a text without an angle bracket, or without a folding character, alone', () => {
    expect(compatibilityReading('EMAIL_ADDRESS_\u3251')).toBeNull();
    expect(compatibilityReading('<EMAIL_ADDRESS_1> caf\u00E9')).toBeNull();
    expect(compatibilityReading('<EMAIL_ADDRESS_\u3251>')).toBe('<EMAIL_ADDRESS_21>');
  });
});
