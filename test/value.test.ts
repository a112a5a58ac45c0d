import { describe, expect, it } from 'vitest';
import { RegoSet, compare, equal, keyOf, makeObject, stringifyJSON } from '../src/policy/rego/value.js';

describe('rego values', () => {
  it('orders across types as OPA does', () => {
    const vals = [RegoSet.from([1]), { a: 1 }, [1], 'x', 2, true, null];
    const sorted = [...vals].sort(compare);
    expect(sorted.map((v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : v instanceof RegoSet ? 'set' : typeof v))).toEqual([
      'null', 'boolean', 'number', 'string', 'array', 'object', 'set',
    ]);
  });
  it('treats 1 and 1n as equal with one key', () => {
    expect(equal(1, 1n)).toBe(true);
    expect(keyOf(1)).toBe(keyOf(1n));
  });
  it('keeps __proto__ as a data key', () => {
    const o = makeObject([['__proto__', 1]]);
    expect(Object.keys(o)).toEqual(['__proto__']);
  });
  it('prints big integers exactly', () => {
    expect(stringifyJSON([12345678901234567890n])).toBe('[12345678901234567890]');
  });
});
