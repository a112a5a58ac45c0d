/**
 * Parse errors: each names the file, line and column of the problem and says what was
 * expected in words a policy author understands. Hostile input (deep nesting, garbage,
 * mutations of valid policies) ends in a RegoError, never a crash or a raw JS error.
 */
import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, parseModule, parseQuery, parseTerm } from '../../../src/policy/rego/ast/index.js';
import { RegoError } from '../../../src/policy/rego/errors.js';

/** The error a module raises, as `file:row:col: code: message`. */
/** The RegoError `fn` throws (fails the test when it does not). */
function parseErr(fn: () => unknown): RegoError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    return e as RegoError;
  }
  throw new Error('expected a parse error');
}

function moduleError(source: string, file = 'policy.rego'): string {
  try {
    parseModule(source, file);
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    return String(e);
  }
  throw new Error(`expected a parse error for:\n${source}`);
}

function queryError(text: string): string {
  try {
    parseQuery(text, 'query');
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    return String(e);
  }
  throw new Error(`expected a parse error for: ${text}`);
}

const pkg = (body: string) => `package p\n\n${body}`;

describe('parse error messages', () => {
  it('say what was expected after a rule head', () => {
    expect(moduleError(pkg('allow foo'))).toBe(
      'policy.rego:3:7: rego_parse_error: expected ":=", "=", "if" or "contains" after rule head allow, found "foo"',
    );
    expect(moduleError(pkg('f(x)\n'))).toBe('policy.rego:4:1: rego_parse_error: expected ":=", "=" or "if" after function head f(...), found end of file');
    expect(moduleError(pkg('p == 1'))).toBe(
      'policy.rego:3:3: rego_parse_error: unexpected "==" after rule name p: conditions go in the rule body, e.g. "p if { ... }"',
    );
  });

  it('never quote a string literal (it may be a key or token), only say where it is', () => {
    // A missing comma after a key literal: the next literal is the secret.
    const e = moduleError('package warden\nhmac_keys := {"svc": "a" "CANARY-SECRET-7f3a"}\n');
    expect(e).not.toContain('CANARY');
    expect(e).toBe('policy.rego:2:26: rego_parse_error: expected "," or "}" in the object, found a string');
    expect(moduleError(pkg('x := "CANARY-SECRET-7f3a" "b"'))).not.toContain('CANARY');
  });

  it('explain the Rego v1 keywords that v0 policies lack', () => {
    expect(moduleError(pkg('allow {\n  true\n}'))).toBe(
      'policy.rego:3:7: rego_parse_error: "if" keyword is required before rule body (Rego v1): write "allow if { ... }"',
    );
    expect(moduleError(pkg('f(x) {\n  true\n}'))).toBe(
      'policy.rego:3:6: rego_parse_error: "if" keyword is required before function body (Rego v1): write "f(...) if { ... }"',
    );
    expect(moduleError(pkg('deny[msg] {\n  msg := "x"\n}'))).toBe(
      'policy.rego:3:1: rego_parse_error: "contains" and "if" keywords are required for partial set rules (Rego v1): write "deny contains msg if { ... }"',
    );
    expect(moduleError(pkg('p.q\n'))).toBe(
      'policy.rego:3:1: rego_parse_error: "contains" keyword is required for partial set rules (Rego v1): write "p contains <value> if { ... }"',
    );
    expect(moduleError(pkg('p := 1 if { false } else = 2 { true }'))).toBe(
      'policy.rego:3:30: rego_parse_error: "if" keyword is required before an else body (Rego v1): write "else := <value> if { ... }"',
    );
  });

  it('locate problems inside bodies', () => {
    expect(moduleError(pkg('p if {\n  x := 1 y := 2\n}'))).toBe(
      'policy.rego:4:10: rego_parse_error: expected a newline, ";" or "}" after the expression, found "y"',
    );
    expect(moduleError(pkg('p if {\n  x := [1, 2\n}'))).toBe('policy.rego:5:1: rego_parse_error: expected "," or "]", found "}"');
    expect(moduleError(pkg('p := {"a": 1, "b"}'))).toBe('policy.rego:3:18: rego_parse_error: expected ":" after the object key, found "}"');
    expect(moduleError(pkg('p := f(1 2)'))).toBe('policy.rego:3:10: rego_parse_error: expected "," or ")", found number 2');
    expect(moduleError(pkg('p if every x in xs'))).toBe(
      'policy.rego:3:19: rego_parse_error: expected "{" to start the body of "every", found end of file',
    );
    expect(moduleError(pkg('p if every x { true }'))).toBe('policy.rego:3:12: rego_parse_error: expected "x in xs" or "k, v in xs" after "every"');
    expect(moduleError(pkg('p if { x with input 2 }'))).toBe('policy.rego:3:21: rego_parse_error: expected "as" after the "with" target, found number 2');
    expect(moduleError(pkg('p if { some 1 }'))).toBe('policy.rego:3:13: rego_parse_error: expected a variable name after "some", found number 1');
    expect(moduleError(pkg('p if not some x in y'))).toBe('policy.rego:3:6: rego_parse_error: "not" cannot be applied to "some"');
    expect(moduleError(pkg('p := a. b'))).toBe('policy.rego:3:9: rego_parse_error: expected a name directly after ".", found "b"');
    expect(moduleError(pkg('p := "abc"[0]'))).toBe(
      'policy.rego:3:11: rego_parse_error: a string cannot be followed by "[": only variables, collections and calls can be indexed',
    );
  });

  it('report lexical errors at the offending text', () => {
    expect(moduleError(pkg('p := "abc\n'))).toBe(
      'policy.rego:3:6: rego_parse_error: unterminated string: a "..." string must end on the same line (use a `raw string` for several lines)',
    );
    expect(moduleError(pkg('p := "a\\qb"'))).toBe(
      'policy.rego:3:8: rego_parse_error: invalid escape in string: "\\q" (allowed: \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)',
    );
    expect(moduleError(pkg('p := "\\u12"'))).toBe('policy.rego:3:7: rego_parse_error: invalid escape in string: \\u must be followed by four hex digits');
    expect(moduleError(pkg('p := `abc'))).toBe('policy.rego:3:6: rego_parse_error: unterminated raw string: a `...` string needs a closing backtick');
    expect(moduleError(pkg('p := x !y'))).toBe(
      'policy.rego:3:8: rego_parse_error: unexpected "!": write "!=" for "not equal", or "not" to negate an expression',
    );
    expect(moduleError(pkg('p := $"x{1'))).toBe('policy.rego:3:6: rego_parse_error: unterminated template string: an expression "{" without its "}"');
    expect(moduleError(pkg('p := $x'))).toBe('policy.rego:3:6: rego_parse_error: unexpected "$": names may contain only letters, digits and "_"');
    expect(moduleError(pkg('p := 1 ∧ 2'))).toBe('policy.rego:3:8: rego_parse_error: unexpected character "∧"');
  });

  it('reject malformed numbers as OPA does', () => {
    expect(moduleError(pkg('p := 01'))).toBe('policy.rego:3:6: rego_parse_error: invalid number "01": numbers may not start with 0');
    expect(moduleError(pkg('p := 1.'))).toBe('policy.rego:3:6: rego_parse_error: invalid number: expected digits after the decimal point');
    expect(moduleError(pkg('p := 1e'))).toBe('policy.rego:3:6: rego_parse_error: invalid number: expected digits in the exponent');
    expect(moduleError(pkg('p := 12ab'))).toBe('policy.rego:3:6: rego_parse_error: invalid number: a number may not be followed directly by letters');
    expect(moduleError(pkg('p := 1e999999'))).toBe('policy.rego:3:6: rego_parse_error: number too big: "1e999999"');
    // Unary minus applies to number literals only, as in OPA.
    expect(moduleError(pkg('p := -x'))).toBe(
      'policy.rego:3:7: rego_parse_error: expected a number after "-" (to negate an expression, write "0 - x"), found "x"',
    );
  });

  it('check packages, imports and default rules', () => {
    expect(moduleError('allow := true')).toBe('policy.rego:1:1: rego_parse_error: expected "package" declaration at the start of the module, found "allow"');
    expect(moduleError('')).toBe('policy.rego:1:1: rego_parse_error: expected "package" declaration at the start of the module, found end of file');
    expect(moduleError('package p\npackage q')).toBe(
      'policy.rego:2:1: rego_parse_error: unexpected second "package" declaration: a file holds exactly one package',
    );
    expect(moduleError('package p[1]')).toBe('policy.rego:1:11: rego_parse_error: package path elements must be names or strings, found number');
    expect(moduleError('package p\nimport foo.bar')).toBe(
      'policy.rego:2:8: rego_parse_error: import path must start with "data", "input", "future" or "rego", found "foo"',
    );
    expect(moduleError('package p\nimport rego.v3')).toBe('policy.rego:2:8: rego_parse_error: unsupported import "rego.v3": use "import rego.v1"');
    expect(moduleError('package p\nimport future.keywords.maybe')).toBe(
      'policy.rego:2:8: rego_parse_error: unsupported import "future.keywords.maybe": use "future.keywords" or "future.keywords.<in|every|if|contains|not>"',
    );
    expect(moduleError('package p\nimport data.x.if')).toBe(
      'policy.rego:2:1: rego_parse_error: import path must not end with the keyword "if": add an alias, e.g. "import ... as if_"',
    );
    expect(moduleError(pkg('default allow'))).toBe('policy.rego:3:1: rego_parse_error: a default rule must have a value: "default allow := <value>"');
    expect(moduleError(pkg('default allow := input.x'))).toBe('policy.rego:3:1: rego_parse_error: a default rule value cannot contain a reference');
    expect(moduleError(pkg('default allow := false if true'))).toBe(
      'policy.rego:3:24: rego_parse_error: a default rule has no body: "default allow := <value>" applies when no other definition of allow does',
    );
    expect(moduleError(pkg('default f(x, x) := 1'))).toBe('policy.rego:3:1: rego_parse_error: default function arguments cannot be repeated: x');
  });

  it('reject keywords as rule names and else where OPA does', () => {
    expect(moduleError(pkg('if := 1'))).toBe('policy.rego:3:1: rego_parse_error: "if" is a keyword and cannot be used as a rule name');
    expect(moduleError(pkg('p[x] := 1 if x := 1 else := 2'))).toBe(
      'policy.rego:3:21: rego_parse_error: "else" cannot be used on rules with variables in the head',
    );
    expect(moduleError(pkg('p contains x if x := 1 else := 2'))).toBe(
      'policy.rego:3:24: rego_parse_error: "else" cannot be used on multi-value ("contains") rules',
    );
    expect(moduleError(pkg('p := x with input as 1'))).toBe(
      'policy.rego:3:8: rego_parse_error: "with" cannot be used in a rule head; put the expression in the rule body',
    );
  });

  it('cover queries and single terms', () => {
    expect(queryError('')).toBe('query:1:1: rego_parse_error: expected an expression, found end of file');
    expect(queryError('x :=')).toBe('query:1:5: rego_parse_error: expected a term (a value, variable, reference or call), found end of file');
    expect(queryError('a b')).toBe('query:1:3: rego_parse_error: expected a newline or ";" between expressions, found "b"');
    expect(() => parseTerm('not x')).toThrow(RegoError);
    expect(() => parseTerm('x; y')).toThrow('expected exactly one term');
  });

  it('use the given file name and count rows after raw strings spanning lines', () => {
    expect(moduleError('package p\n\nx := `a\nb\nc`\ny := }', 'lib/authz.rego')).toBe(
      'lib/authz.rego:6:6: rego_parse_error: expected a term (a value, variable, reference or call), found "}"',
    );
  });

  it('expose code, message and location on the error object', () => {
    try {
      parseModule(pkg('allow foo'), 'a.rego');
      expect.unreachable();
    } catch (e) {
      const err = e as RegoError;
      expect(err.code).toBe('rego_parse_error');
      expect(err.location).toEqual({ file: 'a.rego', row: 3, col: 7 });
      expect(err.message).toBe('expected ":=", "=", "if" or "contains" after rule head allow, found "foo"');
    }
  });
});

describe('hostile input', () => {
  const nested = (open: string, inner: string, close: string, depth: number) => open.repeat(depth) + inner + close.repeat(depth);

  it(`accepts nesting up to the cap of ${MAX_DEPTH}`, () => {
    // The query body is one level, the innermost term another.
    expect(() => parseTerm(nested('[', '1', ']', MAX_DEPTH - 2))).not.toThrow();
    expect(() => parseTerm(nested('{"a": ', '1', '}', MAX_DEPTH - 2))).not.toThrow();
  });

  it.each([
    ['arrays', '[', '1', ']'],
    ['parentheses', '(', '1', ')'],
    ['calls', 'f(', '1', ')'],
    ['objects', '{"a": ', '1', '}'],
    ['sets', '{', '1', '}'],
    ['sets in sums', '{', '1', ' + 1}'],
    ['brackets', 'a[', '1', ']'],
    ['comprehensions', '[x | ', 'x', ']'],
    ['comprehension fallbacks', '[a | ', 'b, c', ']'],
  ])('ends deeply nested %s in a RegoError, not a stack overflow', (_name, open, inner, close) => {
    for (const depth of [MAX_DEPTH + 1, 100_000]) {
      let caught: unknown;
      try {
        parseTerm(nested(open, inner, close, depth));
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(RegoError);
      expect(String(caught)).toMatch(/^term:1:\d+: rego_parse_error: nesting too deep: more than 1000 levels/);
    }
  });

  it('ends a very long else chain in a RegoError', () => {
    const src = 'package p\np := 1 if false ' + 'else := 2 if false '.repeat(5000);
    expect(() => parseModule(src, 'x.rego')).toThrow(/nesting too deep/);
  });

  it('parses long flat chains up to the limits the compiler and evaluator can take, and refuses longer ones with a located error', () => {
    // An operator chain is a tree as deep as it is long, and a body's length is evaluation stack
    // depth (continuation-passing): both are bounded at parse time, not by a stack overflow later.
    const sum = parseTerm(Array(990).fill('1').join(' + '));
    expect(sum).toMatchObject({ type: 'call', op: 'plus' });
    expect(parseQuery(Array(1000).fill('x == 1').join('\n'))).toHaveLength(1000);
    const long = parseErr(() => parseTerm(Array(50_000).fill('1').join(' + ')));
    expect(long.message).toMatch(/^expression too long: /);
    expect(long.location?.row).toBe(1);
    const body = parseErr(() => parseQuery(Array(20_000).fill('x == 1').join('\n')));
    expect(body.message).toMatch(/^body too long: more than 1000 expressions/);
    expect(body.location?.row).toBe(1001);
  });

  it('keeps backtracking linear on ambiguous nested braces', () => {
    // Each level is first read as a set and then re-read as a sum; memoised terms keep this linear.
    const term = parseTerm(nested('{', '1', ' + 1}', 200));
    expect(term.type).toBe('set');
  });

  it('rejects non-text input with a RegoError', () => {
    expect(() => parseModule(undefined as unknown as string, 'x.rego')).toThrow(RegoError);
    expect(() => parseQuery(42 as unknown as string)).toThrow(RegoError);
  });

  it('never throws anything but RegoError on mutated policies', () => {
    const base = [
      'package authz',
      'import rego.v1',
      'default allow := false',
      'allow if {',
      '  some role in input.user.roles',
      '  data.grants[role][_] == {"action": input.action, "n": 1.5e3}',
      '  not deny[input.user.name]',
      '  every x in [1, 2] { x > 0 }',
      '}',
      'deny contains n if n := input.blocked[_] with input as {"a": `raw`}',
      'f(x) := y if { y := [z | z := x[_]; z != "\\u00e9"] } else := 0',
      'obj[k] := v if some k, v in {"a": {1, 2} | set()}',
    ].join('\n');
    // A fixed-seed generator keeps the test deterministic.
    let seed = 0x9e3779b9;
    const rand = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const alphabet = '{}[]()|&:=;,."`\\ \n\tx1_-+*/%<>!#$éif';
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      let src = base;
      for (let m = 0, k = 1 + rand(4); m < k; m++) {
        const at = rand(src.length);
        src = rand(2) === 0 ? src.slice(0, at) + src.slice(at + 1 + rand(3)) : src.slice(0, at) + alphabet[rand(alphabet.length)]! + src.slice(at);
      }
      try {
        parseModule(src, 'm.rego');
      } catch (e) {
        if (!(e instanceof RegoError)) throw new Error(`non-RegoError ${String(e)} for:\n${src}`);
        expect(e.location?.file).toBe('m.rego');
        errors++;
      }
    }
    // Most mutations break the policy; the point is that every failure was a RegoError.
    expect(errors).toBeGreaterThan(1000);
  });

  it('parses a 1 MB policy', () => {
    const parts = ['package big', 'import rego.v1', ''];
    let size = 0;
    for (let i = 0; size < 1_000_000; i++) {
      const chunk =
        `allow_${i} if {\n\tinput.user.roles[_] == "role_${i}"\n\tsome x in input.items\n\tx.size > ${i}\n}\n\n` +
        `deny contains msg if {\n\tnot input.ok_${i}\n\tmsg := sprintf("bad %v", [input.name])\n}\n\n` +
        `obj_${i} := {"a": [1, 2.5, 1e3], "b": {"c": true, "d": null}, "s": {1, 2}}\n`;
      parts.push(chunk);
      size += chunk.length;
    }
    const m = parseModule(parts.join('\n'), 'big.rego');
    expect(m.rules.length).toBeGreaterThan(10_000);
    // Speed is measured by the benchmark, not asserted here; see README.md, "Rego in Warden's built-in engine".
  });
});
