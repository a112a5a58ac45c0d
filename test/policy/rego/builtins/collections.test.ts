import { describe, expect, it } from 'vitest';
import { RegoObject, RegoSet, type Value } from '../../../../src/policy/rego/value.js';
import { call, callError } from './helpers.js';

const S = (...xs: Value[]) => RegoSet.from(xs);

describe('arrays', () => {
  it('concat, slice, reverse, flatten', () => {
    expect(call('array.concat', [1, 2], [3, 4])).toEqual([1, 2, 3, 4]);
    expect(callError('array.concat', { v1: 'a' }, []).message).toBe('array.concat: operand 1 must be array but got object');
    expect(callError('array.concat', [], { v1: 'a' }).message).toBe('array.concat: operand 2 must be array but got object');
    expect(call('array.slice', [1, 2, 3, 4, 5], 1, 3)).toEqual([2, 3]);
    expect(call('array.slice', [1, 2, 3], -5, 10)).toEqual([1, 2, 3]);
    expect(call('array.slice', [1, 2, 3], 2, 1)).toEqual([]);
    const input = [1, 2, 3];
    expect(call('array.reverse', input)).toEqual([3, 2, 1]);
    expect(input).toEqual([1, 2, 3]);
    // One level only, as OPA.
    expect(call('array.flatten', [1, [2, [3, [4]]], []])).toEqual([1, 2, [3, [4]]]);
    expect(callError('array.flatten', 42).message).toBe('array.flatten: operand 1 must be array but got number');
  });
});

describe('objects', () => {
  const o = { a: { b: [10, { c: 'deep' }] }, x: 1 };

  it('object.get by key and by path, with defaults', () => {
    expect(call('object.get', o, 'x', 0)).toBe(1);
    expect(call('object.get', o, 'missing', 'd')).toBe('d');
    expect(call('object.get', o, ['a', 'b', 1, 'c'], 'd')).toBe('deep');
    expect(call('object.get', o, ['a', 'nope'], 'd')).toBe('d');
    expect(call('object.get', o, [], 'd')).toBe(o);
    expect(call('object.get', { constructor: 5 }, 'constructor', 0)).toBe(5);
    expect(call('object.get', {}, 'constructor', 0)).toBe(0);
    expect(call('object.get', {}, 'toString', 0)).toBe(0);
    // A null member is present (OPA returns it, not the default), by key and by path.
    expect(call('object.get', { v: null }, 'v', 'd')).toBe(null);
    expect(call('object.get', { a: { v: null } }, ['a', 'v'], 'd')).toBe(null);
  });

  it('object.keys, remove, filter', () => {
    expect((call('object.keys', { a: 1, b: 2 }) as RegoSet).sorted()).toEqual(['a', 'b']);
    expect(call('object.remove', { a: 1, b: 2, c: 3 }, ['a', 'c'])).toEqual({ b: 2 });
    expect(call('object.remove', { a: 1, b: 2 }, S('a'))).toEqual({ b: 2 });
    expect(call('object.remove', { a: 1, b: 2 }, { b: 'x' })).toEqual({ a: 1 });
    expect(call('object.filter', { a: 1, b: 2, c: 3 }, ['a', 'c'])).toEqual({ a: 1, c: 3 });
    const ro = RegoObject.from([[1, 'one'], ['k', 'v']]);
    expect(call('object.filter', ro, [1])).toEqual(RegoObject.from([[1, 'one']]));
    expect(call('object.remove', ro, [1])).toEqual({ k: 'v' });
  });

  it('object.union merges recursively, right side wins', () => {
    expect(call('object.union', { a: 1, b: { c: 2, d: 3 } }, { b: { d: 4 }, e: 5 })).toEqual({
      a: 1,
      b: { c: 2, d: 4 },
      e: 5,
    });
    expect(call('object.union', { a: { b: 1 } }, { a: 2 })).toEqual({ a: 2 });
    expect(call('object.union_n', [{ a: 1 }, { b: 2 }, { a: 3 }])).toEqual({ a: 3, b: 2 });
    expect(call('object.union_n', [])).toEqual({});
    expect(callError('object.union_n', [{}, 1]).message).toBe(
      'object.union_n: operand 1 must be array of objects but got array containing number',
    );
  });

  it('object.subset', () => {
    expect(call('object.subset', { a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } })).toBe(true);
    expect(call('object.subset', [1, 2, 3, 4], [2, 3])).toBe(true);
    expect(call('object.subset', [1, 2, 3], [3, 2])).toBe(false);
    expect(call('object.subset', S(1, 2), S(2))).toBe(true);
  });

  it('never treats a __proto__ key as a prototype', () => {
    const evil = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Value;
    const r = call('object.remove', evil, ['a']) as Record<string, Value>;
    expect(Object.keys(r)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const u = call('object.union', {}, evil) as Record<string, Value>;
    expect(Object.prototype.hasOwnProperty.call(u, '__proto__')).toBe(true);
  });
});

describe('sets', () => {
  it('union and intersection of a set of sets', () => {
    expect((call('union', S(S(1, 2), S(2, 3))) as RegoSet).sorted()).toEqual([1, 2, 3]);
    expect((call('intersection', S(S(1, 2), S(2, 3))) as RegoSet).sorted()).toEqual([2]);
    expect((call('intersection', S()) as RegoSet).size).toBe(0);
    expect(callError('union', S(1)).message).toBe('union: operand 1 must be set but got number');
  });
});

describe('types and casts', () => {
  it('is_* answer true or false', () => {
    expect(call('is_number', 1n)).toBe(true);
    expect(call('is_string', 1)).toBe(false);
    expect(call('is_boolean', false)).toBe(true);
    expect(call('is_array', [])).toBe(true);
    expect(call('is_set', S())).toBe(true);
    expect(call('is_object', RegoObject.from([[1, 1]]))).toBe(true);
    expect(call('is_object', S())).toBe(false);
    expect(call('is_null', null)).toBe(true);
  });

  it('type_name names every type', () => {
    const cases: Array<[Value, string]> = [
      [null, 'null'],
      [true, 'boolean'],
      [1.5, 'number'],
      [1n, 'number'],
      ['s', 'string'],
      [[], 'array'],
      [{}, 'object'],
      [S(), 'set'],
    ];
    for (const [v, t] of cases) expect(call('type_name', v)).toBe(t);
  });

  it('to_number parses exactly and refuses nan and inf', () => {
    expect(call('to_number', '3')).toBe(3);
    expect(call('to_number', '-1.5')).toBe(-1.5);
    expect(call('to_number', '123456789012345678901234567890')).toBe(123456789012345678901234567890n);
    expect(call('to_number', '1e30')).toBe(10n ** 30n);
    expect(call('to_number', null)).toBe(0);
    expect(call('to_number', true)).toBe(1);
    const e = callError('to_number', 'broken');
    expect(e.code).toBe('eval_builtin_error');
    expect(e.message).toContain('invalid syntax');
    expect(callError('to_number', 'CANARY-SECRET-9f8e7d').message).not.toContain('CANARY');
    for (const s of ['nan', 'inf', '-inf', 'Infinity', '-NaN', 'iNf']) {
      expect(callError('to_number', s).code).toBe('eval_type_error');
    }
    expect(callError('to_number', []).message).toBe(
      'to_number: operand 1 must be one of {null, boolean, number, string} but got array',
    );
  });
});

describe('json.filter / json.remove', () => {
  const doc = { a: { b: 1, c: [10, 20, 30], d: 'x' }, e: 2, 'f/g': 3 };

  it('filter keeps only the named paths', () => {
    expect(call('json.filter', doc, ['a/b', 'e'])).toEqual({ a: { b: 1 }, e: 2 });
    expect(call('json.filter', doc, RegoSet.from(['a/c/1', 'f~1g']))).toEqual({ a: { c: [20] }, 'f/g': 3 });
    expect(call('json.filter', doc, [['a', 'd']])).toEqual({ a: { d: 'x' } });
    expect(call('json.filter', doc, ['a', 'a/b'])).toEqual({ a: doc.a });
  });

  it('remove drops the named paths and closes up arrays', () => {
    expect(call('json.remove', doc, ['a/c', 'e', 'f~1g'])).toEqual({ a: { b: 1, d: 'x' } });
    expect(call('json.remove', doc, ['/a/c/0'])).toEqual({ a: { b: 1, c: [20, 30], d: 'x' }, e: 2, 'f/g': 3 });
    expect(callError('json.remove', doc, 'a').message).toBe('json.remove: operand 2 must be one of {set, array} but got string');
  });

  it('names the type of a path that is neither a string nor an array, as OPA does', () => {
    const want = (t: string) => `operand 2 must be one of {set, array} containing string paths or array of path segments but got ${t}`;
    expect(callError('json.remove', doc, S(1, 2, 'a')).message).toBe(`json.remove: ${want('number')}`);
    expect(callError('json.remove', doc, ['a', { x: 1 }]).message).toBe(`json.remove: ${want('object')}`);
    expect(callError('json.filter', doc, ['a', true]).message).toBe(`json.filter: ${want('boolean')}`);
  });
});

describe('bits', () => {
  it('bitwise operations on integers of any size', () => {
    expect(call('bits.or', 12, 10)).toBe(14);
    expect(call('bits.and', 12, 10)).toBe(8);
    expect(call('bits.xor', 12, 10)).toBe(6);
    expect(call('bits.negate', 5)).toBe(-6);
    expect(call('bits.lsh', 1, 64)).toBe(18446744073709551616n);
    expect(call('bits.rsh', 18446744073709551616n, 63)).toBe(2);
    expect(callError('bits.lsh', 1, 1e9).code).toBe('eval_builtin_error');
  });

  it('refuses operands with OPA\'s messages (its v1/bitsshiftleft cases)', () => {
    const f = callError('bits.lsh', 7.2, 42);
    expect([f.code, f.message]).toEqual(['eval_type_error', 'bits.lsh: operand 1 must be integer number but got floating-point number']);
    expect(callError('bits.and', 1, 0.5).message).toBe('bits.and: operand 2 must be integer number but got floating-point number');
    expect(callError('bits.lsh', 7, -1).message).toBe('bits.lsh: operand 2 must be an unsigned integer number but got a negative integer');
  });
});

describe('rand.intn / uuid.rfc4122', () => {
  it('are random but stable within one query for the same arguments', () => {
    const a = call('rand.intn', 'seed', 1_000_000);
    expect(call('rand.intn', 'seed', 1_000_000)).toBe(a);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(a).toBeLessThan(1_000_000);
    expect(call('rand.intn', 'x', 0)).toBe(0);
    const u = call('uuid.rfc4122', 'k') as string;
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(call('uuid.rfc4122', 'k')).toBe(u);
    expect(call('uuid.rfc4122', 'other')).not.toBe(u);
  });
});

describe('json.patch', () => {
  const doc = { a: { b: [1, 2] }, c: 'x' };

  it('applies RFC 6902 operations without editing the document', () => {
    const ops: Value[] = [
      { op: 'add', path: '/a/b/1', value: 9 },
      { op: 'add', path: '/a/b/-', value: 3 },
      { op: 'replace', path: '/c', value: 'y' },
      { op: 'copy', from: '/c', path: '/d' },
      { op: 'move', from: '/d', path: '/e' },
      { op: 'remove', path: ['a', 'b', 0] },
      { op: 'test', path: '/e', value: 'y' },
    ];
    expect(call('json.patch', doc, ops)).toEqual({ a: { b: [9, 2, 3] }, c: 'y', e: 'y' });
    expect(doc).toEqual({ a: { b: [1, 2] }, c: 'x' });
    expect(call('json.patch', doc, [{ op: 'add', path: '', value: 1 }])).toBe(1);
    expect(call('json.patch', doc, [{ op: 'add', path: '/a~1b', value: 1 }])).toEqual({ ...doc, 'a/b': 1 });
  });

  it('is undefined when an operation cannot apply', () => {
    expect(call('json.patch', doc, [{ op: 'test', path: '/c', value: 'nope' }])).toBeUndefined();
    expect(call('json.patch', doc, [{ op: 'remove', path: '/missing' }])).toBeUndefined();
    expect(call('json.patch', doc, [{ op: 'add', path: '/a/b/7', value: 1 }])).toBeUndefined();
    expect(call('json.patch', doc, [{ op: 'frobnicate', path: '/c' }])).toBeUndefined();
    expect(callError('json.patch', doc, 'x').message).toBe('json.patch: operand 2 must be array but got string');
  });

  it('treats a set member as its own path segment, as OPA does (its jsonpatch/set cases)', () => {
    // Added to a set, the value must be the member the path names.
    expect(call('json.patch', { foo: S('a', 'b') }, [{ op: 'add', path: 'foo/c', value: 'c' }])).toEqual({ foo: S('a', 'b', 'c') });
    expect(call('json.patch', { foo: S('a', 'b') }, [{ op: 'add', path: 'foo/d', value: 'e' }])).toBeUndefined();
    // A path goes on through a member: {[1]} patched at [[1], 1] is {[1, 2]}.
    expect(call('json.patch', S([1]), [{ op: 'add', path: [[1], 1], value: 2 }])).toEqual(S([1, 2]));
    expect(call('json.patch', S([1], 'x'), [{ op: 'remove', path: [[1], 0] }])).toEqual(S([], 'x'));
    expect(call('json.patch', S([1]), [{ op: 'add', path: [[2], 0], value: 2 }])).toBeUndefined();
  });
});
