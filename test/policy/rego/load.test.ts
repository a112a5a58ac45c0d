import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicy, RegoError } from '../../../src/policy/rego/index.js';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-rego-load-'));
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, text);
  }
  return dir;
}

describe('loadPolicy', () => {
  it('merges data files at their directory path, JSON and YAML', async () => {
    const dir = tree({
      'authz.rego': 'package authz\nimport rego.v1\nlimit := data.a.b.limit\nteams := data.teams\n',
      'a/b/data.json': '{"limit": 5}',
      'data.yaml': 'teams:\n  - red\n  - blue\n',
      'a/b/more.yml': 'extra: true\n',
    });
    const p = await loadPolicy([dir]);
    expect(p.evaluate('data.authz.limit', {})).toBe(5);
    expect(p.evaluate('data.authz.teams', {})).toEqual(['red', 'blue']);
    expect(p.evaluate('data.a.b', {})).toEqual({ limit: 5, extra: true });
  });

  it('merges a data file given directly at data', async () => {
    const dir = tree({ 'x/policy.rego': 'package p\nimport rego.v1\nv := data.k\n', 'x/d/data.json': '{"k": 1}' });
    const p = await loadPolicy([join(dir, 'x/policy.rego'), join(dir, 'x/d/data.json')]);
    expect(p.evaluate('data.p.v', {})).toBe(1);
  });

  it('follows symlinked directories (a ConfigMap item in a sub-directory) and files; reads a directory reached twice once', async () => {
    // What Kubernetes mounts: ..data/ holds the files, `deny -> ..data/deny` and `p.rego -> ..data/p.rego`.
    const dir = tree({
      '..data/p.rego': 'package warden\nimport rego.v1\ndefault allow := true\nallow := false if data.deny[input.name]\n',
      '..data/deny/names.json': '{"evil": true}',
    });
    symlinkSync('..data/p.rego', join(dir, 'p.rego'));
    symlinkSync('..data/deny', join(dir, 'deny'));
    const p = await loadPolicy([dir]);
    expect(p.evaluate('data.warden.allow', { name: 'evil' })).toBe(false); // the linked directory's data is read
    expect(p.evaluate('data.warden.allow', { name: 'good' })).toBe(true);
    // A loop, and two links to one directory: no error, no endless walk.
    symlinkSync('.', join(dir, 'deny', 'self'));
    symlinkSync('..data/deny', join(dir, 'again'));
    await expect(loadPolicy([dir])).resolves.toBeDefined();
  });

  it('loads a file once when the paths reach it twice (a file next to its own directory, a directory listed twice)', async () => {
    const dir = tree({
      'p/warden.rego': 'package w\nimport rego.v1\ndefault allow := false\nallow if input.ok\n',
      'p/d/data.json': '{"k": 1}',
    });
    const alone = await loadPolicy([join(dir, 'p')]);
    for (const paths of [
      [join(dir, 'p'), join(dir, 'p', 'warden.rego')],
      [join(dir, 'p', 'warden.rego'), join(dir, 'p')],
      [join(dir, 'p'), join(dir, 'p')],
      [join(dir, 'p'), join(dir, 'p', 'd', 'data.json')],
    ]) {
      const p = await loadPolicy(paths);
      expect(p.evaluate('data.w.allow', { ok: true }), paths.join(' ')).toBe(true);
      expect(p.evaluate('data.w.allow', {}), paths.join(' ')).toBe(false);
    }
    // The first listing wins, so a directory listed twice is the same policy as listed once.
    expect((await loadPolicy([join(dir, 'p'), join(dir, 'p')])).revision).toBe(alone.revision);
  });

  it('refuses a policy or data file that is not UTF-8 text, or holds a NUL, at the first bad byte', async () => {
    const bad = Buffer.concat([Buffer.from('teams:\n  - re'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
    const data = tree({ 'p.rego': 'package warden\n', 'data.yaml': '' });
    writeFileSync(join(data, 'data.yaml'), bad);
    await expect(loadPolicy([data])).rejects.toMatchObject({
      code: 'rego_parse_error',
      message: 'cannot parse data file: not valid UTF-8',
      location: { file: join(data, 'data.yaml'), row: 2, col: 7 },
    });
    const json = tree({ 'p.rego': 'package warden\n', 'd.json': '{"k": "a\u0000"}' });
    await expect(loadPolicy([json])).rejects.toMatchObject({ location: { file: join(json, 'd.json'), row: 1, col: 9 } });
    const rego = tree({ 'p.rego': '' });
    writeFileSync(join(rego, 'p.rego'), Buffer.concat([Buffer.from('package warden\nname := "'), Buffer.from([0xff]), Buffer.from('"\n')]));
    await expect(loadPolicy([rego])).rejects.toMatchObject({
      code: 'rego_parse_error',
      message: 'not valid UTF-8',
      location: { file: join(rego, 'p.rego'), row: 2, col: 10 },
    });
  });

  it('refuses a data file whose key is a list or a mapping, at the key', async () => {
    const dir = tree({ 'p.rego': 'package warden\n', 'data.yaml': 'teams:\n  ? [red, blue]\n  : 1\n' });
    await expect(loadPolicy([dir])).rejects.toMatchObject({
      code: 'rego_parse_error',
      message: 'cannot parse data file: a key must be a plain value (a word or a quoted string), not a list or a mapping',
      location: { file: join(dir, 'data.yaml'), row: 2, col: 5 },
    });
  });

  it('refuses a policy or data file that is not a regular file (a FIFO would block the load for good)', async () => {
    const dir = tree({ 'p.rego': 'package warden\n' });
    execFileSync('mkfifo', [join(dir, 'stuck.rego')]);
    await expect(loadPolicy([dir])).rejects.toMatchObject({ message: 'not a regular file', location: { file: join(dir, 'stuck.rego') } });
    await expect(loadPolicy([join(dir, 'stuck.rego')])).rejects.toThrow(/not a regular file/);
  });

  // The duplicate is found while the file is read a piece at a time, then the file is read whole
  // for the error (yaml-value-steps.ts): twice the work, some seconds on a loaded machine.
  it('reads a YAML data file with 50 000 keys in one mapping, and refuses a duplicate key with its line', { timeout: 120_000 }, async () => {
    const many = Array.from({ length: 50_000 }, (_, i) => `  k${i}: ${i}\n`).join('');
    const dir = tree({ 'p.rego': 'package p\nimport rego.v1\nn := count(data.big)\n', 'data.yaml': `big:\n${many}` });
    expect((await loadPolicy([dir])).evaluate('data.p.n', {})).toBe(50_000);
    const dup = tree({ 'data.yaml': `big:\n${many}  k3: 1\n` });
    await expect(loadPolicy([dup])).rejects.toMatchObject({
      message: 'cannot parse data file: not valid YAML',
      location: { file: join(dup, 'data.yaml'), row: 50002, col: 3 },
    });
  });

  it('excludes *_test.rego when asked', async () => {
    const dir = tree({
      'p.rego': 'package p\nimport rego.v1\nv := 1\n',
      'p_test.rego': 'package p\nimport rego.v1\ntest_v if v == 1\n',
    });
    expect((await loadPolicy([dir])).evaluate('data.p.test_v', {})).toBe(true);
    expect((await loadPolicy([dir], { excludeTests: true })).evaluate('data.p.test_v', {})).toBeUndefined();
  });

  it('changes the revision when sources or data change', async () => {
    const a = tree({ 'p.rego': 'package p\nimport rego.v1\nv := 1\n', 'data.json': '{"x": 1}' });
    const b = tree({ 'p.rego': 'package p\nimport rego.v1\nv := 1\n', 'data.json': '{"x": 2}' });
    const ra = (await loadPolicy([a])).revision;
    expect(ra).toMatch(/^[0-9a-f]{64}$/);
    expect((await loadPolicy([a])).revision).toBe(ra);
    expect((await loadPolicy([b])).revision).not.toBe(ra);
  });

  it('gives data that decides differently another revision: an exact integer and its digits as a string', async () => {
    const number = tree({ 'p.rego': 'package p\nimport rego.v1\nv := 1\n', 'data.json': '{"blocked":[9007199254740993]}' });
    const text = tree({ 'p.rego': 'package p\nimport rego.v1\nv := 1\n', 'data.json': '{"blocked":["9007199254740993"]}' });
    expect((await loadPolicy([number])).revision).not.toBe((await loadPolicy([text])).revision);
  });

  it('valid JSON data too deep to read is refused as too deep, not as "not valid JSON" (the exact parser for long numbers recurses)', async () => {
    const deep = `${'['.repeat(6000)}1234567890123456789${']'.repeat(6000)}`;
    const dir = tree({ 'p.rego': 'package p\nimport rego.v1\nv := 1\n', 'data.json': `{"x": ${deep}}` });
    await expect(loadPolicy([dir])).rejects.toThrow('data nested deeper than 1000 levels');
  });

  it('left-out *_test.rego files count towards the 32 MiB of the set: the sidecar does not read them without bound', async () => {
    // 33 test files just under the 1 MiB per-file cap, beside a policy: `policy check` (tests
    // included) and the sidecar's load (tests left out, read only for the warnings) refuse alike.
    const files: Record<string, string> = { 'p.rego': 'package p\nimport rego.v1\nv := 1\n' };
    const body = `package p\nimport rego.v1\n# ${'x'.repeat(1024 * 1024 - 64)}\ntest_v if v == 1\n`;
    for (let i = 0; i < 33; i++) files[`t${String(i).padStart(2, '0')}_test.rego`] = body;
    const dir = tree(files);
    // With the tests compiled (`policy check`), their modules pass the modules' 2 MiB first.
    await expect(loadPolicy([dir])).rejects.toThrow('policy (.rego) files read up to this one hold more than 2 MiB');
    await expect(loadPolicy([dir], { excludeTests: true })).rejects.toThrow('hold more than 32 MiB');
  });

  it('holds the modules it compiles to 2 MiB together (compiled, a module takes up to about 100 times its size), not data or left-out tests', async () => {
    // Three modules of 0.8 MiB each (a comment: cheap to compile), each under the 1 MiB per file.
    const module = (pkg: string) => `package ${pkg}\nimport rego.v1\n# ${'x'.repeat(800 * 1024)}\nv := 1\n`;
    const over = tree({ 'a.rego': module('a'), 'b.rego': module('b'), 'c.rego': module('c') });
    const err = await loadPolicy([over]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RegoError);
    expect((err as RegoError).message).toBe(
      'the policy (.rego) files read up to this one hold more than 2 MiB (2097152 bytes), the most the modules of a set may hold together (compiled, a module takes up to about 100 times its size in memory): put generated tables in data files',
    );
    expect((err as RegoError).location?.file).toBe(join(over, 'c.rego'));
    // Two of them load; so do left-out test files and data files past 2 MiB beside them.
    const under = tree({
      'a.rego': module('a'),
      'b.rego': module('b'),
      'c_test.rego': module('b'),
      'd_test.rego': module('b'),
      'data.json': JSON.stringify({ table: 'y'.repeat(3 * 1024 * 1024) }),
    });
    const p = await loadPolicy([under], { excludeTests: true });
    expect([p.evaluate('data.a.v', {}), p.evaluate('data.b.v', {}), (p.evaluate('data.table', {}) as string).length]).toEqual([1, 1, 3 * 1024 * 1024]);
  });

  it('gives identical policies the same revision wherever they are mounted', async () => {
    const files = { 'p.rego': 'package p\nimport rego.v1\nv := 1\n', 'sub/q.rego': 'package q\nimport rego.v1\nw := 2\n', 'data.json': '{"x": 1}' };
    const checkout = tree(files);
    const mounted = tree(files);
    const revision = (await loadPolicy([checkout])).revision;
    expect((await loadPolicy([mounted])).revision).toBe(revision);
    // A file given directly counts by its name, too.
    expect((await loadPolicy([join(checkout, 'p.rego')])).revision).toBe((await loadPolicy([join(mounted, 'p.rego')])).revision);
    // Where a file sits under its root still counts: the same text under another name is another set.
    const moved = tree({ 'p.rego': files['p.rego'], 'other/q.rego': files['sub/q.rego'], 'data.json': files['data.json'] });
    expect((await loadPolicy([moved])).revision).not.toBe(revision);
  });

  it('reports conflicting data and unparsable files with the file name', async () => {
    const conflict = tree({ 'a/data.json': '{"k": 1}', 'data.json': '{"a": {"k": 2}}' });
    await expect(loadPolicy([conflict])).rejects.toBeInstanceOf(RegoError);
    const bad = tree({ 'data.json': '{"k": ' });
    await expect(loadPolicy([bad])).rejects.toMatchObject({ message: 'cannot parse data file: not valid JSON', location: { file: join(bad, 'data.json'), row: 1, col: 7 } });
    const deep = tree({ 'data.json': `${'{"k":'.repeat(5000)}1${'}'.repeat(5000)}` });
    await expect(loadPolicy([deep])).rejects.toMatchObject({ message: 'data nested deeper than 1000 levels', location: { file: join(deep, 'data.json') } });
    await expect(loadPolicy([join(bad, 'missing')])).rejects.toMatchObject({ message: 'no such file or directory', location: { file: join(bad, 'missing') } });
  });

  it('reads the files in code-unit order of their names, the same in every locale: the later of two conflicting files is named', async () => {
    // 'B' (0x42) sorts before 'a' (0x61); a locale's collation (localeCompare) put a.json first.
    const dir = tree({ 'a.json': '{"k": 2}', 'B.json': '{"k": 1}' });
    await expect(loadPolicy([dir])).rejects.toMatchObject({ message: 'merge error: data.k is defined twice', location: { file: join(dir, 'a.json') } });
  });

  it('refuses a data file with a YAML tag Warden does not implement, naming the tag and where it is', async () => {
    const dir = tree({ 'p.rego': 'package p\nimport rego.v1\nv := data.limits\n', 'data.yaml': 'limits:\n  max: !vault limits/max\n' });
    await expect(loadPolicy([dir])).rejects.toMatchObject({ message: 'cannot parse data file: unknown YAML tag !vault', location: { file: join(dir, 'data.yaml'), row: 2, col: 8 } });
    const binary = tree({ 'p.rego': 'package p\n', 'd.yml': 'k: !!binary aGk=\n' });
    await expect(loadPolicy([binary])).rejects.toMatchObject({ message: 'cannot parse data file: unknown YAML tag !!binary', location: { file: join(binary, 'd.yml'), row: 1, col: 4 } });
    const core = tree({ 'p.rego': 'package p\nimport rego.v1\nv := data.k\n', 'data.yaml': 'k: !!str 10\n' });
    expect((await loadPolicy([core])).evaluate('data.p.v', {})).toBe('10');
  });

  it('reports rego errors with the file path', async () => {
    const dir = tree({ 'bad.rego': 'package p\nimport rego.v1\nv := count(\n' });
    try {
      await loadPolicy([dir]);
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(RegoError);
      expect((e as RegoError).location?.file).toBe(join(dir, 'bad.rego'));
    }
  });

  it('refuses a rule at a path a data file already holds, naming the path at the rule (as OPA compiling against a store)', async () => {
    const dir = tree({
      'p.rego': 'package warden\nimport rego.v1\n\ndecision := {"allow": false}\n',
      'data.json': '{"warden": {"decision": {"allow": true, "models": ["*"]}, "other": 1}}',
    });
    let e: unknown;
    try {
      await loadPolicy([dir]);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(RegoError);
    expect((e as RegoError).code).toBe('rego_compile_error');
    expect((e as RegoError).message).toBe('conflicting rule for data path warden/decision found');
    expect((e as RegoError).location).toMatchObject({ file: join(dir, 'p.rego'), row: 4, col: 1 });
    // Partial set rules and ref heads too; data beside the rule (not at its path) is fine.
    const sets = tree({ 'p.rego': 'package warden\nimport rego.v1\ndecision contains "x"\n', 'data.json': '{"warden": {"decision": ["y"]}}' });
    await expect(loadPolicy([sets])).rejects.toThrow('conflicting rule for data path warden/decision found');
    const beside = tree({ 'p.rego': 'package warden\nimport rego.v1\nd := data.warden.other\n', 'data.json': '{"warden": {"other": 1}}' });
    expect((await loadPolicy([beside])).evaluate('data.warden.d', {})).toBe(1);
  });

  it('reports the conflict from policy check with file:line:col', async () => {
    const { runCli } = await import('./helpers.js');
    const dir = tree({
      'p.rego': 'package warden\nimport rego.v1\ndecision := {"allow": false}\n',
      'data.json': '{"warden": {"decision": {"allow": true}}}',
    });
    const r = await runCli(['check', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${join(dir, 'p.rego')}:3:1: rego_compile_error: conflicting rule for data path warden/decision found`);
  });
});
