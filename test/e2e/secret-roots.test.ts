/**
 * Where a template's secret refs may point (secrets.file_roots, secrets.env_allow), on a real
 * Warden: refs outside are refused at load with file:line (never the ref), a symlink swapped in
 * after the load is refused at fetch, and the config's own key, outside every root, still works
 * while no template may name it. No canary reaches the caller, the upstream, the log or the audit.
 */
import { linkSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { CANARY_API_KEY, prepareWardenDir, startWarden, type WardenFixture } from './helpers/warden.js';

const CODE = 'CANARY-ROOTED-CODE-71ab';
const OUTSIDE = 'CANARY-OUTSIDE-TOKEN-93fe';
const ENV_NAME = 'WARDEN_TEST_CLOUD_CREDENTIAL_Q7';
const ENV_VALUE = 'CANARY-CLOUD-CRED-5e1d';

function template(id: string, ref: string): string {
  return `id: ${id}
version: 1
owner: sre@example.com
sensitivity: internal
description: Signs with a code read from a secret ref.
approvals:
  - { by: lee.chen@example.com, ticket: SEC-1400 }
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  code: { source: secret, ref: "${ref}" }
messages:
  - role: system
    content: "Sign with {{code}}."
  - role: user
    content: "Hello."
`;
}

/** The load error of a Warden whose only extra template names `ref`, or undefined when it starts. */
async function loadError(ref: string, setup?: (dir: string) => void, secrets?: string, audit?: string): Promise<string | undefined> {
  const prepared = await prepareWardenDir({
    upstreamUrl: 'http://127.0.0.1:9/v1',
    files: { 'templates/ops/probe.yaml': template('ops/probe', ref), 'outside/token': `${OUTSIDE}\n` },
    ...(secrets === undefined ? {} : { secrets }),
    ...(audit === undefined ? {} : { audit }),
  });
  try {
    setup?.(prepared.dir);
    const logs: string[] = [];
    const logger = createLogger({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
    let runtime;
    try {
      runtime = await createRuntime(loadConfig(prepared.configFile, {}), { logger, configDir: prepared.dir });
    } catch (err) {
      const message = String((err as Error).message);
      expect(logs.join('')).not.toContain(OUTSIDE);
      return message;
    }
    await runtime.shutdown('test');
    return undefined;
  } finally {
    rmSync(prepared.dir, { recursive: true, force: true });
  }
}

describe('a template ref outside secrets.file_roots / env_allow is refused at load', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['the service-account token', 'file:///var/run/secrets/kubernetes.io/serviceaccount/token', /is outside secrets\.file_roots \(\/.*\/secrets\)/],
    ['the process environment', 'file:///proc/self/environ', /is outside secrets\.file_roots/],
    ['a file beside the root', 'file:outside/token', /is outside secrets\.file_roots/],
    ['a path that climbs out with ..', 'file:secrets/../outside/token', /is outside secrets\.file_roots/],
    ['a percent-encoded ..', 'file:secrets/%2e%2e/outside/token', /is outside secrets\.file_roots/],
    ['the config file itself', 'file:warden.yaml', /is outside secrets\.file_roots/],
    ['an environment variable', `env://${ENV_NAME}`, /env refs are not allowed in templates: secrets\.env_allow is not set/],
  ];
  for (const [what, ref, message] of cases) {
    it(`${what} (file:line:col, key path, the ref not repeated)`, { timeout: 30_000 }, async () => {
      const err = await loadError(ref);
      expect(err).toMatch(/templates\/ops\/probe\.yaml:12:\d+: variables\.code\.ref: /);
      expect(err).toMatch(message);
      expect(err).not.toContain(ref);
    });
  }

  it('a symlink inside the root that points outside it', { timeout: 30_000 }, async () => {
    const err = await loadError('file:secrets/link', (dir) => symlinkSync(join(dir, 'outside', 'token'), join(dir, 'secrets', 'link')));
    expect(err).toMatch(/probe\.yaml:12:\d+: variables\.code\.ref: file ref resolves \(through a symlink\) to a file outside secrets\.file_roots/);
  });

  it('a config without the setting: no file ref at all, the message names the setting', { timeout: 30_000 }, async () => {
    const err = await loadError('file:secrets/escalation-code', undefined, 'secrets: {}');
    expect(err).toMatch(/variables\.code\.ref: file refs are not allowed in templates: secrets\.file_roots is not set/);
  });

  it("Warden's own keys, whatever the bounds allow: the provider key under the root, a link to it, an env key under env_allow: [\"*\"]", { timeout: 30_000 }, async () => {
    const reserved = /probe\.yaml:12:\d+: variables\.code\.ref: names a secret the config itself uses/;
    // The fixture's provider api_key is file://<dir>/secrets/upstream-key: inside the root.
    expect(await loadError('file:secrets/upstream-key')).toMatch(reserved);
    expect(await loadError('file:secrets/key-alias', (dir) => symlinkSync('upstream-key', join(dir, 'secrets', 'key-alias')))).toMatch(reserved);
    // A hard link is the same file under another name: no symlink to resolve, the same inode.
    expect(await loadError('file:secrets/key-hard', (dir) => linkSync(join(dir, 'secrets', 'upstream-key'), join(dir, 'secrets', 'key-hard')))).toMatch(reserved);
    process.env.WARDEN_TEST_AUDIT_HMAC_Q7 = 'an-audit-hmac-key-of-32-bytes-00';
    try {
      const audit = 'audit: { sinks: [{ file: audit.log }], required: true, hmac_key: "env://WARDEN_TEST_AUDIT_HMAC_Q7" }';
      expect(await loadError('env://WARDEN_TEST_AUDIT_HMAC_Q7', undefined, 'secrets: { file_roots: [secrets], env_allow: ["*"] }', audit)).toMatch(reserved);
      // Another variable under the same allow-list still loads.
      expect(await loadError(`env://${ENV_NAME}`, undefined, 'secrets: { file_roots: [secrets], env_allow: ["*"] }', audit)).toBeUndefined();
    } finally {
      delete process.env.WARDEN_TEST_AUDIT_HMAC_Q7;
    }
  });

  it("Warden's credential files too: a jwks_bearer_token_file under the root, by name, symlink or hard link", { timeout: 30_000 }, async () => {
    const reserved = /probe\.yaml:12:\d+: variables\.code\.ref: names a secret the config itself uses/;
    // The identity module sends it to the JWKS endpoint; a template must not put it in a prompt.
    const withToken = (extra?: (dir: string) => void) => (dir: string) => {
      writeFileSync(join(dir, 'secrets', 'sa-token'), 'CANARY-SA-TOKEN-0c4d\n');
      const config = join(dir, 'warden.yaml');
      writeFileSync(config, readFileSync(config, 'utf8').replace('jwks_file: jwks.json }', 'jwks_file: jwks.json, jwks_bearer_token_file: secrets/sa-token }'));
      extra?.(dir);
    };
    expect(await loadError('file:secrets/sa-token', withToken())).toMatch(reserved);
    expect(await loadError('file:secrets/token-alias', withToken((dir) => symlinkSync('sa-token', join(dir, 'secrets', 'token-alias'))))).toMatch(reserved);
    expect(await loadError('file:secrets/token-hard', withToken((dir) => linkSync(join(dir, 'secrets', 'sa-token'), join(dir, 'secrets', 'token-hard'))))).toMatch(reserved);
    // The template's own secret beside it still loads.
    expect(await loadError('file:secrets/escalation-code', withToken())).toBeUndefined();
  });

  it('refs inside the roots, a symlink that stays inside, and an allowed env prefix load', { timeout: 30_000 }, async () => {
    const inside = await loadError('file:secrets/alias', (dir) => symlinkSync('escalation-code', join(dir, 'secrets', 'alias')));
    expect(inside).toBeUndefined();
    expect(await loadError(`env://${ENV_NAME}`, undefined, 'secrets: { file_roots: [secrets], env_allow: ["WARDEN_TEST_*"] }')).toBeUndefined();
  });
});

describe('at fetch, on a running Warden', () => {
  let upstream: FakeUpstream;
  let w: WardenFixture;
  let token: string;

  beforeAll(async () => {
    process.env[ENV_NAME] = ENV_VALUE;
    upstream = await startUpstream();
    w = await startWarden({
      upstreamUrl: upstream.url,
      // The provider key stays in secrets/ (the config's own ref); templates read template-secrets/.
      secrets: `secrets: { file_roots: [template-secrets], env_allow: ["WARDEN_TEST_*"], default_ttl_ms: 0 }`,
      files: {
        // In place of the fixture's template, whose ref (file:secrets/...) is outside this root.
        'templates/ops/incident-brief.yaml': template('ops/rooted', 'file:template-secrets/code'),
        'template-secrets/code': `${CODE}\n`,
        'outside/token': `${OUTSIDE}\n`,
      },
    });
    token = await w.signer.token('support', 'ticket-bot');
  });

  afterAll(async () => {
    delete process.env[ENV_NAME];
    await w?.close();
    await upstream?.close();
  });

  const call = () => postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template: 'ops/rooted@1' } });

  it('reads a file under the root; the config key outside every root still authenticates the call', async () => {
    upstream.mode = 'ok';
    const before = upstream.calls.length;
    const res = await call();
    expect(res.status, await res.clone().text()).toBe(200);
    const sent = upstream.calls[before]!;
    expect(JSON.stringify(sent.body)).toContain(CODE);
    expect(sent.headers.authorization).toBe(`Bearer ${CANARY_API_KEY}`);
  });

  it('a symlink swapped in after the load to point outside the root is refused at fetch, closed', async () => {
    const code = join(w.dir, 'template-secrets', 'code');
    rmSync(code);
    symlinkSync(join(w.dir, 'outside', 'token'), code);
    const before = upstream.calls.length;
    const res = await call();
    const body = await res.text();
    expect(res.status).toBe(503);
    const err = JSON.parse(body).error;
    expect(err.code).toBe('secret_unavailable');
    expect(err.message).toMatch(/resolves \(through a symlink\) to a file outside secrets\.file_roots/);
    expect(upstream.calls.length).toBe(before);
    const record = w.audit().at(-1)!;
    expect(record.error_code).toBe('secret_unavailable');
    for (const text of [body, JSON.stringify(w.audit()), w.logs.join('')]) expect(text).not.toContain(OUTSIDE);
  });
});

describe("Warden's own key reached after the load, through a name a template held", () => {
  let upstream: FakeUpstream;
  let w: WardenFixture;
  let token: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    w = await startWarden({
      upstreamUrl: upstream.url,
      // The fixture's provider key is secrets/upstream-key, inside this root; no lease, so each call reads.
      secrets: 'secrets: { file_roots: [secrets], default_ttl_ms: 0 }',
      files: {
        // Neither file is there at load, so the load has nothing to compare: the fetch must.
        'templates/ops/soft.yaml': template('ops/soft', 'file:secrets/later-link'),
        'templates/ops/hard.yaml': template('ops/hard', 'file:secrets/later-hard'),
      },
    });
    token = await w.signer.token('support', 'ticket-bot');
  });

  afterAll(async () => {
    await w?.close();
    await upstream?.close();
  });

  const call = (template: string) => postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template } });

  it('a symlink or a hard link to the provider key, made in the root after the load, is refused at fetch; nothing goes upstream', async () => {
    symlinkSync('upstream-key', join(w.dir, 'secrets', 'later-link'));
    linkSync(join(w.dir, 'secrets', 'upstream-key'), join(w.dir, 'secrets', 'later-hard'));
    upstream.mode = 'ok';
    for (const template of ['ops/soft@1', 'ops/hard@1']) {
      const before = upstream.calls.length;
      const res = await call(template);
      const body = await res.text();
      expect(res.status, body).toBe(503);
      const err = JSON.parse(body).error;
      expect(err.code).toBe('secret_unavailable');
      expect(err.message).toMatch(/names a secret the config itself uses/);
      expect(upstream.calls.length).toBe(before);
      expect(w.audit().at(-1)!.error_code).toBe('secret_unavailable');
    }
    for (const text of [JSON.stringify(upstream.calls.map((c) => c.body)), JSON.stringify(w.audit()), w.logs.join('')]) expect(text).not.toContain(CANARY_API_KEY);
  });

  it('a template secret in the same root is still read (the check compares files, not the root)', async () => {
    const before = upstream.calls.length;
    const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template: 'ops/incident-brief@1', variables: { service: 'billing' } } });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(JSON.stringify(upstream.calls[before]!.body)).toContain('CANARY-SECRET-9f8e7d');
  });
});
