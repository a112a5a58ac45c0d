/**
 * EMAIL_ADDRESS: anchored on '@' (found with indexOf, so text without '@' costs one scan); the
 * local part is walked left and the domain right with bounded loops. The domain needs a dot and
 * an alphabetic TLD of 2+ letters.
 */
import type { Detector } from '../types.js';
import { isAlphaCode, isDigitCode } from './util.js';

function isLocalCode(c: number): boolean {
  // A-Z a-z 0-9 . _ % + - ' (apostrophe is legal and common in names), and non-ASCII but the
  // ideographic full stop, which ends a sentence before the address ("电话。alice@...").
  return isAlphaCode(c) || isDigitCode(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45 || c === 39 || (c > 0x7f && c !== 0x3002);
}

function isDomainCode(c: number): boolean {
  return isAlphaCode(c) || isDigitCode(c) || c === 45 || c === 46 || c > 0x7f;
}

/**
 * A dot of a domain name: '.', or U+3002 (ideographic full stop), which IDNA (UTS #46) maps to
 * '.' as browsers and mail clients do. (U+FF0E and U+FF61 reach the detector as '.' and U+3002:
 * the text is NFKC-folded.)
 */
function isDomainDot(c: number): boolean {
  return c === 46 || c === 0x3002;
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

/** Offset of the last domain dot in [from, to), or -1. */
function lastDomainDot(text: string, from: number, to: number): number {
  for (let k = to - 1; k >= from; k--) if (isDomainDot(text.charCodeAt(k))) return k;
  return -1;
}

/** Two domain dots in a row ("a..b"): an empty label, so no domain name. */
function emptyLabel(text: string, from: number, to: number): boolean {
  for (let k = from + 1; k < to; k++) if (isDomainDot(text.charCodeAt(k)) && isDomainDot(text.charCodeAt(k - 1))) return true;
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
      while (e > at + 1 && (isDomainDot(text.charCodeAt(e - 1)) || text.charCodeAt(e - 1) === 45)) e--;
      if (s < at && e > at + 1) {
        const dot = lastDomainDot(text, at + 1, e);
        let tldOk = dot > at + 1 && e - dot - 1 >= 2 && e - dot - 1 <= 24;
        for (let k = dot + 1; tldOk && k < e; k++) tldOk = isAlphaCode(text.charCodeAt(k)) || (text.charCodeAt(k) > 0x7f && !isDomainDot(text.charCodeAt(k)));
        if (tldOk && !emptyLabel(text, at + 1, e) && text.charCodeAt(at - 1) !== 46 && !inUrlAuthority(text, s)) {
          out.push({ entity: 'EMAIL_ADDRESS', start: s, end: e, score: 0.95 });
          lastEnd = e;
        }
      }
      at = text.indexOf('@', Math.max(at + 1, e));
    }
  },
};
