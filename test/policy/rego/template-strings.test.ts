import { describe, expect, it } from 'vitest';
import { RegoError } from '../../../src/policy/rego/index.js';
import { policy } from './helpers.js';

/** Evaluates `data.t.r` of a one-rule policy (the rule written after `package t`). */
function r(rule: string, input: unknown = {}): unknown {
  return policy(`package t\n${rule}\n`).evaluate('data.t.r', input);
}

/** The RegoError compiling or evaluating `rule` raises. */
function failure(rule: string, input: unknown = {}): RegoError {
  try {
    r(rule, input);
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    return e as RegoError;
  }
  throw new Error('expected an error');
}

describe('template strings ($"…{expr}…", OPA 1.12+)', () => {
  it('interpolates variables, references and expressions (the examples of OPA and Regal)', () => {
    const p = policy(String.raw`package t
user := {"name": "alice", "role": "admin"}
message := $"User {user.name} has role {user.role}"
request_formatted := $"{method}: {path}" if {
	method := input.method
	path := input.path
}
full_name := $"{input.first} {input.last}"
sum := $"1 + 2 = {1 + 2}, many: {count(input.items) > 1}"
`);
    const input = { method: 'GET', path: '/v1/chat', first: 'Ada', last: 'Lovelace', items: [1, 2] };
    expect(p.evaluate('data.t.message', input)).toBe('User alice has role admin');
    expect(p.evaluate('data.t.request_formatted', input)).toBe('GET: /v1/chat');
    expect(p.evaluate('data.t.full_name', input)).toBe('Ada Lovelace');
    expect(p.evaluate('data.t.sum', input)).toBe('1 + 2 = 3, many: true');
  });

  it('renders an undefined expression as <undefined> instead of making the string undefined', () => {
    expect(r('r := $"user: {input.user.name}"')).toBe('user: <undefined>');
    expect(r('r := $"{input.a}-{input.b}"', { a: 'x' })).toBe('x-<undefined>');
  });

  it('renders strings as they are and other values as Rego terms (as OPA and print)', () => {
    expect(r('r := $"{"foo"}{42}{false}{null}"')).toBe('foo42falsenull');
    expect(r('r := $"{[]} {["a", "b"]} {set()} {{"c"}} {{}} {{"d": "e"}}"')).toBe('[] ["a", "b"] set() {"c"} {} {"d": "e"}');
    expect(r('r := $"{input}"', { q: 'a"b' })).toBe('{"q": "a\\"b"}');
  });

  it('takes the escapes of a string, \\{ for a literal brace, and } as it is', () => {
    expect(r(String.raw`r := $"a \{b} \"c\" \u00e9\t."`)).toBe('a {b} "c" é\t.');
    expect(r(String.raw`r := $"{"}"}{"{"}"`)).toBe('}{');
  });

  it('has a raw multi-line form $`…` where only \\{ is an escape', () => {
    const p = policy('package t\nname := "Ann"\nr := $`line 1 {name}\n\\{x} \\n {count([1])}`\n');
    expect(p.evaluate('data.t.r', {})).toBe('line 1 Ann\n{x} \\n 1');
  });

  it('nests, and works in rule heads, functions, comprehensions and comparisons', () => {
    const p = policy(String.raw`package t
f(x) := $"<{x}>"
r1 := $"{$"{input.a}!"}?"
r2 contains $"m-{m}" if some m in input.ms
r3 := [$"{i}:{v}" | some i, v in input.ms]
r4 if $"{input.a}" == "x"
r5 := f(f(1))
`);
    const input = { a: 'x', ms: ['p', 'q'] };
    expect(p.evaluate('data.t.r1', input)).toBe('x!?');
    expect(p.evaluate('data.t.r2', input)).toEqual(['m-p', 'm-q']);
    expect(p.evaluate('data.t.r3', input)).toEqual(['0:p', '1:q']);
    expect(p.evaluate('data.t.r4', input)).toBe(true);
    expect(p.evaluate('data.t.r5', input)).toBe('<<1>>');
  });

  it('is a constant when it has only literal text (a default value)', () => {
    expect(r('default r := $"none"')).toBe('none');
  });

  it('an expression with several values is eval_conflict_error, whatever the strict mode', () => {
    const e = failure('r := $"{input.xs[_]}"', { xs: [1, 2] });
    expect(e.code).toBe('eval_conflict_error');
    expect(e.message).toBe('template-strings must not produce multiple outputs');
    expect(e.location).toMatchObject({ row: 2, col: 6 });
    // One value is no conflict.
    expect(r('r := $"{input.xs[_]}"', { xs: [7] })).toBe('7');
  });

  it('refuses what OPA refuses inside {…}, with the location', () => {
    const cases: Array<[string, RegExp]> = [
      ['r := $"{}"', /expected an expression inside "\{…\}"/],
      ['r := $"{1 2}"', /expected "}" to end the template-string expression, found number 2/],
      ['r := $"{x := 1}"', /unexpected assignment \(":="\) in template-string expression/],
      ['r := $"{x = 1}"', /unexpected unification \("="\) in template-string expression/],
      ['r := $"{not input.x}"', /unexpected negation \("not"\) in template-string expression/],
      ['r := $"{some x in input}"', /unexpected "some" in template-string expression/],
      ['r := $"abc', /unterminated template string: a \$"\.\.\." string must end on the same line/],
      ['r := $`abc', /unterminated template string: a \$`\.\.\.` string needs a closing backtick/],
      ['r := $"a{input.x', /unterminated template string: an expression "\{" without its "}"/],
      ['r := $"\\q"', /invalid escape in string: "\\q"/],
      ['r := "\\{"', /invalid escape in string: "\\\{"/],
    ];
    for (const [rule, message] of cases) {
      const e = failure(rule);
      expect(e.code, rule).toBe('rego_parse_error');
      expect(e.message, rule).toMatch(message);
      expect(e.location?.row, rule).toBe(2);
    }
  });

  it('applies `with` inside {…} to that expression alone, as OPA does', () => {
    const p = policy(String.raw`package t
p := input.x
f(x) := x + 1
r1 := $"mocked={p with input.x as 5} plain={p}"
r2 := $"{data.t.p with input as {"x": [1]}}"
r3 := $"{f(1) with f as 7}, {f(1)}"
r4 := $"{count(input.xs) with input.xs as [1, 2, 3]}"
r5 := $"{time.now_ns() with time.now_ns as 42}"
`);
    const input = { x: 'orig', xs: [] };
    expect(p.evaluate('data.t.r1', input)).toBe('mocked=5 plain=orig');
    expect(p.evaluate('data.t.r2', input)).toBe('[1]');
    expect(p.evaluate('data.t.r3', input)).toBe('7, 2');
    expect(p.evaluate('data.t.r4', input)).toBe('3');
    expect(p.evaluate('data.t.r5', input)).toBe('42');
    // A `with` whose target cannot be replaced is the compile error it is outside a string.
    expect(failure('r := $"{input.a with foo as 1}"').code).toBe('rego_compile_error');
  });

  it('an unbound variable inside {…} is unsafe, as in a comprehension', () => {
    expect(failure('r := $"{y}"').code).toBe('rego_unsafe_var_error');
    // Named as written (as OPA names it), not as the variable the string's {…} is read into (`_`).
    for (const rule of ['r if { $"{y}" == "a" }', 'r if { x := $"a{y}b"; x != "" }', 'r if { startswith($"{y}", "a") }']) {
      const e = failure(rule);
      expect(e.code, rule).toBe('rego_unsafe_var_error');
      expect(e.message, rule).toBe('var y is unsafe');
    }
  });
});
