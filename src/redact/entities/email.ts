/**
 * EMAIL_ADDRESS: anchored on '@' (found with indexOf, so text without '@' costs one scan); the
 * local part is walked left and the domain right with bounded loops. The domain needs a dot and
 * an alphabetic TLD of 2+ letters.
 */
import type { Detector } from '../types.js';
import { isAlphaCode, isDigitCode } from './util.js';

function isLocalCode(c: number): boolean {
  // A-Z a-z 0-9 . _ % + - ' (apostrophe is legal and common in names)
  return isAlphaCode(c) || isDigitCode(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45 || c === 39 || c > 0x7f;
}

function isDomainCode(c: number): boolean {
  return isAlphaCode(c) || isDigitCode(c) || c === 45 || c === 46 || c > 0x7f;
}

/** `user:pass@host` inside `scheme://...` is URL userinfo (URL_CREDENTIALS), not an email. */
function inUrlAuthority(text: string, s: number): boolean {
  let k = s;
  while (k > 0 && s - k < 256) {
    const c = text.charCodeAt(k - 1);
    if (c === 32 || c === 10 || c === 9 || c === 13) return false;
    if (c === 47 && k >= 3 && text.charCodeAt(k - 2) === 47 && text.charCodeAt(k - 3) === 58) return true;
    // Past a path, query or fragment delimiter we are not in the authority any more.
    if (c === 47 || c === 63 || c === 35 || c === 61 || c === 38) return false;
    k--;
  }
  return false;
}

export const emailDetector: Detector = {
  name: 'email',
  entities: ['EMAIL_ADDRESS'],
  // Every finding is anchored on an '@'.
  mayMatch: (t) => t.at > 0,
  detect(text, _ctx, out) {
    let at = text.indexOf('@');
    let lastEnd = 0;
    while (at >= 0) {
      // Local part, at most 64 characters.
      let s = at;
      while (s > lastEnd && at - s < 64 && isLocalCode(text.charCodeAt(s - 1))) s--;
      while (s < at && (text.charCodeAt(s) === 46 || text.charCodeAt(s) === 39)) s++; // no leading dot/quote
      let e = at + 1;
      const n = text.length;
      while (e < n && e - at <= 253 && isDomainCode(text.charCodeAt(e))) e++;
      // Trim trailing dots and dashes (end of sentence).
      while (e > at + 1 && (text.charCodeAt(e - 1) === 46 || text.charCodeAt(e - 1) === 45)) e--;
      if (s < at && e > at + 1) {
        const domain = text.slice(at + 1, e);
        const dot = domain.lastIndexOf('.');
        const tld = dot > 0 ? domain.slice(dot + 1) : '';
        let tldOk = tld.length >= 2 && tld.length <= 24;
        for (let k = 0; tldOk && k < tld.length; k++) tldOk = isAlphaCode(tld.charCodeAt(k)) || tld.charCodeAt(k) > 0x7f;
        if (tldOk && !domain.includes('..') && text.charCodeAt(at - 1) !== 46 && !inUrlAuthority(text, s)) {
          out.push({ entity: 'EMAIL_ADDRESS', start: s, end: e, score: 0.95 });
          lastEnd = e;
        }
      }
      at = text.indexOf('@', Math.max(at + 1, e));
    }
  },
};
