/**
 * The Vault secret store against a loopback Vault that speaks Vault's HTTP API (vault-server.ts),
 * through the caching resolver the runtime uses: reads over https with the test CA, every failure
 * `secret_unavailable` with a reason of ours (never the value, the token or Vault's body), the
 * token file re-read when it changes, the Kubernetes login shared, renewed and redone on 403.
 */
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import { createSecretResolver, parseSecretRef, SecretRefError } from '../../src/secrets/index.js';
import { createVaultStore, type VaultStore, type VaultStoreOptions } from '../../src/secrets/vault/index.js';
import { kubernetesLoginSource } from '../../src/secrets/vault/auth.js';
import { createVaultHttp } from '../../src/secrets/vault/http.js';
import { startVaultServer, TEST_CA_FILE, type VaultServer } from './vault-server.js';

const TOKEN = 'hvs.CANARY-VAULT-TOKEN-3e9d1f';
const VALUE = 'CANARY-VAULT-VALUE-8a7b6c';
const SA_JWT = 'eyJhbGciOiJSUzI1NiJ9.CANARY-SA-JWT-5d4c.sig';

let dir: string;
const servers: VaultServer[] = [];
const stores: VaultStore[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-vault-'));
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  await writeFile(join(dir, 'sa-token'), SA_JWT);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function vault(opts: Parameters<typeof startVaultServer>[0] = {}): Promise<VaultServer> {
  const v = await startVaultServer({ tls: true, staticTokens: [TOKEN], ...opts });
  servers.push(v);
  v.put('secret/team/app', { api_key: VALUE, count: 3, empty: '' });
  return v;
}

function resolverFor(v: VaultServer, extra: Partial<VaultStoreOptions> = {}) {
  const store = createVaultStore({
    address: v.address,
    caFile: TEST_CA_FILE,
    auth: { tokenFile: join(dir, 'token') },
    kvVersion: 2,
    timeoutMs: 2_000,
    maxResponseBytes: 64 * 1024,
    ...extra,
  });
  stores.push(store);
  // No failure memory: each case reads again.
  return createSecretResolver({ providers: [store], failureTtlMs: 0, fetchTimeoutMs: 10_000 });
}

/** The error resolving `ref` fails with; asserts it is secret_unavailable and leaks no canary. */
async function failure(resolver: ReturnType<typeof createSecretResolver>, ref: string): Promise<string> {
  const err = await resolver.resolve([ref]).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WardenError);
  const w = err as WardenError;
  expect(w.code).toBe('secret_unavailable');
  const shown = `${w.message} ${JSON.stringify(w.details)}`;
  for (const canary of [TOKEN, VALUE, SA_JWT, 'permission denied', 'errors', 'invalid role name', '<html>']) expect(shown).not.toContain(canary);
  return w.message;
}

describe('vault:// reads (KV v2, token file)', () => {
  it('reads data.data[key] over https with the CA, sending the token, the namespace and X-Vault-Request', async () => {
    const v = await vault({ namespace: 'team-a' });
    const r = resolverFor(v, { namespace: 'team-a' });
    const got = await r.resolve(['vault://secret/team/app#api_key']);
    expect(got.get('vault://secret/team/app#api_key')).toBe(VALUE);
    expect(v.paths).toEqual(['/v1/secret/data/team/app']);
    expect(v.lastHeaders?.['x-vault-token']).toBe(TOKEN);
    expect(v.lastHeaders?.['x-vault-namespace']).toBe('team-a');
    expect(v.lastHeaders?.['x-vault-request']).toBe('true');
    // Cached within its lease: a second resolve reads nothing.
    await r.resolve(['vault://secret/team/app#api_key']);
    expect(v.reads).toBe(1);
  });

  it('encodes each decoded path segment once: two spellings of one secret read the same path', async () => {
    const v = await vault();
    v.put('secret/my app/é', { k: VALUE });
    const r = resolverFor(v);
    expect((await r.resolve(['vault://secret/my%20app/%C3%A9#k'])).get('vault://secret/my%20app/%C3%A9#k')).toBe(VALUE);
    expect(v.paths.at(-1)).toBe('/v1/secret/data/my%20app/%C3%A9');
  });

  it('refuses a ref whose path Vault would read otherwise (an encoded "/", an empty segment)', async () => {
    const v = await vault();
    const r = resolverFor(v);
    expect(await failure(r, 'vault://secret/team%2Fapp#api_key')).toContain('percent-encoded "/"');
    expect(await failure(r, 'vault://secret/team//app#api_key')).toContain('empty segment');
    expect(v.reads).toBe(0);
  });

  it('refuses with a reason of ours: no secret, no key, not a string, empty, not well-formed text, deleted, destroyed', async () => {
    const v = await vault();
    // Sent as a \ud800 escape (JSON.stringify writes a lone surrogate so): a value UTF-8 cannot carry.
    v.put('secret/surrogate', { k: `${VALUE}\ud800` });
    v.secrets.set('secret/deleted', [{ data: { k: VALUE }, deletion_time: '2026-01-01T00:00:00.123456789Z' }]);
    v.secrets.set('secret/destroyed', [{ data: null, deletion_time: '2026-01-01T00:00:00Z', destroyed: true }]);
    v.secrets.set('secret/scheduled', [{ data: { k: VALUE }, deletion_time: '2999-01-01T00:00:00Z' }]);
    const r = resolverFor(v);
    expect(await failure(r, 'vault://secret/missing#k')).toContain('no secret at this path in Vault (HTTP 404)');
    expect(await failure(r, 'vault://secret/team/app#nope')).toContain('has no such key');
    expect(await failure(r, 'vault://secret/team/app#count')).toContain('does not hold a string');
    expect(await failure(r, 'vault://secret/team/app#empty')).toContain('is empty');
    expect(await failure(r, 'vault://secret/surrogate#k')).toContain("the secret's key in Vault is not well-formed text (a lone surrogate)");
    expect(await failure(r, 'vault://secret/deleted#k')).toContain('version is deleted');
    expect(await failure(r, 'vault://secret/destroyed#k')).toContain('version is destroyed');
    // A version only scheduled for deletion (delete_version_after) is still the secret.
    expect((await r.resolve(['vault://secret/scheduled#k'])).get('vault://secret/scheduled#k')).toBe(VALUE);
  });

  it('a token Vault refuses, a sealed Vault, a body that is not JSON or too large: secret_unavailable', async () => {
    const v = await vault();
    const r = resolverFor(v);
    v.revoke(TOKEN);
    expect(await failure(r, 'vault://secret/team/app#api_key')).toContain('HTTP 403');
    const v2 = await vault();
    const r2 = resolverFor(v2);
    v2.sealed = true;
    expect(await failure(r2, 'vault://secret/team/app#api_key')).toContain('HTTP 503: Vault is sealed');
    v2.sealed = false;
    v2.garbage = true;
    expect(await failure(r2, 'vault://secret/team/app#api_key')).toContain('not a JSON object');
    v2.garbage = false;
    // A value with a byte that is not UTF-8: refused, not read with U+FFFD in its place.
    v2.raw = Buffer.concat([Buffer.from('{"data":{"data":{"api_key":"CANARY-'), Buffer.from([0xff]), Buffer.from('-x"},"metadata":{"deletion_time":"","destroyed":false}}}')]);
    expect(await failure(r2, 'vault://secret/team/app#api_key')).toContain('not a JSON object');
    v2.raw = undefined;
    v2.oversize = 100 * 1024;
    expect(await failure(r2, 'vault://secret/team/app#api_key')).toContain('larger than 65536 bytes');
  });

  it('a Vault that never answers: timed out; one that is down or untrusted: cannot reach Vault', async () => {
    const v = await vault();
    v.stall = true;
    expect(await failure(resolverFor(v, { timeoutMs: 200 }), 'vault://secret/team/app#api_key')).toContain('did not answer within 200 ms');
    // No CA: the test CA is not trusted, the TLS handshake fails.
    const v2 = await vault();
    const untrusted = resolverFor(v2, { caFile: undefined });
    expect(await failure(untrusted, 'vault://secret/team/app#api_key')).toMatch(/cannot reach Vault \([A-Z_]+\)/);
    expect(v2.reads).toBe(0);
    const closed = v2.address;
    await v2.close();
    servers.splice(servers.indexOf(v2), 1);
    expect(await failure(resolverFor(v2, { address: closed }), 'vault://secret/team/app#api_key')).toContain('cannot reach Vault (ECONNREFUSED)');
  });

  it('reads the token file again when it changes, and after a 403 (a token rotated in place)', async () => {
    const file = join(dir, 'rotating-token');
    await writeFile(file, 'hvs.first-token-000001\n');
    const v = await startVaultServer({ tls: true, staticTokens: ['hvs.first-token-000001', 'hvs.second-token-00002'] });
    servers.push(v);
    v.put('secret/a', { k: VALUE });
    const r = resolverFor(v, { auth: { tokenFile: file } });
    await r.resolve(['vault://secret/a#k']);
    expect(v.lastHeaders?.['x-vault-token']).toBe('hvs.first-token-000001');
    await writeFile(`${file}.new`, 'hvs.second-token-00002\n');
    await rename(`${file}.new`, file);
    r.clear();
    await r.resolve(['vault://secret/a#k']);
    expect(v.lastHeaders?.['x-vault-token']).toBe('hvs.second-token-00002');
    // The old token revoked, the file rewritten with the same size: the 403 reads it again.
    v.revoke('hvs.second-token-00002');
    const third = 'hvs.third-token-000003';
    const r2 = await startVaultServer({ tls: true, staticTokens: [third] });
    servers.push(r2);
    r2.put('secret/a', { k: VALUE });
    const res2 = resolverFor(r2, { auth: { tokenFile: file } });
    await expect(res2.resolve(['vault://secret/a#k'])).rejects.toThrow(/HTTP 403/);
    await writeFile(file, `${third}\n`);
    expect((await res2.resolve(['vault://secret/a#k'])).get('vault://secret/a#k')).toBe(VALUE);
  });

  it('a token file that is missing, empty or holds two tokens: secret_unavailable naming the key, never the text', async () => {
    const v = await vault();
    expect(await failure(resolverFor(v, { auth: { tokenFile: join(dir, 'nope') } }), 'vault://secret/team/app#api_key')).toContain('cannot read secrets.vault.auth.token_file (ENOENT)');
    await writeFile(join(dir, 'two'), `${TOKEN} ${TOKEN}\n`);
    expect(await failure(resolverFor(v, { auth: { tokenFile: join(dir, 'two') } }), 'vault://secret/team/app#api_key')).toContain('does not hold one token');
    expect(v.reads).toBe(0);
  });

  it('at each read, a secret secrets.vault.allow does not list is refused before any request (the config\'s own are exempt)', async () => {
    const v = await vault();
    v.put('secret/warden/key', { k: VALUE });
    const r = resolverFor(v, { access: { allow: ['secret/team/*'], exempt: new Set(['secret/warden/key']) } });
    expect((await r.resolve(['vault://secret/team/app#api_key'])).size).toBe(1);
    expect((await r.resolve(['vault://secret/warden/key#k'])).size).toBe(1);
    expect(await failure(r, 'vault://secret/other#k')).toContain('vault ref names a secret secrets.vault.allow does not allow');
    expect(v.reads).toBe(2);
  });

  it('a ref Vault would read as another path is refused at parse (config and templates alike)', () => {
    for (const ref of ['vault://secret/a%2Fb#k', 'vault://secret/a//b#k', 'vault://secret/a/#k', 'vault://secret/a%00#k', 'vault://secret/a%ZZ#k', 'vault://secret/a#%00']) {
      expect(() => parseSecretRef(ref), ref).toThrow(SecretRefError);
    }
    expect(parseSecretRef('vault://secret/my%20app#k').scheme).toBe('vault');
  });

  it("refuses a mount Vault keeps for itself (auth, sys, identity, audit): with KV v1 a GET there reads Warden's own token", async () => {
    // GET /v1/auth/token/lookup-self answers {data: {id: <the token sent>}}: with kv_version 1 and
    // allow ['*'], vault://auth/token/lookup-self#id put Warden's Vault token in a prompt.
    const v = await vault({ kvVersion: 1 });
    v.put('auth/token/lookup-self', { id: TOKEN });
    v.put('identity/oidc/token/warden', { token: TOKEN });
    const store = createVaultStore({ address: v.address, caFile: TEST_CA_FILE, auth: { tokenFile: join(dir, 'token') }, kvVersion: 1, timeoutMs: 2_000, maxResponseBytes: 64 * 1024, access: { allow: ['*'], exempt: new Set() } });
    stores.push(store);
    for (const ref of ['vault://auth/token/lookup-self#id', 'vault://%61uth/token/lookup-self#id', 'vault://AUTH/token/lookup-self#id', 'vault://identity/oidc/token/warden#token', 'vault://sys/wrapping/lookup#token', 'vault://audit/x#y']) {
      expect(() => parseSecretRef(ref), ref).toThrow(SecretRefError);
      const err = await store.fetch(new URL(ref)).then(() => undefined, (e: unknown) => e);
      expect(err, ref).toBeInstanceOf(Error);
      expect(String((err as Error).message)).not.toContain(TOKEN);
    }
    expect(v.reads).toBe(0);
    // A Vault Enterprise namespace in the path (/v1/<ns>/auth/token/lookup-self) is not a mount
    // the parser can tell from a KV path: the token read back is refused as a value.
    v.put('team/auth/token/lookup-self', { id: TOKEN, wrapped: `x${TOKEN}x` });
    for (const ref of ['vault://team/auth/token/lookup-self#id', 'vault://team/auth/token/lookup-self#wrapped']) {
      const err = await store.fetch(new URL(ref)).then(() => undefined, (e: unknown) => e);
      expect(err, ref).toBeInstanceOf(Error);
      expect((err as Error).message).toBe("the secret's key in Vault holds Warden's own Vault token");
    }
    // A KV mount of any other name still reads (cubbyhole is a KV-like store of the token's own).
    expect(parseSecretRef('vault://authz/x#k').scheme).toBe('vault');
  });

  it('a ca_file that cannot be read or holds no certificate stops the start, naming the key', async () => {
    const opts = { address: 'https://127.0.0.1:1', auth: { tokenFile: join(dir, 'token') }, kvVersion: 2 as const, timeoutMs: 1000, maxResponseBytes: 1024 };
    expect(() => createVaultStore({ ...opts, caFile: join(dir, 'no-ca.pem') })).toThrow(expect.objectContaining({ code: 'secret_unavailable', location: { path: 'secrets.vault.ca_file' }, message: expect.stringContaining('(ENOENT)') }));
    expect(() => createVaultStore({ ...opts, caFile: join(dir, 'token') })).toThrow(/holds no PEM certificate/);
  });

  it('KV v1: GET /v1/<mount>/<path> → data[key]', async () => {
    const v = await vault({ kvVersion: 1 });
    const r = resolverFor(v, { kvVersion: 1 });
    expect((await r.resolve(['vault://secret/team/app#api_key'])).get('vault://secret/team/app#api_key')).toBe(VALUE);
    expect(v.paths).toEqual(['/v1/secret/team/app']);
  });

  it('a plain-http loopback Vault works without a CA', async () => {
    const v = await vault({ tls: false });
    const r = resolverFor(v, { caFile: undefined });
    expect((await r.resolve(['vault://secret/team/app#api_key'])).get('vault://secret/team/app#api_key')).toBe(VALUE);
  });
});

describe('vault:// reads (Kubernetes login)', () => {
  const k8s = (extra: Partial<{ role: string; mount: string; tokenFile: string }> = {}) => ({
    kubernetes: { role: 'warden', mount: 'kubernetes', tokenFile: join(dir, 'sa-token'), ...extra },
  });

  it('logs in once for concurrent reads (single flight) and reads with the client token', async () => {
    const v = await vault({ kubernetes: { role: 'warden', jwt: SA_JWT } });
    for (let i = 0; i < 5; i++) v.put(`secret/s${i}`, { k: `${VALUE}-${i}` });
    const r = resolverFor(v, { auth: k8s() });
    const refs = Array.from({ length: 5 }, (_, i) => `vault://secret/s${i}#k`);
    const got = await r.resolve(refs);
    expect([...got.values()]).toEqual(Array.from({ length: 5 }, (_, i) => `${VALUE}-${i}`));
    expect(v.logins).toBe(1);
    expect(v.lastHeaders?.['x-vault-token']).toBe(v.issued[0]);
  });

  it('logs in at another mount', async () => {
    const v = await vault({ kubernetes: { role: 'warden', jwt: SA_JWT, mount: 'k8s/prod' } });
    const r = resolverFor(v, { auth: k8s({ mount: 'k8s/prod' }) });
    expect((await r.resolve(['vault://secret/team/app#api_key'])).size).toBe(1);
    expect(v.paths[0]).toBe('/v1/auth/k8s/prod/login');
  });

  it('a login Vault refuses (unknown role, JWT not accepted): secret_unavailable naming the setting', async () => {
    const v = await vault({ kubernetes: { role: 'warden', jwt: SA_JWT } });
    expect(await failure(resolverFor(v, { auth: k8s({ role: 'other' }) }), 'vault://secret/team/app#api_key')).toContain('refused the kubernetes login (HTTP 400)');
    v.jwt = 'another-jwt';
    expect(await failure(resolverFor(v, { auth: k8s() }), 'vault://secret/team/app#api_key')).toContain('refused the kubernetes login (HTTP 403)');
    expect(v.reads).toBe(0);
  });

  it('a revoked client token: logs in again (re-reading the rotated service-account token) and reads', async () => {
    const v = await vault({ kubernetes: { role: 'warden', jwt: SA_JWT } });
    const r = resolverFor(v, { auth: k8s() });
    await r.resolve(['vault://secret/team/app#api_key']);
    v.revoke(v.issued[0]!);
    v.jwt = `${SA_JWT}.rotated`;
    await writeFile(join(dir, 'sa-rotated'), v.jwt);
    // The same file, rotated: the store reads it at each login.
    await writeFile(join(dir, 'sa-token'), v.jwt);
    try {
      r.clear();
      expect((await r.resolve(['vault://secret/team/app#api_key'])).get('vault://secret/team/app#api_key')).toBe(VALUE);
      expect(v.logins).toBe(2);
      expect(v.lastHeaders?.['x-vault-token']).toBe(v.issued[1]);
    } finally {
      await writeFile(join(dir, 'sa-token'), SA_JWT);
    }
  });

  it('renews before the lease ends: past two thirds a new login starts while the old token serves; past the end it waits for one', async () => {
    const v = await startVaultServer({ kubernetes: { role: 'warden', jwt: SA_JWT, leaseSeconds: 30 } });
    servers.push(v);
    let clock = 1_000_000;
    const http = createVaultHttp({ address: v.address, timeoutMs: 2_000, maxResponseBytes: 65536 });
    try {
      const src = kubernetesLoginSource({ http, role: 'warden', mount: 'kubernetes', jwtFile: join(dir, 'sa-token'), timeoutMs: 2_000, headers: {}, now: () => clock });
      const first = await src.token();
      expect(v.logins).toBe(1);
      clock += 19_000; // within two thirds of 30 s
      expect(await src.token()).toBe(first);
      expect(v.logins).toBe(1);
      clock += 2_000; // past two thirds: a login starts in the background, the old token answers
      expect(await src.token()).toBe(first);
      // The renewal's token is handed out once its login is done (polled: the login is not exposed).
      let next = first;
      while (next === first) {
        await new Promise<void>((r) => setTimeout(r, 5));
        next = await src.token();
      }
      expect(next).toBe(v.issued[1]);
      expect(v.logins).toBe(2);
      clock += 31_000; // past the new token's whole lease: the next token waits for a fresh login
      expect(await src.token()).toBe(v.issued[2]);
      expect(v.logins).toBe(3);
    } finally {
      await http.close();
    }
  });
});
