import { describe, expect, it } from 'vitest';
import { compilePolicy, RegoError } from '../../../src/policy/rego/index.js';
import { compileError, policy } from './helpers.js';

describe('Rego evaluation', () => {
  it('evaluates complete, partial set, partial object rules and functions', () => {
    const p = policy(`package t
import rego.v1
default allow := false
allow if input.user == "alice"
roles contains r if some r in input.roles
limits[k] := v if some k, v in {"a": 1, "b": 2}
double(x) := x * 2
d := double(21)
`);
    expect(p.evaluate('data.t.allow', { user: 'alice', roles: [] })).toBe(true);
    expect(p.evaluate('t/allow', { user: 'bob', roles: [] })).toBe(false);
    expect(p.evaluate('data.t.roles', { roles: ['b', 'a', 'b'] })).toEqual(['a', 'b']);
    expect(p.evaluate('data.t.limits', {})).toEqual({ a: 1, b: 2 });
    expect(p.evaluate('data.t.d', {})).toBe(42);
  });

  it('distinguishes undefined from false', () => {
    const p = policy(`package t
import rego.v1
f := false
u if input.missing
`);
    expect(p.evaluate('data.t.f', {})).toBe(false);
    expect(p.evaluate('data.t.u', {})).toBeUndefined();
    expect(p.query('data.t.u', {})).toEqual([]);
  });

  it('uses else chains and function definitions in order', () => {
    const p = policy(`package t
import rego.v1
level := "high" if input.n > 10
else := "mid" if input.n > 5
else := "low"
sign(x) := -1 if x < 0
sign(x) := 1 if x > 0
sign(0) := 0
`);
    expect(p.evaluate('data.t.level', { n: 11 })).toBe('high');
    expect(p.evaluate('data.t.level', { n: 6 })).toBe('mid');
    expect(p.evaluate('data.t.level', { n: 1 })).toBe('low');
    expect(p.query('x := data.t.sign(-5); y := data.t.sign(0)')).toEqual([{ x: -1, y: 0 }]);
  });

  it('enumerates refs with variables, with backtracking', () => {
    const p = policy(`package t
import rego.v1
pairs contains [k, i] if data.groups[k].members[i] == "bob"
`, { groups: { a: { members: ['alice', 'bob'] }, b: { members: ['bob'] } } });
    expect(p.evaluate('data.t.pairs', {})).toEqual([['a', 1], ['b', 0]]);
  });

  it('supports every, comprehensions and negation', () => {
    const p = policy(`package t
import rego.v1
all_small if every x in input.xs { x < 10 }
squares := [y | some x in input.xs; y := x * x]
no_admin if not "admin" in input.roles
`);
    expect(p.evaluate('data.t.all_small', { xs: [1, 2], roles: [] })).toBe(true);
    expect(p.evaluate('data.t.all_small', { xs: [1, 20], roles: [] })).toBeUndefined();
    expect(p.evaluate('data.t.squares', { xs: [2, 3] })).toEqual([4, 9]);
    expect(p.evaluate('data.t.no_admin', { roles: ['dev'] })).toBe(true);
    expect(p.evaluate('data.t.no_admin', { roles: ['admin'] })).toBeUndefined();
  });

  it('applies with to input, data and functions', () => {
    const p = policy(`package t
import rego.v1
is_admin if input.role == "admin"
limit := data.config.limit
n := count(input.xs)
a if is_admin with input as {"role": "admin"}
b := x if x := limit with data.config.limit as 7
c := x if x := n with count as 99
`, { config: { limit: 1 } });
    expect(p.evaluate('data.t.a', {})).toBe(true);
    expect(p.evaluate('data.t.b', {})).toBe(7);
    expect(p.evaluate('data.t.limit', {})).toBe(1);
    expect(p.evaluate('data.t.c', { xs: [1] })).toBe(99);
  });

  it('merges base and virtual documents and queries data itself', () => {
    const p = policy(`package a.b
import rego.v1
v := 1
`, { a: { base: true } });
    expect(p.evaluate('data.a', {})).toEqual({ b: { v: 1 }, base: true });
    expect(p.query('x := data')).toEqual([{ x: { a: { b: { v: 1 }, base: true } } }]);
  });

  it('raises eval_conflict_error for complete rules and functions with two values', () => {
    const p = policy(`package t
import rego.v1
x := 1
x := 2 if true
f(_) := 1
f(_) := 2
g := f(0)
`);
    expect(() => p.evaluate('data.t.x', {})).toThrow(expect.objectContaining({ code: 'eval_conflict_error' }));
    try {
      p.evaluate('data.t.x', {});
    } catch (e) {
      // the message names the rule; the location is the definition that disagreed
      expect((e as RegoError).message).toContain('rule data.t.x produced conflicting values');
      expect((e as RegoError).location).toMatchObject({ file: 'policy.rego', row: 4 });
    }
    expect(() => p.evaluate('data.t.g', {})).toThrow(expect.objectContaining({ code: 'eval_conflict_error' }));
  });

  it('treats built-in errors as undefined unless strict', () => {
    const p = policy(`package t
import rego.v1
q := 1 / input.d
`);
    expect(p.evaluate('data.t.q', { d: 0 })).toBeUndefined();
    expect(() => p.evaluate('data.t.q', { d: 0 }, { strictBuiltinErrors: true })).toThrow(expect.objectContaining({ code: 'eval_builtin_error' }));
    try {
      p.evaluate('data.t.q', { d: 0 }, { strictBuiltinErrors: true });
    } catch (e) {
      expect((e as RegoError).message).toBe('div: divide by zero');
      expect((e as RegoError).location).toMatchObject({ file: 'policy.rego', row: 3 });
    }
  });

  it('keeps big integers exact', () => {
    const p = policy(`package t
import rego.v1
big := 18446744073709551616 + 1
`);
    expect(p.evaluate('data.t.big', {})).toBe(18446744073709551617n);
  });

  it('gives equal numbers beyond 2^53 one key: sets, objects, in, object.get (doubles and exact integers alike)', () => {
    // d is a double (arithmetic with a non-integer): exactly 123456789012345683968, though JS
    // prints it as 123456789012345680000; 2e21 prints as 2e+21.
    const p = policy(`package t
import rego.v1
d := 0.5 * 246913578024691367936
x := [
  0.5 * 4e21 == 2e21,
  0.5 * 4e21 in {2e21},
  count({0.5 * 4e21, 2e21}),
  {0.5 * 4e21: "a"}[2e21],
  object.get({2e21: "a"}, 0.5 * 4e21, "missing"),
  d == 123456789012345683968,
  count({d, 123456789012345683968}),
  {d: "b"}[123456789012345683968],
]
`);
    expect(p.evaluate('data.t.x', {})).toEqual([true, true, 1, 'a', 'a', true, 1, 'b']);
  });

  it('orders strings by code point, as OPA (Go) does, not by UTF-16 unit', () => {
    // U+FFFF is one UTF-16 unit (0xFFFF); U+1F600 is two, starting 0xD83D: code points say FFFF first.
    const p = policy(`package t
import rego.v1
x := [
  "\\uffff" < "😀",
  "😀" > "\\uffff",
  sort(["😀", "\\uffff", "a", "\\ue000"]),
  max({"😀", "\\uffff"}),
  [s | some s in {"😀", "\\uffff"}],
  json.marshal({"😀": 1, "\\uffff": 2}),
  "a😀" < "a\\uffff",
  "a" < "a😀",
]
`);
    expect(p.evaluate('data.t.x', {})).toEqual([true, true, ['a', '\ue000', '\uffff', '😀'], '😀', ['\uffff', '😀'], '{"\uffff":2,"😀":1}', false, true]);
  });

  it('returns results the caller may mutate without changing the policy', () => {
    const p = policy(`package t
import rego.v1
d := {"reasons": ["a"]}
`);
    const first = p.evaluate('data.t.d', {}) as { reasons: string[] };
    first.reasons.push('mutated');
    expect(p.evaluate('data.t.d', {})).toEqual({ reasons: ['a'] });
  });

  it('returns objects held in a set as copies, never the input objects themselves', () => {
    const p = policy(`package t
import rego.v1
s contains x if some x in input.items
`);
    const input = { items: [{ name: 'a' }, { name: 'b' }] };
    const out = p.evaluate('data.t.s', input) as Array<{ name: string }>;
    expect(out).toEqual([{ name: 'a' }, { name: 'b' }]);
    out[0]!.name = 'changed';
    expect(input.items[0]!.name).toBe('a');
  });
});

describe('rule indexing', () => {
  const lines = ['package idx', 'import rego.v1'];
  for (let i = 0; i < 50; i++) lines.push(`deny contains "model ${i}" if { input.model == "m${i}"; input.ns != "x" }`);
  lines.push('deny contains "always" if input.ns == "y"');
  lines.push('deny contains "number" if 7 == input.model');
  lines.push('tagged := t if t := deny with input as {"model": "m3", "ns": "z"}');
  const p = compilePolicy([{ path: 'idx.rego', source: lines.join('\n') }]);

  it('gives the same answers as evaluating every rule', () => {
    expect(p.evaluate('data.idx.deny', { model: 'm7', ns: 'y' })).toEqual(['always', 'model 7']);
    expect(p.evaluate('data.idx.deny', { model: 'm7', ns: 'x' })).toEqual([]);
    expect(p.evaluate('data.idx.deny', { model: 7, ns: 'q' })).toEqual(['number']);
    expect(p.evaluate('data.idx.deny', { ns: 'y' })).toEqual(['always']);
    expect(p.evaluate('data.idx.deny', {})).toEqual([]);
  });

  it('finds a rule on a number beyond 1e21 whether the input holds it as a double or the rule as an exact integer', () => {
    const rules = ['package q', 'import rego.v1'];
    for (let i = 1; i <= 7; i++) rules.push(`deny contains "d${i}" if input.n == ${i}`);
    rules.push('deny contains "big" if input.n == 1e21');
    const q = compilePolicy([{ path: 'q.rego', source: rules.join('\n') }]);
    expect(q.evaluate('data.q.deny', { n: 1e21 })).toEqual(['big']);
    expect(q.evaluate('data.q.deny', { n: 3 })).toEqual(['d3']);
  });

  it('reads the input in force, including one set by with', () => {
    expect(p.evaluate('data.idx.tagged', { model: 'm9', ns: 'q' })).toEqual(['model 3']);
  });
});

describe('Rego compile errors', () => {
  it('reports unsafe variables with their location', () => {
    const e = compileError(`package t
import rego.v1
p if {
	x > 1
}
`);
    expect(e.code).toBe('rego_unsafe_var_error');
    expect(e.message).toContain('var x is unsafe');
    expect(e.location).toMatchObject({ file: 'policy.rego', row: 4 });
  });

  it('reports recursion', () => {
    const e = compileError(`package t
import rego.v1
p if q
q if p
`);
    expect(e.code).toBe('rego_recursion_error');
    expect(e.message).toContain('data.t.p');
  });

  it('names an unknown built-in and says where it is called', () => {
    const e = compileError(`package t
import rego.v1
p if no_such.builtin(1)
`);
    expect(e.code).toBe('rego_type_error');
    expect(e.message).toContain('undefined function no_such.builtin');
    expect(e.location).toMatchObject({ file: 'policy.rego', row: 3, col: 6 });
  });

  it('checks built-in arity', () => {
    const e = compileError(`package t
import rego.v1
p if count(1, 2, 3)
`);
    expect(e.code).toBe('rego_type_error');
    expect(e.message).toContain('count');
  });

  it('rejects a second := of the same variable', () => {
    const e = compileError(`package t
import rego.v1
p if {
	x := 1
	x := 2
}
`);
    expect(e.code).toBe('rego_compile_error');
    expect(e.message).toContain('var x assigned above');
    expect(e.location).toMatchObject({ row: 5 });
  });

  it('rejects a use of a variable before its := declaration', () => {
    const e = compileError(`package t
import rego.v1
p if {
	y > 1
	y := 2
}
`);
    expect(e.code).toBe('rego_compile_error');
    expect(e.message).toContain('var y referenced above');
    expect(e.location).toMatchObject({ row: 4, col: 2 });
  });

  it('locates a rule that conflicts with rules under its path (file:line:col)', () => {
    let err: unknown;
    try {
      compilePolicy([
        { path: 'a.rego', source: 'package warden\nimport rego.v1\n\ndecision := {"allow": true}\n' },
        { path: 'b.rego', source: 'package warden.decision\nimport rego.v1\nallow := false\n' },
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegoError);
    expect(String(err)).toBe('a.rego:4:1: rego_type_error: rule data.warden.decision conflicts with [data.warden.decision.allow]');
  });

  it('rejects calls to functions no rule defines', () => {
    const e = compileError(`package t
import rego.v1
p if data.lib.nope(1)
`);
    expect(e.code).toBe('rego_type_error');
    expect(e.message).toContain('undefined function data.lib.nope');
  });

  it('rejects conflicting rule kinds', () => {
    const e = compileError(`package t
import rego.v1
p := 1
p contains 2
`);
    expect(e.code).toBe('rego_type_error');
    expect(e.message).toContain('data.t.p');
  });

  it('reports parse errors with file, line and column', () => {
    try {
      compilePolicy([{ path: 'bad.rego', source: 'package t\n\np if {\n' }]);
      throw new Error('expected a parse error');
    } catch (e) {
      expect(e).toBeInstanceOf(RegoError);
      expect((e as RegoError).code).toBe('rego_parse_error');
      expect((e as RegoError).location?.file).toBe('bad.rego');
    }
  });
});
