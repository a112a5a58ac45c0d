/** The `warden` command line, run as a child process: help, version, usage errors, the dry run. */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { REPO, runMain as cli, runWarden, spawnWarden, type CliResult } from './helpers/cli.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { CANARY_API_KEY, eventually, prepareWardenDir, startWarden, type PreparedDir } from './helpers/warden.js';

/** Runs the CLI as a child with `input` on its stdin (and `env`, else this process's environment). */
function runWardenWithInput(args: string[], input: string, env?: NodeJS.ProcessEnv): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'main.ts'), ...args], { cwd: REPO, ...(env === undefined ? {} : { env }) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

let upstream: FakeUpstream;
let prepared: PreparedDir;

beforeAll(async () => {
  upstream = await startUpstream();
  prepared = await prepareWardenDir({ upstreamUrl: upstream.url });
});

afterAll(async () => {
  await upstream?.close();
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

describe('warden CLI', () => {
  it('--help and --version', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage:');
    for (const cmd of ['serve', 'render', 'policy', 'redact', 'audit']) expect(help.stdout).toContain(cmd);
    const version = await cli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^warden \d+\.\d+\.\d+$/);
  });

  it('--version, --help and help take nothing after them: anything else is a usage error, not ignored', async () => {
    const cases: Array<{ args: string[]; message: string }> = [
      { args: ['--version', '--bogus'], message: 'unknown option --bogus' },
      { args: ['-v', 'serve'], message: "unexpected argument 'serve' after -v" },
      { args: ['--help', '--bogus'], message: 'unknown option --bogus' },
      { args: ['help', 'me'], message: "unknown command 'me'" },
      { args: ['help', 'serve', 'now'], message: "unexpected argument 'now' after help serve" },
      { args: ['--versio'], message: 'unknown option --versio' },
    ];
    for (const c of cases) {
      const r = await cli(c.args);
      expect([r.code, r.stdout], c.args.join(' ')).toEqual([2, '']);
      expect(r.stderr, c.args.join(' ')).toMatch(new RegExp(`^warden: ${c.message.replace(/[-]/g, '\\-')}\n`));
    }
  });

  it('help COMMAND is COMMAND --help', async () => {
    for (const cmd of ['serve', 'render', 'audit']) {
      const viaHelp = await cli(['help', cmd]);
      const direct = await cli([cmd, '--help']);
      expect([viaHelp.code, viaHelp.stdout, viaHelp.stderr], cmd).toEqual([0, direct.stdout, '']);
      expect(viaHelp.stdout.toLowerCase()).toContain('usage');
    }
    // A subcommand's too: `help policy eval` is `policy eval --help`.
    for (const cmd of [['policy', 'eval'], ['policy', 'test'], ['audit', 'verify'], ['templates', 'lint']]) {
      const viaHelp = await cli(['help', ...cmd]);
      const direct = await cli([...cmd, '--help']);
      expect([viaHelp.code, viaHelp.stdout, viaHelp.stderr], cmd.join(' ')).toEqual([0, direct.stdout, '']);
      expect(viaHelp.stdout, cmd.join(' ')).toContain(`warden ${cmd.join(' ')}`);
    }
    // `help help` is the overall help, as `--help` prints it (it was "unknown command 'help'").
    const helpHelp = await cli(['help', 'help']);
    const overall = await cli(['--help']);
    expect([helpHelp.code, helpHelp.stdout, helpHelp.stderr]).toEqual([0, overall.stdout, '']);
    // One that does not exist is that command's usage error.
    const nope = await cli(['help', 'policy', 'nope']);
    expect([nope.code, nope.stdout, nope.stderr]).toEqual([2, '', "warden: unknown command 'nope'\nRun 'warden policy --help' for usage.\n"]);
  });

  it('every command has --help', async () => {
    for (const cmd of [['serve'], ['render'], ['policy'], ['redact'], ['audit', 'verify']]) {
      const r = await cli([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout.toLowerCase(), cmd.join(' ')).toContain('usage');
    }
  });

  it('a missing command or subcommand is a usage error: the help on stderr, exit 2, in every command; asked for, it is on stdout', async () => {
    for (const args of [[], ['policy'], ['audit'], ['templates']]) {
      const bare = await cli(args);
      expect([bare.code, bare.stdout], `warden ${args.join(' ')}`).toEqual([2, '']);
      expect(bare.stderr.toLowerCase(), `warden ${args.join(' ')}`).toContain('usage');
      const asked = await cli([...args, '--help']);
      expect([asked.code, asked.stderr, asked.stdout], `warden ${args.join(' ')} --help`).toEqual([0, '', bare.stderr]);
    }
  });

  it('unknown flags and commands are usage errors (exit 2)', async () => {
    const flag = await cli(['serve', '--config', 'x.yaml', '--bogus']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('unknown option --bogus');
    const cmd = await cli(['frobnicate']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain("unknown command 'frobnicate'");
    expect(cmd.stderr).toContain("Run 'warden --help' for usage.");
    expect(flag.stderr).toContain("Run 'warden serve --help' for usage.");
    // An empty config FILE is a mistake, not "no config".
    for (const args of [['redact', '--config='], ['redact', '--config', '']]) {
      const empty = await cli(args);
      expect(empty.code, args.join(' ')).toBe(2);
      expect(empty.stderr).toContain('--config is empty: it needs a value');
    }
    const missing = await cli(['render', '--config', prepared.configFile]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--template is required');
  });

  // README, "Running": a usage error is `warden: MESSAGE` and where help is, in every command;
  // an error about a file is `file:line:col: code: message`, or `file: code: message` when no
  // position applies.
  it('usage errors have one form in every command', async () => {
    const cases: Array<{ args: string[]; message: string; help: string }> = [
      { args: ['render', '--bogus'], message: 'unknown option --bogus', help: 'render' },
      { args: ['policy', 'eval', '--bogus'], message: 'unknown option --bogus', help: 'policy eval' },
      { args: ['policy', 'check'], message: 'want at least one PATH', help: 'policy check' },
      { args: ['policy', 'frobnicate'], message: "unknown command 'frobnicate'", help: 'policy' },
      { args: ['redact', '--bogus'], message: 'unknown option --bogus', help: 'redact' },
      { args: ['redact', '--mode', 'nope'], message: '--mode must be one of mask, hash, tokenize, block, allow', help: 'redact' },
      { args: ['audit', 'verify', '--bogus'], message: 'unknown option --bogus', help: 'audit verify' },
      { args: ['audit', 'frobnicate'], message: "unknown command 'frobnicate'", help: 'audit' },
      { args: ['templates', 'lint'], message: 'want at least one PATH', help: 'templates lint' },
      { args: ['templates', 'lint', '--fix', 'x'], message: 'unknown option --fix', help: 'templates lint' },
      { args: ['templates', 'publish'], message: "unknown command 'publish'", help: 'templates' },
    ];
    for (const c of cases) {
      const r = await cli(c.args);
      expect([r.code, r.stderr], c.args.join(' ')).toEqual([2, `warden: ${c.message}\nRun 'warden ${c.help} --help' for usage.\n`]);
    }
  });

  // One parser's rules for every command (README, "Running"): flags are checked before --help is
  // honoured, and a flag's missing, empty or unwanted value is named as such.
  it('argument mistakes read the same in every command', async () => {
    const cases: Array<{ args: string[]; message: string; help: string }> = [
      { args: ['policy', 'eval', '--help', '--bogus'], message: 'unknown option --bogus', help: 'policy eval' },
      { args: ['policy', 'test', '--bogus', '-h'], message: 'unknown option --bogus', help: 'policy test' },
      { args: ['policy', 'check', '--help', '--bogus'], message: 'unknown option --bogus', help: 'policy check' },
      { args: ['audit', 'verify', '--bogus', '--help'], message: 'unknown option --bogus', help: 'audit verify' },
      { args: ['templates', 'lint', '--bogus', '--help'], message: 'unknown option --bogus', help: 'templates lint' },
      { args: ['serve', '--config'], message: '--config needs a value', help: 'serve' },
      { args: ['serve', '-c'], message: '--config needs a value', help: 'serve' },
      { args: ['render', '--template'], message: '--template needs a value', help: 'render' },
      { args: ['serve', '--config', '--help'], message: '--config needs a value (one that starts with a dash is written --config=-VALUE)', help: 'serve' },
      { args: ['policy', 'eval', '-d'], message: '--data needs a value', help: 'policy eval' },
      { args: ['audit', 'verify', '--from-hash'], message: '--from-hash needs a value', help: 'audit verify' },
      { args: ['serve', '--config='], message: '--config is empty: it needs a value', help: 'serve' },
      { args: ['render', '--config', '', '-t', 'x@1'], message: '--config is empty: it needs a value', help: 'render' },
      { args: ['policy', 'eval', '--strict=1', 'data.x'], message: '--strict takes no value', help: 'policy eval' },
      { args: ['policy', 'test', '--verbose=yes', 'x.rego'], message: '--verbose takes no value', help: 'policy test' },
      { args: ['audit', 'verify', '--continue=1', 'f.jsonl'], message: '--continue takes no value', help: 'audit verify' },
      { args: ['serve', '--help=1'], message: '--help takes no value', help: 'serve' },
      // opa's users write -d=path; parseArgs would read the value as '=policies'.
      { args: ['policy', 'eval', '-d=policies', 'data'], message: '-d=VALUE is not a form -d takes: write -d VALUE or --data=VALUE', help: 'policy eval' },
      { args: ['serve', '-c=warden.yaml'], message: '-c=VALUE is not a form -c takes: write -c VALUE or --config=VALUE', help: 'serve' },
      // warden redact reads its flags with the same parser (--detect=no used to run with detection on).
      { args: ['redact', '--detect=no'], message: '--detect takes no value', help: 'redact' },
      { args: ['redact', '--profile='], message: '--profile is empty: it needs a value', help: 'redact' },
      { args: ['redact', '--profile', '--jsonl'], message: '--profile needs a value (one that starts with a dash is written --profile=-VALUE)', help: 'redact' },
      { args: ['redact', '--config', '--help'], message: '--config needs a value (one that starts with a dash is written --config=-VALUE)', help: 'redact' },
      { args: ['redact', '--profile', 'a', '--profile', 'b'], message: '--profile is given more than once (it takes one value)', help: 'redact' },
      // `warden templates --help` takes nothing after it, as `warden --help` does; --config's own
      // mistakes point at the help of `templates lint`, which takes it.
      { args: ['templates', '--help', '--bogus'], message: 'unknown option --bogus', help: 'templates' },
      { args: ['templates', '-h', 'lint'], message: "unexpected argument 'lint' after -h", help: 'templates' },
      { args: ['templates', 'help', 'nope'], message: "unknown command 'nope'", help: 'templates' },
      { args: ['templates', 'help', 'lint', 'x'], message: "unexpected argument 'x' after help lint", help: 'templates' },
      // The other command groups alike (they printed their help with exit 0).
      { args: ['policy', '--help', '--bogus'], message: 'unknown option --bogus', help: 'policy' },
      { args: ['policy', 'help', 'nope'], message: "unknown command 'nope'", help: 'policy' },
      { args: ['policy', 'help', 'eval', '--bogus'], message: 'unknown option --bogus', help: 'policy' },
      { args: ['audit', '--help', '--bogus'], message: 'unknown option --bogus', help: 'audit' },
      { args: ['audit', '-h', 'verify'], message: "unexpected argument 'verify' after -h", help: 'audit' },
      { args: ['audit', 'help', 'nope'], message: "unknown command 'nope'", help: 'audit' },
      { args: ['templates', 'lint', '-c'], message: '--config needs a value', help: 'templates lint' },
      { args: ['templates', 'lint', 'x', '--config='], message: '--config is empty: it needs a value', help: 'templates lint' },
    ];
    for (const c of cases) {
      const r = await cli(c.args);
      expect([r.code, r.stdout, r.stderr], c.args.join(' ')).toEqual([2, '', `warden: ${c.message}\nRun 'warden ${c.help} --help' for usage.\n`]);
    }
    // --help alone (or with valid flags) is still help, on stdout, exit 0.
    for (const args of [['policy', 'eval', '--strict', '--help'], ['audit', 'verify', '--continue', '-h'], ['templates', 'lint', '--help'], ['policy', '--help'], ['audit', 'help'], ['templates', 'help', 'lint']]) {
      const r = await cli(args);
      expect([r.code, r.stderr], args.join(' ')).toEqual([0, '']);
      expect(r.stdout.toLowerCase(), args.join(' ')).toContain('usage');
    }
    // `policy help eval` is `policy eval --help`.
    const [viaHelp, direct] = await Promise.all([cli(['policy', 'help', 'eval']), cli(['policy', 'eval', '--help'])]);
    expect([viaHelp.code, viaHelp.stdout]).toEqual([0, direct.stdout]);
    expect(direct.stdout).toContain('warden policy eval');
  });

  it('errors about a file name it first, then the code', async () => {
    const missing = join(prepared.dir, 'missing');
    const audit = await cli(['audit', 'verify', missing]);
    expect([audit.code, audit.stderr]).toEqual([2, `${missing}: file_unreadable: cannot read the file (ENOENT)\n`]);
    const lint = await cli(['templates', 'lint', missing]);
    expect([lint.code, lint.stderr]).toEqual([2, `${missing}: template_invalid: cannot read templates path (ENOENT)\n`]);
    const input = await cli(['policy', 'eval', '-i', missing, 'input']);
    expect([input.code, input.stderr]).toEqual([1, `${missing}: file_unreadable: cannot read input file (ENOENT)\n`]);
    const redact = await runWardenWithInput(['redact', '--jsonl'], '{"text": "ok"}\nnot json\n');
    expect([redact.code, redact.stderr]).toEqual([1, 'stdin:2: invalid_request: not a JSON object\n']);
    const blocked = await runWardenWithInput(['redact', '--mode', 'block'], 'mail a@b.com\n');
    expect([blocked.code, blocked.stderr]).toEqual([3, 'stdin: redaction_blocked: prompt contains blocked entity types: EMAIL_ADDRESS\n']);
  });

  it('redact with a directory on stdin fails as cat does (exit 1, named), not as empty input', async () => {
    const fd = openSync(prepared.dir, 'r');
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'main.ts'), 'redact'], { cwd: REPO, stdio: [fd, 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise((resolve) => child.once('close', resolve));
      expect([code, stdout, stderr]).toEqual([1, '', 'stdin: file_unreadable: cannot read stdin (EISDIR)\n']);
    } finally {
      closeSync(fd);
    }
  });

  it('redact --config builds only the secret stores its hmac_key needs: a pod\'s config works outside the pod', async () => {
    // secrets.kubernetes with its in-cluster defaults and a Vault CA only the pod mounts: serve
    // stops here, as it should; redact needs neither for a file key, and used to stop too.
    const dir = join(prepared.dir, 'pod-config');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'hmac.key'), 'CANARY-HMAC-KEY-0123456789abcdef\n');
    const pod = 'secrets:\n  kubernetes: {}\n  vault:\n    address: https://vault.example:8200\n    ca_file: /nonexistent/vault-ca.pem\n    auth: { token_file: /nonexistent/token }\n';
    writeFileSync(join(dir, 'file-key.yaml'), `${pod}redaction:\n  hmac_key: file:hmac.key\n  profiles: { default: { entities: [EMAIL_ADDRESS], mode: hash } }\n`);
    writeFileSync(join(dir, 'k8s-key.yaml'), `${pod}redaction:\n  hmac_key: k8s://support/keys#hmac\n`);
    const env = { ...process.env };
    delete env.KUBERNETES_SERVICE_HOST;
    const [ok, k8s] = await Promise.all(['file-key.yaml', 'k8s-key.yaml'].map((f) => runWardenWithInput(['redact', '--config', join(dir, f)], 'mail a@b.com\n', env)));
    expect([ok!.code, ok!.stderr]).toEqual([0, '']);
    expect(ok!.stdout).toMatch(/^mail \S+\n$/);
    expect(ok!.stdout).not.toContain('a@b.com');
    // A key in a store that cannot be built here still stops it, naming why.
    expect([k8s!.code, k8s!.stdout]).toEqual([1, '']);
    expect(k8s!.stderr).toContain('secrets.kubernetes: api_url is not set and KUBERNETES_SERVICE_HOST is not in the environment');
  });

  it('a bad RE2 pattern in the config is a config error (file:line:col, key path) for serve and redact, the pattern not echoed', async () => {
    const file = join(prepared.dir, 'bad-pattern.yaml');
    writeFileSync(file, 'redaction:\n  custom_entities:\n    - { name: EMPLOYEE_ID, pattern: "(CANARY-SECRET-7f3a" }\n');
    const expected = `warden: invalid configuration:\n  ${file}:3:28: redaction.custom_entities[0].pattern: is not a valid RE2 pattern (missing ))\n`;
    for (const args of [['redact', '--config', file], ['serve', '--config', file]]) {
      const r = await cli(args);
      expect([r.code, r.stderr], args[0]).toEqual([1, expected]);
    }
  });

  it('a single-valued option given twice is a usage error naming it (exit 2); repeatable ones stay repeatable', async () => {
    const cases: Array<{ args: string[]; option: string; help: string }> = [
      { args: ['serve', '--config', 'a.yaml', '--config', 'b.yaml'], option: '--config', help: "Run 'warden serve --help' for usage." },
      { args: ['serve', '-c', 'a.yaml', '--config=b.yaml'], option: '--config', help: "Run 'warden serve --help' for usage." },
      { args: ['render', '-c', 'a.yaml', '-t', 'x@1', '-t', 'y@1'], option: '--template', help: "Run 'warden render --help' for usage." },
      { args: ['policy', 'eval', '-i', 'a.json', '--input', 'b.json', 'input'], option: '--input', help: "Run 'warden policy eval --help' for usage." },
      { args: ['policy', 'eval', '-f', 'json', '--format=json', 'input'], option: '--format', help: "Run 'warden policy eval --help' for usage." },
      { args: ['redact', '--profile', 'standard', '--profile', 'strict'], option: '--profile', help: "Run 'warden redact --help' for usage." },
      { args: ['redact', '--mode', 'mask', '--mode=hash'], option: '--mode', help: "Run 'warden redact --help' for usage." },
      { args: ['redact', '--config', 'a.yaml', '-c', 'b.yaml'], option: '--config', help: "Run 'warden redact --help' for usage." },
      { args: ['audit', 'verify', '--from-hash', '0'.repeat(64), '--from-hash', '1'.repeat(64), 'f.jsonl'], option: '--from-hash', help: "Run 'warden audit verify --help' for usage." },
      { args: ['audit', 'verify', '--from-hash', '0'.repeat(64), '--from-seq', '1', '--from-seq', '2', 'f.jsonl'], option: '--from-seq', help: "Run 'warden audit verify --help' for usage." },
    ];
    for (const c of cases) {
      const r = await cli(c.args);
      expect(r.code, c.args.join(' ')).toBe(2);
      expect(r.stderr, c.args.join(' ')).toContain(`${c.option} is given more than once`);
      expect(r.stderr, c.args.join(' ')).toContain(c.help);
    }
    // Documented as repeatable: several -d/--data (as opa), several --var.
    writeFileSync(join(prepared.dir, 'one.json'), '{"one": 1}');
    writeFileSync(join(prepared.dir, 'two.json'), '{"two": 2}');
    const data = await cli(['policy', 'eval', '-d', join(prepared.dir, 'one.json'), '--data', join(prepared.dir, 'two.json'), 'data.one + data.two']);
    expect(data.code, data.stderr).toBe(0);
    expect(JSON.parse(data.stdout).result[0].expressions[0].value).toBe(3);
    const vars = await cli(['render', '-c', join(prepared.dir, 'nope.yaml'), '-t', 'x@1', '--var', 'a=1', '--var', 'b=2']);
    expect(vars.stderr).not.toContain('more than once');
  });

  it('render refuses a variable given twice (exit 2) rather than one value winning silently', async () => {
    for (const second of ['ticket_id=T-2', 'ticket_id=T-1']) {
      const r = await cli(['render', '-c', prepared.configFile, '-t', 'support/ticket-summary@2', '--var', 'ticket_id=T-1', '--var', 'customer_message=hi', '--var', second]);
      expect([r.code, r.stdout, r.stderr], second).toEqual([2, '', "warden: --var ticket_id is given more than once (a variable takes one value)\nRun 'warden render --help' for usage.\n"]);
    }
  });

  it('render says which half of --template is wrong: the id (upper case, empty) or the version', async () => {
    const idRule = "warden: --template ID must be a lower-case path such as support/ticket-summary (letters a-z, digits, '.', '_', '-' and '/')\nRun 'warden render --help' for usage.\n";
    const versionRule = "warden: --template must be ID or ID@VERSION with a positive integer version\nRun 'warden render --help' for usage.\n";
    for (const [ref, stderr] of [['Support/ticket-summary@2', idRule], ['Support/ticket-summary', idRule], ['@2', idRule], ['support/ticket-summary@02', versionRule], ['support/ticket-summary@', versionRule], ['support/ticket-summary@0', versionRule], ['support/ticket-summary@1000000000', "warden: --template VERSION must be at most 999999999\nRun 'warden render --help' for usage.\n"]]) {
      const r = await cli(['render', '-c', prepared.configFile, '-t', ref!, '--var', 'ticket_id=T-1']);
      expect([r.code, r.stdout, r.stderr], ref).toEqual([2, '', stderr]);
    }
  });

  it('render refuses a --var name that is not an identifier, as the ingress does, without repeating it', async () => {
    for (const name of ['bad name', 'x.y', 'jane@example.com', '1st']) {
      const r = await cli(['render', '-c', prepared.configFile, '-t', 'support/ticket-summary@2', '--var', `${name}=v`, '--var', 'ticket_id=T-1']);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toContain('--var NAME must be an identifier');
      expect(r.stderr, name).not.toContain(name);
    }
  });

  it('a FIFO given where a file is read is refused at once, not waited on for a writer', { timeout: 90_000 }, async () => {
    const fifo = join(prepared.dir, 'stuck.fifo');
    execFileSync('mkfifo', [fifo]);
    /**
     * Runs the CLI as a child. One that waits on the FIFO waits for good: the test's timeout ends
     * the test, and the child is killed when it ends.
     */
    const run = async (args: string[]): Promise<CliResult> => {
      const child = spawnWarden(args);
      onTestFinished(() => void child.kill('SIGKILL'));
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      return { code, stdout, stderr };
    };
    const cases: Array<{ args: string[]; code: number; message: string }> = [
      { args: ['audit', 'verify', fifo], code: 2, message: `${fifo}: file_unreadable: cannot read the file (not a regular file: a FIFO)` },
      { args: ['policy', 'eval', '-i', fifo, 'input'], code: 1, message: `${fifo}: file_unreadable: cannot read input file (not a regular file: a FIFO)` },
      { args: ['templates', 'lint', fifo], code: 2, message: `${fifo}: template_invalid: cannot read templates path (not a regular file: a FIFO)` },
      { args: ['render', '--config', fifo, '-t', 'x@1'], code: 1, message: `${fifo}: (root): cannot read the file (not a regular file: a FIFO)` },
      { args: ['redact', '--config', fifo], code: 1, message: `${fifo}: (root): cannot read the file (not a regular file: a FIFO)` },
    ];
    const results = await Promise.all(cases.map((c) => run(c.args)));
    cases.forEach((c, i) => {
      const r = results[i]!;
      expect(r.code, `${c.args.join(' ')}: ${r.stderr}`).toBe(c.code);
      expect(r.stderr, c.args.join(' ')).toContain(c.message);
    });
  });

  it('redact --jsonl streams: it stops reading stdin while its stdout reader does not keep up, and keeps order', { timeout: 120_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'main.ts'), 'redact', '--jsonl'], { cwd: REPO });
    child.stdin.on('error', () => undefined);
    const line = (i: number) => `${JSON.stringify({ text: `${i} ${'x'.repeat(1000)} mail a${i}@b.com` })}\n`;
    child.stdout.setEncoding('utf8');
    let rest = '';
    const out: string[] = [];
    const collect = (d: string) => {
      const parts = (rest + d).split('\n');
      rest = parts.pop()!;
      out.push(...parts);
    };
    // Once the child is up and answering (its first line is back), stop reading its stdout: with
    // back-pressure it fills its stdout pipe, stops reading stdin, and our writes stop draining.
    // Without it, it reads (and holds) everything.
    child.stdin.write(line(0));
    await new Promise<void>((resolve) =>
      child.stdout.once('data', (d: string) => {
        collect(d);
        child.stdout.pause();
        resolve();
      }),
    );
    const total = 40_000; // ~41 MB of input
    let sent = 1;
    let accepted = true;
    while (sent < total) {
      if (!accepted) {
        const drained = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 3000);
          child.stdin.once('drain', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        if (!drained) break;
      }
      accepted = child.stdin.write(line(sent));
      sent++;
    }
    // Stalled well before the end: the child holds a bounded amount, not the whole input.
    expect(sent).toBeLessThan(total / 4);
    // Now read everything: every line arrives, in order.
    child.stdout.on('data', collect);
    child.stdout.resume();
    for (let i = sent; i < sent + 100; i++) {
      if (!child.stdin.write(line(i))) await new Promise((resolve) => child.stdin.once('drain', resolve));
    }
    child.stdin.end();
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(out).toHaveLength(sent + 100);
    expect(out.map((l) => Number((JSON.parse(l) as { text: string }).text.split(' ')[0]))).toEqual(Array.from({ length: sent + 100 }, (_, i) => i));
    expect(out[5]).toBe(JSON.stringify({ text: `5 ${'x'.repeat(1000)} mail [EMAIL_ADDRESS]` }));
  });

  it('a reader that goes away (| head) ends the output quietly, without a stack trace', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'src', 'main.ts'), 'redact'], { cwd: join(import.meta.dirname, '..', '..') });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Read one piece of the answer, then stop reading: the next writes hit EPIPE.
    child.stdout.once('data', () => child.stdout.destroy());
    child.stdin.write('mail a@b.com\n'.repeat(200_000));
    child.stdin.end();
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(code).toBe(0);
  });

  it('a bad config file is reported with file, line and key (exit 1)', async () => {
    const r = await cli(['serve', '--config', join(prepared.dir, 'nope.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.yaml');
  });

  it('a policy that does not parse stops serve with its file, line and column (exit 1)', async () => {
    const broken = await prepareWardenDir({ upstreamUrl: upstream.url });
    try {
      writeFileSync(join(broken.dir, 'policies', 'broken.rego'), 'package warden\nimport rego.v1\nx := {"a": 1\n');
      const r = await cli(['serve', '--config', broken.configFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`warden: ${join(broken.dir, 'policies', 'broken.rego')}:4:1: policy_error: rego_parse_error:`);
    } finally {
      rmSync(broken.dir, { recursive: true, force: true });
    }
  });

  // Several CLI processes in turn (tsx start-up each): seconds apiece on a loaded machine.
  it('render prints the decision and the exact outbound prompt without calling upstream', { timeout: 60_000 }, async () => {
    const before = upstream.calls.length;
    const r = await runWarden([
      'render',
      '--config',
      prepared.configFile,
      '--template',
      'support/ticket-summary@2',
      '--var',
      'ticket_id=T-3003',
      '--var',
      'customer_message=Please call jane.doe@example.com about it',
      '--principal',
      'support/ticket-bot',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as any;
    expect(out.allowed).toBe(true);
    expect(out.decision.allow).toBe(true);
    expect(out.provider).toBe('upstream');
    expect(out.model).toBe('gpt-4o-mini');
    expect(out.messages[1].content).toBe('Ticket T-3003:\nPlease call [EMAIL_ADDRESS] about it');
    expect(upstream.calls.length).toBe(before);
    // The audit record of the dry run goes to stderr, never to stdout, and holds no values.
    expect(r.stderr).toContain('"action":"prompt.render"');
    expect(r.stderr).not.toContain('jane.doe@example.com');
    expect(r.stdout + r.stderr).not.toContain(CANARY_API_KEY);

    const text = await runWarden(['render', '-c', prepared.configFile, '-t', 'support/ticket-summary@2', '--var', 'ticket_id=T-1', '--var', 'customer_message=hi', '-p', 'support/ticket-bot']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('allow:      true');
    expect(text.stdout).toContain('--- user ---\nTicket T-1:\nhi');
  });

  it('render on a config without the dev method asks for --principal (usage error) instead of failing authentication', async () => {
    const r = await cli(['render', '-c', prepared.configFile, '-t', 'support/ticket-summary@2', '--var', 'ticket_id=T', '--var', 'customer_message=x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--principal NAMESPACE/SERVICE_ACCOUNT is required: the config has no dev identity (identity.methods: kubernetes)');
    expect(r.stdout).toBe('');
  });

  it('render reports a refusal with its code and reasons (exit 1)', async () => {
    const r = await runWarden(['render', '-c', prepared.configFile, '-t', 'support/ticket-summary@2', '--var', 'ticket_id=T', '--var', 'customer_message=x', '-p', 'marketing/campaign-bot']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refused: policy_denied');
    expect(r.stderr).toContain('reason: service marketing/campaign-bot may not run template support/ticket-summary');
  });

  it("render refuses what the ingress refuses before the pipeline (limits.max_variable_length, max_variables), as the call would, with the call's code", async () => {
    // The fixture's limits: max_variable_length 4096, max_variables 8; the template allows 8000 characters.
    const base = ['render', '-c', prepared.configFile, '-t', 'support/ticket-summary@2', '-p', 'support/ticket-bot', '--var', 'ticket_id=T-1'];
    const long = await runWarden([...base, '--var', `customer_message=${'CANARY-LONG '.repeat(420)}`]);
    expect(long.code, long.stdout).toBe(1);
    expect(long.stdout).toBe('');
    expect(long.stderr).toContain("refused: variable_invalid: variable 'customer_message' is longer than 4096 characters\n");
    expect(long.stderr).not.toContain('CANARY-LONG');
    // Its audit record says so, on stderr, as for any refusal.
    expect(long.stderr).toMatch(/"action":"prompt\.render".*"error_code":"variable_invalid"/);
    // Naming who asked (--principal): the refusal comes after the principal is known (it was null).
    const record = JSON.parse(long.stderr.split('\n').find((l) => l.includes('"error_code":"variable_invalid"'))!) as { principal: unknown };
    expect(record.principal).toMatchObject({ namespace: 'support', service_account: 'ticket-bot' });
    // The call itself, over HTTP, is refused the same way.
    const w = await startWarden({ upstreamUrl: upstream.url });
    try {
      const token = await w.signer.token('support', 'ticket-bot');
      const res = await postChat(w.addresses.http, token, {
        model: 'gpt-4o-mini',
        warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'CANARY-LONG '.repeat(420) } },
      });
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('variable_invalid');
    } finally {
      await w.close();
    }
    const many = await cli([...base, '--json', '--var', 'customer_message=x', ...Array.from({ length: 7 }, (_, i) => ['--var', `v${i}=x`]).flat()]);
    expect(many.code, many.stderr).toBe(1);
    expect(JSON.parse(many.stdout)).toMatchObject({ allowed: false, error: { code: 'invalid_request', message: 'too many template variables (limit 8)' } });
  });

  it('render --vars reads the variables as a JSON object from a file or stdin (values off the command line); a bad document is named, its values never', async () => {
    const args = ['render', '-c', prepared.configFile, '-t', 'support/ticket-summary@2', '-p', 'support/ticket-bot', '--json'];
    const file = join(prepared.dir, 'vars.json');
    // A number renders as the HTTP ingress renders a JSON number.
    writeFileSync(file, JSON.stringify({ ticket_id: 4711, customer_message: 'Please call jane.doe@example.com' }));
    const fromFile = await cli([...args, '--vars', file]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect((JSON.parse(fromFile.stdout) as any).messages[1].content).toBe('Ticket 4711:\nPlease call [EMAIL_ADDRESS]');
    const fromStdin = await runWardenWithInput([...args, '--vars', '-'], JSON.stringify({ ticket_id: 'T-5', customer_message: 'hi' }));
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect((JSON.parse(fromStdin.stdout) as any).messages[1].content).toBe('Ticket T-5:\nhi');
    // One variable in both places is a usage error, as --var twice is.
    const both = await cli([...args, '--vars', file, '--var', 'ticket_id=T-1']);
    expect([both.code, both.stderr]).toEqual([2, "warden: --var ticket_id is also in --vars (a variable takes one value)\nRun 'warden render --help' for usage.\n"]);
    // A document that cannot be used: `file: code: message`, exit 1, no value repeated.
    const cases: Array<[string, string]> = [
      ['{"ticket_id": "CANARY-VALUE', 'invalid_request: cannot parse variables: not valid JSON'],
      ['["CANARY-VALUE"]', 'invalid_request: the variables must be a JSON object of NAME: value'],
      ['{"ticket_id": {"x": "CANARY-VALUE"}}', "variable_invalid: variable 'ticket_id' must be a string, number or boolean"],
      ['{"CANARY-VALUE": "x"}', 'invalid_request: a variable name is not an identifier (letters, digits and _, at most 128 characters)'],
      // Beyond a double's range JSON.parse reads Infinity, which would render as the word.
      ['{"ticket_id": 1e400, "customer_message": "hi"}', "variable_invalid: variable 'ticket_id' is a JSON number beyond a double's range, which JSON.parse reads as Infinity: send it as a string"],
    ];
    for (const [text, message] of cases) {
      writeFileSync(file, text);
      const r = await cli([...args, '--vars', file]);
      expect([r.code, r.stdout, r.stderr], text).toEqual([1, '', `warden: ${file}: ${message}\n`]);
    }
    const missing = await cli([...args, '--vars', join(prepared.dir, 'none.json')]);
    expect([missing.code, missing.stderr]).toEqual([1, `warden: ${join(prepared.dir, 'none.json')}: file_unreadable: cannot read the file (ENOENT)\n`]);
  });

  it('render --vars refuses a variable the document gives twice (usage error, naming it and the repeat), rather than keeping the last', async () => {
    const args = ['render', '-c', prepared.configFile, '-t', 'support/ticket-summary@2', '-p', 'support/ticket-bot', '--json'];
    const file = join(prepared.dir, 'twice.json');
    writeFileSync(file, '{"ticket_id": "T-1",\n "customer_message": "CANARY-ONE", "customer_message": "CANARY-TWO"}');
    const r = await cli([...args, '--vars', file]);
    expect([r.code, r.stdout, r.stderr]).toEqual([2, '', `warden: ${file}:2:36: variable customer_message is given more than once in --vars (a variable takes one value)\nRun 'warden render --help' for usage.\n`]);
    const fromStdin = await runWardenWithInput([...args, '--vars', '-'], '{"ticket_id": "T-1", "ticket_id": "T-2", "customer_message": "hi"}');
    expect([fromStdin.code, fromStdin.stdout, fromStdin.stderr]).toEqual([2, '', "warden: stdin:1:22: variable ticket_id is given more than once in --vars (a variable takes one value)\nRun 'warden render --help' for usage.\n"]);
    // The same name in a nested object is no repeat of a variable (and that value is refused for its type).
    writeFileSync(file, '{"ticket_id": "T-1", "customer_message": {"x": 1, "y": {"x": 2}}}');
    const nested = await cli([...args, '--vars', file]);
    expect([nested.code, nested.stderr]).toEqual([1, `warden: ${file}: variable_invalid: variable 'customer_message' must be a string, number or boolean\n`]);
    const help = await cli(['render', '--help']);
    expect(help.stdout).toContain('a name repeated in the\n--vars document');
  });

  it('policy eval -i - reads the input from stdin, JSON or YAML, held to the same cap and errors as a file (named stdin)', { timeout: 90_000 }, async () => {
    const pol = join(prepared.dir, 'policies');
    const json = await runWardenWithInput(['policy', 'eval', '-d', pol, '-i', '-', 'input.account'], '{"account": 9007199254740993}');
    expect([json.code, json.stderr]).toEqual([0, '']);
    expect(json.stdout).toContain('"value": 9007199254740993,');
    const yaml = await runWardenWithInput(['policy', 'eval', '-d', pol, '-i', '-', 'input.user'], 'user: alice\n');
    expect(yaml.stdout).toContain('"value": "alice",');
    const broken = await runWardenWithInput(['policy', 'eval', '-d', pol, '-i', '-', 'input'], '{"token": "sk-proj-CANARYabcdefghijklmnopqrstuv');
    expect([broken.code, broken.stdout, broken.stderr]).toEqual([1, '', 'stdin:1:48: input_invalid: cannot parse input: not valid JSON; not YAML either (it breaks at line 1, column 48)\n']);
    const big = await runWardenWithInput(['policy', 'eval', '-d', pol, '-i', '-', 'input'], `"${'x'.repeat(8 * 1024 * 1024)}"`);
    expect([big.code, big.stdout, big.stderr]).toEqual([1, '', 'stdin: payload_too_large: the input is larger than 8 MiB (8388608 bytes)\n']);
  });

  // Several CLI processes in turn (tsx start-up each): seconds apiece on a loaded machine.
  it('render refuses a model the config does not route, as the call itself would, and defaults to a routed one', { timeout: 60_000 }, async () => {
    // The policy allows gpt-4o-mini and echo; this config routes only echo.
    const unrouted = await prepareWardenDir({ upstreamUrl: upstream.url, models: 'models: { echo: echo, down-model: down }' });
    try {
      const args = ['render', '-c', unrouted.configFile, '-t', 'support/ticket-summary@2', '--var', 'ticket_id=T-1', '--var', 'customer_message=hi', '-p', 'support/ticket-bot'];
      const refused = await runWarden([...args, '--model', 'gpt-4o-mini']);
      expect(refused.code, refused.stdout).toBe(1);
      expect(refused.stderr).toContain('refused: invalid_request: model "gpt-4o-mini" is not configured');
      expect(refused.stdout).not.toContain('allow:');
      // The template lists gpt-4o-mini first; the default is the first model the config routes.
      const chosen = await runWarden([...args, '--json']);
      expect(chosen.code, chosen.stderr).toBe(0);
      const out = JSON.parse(chosen.stdout) as any;
      expect(out).toMatchObject({ allowed: true, model: 'echo', provider: 'echo' });
    } finally {
      rmSync(unrouted.dir, { recursive: true, force: true });
    }
  });

  it('audit verify checks the chain written by Warden and finds tampering', async () => {
    const w = await startWarden({ upstreamUrl: upstream.url });
    try {
      const token = await w.signer.token('support', 'ticket-bot');
      for (let i = 0; i < 3; i++) {
        const res = await postChat(w.addresses.http, token, {
          model: 'gpt-4o-mini',
          warden: { template: 'support/ticket-summary@2', variables: { ticket_id: `T-${i}`, customer_message: 'x' } },
        });
        await res.arrayBuffer();
      }
      await w.runtime.shutdown('test');
      const ok = await cli(['audit', 'verify', w.auditFile]);
      expect(ok.code, ok.stderr).toBe(0);
      const lines = readFileSync(w.auditFile, 'utf8').trim().split('\n');
      lines[1] = lines[1]!.replace('"status":"ok"', '"status":"error"');
      writeFileSync(w.auditFile, `${lines.join('\n')}\n`);
      const bad = await cli(['audit', 'verify', w.auditFile]);
      expect(bad.code).toBe(1);
    } finally {
      await w.close();
    }
  });
});

describe('warden serve with its stdout on /dev/null', () => {
  it('warns on stderr that a stdout audit sink discards every record, then serves and stops as usual', { timeout: 60_000 }, async () => {
    // A port free a moment ago for the admin listener: with stdout gone, no log line names it.
    const probe = createNetServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'main.ts'), 'serve', '--config', join(REPO, 'deploy', 'local', 'warden.yaml')], {
      cwd: REPO,
      env: { ...process.env, WARDEN_HTTP_LISTEN: '127.0.0.1:0', WARDEN_GRPC_LISTEN: '127.0.0.1:0', WARDEN_ADMIN_LISTEN: `127.0.0.1:${port}` },
      // `> /dev/null`, as systemd's StandardOutput=null or a supervisor that discards output.
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    onTestFinished(() => void child.kill('SIGKILL'));
    const up = async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      } catch {
        return false;
      }
    };
    await Promise.race([eventually(up, 50), exited.then(() => Promise.reject(new Error(`warden exited before serving: ${stderr}`)))]);
    // Said before the listeners were bound, so it is there by now.
    expect(stderr).toContain('warden: warning: audit.sinks: stdout is /dev/null: the audit records written there are discarded');
    child.kill('SIGTERM');
    expect((await exited)[0]).toBe(0);
  });
});
