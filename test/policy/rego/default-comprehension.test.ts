/**
 * A default whose value is a comprehension (`default p := [x | …]`) is evaluated when no other
 * definition holds, as in OPA (its parser skips closures when it checks a default's value; OPA's
 * cases `defaultkeyword/array comprehension` and `set comprehension`, absent from the shared
 * compliance set). The engine's parser let such a default through but the compiler refused it
 * (`rego_type_error: default rule … must have a constant value`), so a policy OPA loads did not
 * load. The value reads data and input like any rule body, once per query.
 */
import { describe, expect, it } from 'vitest';
import { compileError, policy } from './helpers.js';

describe('default rules whose value is a comprehension', () => {
  it('evaluates an array or set comprehension over data when no definition holds', () => {
    const data = { a: [1, 2, 3, 4] };
    const arr = policy('package g\nimport rego.v1\np := 1 if false\ndefault p := [x | data.a[_] = x]\n', data);
    expect(arr.evaluate('data.g.p', {})).toEqual([1, 2, 3, 4]);
    const set = policy('package g\nimport rego.v1\np := 1 if false\ndefault p := {x | data.a[_] = x}\n', data);
    expect(set.query('x := data.g.p; count(x) == 4; x == {1, 2, 3, 4}', {})).toHaveLength(1);
  });

  it('reads the input of each query, and a definition that holds wins', () => {
    const src = `
package warden
import rego.v1
default tools := {t | some t in input.requested; t in {"search", "calc"}}
tools := set() if input.blocked
`;
    const p = policy(src);
    expect(p.evaluate('data.warden.tools', { requested: ['search', 'shell'] })).toEqual(['search']);
    expect(p.evaluate('data.warden.tools', { requested: ['calc'] })).toEqual(['calc']);
    expect(p.evaluate('data.warden.tools', { requested: ['calc'], blocked: true })).toEqual([]);
    // The decision cache keys on what the default reads.
    expect(p.inputDeps().paths).toEqual(expect.arrayContaining([['requested'], ['blocked']]));
  });

  it('works for functions, and for an object comprehension nested in a constant', () => {
    const f = policy('package g\nimport rego.v1\nf(x) := x if x > 1\ndefault f(_) := [y | some y in [7, 8]]\n');
    expect(f.query('x := data.g.f(5)', {})).toEqual([{ x: 5 }]);
    expect(f.query('x := data.g.f(0)', {})).toEqual([{ x: [7, 8] }]);
    const o = policy('package g\nimport rego.v1\ndefault p := {"n": 1, "m": {k: v | some k, v in input}}\n');
    expect(o.evaluate('data.g.p', { a: 1 })).toEqual({ n: 1, m: { a: 1 } });
  });

  it('still refuses a variable, reference or call outside the comprehension', () => {
    expect(compileError('package g\nimport rego.v1\ndefault p := [x]\n').code).toBe('rego_parse_error');
    expect(compileError('package g\nimport rego.v1\ndefault p := [data.a, [x | x := 1]]\n').code).toBe('rego_parse_error');
  });
});
