/**
 * The text of a file a user writes (pipeline/text-file.ts): UTF-8 or refused, with the line and
 * column of the first byte that breaks it, never a silently altered value (U+FFFD, a NUL kept).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeText, TextDecodeError } from '../../src/pipeline/text-file.js';

function failure(bytes: Uint8Array): TextDecodeError {
  try {
    decodeText(bytes);
  } catch (e) {
    if (e instanceof TextDecodeError) return e;
    throw e;
  }
  throw new Error('decoded without an error');
}

const b = (...parts: Array<string | number[]>): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

describe('decodeText', () => {
  it('returns UTF-8 text unchanged: tab, CR, LF, a BOM and characters outside the BMP included', () => {
    const text = '\uFEFFa:\tb\r\nc: "é 中 😀"\n';
    expect(decodeText(Buffer.from(text, 'utf8'))).toBe(text);
  });

  it('names the line and column of the first byte that is not UTF-8 (columns count characters, as the YAML errors do)', () => {
    const e = failure(b('a: 1\nname: "é', [0xff, 0xfe], '"\n'));
    expect([e.line, e.column]).toEqual([2, 9]);
    expect(e.reason).toBe('not valid UTF-8');
    expect(e.message).toBe('not valid UTF-8 at line 2, column 9');
  });

  it('refuses truncated, overlong and surrogate sequences at their first byte', () => {
    expect(failure(b('ab', [0xe4, 0xb8]))).toMatchObject({ line: 1, column: 3 }); // cut at the end
    expect(failure(b('x', [0xe4, 0x41, 0x41]))).toMatchObject({ line: 1, column: 2 }); // cut by ASCII
    expect(failure(b([0xc0, 0xaf]))).toMatchObject({ line: 1, column: 1 }); // overlong '/'
    expect(failure(b('\n\n', [0xed, 0xa0, 0x80]))).toMatchObject({ line: 3, column: 1 }); // U+D800
    expect(failure(b([0xf4, 0x90, 0x80, 0x80]))).toMatchObject({ line: 1, column: 1 }); // past U+10FFFF
  });

  it('refuses a NUL and the other C0 control characters YAML does not allow in a stream', () => {
    const e = failure(b('cluster: "c', [0], 'x"\n'));
    expect([e.line, e.column]).toEqual([1, 12]);
    expect(e.reason).toBe('control character U+0000 is not allowed (of the control characters only tab, line feed and carriage return are)');
    expect(failure(b('a: 1\nb: \u001b[31m\n'))).toMatchObject({ line: 2, column: 4, reason: expect.stringContaining('U+001B') });
  });

  it('refuses DEL and the C1 controls as well (U+009B is a terminal escape on its own)', () => {
    expect(failure(b('a: "x\u007fy"\n'))).toMatchObject({ line: 1, column: 6, reason: expect.stringContaining('U+007F') });
    expect(failure(b('a: "\u009b31m"\n'))).toMatchObject({ line: 1, column: 5, reason: expect.stringContaining('U+009B') });
    expect(failure(b('a: "\u0085"\n'))).toMatchObject({ reason: expect.stringContaining('U+0085') });
    // The first character past C1 is text.
    expect(decodeText(b('a: "\u00a0é"\n'))).toBe('a: "\u00a0é"\n');
  });

  it('agrees with TextDecoder on which byte strings are UTF-8 (and then refuses only DEL and C1 of them)', () => {
    const strict = new TextDecoder('utf-8', { fatal: true });
    for (let i = 0; i < 3000; i++) {
      // Mostly high bytes, so that multi-byte sequences (good and bad) are common; no C0 bytes.
      const bytes = randomBytes(1 + (i % 7)).map((x) => (x < 0x20 ? x + 0x20 : x));
      let ok = true;
      try {
        ok = !/[\u007F-\u009F]/.test(strict.decode(bytes));
      } catch {
        ok = false;
      }
      let ours = true;
      try {
        decodeText(bytes);
      } catch (e) {
        if (!(e instanceof TextDecodeError)) throw e;
        ours = false;
      }
      expect(ours, Buffer.from(bytes).toString('hex')).toBe(ok);
    }
  });
});
