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

export const dateOfBirthDetector: Detector = {
  name: 'date-of-birth',
  entities: ['DATE_OF_BIRTH'],
  detect(text, _ctx, out) {
    DATE_RE.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = DATE_RE.exec(text)) !== null) {
      out.push({ entity: 'DATE_OF_BIRTH', start: m.index, end: m.index + m[0].length, score: 0.2 });
    }
  },
};
