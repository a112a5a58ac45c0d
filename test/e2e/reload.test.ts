/**
 * Hot reload: a file change swaps the template/policy set atomically; a bad change is rejected
 * with a log line naming file and line, and the last good set keeps serving.
 */
import { appendFileSync, closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;
let token: string;

const V3 = `
---
id: support/ticket-summary
version: 3
owner: support-platform@example.com
sensitivity: internal
description: Third version, added while Warden runs.
approvals:
  - { by: dana.lee@example.com, ticket: SEC-2001, at: 2026-05-01 }
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  ticket_id: { type: string, max_length: 32 }
messages:
  - role: user
    content: "Version three for {{ticket_id}}"
`;

async function call(version: number): Promise<{ status: number; body: any }> {
  const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template: `support/ticket-summary@${version}`, variables: { ticket_id: 'T-5' } } });
  return { status: res.status, body: await res.json() };
}

async function readyz(): Promise<any> {
  return (await fetch(`${w.addresses.admin}/readyz`)).json();
}

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url, watch: true });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

describe('hot reload', () => {
  it('a new template version is served after the file changes', async () => {
    const before = (await readyz()).template_revision;
    expect((await call(3)).status).toBe(404);
    appendFileSync(join(w.dir, 'templates', 'support', 'ticket-summary.yaml'), V3);
    await eventually(async () => (await readyz()).template_revision !== before);
    const r = await call(3);
    expect(r.status).toBe(200);
    expect(r.body.choices[0].message.content).toBe('upstream saw: Version three for T-5');
    // The log line reaches us through the child's stdout pipe, which may trail /readyz's answer.
    await eventually(() => w.logs.some((l) => l.includes('reload applied')));
  });

  it('a broken template is rejected with file and line; the last good set keeps serving', async () => {
    const good = await readyz();
    const file = join(w.dir, 'templates', 'ops', 'broken.yaml');
    writeFileSync(file, 'id: ops/broken\nversion: 1\nowner: x@example.com\nsensitivity: secret-ish\nmessages: []\n');
    await eventually(() => w.logs.some((l) => l.includes('reload rejected') && l.includes('broken.yaml:')));
    const line = w.logs.find((l) => l.includes('reload rejected'))!;
    expect(line).toMatch(/broken\.yaml:\d+:\d+/);
    const now = await readyz();
    expect(now.template_revision).toBe(good.template_revision);
    expect(now.status).toBe('ready');
    expect((await call(3)).status).toBe(200);
    const metrics = await (await fetch(`${w.addresses.admin}/metrics`)).text();
    expect(metrics).toMatch(/warden_reload_total\{[^}]*kind="templates"[^}]*outcome="error"[^}]*\} [1-9]/);
    // Fixing the file (here: removing it) is picked up again.
    rmSync(file);
    await eventually(async () => w.logs.filter((l) => l.includes('reload applied')).length >= 2);
  });

  it('a template file truncated for an in-place save is rejected while empty; its templates keep serving until the write lands', async () => {
    const file = join(w.dir, 'templates', 'support', 'ticket-summary.yaml');
    const text = readFileSync(file, 'utf8');
    const good = await readyz();
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected')).length;
    const applied = () => w.logs.filter((l) => l.includes('reload applied')).length;
    const rejectedBefore = rejected();
    // What `cat new > file`, cp and many editors do: truncate, then write (a reload can run between).
    const fd = openSync(file, 'r+');
    try {
      ftruncateSync(fd, 0);
      await eventually(() => rejected() > rejectedBefore);
      const line = w.logs.filter((l) => l.includes('reload rejected')).at(-1)!;
      expect(line).toContain('ticket-summary.yaml:1:1: file contains no template');
      expect((await readyz()).template_revision).toBe(good.template_revision);
      expect((await call(3)).status).toBe(200);
      const appliedBefore = applied();
      writeSync(fd, text, 0);
      await eventually(() => applied() > appliedBefore);
    } finally {
      closeSync(fd);
    }
    expect((await readyz()).template_revision).toBe(good.template_revision);
    expect((await call(3)).status).toBe(200);
  });

  it('a broken policy is rejected with file and line; decisions keep coming from the old one', async () => {
    const good = await readyz();
    const policy = join(w.dir, 'policies', 'e2e.rego');
    const original = readFileSync(policy, 'utf8');
    const rejectedBefore = w.logs.filter((l) => l.includes('reload rejected')).length;
    writeFileSync(policy, `${original}\nbroken_rule if {\n  input.x ==\n}\n`);
    await eventually(() => w.logs.filter((l) => l.includes('reload rejected')).length > rejectedBefore);
    const line = w.logs.filter((l) => l.includes('reload rejected')).at(-1)!;
    expect(line).toMatch(/e2e\.rego:\d+/);
    expect((await readyz()).policy_revision).toBe(good.policy_revision);
    expect((await call(3)).status).toBe(200);
    writeFileSync(policy, original);
    await eventually(async () => w.logs.filter((l) => l.includes('reload applied')).length >= 3);
  });

  it('a policy change that leaves policy.entrypoint naming no rule is rejected; decisions keep coming from the old set', async () => {
    const good = await readyz();
    const policy = join(w.dir, 'policies', 'e2e.rego');
    const original = readFileSync(policy, 'utf8');
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected'));
    const before = rejected().length;
    const applied = w.logs.filter((l) => l.includes('reload applied')).length;
    // The package renamed: it compiles, but data.warden.decision is gone (every call would be denied).
    writeFileSync(policy, original.replace('package warden\n', 'package wardn\n'));
    try {
      await eventually(() => rejected().length > before);
      const line = rejected().at(-1)!;
      expect(line).toContain('"kind":"policies"');
      expect(line).toContain('policy.entrypoint: \\"warden/decision\\" names no rule: data.warden.decision is not defined by the loaded policies; the loaded packages are wardn');
      expect((await readyz()).policy_revision).toBe(good.policy_revision);
      expect((await call(3)).status).toBe(200);
    } finally {
      // Restored even when the change was wrongly applied: the later tests share this policy.
      writeFileSync(policy, original);
    }
    await eventually(() => w.logs.filter((l) => l.includes('reload applied')).length > applied);
  });

  it('a *_test.rego file with a non-test rule of package warden loads with one warning naming it (OPA would apply the rule, Warden leaves it out)', async () => {
    const applied = w.logs.filter((l) => l.includes('reload applied')).length;
    const file = join(w.dir, 'policies', 'extra_test.rego');
    writeFileSync(file, 'package warden\nimport rego.v1\n\ntest_default_denies if not decision.allow\nmodels := ["gpt-4o"]\n');
    try {
      // The warning first: a reload still due to the test before (its file restored) can be the
      // one `applied` counts, ahead of the one that reads this file (CI, a loaded machine).
      await eventually(() => w.logs.some((l) => l.includes('is left out')));
      await eventually(() => w.logs.filter((l) => l.includes('reload applied')).length > applied);
      const warnings = w.logs.filter((l) => l.includes('is left out'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({
        level: 'warn',
        file,
        line: 5,
        msg: `policies: ${file}:5:1: rule "models" of package warden is left out: files named *_test.rego are not part of the policy set (OPA bundles and opa eval include them); move it to a file not named *_test.rego, or name it test_…`,
      });
      // Left out: the fixture's own models rule still decides (with gpt-4o-mini), no conflict.
      expect((await call(3)).status).toBe(200);
    } finally {
      rmSync(file, { force: true });
    }
    await eventually(() => w.logs.filter((l) => l.includes('reload applied')).length > applied + 1);
  });

  it('many aliases load; an alias bomb is rejected as a templates problem with file and line', async () => {
    const applied = w.logs.filter((l) => l.includes('reload applied')).length;
    const dry = join(w.dir, 'templates', 'ops', 'dry.yaml');
    writeFileSync(
      dry,
      `id: ops/dry\nversion: 1\nowner: &o ops@example.com\nsensitivity: internal\ndescription: d\nmodels: [${Array(60).fill('*o').join(', ')}]\nmessages:\n  - { role: user, content: hi }\n`,
    );
    await eventually(() => w.logs.filter((l) => l.includes('reload applied')).length > applied);
    const rejected = w.logs.filter((l) => l.includes('reload rejected')).length;
    const levels = ['x: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [prev, next] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f']]) levels.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    writeFileSync(dry, `${levels.join('\n')}\nid: ops/dry\n`);
    await eventually(() => w.logs.filter((l) => l.includes('reload rejected')).length > rejected);
    const line = w.logs.filter((l) => l.includes('reload rejected')).at(-1)!;
    expect(line).toMatch(/dry\.yaml:2:\d+: YAML: aliases expand too much/);
    expect(line).toContain('"kind":"templates"');
    rmSync(dry);
    await eventually(() => w.logs.filter((l) => l.includes('reload applied')).length > applied + 1);
  });

  it('a template or policy data file with an unknown YAML tag is rejected, naming the tag; the last good set keeps serving', async () => {
    const good = await readyz();
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected'));
    const before = rejected().length;
    const file = join(w.dir, 'templates', 'ops', 'tagged.yaml');
    // Read without the tag, this would be a valid template whose description is a file name.
    writeFileSync(
      file,
      'id: ops/tagged\nversion: 1\nowner: ops@example.com\nsensitivity: internal\ndescription: !include brief.md\nmodels: [gpt-4o-mini]\nmessages:\n  - { role: user, content: hi }\n',
    );
    await eventually(() => rejected().length > before);
    expect(rejected().at(-1)).toMatch(/tagged\.yaml:5:14: unknown YAML tag !include/);
    expect((await readyz()).template_revision).toBe(good.template_revision);
    expect((await call(3)).status).toBe(200);
    rmSync(file);

    const data = join(w.dir, 'policies', 'limits.yaml');
    writeFileSync(data, 'limits:\n  max_tokens: !vault limits/max\n');
    await eventually(() => rejected().length > before + 1);
    const line = rejected().at(-1)!;
    expect(line).toMatch(/limits\.yaml:2:15: rego_parse_error: cannot parse data file: unknown YAML tag !vault/);
    expect(line).toContain('"kind":"policies"');
    expect((await readyz()).policy_revision).toBe(good.policy_revision);
    expect((await call(3)).status).toBe(200);
    writeFileSync(data, 'limits:\n  max_tokens: 100\n');
    await eventually(async () => (await readyz()).policy_revision !== good.policy_revision);
  });

  it('a policy data file in JSON with a key set twice in one object is rejected at the second, never read as one of them; the last good set keeps serving', async () => {
    const good = await readyz();
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected'));
    const before = rejected().length;
    const data = join(w.dir, 'policies', 'blocklist.json');
    // A parser keeps the last "blocked" and drops the reviewed list (with the caller's service in it).
    writeFileSync(data, '{\n  "blocked": ["support/ticket-bot"],\n  "note": "CANARY-DATA-7",\n  "blocked": []\n}\n');
    await eventually(() => rejected().length > before);
    const line = rejected().at(-1)!;
    expect(line).toMatch(/blocklist\.json:4:3: rego_parse_error: cannot parse data file: duplicate key: already set at line 2, column 3 \(keys must be unique\)/);
    expect(line).toContain('"kind":"policies"');
    expect(line).not.toContain('CANARY');
    expect((await readyz()).policy_revision).toBe(good.policy_revision);
    expect((await call(3)).status).toBe(200);
    // Keys of the same name in different objects are fine.
    writeFileSync(data, '{"blocked": [{"blocked": 1}, {"blocked": 2}]}\n');
    await eventually(async () => (await readyz()).policy_revision !== good.policy_revision);
    expect((await call(3)).status).toBe(200);
    rmSync(data);
    await eventually(async () => (await readyz()).policy_revision === good.policy_revision);
  });

  it('a template or policy data file that is not UTF-8 (or holds a NUL) is rejected at the first bad byte; the last good set keeps serving', async () => {
    const good = await readyz();
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected'));
    const before = rejected().length;
    const file = join(w.dir, 'templates', 'ops', 'latin1.yaml');
    const head = 'id: ops/latin1\nversion: 1\nowner: ops@example.com\nsensitivity: internal\ndescription: d\nmodels: [gpt-4o-mini]\nmessages:\n  - { role: user, content: "caf';
    writeFileSync(file, Buffer.concat([Buffer.from(head), Buffer.from([0xe9]), Buffer.from('" }\n')]));
    await eventually(() => rejected().length > before);
    expect(rejected().at(-1)).toMatch(/latin1\.yaml:8:32: not valid UTF-8/);
    expect((await readyz()).template_revision).toBe(good.template_revision);
    expect((await call(3)).status).toBe(200);
    rmSync(file);

    const data = join(w.dir, 'policies', 'nul.yaml');
    writeFileSync(data, 'nul:\n  name: "a\u0000b"\n');
    await eventually(() => rejected().length > before + 1);
    const line = rejected().at(-1)!;
    expect(line).toMatch(/nul\.yaml:2:11: rego_parse_error: cannot parse data file: control character U\+0000 is not allowed/);
    expect((await readyz()).policy_revision).toBe(good.policy_revision);
    expect((await call(3)).status).toBe(200);
    writeFileSync(data, 'nul:\n  name: ab\n');
    await eventually(async () => (await readyz()).policy_revision !== good.policy_revision);
  });

  it('a template or policy file larger than its cap is rejected by its size, naming the file and the cap; the last good set keeps serving', async () => {
    const good = await readyz();
    const served = (await call(3)).status; // 200 after the first test, 404 when this one runs alone
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected'));
    const before = rejected().length;
    const file = join(w.dir, 'templates', 'ops', 'huge.yaml');
    writeFileSync(file, `# ${'x'.repeat(1024 * 1024)}\n`);
    await eventually(() => rejected().length > before);
    expect(rejected().at(-1)).toContain('huge.yaml:1:1: the file is 1048579 bytes; a template file may be at most 1 MiB (1048576 bytes)');
    expect((await readyz()).template_revision).toBe(good.template_revision);
    expect((await call(3)).status).toBe(served);
    rmSync(file);

    const rego = join(w.dir, 'policies', 'huge.rego');
    writeFileSync(rego, `package huge\n# ${'x'.repeat(1024 * 1024)}\n`);
    await eventually(() => rejected().length > before + 1);
    expect(rejected().at(-1)).toContain('huge.rego: rego_compile_error: the file is 1048592 bytes; a policy (.rego) file may be at most 1 MiB (1048576 bytes)');
    expect((await readyz()).policy_revision).toBe(good.policy_revision);
    expect((await call(3)).status).toBe(served);
    const applied = () => w.logs.filter((l) => l.includes('reload applied')).length;
    const appliedBefore = applied();
    rmSync(rego);
    await eventually(() => applied() > appliedBefore);
    expect(rejected()).toHaveLength(before + 2);
  });

  it('a rejected reload never logs secret-looking text from the template', async () => {
    const rejected = () => w.logs.filter((l) => l.includes('reload rejected'));
    const before = rejected().length;
    const file = join(w.dir, 'templates', 'ops', 'canary.yaml');
    writeFileSync(
      file,
      'id: ops/canary\nversion: 1\nowner: ops@example.com\nsensitivity: internal\ndescription: d\nAKIAIOSFODNN7EXAMPLE: x\nmessages:\n  - role: user\n    content: "hi {{ghp_CANARY7f3aCANARY7f3aCANARY7f3aCANARY7f}} {{ sk-proj-CANARY7f3aCANARY7f3aCANARY7f3a }}"\n',
    );
    await eventually(() => rejected().length > before);
    const line = rejected().at(-1)!;
    expect(line).toMatch(/canary\.yaml:\d+:\d+/);
    expect(line).toContain('a key looks like a literal secret (AWS access key id)');
    for (const l of w.logs) {
      expect(l).not.toContain('CANARY');
      expect(l).not.toContain('AKIAIOSFODNN7EXAMPLE');
    }
    const applied = w.logs.filter((l) => l.includes('reload applied')).length;
    rmSync(file);
    await eventually(() => w.logs.filter((l) => l.includes('reload applied')).length > applied);
  });

  /** The policy with the template rule's grant turned into a deny: what revoking access looks like. */
  function revoked(policy: string): string {
    const grant = '"allow": true,\n\t"reasons": ["service is allowed by the template"],';
    expect(policy).toContain(grant);
    return policy.replace(grant, '"allow": false,\n\t"reasons": ["revoked by the test"],');
  }

  // sed -i, vim and most editors save by writing a temp file and renaming it over the original;
  // on Node 20 and 24 a recursive fs.watch then stopped reporting that file for good, so a later
  // in-place revocation kept the old grant serving until SIGHUP.
  it('a policy file saved by rename is still watched: a later in-place edit that revokes access applies without SIGHUP', { timeout: 30_000 }, async () => {
    const policy = join(w.dir, 'policies', 'e2e.rego');
    const original = readFileSync(policy, 'utf8');
    const before = (await readyz()).policy_revision;
    writeFileSync(`${policy}.tmp`, `# saved by rename\n${original}`);
    renameSync(`${policy}.tmp`, policy);
    await eventually(async () => (await readyz()).policy_revision !== before);
    expect((await call(3)).status).toBe(200);

    writeFileSync(policy, revoked(original)); // in place, as `open(p, 'w')` or `>` does
    await eventually(async () => (await call(3)).status === 403);
    expect((await call(3)).body.error.code).toBe('policy_denied');
    writeFileSync(policy, original);
    await eventually(async () => (await call(3)).status === 200);
  });

  // A mounted ConfigMap: `e2e.rego -> ..data/e2e.rego`, `..data -> ..<timestamp>`; the kubelet
  // writes a new timestamped directory and renames a new `..data` link over the old one.
  it('a Kubernetes ConfigMap update (the ..data link swapped) applies, a revocation included', { timeout: 30_000 }, async () => {
    const dir = join(w.dir, 'policies');
    const original = readFileSync(join(dir, 'e2e.rego'), 'utf8');
    let n = 0;
    const publish = (text: string): void => {
      const old = n > 0 ? `..ts${n}` : undefined;
      n++;
      mkdirSync(join(dir, `..ts${n}`));
      writeFileSync(join(dir, `..ts${n}`, 'e2e.rego'), text);
      symlinkSync(`..ts${n}`, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      if (old) rmSync(join(dir, old), { recursive: true });
    };
    publish(original);
    symlinkSync('..data/e2e.rego', join(dir, 'e2e.rego.link'));
    renameSync(join(dir, 'e2e.rego.link'), join(dir, 'e2e.rego'));
    expect((await call(3)).status).toBe(200);

    publish(revoked(original));
    await eventually(async () => (await call(3)).status === 403);
    publish(original);
    await eventually(async () => (await call(3)).status === 200);
  });

  it('an explicit reload (what SIGHUP triggers) reports success and keeps the revision when nothing changed', async () => {
    const before = await readyz();
    expect(await w.runtime.reload('SIGHUP')).toBe(true);
    expect((await readyz()).policy_revision).toBe(before.policy_revision);
  });
});

// A watched directory that goes away is an ordinary change, not a failure to watch: a
// sub-directory removed while watched (rm -rf, rsync's and deploy tools' temp directories), even
// one found by a scan and gone before its watch is set up, logs no error and no "cannot watch"
// warning; the same directory made anew is watched and loaded again.
describe('hot reload: a watched directory removed and made anew', () => {
  let own: WardenFixture;
  beforeAll(async () => {
    own = await startWarden({ upstreamUrl: upstream.url, watch: true });
  });
  afterAll(async () => {
    await own?.close();
  });

  const BRIEF_V2 = `id: ops/incident-brief
version: 2
owner: sre@example.com
sensitivity: internal
description: Second version, in a directory made anew.
approvals:
  - { by: lee.chen@example.com, ticket: SEC-1312 }
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  service: { type: string, max_length: 64 }
messages:
  - role: user
    content: "Brief two for {{service}}"
`;

  it('logs neither an error nor a watch warning, and loads the directory again once it is back', { timeout: 30_000 }, async () => {
    const templates = join(own.dir, 'templates');
    const ops = join(templates, 'ops');
    const brief = readFileSync(join(ops, 'incident-brief.yaml'), 'utf8');
    const bot = await own.signer.token('support', 'ticket-bot');
    const briefV2 = async () =>
      (await postChat(own.addresses.http, bot, { model: 'gpt-4o-mini', warden: { template: 'ops/incident-brief@2', variables: { service: 'billing' } } })).status;
    const applied = () => own.logs.filter((l) => l.includes('reload applied')).length;
    const from = own.logs.length;

    // Removed while watched: the set without it is applied.
    const before = applied();
    rmSync(ops, { recursive: true });
    await eventually(() => applied() > before);
    // Directories that come and go faster than a scan and its watches (about half of them are
    // listed by a scan and gone when their watch is set up: ENOENT).
    for (let i = 0; i < 60; i++) {
      mkdirSync(join(templates, `staging-${i}`, 'deeper'), { recursive: true });
      await new Promise((r) => setTimeout(r, i % 7));
      rmSync(join(templates, `staging-${i}`), { recursive: true });
      await new Promise((r) => setTimeout(r, 3));
    }
    expect(await briefV2()).toBe(404);

    // Made anew, with a new version in it: watched again and loaded.
    mkdirSync(ops);
    writeFileSync(join(ops, 'incident-brief.yaml'), `${brief}---\n${BRIEF_V2}`);
    await eventually(async () => (await briefV2()) === 200);

    const logged = own.logs.slice(from).map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(logged.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
    expect(logged.filter((l) => l.msg.includes('cannot watch'))).toEqual([]);
    expect(logged.filter((l) => l.msg === 'reload applied').length).toBeGreaterThanOrEqual(2);
  });
});

// A request in flight when the set changes ran on one set: its audit record names the template set
// its template came from (and the policy set that decided), even when the new set keeps the
// template's id@version with other text; /readyz and the revision metric name the set serving now.
describe('hot reload: a request in flight while the template set changes', () => {
  let own: WardenFixture;
  beforeAll(async () => {
    own = await startWarden({ upstreamUrl: upstream.url, watch: true });
  });
  afterAll(async () => {
    upstream.mode = 'ok';
    await own?.close();
  });

  const activeTemplateRevision = async (): Promise<string | undefined> =>
    /warden_active_revision_info\{[^}]*kind="templates"[^}]*revision="([0-9a-f]+)"/.exec(await (await fetch(`${own.addresses.admin}/metrics`)).text())?.[1];

  it('its audit record names the template revision it was rendered from, not the one serving when it ends', { timeout: 30_000 }, async () => {
    const bot = await own.signer.token('support', 'ticket-bot');
    const summary = () =>
      postChat(own.addresses.http, bot, { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-7', customer_message: 'Hello.' } } });
    const ready = async () => (await fetch(`${own.addresses.admin}/readyz`)).json() as Promise<{ template_revision: string; policy_revision: string }>;
    const before = await ready();
    expect(await activeTemplateRevision()).toBe(before.template_revision);

    upstream.mode = 'held';
    const calls = upstream.calls.length;
    const inFlight = summary();
    await eventually(() => upstream.held === 1);
    // The same id@version, edited in place (the text changes, the version does not).
    const file = join(own.dir, 'templates', 'support', 'ticket-summary.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('in exactly three bullet points', 'in exactly two bullet points'));
    await eventually(async () => (await ready()).template_revision !== before.template_revision);
    const after = await ready();
    expect(await activeTemplateRevision()).toBe(after.template_revision);
    upstream.release();
    expect((await inFlight).status).toBe(200);
    upstream.mode = 'ok';
    expect(upstream.calls[calls]!.body.messages[0].content).toContain('three bullet points');

    const next = await summary();
    expect(next.status).toBe(200);
    expect(upstream.calls.at(-1)!.body.messages[0].content).toContain('two bullet points');

    const records = own.audit().slice(-2);
    expect(records.map((r) => r.template)).toEqual([
      { id: 'support/ticket-summary', version: 2, sensitivity: 'internal' },
      { id: 'support/ticket-summary', version: 2, sensitivity: 'internal' },
    ]);
    expect(records.map((r) => r.template_revision)).toEqual([before.template_revision, after.template_revision]);
    expect(records.map((r) => r.policy_revision)).toEqual([before.policy_revision, after.policy_revision]);
  });

  it('a raw request in flight across a reload: its record names the template and policy set that decided it, never a pair that did not serve together', { timeout: 30_000 }, async () => {
    const ready = async () => (await fetch(`${own.addresses.admin}/readyz`)).json() as Promise<{ template_revision: string; policy_revision: string }>;
    const before = await ready();
    const raw = await own.signer.token('labs', 'raw-bot');
    upstream.mode = 'held';
    const inFlight = postChat(own.addresses.http, raw, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await eventually(() => upstream.held === 1);
    // A template change only: the policy set stays, the template set is new.
    const file = join(own.dir, 'templates', 'support', 'ticket-summary.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('bullet points', 'bullets'));
    await eventually(async () => (await ready()).template_revision !== before.template_revision);
    upstream.release();
    expect((await inFlight).status).toBe(200);
    upstream.mode = 'ok';
    const record = own.audit().at(-1)!;
    expect(record.decision).toEqual({ allow: true, reasons: expect.any(Array) });
    expect(record.policy_revision).toBe(before.policy_revision);
    expect(record.template_revision).toBe(before.template_revision);
  });

  it('a record of a request that resolved no template names the template set serving', async () => {
    const raw = await postChat(own.addresses.http, await own.signer.token('labs', 'raw-bot'), { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(raw.status).toBe(200);
    expect(own.audit().at(-1)!.template_revision).toBe(((await (await fetch(`${own.addresses.admin}/readyz`)).json()) as { template_revision: string }).template_revision);
  });
});

// A directory of more files than the reload check's scan lists (20,000: both loaders' caps together)
// dropped into a watched path: the scan stops listing it, a reload still runs, and the loader
// refuses the set with its own error; the last good set keeps serving, and the tree brought back
// under the cap loads again.
describe('hot reload: a directory of more files than the scan and the loader take', () => {
  let own: WardenFixture;
  beforeAll(async () => {
    own = await startWarden({ upstreamUrl: upstream.url, watch: true });
  });
  afterAll(async () => {
    await own?.close();
  });

  it("is refused with the template loader's error; /readyz keeps the old revision; removing it reloads", { timeout: 60_000 }, async () => {
    const ready = async () => (await fetch(`${own.addresses.admin}/readyz`)).json() as Promise<{ status: string; template_revision: string }>;
    const before = await ready();
    const bulk = join(own.dir, 'bulk');
    mkdirSync(bulk);
    for (let i = 0; i < 20_050; i++) writeFileSync(join(bulk, `t${i}.yaml`), '');
    const rejected = () => own.logs.filter((l) => l.includes('reload rejected'));
    const applied = () => own.logs.filter((l) => l.includes('reload applied')).length;
    // Moved in at once (one entry event), as a deploy tool would.
    renameSync(bulk, join(own.dir, 'templates', 'bulk'));
    await eventually(() => rejected().some((l) => l.includes('more than 10000 template files')));
    // The check's scan stopped in it, and says so once (what lies past it is not checked).
    await eventually(() => own.logs.some((l) => l.includes('"code":"too_many_files"') && l.includes(join('templates', 'bulk'))));
    expect(own.logs.filter((l) => l.includes('too_many_files'))).toHaveLength(1);
    const now = await ready();
    expect(now.status).toBe('ready');
    expect(now.template_revision).toBe(before.template_revision);
    const bot = await own.signer.token('support', 'ticket-bot');
    expect(
      (await postChat(own.addresses.http, bot, { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-9', customer_message: 'Hi.' } } })).status,
    ).toBe(200);

    const appliedBefore = applied();
    rmSync(join(own.dir, 'templates', 'bulk'), { recursive: true });
    await eventually(() => applied() > appliedBefore);
    expect((await ready()).template_revision).toBe(before.template_revision);
  });
});
