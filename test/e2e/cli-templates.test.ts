/** `warden templates lint PATH...` through the real CLI entry: exit codes and file:line:col output. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { REPO, runMain as cli, runWarden } from './helpers/cli.js';
import { prepareWardenDir, templateNeedingVariables } from './helpers/warden.js';

const GOOD = `id: demo/hello
version: 1
owner: team@example.com
sensitivity: internal
description: A clean template.
retire_after: 2099-12-31
models: [echo]
variables:
  name: { type: string, max_length: 32 }
messages:
  - role: user
    content: "Hello {{name}}"
`;

// Line 12 col 27 is the undeclared placeholder; the linter must point at it.
const BAD = `id: demo/broken
version: 1
owner: team@example.com
sensitivity: internal
description: Uses a variable it never declares.
retire_after: 2099-12-31
models: [echo]
variables:
  name: { type: string, max_length: 32 }
messages:
  - role: user
    content: "Hello {{name}} {{undeclared_thing}}"
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-tlint-'));
  mkdirSync(join(dir, 'good'));
  mkdirSync(join(dir, 'bad'));
  writeFileSync(join(dir, 'good', 'hello.yaml'), GOOD);
  writeFileSync(join(dir, 'bad', 'broken.yaml'), BAD);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('warden templates', () => {
  it('is listed in the main help and has its own --help', async () => {
    const main = await cli(['--help']);
    expect(main.stdout).toMatch(/^\s+templates\s/m);
    for (const args of [['templates', '--help'], ['templates', 'lint', '--help']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: warden templates lint PATH...');
    }
  });

  it('clean templates exit 0 with a summary', async () => {
    const r = await cli(['templates', 'lint', join(dir, 'good')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: 1 template\(s\) in 1 file\(s\)/);
  });

  it('the shipped default templates lint clean', async () => {
    const r = await cli(['templates', 'lint', join(REPO, 'deploy', 'local', 'templates')]);
    expect(r.stdout + r.stderr).toMatch(/^ok: /);
    expect(r.code).toBe(0);
  });

  it('a problem exits 1 and is reported as file:line:col (child process, as a user runs it)', async () => {
    const file = join(dir, 'bad', 'broken.yaml');
    const r = await runWarden(['templates', 'lint', join(dir, 'good'), join(dir, 'bad')]);
    expect(r.code).toBe(1);
    const line = r.stdout.split('\n').find((l) => l.startsWith(`${file}:`));
    expect(line, r.stdout).toBeDefined();
    expect(line).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:12:\\d+: .*undeclared_thing`));
    expect(r.stdout).toMatch(/\b1 problem\(s\)/);
  });

  it('a problem never repeats secret-looking text: the key or placeholder is described, its credential kind named', async () => {
    const d = join(dir, 'canary');
    mkdirSync(d);
    writeFileSync(
      join(d, 'k1.yaml'),
      'id: gov/k1\nversion: 1\nowner: me@example.com\nsensitivity: internal\ndescription: d\nAKIAIOSFODNN7EXAMPLE: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nmessages:\n  - role: user\n    content: hi\n',
    );
    writeFileSync(
      join(d, 'k3.yaml'),
      'id: gov/k3\nversion: 1\nowner: me@example.com\nsensitivity: internal\ndescription: d\nmessages:\n  - role: user\n    content: "hi {{ghp_CANARY7f3aCANARY7f3aCANARY7f3aCANARY7f}} {{ sk-proj-CANARY7f3aCANARY7f3aCANARY7f3a }}"\n',
    );
    const r = await cli(['templates', 'lint', d]);
    expect(r.code).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).not.toContain('CANARY');
    expect(out).not.toContain('AKIAIOSFODNN7EXAMPLE');
    expect(out).toContain('k1.yaml:6:1: <key not shown>: unknown key (name not shown: it looks like a literal secret (AWS access key id))');
    expect(out).toMatch(/k1\.yaml:\d+:\d+: a key looks like a literal secret \(AWS access key id\)/);
    expect(out).toMatch(/k3\.yaml:8:\d+: messages\[0\]\.content: malformed placeholder/);
    expect(out).toMatch(/k3\.yaml:8:\d+: messages\[0\]\.content: placeholder \(name not shown: it looks like a literal secret \(GitHub token\)\) is not declared/);
  });

  it("a YAML syntax error never repeats the file's text: a block scalar header, a %YAML version, a stray token, a bad escape are described", async () => {
    const d = join(dir, 'syntax-canary');
    mkdirSync(d);
    const key = 'AKIAIOSFODNN7EXAMPLE';
    const head = 'id: gov/s\nversion: 1\nowner: me@example.com\nsensitivity: internal\ndescription: d\n';
    const files: Record<string, string> = {
      // A key pasted on the header line of a block scalar: `|` may be followed by indicators only.
      's1.yaml': `${head}messages:\n  - role: user\n    content: |${key}\n      hi\n`,
      's2.yaml': `%YAML ${key}\n---\n${head}`,
      // A scalar after a stray closing bracket: the parser's stray-token error quoted it whole.
      's3.yaml': `${head}models: ]${key}\n`,
      // \U takes 8 hex digits: the error quoted the 10 characters from the backslash.
      's4.yaml': `${head}owner: "\\U${key}"\n`,
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
    const r = await cli(['templates', 'lint', d]);
    expect(r.code).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).not.toContain(key.slice(0, 8));
    expect(out).toMatch(/s1\.yaml:8:\d+: YAML: Block scalar header includes extra characters \(after \| or > only an indentation or chomping indicator may stand; its text is not repeated\)/);
    expect(out).toMatch(/s2\.yaml:1:\d+: YAML: Unsupported YAML version \(its text is not repeated\)/);
    expect(out).toMatch(/s3\.yaml:6:\d+: YAML: Unexpected scalar token in YAML stream \(its text is not repeated\)/);
    expect(out).toMatch(/s4\.yaml:6:\d+: YAML: Invalid escape sequence in a double-quoted string \(its text is not repeated\)/);
  });

  it('--config FILE applies the config\'s limits: a template needing more variables than max_variables is reported where serve refuses it', async () => {
    // The e2e config allows 8 variables per request; this template requires nine.
    const wide = templateNeedingVariables(9);
    const prepared = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1', files: { 'templates/wide.yaml': wide } });
    try {
      const templates = join(prepared.dir, 'templates');
      const expected = `${join(templates, 'wide.yaml')}:7:3: variables: 9 required request variables, more than one request may send (limits.max_variables: 8): no request could call this template`;
      // Without a config lint cannot know the limit: clean, as before.
      const plain = await cli(['templates', 'lint', templates]);
      expect(plain.code, plain.stdout).toBe(0);
      for (const args of [
        ['templates', 'lint', '--config', prepared.configFile, templates],
        ['templates', 'lint', templates, '-c', prepared.configFile],
        ['templates', 'lint', `--config=${prepared.configFile}`, templates],
      ]) {
        const r = await cli(args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stdout.split('\n'), args.join(' ')).toContain(expected);
        expect(r.stdout).toMatch(/\b1 problem\(s\)/);
      }
      // The very line a start with that config fails with.
      const logger = createLogger({ level: 'error' }, { write: () => undefined });
      const err = await createRuntime(loadConfig(prepared.configFile, {}), { logger, configDir: prepared.dir }).catch((e: unknown) => e);
      expect((err as Error).message).toContain(expected);
      // Eight required ones fit, with the config too.
      writeFileSync(join(templates, 'wide.yaml'), wide.replace('  v8: { type: string }', '  v8: { type: string, required: false }'));
      const fits = await cli(['templates', 'lint', '--config', prepared.configFile, templates]);
      expect(fits.code, fits.stdout).toBe(0);
    } finally {
      rmSync(prepared.dir, { recursive: true, force: true });
    }
  });

  it('--config FILE applies secrets.file_roots: a ref outside is reported where serve refuses it, relative refs against the config directory', async () => {
    const ref = 'file:///var/run/secrets/kubernetes.io/serviceaccount/token';
    const probe = (r: string) => `id: ops/probe\nversion: 1\nowner: sre@example.com\nsensitivity: internal\ndescription: d\nmodels: [gpt-4o-mini]\nvariables:\n  code: { source: secret, ref: "${r}" }\nmessages:\n  - role: user\n    content: "{{code}}"\n`;
    const prepared = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1', files: { 'templates/probe.yaml': probe(ref) } });
    try {
      const templates = join(prepared.dir, 'templates');
      const expected = `${join(templates, 'probe.yaml')}:8:32: variables.code.ref: file ref is outside secrets.file_roots (${join(prepared.dir, 'secrets')})`;
      // Without a config only the ref's syntax is checked.
      expect((await cli(['templates', 'lint', templates])).code).toBe(0);
      // One problem: the fixture's own file:secrets/... ref resolves against the config's directory, not the working one.
      const r = await cli(['templates', 'lint', '--config', prepared.configFile, templates]);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stdout.split('\n'), r.stdout).toContain(expected);
      expect(r.stdout).toMatch(/\b1 problem\(s\)/);
      expect(r.stdout + r.stderr).not.toContain(ref);
    } finally {
      rmSync(prepared.dir, { recursive: true, force: true });
    }
  });

  it('--config is documented, takes one FILE, and a config that does not load stops the lint', async () => {
    const help = await cli(['templates', 'lint', '--help']);
    expect(help.stdout).toContain('--config FILE');
    expect(help.stdout).toContain('limits.max_variables');
    const noFile = await cli(['templates', 'lint', join(dir, 'good'), '--config']);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('warden: --config needs a value');
    const twice = await cli(['templates', 'lint', '-c', 'a.yaml', '--config', 'b.yaml', join(dir, 'good')]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('--config is given more than once');
    const missing = await cli(['templates', 'lint', '--config', join(dir, 'nope.yaml'), join(dir, 'good')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${join(dir, 'nope.yaml')}: (root): cannot read the file (ENOENT)`);
    expect(missing.stdout).toBe('');
  });

  it('usage errors exit 2: no PATH, unknown subcommand, unknown flag, missing path', async () => {
    const none = await cli(['templates', 'lint']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('warden: want at least one PATH');
    const sub = await cli(['templates', 'publish']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain("warden: unknown command 'publish'");
    const flag = await cli(['templates', 'lint', '--fix', dir]);
    expect(flag.code).toBe(2);
    const bare = await cli(['templates']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: warden templates lint');
    const missing = await cli(['templates', 'lint', join(dir, 'does-not-exist')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stdout + missing.stderr).toContain('does-not-exist');
  });
});
