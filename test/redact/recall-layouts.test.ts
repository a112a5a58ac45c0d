/**
 * Recall in the layouts numbers come in outside prose: lists (one per line, or several on one
 * line). Each recall case sits next to the false positives the old, stricter rules were there
 * to prevent, which must stay out.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_ENTITIES, createRedactor } from '../../src/redact/index.js';
import { decision } from './helpers.js';

const redactor = createRedactor({});
/** The standard set (URL, a container that would win over what it holds, is strict-only). */
const STANDARD = new Set(BUILTIN_ENTITIES.filter((e) => e !== 'URL'));

function found(text: string): Array<[string, string]> {
  return redactor.scanner.scan(text, { entities: STANDARD }).findings.map((f) => [f.entity, text.slice(f.start, f.end)]);
}

function masked(text: string): string {
  return redactor.session(decision({ mode: 'mask' }), []).redactText(text);
}

describe('lists of SSNs: each one is found', () => {
  const cases: Array<[string, string[]]> = [
    ['536-22-1234\n536-22-1235\n536-22-1236', ['536-22-1234', '536-22-1235', '536-22-1236']],
    ['ssns 536-22-1234 536-22-1235', ['536-22-1234', '536-22-1235']],
    ['ssns: 536-22-1234, 536-22-1235', ['536-22-1234', '536-22-1235']],
    ['536-22-1234\t536-22-1235', ['536-22-1234', '536-22-1235']],
    ['SSN 536 22 1234\n536 22 1235', ['536 22 1234', '536 22 1235']],
    ['ssn 536-22-1234 2020', ['536-22-1234']],
    ['(536-22-1234) (536-22-1235)', ['536-22-1234', '536-22-1235']],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want.map((v) => ['US_SSN', v]));
    });
  }

  it('an SSN after a card in a tab-separated row', () => {
    expect(found('x\t4111111111111111\t536-22-1234')).toEqual([
      ['CREDIT_CARD', '4111111111111111'],
      ['US_SSN', '536-22-1234'],
    ]);
  });

  it('the list is masked whole', () => {
    expect(masked('536-22-1234\n536-22-1235\n536-22-1236')).toBe('[US_SSN]\n[US_SSN]\n[US_SSN]');
  });

  // A 3-2-4 run glued to more digits by its own separator is part of a longer number.
  const longer = ['ref 1-536-22-1234', 'ref 536-22-1234-5', 'ref 12 536 22 1234', 'ref 536 22 1234 5678', 'ref 536.22.1234.1'];
  for (const text of longer) {
    it(`not an SSN inside a longer number: ${JSON.stringify(text)}`, () => {
      expect(found(text).filter(([e]) => e === 'US_SSN')).toEqual([]);
    });
  }
});
