/**
 * MAC_ADDRESS: six hex pairs joined by ':' or '-' (one kind), or Cisco's three dotted quads.
 * Anchored on the separators (found with indexOf) and checked by hand: no regex pass over prose.
 */
import type { Detector, Finding } from '../types.js';
import { isHexCode, isWordCode } from './util.js';

function pairAt(text: string, i: number): boolean {
  return i >= 0 && i + 1 < text.length && isHexCode(text.charCodeAt(i)) && isHexCode(text.charCodeAt(i + 1));
}

/**
 * The ':' at `colon` ends a key ("mac:", "HWaddr:", "eth0:"): a word holding a character no hex
 * group has. After a hex word ("db8:", "fe80:") the pairs are more groups of an IPv6 address.
 */
function afterKeyColon(text: string, colon: number): boolean {
  let w = colon;
  while (w > 0 && colon - w <= 40 && isWordCode(text.charCodeAt(w - 1))) w--;
  for (let k = w; k < colon; k++) if (!isHexCode(text.charCodeAt(k))) return true;
  return false;
}

/** `i` = offset of the first separator; the address starts two characters before it. */
function sixPairs(text: string, i: number, sep: number, out: Finding[]): number {
  const s = i - 2;
  if (!pairAt(text, s)) return -1;
  if (s > 0) {
    const p = text.charCodeAt(s - 1);
    if (isWordCode(p) || p === 46) return -1;
    // A separator before the first pair makes a longer run ("00:00:1a:..."), unless it is a
    // key's colon ("mac:00:1A:2B:3C:4D:5E").
    if (p === sep && !(sep === 58 && afterKeyColon(text, s - 1))) return -1;
  }
  for (let k = 0; k < 5; k++) {
    const at = i + k * 3;
    if (text.charCodeAt(at) !== sep || !pairAt(text, at + 1)) return -1;
  }
  const e = s + 17;
  if (e < text.length) {
    const c = text.charCodeAt(e);
    if (isWordCode(c) || c === sep) return -1;
  }
  out.push({ entity: 'MAC_ADDRESS', start: s, end: e, score: 0.8 });
  return e;
}

const MAC_DOTTED = /(?<![\w.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![\w.])/y;

export const macDetector: Detector = {
  name: 'mac',
  entities: ['MAC_ADDRESS'],
  // Six pairs joined by five ':' or five '-', or three quads joined by two '.' five apart.
  mayMatch: (t) => t.colons >= 5 || t.dashes >= 5 || t.quadDots > 0,
  detect(text, _ctx, out) {
    for (const sep of [58, 45]) {
      const ch = String.fromCharCode(sep);
      let i = text.indexOf(ch);
      while (i >= 0) {
        const e = sixPairs(text, i, sep, out);
        i = text.indexOf(ch, e > 0 ? e : i + 1);
      }
    }
    // Cisco style: anchored on '.' between two quads of hex.
    let d = text.indexOf('.');
    while (d >= 0) {
      if (d >= 4 && isHexCode(text.charCodeAt(d - 1)) && text.charCodeAt(d + 5) === 46) {
        MAC_DOTTED.lastIndex = d - 4;
        const m = MAC_DOTTED.exec(text);
        if (m && /[A-Fa-f]/.test(m[0])) {
          out.push({ entity: 'MAC_ADDRESS', start: m.index, end: m.index + 14, score: 0.8 });
          d = text.indexOf('.', m.index + 14);
          continue;
        }
      }
      d = text.indexOf('.', d + 1);
    }
  },
};
