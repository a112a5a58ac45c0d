/**
 * The compiled phone validator must agree with libphonenumber-js (the authority) except where
 * libphonenumber is deliberately more lenient than a redactor should be: numbers dialled with an
 * international prefix (00, 011, ...) or with the country code but no '+', and non-geographic
 * calling codes (+800, +808, ...). Those are counted, never silently accepted.
 */
import { isValidPhoneNumber, type CountryCode } from 'libphonenumber-js/max';
import { describe, expect, it } from 'vitest';
import { compileRegion, validInternational, validNational, validNationalInAny } from '../../src/redact/entities/phone-metadata.js';
import { DEFAULT_PHONE_REGIONS } from '../../src/redact/redactor.js';

function prng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

describe('compiled phone validation agrees with libphonenumber-js', () => {
  it('national numbers in every default region', () => {
    const rnd = prng(11);
    const digits = (n: number): string => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join('');
    let agree = 0;
    let valid = 0;
    const disagreements: string[] = [];
    for (const region of DEFAULT_PHONE_REGIONS) {
      const c = compileRegion(region)!;
      expect(c, region).not.toBeNull();
      for (let i = 0; i < 600; i++) {
        const d = (rnd() < 0.4 ? '0' : '') + digits(6 + Math.floor(rnd() * 8));
        // International-prefix and country-code-without-plus dialling: libphonenumber's leniency.
        if (/^(?:00|011|11|09)/.test(d) || d.startsWith(c.callingCode)) continue;
        const a = isValidPhoneNumber(d, region as CountryCode);
        if (a) valid++;
        if (a === validNational(c, d)) agree++;
        else disagreements.push(`${region}:${d}`);
      }
    }
    expect(valid).toBeGreaterThan(500);
    expect(disagreements).toEqual([]);
    expect(agree).toBeGreaterThan(10_000);
  });

  it('international numbers', () => {
    const rnd = prng(29);
    const disagreements: string[] = [];
    let valid = 0;
    for (let i = 0; i < 6000; i++) {
      const cc = String(1 + Math.floor(rnd() * 99));
      if (cc.startsWith('8')) continue; // +800/+808/+870/+88x are non-geographic
      const d = cc + Array.from({ length: 6 + Math.floor(rnd() * 7) }, () => Math.floor(rnd() * 10)).join('');
      const a = isValidPhoneNumber('+' + d);
      if (a) valid++;
      if (a !== validInternational(d)) disagreements.push(d);
    }
    expect(valid).toBeGreaterThan(300);
    expect(disagreements).toEqual([]);
  });

  it('real numbers in common formats', () => {
    expect(validInternational('14155552671')).toBe(true);
    expect(validInternational('442079460958')).toBe(true);
    expect(validInternational('41038549029')).toBe(false); // "+41 (0)38 549 02 90": unassigned range
    expect(validNational(compileRegion('DE')!, '03012345678')).toBe(true);
    expect(validNational(compileRegion('US')!, '1700000000')).toBe(false); // a Unix timestamp
  });

  it('any of several regions: the same verdict as asking each (plans sharing a calling code are asked once)', () => {
    const plans = DEFAULT_PHONE_REGIONS.map((r) => compileRegion(r)!);
    const rnd = prng(43);
    let valid = 0;
    for (let i = 0; i < 3000; i++) {
      const d = (rnd() < 0.4 ? '0' : '') + Array.from({ length: 6 + Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 10)).join('');
      const each = plans.some((c) => validNational(c, d));
      if (each) valid++;
      expect(validNationalInAny(plans, d), d).toBe(each);
    }
    expect(valid).toBeGreaterThan(300);
  });
});
