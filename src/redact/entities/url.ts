/**
 * URL: scheme URLs and `www.` hosts. Credentials inside a URL (`scheme://user:password@host`)
 * are a secret of their own, URL_CREDENTIALS, found whether or not URL itself is redacted.
 */
import type { Detector } from '../types.js';

const URL_RE = /(?<![\w])(?:(?:https?|ftp|sftp|wss?|postgres(?:ql)?|mysql|mongodb(?:\+srv)?|redis|amqps?|smtp|ldap):\/\/|www\.)[^\s<>"'`\\]+/gi;

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
  detect(text, ctx, out) {
    const wantUrl = ctx.wants('URL');
    if (text.indexOf('://') < 0 && (!wantUrl || text.indexOf('www.') < 0)) return;
    URL_RE.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = URL_RE.exec(text)) !== null) {
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
