/**
 * The prompt HMAC with kept prefix states must be HMAC-SHA256 itself, bit for bit: records made
 * with it are verified later by anyone holding the key and the prompt (README, "prompt_hmac").
 */
import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../scripts/lib/prng.js';
import { PromptHmac } from '../../src/audit/prompt-hmac.js';
import { MIN_NAMED_PREFIX } from '../../src/pipeline/canonical-json.js';

const PIECES = ['policy text ', '"quoted" ', 'é ü ', '😀', '\\n', 'ESC-7731', '\u2028', 'x'.repeat(97)];

function text(rnd: () => number, length: number): string {
  let s = '';
  while (s.length < length) s += PIECES[Math.floor(rnd() * PIECES.length)];
  return s;
}

describe('PromptHmac', () => {
  const keys = {
    '16-byte buffer': randomBytes(16),
    '32-byte KeyObject': createSecretKey(randomBytes(32)),
    '64-byte buffer (a whole block)': randomBytes(64),
    '100-byte buffer (hashed first)': randomBytes(100),
  };

  for (const [name, key] of Object.entries(keys)) {
    it(`equals createHmac for a ${name} key, on the first, second and later sight of each prefix`, () => {
      const rnd = mulberry32(7);
      const hmac = new PromptHmac(key);
      const expected = (s: string) => createHmac('sha256', key).update(s).digest('hex');
      let checked = 0;
      for (let p = 0; p < 12; p++) {
        const prefix = `[{"content":"${text(rnd, MIN_NAMED_PREFIX + Math.floor(rnd() * 3000))}","role":"system"}`;
        const named = { key: `prefix-${p}`, length: prefix.length };
        for (let r = 0; r < 4; r++) {
          const full = `${prefix},{"content":"${text(rnd, Math.floor(rnd() * 300))}","role":"user"}]`;
          expect(hmac.digest(full, named)).toBe(expected(full));
          checked++;
        }
      }
      expect(checked).toBe(48);
    });
  }

  it('keeps no state for a prefix seen once, and none that could change a later answer', () => {
    const key = randomBytes(32);
    const hmac = new PromptHmac(key);
    const prefix = 'p'.repeat(2000);
    const named = { key: 'k', length: prefix.length };
    const a = `${prefix}-first`;
    const b = `${prefix}-second, longer rest`;
    // Second sight builds the state; the third uses a copy of it: neither may leak into the other.
    expect(hmac.digest(a, named)).toBe(createHmac('sha256', key).update(a).digest('hex'));
    expect(hmac.digest(b, named)).toBe(createHmac('sha256', key).update(b).digest('hex'));
    expect(hmac.digest(a, named)).toBe(createHmac('sha256', key).update(a).digest('hex'));
    expect(hmac.digest(b, named)).toBe(createHmac('sha256', key).update(b).digest('hex'));
    expect(hmac.digest(prefix, named)).toBe(createHmac('sha256', key).update(prefix).digest('hex'));
  });

  it('hashes the whole text for a short prefix, a prefix longer than the text, or one ending inside a surrogate pair', () => {
    const key = randomBytes(32);
    const hmac = new PromptHmac(key);
    const expected = (s: string) => createHmac('sha256', key).update(s).digest('hex');
    const short = `${'s'.repeat(100)} rest`;
    const split = `${'a'.repeat(MIN_NAMED_PREFIX)}😀 after`;
    for (let i = 0; i < 3; i++) {
      expect(hmac.digest(short, { key: 'short', length: 100 })).toBe(expected(short));
      expect(hmac.digest('tiny', { key: 'long', length: 5000 })).toBe(expected('tiny'));
      // The prefix ends after the high surrogate: apart, each half would encode as U+FFFD.
      expect(hmac.digest(split, { key: 'split', length: MIN_NAMED_PREFIX + 1 })).toBe(expected(split));
      expect(hmac.digest(split)).toBe(expected(split));
    }
  });
});
