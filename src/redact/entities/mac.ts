/** MAC_ADDRESS: six hex pairs joined by ':' or '-' (one kind), or Cisco's three dotted quads. */
import type { Detector } from '../types.js';

const MAC = /(?<![\w:.-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-]|\.\w)/g;
const MAC_DOTTED = /(?<![\w.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![\w.])/g;

export const macDetector: Detector = {
  name: 'mac',
  entities: ['MAC_ADDRESS'],
  detect(text, _ctx, out) {
    for (const re of [MAC, MAC_DOTTED]) {
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        const s = m[0];
        // A dotted triple of pure digits is a number, not a MAC.
        if (re === MAC_DOTTED && !/[A-Fa-f]/.test(s)) continue;
        out.push({ entity: 'MAC_ADDRESS', start: m.index, end: m.index + s.length, score: 0.8 });
      }
    }
  },
};
