/**
 * README's walkthrough and its API examples, run as written. Every shell command in the
 * "Walkthrough" section, and every curl example of the HTTP API sections, is taken from README.md
 * itself and run with bash against `warden serve` on the embedded default
 * (deploy/local/warden.yaml), so the page cannot drift from what Warden does. Two substitutions
 * only, both outside the commands' meaning: the fixed ports 8700/8702 become the ports this run
 * was given (tests run in parallel), and `node dist/src/main.js` becomes the sources run through
 * tsx (CI type-checks but does not build). `npm install && npm start` is not run: the server
 * under test is what `npm start` serves.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARD_LEAK } from './helpers/canaries.js';
import { REPO, spawnWarden, watchServe } from './helpers/cli.js';

const README = readFileSync(join(REPO, 'README.md'), 'utf8');

/** The section under `heading` (a `## ` or `### ` line), up to the next heading of its level or above. */
function section(heading: string): string {
  const start = README.indexOf(`\n${heading}\n`);
  expect(start, `README has a "${heading}" section`).toBeGreaterThanOrEqual(0);
  const level = /^#+ /.exec(heading)![0];
  const next = level === '## ' ? /\n## /g : /\n#{2,3} /g;
  next.lastIndex = start + 1;
  const end = next.exec(README)?.index;
  return README.slice(start, end);
}
const walkthrough = () => section('## Walkthrough');

/**
 * A section's ```sh blocks split into commands (a `\` at a line's end continues one), each with
 * the `# ...` comment lines that follow it (README shows an answer that way).
 */
function commandsWithComments(text: string): Array<{ command: string; shown: string[] }> {
  const out: Array<{ command: string; shown: string[] }> = [];
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let current = '';
    let previous = '';
    let quoted = false;
    for (const line of block[1]!.split('\n')) {
      // A comment right under a command (no blank line between) shows its answer.
      if (!quoted && line.startsWith('# ') && current === '' && previous !== '' && !previous.startsWith('#')) out.at(-1)?.shown.push(line.slice(2));
      previous = line;
      if (!quoted && (line.trim() === '' || line.startsWith('#'))) continue;
      current += (current ? '\n' : '') + line;
      // A single-quoted argument may span lines (the JSON body of the first curl).
      for (const ch of line) if (ch === "'") quoted = !quoted;
      if (!quoted && !line.endsWith('\\')) {
        out.push({ command: current, shown: [] });
        current = '';
      }
    }
    expect(current, 'a command in README is cut off').toBe('');
  }
  return out;
}
const commands = (text: string) => commandsWithComments(text).map((c) => c.command);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function bash(command: string): Promise<Ran> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd: REPO, timeout: 60_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const all = commands(walkthrough());
/** The one command that starts with `prefix`: each is checked once, so none goes untested. */
const checked = new Set<string>();
function command(prefix: string): string {
  const found = all.filter((c) => c.startsWith(prefix));
  expect(found, `walkthrough commands starting with ${JSON.stringify(prefix)}`).toHaveLength(1);
  checked.add(found[0]!);
  return found[0]!;
}

let serve: ReturnType<typeof watchServe>;
let child: ReturnType<typeof spawnWarden>;
let ports: { http: string; admin: string };

/** The command as this run can execute it (see the file's comment for the two substitutions). */
function local(cmd: string): string {
  return cmd
    .replaceAll('127.0.0.1:8700', ports.http)
    .replaceAll('127.0.0.1:8702', ports.admin)
    .replaceAll('node dist/src/main.js', `${JSON.stringify(process.execPath)} --import tsx src/main.ts`);
}

beforeAll(async () => {
  child = spawnWarden(['serve', '--config', 'deploy/local/warden.yaml'], {
    WARDEN_HTTP_LISTEN: '127.0.0.1:0',
    WARDEN_GRPC_LISTEN: '127.0.0.1:0',
    WARDEN_ADMIN_LISTEN: '127.0.0.1:0',
  });
  serve = watchServe(child);
  const addr = await serve.listening;
  ports = { http: new URL(addr.http).host, admin: new URL(addr.admin).host };
}, 60_000);

afterAll(async () => {
  child.kill('SIGTERM');
  expect(await serve.exited).toBe(0);
});

describe('README walkthrough', () => {
  const run = (prefix: string) => bash(local(command(prefix)));

  afterAll(() => {
    // Every command of the section was run by one of the tests below.
    expect(all.filter((c) => !checked.has(c) && !c.startsWith('npm install'))).toEqual([]);
  });

  it('finds the commands it runs in README', () => {
    expect(all[0]).toBe('npm install && npm start');
    expect(all.length).toBeGreaterThanOrEqual(9);
  });

  it('runs the governed template: the echo answer shows the restored e-mail and phone, and the audit record holds neither', async () => {
    const ran = await run('curl -s http://127.0.0.1:8700/v1/chat/completions -H \'content-type: application/json\' -d \'{\n  "model": "echo"');
    expect(ran.code).toBe(0);
    const body = JSON.parse(ran.stdout) as { choices: Array<{ message: { content: string } }> };
    const content = body.choices[0]!.message.content;
    expect(content).toContain('Ticket T-1234');
    expect(content).toContain('jane.doe@example.com');
    expect(content).toContain('+1 415 555 0132');
    // "Every request leaves one hash-chained audit record (on stdout ...) — never the prompt, a variable value".
    const records = serve.lines.filter((l) => l.includes('"prompt.execute"') && l.includes('"support/ticket-summary"'));
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(r).toContain('"prompt_hmac"');
      expect(r).not.toContain('jane.doe');
      expect(r).not.toContain('555 0132');
    }
  });

  it('streams the same call when "stream": true is added', async () => {
    const cmd = local(command('curl -s http://127.0.0.1:8700/v1/chat/completions -H \'content-type: application/json\' -d \'{\n  "model": "echo"'));
    const streamed = cmd.replace('"model": "echo",', '"model": "echo", "stream": true,');
    expect(streamed).not.toBe(cmd);
    const ran = await bash(streamed);
    expect(ran.code).toBe(0);
    expect(ran.stdout.startsWith('data: ')).toBe(true);
    expect(ran.stdout.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('answers the retired version exactly as the comment under it shows', async () => {
    const ran = await run('curl -s http://127.0.0.1:8700/v1/chat/completions -H \'content-type: application/json\' \\\n  -d \'{"model":"echo","warden":{"template":"support/ticket-summary@1"');
    const shown = /^# (\{"error":.*\})$/m.exec(walkthrough())?.[1];
    expect(shown).toBeDefined();
    expect(ran.stdout).toBe(shown);
  });

  it('renders the tokenised prompt without calling a model', async () => {
    const ran = await run('node dist/src/main.js render');
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toContain('<PHONE_NUMBER_1>');
    expect(ran.stdout).not.toContain('415 555 0132');
  });

  it('lists the models, readiness with the active revision, and the request counter', async () => {
    const models = JSON.parse((await run('curl -s http://127.0.0.1:8700/v1/models')).stdout) as { data: Array<{ id: string }> };
    expect(models.data.map((m) => m.id)).toContain('echo');
    const ready = JSON.parse((await run('curl -s http://127.0.0.1:8702/readyz')).stdout) as { ready: boolean; policy_revision: string };
    expect(ready.ready).toBe(true);
    expect(ready.policy_revision).toMatch(/^[0-9a-f]{64}$/);
    // The body "Health and readiness" shows has the members Warden sends, no more, no fewer.
    const shown = /`(\{"status":"ready"[^`]*\})`/.exec(section('### Health and readiness'))?.[1];
    expect(shown, 'README shows the /readyz body').toBeDefined();
    expect(Object.keys(ready).sort()).toEqual(Object.keys(JSON.parse(shown!.replaceAll('…', '')) as object).sort());
    const metrics = await run('curl -s http://127.0.0.1:8702/metrics | grep ^warden_requests_total');
    expect(metrics.code).toBe(0);
    expect(metrics.stdout).toMatch(/^warden_requests_total\{[^}]*code="ok"[^}]*\} [1-9]/m);
    // The series at 0 (every protocol and code is exposed from the start) are filtered out.
    expect(metrics.stdout).not.toMatch(/ 0$/m);
  });

  // Two CLI processes start cold (the redactor loads its detectors): 60 s each, as `run` allows,
  // since 20 s passed on a quiet machine but not beside five other test runs (load 12-15).
  it("runs the default policy's unit tests and redacts text on the command line", { timeout: 120_000 }, async () => {
    const tests = await run('node dist/src/main.js policy test policies');
    expect(tests.code, tests.stdout + tests.stderr).toBe(0);
    const redacted = await run("echo 'card 4111 1111 1111 1111, mail bob@example.org' | node dist/src/main.js redact");
    expect(redacted.code, redacted.stderr).toBe(0);
    expect(redacted.stdout).toMatch(/^card \S+, mail \S+\n$/);
    expect(redacted.stdout).not.toMatch(CARD_LEAK);
    expect(redacted.stdout).not.toContain('bob@example.org');
  });
});

/**
 * The curl examples of the API reference, run against the same server: each must succeed (no
 * error object, a stream that ends as its protocol ends), and an answer README shows under one
 * (`# {...}`) must be the one Warden gives (`...` in it stands for more members of a list).
 */
describe('README API examples', () => {
  const sections = ['### HTTP: `POST /v1/chat/completions`', '### HTTP: `GET /v1/models`, `GET /v1/models/{id}`', '### HTTP: `POST /v1/messages` (Anthropic-compatible)'];
  const examples = sections.flatMap((h) => commandsWithComments(section(h))).filter((c) => c.command.startsWith('curl '));

  it('finds the examples', () => {
    expect(examples.length).toBeGreaterThanOrEqual(6);
  });

  it.each(examples.map((e) => [e.command.split('\n')[0]!, e] as const))('%s', async (_, example) => {
    const ran = await bash(local(example.command));
    expect(ran.code, ran.stderr).toBe(0);
    const out = ran.stdout.trim();
    if (out.startsWith('{')) {
      const body = JSON.parse(out) as Record<string, unknown>;
      expect(body.error, out).toBeUndefined();
      expect(body.type, out).not.toBe('error');
    } else if (out.startsWith('data: ')) {
      expect(out.endsWith('data: [DONE]'), out).toBe(true);
    } else {
      // Anthropic's stream: named events, ending with message_stop.
      expect(out.startsWith('event: message_start'), out).toBe(true);
      expect(out).toContain('event: message_stop');
    }
    for (const shown of example.shown) {
      if (!shown.startsWith('{')) continue;
      if (shown.includes(', ...]')) {
        // A list shown in part: what is shown is the answer's beginning.
        expect(out.startsWith(shown.slice(0, shown.indexOf(', ...]'))), `${out}\nshown: ${shown}`).toBe(true);
      } else {
        expect(out).toBe(shown);
      }
    }
  });
});
