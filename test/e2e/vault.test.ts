/**
 * End to end: a template's `vault://` ref resolved from a loopback Vault (https, the test CA,
 * the documented API: test/secrets/vault-server.ts) through the real Warden HTTP server. The
 * value reaches the upstream in the prompt and the leak guard masks it in the answer that
 * repeats it; the Kubernetes login is redone when Vault revokes its token; a sealed or stalled
 * Vault is `secret_unavailable` with nothing sent upstream. Neither the value nor the Vault
 * token (nor the service-account JWT) appears in the answer, the log or the audit records.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';
import { startVaultServer, TEST_CA_FILE, type VaultServer } from '../secrets/vault-server.js';

const VALUE = 'CANARY-VAULT-E2E-VALUE-6f5e4d';
const TOKEN = 'hvs.CANARY-VAULT-E2E-TOKEN-1a2b';
const SA_JWT = 'eyJhbGciOiJSUzI1NiJ9.CANARY-E2E-SA-JWT-9c8b.sig';

const TEMPLATE = `id: ops/vault-brief
version: 1
owner: sre@example.com
sensitivity: internal
description: Carries a code kept in Vault.
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  service: { type: string, max_length: 64 }
  code: { source: secret, ref: "vault://secret/ops/brief#code" }
messages:
  - role: user
    content: "Service {{service}} is failing; the escalation code is {{code}}."
`;

let upstream: FakeUpstream;
const wardens: WardenFixture[] = [];
const vaults: VaultServer[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
});
afterEach(async () => {
  await Promise.all(wardens.splice(0).map((w) => w.close()));
  await Promise.all(vaults.splice(0).map((v) => v.close()));
});
afterAll(async () => {
  await upstream?.close();
});

async function start(vaultAuth: string, vaultKeys = '', secretsKeys = ''): Promise<WardenFixture> {
  const w = await startWarden({
    upstreamUrl: upstream.url,
    files: { 'templates/ops/vault-brief.yaml': TEMPLATE, 'vault/token': `${TOKEN}\n`, 'vault/sa-token': SA_JWT },
    secrets: `secrets: { file_roots: [secrets]${secretsKeys}, vault: { address: "${vaults.at(-1)!.address}", ca_file: "${TEST_CA_FILE}", auth: ${vaultAuth}, allow: ["secret/ops/*"]${vaultKeys} } }`,
  });
  wardens.push(w);
  return w;
}

async function vault(opts: Parameters<typeof startVaultServer>[0] = {}): Promise<VaultServer> {
  const v = await startVaultServer({ tls: true, staticTokens: [TOKEN], ...opts });
  v.put('secret/ops/brief', { code: VALUE });
  vaults.push(v);
  return v;
}

async function call(w: WardenFixture) {
  const token = await w.signer.token('support', 'ticket-bot');
  const res = await postChat(w.addresses.http, token, { model: 'gpt-4o-mini', warden: { template: 'ops/vault-brief@1', variables: { service: 'billing' } } });
  return { status: res.status, text: await res.text(), requestId: res.headers.get('x-request-id') };
}

function noLeaks(w: WardenFixture, answer: string): void {
  const seen = [answer, w.logs.join('\n'), JSON.stringify(w.audit())];
  for (const text of seen) for (const canary of [VALUE, TOKEN, SA_JWT]) expect(text).not.toContain(canary);
}

describe('vault:// refs through the Warden HTTP server', () => {
  it('places the Vault value in the prompt, masks it in the answer, audits the ref (never the value)', async () => {
    const v = await vault();
    const w = await start('{ token_file: vault/token }');
    const before = upstream.calls.length;
    const res = await call(w);
    expect(res.status).toBe(200);
    // The upstream was sent the value, and echoed it back: the leak guard masked it.
    expect(upstream.calls.length).toBe(before + 1);
    expect(JSON.stringify(upstream.calls.at(-1)!.body.messages)).toContain(VALUE);
    expect(res.text).toContain('upstream saw: Service billing is failing');
    expect(v.lastHeaders?.['x-vault-token']).toBe(TOKEN);
    const record = w.audit().find((r) => r.request_id === res.requestId)!;
    expect(JSON.stringify(record)).toContain('vault://secret/ops/brief#code');
    noLeaks(w, res.text);
  });

  it('logs in with the service-account token, and logs in again when Vault revokes the client token', async () => {
    const v = await vault({ staticTokens: [], kubernetes: { role: 'warden', jwt: SA_JWT } });
    // default_ttl_ms 0: every request reads Vault (no value is cached).
    const w = await start('{ kubernetes: { role: warden, token_file: vault/sa-token } }', '', ', default_ttl_ms: 0');
    expect((await call(w)).status).toBe(200);
    expect(v.logins).toBe(1);
    v.revoke(v.issued[0]!);
    const again = await call(w);
    expect(again.status).toBe(200);
    expect(v.logins).toBe(2);
    expect(v.lastHeaders?.['x-vault-token']).toBe(v.issued[1]);
    noLeaks(w, again.text);
  });

  it('a sealed Vault, or one that never answers: 503 secret_unavailable, nothing sent upstream', async () => {
    const v = await vault();
    const w = await start('{ token_file: vault/token }', ', timeout_ms: 300');
    v.sealed = true;
    const before = upstream.calls.length;
    const sealed = await call(w);
    expect(sealed.status).toBe(503);
    expect(JSON.parse(sealed.text).error.code).toBe('secret_unavailable');
    expect(sealed.text).toContain('Vault is sealed or in maintenance');
    v.sealed = false;
    v.stall = true;
    // The failure is remembered for 1 s (secrets' failure memory): a new ref name is not needed,
    // the next answer after it is Vault's own; wait for the memory to pass by asking until it does.
    let stalled = await call(w);
    while (stalled.text.includes('sealed')) {
      await new Promise<void>((r) => setTimeout(r, 50));
      stalled = await call(w);
    }
    expect(stalled.status).toBe(503);
    expect(stalled.text).toContain('did not answer within 300 ms');
    expect(upstream.calls.length).toBe(before);
    expect(w.audit().at(-1)?.error_code).toBe('secret_unavailable');
    noLeaks(w, sealed.text + stalled.text);
  });

  it('a template may name only the Vault secrets secrets.vault.allow lists (checked at load)', async () => {
    const v = await vault();
    v.put('secret/warden/upstream', { api_key: 'CANARY-VAULT-PROVIDER-KEY-77aa', other: 'CANARY-VAULT-OTHER-KEY-88bb' });
    const w = await start('{ token_file: vault/token }');
    const steal = (ref: string) =>
      writeFileSync(join(w.dir, 'templates', 'ops', 'steal.yaml'), TEMPLATE.replace('ops/vault-brief', 'ops/steal').replace('vault://secret/ops/brief#code', ref));
    expect(await w.runtime.reload('allowed')).toBe(true);
    steal('vault://secret/other/x#code');
    expect(await w.runtime.reload('outside')).toBe(false);
    expect(w.logs.join('\n')).toContain('vault ref names a secret secrets.vault.allow does not allow (secret/ops/*)');
    expect(v.reads).toBe(0);
  });

  it("a template ref to the Vault secret of the config's own hmac_key (any key, any spelling) is refused at load", async () => {
    const v = await vault();
    v.put('secret/warden/upstream', { api_key: 'CANARY-VAULT-HMAC-KEY-77aa-0123456789abcdef' });
    const w = await startWarden({
      upstreamUrl: upstream.url,
      files: { 'vault/token': `${TOKEN}\n` },
      secrets: `secrets: { file_roots: [secrets], vault: { address: "${v.address}", ca_file: "${TEST_CA_FILE}", auth: { token_file: vault/token }, allow: ["secret/*"] } }`,
      audit: 'audit: { sinks: [{ file: audit.log }], required: true, hmac_key: "vault://secret/warden/upstream#api_key" }',
    });
    wardens.push(w);
    for (const ref of ['vault://secret/warden/upstream#api_key', 'vault://secret/warden/upstream#other', 'vault://secret/w%61rden/upstream#api_key']) {
      writeFileSync(join(w.dir, 'templates', 'ops', 'steal.yaml'), TEMPLATE.replace('ops/vault-brief', 'ops/steal').replace('vault://secret/ops/brief#code', ref));
      const seen = w.logs.length;
      expect(await w.runtime.reload(ref)).toBe(false);
      expect(w.logs.slice(seen).join('\n')).toContain("a template may not read Warden's own keys");
    }
    // The hmac_key was read from Vault at start; its value is in no log line.
    expect(v.reads).toBe(1);
    expect(w.logs.join('\n')).not.toContain('CANARY-VAULT-HMAC-KEY-77aa');
  });

  it('without secrets.vault a template naming a vault: ref loads as before, and its requests are "not configured"', async () => {
    const w = await startWarden({ upstreamUrl: upstream.url, files: { 'templates/ops/vault-brief.yaml': TEMPLATE } });
    wardens.push(w);
    const before = upstream.calls.length;
    const res = await call(w);
    expect(res.status).toBe(503);
    expect(res.text).toContain('the vault secret store is not configured');
    expect(upstream.calls.length).toBe(before);
  });

  it('a template may not read the Vault token file through a file: ref (a credential file of the config)', async () => {
    await vault();
    const w = await start('{ token_file: secrets/vault-token }');
    writeFileSync(join(w.dir, 'secrets', 'vault-token'), `${TOKEN}\n`);
    // The loader refuses such a template at reload; at fetch the file provider refuses it too.
    writeFileSync(
      join(w.dir, 'templates', 'ops', 'steal.yaml'),
      TEMPLATE.replace('ops/vault-brief', 'ops/steal').replace('vault://secret/ops/brief#code', 'file:secrets/vault-token'),
    );
    expect(await w.runtime.reload('test')).toBe(false);
    expect(w.logs.join('\n')).toContain("a template may not read Warden's own keys");
  });
});
