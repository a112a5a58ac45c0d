/**
 * The input-dependency analysis behind the decision cache: which input paths a policy can read,
 * and when it must give up (the whole input, a nondeterministic built-in). Each case is a small
 * policy; a wrong answer here would let the cache serve one input's decision for another.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BUILTINS } from '../../../src/policy/rego/builtins/index.js';
import { compilePolicy, formatInputPath, loadPolicy, type InputDeps } from '../../../src/policy/rego/index.js';

function deps(...sources: string[]): InputDeps {
  return compilePolicy(sources.map((source, i) => ({ path: `m${i}.rego`, source: `package p${i}\nimport rego.v1\n${source}\n` }))).inputDeps();
}

function paths(...sources: string[]): string[][] {
  const d = deps(...sources);
  expect(d.reason).toBeUndefined();
  expect(d.cacheable).toBe(true);
  return d.paths;
}

/** Not cacheable, and the reason names what and where (file:row:col of the construct). */
function refused(...sources: string[]): string {
  const d = deps(...sources);
  expect(d.cacheable).toBe(false);
  expect(d.paths).toEqual([]);
  expect(d.reason).toMatch(/ at m\d+\.rego:\d+:\d+/);
  return d.reason!;
}

describe('input paths: constant refs', () => {
  it('a ref contributes its constant prefix', () => {
    expect(paths('p if input.principal.subject == "x"')).toEqual([['principal', 'subject']]);
    expect(paths('p := input.action')).toEqual([['action']]);
    expect(paths('p := input["a-b"].c')).toEqual([['a-b', 'c']]);
  });

  it('a variable or a non-string key ends the prefix', () => {
    expect(paths('p if input.a[x] == 1')).toEqual([['a']]);
    expect(paths('p if input.a[_].b == 1')).toEqual([['a']]);
    expect(paths('p := input.a[0]')).toEqual([['a']]);
    expect(paths('p := input.a[input.b.c]')).toEqual([['a'], ['b', 'c']]);
  });

  it('keeps the shortest of nested paths, sorted, without duplicates', () => {
    expect(paths('p := input.a.b', 'q := input.a', 'r := input.a.b.c', 's := input.z', 't := input.m.n')).toEqual([['a'], ['m', 'n'], ['z']]);
    expect(paths('p := [input.x, input.x, input.x.y]')).toEqual([['x']]);
  });

  it('a policy that reads no input has no paths and is cacheable', () => {
    expect(paths('p := 1', 'q := data.p0.p + 1')).toEqual([]);
  });

  it('locals bound from input are covered by the ref that bound them', () => {
    expect(paths('p if { x := input.a; x.b.c == 1; y := x[_] }')).toEqual([['a']]);
    expect(paths('p if { input.a = x; x.y }')).toEqual([['a']]);
  });

  it('imports of input resolve to input refs', () => {
    expect(paths('import input.principal as who\np := who.subject')).toEqual([['principal', 'subject']]);
    expect(paths('import input.request\np := request.model')).toEqual([['request', 'model']]);
  });
});

describe('input paths: every place a term can be', () => {
  it('comprehensions (array, set, object) and their bodies', () => {
    expect(paths('p := [v | some v in input.list]')).toEqual([['list']]);
    expect(paths('p := {k: v | some k, v in input.obj; v != input.skip}')).toEqual([['obj'], ['skip']]);
    expect(paths('p := {x | x := input.s[_]; x > input.min}')).toEqual([['min'], ['s']]);
  });

  it('some … in, every, membership, negation, not-bodies', () => {
    expect(paths('p if { some x in input.xs; x == 1 }')).toEqual([['xs']]);
    expect(paths('p if { every x in input.items { x.ok == input.want } }')).toEqual([['items'], ['want']]);
    expect(paths('p if "a" in input.roles')).toEqual([['roles']]);
    expect(paths('p if not input.blocked')).toEqual([['blocked']]);
  });

  it('rule heads: values, keys, partial set elements, ref heads, else chains, defaults', () => {
    expect(paths('s contains input.m if true')).toEqual([['m']]);
    expect(paths('o[k] := input.v if k := input.k')).toEqual([['k'], ['v']]);
    expect(paths('p := 1 if input.a else := input.b if input.c')).toEqual([['a'], ['b'], ['c']]);
    expect(paths('default p := 0\np := input.n')).toEqual([['n']]);
  });

  it('functions: arguments at the call site and input read in the body', () => {
    expect(paths('f(x) := x.a\np := f(input.b)')).toEqual([['b']]);
    expect(paths('f(x) := input.c[x]\np := f(1)')).toEqual([['c']]);
    expect(paths('f(x) := y if y := x\np := f({"k": input.d})')).toEqual([['d']]);
  });

  it('rules of other packages count, reachable from the entrypoint or not', () => {
    expect(paths('import data.p1\np := p1.q', 'q := input.y', 'r := input.z')).toEqual([['y'], ['z']]);
  });

  it('built-in arguments: a path of input is read through the path', () => {
    expect(paths('p := count(input.a)')).toEqual([['a']]);
    expect(paths('p := object.get(input.a, "b", 1)')).toEqual([['a']]);
    expect(paths('p := sprintf("%v", [input.v])')).toEqual([['v']]);
    expect(paths('p := [x | walk(input.tree, [_, x])]')).toEqual([['tree']]);
  });

  it('with: the replaced paths and the with values are all collected', () => {
    expect(paths('p if { q with input.x as input.y }\nq if input.x == 1')).toEqual([['x'], ['y']]);
    expect(paths('p if { q with input as {"x": input.w} }\nq if input.x == 1')).toEqual([['w'], ['x']]);
    expect(paths('p if { q with data.d as input.e }\nq if data.d == 1')).toEqual([['e']]);
  });

  it('print and trace read their operands (harmless for the result, counted anyway)', () => {
    expect(paths('p if { print(input.a); trace(input.b) }')).toEqual([['a'], ['b']]);
  });
});

describe('the whole input: no cache', () => {
  it('input as a value: assigned, unified, compared, returned', () => {
    expect(refused('p := input')).toBe('reads the whole input at m0.rego:3:6');
    expect(refused('p if { x := input; x.a == 1 }')).toContain('reads the whole input');
    expect(refused('p if input == {}')).toContain('reads the whole input');
    expect(refused('p if { input = x; x.a }')).toContain('reads the whole input');
  });

  it('input passed to a function or a built-in', () => {
    expect(refused('p := object.get(input, "version", "none")')).toBe('reads the whole input at m0.rego:3:17');
    expect(refused('p := count(input)')).toContain('reads the whole input');
    expect(refused('p := [x | walk(input, [_, x])]')).toContain('reads the whole input');
    expect(refused('f(x) := x.a\np := f(input)')).toContain('reads the whole input');
    expect(refused('p := json.marshal(input)')).toContain('reads the whole input');
  });

  it('input iterated or indexed by a variable', () => {
    expect(refused('p if { some x in input; x == 1 }')).toContain('reads the whole input');
    expect(refused('p if input[x] == 1')).toBe('reads the whole input (input with a computed key) at m0.rego:3:6');
    expect(refused('p if input[_]')).toContain('computed key');
  });

  it('input inside a comprehension, every, a with value, another package', () => {
    expect(refused('p := [1 | input]')).toContain('reads the whole input');
    expect(refused('p if { every x in [1] { input != x } }')).toContain('reads the whole input');
    expect(refused('p if { q with data.d as input }\nq if data.d')).toContain('reads the whole input');
    expect(refused('p := 1', 'q := input')).toBe('reads the whole input at m1.rego:3:6');
  });

  it('an import of input itself', () => {
    expect(refused('import input as req\np := req')).toContain('reads the whole input');
  });
});

describe('nondeterministic built-ins: no cache', () => {
  it('the engine marks exactly the built-ins whose result is not a function of their arguments', () => {
    const marked = [...BUILTINS.values()].filter((d) => d.nondeterministic === true).map((d) => d.name).sort();
    expect(marked).toEqual(['http.send', 'io.jwt.decode_verify', 'opa.runtime', 'rand.intn', 'time.now_ns', 'uuid.rfc4122']);
  });

  it.each([
    ['p := time.now_ns()', 'calls time.now_ns at m0.rego:3:6'],
    ['p := rand.intn("k", 10)', 'calls rand.intn at m0.rego:3:6'],
    ['p := uuid.rfc4122("k")', 'calls uuid.rfc4122 at m0.rego:3:6'],
    ['p := opa.runtime()', 'calls opa.runtime at m0.rego:3:6'],
    ['p := http.send({"method": "GET", "url": "http://x"})', 'calls http.send at m0.rego:3:6'],
    ['p := io.jwt.decode_verify("t", {"secret": "s"})', 'calls io.jwt.decode_verify at m0.rego:3:6'],
  ])('%s', (src, reason) => {
    expect(refused(src)).toBe(reason);
  });

  it('anywhere: a function body, a comprehension, an unreachable rule, with a mock in place', () => {
    expect(refused('f(x) := x + time.now_ns()\np := input.a')).toContain('calls time.now_ns');
    expect(refused('p := [t | t := time.now_ns()]')).toContain('calls time.now_ns');
    expect(refused('p := 1', 'unused := time.now_ns()')).toBe('calls time.now_ns at m1.rego:3:11');
    expect(refused('p := x if { x := q with time.now_ns as 5 }\nq := time.now_ns()')).toContain('calls time.now_ns');
  });

  it('installed as a replacement for another built-in', () => {
    expect(refused('p := x if { x := q with rand.intn as uuid.rfc4122 }\nq := 1')).toContain('calls uuid.rfc4122');
  });

  it('both problems are reported', () => {
    expect(refused('p := [input, time.now_ns()]')).toBe('calls time.now_ns at m0.rego:3:14; reads the whole input at m0.rego:3:7');
  });

  it('deterministic time built-ins with explicit arguments are fine', () => {
    expect(paths('p := time.parse_rfc3339_ns(input.time.rfc3339)')).toEqual([['time', 'rfc3339']]);
  });
});

describe('the shipped default policy', () => {
  it('is cacheable on the fields it reads (of request only params.store, not time)', async () => {
    const policy = await loadPolicy([fileURLToPath(new URL('../../../policies', import.meta.url))], { excludeTests: true });
    expect(policy.inputDeps()).toEqual({
      cacheable: true,
      paths: [['action'], ['environment', 'name'], ['principal', 'namespace'], ['principal', 'service_account'], ['principal', 'subject'], ['request', 'params', 'store'], ['template'], ['version']],
    });
  });

  it('test files are excluded as the sidecar excludes them', () => {
    const modules = [
      { path: 'a.rego', source: 'package a\np := input.x\n' },
      { path: 'a_test.rego', source: 'package a\ntest_p if { data.a.p with input as {"x": 1}; input }\n' },
    ];
    expect(compilePolicy(modules, {}, { excludeTests: true }).inputDeps()).toEqual({ cacheable: true, paths: [['x']] });
    expect(compilePolicy(modules).inputDeps().cacheable).toBe(false);
  });
});

describe('formatInputPath', () => {
  it('writes dotted names and brackets other keys', () => {
    expect(formatInputPath(['principal', 'subject'])).toBe('input.principal.subject');
    expect(formatInputPath(['a-b', 'c'])).toBe('input["a-b"].c');
    expect(formatInputPath([])).toBe('input');
  });
});
