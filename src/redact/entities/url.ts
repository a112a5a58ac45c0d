/**
 * URL: scheme URLs and `www.` hosts. Credentials inside a URL (`scheme://user:password@host`)
 * are a secret of their own, URL_CREDENTIALS, found whether or not URL itself is redacted.
 */
import type { Detector } from '../types.js';

// Sticky: tried only at the start of the scheme before each "://" (or at each "www.").
const URL_RE = /(?<![\w])(?:(?:https?|ftp|sftp|wss?|postgres(?:ql)?|mysql|mongodb(?:\+srv)?|redis|amqps?|smtp|ldap):\/\/|www\.)[^\s<>"'`\\]+/iy;

/** Start offsets where a URL may begin: the scheme before each "://", and each "www.". */
function urlStarts(text: string, wantWww: boolean): number[] {
  const starts: number[] = [];
  let i = text.indexOf('://');
  while (i >= 0) {
    let s = i;
    while (s > 0 && i - s < 16) {
      const c = text.charCodeAt(s - 1);
      if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 43) s--;
      else break;
    }
    if (s < i) starts.push(s);
    i = text.indexOf('://', i + 3);
  }
  if (wantWww) {
    for (const w of ['www.', 'WWW.']) {
      let j = text.indexOf(w);
      while (j >= 0) {
        starts.push(j);
        j = text.indexOf(w, j + 4);
      }
    }
    starts.sort((a, b) => a - b);
  }
  return starts;
}

function trimTrailing(s: string): number {
  let e = s.length;
  while (e > 0) {
    const c = s[e - 1];
    if (c === '.' || c === ',' || c === ';' || c === ':' || c === '!' || c === '?' || c === "'") e--;
    else if (c === ')' && !s.slice(0, e - 1).includes('(')) e--;
    else if (c === ']' && !s.slice(0, e - 1).includes('[')) e--;
    else break;
  }
  return e;
}

export const urlDetector: Detector = {
  name: 'url',
  entities: ['URL', 'URL_CREDENTIALS'],
  // Every URL starts at a "://" or a "www.".
  mayMatch: (t) => t.urlStarts > 0,
  detect(text, ctx, out) {
    const wantUrl = ctx.wants('URL');
    if (text.indexOf('://') < 0 && (!wantUrl || text.indexOf('www.') < 0)) return;
    let m: RegExpExecArray | null;
    let covered = 0;
    for (const from of urlStarts(text, wantUrl)) {
      if (from < covered) continue;
      URL_RE.lastIndex = from;
      m = URL_RE.exec(text);
      if (!m) continue;
      covered = from + m[0].length;
      const raw = m[0];
      const len = trimTrailing(raw);
      if (len < 8) continue;
      const start = m.index;
      const url = raw.slice(0, len);
      if (wantUrl) out.push({ entity: 'URL', start, end: start + len, score: 0.7 });
      // userinfo: between "://" and the last '@' before the first '/', '?' or '#'.
      const schemeEnd = url.indexOf('://');
      if (schemeEnd < 0) continue;
      const authStart = schemeEnd + 3;
      let authEnd = url.length;
      for (let k = authStart; k < url.length; k++) {
        const c = url[k];
        if (c === '/' || c === '?' || c === '#') {
          authEnd = k;
          break;
        }
      }
      const at = url.lastIndexOf('@', authEnd - 1);
      if (at > authStart) {
        const colon = url.indexOf(':', authStart);
        // user:password@ is a credential; a bare user@ (git@, mailto-ish) is not.
        if (colon > authStart && colon < at && at - colon > 1) {
          out.push({ entity: 'URL_CREDENTIALS', start: start + authStart, end: start + at, score: 0.98 });
        }
      }
    }
  },
};
