import { describe, expect, it } from 'vitest';
import { RegoSet } from '../../../../src/policy/rego/value.js';
import { call, callError } from './helpers.js';

describe('string built-ins', () => {
  it('concat joins arrays in order and sets in sorted order', () => {
    expect(call('concat', '/', ['a', 'b'])).toBe('a/b');
    expect(call('concat', ',', RegoSet.from(['b', 'a']))).toBe('a,b');
    expect(callError('concat', ',', 'ab').message).toBe('concat: operand 2 must be one of {set, array} but got string');
    expect(callError('concat', ',', ['a', 1]).message).toBe(
      'concat: operand 2 must be array of strings but got array containing number',
    );
  });

  it('contains, startswith, endswith, lower, upper', () => {
    expect(call('contains', 'abc', 'b')).toBe(true);
    expect(call('startswith', 'abc', 'ab')).toBe(true);
    expect(call('endswith', 'abc', 'ab')).toBe(false);
    expect(call('lower', 'AbC')).toBe('abc');
    expect(call('upper', 'AbC')).toBe('ABC');
    expect(callError('contains', 1, 'a').message).toBe('contains: operand 1 must be string but got number');
  });

  it('lower and upper map each code point as Go does (simple case mapping), not as JavaScript does', () => {
    // JS's full mappings: "i̇stanbul" (two code points for İ), "STRASSE", "οδος" (final sigma).
    expect(call('lower', 'İSTANBUL')).toBe('istanbul');
    expect(call('upper', 'straße')).toBe('STRAßE');
    expect(call('lower', 'ΟΔΟΣ')).toBe('οδοσ');
    // Special uppercase mappings: a simple one where Unicode has it, else the letter itself.
    expect(call('upper', 'ᾀᾳ')).toBe('ᾈᾼ');
    expect(call('upper', 'ﬀŉǰ')).toBe('ﬀŉǰ');
    // Everything else as before, astral code points included.
    expect(call('upper', 'abc😀ı')).toBe('ABC😀I');
    expect(call('lower', 'ǄK')).toBe('ǆk');
  });

  it('split and replace follow Go for empty separators', () => {
    expect(call('split', 'a.b.c', '.')).toEqual(['a', 'b', 'c']);
    expect(call('split', 'a😀b', '')).toEqual(['a', '😀', 'b']);
    expect(call('replace', 'aaa', 'a', 'b')).toBe('bbb');
    expect(call('replace', 'ab', '', '-')).toBe('-a-b-');
  });

  it('strings.replace_n replaces without overlapping, keys in sorted order', () => {
    expect(call('strings.replace_n', { '<': '&lt;', '>': '&gt;' }, '<a>')).toBe('&lt;a&gt;');
    // Keys are tried in sorted order, so "a" wins over "ab" (Go's replacer, argument order).
    expect(call('strings.replace_n', { ab: 'X', a: 'Y' }, 'aab')).toBe('YYb');
    expect(call('strings.replace_n', { a: 'b', b: 'a' }, 'ab')).toBe('ba');
  });

  it('the trim family', () => {
    expect(call('trim', '  xx hi xx ', ' x')).toBe('hi');
    expect(call('trim_left', 'xxhix', 'x')).toBe('hix');
    expect(call('trim_right', 'xxhix', 'x')).toBe('xxhi');
    expect(call('trim_prefix', 'prefix-body', 'prefix-')).toBe('body');
    expect(call('trim_suffix', 'body.rego', '.rego')).toBe('body');
    expect(call('trim_space', '\t hi \n')).toBe('hi');
    // Go does not count U+FEFF as space; JavaScript's trim does.
    expect(call('trim_space', '\ufeffhi')).toBe('\ufeffhi');
  });

  it('indexof, indexof_n and substring count code points', () => {
    expect(call('indexof', 'héllo', 'l')).toBe(2);
    expect(call('indexof', '😀x', 'x')).toBe(1);
    expect(call('indexof', 'abc', 'z')).toBe(-1);
    expect(call('indexof_n', 'abab', 'b')).toEqual([1, 3]);
    expect(callError('indexof', 'abc', '').message).toBe('indexof: empty search character');
    expect(call('substring', 'héllo', 1, 3)).toBe('éll');
    expect(call('substring', 'hello', 1, -1)).toBe('ello');
    expect(call('substring', 'hello', 9, 2)).toBe('');
    expect(callError('substring', 'hello', -1, 2).message).toBe('substring: negative offset');
  });

  it('strings.split_n keeps the first n pieces, or the last -n, as OPA 1.2x does', () => {
    expect(call('strings.split_n', 'a,b,c,d', ',', 2)).toEqual(['a', 'b']);
    expect(call('strings.split_n', 'a,b,c,d', ',', -2)).toEqual(['c', 'd']);
    expect(call('strings.split_n', 'a,b,c,d', ',', 0)).toEqual([]);
    expect(call('strings.split_n', 'a,b,c,d', ',', 9)).toEqual(['a', 'b', 'c', 'd']);
    expect(call('strings.split_n', 'a,b,c,d', ',', -9)).toEqual(['a', 'b', 'c', 'd']);
    expect(call('strings.split_n', 'héllo', '', 2)).toEqual(['h', 'é']);
    expect(call('strings.split_n', 'a,b', ',', 9223372036854775807n)).toEqual(['a', 'b']);
    expect(callError('strings.split_n', 'a,b', ',', 1.5).message).toBe(
      'strings.split_n: operand 3 must be integer number but got floating-point number',
    );
    expect(callError('strings.split_n', 1, ',', 1).code).toBe('eval_type_error');
  });

  it('takes any int64 as an index or count, as OPA does (integers past 2^53 included)', () => {
    // OPA's IntOperand reads any int64: an offset past the string gives "", a length past it the rest.
    expect(call('substring', 'hello', 9007199254740993n, 1)).toBe('');
    expect(call('substring', 'hello', 1, 9007199254740993n)).toBe('ello');
    expect(call('substring', 'hello', 1, -9007199254740993n)).toBe('ello');
    expect(call('regex.find_n', 'l', 'hello', 9223372036854775807n)).toEqual(['l', 'l']);
    // Beyond int64, OPA refuses it with this message.
    expect(callError('substring', 'hello', 1, 9223372036854775808n).message).toBe(
      'substring: operand 3 must be integer number but got floating-point number',
    );
  });

  it('format_int truncates and formats in base 2, 8, 10, 16', () => {
    expect(call('format_int', 255, 16)).toBe('ff');
    expect(call('format_int', 5.9, 2)).toBe('101');
    expect(call('format_int', -8, 8)).toBe('-10');
    expect(call('format_int', 18446744073709551617n, 10)).toBe('18446744073709551617');
    expect(callError('format_int', 1, 3).message).toBe('format_int: operand 2 must be one of {2, 8, 10, 16}');
    // A non-integer base is the same error in OPA (it compares the number), not a float error.
    expect(callError('format_int', 1, 1.5).message).toBe('format_int: operand 2 must be one of {2, 8, 10, 16}');
    expect(callError('format_int', 1, 18446744073709551616n).message).toBe('format_int: operand 2 must be one of {2, 8, 10, 16}');
  });

  it('any_prefix_match / any_suffix_match accept strings, arrays and sets', () => {
    expect(call('strings.any_prefix_match', 'foo/bar', 'foo')).toBe(true);
    expect(call('strings.any_prefix_match', ['x', 'foo/bar'], RegoSet.from(['y', 'foo/']))).toBe(true);
    expect(call('strings.any_prefix_match', 'foo', ['bar'])).toBe(false);
    expect(call('strings.any_suffix_match', 'a.rego', ['.json', '.rego'])).toBe(true);
  });

  it('stays linear on long inputs (no quadratic scans)', () => {
    const many = call('indexof_n', 'é' + 'a'.repeat(200_000), 'a') as number[];
    expect(many.length).toBe(200_000);
    expect(many[0]).toBe(1);
    expect(many[199_999]).toBe(200_000);
    const spaced = 'a' + ' '.repeat(200_000) + 'b';
    expect(call('trim_space', `  ${spaced}\t`)).toBe(spaced);
  });

  it('strings.render_template fills {{.field}} actions and refuses the rest', () => {
    const vars = { user: { name: 'ana' }, n: 1000000, tags: ['a', 'b'], m: { b: 2, a: 1 } };
    expect(call('strings.render_template', 'hi {{.user.name}} ({{ .n }}) {{.tags}} {{.m}}', vars)).toBe('hi ana (1000000) [a b] map[a:1 b:2]');
    expect(call('strings.render_template', 'a  {{- .n -}}  b{{/* note */}}', vars)).toBe('a1000000b');
    expect(callError('strings.render_template', '{{.missing}}', vars).message).toBe(
      'strings.render_template: template: map has no entry for key "missing"',
    );
    expect(callError('strings.render_template', '{{range .tags}}x{{end}}', vars).code).toBe('eval_builtin_error');
    expect(callError('strings.render_template', '{{.n', vars).code).toBe('eval_builtin_error');
  });

  it('strings.reverse and strings.count', () => {
    expect(call('strings.reverse', 'ab😀')).toBe('😀ba');
    expect(call('strings.count', 'cheese', 'e')).toBe(3);
  });
});
