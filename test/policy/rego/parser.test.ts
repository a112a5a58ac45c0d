/**
 * The Rego parser: each construct of the v1 grammar parses into the syntax tree the compiler
 * expects. Locations are stripped (`bare`) where a test is about shape; location tests are in
 * parser-errors.test.ts and at the end of this file.
 */
import { describe, expect, it } from 'vitest';
import {
  bodyToString,
  exprToString,
  packagePath,
  parseModule,
  parseQuery,
  parseTerm,
  refToString,
  ruleRef,
  ruleStaticPath,
  termToString,
  type Expr,
  type Module,
  type Rule,
  type Term,
} from '../../../src/policy/rego/ast/index.js';

/** Drops `loc` everywhere, so expected trees stay readable. */
function bare(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(bare);
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (k !== 'loc') out[k] = bare(v);
    return out;
  }
  return x;
}

const v = (name: string) => ({ type: 'var', name });
const s = (value: string) => ({ type: 'string', value });
const n = (value: number | bigint, raw = String(value)) => ({ type: 'number', value, raw });
const call = (op: string, args: unknown[], infix?: string) =>
  infix ? { type: 'call', op, opPath: op.split('.'), args, infix } : { type: 'call', op, opPath: op.split('.'), args };
const ref = (head: unknown, ...path: unknown[]) => ({ type: 'ref', head, path });
const t = (text: string): unknown => bare(parseTerm(text));
const q = (text: string): Expr[] => [...parseQuery(text)];
const mod = (body: string): Module => parseModule(`package test\n\n${body}\n`, 'test.rego');
const rule = (body: string, i = 0): Rule => mod(body).rules[i]!;

describe('terms', () => {
  it('parses scalars', () => {
    expect(t('null')).toEqual({ type: 'null' });
    expect(t('true')).toEqual({ type: 'boolean', value: true });
    expect(t('false')).toEqual({ type: 'boolean', value: false });
    expect(t('"a\\tb"')).toEqual(s('a\tb'));
    expect(t('`a\\tb`')).toEqual({ type: 'string', value: 'a\\tb', raw: true });
  });

  it('parses numbers: integers, fractions, exponents, negatives', () => {
    expect(t('42')).toEqual(n(42));
    expect(t('-7')).toEqual(n(-7, '-7'));
    expect(t('3.25')).toEqual(n(3.25));
    expect(t('1e3')).toEqual(n(1000, '1e3'));
    expect(t('2.5E-1')).toEqual(n(0.25, '2.5E-1'));
    expect(t('1.5e+2')).toEqual(n(150, '1.5e+2'));
    expect(t('0.5')).toEqual(n(0.5));
    expect(t('.5')).toEqual(n(0.5, '.5'));
    expect(t('-0')).toEqual(n(0, '-0'));
  });

  it('keeps integers beyond 2^53 exact as bigint', () => {
    expect(t('9007199254740993')).toEqual(n(9007199254740993n, '9007199254740993'));
    expect(t('-123456789012345678901234567890')).toEqual(n(-123456789012345678901234567890n, '-123456789012345678901234567890'));
    expect(t('1e30')).toEqual(n(10n ** 30n, '1e30'));
    expect(t('12345678901234567890.0')).toEqual(n(12345678901234567890n, '12345678901234567890.0'));
    // Within ±2^53 an integer is a plain number, however it was written.
    expect(t('9007199254740991')).toEqual(n(9007199254740991));
  });

  it('decodes string escapes, including surrogate pairs, as JSON does', () => {
    expect(t('"\\u00e9\\n\\"\\\\\\/\\b\\f\\r"')).toEqual(s('é\n"\\/\b\f\r'));
    expect(t('"\\ud83d\\ude00"')).toEqual(s('😀'));
    // An unpaired surrogate becomes U+FFFD, as Go's decoder (and so OPA) makes it.
    expect(t('"x\\ud83dy"')).toEqual(s('x\ufffdy'));
    expect(t('"😀"')).toEqual(s('😀'));
  });

  it('parses raw strings across lines without escapes', () => {
    expect(t('`line1\nline2 \\d+`')).toEqual({ type: 'string', value: 'line1\nline2 \\d+', raw: true });
  });

  it('parses arrays, objects, sets and the empty set', () => {
    expect(t('[1, "a", x]')).toEqual({ type: 'array', items: [n(1), s('a'), v('x')] });
    expect(t('[]')).toEqual({ type: 'array', items: [] });
    expect(t('{"a": 1, x: [2]}')).toEqual({
      type: 'object',
      entries: [
        [s('a'), n(1)],
        [v('x'), { type: 'array', items: [n(2)] }],
      ],
    });
    expect(t('{}')).toEqual({ type: 'object', entries: [] });
    expect(t('{1, 2,}')).toEqual({ type: 'set', items: [n(1), n(2)] });
    expect(t('set()')).toEqual({ type: 'set', items: [] });
  });

  it('parses multi-line terms with trailing commas', () => {
    const term = parseTerm('{\n  "a": [\n    1,\n    2,\n  ],\n  "b": {"c"},\n}');
    expect(termToString(term)).toBe('{"a": [1, 2], "b": {"c"}}');
  });

  it('parses refs with dots, brackets and variables', () => {
    expect(t('input.user.roles[i]["name"]')).toEqual(ref(v('input'), s('user'), s('roles'), v('i'), s('name')));
    expect(t('data.x[y.z]')).toEqual(ref(v('data'), s('x'), ref(v('y'), s('z'))));
    expect(t('input')).toEqual(v('input'));
    // Keywords are plain names after a dot.
    expect(t('input.in.if')).toEqual(ref(v('input'), s('in'), s('if')));
  });

  it('parses refs on composite and call heads', () => {
    expect(t('[1, 2][0]')).toEqual(ref({ type: 'array', items: [n(1), n(2)] }, n(0)));
    expect(t('f(x).y[0]')).toEqual(ref(call('f', [v('x')]), s('y'), n(0)));
  });

  it('does not join a term and a bracket separated by whitespace', () => {
    // `a [1]` is not a ref: the array starts a new term, which the body then rejects.
    expect(() => parseQuery('a [1]')).toThrow(/expected a newline or ";"/);
  });

  it('gives each wildcard a unique name', () => {
    expect(t('x[_][_]')).toEqual(ref(v('x'), { type: 'var', name: '$0', wildcard: true }, { type: 'var', name: '$1', wildcard: true }));
  });

  it('parses calls with dotted names', () => {
    expect(t('count(xs)')).toEqual(call('count', [v('xs')]));
    expect(t('strings.replace_n({"a": "b"}, s)')).toEqual(
      call('strings.replace_n', [{ type: 'object', entries: [[s('a'), s('b')]] }, v('s')]),
    );
    expect(t('data.lib.f()')).toEqual(call('data.lib.f', []));
    // `contains` is a keyword only in rule heads; elsewhere it names the built-in.
    expect(t('contains("abc", "b")')).toEqual(call('contains', [s('abc'), s('b')]));
  });

  it('desugars infix operators into OPA built-in calls', () => {
    expect(t('a + b')).toEqual(call('plus', [v('a'), v('b')], '+'));
    expect(t('a - b')).toEqual(call('minus', [v('a'), v('b')], '-'));
    expect(t('a * b / c % d')).toEqual(call('rem', [call('div', [call('mul', [v('a'), v('b')], '*'), v('c')], '/'), v('d')], '%'));
    expect(t('a == b')).toEqual(call('equal', [v('a'), v('b')], '=='));
    expect(t('a != b')).toEqual(call('neq', [v('a'), v('b')], '!='));
    expect(t('a < b')).toEqual(call('lt', [v('a'), v('b')], '<'));
    expect(t('a <= b')).toEqual(call('lte', [v('a'), v('b')], '<='));
    expect(t('a > b')).toEqual(call('gt', [v('a'), v('b')], '>'));
    expect(t('a >= b')).toEqual(call('gte', [v('a'), v('b')], '>='));
    expect(t('a & b')).toEqual(call('and', [v('a'), v('b')], '&'));
    expect(t('a | b')).toEqual(call('or', [v('a'), v('b')], '|'));
  });

  it('follows OPA precedence: in < comparison < | < & < + - < * / %', () => {
    expect(termToString(parseTerm('a + b * c == d | e & f'))).toBe('a + b * c == d | e & f');
    expect(t('a + b * c')).toEqual(call('plus', [v('a'), call('mul', [v('b'), v('c')], '*')], '+'));
    expect(t('a | b & c')).toEqual(call('or', [v('a'), call('and', [v('b'), v('c')], '&')], '|'));
    expect(t('a == b | c')).toEqual(call('equal', [v('a'), call('or', [v('b'), v('c')], '|')], '=='));
    expect(t('a & b + c')).toEqual(call('and', [v('a'), call('plus', [v('b'), v('c')], '+')], '&'));
    expect(t('x in a | b')).toEqual({ type: 'member', value: v('x'), collection: call('or', [v('a'), v('b')], '|') });
    expect(t('a - b - c')).toEqual(call('minus', [call('minus', [v('a'), v('b')], '-'), v('c')], '-'));
    expect(t('(a + b) * c')).toEqual(call('mul', [call('plus', [v('a'), v('b')], '+'), v('c')], '*'));
  });

  it('reads "-" after a term as subtraction and before a number as its sign', () => {
    expect(t('x -1')).toEqual(call('minus', [v('x'), n(1)], '-'));
    expect(t('[1, -1]')).toEqual({ type: 'array', items: [n(1), n(-1, '-1')] });
    expect(t('x - -1')).toEqual(call('minus', [v('x'), n(-1, '-1')], '-'));
  });

  it('parses membership with and without a key', () => {
    expect(t('x in xs')).toEqual({ type: 'member', value: v('x'), collection: v('xs') });
    expect(q('k, v in obj')[0]).toMatchObject({ kind: 'term', term: { type: 'member', key: { name: 'k' }, value: { name: 'v' } } });
    // Inside a list the comma separates elements.
    expect(t('[k, v in obj]')).toEqual({ type: 'array', items: [v('k'), { type: 'member', value: v('v'), collection: v('obj') }] });
  });

  it('parses comprehensions, preferring them over "|" calls', () => {
    expect(t('[x | x := xs[_]]')).toMatchObject({ type: 'arraycomp', term: v('x'), body: [{ kind: 'assign' }] });
    expect(t('{x | some x in xs}')).toMatchObject({ type: 'setcomp', term: v('x'), body: [{ kind: 'somein' }] });
    expect(t('{k: v | some k, v in o}')).toMatchObject({ type: 'objectcomp', key: v('k'), value: v('v'), body: [{ kind: 'somein' }] });
    expect(t('{a + 1: b | b := a}')).toMatchObject({ type: 'objectcomp', key: { type: 'call', op: 'plus' } });
    expect(t('[x | y]')).toMatchObject({ type: 'arraycomp', term: v('x'), body: [{ kind: 'term', term: v('y') }] });
    // A body that cannot be one falls back to a list with an `or` call, as in OPA.
    expect(t('[a | b, c]')).toEqual({ type: 'array', items: [call('or', [v('a'), v('b')], '|'), v('c')] });
    expect(t('{a | b, c}')).toEqual({ type: 'set', items: [call('or', [v('a'), v('b')], '|'), v('c')] });
    expect(termToString(parseTerm('[x | x := xs[_]; x > 1\n x < 5]'))).toBe('[x | x := xs[_]; x > 1; x < 5]');
  });
});

describe('expressions', () => {
  it('parses assignment, unification and comparison', () => {
    expect(bare(q('x := 1'))).toEqual([{ kind: 'assign', left: v('x'), right: n(1), negated: false, with: [] }]);
    expect(bare(q('[a, b] = [1, 2]'))).toEqual([
      {
        kind: 'unify',
        left: { type: 'array', items: [v('a'), v('b')] },
        right: { type: 'array', items: [n(1), n(2)] },
        negated: false,
        with: [],
      },
    ]);
    expect(bare(q('x == 1'))).toEqual([{ kind: 'term', term: call('equal', [v('x'), n(1)], '=='), negated: false, with: [] }]);
  });

  it('separates expressions by newlines and semicolons', () => {
    expect(q('a; b\nc').map(exprToString)).toEqual(['a', 'b', 'c']);
  });

  it('parses not', () => {
    expect(bare(q('not input.x'))).toEqual([{ kind: 'term', term: ref(v('input'), s('x')), negated: true, with: [] }]);
    expect(q('not x = 1')[0]).toMatchObject({ kind: 'unify', negated: true });
    // `not.x` is a reference to a variable named not.
    expect(q('not.x')[0]).toMatchObject({ kind: 'term', negated: false, term: { type: 'ref', head: { name: 'not' } } });
  });

  it('parses some declarations', () => {
    expect(bare(q('some x, y'))).toEqual([{ kind: 'some', vars: [v('x'), v('y')], negated: false, with: [] }]);
  });

  it('parses some … in …', () => {
    expect(bare(q('some x in xs'))).toEqual([{ kind: 'somein', value: v('x'), collection: v('xs'), negated: false, with: [] }]);
    expect(bare(q('some k, v in input.o'))).toEqual([
      { kind: 'somein', key: v('k'), value: v('v'), collection: ref(v('input'), s('o')), negated: false, with: [] },
    ]);
    expect(q('some [a, b] in pairs')[0]).toMatchObject({ kind: 'somein', value: { type: 'array' } });
  });

  it('parses every', () => {
    expect(bare(q('every x in xs { x > 0 }'))).toEqual([
      {
        kind: 'every',
        value: v('x'),
        domain: v('xs'),
        body: [{ kind: 'term', term: call('gt', [v('x'), n(0)], '>'), negated: false, with: [] }],
        negated: false,
        with: [],
      },
    ]);
    expect(q('every k, v in o {\n  k != v\n  v\n}')[0]).toMatchObject({ kind: 'every', key: v('k'), value: v('v'), body: [{}, {}] });
  });

  it('parses with modifiers', () => {
    expect(bare(q('data.p with input as {"a": 1} with data.q.r as 2 with count as mock')[0])).toEqual({
      kind: 'term',
      term: ref(v('data'), s('p')),
      negated: false,
      with: [
        { target: v('input'), value: { type: 'object', entries: [[s('a'), n(1)]] } },
        { target: ref(v('data'), s('q'), s('r')), value: n(2) },
        { target: v('count'), value: v('mock') },
      ],
    });
    expect(q('not p with input.x as 1')[0]).toMatchObject({ negated: true, with: [{ target: { type: 'ref' } }] });
    expect(q('some x in xs with input as 1')[0]).toMatchObject({ kind: 'somein', with: [{}] });
  });

  it('prints expressions back as Rego', () => {
    const text = 'not x in {1, 2} with input as [1]';
    expect(bodyToString(parseQuery(text))).toBe(text);
  });
});

describe('modules', () => {
  it('parses the package and the path helpers', () => {
    const m = parseModule('package a.b["c-d"]\n\nx.y[z] := 1 if z := "k"', 'p.rego');
    expect(packagePath(m)).toEqual(['a', 'b', 'c-d']);
    const r = m.rules[0]!;
    expect(refToString(r.head.ref)).toBe('x.y[z]');
    expect(bare(ruleRef(m, r))).toEqual([s('a'), s('b'), s('c-d'), s('x'), s('y'), v('z')]);
    expect(ruleStaticPath(m, r)).toEqual(['a', 'b', 'c-d', 'x', 'y']);
  });

  it('parses imports', () => {
    const m = parseModule(
      [
        'package p',
        'import rego.v1',
        'import future.keywords.in',
        'import future.keywords',
        'import data.lib.strings',
        'import data.lib.roles as r',
        'import input.user',
        'import input',
        'import data["x-y"].z',
      ].join('\n'),
      'p.rego',
    );
    expect(m.imports.map((i) => [termToString(i.path), i.name, i.keyword, i.alias])).toEqual([
      ['rego.v1', '', true, undefined],
      ['future.keywords.in', '', true, undefined],
      ['future.keywords', '', true, undefined],
      ['data.lib.strings', 'strings', false, undefined],
      ['data.lib.roles', 'r', false, 'r'],
      ['input.user', 'user', false, undefined],
      ['input', 'input', false, undefined],
      ['data["x-y"].z', 'z', false, undefined],
    ]);
  });

  it('drops comments', () => {
    const m = parseModule('# header\npackage p # trailing\n\n# before\nallow if { # open\n  true # inside\n} # after\n', 'p.rego');
    expect(m.rules).toHaveLength(1);
    expect(m.rules[0]!.body.map(exprToString)).toEqual(['true']);
  });

  it('parses complete rules with :=, = and if', () => {
    expect(bare(rule('p := 1'))).toEqual({
      head: { kind: 'complete', ref: [v('p')], name: 'p', value: n(1), assign: true },
      body: [],
      default: false,
    });
    expect(rule('p = 1')).toMatchObject({ head: { kind: 'complete', assign: false, value: { value: 1 } } });
    expect(bare(rule('allow if input.admin'))).toEqual({
      head: { kind: 'complete', ref: [v('allow')], name: 'allow', value: { type: 'boolean', value: true }, assign: false },
      body: [{ kind: 'term', term: ref(v('input'), s('admin')), negated: false, with: [] }],
      default: false,
    });
    expect(rule('x := y if {\n  y := 2\n  y > 1\n}').body).toHaveLength(2);
    expect(rule('p := 7 if { true }').head.value).toMatchObject({ value: 7 });
  });

  it('parses a single expression after if, including every and some', () => {
    expect(rule('p if every x in [1] { x > 0 }').body[0]).toMatchObject({ kind: 'every' });
    expect(rule('p if some x in [1]').body[0]).toMatchObject({ kind: 'somein' });
    // A set literal on its own is a braced body, but a longer expression starting with one is not.
    expect(rule('p if { 1, 2 } == x').body[0]).toMatchObject({ kind: 'term', term: { type: 'call', op: 'equal' } });
    expect(rule('p if { x }').body).toEqual([expect.objectContaining({ kind: 'term', term: expect.objectContaining({ name: 'x' }) })]);
  });

  it('parses default rules', () => {
    expect(bare(rule('default allow := false'))).toEqual({
      head: { kind: 'complete', ref: [v('allow')], name: 'allow', value: { type: 'boolean', value: false }, assign: true },
      body: [],
      default: true,
    });
    expect(rule('default f(_) := 1')).toMatchObject({ default: true, head: { kind: 'function', args: [{ wildcard: true }] } });
    expect(rule('default a.b.c = {"x": [1]}')).toMatchObject({ default: true, head: { kind: 'complete', ref: [{}, {}, {}] } });
  });

  it('parses partial set rules with contains', () => {
    expect(bare(rule('deny contains msg if {\n  msg := "no"\n}'))).toMatchObject({
      head: { kind: 'set', ref: [v('deny')], name: 'deny', key: v('msg'), assign: false },
      default: false,
    });
    expect(rule('s contains "a"')).toMatchObject({ head: { kind: 'set', key: { value: 'a' } }, body: [] });
    expect(bare(rule('a.b.c contains x if some x in [1]').head)).toEqual({
      kind: 'set',
      ref: [v('a'), s('b'), s('c')],
      name: 'a',
      key: v('x'),
      assign: false,
    });
  });

  it('parses object rules and ref heads', () => {
    expect(bare(rule('p[k] := v if some k, v in input').head)).toEqual({
      kind: 'object',
      ref: [v('p'), v('k')],
      name: 'p',
      value: v('v'),
      assign: true,
    });
    expect(rule('a.b[x] := y if { x := 1; y := 2 }').head).toMatchObject({ kind: 'object', ref: [v('a'), s('b'), v('x')] });
    expect(rule('p[x] if x := 1').head).toMatchObject({ kind: 'object', value: { value: true } });
    // A ground ref head is a complete rule at that path.
    expect(rule('a.b.c := 1').head).toMatchObject({ kind: 'complete', ref: [v('a'), s('b'), s('c')] });
    expect(rule('p[0] := true').head).toMatchObject({ kind: 'complete', ref: [v('p'), n(0)] });
    expect(rule('ms[m.z] := m if m := input.xs[_]').head).toMatchObject({ kind: 'object', ref: [v('ms'), ref(v('m'), s('z'))] });
  });

  it('parses functions, with several definitions', () => {
    const m = mod('f(x) := x + 1 if x > 0\nf(x) := 0 if x <= 0\ng(_, [a, b]) if a == b\nfoo["bar"](x) := x');
    expect(m.rules.map((r) => [r.head.kind, refToString(r.head.ref), r.head.args!.map(termToString).join(', ')])).toEqual([
      ['function', 'f', 'x'],
      ['function', 'f', 'x'],
      ['function', 'g', '_, [a, b]'],
      ['function', 'foo.bar', 'x'],
    ]);
    expect(m.rules[2]!.head.value).toMatchObject({ type: 'boolean', value: true });
    expect(m.rules[0]!.head.value).toMatchObject({ type: 'call', op: 'plus' });
    expect(rule('f(x) := y').body).toEqual([]);
  });

  it('parses else chains', () => {
    const r = rule('size(x) := "small" if {\n  x < 10\n} else := "medium" if {\n  x < 100\n} else := "large"');
    expect(r.head.value).toMatchObject({ value: 'small' });
    expect(r.else!.head.value).toMatchObject({ value: 'medium' });
    expect(r.else!.body).toHaveLength(1);
    expect(r.else!.head.args).toEqual(r.head.args);
    expect(r.else!.else!.head.value).toMatchObject({ value: 'large' });
    expect(r.else!.else!.body).toEqual([]);
    expect(r.else!.else!.else).toBeUndefined();
    const plain = rule('p if false else = 3 if true else if { true }');
    expect(plain.else!.head).toMatchObject({ value: { value: 3 }, assign: false });
    expect(plain.else!.else!.head.value).toMatchObject({ type: 'boolean', value: true });
  });

  it('gives wildcard arguments of else and extra bodies their own names', () => {
    const r = rule('f(_) := 1 if false else := 2');
    expect(r.head.args![0]).toMatchObject({ wildcard: true });
    expect(r.else!.head.args![0]).toMatchObject({ wildcard: true });
    expect((r.else!.head.args![0] as { name: string }).name).not.toBe((r.head.args![0] as { name: string }).name);
  });

  it('parses chained bodies as further definitions of the same rule', () => {
    const m = mod('p if { input.a } { input.b }');
    expect(m.rules).toHaveLength(2);
    expect(m.rules.map((r) => bodyToString(r.body))).toEqual(['input.a', 'input.b']);
    expect(m.rules[1]!.head).toEqual(m.rules[0]!.head);
  });

  it('accepts not { … } bodies where rego.v2 or future.keywords.not is imported', () => {
    const m = parseModule('package p\nimport future.keywords.not\np if {\n  not { input.a; input.b }\n}', 'p.rego');
    expect(bare(m.rules[0]!.body[0])).toMatchObject({ kind: 'notbody', negated: true, body: [{ kind: 'term' }, { kind: 'term' }] });
    const v2 = parseModule('package p\nimport rego.v2\np if not { false }', 'p.rego');
    expect(v2.rules[0]!.body[0]).toMatchObject({ kind: 'notbody' });
  });

  it('allows whitespace and newlines inside brackets and calls', () => {
    const r = rule('p := count([\n  1,\n  2,\n]) + max(\n  [3]\n)');
    expect(termToString(r.head.value!)).toBe('count([1, 2]) + max([3])');
  });
});

describe('locations', () => {
  it('records file, row and column of every node', () => {
    const m = parseModule('package p\n\nallow if {\n\tinput.x == 1\n}\n', 'authz.rego');
    expect(m.package.loc).toEqual({ file: 'authz.rego', row: 1, col: 1 });
    const r = m.rules[0]!;
    expect(r.loc).toEqual({ file: 'authz.rego', row: 3, col: 1 });
    const e = r.body[0]!;
    expect(e.loc).toEqual({ file: 'authz.rego', row: 4, col: 2 });
    const eq = (e as { term: Term }).term as Extract<Term, { type: 'call' }>;
    expect(eq.loc).toEqual({ file: 'authz.rego', row: 4, col: 2 });
    expect(eq.args[1]!.loc).toEqual({ file: 'authz.rego', row: 4, col: 13 });
    const x = (eq.args[0] as Extract<Term, { type: 'ref' }>).path[0]!;
    expect(x.loc).toEqual({ file: 'authz.rego', row: 4, col: 8 });
  });

  it('counts columns in code points after non-ASCII text', () => {
    const body = parseQuery('"😀é" == x', 'q');
    const c = (body[0] as { term: Extract<Term, { type: 'call' }> }).term;
    // The emoji is one column, as in OPA (which counts runes), not two UTF-16 units.
    expect(c.args[1]!.loc).toEqual({ file: 'q', row: 1, col: 9 });
  });
});
