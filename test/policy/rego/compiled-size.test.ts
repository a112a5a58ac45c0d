/**
 * The compiled form's size, and the plans that keep it small: a single-valued term without
 * variables (`input.a.b`, a constant, a call on such terms) is planned as one evaluator, whose
 * `eval` and `match` must answer as the full continuation-passing plan did.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/rego/index.js';
import { policy } from './helpers.js';

/** The rules of the heap snapshot that found the problem: three expressions each. */
function generated(n: number): string {
  let src = 'package gen\n\nimport rego.v1\n\n';
  for (let i = 0; i < n; i++) {
    src += `allow_${i} if {\n  input.request.model == "m${i}"\n  input.principal.namespace == "ns${i % 50}"\n  count(input.request.variables) < ${(i % 7) + 1}\n}\n`;
  }
  return src;
}

describe('variable-free single-valued terms', () => {
  const p = policy(`package t
import rego.v1

# Matched as array items (the array pattern's items are matched, not evaluated).
pair := y if [input.a, y] = [1, 2]
pair_call := y if [count(input.xs), y] = [2, "two"]
pair_data := y if [data.t.one, y] = [1, "one"]
one := 1

# Matched against a bound value.
hit contains v if {
  some pair in [["a", 1], ["b", 2], ["a", 3]]
  [input.k, v] = pair
}

# A mocked built-in inside a variable-free call.
mocked := n if {
  n := count(input.xs) with count as 7
}

# Membership and sets without variables.
member if input.a in {1, 2}
set_of := {input.a, input.b}

# Functions called with variable-free arguments.
double(x) := 2 * x
doubled := double(input.a)
mocked_fn := n if {
  n := double(input.a) with double as 5
}
`);

  it('answers as OPA does', () => {
    const ev = (rule: string, input: unknown) => p.evaluate(`data.t.${rule}`, input);
    expect(ev('pair', { a: 1 })).toBe(2);
    expect(ev('pair', { a: 3 })).toBeUndefined();
    expect(ev('pair', {})).toBeUndefined();
    expect(ev('pair_call', { xs: [1, 2] })).toBe('two');
    expect(ev('pair_call', { xs: [1] })).toBeUndefined();
    expect(ev('pair_data', {})).toBe('one');
    expect(ev('hit', { k: 'a' })).toEqual([1, 3]);
    expect(ev('hit', {})).toEqual([]);
    expect(ev('mocked', { xs: [] })).toBe(7);
    expect(ev('member', { a: 2 })).toBe(true);
    expect(ev('member', { a: 5 })).toBeUndefined();
    expect(ev('set_of', { a: 1, b: 1 })).toEqual([1]);
    expect(ev('doubled', { a: 4 })).toBe(8);
    expect(ev('doubled', {})).toBeUndefined();
    expect(ev('mocked_fn', { a: 4 })).toBe(5);
  });
});

describe('compiled size', () => {
  it('a compiled policy holds under 100 bytes of heap per byte of source (was ~140), under 60 once its input dependencies are known', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const src = generated(3000);
    gc();
    const before = process.memoryUsage().heapUsed;
    const compiled = compilePolicy([{ path: 'gen.rego', source: src }]);
    gc();
    const compiledBytes = process.memoryUsage().heapUsed - before;
    expect(compiled.inputDeps().cacheable).toBe(true);
    gc();
    const afterDeps = process.memoryUsage().heapUsed - before;
    expect(compiled.evaluate('data.gen.allow_7', { request: { model: 'm7', variables: {} }, principal: { namespace: 'ns7' } })).toBe(true);
    expect(compiledBytes / src.length).toBeLessThan(100);
    expect(afterDeps / src.length).toBeLessThan(60);
  });
});
