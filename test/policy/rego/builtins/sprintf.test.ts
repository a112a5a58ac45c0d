import { describe, expect, it } from 'vitest';
import { RegoObject, RegoSet } from '../../../../src/policy/rego/value.js';
import { call } from './helpers.js';

const f = (fmt: string, ...args: Parameters<typeof call>[1][]) => call('sprintf', fmt, args);

describe('sprintf (Go fmt as OPA calls it)', () => {
  it('formats integers exactly, including big ones', () => {
    expect(f('%d items', 5)).toBe('5 items');
    expect(f('%v', 18446744073709551618n)).toBe('18446744073709551618');
    expect(f('%s', 123456789123456789123n)).toBe('123456789123456789123');
    expect(f('%x|%X|%o|%b', 255, 255, 8, 5)).toBe('ff|FF|10|101');
    expect(f('%5d|%-5d|%05d', 42, 42, -42)).toBe('   42|42   |-0042');
  });

  it('formats floats as Go does', () => {
    expect(f('%.2f', 3.14159)).toBe('3.14');
    expect(f('%f', 1.5)).toBe('1.500000');
    expect(f('%v', 0.25)).toBe('0.25');
    expect(f('%v', 1234567.5)).toBe('1.2345675e+06');
    expect(f('%v', 0.00001)).toBe('1e-05');
    expect(f('%e', 1234.5678)).toBe('1.234568e+03');
    expect(f('%.3g', 3.14159)).toBe('3.14');
    // Exact ties round to even, as Go's strconv does.
    expect(f('%.2f|%.0f|%.0f|%.0f|%.1f', 0.125, 2.5, 3.5, -0.5, 0.25)).toBe('0.12|2|4|-0|0.2');
    expect(f('%.2f', 1.005)).toBe('1.00'); // 1.005 is really 1.00499999999999989...
    expect(f('%.2f', 2.675)).toBe('2.67');
  });

  it('formats strings, quoting as Go does', () => {
    expect(f('hello %s', 'world')).toBe('hello world');
    expect(f('%q', 'a"b\n')).toBe('"a\\"b\\n"');
    expect(f('%x', 'hi')).toBe('6869');
    expect(f('%.2s', 'héllo')).toBe('hé');
    expect(f('%6s|%-6s|', 'ab', 'ab')).toBe('    ab|ab    |');
  });

  it('prints composite values as Rego terms', () => {
    expect(f('%v', RegoSet.from([2, 1]))).toBe('{1, 2}');
    expect(f('%v', RegoSet.from([]))).toBe('set()');
    expect(f('%v', { b: 1, a: [1, 'x'] })).toBe('{"a": [1, "x"], "b": 1}');
    expect(f('%v', RegoObject.from([[1, true]]))).toBe('{1: true}');
    expect(f('%v %v', true, null)).toBe('true null');
    expect(f('%s', ['a'])).toBe('["a"]');
  });

  it('formats a double past ±2^53 (inexact: exact integers are bigints) as Go float64, not as digits it does not have', () => {
    // Input JSON as the sidecar reads it (JSON.parse): OPA formats such numbers as float64 too.
    const input = JSON.parse('{"big": 12345678901234567890123, "huge": 1.5e300, "e": 1e21}') as Record<string, number>;
    expect(f('%v', input.big!)).toBe('1.2345678901234568e+22');
    expect(f('%v', input.huge!)).toBe('1.5e+300');
    expect(f('%v|%.1f|%d', input.e!, input.e!, input.e!)).toBe('1e+21|1000000000000000000000.0|%!d(float64=1e+21)');
    // Exact integers keep every digit.
    expect(f('%v|%d', 2 ** 53 - 1, 2n ** 70n)).toBe('9007199254740991|1180591620717411303424');
    // ±2^53 itself is no double *past* it: an input's 9007199254740992 is the integer OPA formats
    // (as the same value computed in the policy is), not %!d(float64=9.007199254740992e+15).
    const edge = JSON.parse('{"up": 9007199254740992, "down": -9007199254740992}') as Record<string, number>;
    expect(f('%d|%v|%d', edge.up!, edge.up!, edge.down!)).toBe('9007199254740992|9007199254740992|-9007199254740992');
  });

  it('marks mistakes like Go instead of failing', () => {
    expect(f('%t', true)).toBe('%!t(string=true)');
    expect(f('%s', 5)).toBe('%!s(int=5)');
    expect(f('%d', 1.5)).toBe('%!d(float64=1.5)');
    expect(f('%d')).toBe('%!d(MISSING)');
    expect(f('%d', 1, 'x')).toBe('1%!(EXTRA string=x)');
    expect(f('100%%')).toBe('100%');
    expect(f('%')).toBe('%!(NOVERB)');
  });

  it('rejects a non-array argument list', () => {
    expect(() => call('sprintf', '%v', 'x')).toThrow('sprintf: operand 2 must be array but got string');
  });
});

describe('printLine (what print() writes)', () => {
  it('writes strings raw, other values as terms, undefined as <undefined>', async () => {
    const { printLine } = await import('../../../../src/policy/rego/builtins/index.js');
    expect(printLine(['x is', 1, RegoSet.from(['a']), undefined, { k: 'v' }])).toBe('x is 1 {"a"} <undefined> {"k": "v"}');
  });
});
