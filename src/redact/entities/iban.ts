/**
 * IBAN_CODE: a country code and two check digits, then exactly the country's length of
 * alphanumerics (spaces, a dash or a line break allowed between them), then mod 97 must equal 1.
 */
import type { Detector } from '../types.js';
import { isAlphaCode, isDigitCode, isWordCode, mod97 } from './util.js';

/** IBAN length per country (SWIFT IBAN registry). */
const IBAN_LENGTH: Record<string, number> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
};


export function ibanValid(compact: string): boolean {
  const upper = compact.toUpperCase();
  const want = IBAN_LENGTH[upper.slice(0, 2)];
  if (want === undefined || upper.length !== want) return false;
  return mod97(upper.slice(4) + upper.slice(0, 4)) === 1;
}

/** As many separator units as the digit runs join groups over (digit-runs.ts MAX_SEP). */
const MAX_SEPARATOR = 3;

/**
 * Length of the separator at `i` between two characters of an IBAN, 0 for none: one dash, or up to
 * three spaces and tabs with at most one line break among them. A PDF or a spreadsheet cell copied
 * as text doubles spaces or writes tabs between the blocks (`DE89  3704  0044 …`), as cards and
 * phone numbers are found with; two line breaks end a paragraph, and the value with it.
 */
function separatorAt(text: string, i: number): number {
  if (text.charCodeAt(i) === 45) return 1;
  let k = i;
  let breaks = 0;
  while (k - i < MAX_SEPARATOR) {
    const c = text.charCodeAt(k);
    if (c === 32 || c === 9) k++;
    else if (c === 10 && breaks === 0) {
      breaks++;
      k++;
    } else if (c === 13 && text.charCodeAt(k + 1) === 10 && breaks === 0) {
      breaks++;
      k += 2;
    } else break;
  }
  return k - i;
}

export const ibanDetector: Detector = {
  name: 'iban',
  entities: ['IBAN_CODE'],
  // Candidates are the digit scan's letter-prefixed tokens: two letters starting a word, a digit.
  mayMatch: (t) => t.ibanStarts > 0,
  detect(text, ctx, out) {
    const n = text.length;
    let last = 0;
    // Candidates come from the shared digit scan: tokens starting with two letters and a digit.
    for (const start of ctx.digitScan().letterPrefixed) {
      if (start < last) continue;
      if (!isDigitCode(text.charCodeAt(start + 3))) continue;
      const want = IBAN_LENGTH[text.slice(start, start + 2).toUpperCase()];
      if (want === undefined) continue;
      // Collect `want` alphanumerics, allowing a separator between them (see separatorAt).
      let compact = '';
      let i = start;
      while (i < n && compact.length < want) {
        const c = text.charCodeAt(i);
        if (isAlphaCode(c) || isDigitCode(c)) {
          compact += text[i];
          i++;
          continue;
        }
        const sep = compact.length >= 4 ? separatorAt(text, i) : 0;
        if (sep === 0 || i + sep >= n || !isWordCode(text.charCodeAt(i + sep))) break;
        i += sep;
      }
      if (compact.length !== want) continue;
      if (i < n && isWordCode(text.charCodeAt(i))) continue;
      if (!ibanValid(compact)) continue;
      out.push({ entity: 'IBAN_CODE', start, end: i, score: 0.95 });
      last = i;
    }
  },
};
