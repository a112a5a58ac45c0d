import { describe, expect, it } from 'vitest';
import { RegoObject, RegoSet } from '../../../../src/policy/rego/value.js';
import { call, callError } from './helpers.js';

describe('aggregates', () => {
  it('count counts arrays, objects, sets and runes of strings', () => {
    expect(call('count', [1, 2, 3])).toBe(3);
    expect(call('count', { a: 1, b: 2 })).toBe(2);
    expect(call('count', RegoObject.from([[1, 'x']]))).toBe(1);
    expect(call('count', RegoSet.from([1, 1, 2]))).toBe(2);
    expect(call('count', 'héllo😀')).toBe(6);
    const e = callError('count', 1);
    expect(e.code).toBe('eval_type_error');
    expect(e.message).toBe('count: operand 1 must be one of {array, object, set, string} but got number');
  });

  it('sum and product are exact on big integers', () => {
    expect(call('sum', [18446744073709551617n, 1])).toBe(18446744073709551618n);
    expect(call('sum', RegoSet.from([9223372036854775807n, 1, 2]))).toBe(9223372036854775810n);
    expect(call('product', [18446744073709551617n, 2])).toBe(36893488147419103234n);
    expect(call('sum', [1, 2.5])).toBe(3.5);
    expect(call('product', [1.5, 2])).toBe(3);
    expect(call('sum', [])).toBe(0);
    expect(call('product', [])).toBe(1);
  });

  it('sum reports the bad element type as OPA does', () => {
    expect(callError('sum', [1, 'a']).message).toBe('sum: operand 1 must be array of numbers but got array containing string');
    expect(callError('sum', 'a').message).toBe('sum: operand 1 must be one of {set, array} but got string');
  });

  it('max and min use Rego ordering and are undefined on empty input', () => {
    expect(call('max', [1, 3, 2])).toBe(3);
    expect(call('min', RegoSet.from(['b', 'a']))).toBe('a');
    expect(call('max', [1, 'a', null])).toBe('a');
    expect(call('max', [])).toBeUndefined();
  });

  it('sort returns a new sorted array and leaves the input alone', () => {
    const input = [3, 1, 2];
    expect(call('sort', input)).toEqual([1, 2, 3]);
    expect(input).toEqual([3, 1, 2]);
    expect(call('sort', RegoSet.from(['b', 'a']))).toEqual(['a', 'b']);
  });
});
