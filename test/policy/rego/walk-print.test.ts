import { afterEach, describe, expect, it, vi } from 'vitest';
import { RegoError } from '../../../src/policy/rego/index.js';
import { compileError, policy } from './helpers.js';

const DOC = {
  name: 'svc',
  owners: ['alice', 'bob'],
  limits: { rpm: 60, models: { 'gpt-4o': 'restricted', 'gpt-4o-mini': 'open' } },
};

describe('walk(x, [path, value])', () => {
  it('enumerates every path to a string leaf (the OPA documentation example)', () => {
    const p = policy(`package t
import rego.v1
string_paths contains path if {
	walk(input, [path, value])
	is_string(value)
}
`);
    expect(p.evaluate('data.t.string_paths', DOC)).toEqual([
      ['limits', 'models', 'gpt-4o'],
      ['limits', 'models', 'gpt-4o-mini'],
      ['name'],
      ['owners', 0],
      ['owners', 1],
    ]);
  });

  it('yields the root first, then every node in pre-order, as [path, value] pairs', () => {
    const p = policy(`package t
import rego.v1
pairs := [pair | pair := walk(input)]
paths := [path | [path, _] := walk(input)]
`);
    const pairs = p.evaluate('data.t.pairs', { a: [1, { b: 2 }] }) as unknown[];
    expect(pairs).toEqual([
      [[], { a: [1, { b: 2 }] }],
      [['a'], [1, { b: 2 }]],
      [['a', 0], 1],
      [['a', 1], { b: 2 }],
      [['a', 1, 'b'], 2],
    ]);
    expect(p.evaluate('data.t.paths', 'scalar')).toEqual([[]]);
  });

  it('looks a ground path up (walk(x, [["a"], v])), undefined where the path is absent', () => {
    const p = policy(`package t
import rego.v1
rpm := v if walk(input, [["limits", "rpm"], v])
second_owner := v if walk(input, [["owners", 1], v])
missing if walk(input, [["limits", "nope"], _])
whole := v if walk(input, [[], v])
`);
    expect(p.evaluate('data.t.rpm', DOC)).toBe(60);
    expect(p.evaluate('data.t.second_owner', DOC)).toBe('bob');
    expect(p.evaluate('data.t.missing', DOC)).toBeUndefined();
    expect(p.evaluate('data.t.whole', DOC)).toEqual(DOC);
  });

  it('uses a path bound by an earlier expression, and matches partly ground patterns', () => {
    const p = policy(`package t
import rego.v1
via_var contains v if {
	some path in [["name"], ["limits", "rpm"], ["absent"]]
	walk(input, [path, v])
}
model_names contains name if walk(input, [["limits", "models", name], _])
open_models contains name if walk(input, [["limits", "models", name], "open"])
`);
    expect(p.evaluate('data.t.via_var', DOC)).toEqual([60, 'svc']);
    expect(p.evaluate('data.t.model_names', DOC)).toEqual(['gpt-4o', 'gpt-4o-mini']);
    expect(p.evaluate('data.t.open_models', DOC)).toEqual(['gpt-4o-mini']);
  });

  it('walks sets (the path key is the element) and data documents', () => {
    const p = policy(
      `package t
import rego.v1
set_paths := [path | walk({"s": {"x", "y"}}, [path, _])]
teams contains t if walk(data.org, [["teams", t], _])
`,
      { org: { teams: { red: {}, blue: {} } } },
    );
    expect(p.evaluate('data.t.set_paths', {})).toEqual([[], ['s'], ['s', 'x'], ['s', 'y']]);
    expect(p.evaluate('data.t.teams', {})).toEqual(['blue', 'red']);
  });

  it('works in queries, under negation and with a mocked walk', () => {
    const p = policy(`package t
import rego.v1
no_secret if not walk(input, [["secret"], _])
mocked := x if {
	x := [v | walk(input, [_, v])] with walk as [["m"], 7]
}
`);
    expect(p.query('walk(input, [["a"], v])', { a: 'x' })).toEqual([{ v: 'x' }]);
    expect(p.query('[p, v] := walk(input); is_number(v)', { a: 1, b: 'x' })).toEqual([{ p: ['a'], v: 1 }]);
    expect(p.evaluate('data.t.no_secret', { a: 1 })).toBe(true);
    expect(p.evaluate('data.t.no_secret', { secret: 1 })).toBeUndefined();
    expect(p.evaluate('data.t.mocked', { a: 1 })).toEqual([7]);
  });

  it('counts every pair against the step budget', () => {
    const p = policy(`package t
import rego.v1
n := count([1 | walk(input, _)])
`);
    const big = Array.from({ length: 5000 }, (_, i) => ({ i }));
    expect(p.evaluate('data.t.n', big)).toBe(1 + 5000 * 2);
    try {
      p.evaluate('data.t.n', big, { maxSteps: 1000 });
      throw new Error('expected a budget error');
    } catch (e) {
      expect(e).toBeInstanceOf(RegoError);
      expect((e as RegoError).code).toBe('eval_budget_exceeded');
    }
  });

  it('rejects a wrong number of arguments at compile time, with the location', () => {
    const e = compileError('package t\nimport rego.v1\np if walk(input, [a, b], 3)\n');
    expect(e.code).toBe('rego_type_error');
    expect(e.message).toContain('walk: arity mismatch');
    expect(e.location).toMatchObject({ file: 'policy.rego', row: 3 });
  });
});

describe('print(…)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes one line of its operands: strings as they are, other values as Rego terms', () => {
    const p = policy(`package t
import rego.v1
allow if {
	print("user", input.user, "roles", {r | some r in input.roles}, input.n, {"k": [1, null, true]})
	input.user == "alice"
}
`);
    const lines: string[] = [];
    expect(p.evaluate('data.t.allow', { user: 'alice', roles: ['b', 'a'], n: 2.5 }, { print: (l) => lines.push(l) })).toBe(true);
    expect(lines).toEqual(['user alice roles {"a", "b"} 2.5 {"k": [1, null, true]}']);
  });

  it('shows an undefined operand as <undefined> and still succeeds', () => {
    const p = policy(`package t
import rego.v1
allow if {
	print("missing:", input.nope, "count:", count(input.xs))
}
`);
    const lines: string[] = [];
    expect(p.evaluate('data.t.allow', { xs: 42 }, { print: (l) => lines.push(l) })).toBe(true);
    expect(lines).toEqual(['missing: <undefined> count: <undefined>']);
  });

  it('writes a line per combination of the values its operands enumerate, and none for a body that never reaches it', () => {
    const p = policy(`package t
import rego.v1
each if print(input.xs[_], input.ys[_])
never if {
	input.flag
	print("unreachable")
}
`);
    const lines: string[] = [];
    const hook = { print: (l: string) => lines.push(l) };
    expect(p.evaluate('data.t.each', { xs: [2, 1], ys: ['a', 'b'] }, hook)).toBe(true);
    expect(lines).toEqual(['1 a', '1 b', '2 a', '2 b']);
    lines.length = 0;
    expect(p.evaluate('data.t.never', {}, hook)).toBeUndefined();
    expect(lines).toEqual([]);
  });

  it('prints once per solution inside iteration, functions and comprehensions', () => {
    const p = policy(`package t
import rego.v1
f(x) := y if {
	y := x * 2
	print("f", x, y)
}
doubled := [f(x) | some x in input]
`);
    const lines: string[] = [];
    expect(p.evaluate('data.t.doubled', [1, 2], { print: (l) => lines.push(l) })).toEqual([2, 4]);
    expect(lines).toEqual(['f 1 2', 'f 2 4']);
  });

  it('writes nothing anywhere without a hook (the sidecar default)', () => {
    const out = vi.spyOn(process.stdout, 'write');
    const err = vi.spyOn(process.stderr, 'write');
    const log = vi.spyOn(console, 'log');
    const p = policy(`package t
import rego.v1
allow if {
	print("token", input.token)
	input.token != ""
}
`);
    expect(p.evaluate('data.t.allow', { token: 'CANARY-SECRET-9f8e7d' })).toBe(true);
    const written = [...out.mock.calls, ...err.mock.calls, ...log.mock.calls].map((c) => String(c[0])).join('');
    expect(written).not.toContain('CANARY-SECRET-9f8e7d');
  });

  it('is a statement: using it as a value or with unsafe operands is a compile error', () => {
    const asValue = compileError('package t\nimport rego.v1\np if {\n\tx := print("a")\n}\n');
    expect(asValue.code).toBe('rego_type_error');
    expect(asValue.message).toContain('print');
    expect(asValue.location).toMatchObject({ file: 'policy.rego', row: 4 });
    const unsafe = compileError('package t\nimport rego.v1\np if {\n\tprint(x)\n}\n');
    expect(unsafe.code).toBe('rego_unsafe_var_error');
    expect(unsafe.message).toBe('var x is unsafe');
    expect(unsafe.location).toMatchObject({ file: 'policy.rego', row: 4 });
  });

  it('runs after the expressions that bind its operands, whatever the source order', () => {
    const p = policy(`package t
import rego.v1
p if {
	print("x is", x)
	x = input.a + 1
}
`);
    const lines: string[] = [];
    expect(p.evaluate('data.t.p', { a: 1 }, { print: (l) => lines.push(l) })).toBe(true);
    expect(lines).toEqual(['x is 2']);
  });

  it('a package function named print shadows the built-in', () => {
    const p = policy(`package t
import rego.v1
print(x) := x + 1
v := print(1)
`);
    expect(p.evaluate('data.t.v', {})).toBe(2);
  });
});
