import { describe, expect, it } from 'vitest';
import { findSecretLiteral } from '../../src/pipeline/secret-literals.js';

/** The JSON Web Token pattern as a (backtracking) regex: the reference the linear scan must agree with. */
const JWT_REFERENCE = /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';

describe('secret literals', () => {
  it('names the kind of each credential shape', () => {
    const cases: Array<[string, string]> = [
      ['-----BEGIN RSA PRIVATE KEY-----', 'private key block'],
      ['key AKIAIOSFODNN7EXAMPLE here', 'AWS access key id'],
      ['sk-proj-abcdefghijklmnopqrstuvwx', 'OpenAI/Anthropic-style API key'],
      [`ghp_${'a'.repeat(36)}`, 'GitHub token'],
      ['xoxb-1234567890-abc', 'Slack token'],
      [`AIza${'A'.repeat(35)}`, 'Google API key'],
      ['sk_live_0123456789abcdef', 'Stripe key'],
      [JWT, 'JSON Web Token'],
      [`token ${JWT}, then text`, 'JSON Web Token'],
      [`hvs.${'a'.repeat(20)}`, 'Vault token'],
      ['password: hunter2hunter2', 'credential assignment'],
    ];
    for (const [text, kind] of cases) expect(findSecretLiteral(text), text).toBe(kind);
    expect(findSecretLiteral('password: {{ pw }}')).toBeUndefined();
    expect(findSecretLiteral('Hello {{ name }}, how are you?')).toBeUndefined();
  });

  it('finds a JSON Web Token exactly where the reference pattern does', () => {
    const near = [
      JWT,
      `x${JWT}`, // no word boundary before eyJ
      `-${JWT}`,
      `.${JWT}`,
      'eyJabcdefg.eyJabcdefgh.abcdefgh', // first segment one short
      'eyJabcdefgh.eyJabcdefg.abcdefgh', // second segment one short
      'eyJabcdefgh.eyJabcdefgh.abcdefg', // third segment one short
      'eyJabcdefgh.eyJabcdefgh.abcdefgh',
      'eyJabcdefgh.eyJ.eyJabcdefgh.eyJabcdefgh.abcdefgh', // a later start completes it
      'eyJ-eyJabcdefgh.eyJabcdefgh.abcdefgh', // a start inside the first segment
      'eyJabcdefgh.eyJabcdefgh.eyJabcdefgh.x',
      'eyJabcdefgh.eyJabcdefgh..abcdefgh',
      'eyJabcdefgh..eyJabcdefgh.abcdefgh',
      'eyJabcdefgh.xeyJabcdefgh.abcdefgh',
      'eyJabc.defgh.eyJabcdefgh.eyJabcdefgh.abcdefgh',
    ];
    for (const text of near) {
      const expected = JWT_REFERENCE.test(text) ? 'JSON Web Token' : undefined;
      expect(findSecretLiteral(text) === 'JSON Web Token' ? 'JSON Web Token' : undefined, text).toBe(expected);
    }
    // Random strings over the alphabet that matters, checked against the reference.
    const alphabet = ['eyJ', 'a', 'b', '-', '_', '.', ' ', 'x.eyJ', 'eyJab', 'cdefgh'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % alphabet.length;
    for (let n = 0; n < 3000; n++) {
      let text = '';
      for (let k = 0; k < 30; k++) text += alphabet[next()];
      const expected = JWT_REFERENCE.test(text);
      expect(findSecretLiteral(text) === 'JSON Web Token', text).toBe(expected);
    }
  });

  // A backtracking scan of these takes minutes (each start re-reads the rest of the run); a linear
  // one takes milliseconds. Asserted on the result: the test's own time is the failure signal.
  it('scans large adversarial text in linear time', () => {
    const n = 200_000;
    expect(findSecretLiteral('eyJ-'.repeat(n / 4))).toBeUndefined();
    expect(findSecretLiteral(`${'eyJ-'.repeat(n / 4)}eyJabcdefgh.eyJabcdefgh.abcdefgh`)).toBe('JSON Web Token');
    expect(findSecretLiteral(`eyJaaaaaaaaa.${'eyJ-'.repeat(n / 4)}`)).toBeUndefined();
    expect(findSecretLiteral(`eyJaaaaaaaaa.eyJaaaaaaaaa.${'.eyJ-'.repeat(n / 5)}`)).toBeUndefined();
    expect(findSecretLiteral(`password${' '.repeat(n)}x`)).toBeUndefined();
    expect(findSecretLiteral('-----BEGIN A '.repeat(n / 13))).toBeUndefined();
    expect(findSecretLiteral(`-----BEGIN ${'A '.repeat(n / 2)}`)).toBeUndefined();
    expect(findSecretLiteral(`ghp_${'a'.repeat(n)}_`)).toBeUndefined();
    expect(findSecretLiteral('-ghp_aaaa'.repeat(n / 9))).toBeUndefined();
    expect(findSecretLiteral('sk-'.repeat(n / 3))).toBe('OpenAI/Anthropic-style API key');
    expect(findSecretLiteral('-sk-aaaa'.repeat(n / 8))).toBe('OpenAI/Anthropic-style API key');
  });
});
