import { describe, expect, it } from 'vitest';
import { RegoSet, type Value } from '../../../../src/policy/rego/value.js';
import { call, callError } from './helpers.js';

const S = (...xs: Value[]) => RegoSet.from(xs);

describe('arithmetic operators', () => {
  it('adds, subtracts and multiplies small numbers', () => {
    expect(call('plus', 2, 3)).toBe(5);
    expect(call('plus', 1, 2.5)).toBe(3.5);
    expect(call('minus', 5, 7)).toBe(-2);
    expect(call('mul', 2.5, 2)).toBe(5);
  });

  it('stays exact beyond 2^53, as OPA big numbers do', () => {
    expect(call('plus', 18446744073709551617n, 1)).toBe(18446744073709551618n);
    expect(call('minus', -18446744073709551617n, 1)).toBe(-18446744073709551618n);
    expect(call('mul', 2147483647, 2147483647)).toBe(4611686014132420609n);
    expect(call('plus', 9007199254740991, 1)).toBe(9007199254740992n);
    expect(call('minus', 9007199254740992n, 1)).toBe(9007199254740991);
  });

  it('divides exactly only when the divisor divides the dividend', () => {
    expect(call('div', 6, 3)).toBe(2);
    expect(call('div', 1, 4)).toBe(0.25);
    expect(call('div', 36893488147419103234n, 2)).toBe(18446744073709551617n);
  });

  it('raises divide by zero for integer and float zero', () => {
    for (const z of [0, 0.0, 0n]) {
      const e = callError('div', 1, z);
      expect(e.code).toBe('eval_builtin_error');
      expect(e.message).toBe('div: divide by zero');
    }
  });

  it('rem takes the sign of the dividend and rejects floats and zero', () => {
    expect(call('rem', -17, 5)).toBe(-2);
    expect(call('rem', 17, -5)).toBe(2);
    expect(call('rem', 4.0, 3)).toBe(1);
    expect(call('rem', 10, 18446744073709551616n)).toBe(10);
    expect(call('rem', 18446744073709551617n, 18446744073709551616n)).toBe(1);
    expect(callError('rem', 1.1, 1).message).toBe('rem: modulo on floating-point number');
    expect(callError('rem', 1, 0).message).toBe('rem: modulo by zero');
  });

  it('minus is also set difference, with OPA type errors', () => {
    expect((call('minus', S(1, 2, 3), S(2)) as RegoSet).sorted()).toEqual([1, 3]);
    const e1 = callError('minus', S(1), 1);
    expect(e1.code).toBe('eval_type_error');
    expect(e1.message).toBe('minus: operand 2 must be set but got number');
    expect(callError('minus', 1, S(1)).message).toBe('minus: operand 2 must be number but got set');
    expect(callError('minus', 'a', 1).message).toBe('minus: operand 1 must be one of {number, set} but got string');
  });

  it('rejects non-numbers in plus', () => {
    expect(callError('plus', '1', 2).message).toBe('plus: operand 1 must be number but got string');
  });

  it('never returns -0', () => {
    expect(Object.is(call('mul', 0, -1), 0)).toBe(true);
  });
});

describe('comparison and set operators', () => {
  it('compares across types in Rego order', () => {
    expect(call('equal', 1, 1.0)).toBe(true);
    expect(call('equal', 1, 1n)).toBe(true);
    expect(call('neq', 'a', 'b')).toBe(true);
    expect(call('lt', null, false)).toBe(true);
    expect(call('lt', 1, 'a')).toBe(true);
    expect(call('gte', [1, 2], [1])).toBe(true);
    expect(call('lte', 2, 2)).toBe(true);
    expect(call('gt', 18446744073709551617n, 1e10)).toBe(true);
  });

  it('and / or are intersection and union', () => {
    expect((call('and', S(1, 2, 3), S(2, 3, 4)) as RegoSet).sorted()).toEqual([2, 3]);
    expect((call('or', S(1), S(2)) as RegoSet).sorted()).toEqual([1, 2]);
    expect(callError('or', S(1), [2]).message).toBe('or: operand 2 must be set but got array');
  });
});

describe('number built-ins', () => {
  it('abs, round, ceil, floor as OPA', () => {
    expect(call('abs', -9223372036854775808n)).toBe(9223372036854775808n);
    expect(call('abs', -2.5)).toBe(2.5);
    expect(call('round', 2.5)).toBe(3);
    expect(call('round', -2.5)).toBe(-3);
    expect(call('round', 2.4)).toBe(2);
    expect(call('ceil', 1.01)).toBe(2);
    expect(call('floor', -1.001)).toBe(-2);
    expect(call('floor', 99.99999)).toBe(99);
  });

  it('numbers.range is inclusive and may descend', () => {
    expect(call('numbers.range', 1, 4)).toEqual([1, 2, 3, 4]);
    expect(call('numbers.range', 2, -1)).toEqual([2, 1, 0, -1]);
    expect(call('numbers.range_step', 0, 10, 4)).toEqual([0, 4, 8]);
    expect(callError('numbers.range', 1.5, 3).message).toBe(
      'numbers.range: operand 1 must be integer number but got floating-point number',
    );
    expect(callError('numbers.range', 0, 1e12).code).toBe('eval_builtin_error');
    expect(callError('numbers.range', 'a', 1).message).toBe('numbers.range: operand 1 must be integer but got string');
  });
});
