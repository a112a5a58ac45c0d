/**
 * The `k8s://namespace/name#key` store against a loopback HTTPS server that speaks the Kubernetes
 * API's contract (test/e2e/helpers/kube-api.ts), through the real caching resolver: values,
 * leases, one request per Secret, every failure `secret_unavailable` with a reason of ours, and no
 * canary (value, token, API body) in any error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createSecretResolver } from '../../src/secrets/index.js';
import { checkK8sTokenFile, createK8sSecretProvider, k8sApiUrl, k8sCa, k8sNamespaces, type K8sSecretProvider, type KubernetesSecretsSection } from '../../src/secrets/k8s/index.js';
import { makeCerts, startKubeApi, type FakeKubeApi } from '../e2e/helpers/kube-api.js';

const VALUE = 'CANARY-K8S-VALUE-4d2a91';
const OTHER = 'CANARY-K8S-OTHER-77b0c3';
const TOKEN = 'CANARY-SA-TOKEN-eyJhbGciOi.x9';
const ROTATED = 'CANARY-SA-TOKEN-ROTATED-q81z';
const API_BODY = 'etcd is down';

let dir: string;
let api: FakeKubeApi;
let certs: ReturnType<typeof makeCerts>;
const providers: K8sSecretProvider[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-k8s-'));
  certs = makeCerts();
  api = await startKubeApi({ token: TOKEN, certs });
  api.allowedNamespaces = new Set(['support', 'billing']);
  writeFileSync(join(dir, 'ca.crt'), certs.caPem);
  writeFileSync(join(dir, 'other-ca.crt'), certs.otherCaPem);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(join(dir, 'namespace'), 'support');
});

afterAll(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  api.fault = undefined;
  api.token = TOKEN;
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  api.secrets.clear();
  api.allowedNamespaces = new Set(['support', 'billing']);
  api.requests.length = 0;
  await Promise.all(providers.splice(0).map((p) => p.close()));
});

function section(over: Partial<KubernetesSecretsSection> = {}): KubernetesSecretsSection {
  return {
    api_url: api.url,
    token_file: join(dir, 'token'),
    ca_file: join(dir, 'ca.crt'),
    namespaces: ['support', 'billing'],
    request_timeout_ms: 5_000,
    max_response_bytes: 64 * 1024,
    ttl_ms: 60_000,
    ...over,
  };
}

function resolverWith(over: Partial<KubernetesSecretsSection> = {}, exempt?: ReadonlySet<string>) {
  const s = section(over);
  const provider = createK8sSecretProvider({
    apiUrl: k8sApiUrl(s),
    ca: k8sCa(s),
    tokenFile: s.token_file,
    namespaces: k8sNamespaces(s),
    ...(exempt ? { exempt } : {}),
    requestTimeoutMs: s.request_timeout_ms,
    maxResponseBytes: s.max_response_bytes,
    ttlMs: s.ttl_ms,
  });
  providers.push(provider);
  // failureTtlMs 0: each case below reads again.
  return createSecretResolver({ providers: [provider], failureTtlMs: 0, fetchTimeoutMs: 10_000 });
}

/** The error message of resolving `ref`, checked to be secret_unavailable and free of every canary. */
async function failure(resolver: ReturnType<typeof resolverWith>, ref: string): Promise<string> {
  const err = (await resolver.resolve([ref]).then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: string; message: string; details?: unknown } | undefined;
  expect(err, ref).toBeDefined();
  expect(err!.code).toBe('secret_unavailable');
  const text = `${err!.message} ${JSON.stringify(err!.details)} ${JSON.stringify(err)}`;
  for (const canary of [VALUE, OTHER, TOKEN, ROTATED, API_BODY, 'CANARY']) expect(text).not.toContain(canary);
  return err!.message;
}

describe('k8s:// secret store', () => {
  it('reads data[key] base64-decoded with the bearer token, caches it within the lease', async () => {
    api.secrets.set('support/api-creds', { token: `${VALUE}\n`, other: OTHER, bom: `\ufeff${OTHER}` });
    const r = resolverWith();
    const ref = 'k8s://support/api-creds#token';
    // A byte order mark is dropped, as for the same key mounted as a file.
    expect((await r.resolve(['k8s://support/api-creds#bom'])).get('k8s://support/api-creds#bom')).toBe(OTHER);
    api.requests.length = 0;
    expect((await r.resolve([ref])).get(ref)).toBe(VALUE); // one trailing newline dropped, as for a mounted file
    expect((await r.resolve([ref])).get(ref)).toBe(VALUE);
    expect(api.requests).toEqual([{ method: 'GET', path: '/api/v1/namespaces/support/secrets/api-creds', authorization: `Bearer ${TOKEN}`, accept: 'application/json' }]);
  });

  it('several keys of one Secret asked for together: one request', async () => {
    api.secrets.set('support/api-creds', { token: VALUE, other: OTHER });
    const r = resolverWith();
    const got = await r.resolve(['k8s://support/api-creds#token', 'k8s://support/api-creds#other']);
    expect([...got.values()]).toEqual([VALUE, OTHER]);
    expect(api.requests).toHaveLength(1);
  });

  it('ttl_ms 0: read for every request', async () => {
    api.secrets.set('support/api-creds', { token: VALUE });
    const r = resolverWith({ ttl_ms: 0 });
    await r.resolve(['k8s://support/api-creds#token']);
    await r.resolve(['k8s://support/api-creds#token']);
    expect(api.requests).toHaveLength(2);
  });

  it('a rotated token file is read before the next request', async () => {
    api.secrets.set('support/api-creds', { token: VALUE });
    const r = resolverWith({ ttl_ms: 0 });
    await r.resolve(['k8s://support/api-creds#token']);
    api.token = ROTATED;
    writeFileSync(join(dir, 'token'), ROTATED);
    expect((await r.resolve(['k8s://support/api-creds#token'])).get('k8s://support/api-creds#token')).toBe(VALUE);
    expect(api.requests.map((q) => q.authorization)).toEqual([`Bearer ${TOKEN}`, `Bearer ${ROTATED}`]);
  });

  it('every failure is secret_unavailable with a reason of ours, never a value, the token or the API body', async () => {
    const r = resolverWith();
    api.secrets.set('support/api-creds', { token: VALUE, empty: '', newline: '\n', binary: Buffer.from([0xff, 0xfe, 0x41]) });
    expect(await failure(r, 'k8s://support/missing#token')).toBe('secret k8s://support/missing#token is unavailable: no such Secret (404 Not Found)');
    expect(await failure(r, 'k8s://support/api-creds#nokey')).toMatch(/: the Secret has no key nokey$/);
    expect(await failure(r, 'k8s://support/api-creds#empty')).toMatch(/: the Secret's key empty is empty$/);
    expect(await failure(r, 'k8s://support/api-creds#newline')).toMatch(/: the Secret's key newline is empty$/);
    expect(await failure(r, 'k8s://support/api-creds#binary')).toMatch(/: the Secret's key binary is not UTF-8 text$/);
    api.allowedNamespaces = new Set();
    expect(await failure(r, 'k8s://billing/api-creds#token')).toMatch(/403 Forbidden/);
    api.allowedNamespaces = new Set(['support', 'billing']);
    api.token = 'another';
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/refused Warden's token \(401 Unauthorized\)/);
    api.token = TOKEN;
    api.fault = { kind: 'status', code: 500 };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/the Kubernetes API answered 500$/);
    api.fault = { kind: 'status', code: 302, body: '' };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/answered 302 \(redirects are not followed\)$/);
    api.fault = { kind: 'body', body: `<html>${VALUE} ${API_BODY}</html>`, contentType: 'text/html' };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/is not JSON$/);
    api.fault = { kind: 'body', body: JSON.stringify({ kind: 'ConfigMap', metadata: { name: 'api-creds' }, data: { token: VALUE } }) };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/is not a Secret$/);
    api.fault = { kind: 'body', body: JSON.stringify({ kind: 'Secret', metadata: { name: 'other', namespace: 'support' }, data: { token: Buffer.from(VALUE).toString('base64') } }) };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/another Secret than the one asked for$/);
    api.fault = { kind: 'body', body: JSON.stringify({ kind: 'Secret', metadata: { name: 'api-creds' }, data: { token: `${VALUE}!` } }) };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/key token is not base64$/);
    api.fault = { kind: 'body', body: JSON.stringify({ kind: 'Secret', metadata: { name: 'api-creds' }, data: { pad: 'x'.repeat(70 * 1024) } }) };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/answer is larger than 65536 bytes \(secrets\.kubernetes\.max_response_bytes\)$/);
    api.fault = { kind: 'reset' };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/cannot reach the Kubernetes API \([A-Z_]+\)$/);
  });

  it('a Secret with no data at all: the key is missing', async () => {
    const r = resolverWith();
    api.fault = { kind: 'body', body: JSON.stringify({ kind: 'Secret', apiVersion: 'v1', metadata: { name: 'api-creds', namespace: 'support' }, type: 'Opaque' }) };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/the Secret has no key token$/);
  });

  it('an API server that does not answer: past request_timeout_ms, secret_unavailable', async () => {
    const r = resolverWith({ request_timeout_ms: 300 });
    api.fault = { kind: 'hang' };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/the Kubernetes API did not answer within 300 ms$/);
  });

  it('an answer whose body stalls after the headers: past request_timeout_ms, secret_unavailable', async () => {
    const r = resolverWith({ request_timeout_ms: 300 });
    api.fault = { kind: 'stall-body' };
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/the Kubernetes API did not answer within 300 ms$/);
  });

  it('an API server down: secret_unavailable naming the error code', async () => {
    const r = resolverWith({ api_url: 'https://127.0.0.1:9' });
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/cannot reach the Kubernetes API \(ECONNREFUSED\)$/);
  });

  it('a certificate not signed by ca_file: refused, with what to check', async () => {
    api.secrets.set('support/api-creds', { token: VALUE });
    const r = resolverWith({ ca_file: join(dir, 'other-ca.crt') });
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/certificate is not trusted \([A-Z_]+\): check secrets\.kubernetes\.ca_file$/);
    expect(api.requests).toHaveLength(0);
  });

  it('a namespace outside the list is refused before any request; the config\'s own refs are not held to it', async () => {
    api.allowedNamespaces.add('platform');
    api.secrets.set('platform/keys', { token: VALUE });
    const r = resolverWith();
    expect(await failure(r, 'k8s://platform/keys#token')).toMatch(/names a namespace outside secrets\.kubernetes\.namespaces$/);
    expect(api.requests).toHaveLength(0);
    const own = resolverWith({}, new Set(['platform/keys#token']));
    expect((await own.resolve(['k8s://platform/keys#token'])).get('k8s://platform/keys#token')).toBe(VALUE);
  });

  it('a token file that is gone or holds no token: secret_unavailable naming the key, not the content', async () => {
    const r = resolverWith();
    writeFileSync(join(dir, 'token'), `${TOKEN} ${TOKEN}\n`);
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/secrets\.kubernetes\.token_file does not hold one token$/);
    rmSync(join(dir, 'token'));
    expect(await failure(r, 'k8s://support/api-creds#token')).toMatch(/cannot read secrets\.kubernetes\.token_file \(ENOENT\)$/);
    expect(api.requests).toHaveLength(0);
  });
});

describe('secrets.kubernetes settings', () => {
  it('api_url unset: the in-cluster service from KUBERNETES_SERVICE_HOST/PORT; neither: an error naming api_url', () => {
    const s = section({ api_url: undefined });
    expect(k8sApiUrl(s, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }).href).toBe('https://10.96.0.1/');
    expect(k8sApiUrl(s, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }).href).toBe('https://[fd00::1]:6443/');
    expect(() => k8sApiUrl(s, {})).toThrow(/secrets\.kubernetes: api_url is not set and KUBERNETES_SERVICE_HOST is not in the environment/);
    expect(() => k8sApiUrl(s, { KUBERNETES_SERVICE_HOST: 'a/b' })).toThrow(/do not make a URL: set api_url/);
  });

  it('namespaces unset: Warden\'s own, from the service-account mount; unreadable: none, saying why', () => {
    expect(k8sNamespaces(section({ namespaces: undefined }), join(dir, 'namespace')).namespaces).toEqual(['support']);
    const none = k8sNamespaces(section({ namespaces: undefined }), join(dir, 'no-namespace'));
    expect(none.namespaces).toEqual([]);
    expect(none.why).toMatch(/secrets\.kubernetes\.namespaces is not set and Warden's own namespace cannot be read from .*no-namespace \(ENOENT\)/);
    expect(k8sNamespaces(undefined).why).toBe('k8s refs are not allowed in templates: secrets.kubernetes is not set');
  });

  it('ca_file and token_file are checked at start, naming the key and never the content', () => {
    writeFileSync(join(dir, 'not-a-ca'), TOKEN);
    expect(() => k8sCa(section({ ca_file: join(dir, 'not-a-ca') }))).toThrow(/secrets\.kubernetes: ca_file .*not-a-ca holds no PEM certificate$/);
    expect(() => k8sCa(section({ ca_file: join(dir, 'nope') }))).toThrow(/cannot read ca_file .*nope \(ENOENT\)$/);
    expect(() => checkK8sTokenFile(section({ token_file: join(dir, 'nope') }))).toThrow(/cannot read token_file .*nope \(ENOENT\)$/);
    writeFileSync(join(dir, 'two-tokens'), `${TOKEN}\n${TOKEN}\n`);
    let message = '';
    try {
      checkK8sTokenFile(section({ token_file: join(dir, 'two-tokens') }));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/token_file .*two-tokens does not hold one token$/);
    expect(message).not.toContain('CANARY');
  });
});

describe('secrets.kubernetes in the config', () => {
  const problems = (yaml: string): string => {
    try {
      parseConfig(yaml, '/etc/warden/w.yaml');
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('defaults are the in-cluster ones; relative files are next to the config', () => {
    const k = parseConfig('secrets: { kubernetes: {} }\n', '/etc/warden/w.yaml').secrets.kubernetes!;
    expect(k).toEqual({
      token_file: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      ca_file: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      request_timeout_ms: 5000,
      max_response_bytes: 2 * 1024 * 1024,
      ttl_ms: 60_000,
    });
    expect(parseConfig('secrets: { kubernetes: { token_file: kube/token, ca_file: kube/ca.crt } }\n', '/etc/warden/w.yaml').secrets.kubernetes).toMatchObject({
      token_file: '/etc/warden/kube/token',
      ca_file: '/etc/warden/kube/ca.crt',
    });
    expect(parseConfig('{}\n', '/etc/warden/w.yaml').secrets.kubernetes).toBeUndefined();
  });

  it('refuses a plain-http or credentialed api_url (never quoting it), a bad namespace, an unknown key', () => {
    expect(problems('secrets: { kubernetes: { api_url: "http://10.0.0.1:6443" } }\n')).toMatch(/secrets\.kubernetes\.api_url: must be an https URL/);
    const cred = problems('secrets: { kubernetes: { api_url: "https://admin:CANARYPASS@10.0.0.1" } }\n');
    expect(cred).toMatch(/secrets\.kubernetes\.api_url: must not carry credentials/);
    expect(cred).not.toContain('CANARYPASS');
    expect(problems('secrets: { kubernetes: { namespaces: [Kube_System] } }\n')).toMatch(/secrets\.kubernetes\.namespaces\[0\]: must be a namespace name/);
    expect(problems('secrets: { kubernetes: { namespace: [support] } }\n')).toMatch(/secrets\.kubernetes/);
    expect(problems('secrets: { kubernetes: { max_response_bytes: 10 } }\n')).toMatch(/secrets\.kubernetes\.max_response_bytes: must be at least 1024/);
  });
});
