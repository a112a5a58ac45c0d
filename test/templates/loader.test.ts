import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  formatIssue,
  lintTemplates,
  loadTemplateStore,
  parseTemplateFile,
  parseTemplateFiles,
  TemplateLoadError,
  compileTemplate,
  readTemplates,
  type TemplateIssue,
} from '../../src/templates/index.js';
import { makeTemplate } from '../stage-context.js';
import RE2 from 're2';
import { globToRegex } from '../../src/policy/rego/builtins/glob.js';

const GOOD = `id: team/hello
version: 1
owner: team@example.com
sensitivity: internal
description: Say hello.
variables:
  name: { type: string, max_length: 10 }
messages:
  - role: user
    content: "Hello {{ name }}"
`;

function issuesOf(text: string): TemplateIssue[] {
  return parseTemplateFile('t.yaml', text).issues;
}

function one(text: string): TemplateIssue {
  const issues = issuesOf(text);
  expect(issues, JSON.stringify(issues)).toHaveLength(1);
  return issues[0]!;
}

describe('parseTemplateFile', () => {
  it('parses a valid template with defaults filled in', () => {
    const r = parseTemplateFile('t.yaml', GOOD);
    expect(r.issues).toEqual([]);
    const t = r.templates[0]!.template;
    expect(t).toMatchObject({ id: 'team/hello', version: 1, approvals: [], allowed_services: [], models: [], source: { file: 't.yaml' } });
    expect(t.variables.name).toEqual({ source: 'request', type: 'string', required: true, pii: false, max_length: 10 });
  });

  it('names file:line:col and the key for a wrong type', () => {
    const i = one(GOOD.replace('version: 1', 'version: "one"'));
    expect(i).toMatchObject({ file: 't.yaml', line: 2, column: 10, path: 'version' });
    expect(formatIssue(i)).toMatch(/^t\.yaml:2:10: version: /);
  });

  it('locates unknown keys at the key itself', () => {
    const i = one(GOOD.replace('  name: { type: string, max_length: 10 }', '  name: { type: string, maxlen: 10 }'));
    expect(i).toMatchObject({ line: 7, column: 25, path: 'variables.name.maxlen' });
    expect(i.message).toBe('unknown key "maxlen"');
  });

  it('locates a missing required key at its parent', () => {
    const i = one(GOOD.replace('owner: team@example.com\n', ''));
    expect(i).toMatchObject({ line: 1, column: 1, path: 'owner' });
    // In Warden's words, as the config file's problems are (zod's own said "Invalid input:
    // expected string, received undefined").
    expect(i.message).toBe('is required');
    expect(one(GOOD.replace('version: 1', 'version: "2"')).message).toBe('must be a number, got a string');
    expect(one(GOOD.replace('sensitivity: internal', 'sensitivity: [internal]')).message).toBe('must be one of "public", "internal", "restricted"');
  });

  it('rejects bad enums, versions below 1, bad dates and ids', () => {
    expect(one(GOOD.replace('internal', 'secret')).path).toBe('sensitivity');
    expect(one(GOOD.replace('version: 1', 'version: 0')).path).toBe('version');
    expect(one(GOOD.replace('version: 1', 'version: 1.5')).path).toBe('version');
    // Beyond what `id@version` and gRPC's uint32 can name: no request could pin it.
    expect(issuesOf(GOOD.replace('version: 1', 'version: 999999999'))).toEqual([]);
    for (const v of ['1000000000', '5000000000']) {
      expect(one(GOOD.replace('version: 1', `version: ${v}`)), v).toMatchObject({ line: 2, column: 10, path: 'version', message: 'must be at most 999999999 (the highest version a request can name)' });
    }
    expect(one(`${GOOD}retire_after: 2027-02-30\n`).path).toBe('retire_after');
    expect(one(`${GOOD}retire_after: next year\n`).path).toBe('retire_after');
    expect(one(GOOD.replace('team/hello', 'Team/Hello@2')).path).toBe('id');
    // Ids and variable names are bounded as requests are (pipeline/identifiers.ts): a template
    // no request could name is refused when it is loaded.
    expect(one(GOOD.replace('team/hello', `team/${'h'.repeat(200)}`)).path).toBe('id');
    const long = 'n'.repeat(129);
    const i = one(GOOD.replace('  name: {', `  ${long}: {`).replace('{{ name }}', `{{ ${long} }}`));
    // A name longer than a name is not repeated (it may be a pasted value).
    expect(i).toMatchObject({ path: 'variables.<key not shown>', line: 7 });
    expect(i.message).toContain('at most 128 characters');
    expect(issuesOf(GOOD.replace('  name: {', `  ${'n'.repeat(128)}: {`).replace('{{ name }}', `{{ ${'n'.repeat(128)} }}`))).toEqual([]);
  });

  it('reports YAML syntax errors with their position', () => {
    const i = one('id: x\nversion: [1, 2\nowner: o\n');
    expect(i.message).toMatch(/^YAML: /);
    expect(i.line).toBeGreaterThanOrEqual(2);
  });

  it('refuses a file with no template in it, an empty one included (what a reload reads between an in-place save\'s truncate and write)', () => {
    for (const text of ['', '\n', '   \n\n', '# templates live here\n', '---\n', '---\n---\n# nothing yet\n']) {
      expect(issuesOf(text), JSON.stringify(text)).toEqual([{ file: 't.yaml', line: 1, column: 1, path: '', message: 'file contains no template' }]);
    }
  });

  it('refuses a YAML tag Warden does not implement, with its position, instead of reading the plain value', () => {
    const i = one(GOOD.replace('description: Say hello.', 'description: !include hello.md'));
    expect(i).toMatchObject({ file: 't.yaml', line: 5, column: 14, message: 'unknown YAML tag !include' });
    const two = issuesOf(GOOD.replace('owner: team@example.com', 'owner: !vault owners/team').replace('"Hello {{ name }}"', '!!binary SGVsbG8='));
    expect(two.map((x) => `${x.line}:${x.column}: ${x.message}`)).toEqual(['3:8: unknown YAML tag !vault', '10:14: unknown YAML tag !!binary']);
    // Only the tagged document of a file is refused; core tags are fine.
    const r = parseTemplateFile('t.yaml', `${GOOD.replace('version: 1', 'version: !!int 1')}---\n${GOOD.replace('version: 1', 'version: 2').replace('Say hello.', '!Sub hello')}`);
    expect(r.templates.map((t) => t.template.version)).toEqual([1]);
    expect(r.issues.map((x) => `${x.line}:${x.column}: ${x.message}`)).toEqual(['16:14: unknown YAML tag !Sub']);
  });

  it('never repeats a tag that may be a pasted credential, known or malformed', () => {
    const AKIA = 'AKIAIOSFODNN7EXAMPLE';
    const unknown = one(GOOD.replace('description: Say hello.', `description: !${AKIA} hello`));
    expect(unknown).toMatchObject({ line: 5, column: 14, message: 'unknown YAML tag (tag not shown: it looks like a literal secret (AWS access key id))' });
    // The yaml library's own messages for a tag it cannot resolve quote it.
    for (const tag of [`!e!${AKIA}`, `!<${AKIA}`]) {
      const i = one(GOOD.replace('description: Say hello.', `description: ${tag} hello`));
      expect(i, tag).toMatchObject({ line: 5, column: 14 });
      expect(i.message, tag).toMatch(/^YAML: /);
      expect(i.message, tag).not.toContain(AKIA);
    }
  });

  it('refuses a template with more required request variables than limits.max_variables, when the limit is known', () => {
    const text = GOOD.replace('  name: { type: string, max_length: 10 }', '  name: { type: string, max_length: 10 }\n  b: { type: string }\n  c: { type: string, required: false }\n  k: { source: config, value: x }').replace('Hello {{ name }}', 'Hello {{ name }} {{b}} {{c}} {{k}}');
    expect(issuesOf(text)).toEqual([]);
    // Two required request variables: the optional and config ones do not count.
    expect(parseTemplateFile('t.yaml', text, { maxVariables: 2 }).issues).toEqual([]);
    expect(parseTemplateFile('t.yaml', text, { maxVariables: 1 }).issues).toEqual([
      { file: 't.yaml', line: 7, column: 3, path: 'variables', message: '2 required request variables, more than one request may send (limits.max_variables: 1): no request could call this template' },
    ]);
  });

  it('ignores white space around a placeholder name, refuses it inside (README)', () => {
    for (const p of ['{{name}}', '{{ name }}', '{{\\tname\\n}}', '{{  name\\t}}']) {
      expect(issuesOf(GOOD.replace('{{ name }}', p)), p).toEqual([]);
    }
    expect(issuesOf(GOOD.replace('{{ name }}', '{{ na me }}'))[0]?.message).toMatch(/it contains white space/);
  });

  it('requires every placeholder to be declared and every variable to be used', () => {
    const undeclared = one(GOOD.replace('Hello {{ name }}', 'Hello {{ name }} {{who}}'));
    expect(undeclared).toMatchObject({ path: 'messages[0].content', line: 10, column: 14 });
    expect(undeclared.message).toContain('{{who}} is not declared');
    const unused = one(GOOD.replace('Hello {{ name }}', 'Hello'));
    expect(unused).toMatchObject({ path: 'variables.name', line: 7 });
    expect(one(GOOD.replace('Hello {{ name }}', 'Hello {{ name }} {{ bad-name }}')).message).toMatch(/malformed placeholder/);
    expect(one(GOOD.replace('Hello {{ name }}', 'Hello {{ name }} {{ open')).message).toMatch(/unclosed/);
  });

  it('checks secret refs are URIs and sources are consistent', () => {
    const withVar = (spec: string) => GOOD.replace('  name: { type: string, max_length: 10 }', `  name: ${spec}`);
    expect(one(withVar('{ source: secret }')).message).toMatch(/needs a ref/);
    expect(one(withVar('{ source: secret, ref: my-api-key }'))).toMatchObject({ path: 'variables.name.ref', message: expect.stringMatching(/must be a URI/) });
    // The scheme is not repeated: a pasted literal (`sk-live:...`) could be a secret.
    expect(one(withVar('{ source: secret, ref: "s3://b/k" }')).message).toBe('unknown secret ref scheme (expected file, env, vault or k8s)');
    expect(one(withVar('{ source: secret, ref: "env://1X" }')).message).toMatch(/env:\/\/NAME/);
    expect(one(withVar('{ source: secret, ref: "vault://kv/app" }')).message).toMatch(/#key/);
    expect(issuesOf(withVar('{ source: secret, ref: "vault://kv/app#token" }'))).toEqual([]);
    expect(one(withVar('{ source: config }')).message).toMatch(/needs a value/);
    expect(one(withVar('{ source: config, type: number, value: "ten" }')).path).toBe('variables.name.value');
    expect(one(withVar('{ source: request, value: x }')).path).toBe('variables.name.value');
  });

  it('refuses secret-looking literals without echoing them', () => {
    const key = 'sk-proj-CANARYabcdefghijklmnop1234567890';
    const inMessage = one(GOOD.replace('Hello {{ name }}', `Hello {{ name }}, use ${key}`));
    expect(inMessage.message).toMatch(/literal secret \(OpenAI\/Anthropic-style API key\)/);
    expect(JSON.stringify(inMessage)).not.toContain(key);
    const inConfig = one(
      GOOD.replace('  name: { type: string, max_length: 10 }', '  name: { source: config, value: "AKIAABCDEFGHIJKLMNOP" }'),
    );
    expect(inConfig).toMatchObject({ path: 'variables.name.value', message: expect.stringMatching(/AWS access key id/) });
    expect(one(GOOD.replace('Say hello.', '"password: hunter2hunter2hunter2"')).path).toBe('description');
  });

  it('refuses variable names that are Object.prototype properties', () => {
    const i = one(GOOD.replace('  name: { type: string, max_length: 10 }', '  name: { type: string, max_length: 10 }\n  constructor: { type: string }').replace('Hello {{ name }}', 'Hello {{ name }} {{constructor}}'));
    expect(i).toMatchObject({ path: 'variables.constructor', line: 8, column: 3 });
    expect(i.message).toMatch(/reserved/);
  });

  it('requires approvals on restricted templates', () => {
    expect(one(GOOD.replace('internal', 'restricted')).path).toBe('approvals');
  });

  it('skips an empty document (a trailing ---, two in a row), but not a null one written out', () => {
    for (const text of [`${GOOD}---\n`, `${GOOD}---`, `${GOOD}---\n# more to come\n`, `---\n---\n${GOOD}---\n---\n`]) {
      const r = parseTemplateFile('t.yaml', text);
      expect(r.issues, JSON.stringify(text)).toEqual([]);
      expect(r.templates.map((t) => t.template.version)).toEqual([1]);
    }
    // Something written after the ---: a null, a tag or an anchor is no template, and is said so.
    for (const after of ['~', 'null', '!!null', '&a']) {
      expect(one(`${GOOD}--- ${after}\n`), after).toMatchObject({ line: 11, message: 'a template document must be a mapping' });
    }
    // A document in error is reported, empty or not.
    expect(one(`${GOOD}---\n]\n`).message).toMatch(/^YAML: Unexpected flow-seq-end token/);
  });

  it('reads several documents from one file and rejects duplicates across files', () => {
    const two = `${GOOD}---\n${GOOD.replace('version: 1', 'version: 2')}`;
    expect(parseTemplateFile('t.yaml', two).templates.map((t) => t.template.version)).toEqual([1, 2]);
    const r = parseTemplateFiles([
      { file: 'a.yaml', text: GOOD },
      { file: 'b.yaml', text: GOOD },
    ]);
    expect(r.templates).toHaveLength(1);
    expect(r.issues).toEqual([expect.objectContaining({ file: 'b.yaml', line: 1, column: 5, message: 'duplicate template team/hello@1 (also defined in a.yaml)' })]);
  });
});

describe('loading from disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warden-templates-'));
    await mkdir(join(dir, 'team', 'nested'), { recursive: true });
    await writeFile(join(dir, 'team', 'hello.yaml'), GOOD);
    await writeFile(join(dir, 'team', 'nested', 'hello2.yml'), GOOD.replace('version: 1', 'version: 3'));
    await writeFile(join(dir, 'team', 'notes.txt'), 'not a template');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('walks the tree, picks the highest version, and hashes the contents', async () => {
    const store = await loadTemplateStore([dir]);
    expect(store.list().map((t) => `${t.id}@${t.version}`)).toEqual(['team/hello@1', 'team/hello@3']);
    expect(store.get('team/hello')!.version).toBe(3);
    expect(store.get('team/hello', 1)!.version).toBe(1);
    expect(store.get('team/hello', 2)).toBeUndefined();
    expect(store.get('other')).toBeUndefined();
    expect(store.revision).toMatch(/^[0-9a-f]{64}$/);
    const again = await loadTemplateStore([dir]);
    expect(again.revision).toBe(store.revision);
    await writeFile(join(dir, 'team', 'hello.yaml'), GOOD.replace('Say hello.', 'Say hello!'));
    expect((await loadTemplateStore([dir])).revision).not.toBe(store.revision);
  });

  it('throws TemplateLoadError listing every issue; lint reports without throwing', async () => {
    await writeFile(join(dir, 'team', 'broken.yaml'), GOOD.replace('team/hello', 'team/broken').replace('version: 1', 'version: x'));
    const err = await loadTemplateStore([dir]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemplateLoadError);
    expect((err as TemplateLoadError).code).toBe('template_invalid');
    expect((err as TemplateLoadError).message).toContain(`${join(dir, 'team', 'broken.yaml')}:2:10: version:`);
    const lint = await lintTemplates([dir]);
    expect(lint.ok).toBe(false);
    expect(lint.issues).toHaveLength(1);
    expect(lint.templates).toHaveLength(2);
  });

  it('loads a Kubernetes ConfigMap mount (symlinks into ..data) once', async () => {
    const mount = await mkdtemp(join(tmpdir(), 'warden-configmap-'));
    try {
      await mkdir(join(mount, '..2026_06_01_12_00_00.000000001'));
      await writeFile(join(mount, '..2026_06_01_12_00_00.000000001', 'hello.yaml'), GOOD);
      await symlink('..2026_06_01_12_00_00.000000001', join(mount, '..data'));
      await symlink(join('..data', 'hello.yaml'), join(mount, 'hello.yaml'));
      const store = await loadTemplateStore([mount]);
      expect(store.list().map((t) => `${t.id}@${t.version}`)).toEqual(['team/hello@1']);
    } finally {
      await rm(mount, { recursive: true, force: true });
    }
  });

  it('names a missing path', async () => {
    await expect(loadTemplateStore([join(dir, 'nope')])).rejects.toMatchObject({ code: 'template_invalid', message: expect.stringContaining('ENOENT') });
  });

  it('loads the shipped example templates cleanly', async () => {
    const lint = await lintTemplates(['deploy/local/templates']);
    expect(lint.issues).toEqual([]);
    expect(lint.templates.map((t) => `${t.id}@${t.version}`).sort()).toEqual([
      'billing/refund-review@1',
      'ops/incident-brief@1',
      'support/ticket-summary@1',
      'support/ticket-summary@2',
    ]);
  });
});

describe('duplicate keys in large mappings', () => {
  /** GOOD with an extra top-level mapping of `n` keys (one unknown key for the linter). */
  function withKeys(n: number, extra = ''): string {
    const keys = Array.from({ length: n }, (_, i) => `  key_${i}: ${i}\n`).join('');
    return `${GOOD}extra:\n${keys}${extra}`;
  }

  // The yaml library's own unique-key check compares each key with every earlier one of its
  // mapping: 40 000 keys took ~20 s. Warden's check is a Set per mapping.
  it('a mapping of 50 000 keys is read without the quadratic check', () => {
    expect(issuesOf(withKeys(50_000)).map(formatIssue)).toEqual(['t.yaml:11:1: extra: unknown key "extra"']);
  });

  it('a duplicate key is still refused, at the duplicate, in block and flow mappings at any depth', () => {
    // Line 12 + 50 000 is the repeated key_7.
    expect(issuesOf(withKeys(50_000, '  key_7: again\n')).map(formatIssue)).toEqual(['t.yaml:50012:3: YAML: Map keys must be unique']);
    expect(one(GOOD.replace('version: 1', 'version: 1\nversion: 2'))).toMatchObject({ line: 3, column: 1, message: 'YAML: Map keys must be unique' });
    // The location is the issue's own; the parser's "at line 4, column 1:" (its colon led to a
    // quote of the file, which is not printed) said it again, ending on a dangling colon.
    expect(one(GOOD.replace('version: 1', 'version: 1\n\tx: 1'))).toMatchObject({ line: 3, column: 1, message: 'YAML: Tabs are not allowed as indentation' });
    expect(one(GOOD.replace('{ type: string, max_length: 10 }', '{ type: string, type: string }'))).toMatchObject({ line: 7, column: 25 });
    expect(one(`${GOOD}x:\n  y:\n    - { a: 1 }\n    - a: 1\n      b: 2\n      a: 3\n`)).toMatchObject({ line: 16, column: 7 });
    // Keys equal as values are duplicates; a string and a number that read alike are not.
    expect(one(`${GOOD}x: { 1: a, 0x1: b }\n`)).toMatchObject({ line: 11, column: 12 });
    expect(issuesOf(`${GOOD}x: { 1: a, "1": b }\n`).map((i) => i.message)).toEqual(['unknown key "x"']);
  });
});

describe('warden templates lint', () => {
  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } }, out, err };
  }

  it('exits 0 on the shipped templates and 1 with file:line:col on a bad one', async () => {
    const { runTemplatesCli } = await import('../../src/templates/index.js');
    const ok = io();
    expect(await runTemplatesCli(['lint', 'deploy/local/templates'], ok.io)).toBe(0);
    expect(ok.out.join('')).toMatch(/^ok: 4 template\(s\) in 3 file\(s\)/);
    const d = await mkdtemp(join(tmpdir(), 'warden-lint-'));
    try {
      await writeFile(join(d, 'bad.yaml'), GOOD.replace('{{ name }}', '{{ nme }}'));
      const bad = io();
      expect(await runTemplatesCli(['lint', d], bad.io)).toBe(1);
      expect(bad.out.join('')).toContain(`${join(d, 'bad.yaml')}:10:14: messages[0].content: placeholder {{nme}} is not declared in variables`);
      const missing = io();
      expect(await runTemplatesCli(['lint', join(d, 'nope')], missing.io)).toBe(2);
      expect(await runTemplatesCli([], io().io)).toBe(2);
      expect(await runTemplatesCli(['lint', '--help'], io().io)).toBe(0);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  it('chooses its exit code by the error\'s class, not its words: 2 for what cannot be read, 1 for a set refused whole', async () => {
    const { lintFailureExitCode } = await import('../../src/templates/cli.js');
    const { TemplatesUnreadableError, scanTemplateFiles } = await import('../../src/templates/loader.js');
    const { WardenError } = await import('../../src/pipeline/errors.js');
    const d = await mkdtemp(join(tmpdir(), 'warden-lint-'));
    try {
      // What the loader throws for a path that is not there is the class, and exits 2.
      const missing: unknown = await scanTemplateFiles([join(d, 'nope')]).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(TemplatesUnreadableError);
      expect(missing).toMatchObject({ code: 'template_invalid', location: { file: join(d, 'nope') } });
      expect(lintFailureExitCode(missing)).toBe(2);
      // Worded otherwise, the same failure exits the same; a message that merely begins alike does not.
      expect(lintFailureExitCode(new TemplatesUnreadableError('templates path is gone (ENOENT)', d))).toBe(2);
      expect(lintFailureExitCode(new WardenError('template_invalid', 'cannot read more than 10000 template files', { location: { file: d } }))).toBe(1);
      expect(lintFailureExitCode(new Error('cannot read'))).toBe(1);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});

describe('probe findings', () => {
  const withVar = (spec: string, content = 'Hello {{ name }}') =>
    GOOD.replace('  name: { type: string, max_length: 10 }', `  name: ${spec}`).replace('Hello {{ name }}', content);

  it('more than 50 aliases is ordinary YAML; an alias bomb is a located issue, not a bare throw', () => {
    const dry = GOOD.replace('owner: team@example.com', 'owner: &o team@example.com') + `models: [${Array(200).fill('*o').join(', ')}]\n`;
    expect(issuesOf(dry)).toEqual([]);
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [prev, next] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f'], ['f', 'g'], ['g', 'h']]) {
      levels.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const bomb = `${levels.join('\n')}\n${GOOD}`;
    // No clock: 10^8 leaves that the cap refuses to build. The refusal below (its message) can
    // only come from the alias count, before any walk over the expanded document; without the cap
    // the document is expanded (shared objects, at once) and refused for its unknown keys instead.
    const i = one(bomb);
    expect(i).toMatchObject({ file: 't.yaml', line: 2, column: 8 });
    expect(i.message).toMatch(/^YAML: aliases expand too much/);
  });

  it('an alias with no anchor is reported as such, not as an alias bomb', () => {
    const i = one(GOOD.replace('owner: team@example.com', 'owner: &team team@example.com').replace('description: Say hello.', 'description: *teem'));
    expect(i).toMatchObject({ file: 't.yaml', line: 5, column: 14, message: 'YAML: alias *teem has no anchor before it (anchors are written &name, before their first use)' });
    const secret = one(GOOD.replace('description: Say hello.', 'description: *AKIAIOSFODNN7EXAMPLE'));
    expect(secret).toMatchObject({ line: 5, column: 14 });
    expect(secret.message).toMatch(/^YAML: an alias has no anchor before it/);
    expect(secret.message).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('placeholders named after Object.prototype properties are undeclared, at load and at compile', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const i = one(GOOD.replace('Hello {{ name }}', `Hello {{ name }} {{${name}}}`));
      expect(i).toMatchObject({ path: 'messages[0].content', message: `placeholder {{${name}}} is not declared in variables` });
    }
    const t = makeTemplate({ id: 't', variables: {}, messages: [{ role: 'user', content: '{{constructor}}' }] });
    expect(() => compileTemplate(t)).toThrow(expect.objectContaining({ code: 'template_invalid' }));
  });

  it('a variable named __proto__ is refused, not silently dropped', () => {
    const i = one(withVar('{ type: string }\n  __proto__: { type: string }', 'Hello {{ name }}'));
    expect(i).toMatchObject({ path: 'variables.__proto__', line: 8, column: 3 });
  });

  it('secret refs are checked at load with the resolver\'s parser', () => {
    for (const ref of ['file:/etc/hostname', 'k8s://NS/Name#k', 'vault://m/p?x=1#k', 'file:x#frag', 'file:%zz', 'file://host/x']) {
      const i = one(withVar(`{ source: secret, ref: "${ref}" }`));
      expect(i.path, ref).toBe('variables.name.ref');
      expect(i.message).not.toContain(ref);
    }
    // Refused at load, not at request time: credentials (never repeated), a non-namespace, a path
    // the file provider could not open.
    for (const ref of ['vault://admin:CANARYPASSxq93@secret/app#key', 'k8s://admin:CANARYPASSk8s77@ns/name#key', 'k8s://my.ns/name#key', 'file:///tmp/a%2Fb', 'file:a%00b']) {
      const i = one(withVar(`{ source: secret, ref: "${ref}" }`));
      expect(i.path, ref).toBe('variables.name.ref');
      expect(i.message).not.toContain('CANARYPASS');
    }
    for (const ref of ['file:secrets/key', 'file:///run/secrets/key', 'env://KEY', 'vault://kv/app#token', 'k8s://ns/name#key']) {
      expect(issuesOf(withVar(`{ source: secret, ref: "${ref}" }`)), ref).toEqual([]);
    }
  });

  it('a secret-looking literal is refused in every field, the approval ticket included', () => {
    const gh = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';
    const sk = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD';
    const cases: Array<[string, string]> = [
      [GOOD.replace('owner: team@example.com', `owner: "${sk}"`), 'owner'],
      [`${GOOD}approvals: [{ by: a@example.com, ticket: "${gh}" }]\n`, 'approvals[0].ticket'],
      [`${GOOD}approvals: [{ by: "${gh}", ticket: SEC-1 }]\n`, 'approvals[0].by'],
      [`${GOOD}models: ["${sk}"]\n`, 'models[0]'],
      [`${GOOD}allowed_services: ["${gh}/x"]\n`, 'allowed_services[0]'],
      [withVar(`{ type: string, description: "${gh}" }`), 'variables.name.description'],
    ];
    for (const [text, path] of cases) {
      const i = one(text);
      expect(i.path).toBe(path);
      expect(i.message).toMatch(/looks like a literal secret/);
      expect(JSON.stringify(i)).not.toContain(gh);
      expect(JSON.stringify(i)).not.toContain(sk);
    }
  });

  it('version is a plain integer: 1.0 and 0x10 are refused', () => {
    expect(one(GOOD.replace('version: 1', 'version: 1.0'))).toMatchObject({ path: 'version', line: 2, column: 10 });
    expect(one(GOOD.replace('version: 1', 'version: 0x10')).message).toBe('must be written as a plain integer such as 2');
    expect(issuesOf(GOOD.replace('version: 1', 'version: 12'))).toEqual([]);
  });

  it('a merge key (<<) is said to be one, as in the config, not an unnamed unknown key', () => {
    const merged = `base: &b\n  owner: team@example.com\n${GOOD.replace('owner: team@example.com', '<<: *b')}`;
    const issues = issuesOf(merged);
    expect(issues).toContainEqual(expect.objectContaining({ line: 5, column: 1, path: '<key not shown>', message: 'unknown key: YAML merge keys ("<<: *anchor") are YAML 1.1, not read here; write the keys out (an alias of a whole value, "key: *anchor", works)' }));
  });

  it('version given by an alias is held to the rule by its anchor\'s text: *v of &v 0x10 is not version 16', () => {
    // The anchor sits on a key that takes any integer form (max_length), the alias on version.
    const aliased = (anchor: string) =>
      GOOD.replace('version: 1\n', '').replace('max_length: 10 }', `max_length: &v ${anchor} }`).replace('messages:', 'version: *v\nmessages:');
    for (const form of ['0x10', '1e1', '0o17', '+3']) {
      expect(one(aliased(form)), form).toMatchObject({ path: 'version', line: 7, column: 10, message: 'must be written as a plain integer such as 2' });
    }
    const plain = parseTemplateFile('t.yaml', aliased('16'));
    expect(plain.issues).toEqual([]);
    expect(plain.templates[0]!.template.version).toBe(16);
  });

  it('a restricted template with blank approval fields is refused', () => {
    const text = `${GOOD.replace('internal', 'restricted')}approvals: [{ by: " ", ticket: "  " }]\n`;
    expect(issuesOf(text).map((i) => `${i.path}: ${i.message}`)).toEqual(['approvals[0].by: must not be blank', 'approvals[0].ticket: must not be blank']);
  });
});

describe('probe findings on disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warden-templates-probe-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('follows a symlinked sub-directory (a ConfigMap with items[].path in a sub-directory)', async () => {
    const mount = join(dir, 'cm');
    await mkdir(join(mount, '..2026_06_01.1', 'support'), { recursive: true });
    await writeFile(join(mount, '..2026_06_01.1', 'support', 'hello.yaml'), GOOD);
    await symlink('..2026_06_01.1', join(mount, '..data'));
    await symlink(join('..data', 'support'), join(mount, 'support'));
    const store = await loadTemplateStore([mount]);
    expect(store.list().map((t) => `${t.id}@${t.version}`)).toEqual(['team/hello@1']);
    expect(store.list()[0]!.source?.file).toBe(join(mount, 'support', 'hello.yaml'));
    expect(store.warnings).toEqual([]);
  });

  // The reload deadline gives a slow load up (runtime/components.ts): the parse, which yields a
  // slice at a time, must stop at its next turn, not run on in the background beside the next
  // reload's (each SIGHUP or watched change after a timeout started one more).
  it('a load given up through its signal stops at its next turn, with the signal\'s reason', async () => {
    const set = join(dir, 'given-up');
    await mkdir(set, { recursive: true });
    const docs: string[] = [];
    for (let n = 0; n < 3000; n++) docs.push(`id: bulk/t${n}\nversion: 1\nowner: o@example.com\nsensitivity: internal\ndescription: d\nmessages:\n  - role: user\n    content: hi\n`);
    await writeFile(join(set, 'a.yaml'), docs.join('---\n'));
    await writeFile(join(set, 'b.yaml'), GOOD);
    const giveUp = new AbortController();
    const reason = new Error('did not load within the deadline');
    const load = readTemplates([set], {}, giveUp.signal);
    // The load cannot end within this turn (it reads files, then parses 3,000 documents in slices).
    setImmediate(() => giveUp.abort(reason));
    await expect(load).rejects.toBe(reason);
    // Aborted before the call: nothing is parsed.
    await expect(readTemplates([set], {}, giveUp.signal)).rejects.toBe(reason);
    expect((await readTemplates([set])).templates).toHaveLength(3001);
  });

  it('a symlink loop is skipped with a warning, not walked forever', async () => {
    const loop = join(dir, 'loop');
    await mkdir(join(loop, 'a'), { recursive: true });
    await writeFile(join(loop, 'a', 'hello.yaml'), GOOD);
    await symlink('..', join(loop, 'a', 'up'));
    const r = await readTemplates([loop]);
    expect(r.templates).toHaveLength(1);
    expect(r.warnings).toEqual([{ file: join(loop, 'a', 'up'), message: 'skipped: symlink loop (this directory contains itself)' }]);
  });

  it('a chain of links to links (no loop) is read once per directory, not once per path', async () => {
    const chain = join(dir, 'chain');
    await mkdir(join(chain, 'l0'), { recursive: true });
    await writeFile(join(chain, 'l0', 'hello.yaml'), GOOD);
    // l(i) holds two links to l(i-1): 2^20 paths lead to l0 from l20.
    for (let i = 1; i <= 20; i++) {
      await mkdir(join(chain, `l${i}`));
      await symlink(join('..', `l${i - 1}`), join(chain, `l${i}`, 'a'));
      await symlink(join('..', `l${i - 1}`), join(chain, `l${i}`, 'b'));
    }
    const r = await readTemplates([join(chain, 'l20')]);
    expect(r.issues).toEqual([]);
    expect(r.templates).toHaveLength(1);
  });

  it('a FIFO named *.yaml is skipped with a warning instead of blocking the load', async () => {
    const d = join(dir, 'fifo');
    await mkdir(d);
    await writeFile(join(d, 'hello.yaml'), GOOD);
    execFileSync('mkfifo', [join(d, 'stuck.yaml')]);
    // A load that blocked on the FIFO would wait for a writer for good: the test's timeout ends it.
    const r = await readTemplates([d]);
    expect(r.issues).toEqual([]);
    expect(r.templates).toHaveLength(1);
    expect(r.warnings).toEqual([{ file: join(d, 'stuck.yaml'), message: 'skipped: not a regular file (a FIFO)' }]);
    const lint = await lintTemplates([d]);
    expect(lint.ok).toBe(true);
  });

  it('an empty templates directory loads with a warning', async () => {
    const d = join(dir, 'empty');
    await mkdir(d);
    const store = await loadTemplateStore([d]);
    expect(store.list()).toEqual([]);
    expect(store.warnings).toEqual([{ file: d, message: 'no *.yaml or *.yml template files found' }]);
  });

  it('a directory listed twice (or through a link) is read once, and is not called empty the second time', async () => {
    const d = join(dir, 'twice');
    await mkdir(join(d, 'team'), { recursive: true });
    await writeFile(join(d, 'team', 'hello.yaml'), GOOD);
    await symlink(join(d, 'team'), join(d, 'team-link'));
    for (const paths of [[join(d, 'team'), `${join(d, 'team')}/`], [join(d, 'team'), join(d, 'team-link')]]) {
      const r = await readTemplates(paths);
      expect(r.issues, paths.join(' ')).toEqual([]);
      expect(r.templates.map((t) => t.id)).toEqual(['team/hello']);
      expect(r.warnings, paths.join(' ')).toEqual([]);
    }
  });
});

describe('governance probe: load errors and values', () => {
  const withVar = (spec: string, content = 'Hello {{ name }}') =>
    GOOD.replace('  name: { type: string, max_length: 10 }', `  name: ${spec}`).replace('Hello {{ name }}', content);
  const GH = 'ghp_CANARY7f3aCANARY7f3aCANARY7f3aCANARY7f';
  const SK = 'sk-proj-CANARY7f3aCANARY7f3aCANARY7f3a';
  const AKIA = 'AKIAIOSFODNN7EXAMPLE';

  it('never repeats secret-looking text: malformed and undeclared placeholders, unknown keys', () => {
    const text = withVar('{ type: string }', `Hello {{ name }} {{${GH}}} {{ ${SK} }}`) + `${AKIA}: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n`;
    const issues = issuesOf(text);
    const all = issues.map(formatIssue).join('\n');
    expect(all).not.toContain('CANARY');
    expect(all).not.toContain(AKIA);
    expect(all).not.toContain('wJalrXUtnFEMI');
    // Each problem is still reported, and the key's credential kind is named (the scan now runs
    // even though the schema failed).
    expect(all).toMatch(/unknown key/);
    expect(all).toMatch(/a key looks like a literal secret \(AWS access key id\)/);
  });

  it('the placeholder problems themselves are reported without their text', () => {
    const issues = issuesOf(withVar('{ type: string }', `Hello {{ name }} {{${GH}}} {{ ${SK} }}`));
    const msgs = issues.map((i) => i.message);
    expect(msgs.some((m) => /malformed placeholder/.test(m))).toBe(true);
    expect(msgs.some((m) => /placeholder .*is not declared in variables/.test(m))).toBe(true);
    expect(msgs.join('\n')).not.toContain('CANARY');
  });

  it('a long pasted value between braces is described, not quoted, even when no pattern knows it', () => {
    const pasted = 'Zq8x Lm3v Pt7w Rk2y Hn5b Jd9c Gf4s Wa6e Xu1o Vi0p';
    const i = one(withVar('{ type: string }', `Hello {{ name }} {{ ${pasted} }}`));
    expect(i.message).toMatch(/malformed placeholder/);
    expect(i.message).not.toContain('Zq8x');
    const long = `k${'a1'.repeat(40)}`;
    const u = one(`${GOOD}${long}: 1\n`);
    expect(u.message).toMatch(/unknown key/);
    expect(formatIssue(u)).not.toContain(long);
  });

  it('short identifiers are still named', () => {
    expect(one(withVar('{ type: string }', 'Hello {{ name }} {{ nme }}')).message).toBe('placeholder {{nme}} is not declared in variables');
    expect(one(`${GOOD}extra: 1\n`).message).toBe('unknown key "extra"');
  });

  it('numeric config values keep their reviewed text; other number forms are refused where they are', () => {
    const r = parseTemplateFile('t.yaml', withVar('{ source: config, type: number, value: 2.50 }'));
    expect(r.issues).toEqual([]);
    expect(r.templates[0]!.template.variables.name!.value).toBe('2.50');
    const big = parseTemplateFile('t.yaml', withVar('{ source: config, type: number, value: 12345678901234567890 }'));
    expect(big.templates[0]!.template.variables.name!.value).toBe('12345678901234567890');
    for (const lit of ['0x10', '0o17', '1e400', '.inf', '-.inf', '.nan', '1e3']) {
      const i = one(withVar(`{ source: config, type: number, value: ${lit} }`));
      expect(i.path, lit).toBe('variables.name.value');
      expect(i.message, lit).toMatch(/plain decimal number/);
    }
  });

  it('allowed_services entries are valid lower-case globs', () => {
    for (const bad of ['pay[/x', 'a/{x', 'a/x\\\\', 'Dev/local', 'dev/[]', 'a/b/c', '[z-a]/x', '[a--]/x', 'a/[a-]', 'a/[-a]']) {
      const i = one(`${GOOD}allowed_services: ["dev/*", "${bad}"]\n`);
      expect(i.path, bad).toBe('allowed_services[1]');
    }
    // What loads is what the policy's glob.match can compile (a backwards range it cannot).
    const compiles = (glob: string) => new RE2(`^${globToRegex(glob, ['/'])}$`);
    expect(() => compiles('[z-a]/x')).toThrow();
    for (const ok of ['dev/*', 'support/ticket-bot', '*/*', 'team-?/bot', 'pay[0-9]/x', '{a,b}/worker', 'ns.x/sa_1', '[!a-c]x/y', '[a-cx]/[0-9a-f]']) {
      expect(issuesOf(`${GOOD}allowed_services: ["${ok}"]\n`), ok).toEqual([]);
      expect(() => compiles(ok), ok).not.toThrow();
    }
  });

  it('years 0000-0099 are real years; models are not blank', () => {
    expect(issuesOf(`${GOOD}retire_after: 0099-12-31\n`)).toEqual([]);
    expect(one(`${GOOD}retire_after: 0099-02-29\n`).message).toMatch(/calendar date/);
    expect(one(`${GOOD}models: ["  "]\n`).path).toBe('models[0]');
    // Blank is said once more plainly than by the model-name rule.
    expect(issuesOf(`${GOOD}models: [""]\n`).map((i) => i.message)).not.toContainEqual(expect.stringMatching(/this one has 0/));
  });

  it('models entries follow the request rule: a name no request could carry is refused at load, by index, with the character escaped', () => {
    // Written with YAML escapes: the file itself holds the raw characters.
    const cases: Array<[string, string, RegExp]> = [
      ['"gpt-4o\\u200b"', 'models[1]', /invisible format characters \(\\u200b at character 7\)$/],
      ['"gpt\\t4o"', 'models[1]', /control or invisible format characters \(\\u0009 at character 4\)$/],
      ['"gpt-4o\\u202e"', 'models[1]', /\(\\u202e at character 7\)$/],
      ['"gpt\\U0001D173"', 'models[1]', /\(\\u\{1d173\} at character 4\)$/],
      [`"${'m'.repeat(257)}"`, 'models[1]', /^must be 1 to 256 characters, .* \(this one has 257\)$/],
    ];
    for (const [entry, path, message] of cases) {
      const i = one(`${GOOD}models: [echo, ${entry}]\n`);
      expect(i, entry).toMatchObject({ file: 't.yaml', line: 11, path });
      expect(i.message, entry).toMatch(message);
      // The entry itself is never repeated, escaped or not.
      expect(JSON.stringify(i), entry).not.toContain('gpt');
      expect(formatIssue(i), entry).not.toMatch(/[\u200b\u202e\t]|\u{1d173}/u);
    }
    // Anything a request may carry still loads: dots, colons, slashes, spaces, upper case, 256 characters.
    for (const ok of ['gpt-4o', 'anthropic/claude-3.5:latest', 'My Model', 'Gpt-4O', 'm'.repeat(256)]) {
      expect(issuesOf(`${GOOD}models: ["${ok}"]\n`), ok).toEqual([]);
    }
  });

  it('a secret variable may not set type or required (they would be ignored)', () => {
    for (const extra of ['type: number', 'required: false']) {
      const i = one(withVar(`{ source: secret, ref: "file:secrets/k", ${extra} }`));
      expect(i.path, extra).toBe(`variables.name.${extra.split(':')[0]}`);
    }
  });
});

describe('a control character written as a YAML escape', () => {
  it('is refused at its value (a NUL or an ESC in a prompt is never meant); tab and line breaks are not', () => {
    const i = one(GOOD.replace('"Hello {{ name }}"', '"Hello\\x00 {{ name }}"'));
    expect(formatIssue(i)).toBe(
      't.yaml:10:14: messages[0].content: control character U+0000 is not allowed (of the control characters only tab, line feed and carriage return are; this one is written as an escape)',
    );
    expect(one(GOOD.replace('Say hello.', '"Say \\e[1mhello"')).message).toMatch(/^control character U\+001B /);
    expect(issuesOf(GOOD.replace('"Hello {{ name }}"', '"Hello\\t{{ name }}\\r\\n"'))).toEqual([]);
  });
});

describe('a key that is a list or a mapping', () => {
  it('is refused at the key, and the yaml library prints no warning quoting it', () => {
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      const i = one(GOOD.replace('  name: { type: string, max_length: 10 }', '  name: { type: string, max_length: 10 }\n  ? { k: AKIAIOSFODNN7EXAMPLE }\n  : { type: string }'));
      expect(formatIssue(i)).toBe('t.yaml:8:5: variables: a key must be a plain value (a word or a quoted string), not a list or a mapping');
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});

describe('a template file that is not UTF-8 text', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warden-templates-utf8-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is an issue at the first bad byte (invalid UTF-8, a NUL), not a prompt with U+FFFD or a NUL in it', async () => {
    const bytes = Buffer.concat([Buffer.from(GOOD.replace('"Hello {{ name }}"\n', '"hi ')), Buffer.from([0xff, 0xfe]), Buffer.from(' there"\n')]);
    await writeFile(join(dir, 'bad.yaml'), bytes);
    await writeFile(join(dir, 'nul.yaml'), GOOD.replace('Say hello.', 'Say\u0000hello.').replace('team/hello', 'team/nul'));
    await writeFile(join(dir, 'ok.yaml'), GOOD.replace('team/hello', 'team/ok'));
    const r = await readTemplates([dir]);
    expect(r.issues.map(formatIssue)).toEqual([
      `${join(dir, 'bad.yaml')}:10:18: not valid UTF-8`,
      `${join(dir, 'nul.yaml')}:5:17: control character U+0000 is not allowed (of the control characters only tab, line feed and carriage return are)`,
    ]);
    // lint fails on it too, with the same line.
    const { runTemplatesCli } = await import('../../src/templates/index.js');
    const out: string[] = [];
    const code = await runTemplatesCli(['lint', dir], { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) } });
    expect(code).toBe(1);
    expect(out.join('')).toContain(`${join(dir, 'bad.yaml')}:10:18: not valid UTF-8`);
  });
});
