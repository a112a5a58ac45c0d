import { describe, expect, it } from 'vitest';
import { RegoObject, RegoSet, stringifyJSON } from '../../../src/policy/rego/value.js';

describe('stringifyJSON', () => {
  it('formats as JSON.stringify does, with sorted keys', () => {
    const v = { b: [1, 'x', null, true], a: { d: {}, c: [] } };
    expect(stringifyJSON(v)).toBe(JSON.stringify({ a: { c: [], d: {} }, b: [1, 'x', null, true] }));
    expect(stringifyJSON(v, 2)).toBe(JSON.stringify({ a: { c: [], d: {} }, b: [1, 'x', null, true] }, null, 2));
  });

  it('prints big integers exactly and never turns a string into a number', () => {
    expect(stringifyJSON([18446744073709551617n, '@@bigint@@:5'])).toBe('[18446744073709551617,"@@bigint@@:5"]');
  });

  it('prints sets as sorted arrays and non-string keys as JSON text', () => {
    expect(stringifyJSON(RegoSet.from([3, 1, 2]))).toBe('[1,2,3]');
    expect(stringifyJSON(RegoObject.from([[1, 'a']]))).toBe('{"1":"a"}');
  });
});
