/**
 * IP_ADDRESS: dotted-quad IPv4 (each octet 0-255, no leading zeros, not a longer dotted run such
 * as a version "1.2.3.4.5") and IPv6 (candidate runs of hex and colons, validated by node:net).
 */
import { isIPv6 } from 'node:net';
import type { Detector } from '../types.js';

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`(?<![\\w.])${OCTET}(?:\\.${OCTET}){3}(?![\\w]|\\.\\d)`, 'g');
// Hex/colon runs containing "::" or at least two ':'; validated exactly afterwards.
const IPV6_CANDIDATE = /(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])/g;

export const ipDetector: Detector = {
  name: 'ip',
  entities: ['IP_ADDRESS'],
  detect(text, _ctx, out) {
    if (text.indexOf('.') >= 0) {
      IPV4.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = IPV4.exec(text)) !== null) {
        out.push({ entity: 'IP_ADDRESS', start: m.index, end: m.index + m[0].length, score: 0.85 });
      }
    }
    if (text.indexOf(':') >= 0) {
      IPV6_CANDIDATE.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = IPV6_CANDIDATE.exec(text)) !== null) {
        const s = m[0];
        if (s.length < 6 || !isIPv6(s)) continue;
        // "::" alone with short groups is rare prose; require a digit or 3+ groups.
        if (!/\d/.test(s)) continue;
        out.push({ entity: 'IP_ADDRESS', start: m.index, end: m.index + s.length, score: 0.85 });
      }
    }
  },
};
