import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli as run } from './helpers.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-policy-cli-'));
  mkdirSync(join(dir, 'policy', 'limits'), { recursive: true });
  writeFileSync(
    join(dir, 'policy', 'authz.rego'),
    `package authz
import rego.v1
default allow := false
allow if input.user in data.limits.admins
`,
  );
  writeFileSync(join(dir, 'policy', 'limits', 'data.json'), JSON.stringify({ admins: ['alice'] }));
  writeFileSync(
    join(dir, 'policy', 'authz_test.rego'),
    `package authz_test
import rego.v1
test_admin if data.authz.allow with input as {"user": "alice"}
test_other if not data.authz.allow with input as {"user": "bob"}
`,
  );
  writeFileSync(join(dir, 'input.json'), JSON.stringify({ user: 'alice' }));
  mkdirSync(join(dir, 'failing'));
  writeFileSync(
    join(dir, 'failing', 'x_test.rego'),
    `package x
import rego.v1
test_ok if true
test_bad if 1 == 2
`,
  );
  mkdirSync(join(dir, 'broken'));
  writeFileSync(join(dir, 'broken', 'b.rego'), 'package b\nimport rego.v1\np if {\n\tx > 1\n}\n');
});

describe('warden policy eval', () => {
  it('prints what opa eval --format json prints', async () => {
    const r = await run(['eval', '-d', join(dir, 'policy'), '-i', join(dir, 'input.json'), 'data.authz.allow']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({
      result: [{ expressions: [{ value: true, text: 'data.authz.allow', location: { row: 1, col: 1 } }] }],
    });
  });

  it('includes bindings when the query has variables', async () => {
    const r = await run(['eval', '-d', join(dir, 'policy'), 'x := data.limits.admins[_]']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { result: Array<{ bindings: unknown; expressions: unknown[] }> };
    expect(out.result).toHaveLength(1);
    expect(out.result[0]!.bindings).toEqual({ x: 'alice' });
    expect(out.result[0]!.expressions).toEqual([{ value: true, text: 'x := data.limits.admins[_]', location: { row: 1, col: 1 } }]);
  });

  it('prints values with sorted keys and exact big integers, in OPA layout', async () => {
    const r = await run(['eval', '-d', join(dir, 'policy'), '{"b": 18446744073709551617, "a": {1, 2}}']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        '{',
        '  "result": [',
        '    {',
        '      "expressions": [',
        '        {',
        '          "value": {',
        '            "a": [',
        '              1,',
        '              2',
        '            ],',
        '            "b": 18446744073709551617',
        '          },',
        '          "text": "{\\"b\\": 18446744073709551617, \\"a\\": {1, 2}}",',
        '          "location": {',
        '            "row": 1,',
        '            "col": 1',
        '          }',
        '        }',
        '      ]',
        '    }',
        '  ]',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('prints {} when the query is undefined', async () => {
    const r = await run(['eval', '-d', join(dir, 'policy'), 'data.authz.nothing']);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('{}');
  });

  // OPA's rego package captures the value of a single-expression query without iteration, so a
  // rule or document whose value is false (or null) is defined and printed; only a condition that
  // fails (`1 = 2`), or a false value in a query of several expressions or with iteration, is
  // undefined (OPA's rewriteQueryToCaptureValue).
  it('prints false and null values of a single-expression query, as opa eval does', async () => {
    const values = mkdtempSync(join(tmpdir(), 'warden-policy-cli-false-'));
    writeFileSync(join(values, 'w.rego'), 'package w\nimport rego.v1\ndefault allow := false\nok := true\n');
    writeFileSync(join(values, 'data.json'), JSON.stringify({ flag: false, none: null, list: [true, false, null] }));
    const valueOf = async (query: string): Promise<unknown[] | 'undefined'> => {
      const r = await run(['eval', '-d', values, query]);
      expect(r.code, `${query}: ${r.err}`).toBe(0);
      const out = JSON.parse(r.out) as { result?: Array<{ expressions: Array<{ value: unknown; text: string }> }> };
      if (out.result === undefined) return 'undefined';
      for (const res of out.result) expect(res.expressions.map((e) => e.text)).toEqual(query.split('; '));
      return out.result.map((res) => (res.expressions.length === 1 ? res.expressions[0]!.value : res.expressions.map((e) => e.value)));
    };
    expect(await valueOf('data.w.allow')).toEqual([false]);
    expect(await valueOf('data.flag')).toEqual([false]);
    expect(await valueOf('data.none')).toEqual([null]);
    expect(await valueOf('false')).toEqual([false]);
    expect(await valueOf('1 == 2')).toEqual([false]);
    expect(await valueOf('data.w.allow with input as {"x": 1}')).toEqual([false]);
    // Conditions that fail, and false values where OPA checks the captured value.
    expect(await valueOf('1 = 2')).toBe('undefined');
    expect(await valueOf('not data.w.ok')).toBe('undefined');
    expect(await valueOf('data.w.ok; data.w.allow')).toBe('undefined');
    expect(await valueOf('data.w.ok; data.none')).toEqual([[true, null]]);
    expect(await valueOf('data.list[_]')).toEqual([true, null]);
    expect(await valueOf('data.w.nothing')).toBe('undefined');
  });

  it('reports errors on one line without a stack trace', async () => {
    const r = await run(['eval', '-d', join(dir, 'broken'), 'data.b.p']);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toMatch(/b\.rego:4:\d+: rego_unsafe_var_error: var x is unsafe$/);
    expect(r.err).not.toContain('    at ');
  });

  it('an input file that is missing or does not parse is an error (exit 1), located, never quoted', async () => {
    writeFileSync(join(dir, 'bad.yaml'), 'a: [1\nb: CANARY-SECRET-7f3a\n');
    writeFileSync(join(dir, 'short.json'), '{"token": "CANARY-SECRET-7f3a", ');
    const yaml = await run(['eval', '-i', join(dir, 'bad.yaml'), 'input']);
    expect(yaml.code).toBe(1);
    expect(yaml.err.trim()).toBe(`${join(dir, 'bad.yaml')}:2:1: input_invalid: cannot parse input: not valid YAML`);
    const json = await run(['eval', '-i', join(dir, 'short.json'), 'input']);
    expect(json.code).toBe(1);
    expect(json.err.trim()).toBe(`${join(dir, 'short.json')}:1:33: input_invalid: cannot parse input: not valid JSON`);
    writeFileSync(join(dir, 'dup.yaml'), 'a: 1\nb:\n  c: CANARY-SECRET-7f3a\n  c: 2\n');
    const dup = await run(['eval', '-i', join(dir, 'dup.yaml'), 'input']);
    expect(dup.code).toBe(1);
    expect(dup.err.trim()).toBe(`${join(dir, 'dup.yaml')}:4:3: input_invalid: cannot parse input: not valid YAML (duplicate key: already set at line 3, column 3; keys must be unique)`);
    expect(dup.err).not.toContain('CANARY');
    const missing = await run(['eval', '-i', join(dir, 'nope.json'), 'input']);
    expect(missing.code).toBe(1);
    expect(missing.err.trim()).toBe(`${join(dir, 'nope.json')}: file_unreadable: cannot read input file (ENOENT)`);
    // A file named neither .json nor .yaml is read as stdin is: JSON, else YAML, both named when neither.
    writeFileSync(join(dir, 'input'), 'user: alice\nb: CANARY-SECRET-7f3a\nuser: bob\n');
    const unnamed = await run(['eval', '-i', join(dir, 'input'), 'input']);
    expect([unnamed.code, unnamed.out, unnamed.err.trim()]).toEqual([1, '', `${join(dir, 'input')}:3:1: input_invalid: cannot parse input: not valid YAML (duplicate key: already set at line 1, column 1; keys must be unique); not JSON either (it breaks at line 1, column 1)`]);
    writeFileSync(join(dir, 'input'), 'user: alice\n');
    const yamlUnnamed = await run(['eval', '-i', join(dir, 'input'), 'input.user']);
    expect([yamlUnnamed.code, yamlUnnamed.err, JSON.parse(yamlUnnamed.out).result[0].expressions[0].value]).toEqual([0, '', 'alice']);
    // A .json file is JSON only.
    writeFileSync(join(dir, 'yaml-in.json'), 'user: alice\n');
    const named = await run(['eval', '-i', join(dir, 'yaml-in.json'), 'input']);
    expect([named.code, named.err.trim()]).toEqual([1, `${join(dir, 'yaml-in.json')}:1:1: input_invalid: cannot parse input: not valid JSON`]);
    expect(unnamed.err).not.toContain('CANARY');
    writeFileSync(join(dir, 'tagged.yaml'), 'user: alice\ntoken: !vault CANARY-SECRET-7f3a\n');
    const tagged = await run(['eval', '-i', join(dir, 'tagged.yaml'), 'input']);
    expect(tagged.code).toBe(1);
    expect(tagged.err.trim()).toBe(`${join(dir, 'tagged.yaml')}:2:8: input_invalid: cannot parse input: unknown YAML tag !vault`);
    expect(tagged.err + tagged.out).not.toContain('CANARY');
    writeFileSync(join(dir, 'latin1.json'), Buffer.concat([Buffer.from('{"user": "ren'), Buffer.from([0xe9]), Buffer.from('"}')]));
    const latin1 = await run(['eval', '-i', join(dir, 'latin1.json'), 'input']);
    expect([latin1.code, latin1.err.trim()]).toEqual([1, `${join(dir, 'latin1.json')}:1:14: input_invalid: cannot parse input: not valid UTF-8`]);
    expect(yaml.err + json.err).not.toContain('CANARY');
    expect(yaml.err + json.err + missing.err).not.toContain('Usage:');
  });

  it('explains usage', async () => {
    const r = await run(['eval', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage: warden policy eval');
    const bad = await run(['eval', '-d']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--data needs a value');
    // Names every object has are unknown commands too.
    for (const cmd of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const odd = await run([cmd]);
      expect([odd.code, odd.err.split('\n')[0]], cmd).toEqual([2, `warden: unknown command '${cmd}'`]);
    }
  });
});

describe('warden policy test', () => {
  it('runs test_ rules and passes', async () => {
    const r = await run(['test', join(dir, 'policy'), '-v']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('data.authz_test.test_admin: PASS');
    expect(r.out).toContain('data.authz_test.test_other: PASS');
    expect(r.out).toContain('PASS: 2/2');
    expect(r.out.trim().split('\n').pop()).toBe('2 passed, 0 failed');
  });

  it('lists failures and exits 1', async () => {
    const r = await run(['test', join(dir, 'failing')]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('data.x.test_bad: FAIL');
    expect(r.out).not.toContain('data.x.test_ok: PASS');
    expect(r.out.trim().split('\n').pop()).toBe('1 passed, 1 failed');
  });

  it('evaluates as the sidecar does: a failed built-in is an ERROR, not undefined (--lenient: as opa test)', async () => {
    // A deny-list policy whose check fails: undefined under 'not' would allow (OPA's default); the
    // sidecar answers policy_error (policy.strict_builtin_errors), and its test must not pass.
    const strictDir = join(dir, 'strict');
    mkdirSync(strictDir, { recursive: true });
    writeFileSync(
      join(strictDir, 'p.rego'),
      `package p
import rego.v1
allow if not blocked
blocked if 100 / (count(input.vars) - 2) < 10
`,
    );
    writeFileSync(join(strictDir, 'p_test.rego'), 'package p_test\nimport rego.v1\ntest_two_vars if data.p.allow with input as {"vars": [1, 2]}\n');
    const strict = await run(['test', strictDir]);
    expect(strict.code).toBe(1);
    expect(strict.out).toContain('data.p_test.test_two_vars: ERROR');
    expect(strict.out).toMatch(/divide by zero/);
    expect(strict.out.trim().split('\n').pop()).toBe('0 passed, 1 failed');
    const lenient = await run(['test', '--lenient', strictDir]);
    expect([lenient.code, lenient.out.trim().split('\n').pop()]).toEqual([0, '1 passed, 0 failed']);
  });

  it('exits 1 on a compile error', async () => {
    const r = await run(['test', join(dir, 'broken')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('rego_unsafe_var_error');
  });
});

describe('warden policy check', () => {
  it('passes good policies and reports file:line:col for bad ones', async () => {
    expect((await run(['check', join(dir, 'policy')])).code).toBe(0);
    const r = await run(['check', join(dir, 'broken')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^.*b\.rego:4:\d+: rego_unsafe_var_error: /);
  });

  it('reports the syntax error of every file', async () => {
    const two = mkdtempSync(join(tmpdir(), 'warden-policy-cli-two-'));
    writeFileSync(join(two, 'a.rego'), 'package a\np if {\n');
    writeFileSync(join(two, 'b.rego'), 'package b\nq := [1,\n');
    const r = await run(['check', two]);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/a\.rego:\d+:\d+: rego_parse_error: /);
    expect(lines[1]).toMatch(/b\.rego:\d+:\d+: rego_parse_error: /);
  });

  it('says what a missing path is', async () => {
    const r = await run(['check', join(dir, 'nope')]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${join(dir, 'nope')}: rego_compile_error: no such file or directory\n`);
  });

  // README: errors print as file:line:col: code: message, or file: code: message when the
  // problem is the file as a whole. Data files are read by eval, test and check alike.
  it('reports data file errors as file:line:col: code: message in eval, test and check', async () => {
    const d = mkdtempSync(join(tmpdir(), 'warden-policy-cli-data-'));
    mkdirSync(join(d, 'json'));
    mkdirSync(join(d, 'yaml'));
    mkdirSync(join(d, 'merge', 'a'), { recursive: true });
    writeFileSync(join(d, 'json', 'data.json'), '{"a": 1,\n "token": CANARY-SECRET-7f3a}\n');
    writeFileSync(join(d, 'yaml', 'data.yaml'), 'a: [1\nb: CANARY-SECRET-7f3a\n');
    writeFileSync(join(d, 'merge', 'data.json'), '{"a": {"k": 1}}');
    writeFileSync(join(d, 'merge', 'a', 'data.json'), '{"k": 2}');
    const cases: Array<[string, string]> = [
      [join(d, 'json'), `${join(d, 'json', 'data.json')}:2:11: rego_parse_error: cannot parse data file: not valid JSON`],
      [join(d, 'yaml'), `${join(d, 'yaml', 'data.yaml')}:2:1: rego_parse_error: cannot parse data file: not valid YAML`],
      [join(d, 'merge'), `${join(d, 'merge', 'data.json')}: rego_compile_error: merge error: data.a.k is defined twice`],
    ];
    for (const [path, line] of cases) {
      for (const argv of [['eval', '-d', path, 'data'], ['test', path], ['check', path]]) {
        const r = await run(argv);
        expect(r.code, argv.join(' ')).toBe(1);
        expect(r.err.split('\n')[0], argv.join(' ')).toBe(line);
        expect(r.err).not.toContain('CANARY');
      }
    }
  });

  it('says whether the decision cache applies and on which input paths (tests excluded, as the sidecar loads them)', async () => {
    const r = await run(['check', join(dir, 'policy')]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toBe('decision cache: applies, keyed on input.user\n');
  });

  it('says why the decision cache does not apply, with the location', async () => {
    const clock = mkdtempSync(join(tmpdir(), 'warden-policy-cli-clock-'));
    writeFileSync(join(clock, 'c.rego'), 'package c\nimport rego.v1\nfresh if time.now_ns() - input.at < 1000\n');
    const r = await run(['check', clock]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`decision cache: does not apply: calls time.now_ns at ${join(clock, 'c.rego')}:3:10\n`);
  });

  it('prints nothing about the cache when there are errors', async () => {
    const r = await run(['check', join(dir, 'broken')]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
  });

  // JSON.parse rounds an integer past 2^53: two account IDs that round alike compared equal, in
  // a data file (serve's loader too) and in an eval input, while json.unmarshal kept them exact.
  it('integers past 2^53 in a data file and in the input stay exact', async () => {
    const big = mkdtempSync(join(tmpdir(), 'warden-policy-cli-big-'));
    mkdirSync(join(big, 'p'));
    writeFileSync(join(big, 'p', 'data.json'), '{"blocked": [9007199254740993]}');
    writeFileSync(join(big, 'p', 'b.rego'), 'package b\nimport rego.v1\nblocked if input.account in data.blocked\n');
    writeFileSync(join(big, 'in.json'), '{"account": 9007199254740992}');
    writeFileSync(join(big, 'in-blocked.json'), '{"account": 9007199254740993}');
    const other = await run(['eval', '-d', join(big, 'p'), '-i', join(big, 'in.json'), 'data.b.blocked']);
    expect([other.code, other.err, other.out]).toEqual([0, '', '{}\n']);
    const same = await run(['eval', '-d', join(big, 'p'), '-i', join(big, 'in-blocked.json'), 'data.b.blocked']);
    expect(JSON.parse(same.out).result[0].expressions[0].value).toBe(true);
    const echoed = await run(['eval', '-d', join(big, 'p'), '-i', join(big, 'in.json'), 'input.account']);
    expect(echoed.out).toContain('"value": 9007199254740992,');
    const data = await run(['eval', '-d', join(big, 'p'), 'data.blocked[0]']);
    expect(data.out).toContain('"value": 9007199254740993,');
  });

  it('an input too deep for the exact parser is refused as too deep, not as "not valid JSON"', async () => {
    const deep = mkdtempSync(join(tmpdir(), 'warden-policy-cli-deep-'));
    writeFileSync(join(deep, 'in.json'), `${'['.repeat(6000)}1234567890123456789${']'.repeat(6000)}`);
    const r = await run(['eval', '-i', join(deep, 'in.json'), 'input']);
    expect([r.code, r.err]).toEqual([1, `${join(deep, 'in.json')}: input_invalid: cannot parse input: nested deeper than 1000 levels\n`]);
    // Without a long number (JSON.parse reads it), the same refusal, naming the file.
    writeFileSync(join(deep, 'plain.json'), `${'['.repeat(1500)}1${']'.repeat(1500)}`);
    const p = await run(['eval', '-i', join(deep, 'plain.json'), 'input']);
    expect([p.code, p.err]).toEqual([1, `${join(deep, 'plain.json')}: input_invalid: cannot parse input: nested deeper than 1000 levels\n`]);
  });
});

describe('warden policy eval -i - (stdin, read through the CLI\'s Io)', () => {
  const evalStdin = (query: string, stdin: string) => run(['eval', '-d', join(dir, 'policy'), '-i', '-', query], stdin);

  it('reads the input from the stdin it is given, JSON with exact integers', async () => {
    const r = await evalStdin('data.authz.allow', '{"user": "alice"}');
    expect([r.code, r.err, JSON.parse(r.out).result[0].expressions[0].value]).toEqual([0, '', true]);
    const big = await evalStdin('input.n', '{"n": 9007199254740993}');
    expect(big.out).toContain('"value": 9007199254740993');
  });

  it('YAML whose first key is quoted is YAML, not broken JSON; so is a YAML flow mapping', async () => {
    for (const doc of ['"user": alice\n', "'user': alice\n", '{user: alice}\n', '"user": alice\nroles: [a, b]\n']) {
      const r = await evalStdin('data.authz.allow', doc);
      expect([doc, r.code, r.err, r.out ? JSON.parse(r.out).result[0].expressions[0].value : r.out]).toEqual([doc, 0, '', true]);
    }
  });

  it('a document that is neither is named in the format it looks like, at its line, never quoted', async () => {
    const yaml = await evalStdin('input', '"user": alice\nrole: sk-proj-CANARYabcdefghijklmnopqrstuv\nroles: [a\n');
    expect([yaml.code, yaml.out, yaml.err]).toEqual([1, '', 'stdin:4:1: input_invalid: cannot parse input: not valid YAML; not JSON either (it breaks at line 1, column 7)\n']);
    // Cut off: broken as JSON and as a YAML flow mapping; said as JSON, where JSON breaks (its end).
    const json = await evalStdin('input', '{\n  "user": "alice",\n  "token": "sk-proj-CANARYabcdefghijklmnopqrstuv');
    expect([json.code, json.out, json.err]).toEqual([1, '', 'stdin:3:49: input_invalid: cannot parse input: not valid JSON; not YAML either (it breaks at line 3, column 49)\n']);
  });

  it('YAML with a repeated key is the YAML error (the key repeated, at its line, and where it was set), not a JSON one', async () => {
    const block = await evalStdin('input', 'user: alice\nrole: CANARY-SECRET-7f3a\nuser: bob\n');
    expect([block.code, block.out, block.err]).toEqual([1, '', 'stdin:3:1: input_invalid: cannot parse input: not valid YAML (duplicate key: already set at line 1, column 1; keys must be unique); not JSON either (it breaks at line 1, column 1)\n']);
    // A flow mapping starts as JSON does: it was said as broken JSON, at the first unquoted key.
    const flow = await evalStdin('input', '{user: alice, token: CANARY-SECRET-7f3a,\n user: bob}\n');
    expect([flow.code, flow.out, flow.err]).toEqual([1, '', 'stdin:2:2: input_invalid: cannot parse input: not valid YAML (duplicate key: already set at line 1, column 2; keys must be unique); not JSON either (it breaks at line 1, column 2)\n']);
    // A tag Warden does not read is YAML's error too, the JSON attempt named after it.
    const tagged = await evalStdin('input', 'user: alice\ntoken: !vault CANARY-SECRET-7f3a\n');
    expect([tagged.code, tagged.err]).toEqual([1, 'stdin:2:8: input_invalid: cannot parse input: unknown YAML tag !vault; not JSON either (it breaks at line 1, column 1)\n']);
    expect(block.err + flow.err + tagged.err).not.toContain('CANARY');
  });
});
