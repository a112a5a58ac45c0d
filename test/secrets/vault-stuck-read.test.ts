/**
 * A Vault token file or service-account token on a mount that stopped answering (a dead NFS or
 * CSI mount): its read never returns. The read is shared by every fetch that needs a token, so
 * without a deadline of its own every later fetch joined the stuck one and ended at
 * fetch_timeout_ms, until a restart, even once the mount was back.
 *
 * A dead mount cannot be made on a test machine, and a FIFO does not stand in for one (the files
 * are opened O_NONBLOCK and a FIFO is refused at once). So node:fs/promises is wrapped: a `stat`
 * or `open` of a path in `stuck` returns a promise that settles only when the test ends, as a
 * call stuck in the kernel would; everything else is the real file system and a loopback Vault.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

const hang = vi.hoisted(() => ({ stuck: new Set<string>(), release: [] as (() => void)[] }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  /** A promise that rejects only when the test ends, as a call stuck in the kernel would (never, on its own). */
  const stuckCall = () => new Promise<never>((_, reject) => hang.release.push(() => reject(Object.assign(new Error('released'), { code: 'EIO' }))));
  const stat = ((path: string, ...rest: unknown[]) =>
    hang.stuck.has(String(path)) ? stuckCall() : (real.stat as (p: string, ...r: unknown[]) => Promise<unknown>)(path, ...rest)) as typeof real.stat;
  const open = ((path: string, ...rest: unknown[]) =>
    hang.stuck.has(String(path)) ? stuckCall() : (real.open as (p: string, ...r: unknown[]) => Promise<unknown>)(path, ...rest)) as typeof real.open;
  return { ...real, default: { ...real, stat, open }, stat, open };
});

const { WardenError } = await import('../../src/pipeline/errors.js');
const { createSecretResolver } = await import('../../src/secrets/index.js');
const { createVaultStore } = await import('../../src/secrets/vault/index.js');
const { startVaultServer, TEST_CA_FILE } = await import('./vault-server.js');
type VaultStore = import('../../src/secrets/vault/index.js').VaultStore;
type VaultStoreOptions = import('../../src/secrets/vault/index.js').VaultStoreOptions;
type VaultServer = import('./vault-server.js').VaultServer;

const TOKEN = 'hvs.CANARY-VAULT-TOKEN-stuck1';
const VALUE = 'CANARY-VAULT-VALUE-stuck2';
const SA_JWT = 'eyJhbGciOiJSUzI1NiJ9.CANARY-SA-JWT-stuck3.sig';
const REF = 'vault://secret/team/app#api_key';
/** The store's deadline (timeout_ms), well under the resolver's: the store's own ends the read. */
const TIMEOUT_MS = 2_000;

let dir: string;
const servers: VaultServer[] = [];
const stores: VaultStore[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-vault-stuck-'));
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  await writeFile(join(dir, 'sa-token'), SA_JWT);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  hang.stuck.clear();
  for (const release of hang.release.splice(0)) release();
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(auth: VaultStoreOptions['auth']) {
  const v = await startVaultServer({ tls: true, staticTokens: [TOKEN], kubernetes: { role: 'warden', jwt: SA_JWT } });
  servers.push(v);
  v.put('secret/team/app', { api_key: VALUE });
  const store = createVaultStore({ address: v.address, caFile: TEST_CA_FILE, auth, kvVersion: 2, timeoutMs: TIMEOUT_MS, maxResponseBytes: 64 * 1024 });
  stores.push(store);
  // No failure memory, and a fetch deadline far past the store's: what ends a stuck read is the store's.
  return { v, r: createSecretResolver({ providers: [store], failureTtlMs: 0, fetchTimeoutMs: 10_000 }) };
}

async function failure(r: ReturnType<typeof createSecretResolver>): Promise<string> {
  const err = await r.resolve([REF]).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WardenError);
  expect((err as InstanceType<typeof WardenError>).code).toBe('secret_unavailable');
  const shown = `${(err as Error).message} ${JSON.stringify((err as InstanceType<typeof WardenError>).details)}`;
  for (const canary of [TOKEN, VALUE, SA_JWT]) expect(shown).not.toContain(canary);
  return (err as Error).message;
}

describe('a Vault credential file whose read never returns (a dead mount)', () => {
  it('token_file: the read ends at timeout_ms naming the key, and the next fetch reads the file again', async () => {
    const file = join(dir, 'token');
    const { v, r } = await setup({ tokenFile: file });
    hang.stuck.add(file);
    expect(await failure(r)).toContain(`cannot read secrets.vault.auth.token_file (no answer within ${TIMEOUT_MS} ms)`);
    expect(v.reads).toBe(0);
    // The mount answers again (the stuck call itself still has not returned): the next fetch reads.
    hang.stuck.delete(file);
    expect((await r.resolve([REF])).get(REF)).toBe(VALUE);
    expect(v.lastHeaders?.['x-vault-token']).toBe(TOKEN);
  });

  it('kubernetes login: the service-account token read ends at timeout_ms, and the next fetch logs in', async () => {
    const file = join(dir, 'sa-token');
    const { v, r } = await setup({ kubernetes: { role: 'warden', mount: 'kubernetes', tokenFile: file } });
    hang.stuck.add(file);
    expect(await failure(r)).toContain(`cannot read secrets.vault.auth.kubernetes.token_file (no answer within ${TIMEOUT_MS} ms)`);
    expect(v.logins).toBe(0);
    hang.stuck.delete(file);
    expect((await r.resolve([REF])).get(REF)).toBe(VALUE);
    expect(v.logins).toBe(1);
  });
});
