/**
 * `k8s://` refs on a real Warden: a template's secret read from a loopback Kubernetes API
 * (test/e2e/helpers/kube-api.ts) is placed in the prompt sent upstream and masked in the answer;
 * a rotated service-account token is used for the next read; an API that is down or refuses is
 * 503 `secret_unavailable` with nothing sent upstream; a ref outside secrets.kubernetes.namespaces
 * is refused at load. Neither the value nor the token reaches the caller's errors, the log or the
 * audit records.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { postChat } from './helpers/http.js';
import { startKubeApi, type FakeKubeApi } from './helpers/kube-api.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, prepareWardenDir, startWarden, type WardenFixture } from './helpers/warden.js';

const CODE = 'CANARY-K8S-CODE-6b1e2f';
const TOKEN = 'CANARY-SA-TOKEN-e2e-51c0';
const ROTATED = 'CANARY-SA-TOKEN-e2e-ROTATED-9d7a';

function template(id: string, ref: string): string {
  return `id: ${id}
version: 1
owner: sre@example.com
sensitivity: internal
description: Signs with a code read from a Kubernetes Secret.
approvals:
  - { by: lee.chen@example.com, ticket: SEC-1500 }
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

/** The secrets: line of a config whose k8s store is `api` (token and CA written in the Warden dir). */
function secretsLine(api: FakeKubeApi, extra = '', roots = 'template-secrets'): string {
  return `secrets: { file_roots: [${roots}], kubernetes: { api_url: "${api.url}", token_file: kube/token, ca_file: kube/ca.crt, namespaces: [support]${extra} } }`;
}

describe('k8s:// refs on a running Warden', () => {
  let api: FakeKubeApi;
  let upstream: FakeUpstream;
  let w: WardenFixture;
  let token: string;

  beforeAll(async () => {
    api = await startKubeApi({ token: TOKEN });
    api.allowedNamespaces.add('support');
    api.secrets.set('support/brief-codes', { code: `${CODE}\n` });
    upstream = await startUpstream();
    w = await startWarden({
      upstreamUrl: upstream.url,
      // ttl_ms 0: every call reads the Secret again, so rotation and outages show at once.
      secrets: secretsLine(api, ', ttl_ms: 0'),
      files: {
        'templates/ops/incident-brief.yaml': template('ops/k8s', 'k8s://support/brief-codes#code'),
        'kube/token': `${TOKEN}\n`,
        'kube/ca.crt': api.caPem,
      },
    });
    token = await w.signer.token('support', 'ticket-bot');
  });

  afterAll(async () => {
    await w?.close();
    await upstream?.close();
    await api?.close();
  });

  const call = () => postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template: 'ops/k8s@1' } });

  function expectNoCanary(): void {
    for (const text of [JSON.stringify(w.audit()), w.logs.join('')]) {
      expect(text).not.toContain(CODE);
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(ROTATED);
    }
  }

  it('the value goes upstream in the prompt, and is masked where the answer repeats it', async () => {
    upstream.mode = 'scripted';
    upstream.script = { text: `Signed: ${CODE}` };
    const before = upstream.calls.length;
    const res = await call();
    const body = await res.text();
    expect(res.status, body).toBe(200);
    expect(JSON.stringify(upstream.calls[before]!.body)).toContain(`Sign with ${CODE}.`);
    expect(body).not.toContain(CODE);
    expect(JSON.parse(body).choices[0].message.content).toBe('Signed: [SECRET_VALUE]');
    expect(api.requests.at(-1)).toMatchObject({ path: '/api/v1/namespaces/support/secrets/brief-codes', authorization: `Bearer ${TOKEN}` });
    expectNoCanary();
  });

  it('a rotated token file: the next read sends the new token', async () => {
    upstream.mode = 'ok';
    api.token = ROTATED;
    writeFileSync(join(w.dir, 'kube', 'token'), `${ROTATED}\n`);
    const res = await call();
    expect(res.status, await res.clone().text()).toBe(200);
    expect(api.requests.at(-1)!.authorization).toBe(`Bearer ${ROTATED}`);
    expectNoCanary();
  });

  it('the API down, or refusing: 503 secret_unavailable, nothing upstream, audited', async () => {
    upstream.mode = 'ok';
    const cases: Array<[() => void, RegExp]> = [
      [() => (api.fault = { kind: 'reset' }), /cannot reach the Kubernetes API \([A-Z_]+\)$/],
      [() => (api.fault = { kind: 'status', code: 503 }), /the Kubernetes API answered 503$/],
      [() => ((api.fault = undefined), api.allowedNamespaces.delete('support')), /403 Forbidden/],
      [() => (api.allowedNamespaces.add('support'), api.secrets.delete('support/brief-codes')), /no such Secret \(404 Not Found\)$/],
    ];
    try {
      for (const [breakIt, reason] of cases) {
        breakIt();
        // The last failure is remembered for 1 s: polled until this case's own reason is the answer.
        let body = '';
        const before = upstream.calls.length;
        await eventually(async () => {
          const res = await call();
          body = await res.text();
          return res.status === 503 && reason.test(JSON.parse(body).error.message);
        }, 50);
        const err = JSON.parse(body).error;
        expect(err.code).toBe('secret_unavailable');
        expect(err.message).toMatch(/^secret k8s:\/\/support\/brief-codes#code is unavailable: /);
        expect(upstream.calls.length).toBe(before);
        expect(w.audit().at(-1)!.error_code).toBe('secret_unavailable');
        expect(body).not.toContain(CODE);
      }
    } finally {
      api.fault = undefined;
      api.allowedNamespaces.add('support');
      api.secrets.set('support/brief-codes', { code: `${CODE}\n` });
    }
    expectNoCanary();
  });
});

describe('k8s:// refs at load', () => {
  let api: FakeKubeApi;

  beforeAll(async () => {
    api = await startKubeApi({ token: TOKEN });
  });

  afterAll(async () => {
    await api?.close();
  });

  /** The start error of a Warden whose extra template names `ref` (undefined when it starts). */
  async function loadError(ref: string, secrets = secretsLine(api, '', 'secrets'), edit?: (config: string) => string): Promise<string | undefined> {
    const prepared = await prepareWardenDir({
      upstreamUrl: 'http://127.0.0.1:9/v1',
      files: { 'templates/ops/probe.yaml': template('ops/probe', ref), 'kube/token': `${TOKEN}\n`, 'kube/ca.crt': api.caPem },
      secrets,
    });
    try {
      if (edit) writeFileSync(prepared.configFile, edit(readFileSync(prepared.configFile, 'utf8')));
      const logs: string[] = [];
      const logger = createLogger({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
      let runtime;
      try {
        runtime = await createRuntime(loadConfig(prepared.configFile, {}), { logger, configDir: prepared.dir });
      } catch (err) {
        expect(logs.join('')).not.toContain(TOKEN);
        return String((err as Error).message);
      }
      await runtime.shutdown('test');
      return undefined;
    } finally {
      rmSync(prepared.dir, { recursive: true, force: true });
    }
  }

  it('a ref outside secrets.kubernetes.namespaces is an error at its line; with no store configured it loads as before the store existed', { timeout: 30_000 }, async () => {
    expect(await loadError('k8s://kube-system/admin-token#token')).toMatch(
      /templates\/ops\/probe\.yaml:12:\d+: variables\.code\.ref: k8s ref names a namespace outside secrets\.kubernetes\.namespaces \(support\)/,
    );
    // No secrets.kubernetes: no store, nothing can be read (its requests are secret_unavailable,
    // "not configured"), and a template set written before the store existed still loads, as
    // for vault: refs without secrets.vault.
    expect(await loadError('k8s://support/brief-codes#code', 'secrets: { file_roots: [secrets] }')).toBeUndefined();
    expect(await loadError('k8s://support/brief-codes#code')).toBeUndefined();
  });

  it("a provider key read from a Secret is Warden's own: no template may name it, another key of the Secret loads", { timeout: 30_000 }, async () => {
    const keyInSecret = (config: string) => config.replace(/api_key: "file:\/\/[^"]*"/, 'api_key: "k8s://support/provider-keys#openai"');
    expect(await loadError('k8s://support/provider-keys#openai', undefined, keyInSecret)).toMatch(
      /probe\.yaml:12:\d+: variables\.code\.ref: names a secret the config itself uses/,
    );
    expect(await loadError('k8s://support/provider-keys#other', undefined, keyInSecret)).toBeUndefined();
  });

  it('start fails naming the key when the CA or the token file cannot be read', { timeout: 30_000 }, async () => {
    const noCa = secretsLine(api, '', 'secrets').replace('ca_file: kube/ca.crt', 'ca_file: kube/missing.crt');
    expect(await loadError('k8s://support/brief-codes#code', noCa)).toMatch(/secrets\.kubernetes: cannot read ca_file .*missing\.crt \(ENOENT\)/);
    const noToken = secretsLine(api, '', 'secrets').replace('token_file: kube/token', 'token_file: kube/missing-token');
    expect(await loadError('k8s://support/brief-codes#code', noToken)).toMatch(/secrets\.kubernetes: cannot read token_file .*missing-token \(ENOENT\)/);
  });
});
