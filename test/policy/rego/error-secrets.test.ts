/**
 * README "Errors": messages never repeat operand values (input may hold secrets). RE2 quotes the
 * pattern and the YAML library the document in their own messages; strict mode surfaces them.
 */
import { describe, expect, it } from 'vitest';
import { RegoError } from '../../../src/policy/rego/index.js';
import { policy } from './helpers.js';

const CANARY = 'CANARY-SECRET-7f3a';
const p = policy('package t\nimport rego.v1\n');

/** The strict-mode error of `x := CALL` (input `{v}`), or undefined when there is none. */
function errorOf(call: string, v: string): RegoError | undefined {
  try {
    p.query(`x := ${call}`, { v }, { strictBuiltinErrors: true });
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    return e as RegoError;
  }
  return undefined;
}

describe('error messages do not repeat operands', () => {
  const patterns = [`${CANARY}(`, `[${CANARY}`, `${CANARY}\\`, `(?P<${CANARY}`, `${CANARY}{2,1}`, `a**${CANARY}`, `\\p{${CANARY}}`, `(?<${CANARY}>x)`, `${CANARY}\\1`, `[z-a]${CANARY}`];
  const calls = [
    'regex.match(input.v, "x")',
    'regex.find_n(input.v, "x", 1)',
    'regex.split(input.v, "x")',
    'regex.replace("x", input.v, "y")',
    'regex.find_all_string_submatch_n(input.v, "x", 1)',
    'regex.template_match(concat("", ["{", input.v, "}"]), "x", "{", "}")',
  ];

  it('for every regex built-in and invalid pattern', () => {
    for (const call of calls) {
      for (const pattern of patterns) {
        const e = errorOf(call, pattern);
        expect(e, `${call} ${pattern}`).toBeDefined();
        expect(e!.code).toBe('eval_builtin_error');
        expect(`${e!.message}`, `${call} ${pattern}`).not.toContain('7f3a');
      }
    }
    // The reason is still there.
    expect(errorOf('regex.match(input.v, "x")', `(?P<${CANARY}`)!.message).toBe('regex.match: error parsing regexp: invalid named capture group');
  });

  it('for yaml.unmarshal', () => {
    const docs = [`a: |${CANARY}\n x`, `%YAML ${CANARY}\n---\na`, `*${CANARY}`, `[${CANARY}`, `a: b: ${CANARY}`, `!!int ${CANARY}`, `- ${CANARY}\n${CANARY}: 1`];
    let failed = 0;
    for (const doc of docs) {
      const e = errorOf('yaml.unmarshal(input.v)', doc);
      if (e === undefined) continue;
      failed++;
      expect(e.message, doc).not.toContain('7f3a');
      expect(e.message).toMatch(/^yaml\.unmarshal: /);
    }
    expect(failed).toBeGreaterThan(3);
    expect(errorOf('yaml.unmarshal(input.v)', `a: |${CANARY}\n x`)!.message).toBe('yaml.unmarshal: unexpected token at line 1, column 5');
  });
});

describe('a JWT header is the caller\'s text', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const token = (alg: string) => `${b64(JSON.stringify({ alg, typ: 'JWT' }))}.${b64('{}')}.${b64('sig')}`;

  it('io.jwt.decode_verify names an unknown algorithm only when it looks like one (no secret, no forged log line)', () => {
    for (const alg of [`${CANARY}\nlevel=info msg="access granted"`, `x${CANARY}x`, 'a b', '']) {
      const e = errorOf('io.jwt.decode_verify(input.v, {"secret": "k"})', token(alg));
      if (alg === '') {
        // An empty alg is an invalid header: the token does not verify, no error.
        expect(e).toBeUndefined();
        continue;
      }
      expect(e, alg).toBeDefined();
      expect(e!.code).toBe('eval_builtin_error');
      expect(e!.message, alg).not.toContain('7f3a');
      expect(e!.message, alg).not.toContain('\n');
      expect(e!.message, alg).toMatch(/^io\.jwt\.decode_verify: unknown JWS algorithm: \(not shown: /);
    }
    // A plausible name is still given, as OPA gives it.
    expect(errorOf('io.jwt.decode_verify(input.v, {"secret": "k"})', token('RS1'))!.message).toBe('io.jwt.decode_verify: unknown JWS algorithm: RS1');
  });
});
