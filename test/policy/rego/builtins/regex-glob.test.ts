import { describe, expect, it } from 'vitest';
import { call, callError } from './helpers.js';

describe('regex (RE2 syntax, as Go regexp)', () => {
  it('regex.match searches unanchored, with inline flags', () => {
    expect(call('regex.match', '^[a-z]+$', 'abc')).toBe(true);
    expect(call('regex.match', 'b', 'abc')).toBe(true);
    expect(call('regex.match', '(?i)ABC', 'xabcx')).toBe(true);
    expect(call('regex.match', '^\\d{3}-\\d{4}$', '555-12345')).toBe(false);
  });

  it('rejects invalid patterns with an eval_builtin_error, and regex.is_valid says so', () => {
    const e = callError('regex.match', '(', 'x');
    expect(e.code).toBe('eval_builtin_error');
    expect(e.message).toMatch(/^regex\.match: error parsing regexp: /);
    expect(call('regex.is_valid', '(')).toBe(false);
    expect(call('regex.is_valid', 'a+')).toBe(true);
    expect(call('regex.is_valid', 5)).toBe(false);
    // Backreferences are not RE2: OPA (Go) rejects them, so must we.
    expect(call('regex.is_valid', '(a)\\1')).toBe(false);
  });

  it('finishes on pathological patterns over 100 KB (RE2 is linear time)', () => {
    const big = 'a'.repeat(100_000) + '!';
    expect(call('regex.match', '(a+)+$', big)).toBe(false);
    expect(call('regex.match', '^(a|aa)+$', big)).toBe(false);
    expect((call('regex.find_n', '(a*)*b', big, -1) as string[]).length).toBe(0);
  });

  it('regex.find_n follows Go FindAll, including empty matches', () => {
    expect(call('regex.find_n', '[oa]+', 'foo bar baz', -1)).toEqual(['oo', 'a', 'a']);
    expect(call('regex.find_n', '[oa]+', 'foo bar baz', 2)).toEqual(['oo', 'a']);
    expect(call('regex.find_n', 'a*', 'baaac', -1)).toEqual(['', 'aaa', '']);
    expect(call('regex.find_n', 'x', 'abc', -1)).toEqual([]);
  });

  it('regex.find_all_string_submatch_n returns groups', () => {
    expect(call('regex.find_all_string_submatch_n', '(\\w)=(\\d)', 'a=1 b=2', -1)).toEqual([
      ['a=1', 'a', '1'],
      ['b=2', 'b', '2'],
    ]);
  });

  it('regex.split follows Go Split', () => {
    expect(call('regex.split', ',\\s*', 'a, b,c')).toEqual(['a', 'b', 'c']);
    expect(call('regex.split', 'x', '')).toEqual(['']);
    expect(call('regex.split', 'a', 'banana')).toEqual(['b', 'n', 'n', '']);
  });

  it('regex.replace expands $1, ${name} and $$', () => {
    expect(call('regex.replace', 'foo-bar', '(\\w+)-(\\w+)', '$2-$1')).toBe('bar-foo');
    expect(call('regex.replace', 'k=v', '(?P<key>\\w)=(?P<val>\\w)', '${val}=${key}')).toBe('v=k');
    expect(call('regex.replace', 'a1b2', '\\d', '$$')).toBe('a$b$');
    expect(call('regex.replace', 'abc', 'x', 'y')).toBe('abc');
    // Go reads "$1x" as a group named "1x", which does not exist, so it expands to "".
    expect(call('regex.replace', 'ab', '(a)', '$1x')).toBe('b');
  });

  it('regex.template_match matches literal text with regex parts', () => {
    expect(call('regex.template_match', 'urn:foo:{.*}', 'urn:foo:bar:baz', '{', '}')).toBe(true);
    expect(call('regex.template_match', 'urn:foo.bar.com:{.*}', 'urn:foo.bar.com:x', '{', '}')).toBe(true);
    expect(call('regex.template_match', 'urn:foo.bar.com:{.*}', 'urn:fooXbar.com:x', '{', '}')).toBe(false);
    expect(call('regex.template_match', 'urn:foo:<[0-9]{2}>', 'urn:foo:42', '<', '>')).toBe(true);
    expect(call('regex.template_match', 'urn:foo:<[0-9]{2}>', 'urn:foo:421', '<', '>')).toBe(false);
    expect(callError('regex.template_match', 'urn:{.*', 'urn:x', '{', '}').code).toBe('eval_builtin_error');
  });

  it('counts UTF-16 correctly around astral characters', () => {
    expect(call('regex.find_n', '.', 'a😀b', -1)).toEqual(['a', '😀', 'b']);
  });
});

describe('glob.match (gobwas semantics, as OPA)', () => {
  it('matches the OPA documentation examples', () => {
    expect(call('glob.match', '*.github.com', [], 'api.github.com')).toBe(true);
    expect(call('glob.match', '*.github.com', [], 'api.cdn.github.com')).toBe(false);
    expect(call('glob.match', '*hub.com', null, 'api.cdn.github.com')).toBe(true);
    expect(call('glob.match', '*:github:com', [':'], 'api:github:com')).toBe(true);
    expect(call('glob.match', 'api.**.com', [], 'api.github.com')).toBe(true);
    expect(call('glob.match', 'api.**.com', [], 'api.cdn.github.com')).toBe(true);
    expect(call('glob.match', '?at', [], 'cat')).toBe(true);
    expect(call('glob.match', '?at', [], 'at')).toBe(false);
    expect(call('glob.match', '[abc]at', [], 'bat')).toBe(true);
    expect(call('glob.match', '[!abc]at', [], 'cat')).toBe(false);
    expect(call('glob.match', '[a-c]at', [], 'cat')).toBe(true);
    expect(call('glob.match', '{cat,bat,[fr]at}', [], 'rat')).toBe(true);
    expect(call('glob.match', '{cat,bat,[fr]at}', [], 'at')).toBe(false);
  });

  it('uses the delimiters for * and ?', () => {
    expect(call('glob.match', 'payments/*', ['/'], 'payments/api')).toBe(true);
    expect(call('glob.match', 'payments/*', ['/'], 'payments/api/x')).toBe(false);
    expect(call('glob.match', '*/*', ['/'], 'ns/sa')).toBe(true);
    expect(call('glob.match', '*', ['/'], 'ns/sa')).toBe(false);
    expect(call('glob.match', '*', null, 'ns/sa')).toBe(true);
  });

  it('treats regex metacharacters literally and honours escapes', () => {
    expect(call('glob.match', 'a+b(c)', [], 'a+b(c)')).toBe(true);
    expect(call('glob.match', 'a\\*b', [], 'a*b')).toBe(true);
    expect(call('glob.match', 'a\\*b', [], 'axb')).toBe(false);
    expect(call('glob.quote_meta', '*.github.com')).toBe('\\*.github.com');
  });

  it('keeps working past the compiled-pattern cache bound', () => {
    for (let i = 0; i < 1500; i++) expect(call('glob.match', `svc-${i}/*`, ['/'], `svc-${i}/api`)).toBe(true);
    expect(call('glob.match', 'svc-1/*', ['/'], 'svc-2/api')).toBe(false);
    expect(call('glob.match', '{a,b}/*', ['/'], 'b/x')).toBe(true);
  });

  it('reports malformed patterns and wrong operand types', () => {
    expect(callError('glob.match', '[abc', [], 'a').code).toBe('eval_builtin_error');
    expect(callError('glob.match', '{a,b', [], 'a').code).toBe('eval_builtin_error');
    expect(callError('glob.match', '*', 'x', 'a').message).toBe('glob.match: operand 2 must be one of {array, null} but got string');
    expect(callError('glob.match', '*', ['::'], 'a').message).toBe('glob.match: operand 2 must be array of runes but got array containing string');
  });
});
