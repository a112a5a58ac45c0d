/**
 * DATE_OF_BIRTH: a calendar date (ISO, numeric with / - ., or with a month name) is only a date of
 * birth by context ("born", "DOB", "birthday"...). Without context a date scores 0.2, below any
 * sane threshold, so ordinary dates are never redacted.
 */
import type { Detector } from '../types.js';

const MONTH = '(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\\.?';
const DATE_RE = new RegExp(
  [
    '(?<![\\w./-])(?:19|20)\\d\\d([-/.])(?:0?[1-9]|1[0-2])\\1(?:0?[1-9]|[12]\\d|3[01])(?![\\w]|[./-]\\d)',
    '(?<![\\w./-])(?:0?[1-9]|[12]\\d|3[01])([-/.])(?:0?[1-9]|[12]\\d|3[01])\\2(?:19|20)?\\d\\d(?![\\w]|[./-]\\d)',
    `(?<![\\w])(?:0?[1-9]|[12]\\d|3[01])(?:st|nd|rd|th)?[ ]+(?:of[ ]+)?${MONTH},?[ ]+(?:19|20)\\d\\d(?![\\w])`,
    `(?<![\\w])${MONTH}[ ]+(?:0?[1-9]|[12]\\d|3[01])(?:st|nd|rd|th)?,?[ ]+(?:19|20)\\d\\d(?![\\w])`,
  ].join('|'),
  'gi',
);

/**
 * Prefilter: a date can only become a DATE_OF_BIRTH with one of these words shortly before it, so
 * dates are only looked for in the window after each (the scanner then adds the context boost).
 */
const DOB_CONTEXT = /born|birth|\bdob\b|d\.o\.b|geboren|n[ée]e? le/gi;
/** Context window of the scanner plus the longest date ("September 30th, 1980"). */
const REACH = 48 + 24;

export const dateOfBirthDetector: Detector = {
  name: 'date-of-birth',
  entities: ['DATE_OF_BIRTH'],
  // Every date form holds at least four digits (the shortest: "1.2.84").
  mayMatch: (t) => t.digits >= 4,
  detect(text, _ctx, out) {
    DOB_CONTEXT.lastIndex = 0;
    let c: RegExpExecArray | null;
    let scannedTo = 0;
    while ((c = DOB_CONTEXT.exec(text)) !== null) {
      const from = Math.max(c.index, scannedTo);
      const to = Math.min(text.length, c.index + REACH);
      if (from >= to) continue;
      // One character before for the look-behind; 24 after so a date is never cut at the edge.
      const ws = Math.max(0, from - 1);
      const sub = text.slice(ws, Math.min(text.length, to + 24));
      DATE_RE.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = DATE_RE.exec(sub)) !== null) {
        const at = ws + m.index;
        if (at < from) continue;
        if (at >= to) break;
        out.push({ entity: 'DATE_OF_BIRTH', start: at, end: at + m[0].length, score: 0.2 });
      }
      scannedTo = to;
    }
  },
};
