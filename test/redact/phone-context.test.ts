/**
 * The phone context rule: a number that is possible (right length for a configured region) but
 * not valid (unassigned range) counts only after a phone context word, scores lower than a valid
 * number, and never turns a look-alike into a phone number. Valid numbers are unaffected.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/redact/index.js';
import { POSSIBLE_SCORE } from '../../src/redact/entities/phone.js';
import { ENTITY_INFO } from '../../src/redact/entities/index.js';

const PHONE = new Set(['PHONE_NUMBER']);
const byDefault = createRedactor({});
const validOnly = createRedactor({}, { phoneValidation: 'valid-only' });
const possible = createRedactor({ phoneValidation: 'possible' });

type Red = ReturnType<typeof createRedactor>;
function phones(text: string, red: Red = byDefault): Array<{ value: string; score: number }> {
  return red.scanner.scan(text, { entities: PHONE }).findings.map((f) => ({ value: text.slice(f.start, f.end), score: f.score }));
}

/** San Francisco's area code with an exchange starting with 1: the right length, never assigned. */
const POSSIBLE_ONLY = '+1-415-123-4567';

describe('phone context rule', () => {
  it('the sample number is possible but not valid (the premise of the tests below)', () => {
    const p = parsePhoneNumberFromString(POSSIBLE_ONLY.replace(/-/g, ''))!;
    expect(p.isPossible()).toBe(true);
    expect(p.isValid()).toBe(false);
  });

  it('a possible number after a phone word is found, with the lower score', () => {
    const found = phones(`Call me on ${POSSIBLE_ONLY} tonight.`);
    expect(found.map((f) => f.value)).toEqual([POSSIBLE_ONLY]);
    expect(found[0]!.score).toBeCloseTo(POSSIBLE_SCORE + ENTITY_INFO.PHONE_NUMBER!.contextBoost, 2);
    expect(phones(`fax: ${POSSIBLE_ONLY}`)).toHaveLength(1);
    expect(phones(`WhatsApp ${POSSIBLE_ONLY}`)).toHaveLength(1);
  });

  it('the same possible number without a phone word before it is not found', () => {
    expect(phones(`The figure ${POSSIBLE_ONLY} was logged.`)).toEqual([]);
    // Context counts only before the number, as in Presidio's default prefix window.
    expect(phones(`${POSSIBLE_ONLY} mobile`)).toEqual([]);
  });

  it('valid-only turns the rule off; possible (opt-in) needs no context word', () => {
    expect(phones(`Call me on ${POSSIBLE_ONLY} tonight.`, validOnly)).toEqual([]);
    expect(phones(`The figure ${POSSIBLE_ONLY} was logged.`, possible).map((f) => f.value)).toEqual([POSSIBLE_ONLY]);
  });

  it('possible means possible for a configured region', () => {
    const germanOnly = createRedactor({ phoneRegions: ['DE'] });
    expect(phones(`Call me on ${POSSIBLE_ONLY} tonight.`, germanOnly)).toEqual([]);
  });

  it('a valid number keeps its span and score, with or without a phone word, and outscores a possible one', () => {
    for (const text of ['(415) 555-2671 is the desk line', 'call (415) 555-2671 now', 'Tel +44 20 7946 0958.', 'ref +44 20 7946 0958 x']) {
      expect(phones(text)).toEqual(phones(text, validOnly));
    }
    const valid = phones('call (415) 555-2671 now')[0]!;
    const weak = phones(`call ${POSSIBLE_ONLY} now`)[0]!;
    expect(weak.score).toBeLessThan(valid.score);
    expect(phones('(415) 555-2671 is the desk line')[0]!.score).toBeGreaterThan(weak.score);
  });

  it('a look-alike after a phone word is still not a phone number', () => {
    expect(phones('call reference 2024-0117-33')).toEqual([]);
    expect(phones(`Please call about order ${POSSIBLE_ONLY}.`)).toEqual([]);
    expect(phones('phone: invoice no. 2024011733')).toEqual([]);
    expect(phones('Call us about EAN-13 4006381333931')).toEqual([]);
    expect(phones('call v1.2.3 or 2024-01-17 or 978-3-16-148410-0 or $1,234.56 at 10:30')).toEqual([]);
  });

  it('an identifier word counts only right before the number', () => {
    expect(phones('order 415-555-2671')).toEqual([]);
    expect(phones('call me about the order at 415-555-2671').map((f) => f.value)).toEqual(['415-555-2671']);
    expect(phones('phone number: 415-555-2671').map((f) => f.value)).toEqual(['415-555-2671']);
  });
});
