/**
 * A comprehension in a rule's head (its value, its key, a ref's dynamic part) is a body of its own,
 * reordered and checked for safety as one in the rule's body is. It was neither: its expressions
 * ran in the order written, so `[x | x > 0; x = input.xs[_]]` as a rule's value was `[]` (in a
 * body it was `[1, 2]`, as OPA answers both), and an unbound variable there compiled and failed
 * only when a decision was asked for ("unification of two unbound terms"), or silently made the
 * comprehension empty. Every template string is such a comprehension (`$"{x}"` is read as
 * `{$N | $N = x}`): a misspelt variable in one as a rule's value loaded and failed every decision.
 */
import { describe, expect, it } from 'vitest';
import { compileError, policy } from './helpers.js';

const input = { xs: [-1, 1, 2] };

function value(src: string): unknown {
  return policy(`package t\n${src}\n`).evaluate('data.t.r', input);
}

describe('a comprehension in a rule head', () => {
  it('is reordered as in a body: the value, a set key, an object value, a function value, an else value', () => {
    expect(value('r := [x | x > 0; x = input.xs[_]]')).toEqual([1, 2]);
    expect(value('r contains [x | x > 0; x = input.xs[_]] if true')).toEqual([[1, 2]]);
    expect(value('r := {"a": [x | x > 0; x = input.xs[_]]}')).toEqual({ a: [1, 2] });
    expect(value('f(a) := [x | x > a; x = input.xs[_]]\nr := f(0)')).toEqual([1, 2]);
    expect(value('r := 1 if { false } else := [x | x > 0; x = input.xs[_]]')).toEqual([1, 2]);
    // The same comprehension in a body, as it always was.
    expect(value('r := y if { y := [x | x > 0; x = input.xs[_]] }')).toEqual([1, 2]);
  });

  it('with an unbound variable is a compile error naming it, not a failure at evaluation or an empty result', () => {
    for (const [src, name] of [
      ['r := $"{y}"', 'y'],
      ['r := $"user {input.user} is {rol}"', 'rol'],
      ['r contains $"{y}" if true', 'y'],
      ['r := count([1 | y])', 'y'],
      ['r := [v | v = input.xs[_]; v > y]', 'y'],
    ] as const) {
      const e = compileError(`package t\n${src}\n`);
      expect(e.code, src).toBe('rego_unsafe_var_error');
      expect(e.message, src).toBe(`var ${name} is unsafe`);
      expect(e.location?.row, src).toBe(2);
    }
  });

  it('sees the variables its rule body binds', () => {
    expect(value('r := $"{x} of {count(input.xs)}" if { x := input.xs[1] }')).toBe('1 of 3');
    expect(value('r := [v | v = input.xs[_]; v > m] if { m := 0 }')).toEqual([1, 2]);
  });
});
