import { describe, expect, it } from 'vitest';
import { compileRegoPolicy } from '../../../src/policy/rego/index.js';
import { RegoDecimal, compare, equal, keyOf, stringifyJSON } from '../../../src/policy/rego/value.js';
import { policy } from './helpers.js';

describe('exact decimal literals (beyond double precision)', () => {
  it('are made only for literals a double cannot hold', () => {
    expect(RegoDecimal.fromLiteral('0.1')).toBeUndefined();
    expect(RegoDecimal.fromLiteral('3.50')).toBeUndefined();
    expect(RegoDecimal.fromLiteral('1e-7')).toBeUndefined();
    expect(RegoDecimal.fromLiteral('123456789012345.5')).toBeUndefined();
    expect(RegoDecimal.fromLiteral('0.1234567890123456789')).toBeInstanceOf(RegoDecimal);
    expect(RegoDecimal.fromLiteral('1e-400')).toBeInstanceOf(RegoDecimal);
    expect(RegoDecimal.fromLiteral('-1e-400')).toBeInstanceOf(RegoDecimal);
  });

  it('order and compare exactly against numbers, big integers and each other', () => {
    const a = RegoDecimal.fromLiteral('0.1234567890123456789')!;
    const b = RegoDecimal.fromLiteral('0.1234567890123456788')!;
    const tiny = RegoDecimal.fromLiteral('1e-400')!;
    const negTiny = RegoDecimal.fromLiteral('-1e-400')!;
    expect(compare(a, b)).toBe(1);
    expect(compare(b, a)).toBe(-1);
    expect(compare(a, RegoDecimal.fromLiteral('0.12345678901234567890')!)).toBe(0);
    expect(equal(a, RegoDecimal.fromLiteral('0.12345678901234567890')!)).toBe(true);
    expect(keyOf(a)).toBe(keyOf(RegoDecimal.fromLiteral('1234567890123456789e-19')!));
    expect(equal(a, a.num)).toBe(false);
    expect(compare(a, 0.12345678901234568)).toBe(-1);
    expect(compare(tiny, 0)).toBe(1);
    expect(compare(negTiny, 0)).toBe(-1);
    expect(compare(negTiny, tiny)).toBe(-1);
    expect(compare(tiny, 1e-300)).toBe(-1);
    expect(compare(a, 10n ** 30n)).toBe(-1);
    expect(compare(-(10n ** 30n), negTiny)).toBe(-1);
  });

  it('compare exactly in policies; built-ins and arithmetic get the nearest double', () => {
    const p = policy(`package t
import rego.v1
gt if 0.1234567890123456789 > 0.1234567890123456788
tiny_positive if 1e-400 > 0
not_equal if 1e-400 != 0
sum := 0.1234567890123456789 + 1
num if is_number(0.1234567890123456789)
name := type_name(1e-400)
members := count({0.1234567890123456789, 0.1234567890123456788, 0.12345678901234567890})
keyed := {0.1234567890123456789: "a"}[0.12345678901234567890]
sorted := sort([0.1234567890123456789, 0.5, 0.1234567890123456788])
largest := max({0.1234567890123456788, 0.1234567890123456789})
exact_sort if sort([0.1234567890123456789, 0.1234567890123456788])[0] < 0.1234567890123456789
set_size := count({x | some x in [0.1234567890123456789, 0.1234567890123456788]})
summed := sum({0.1234567890123456789, 0.1234567890123456788})
text := sprintf("%v", [0.1234567890123456789])
no_field := y if {
	x := 0.1234567890123456789
	y := x.num
}
no_elems := [y | x := 0.1234567890123456789; some y in x]
`);
    expect(p.evaluate('data.t.gt', {})).toBe(true);
    expect(p.evaluate('data.t.tiny_positive', {})).toBe(true);
    expect(p.evaluate('data.t.not_equal', {})).toBe(true);
    expect(p.evaluate('data.t.sum', {})).toBe(1.1234567890123457);
    expect(p.evaluate('data.t.num', {})).toBe(true);
    expect(p.evaluate('data.t.name', {})).toBe('number');
    expect(p.evaluate('data.t.members', {})).toBe(2);
    expect(p.evaluate('data.t.keyed', {})).toBe('a');
    expect(p.evaluate('data.t.sorted', {})).toEqual([0.12345678901234568, 0.12345678901234568, 0.5]);
    expect(p.evaluate('data.t.text', {})).toBe('0.12345678901234568');
    expect(p.evaluate('data.t.largest', {})).toBe(0.12345678901234568);
    expect(p.evaluate('data.t.exact_sort', {})).toBe(true);
    expect(p.evaluate('data.t.set_size', {})).toBe(2);
    // other built-ins compute with doubles: the two elements become one
    expect(p.evaluate('data.t.summed', {})).toBe(0.12345678901234568);
    expect(p.evaluate('data.t.no_field', {})).toBeUndefined();
    expect(p.evaluate('data.t.no_elems', {})).toEqual([]);
  });

  it('print exactly in eval output and print lines', () => {
    const p = compileRegoPolicy([{ path: 'p.rego', source: 'package t\nimport rego.v1\nx := [0.1234567890123456789, 1e-400]\nok if print(x)\n' }]);
    const r = p.queryResults('data.t.x', {});
    expect(r).toHaveLength(1);
    const lines: string[] = [];
    p.evaluate('data.t.ok', {}, { print: (l) => lines.push(l) });
    expect(lines).toEqual(['[0.1234567890123456789, 1e-400]']);
    expect(stringifyJSON([RegoDecimal.fromLiteral('0.1234567890123456789')!, RegoDecimal.fromLiteral('-1e-400')!])).toBe('[0.1234567890123456789,-1e-400]');
  });
});
