/**
 * IP_ADDRESS: dotted-quad IPv4 read from the shared digit chunks (four groups joined by single
 * dots, each octet 0-255 without leading zeros; a port may follow), and IPv6 anchored on ':'
 * (the surrounding run of hex, ':' and '.' is validated exactly by node:net).
 */
import { isIPv6 } from 'node:net';
import type { Detector } from '../types.js';
import { isHexCode, isWordCode } from './util.js';

function octetOk(text: string, s: number, e: number): boolean {
  const len = e - s;
  if (len < 1 || len > 3) return false;
  if (len > 1 && text.charCodeAt(s) === 48) return false;
  return Number(text.slice(s, e)) <= 255;
}

/** The longest textual IPv6 address: eight groups of four and seven colons, or an IPv4 tail. */
const MAX_V6_TEXT = 45;

function isV6Code(c: number): boolean {
  return isHexCode(c) || c === 58 || c === 46;
}

/**
 * Where an address starting at `s` really starts: past a key and its colon ("ip:2001:db8::1",
 * "host:fe80::1", "id:2001:db8::1"), that is a single ':' after a word holding a letter no hex
 * group has. A run of hex groups ("abcd:2001:db8::1") is left whole.
 */
function pastKey(text: string, s: number): number {
  const c = text.indexOf(':', s);
  if (c < 0 || text.charCodeAt(c + 1) === 58) return s;
  let w = c;
  while (w > 0 && c - w <= 40 && isWordCode(text.charCodeAt(w - 1))) w--;
  if (w === c) return c === s ? c + 1 : s; // a colon after a non-word ("(:" or a line start) is not a key's
  for (let k = w; k < c; k++) if (!isHexCode(text.charCodeAt(k))) return c + 1;
  return s;
}

export const ipDetector: Detector = {
  name: 'ip',
  entities: ['IP_ADDRESS'],
  // IPv4: four groups joined by three dots between digits. IPv6: every textual form has at least
  // two ':' ("::" compresses), and the candidate must hold a digit.
  mayMatch: (t) => t.digitDots >= 3 || (t.colons >= 2 && t.digits > 0),
  detect(text, ctx, out) {
    for (const ch of ctx.digitChunks()) {
      const gs = ch.groupStarts;
      const ng = gs.length;
      if (ng < 4 || ch.plus) continue;
      // Any four groups joined by single dots, not part of a longer dotted run ("1.2.3.4.5").
      for (let g = 0; g + 3 < ng; g++) {
        if (ch.seps[g] !== '.' || ch.seps[g + 1] !== '.' || ch.seps[g + 2] !== '.') continue;
        if (g > 0 && ch.seps[g - 1]!.includes('.')) continue;
        const last = g + 3;
        if (last < ng - 1 && ch.seps[last]!.includes('.')) continue;
        if (last === ng - 1 && ch.letterAfter) continue;
        let ok = true;
        for (let k = g; k <= last && ok; k++) ok = octetOk(text, gs[k]!, ch.groupEnds[k]!);
        if (!ok) continue;
        const end = ch.groupEnds[last]!;
        // ".5" after the last group (a version or OID) marks it as something else.
        if (text.charCodeAt(end) === 46 && end + 1 < text.length && text.charCodeAt(end + 1) >= 48 && text.charCodeAt(end + 1) <= 57) continue;
        out.push({ entity: 'IP_ADDRESS', start: gs[g]!, end, score: 0.85 });
        g = last;
      }
    }
    let colon = text.indexOf(':');
    const n = text.length;
    while (colon >= 0) {
      let s = colon;
      while (s > 0 && colon - s < 40 && isV6Code(text.charCodeAt(s - 1))) s--;
      s = pastKey(text, s);
      let e = colon + 1;
      while (e < n && e - s < 46 && isV6Code(text.charCodeAt(e))) e++;
      // Trailing '.' or ':' belongs to the sentence.
      while (e > colon + 1 && (text.charCodeAt(e - 1) === 46 || (text.charCodeAt(e - 1) === 58 && text.charCodeAt(e - 2) !== 58))) e--;
      const boundaryOk = (s === 0 || !isWordCode(text.charCodeAt(s - 1))) && (e >= n || !isWordCode(text.charCodeAt(e)));
      if (boundaryOk && e - s >= 6) {
        const cand = text.slice(s, e);
        if (isIPv6(cand) && /\d/.test(cand)) {
          out.push({ entity: 'IP_ADDRESS', start: s, end: e, score: 0.85 });
          colon = text.indexOf(':', e);
          continue;
        }
      }
      // Skip the rest of this run so each run is validated once. A run of hex, ':' and '.' longer
      // than any address (45 characters) is skipped to its end: windows inside it would each
      // re-read ~46 characters for an address that cannot be there (an endless `fe80::fe80::…`
      // cost ~100 ns per character).
      let runEnd = e;
      while (runEnd < n && isV6Code(text.charCodeAt(runEnd))) runEnd++;
      let runStart = s;
      while (runStart > 0 && isV6Code(text.charCodeAt(runStart - 1))) runStart--;
      colon = text.indexOf(':', runEnd - runStart > MAX_V6_TEXT ? runEnd : Math.max(colon + 1, e));
    }
  },
};
