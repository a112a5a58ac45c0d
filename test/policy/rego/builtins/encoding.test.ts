import { describe, expect, it } from 'vitest';
import { RegoSet } from '../../../../src/policy/rego/value.js';
import { call, callError } from './helpers.js';

describe('json', () => {
  it('marshals with sorted keys, sets as arrays and Go HTML escaping', () => {
    expect(call('json.marshal', { b: [1, 2], a: RegoSet.from(['y', 'x']) })).toBe('{"a":["x","y"],"b":[1,2]}');
    expect(call('json.marshal', { s: '<a>&' })).toBe('{"s":"\\u003ca\\u003e\\u0026"}');
    expect(call('json.marshal', 18446744073709551617n)).toBe('18446744073709551617');
  });

  it('marshal_with_options indents', () => {
    expect(call('json.marshal_with_options', { a: [1] }, { pretty: true, indent: '  ' })).toBe('{\n  "a": [\n    1\n  ]\n}');
    expect(call('json.marshal_with_options', { a: 1 }, { pretty: false, indent: '  ' })).toBe('{"a":1}');
    // Every line carries the prefix (Go's MarshalIndent, then OPA prefixes the first line too).
    expect(call('json.marshal_with_options', { a: '<' }, { prefix: '>', indent: ' ' })).toBe('>{\n> "a": "\\u003c"\n>}');
    expect(call('json.marshal_with_options', { a: [] }, { indent: '\t' })).toBe('{\n\t"a": []\n}');
    expect(callError('json.marshal_with_options', 1, { colour: true }).message).toBe(
      'json.marshal_with_options: operand 2 object contained an unknown key (want pretty, indent, prefix)',
    );
  });

  it('unmarshals exactly, keeping big integers', () => {
    expect(call('json.unmarshal', '{"a":[1,"x",null,true]}')).toEqual({ a: [1, 'x', null, true] });
    expect(call('json.unmarshal', '{"n":123456789012345678901234567890,"f":1.5}')).toEqual({
      n: 123456789012345678901234567890n,
      f: 1.5,
    });
    const e = callError('json.unmarshal', '{"a":');
    expect(e.code).toBe('eval_builtin_error');
    expect(callError('json.unmarshal', '{"n":12345678901234567890,').code).toBe('eval_builtin_error');
    expect(call('json.is_valid', '[1,2]')).toBe(true);
    expect(call('json.is_valid', '[1,2')).toBe(false);
    expect(call('json.is_valid', 5)).toBe(false);
  });

  it('refuses nesting past 10,000 levels, as Go\'s decoder does (json.is_valid, json.unmarshal)', () => {
    const nested = (levels: number, inner = '') => '['.repeat(levels) + inner + ']'.repeat(levels);
    expect(call('json.is_valid', nested(10_000))).toBe(true);
    expect(call('json.is_valid', nested(10_001))).toBe(false);
    expect(call('json.is_valid', '{"a":'.repeat(10_001) + '1' + '}'.repeat(10_001))).toBe(false);
    expect(callError('json.unmarshal', nested(10_001)).message).toMatch(/^json\.unmarshal: exceeded max depth at offset 10000$/);
    // The exact parser (taken for long digit runs) counts the same way, and reads all 10,000
    // levels without recursing (it exhausted the call stack a few thousand levels down).
    expect(call('json.is_valid', nested(10_001, '12345678901234567890'))).toBe(false);
    expect(call('json.is_valid', nested(10_000, '12345678901234567890'))).toBe(true);
    expect(call('json.unmarshal', nested(3, '12345678901234567890'))).toEqual([[[12345678901234567890n]]]);
    // Brackets inside strings are text, not nesting.
    expect(call('json.is_valid', '["' + '['.repeat(20_001) + '"]')).toBe(true);
  });

  it('keeps __proto__ keys as data', () => {
    const v = call('json.unmarshal', '{"__proto__":{"x":1},"n":12345678901234567890}') as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(v, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });
});

describe('yaml', () => {
  it('marshals like sigs.k8s.io/yaml (sorted keys, unindented sequences)', () => {
    expect(call('yaml.marshal', { b: ['x'], a: 1 })).toBe('a: 1\nb:\n- x\n');
  });

  it('unmarshals YAML 1.1 documents as go-yaml does', () => {
    expect(call('yaml.unmarshal', 'a: 1\nb: [x, z]\nc: yes\n')).toEqual({ a: 1, b: ['x', 'z'], c: true });
    // go-yaml v2 (under OPA's sigs.k8s.io/yaml) reads the YAML 1.1 booleans y/n/on/off too.
    expect(call('yaml.unmarshal', '[y, off]')).toEqual([true, false]);
    expect(call('yaml.unmarshal', 'big: 123456789012345678901234567890')).toEqual({ big: 123456789012345678901234567890n });
    expect(callError('yaml.unmarshal', 'a: [1').code).toBe('eval_builtin_error');
    expect(call('yaml.is_valid', 'a: 1')).toBe(true);
    expect(call('yaml.is_valid', 'a: [1')).toBe(false);
  });

  it('reads the first document of a stream and nothing past it, as go-yaml Unmarshal (OPA) does', () => {
    expect(call('yaml.unmarshal', 'a: 1\n---\nb: 2\n')).toEqual({ a: 1 });
    expect(call('yaml.unmarshal', '- x\n...\n---\n- y\n')).toEqual(['x']);
    expect(call('yaml.unmarshal', '---\n---\na: 1\n')).toBeNull();
    // What follows the first document is never parsed, so it cannot make the text invalid.
    expect(call('yaml.is_valid', 'a: 1\n---\nb: [')).toBe(true);
    expect(call('yaml.unmarshal', 'a: 1\n---\nb: [')).toEqual({ a: 1 });
    // A `---` inside a block scalar does not start a document.
    expect(call('yaml.unmarshal', 'a: |\n  ---\n  b\n')).toEqual({ a: '---\nb\n' });
    // The first document itself is still read in full.
    expect(call('yaml.is_valid', 'a: [1\n---\nb: 2\n')).toBe(false);
  });

  it('stops alias bombs instead of expanding them', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
      .concat(Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`))
      .join('\n');
    expect(callError('yaml.unmarshal', bomb).code).toBe('eval_builtin_error');
  });

  it('never quotes the input in an error message', () => {
    for (const doc of ['token: CANARY-SECRET-9f8e7d\n  bad: [', 'a: *CANARY-SECRET-9f8e7d', '"CANARY-SECRET-9f8e7d', '{CANARY-SECRET-9f8e7d']) {
      const e = callError('yaml.unmarshal', doc);
      expect(e.code).toBe('eval_builtin_error');
      expect(e.message).not.toContain('CANARY');
    }
    expect(callError('time.date', [0, 'CANARY-SECRET-9f8e7d']).message).not.toContain('CANARY');
    const j = callError('json.unmarshal', '{"token": "CANARY-SECRET-9f8e7d"');
    expect(j.message).not.toContain('CANARY-SECRET-9f8e7d');
  });
});

describe('base64, base64url, hex', () => {
  it('round-trips and is strict like Go', () => {
    expect(call('base64.encode', 'hello')).toBe('aGVsbG8=');
    expect(call('base64.decode', 'aGVsbG8=')).toBe('hello');
    expect(callError('base64.decode', 'aGVsbG8').code).toBe('eval_builtin_error');
    expect(callError('base64.decode', 'a$==').code).toBe('eval_builtin_error');
    expect(call('base64.is_valid', 'aGVsbG8=')).toBe(true);
    expect(call('base64.is_valid', 'not base64')).toBe(false);
    expect(call('base64url.encode', '??>')).toBe('Pz8-');
    expect(call('base64url.encode', 'a')).toBe('YQ==');
    expect(call('base64url.encode_no_pad', 'a')).toBe('YQ');
    expect(call('base64url.decode', 'YQ')).toBe('a');
    expect(call('base64url.decode', 'Pz8-')).toBe('??>');
    expect(callError('base64url.decode', 'Y').code).toBe('eval_builtin_error');
    expect(call('hex.encode', 'hi')).toBe('6869');
    expect(call('hex.decode', '6869')).toBe('hi');
  });
});

describe('urlquery', () => {
  it('encodes and decodes like Go net/url', () => {
    expect(call('urlquery.encode', 'a b&c=d/é')).toBe('a+b%26c%3Dd%2F%C3%A9');
    expect(call('urlquery.decode', 'a+b%26c%3Dd%2F%C3%A9')).toBe('a b&c=d/é');
    expect(callError('urlquery.decode', '%zz').code).toBe('eval_builtin_error');
    expect(call('urlquery.encode_object', { b: ['2', '1'], a: 'x y', c: RegoSet.from(['z']) })).toBe('a=x+y&b=2&b=1&c=z');
    expect(call('urlquery.decode_object', 'a=1&a=2&b=x+y')).toEqual({ a: ['1', '2'], b: ['x y'] });
    expect(callError('urlquery.encode_object', { a: 1 }).message).toBe(
      'urlquery.encode_object: operand 1 values must be string, array[string], or set[string]',
    );
  });
});
