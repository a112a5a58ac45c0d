/** secrets.vault: defaults, the address rules (https, origin only, no credentials), one auth method, paths resolved. */
import { describe, expect, it } from 'vitest';
import { ConfigError, configWarnings, parseConfig } from '../../src/config/index.js';
import { configCredentialFiles } from '../../src/config/secret-refs.js';

function lines(text: string): string[] {
  try {
    parseConfig(text, 'w.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n').slice(1).map((l) => l.trim());
  }
  throw new Error('expected a ConfigError');
}

const vault = (keys: string) => `secrets:\n  vault: { ${keys} }\n`;

describe('secrets.vault', () => {
  it('defaults: KV v2, 5 s per request, 1 MiB answers, the kubernetes mount and projected token; paths resolve against the config', () => {
    const c = parseConfig(vault('address: "https://vault.example:8200", ca_file: ca.pem, auth: { kubernetes: { role: warden } }'), '/etc/warden/w.yaml');
    expect(c.secrets.vault).toEqual({
      address: 'https://vault.example:8200',
      allow_http: false,
      ca_file: '/etc/warden/ca.pem',
      auth: { kubernetes: { role: 'warden', mount: 'kubernetes', token_file: '/var/run/secrets/kubernetes.io/serviceaccount/token' } },
      kv_version: 2,
      timeout_ms: 5000,
      max_response_bytes: 1024 * 1024,
      allow: [],
    });
    const t = parseConfig(vault('address: "http://127.0.0.1:8200", namespace: team/a, kv_version: 1, auth: { token_file: vault-token }'), '/etc/warden/w.yaml');
    expect(t.secrets.vault).toMatchObject({ namespace: 'team/a', kv_version: 1, auth: { token_file: '/etc/warden/vault-token' } });
    // Unset: no Vault (vault:// refs stay "not configured").
    expect(parseConfig('', 'w.yaml').secrets.vault).toBeUndefined();
  });

  it('the token files are credential files of the config (no template ref may read them)', () => {
    const t = parseConfig(vault('address: "https://v", auth: { token_file: tok }'), '/c/w.yaml');
    expect(configCredentialFiles(t)).toEqual(['/c/tok']);
    const k = parseConfig(vault('address: "https://v", auth: { kubernetes: { role: r, token_file: sa } }'), '/c/w.yaml');
    expect(configCredentialFiles(k)).toEqual(['/c/sa']);
  });

  it('refuses plain http to another host (unless allow_http), credentials, a path, another scheme; never quoting the address', () => {
    const auth = 'auth: { token_file: t }';
    expect(lines(vault(`address: "http://vault.example:8200", ${auth}`))).toEqual([
      expect.stringContaining('secrets.vault.address: uses plain http to a host that is not loopback'),
    ]);
    const allowed = parseConfig(vault(`address: "http://vault.example:8200", allow_http: true, ${auth}`), 'w.yaml');
    expect(allowed.secrets.vault?.allow_http).toBe(true);
    expect(configWarnings(allowed)).toContain('secrets.vault.address uses plain http to a non-loopback host (allow_http): the Vault token and every secret read travel unencrypted');
    expect(parseConfig(vault(`address: "http://[::1]:8200", ${auth}`), 'w.yaml').secrets.vault?.address).toBe('http://[::1]:8200');
    const creds = lines(vault(`address: "https://user:hunter2-CANARY@vault.example", ${auth}`));
    expect(creds).toEqual([expect.stringContaining('secrets.vault.address: must not carry credentials')]);
    expect(creds.join('\n')).not.toContain('hunter2-CANARY');
    expect(lines(vault(`address: "https://vault.example/v1", ${auth}`))).toEqual([expect.stringContaining('secrets.vault.address: must be an origin')]);
    expect(lines(vault(`address: "ftp://vault.example", ${auth}`))).toEqual([expect.stringContaining('secrets.vault.address: must be an https URL')]);
    expect(lines(vault(`address: "vault.example:8200", ${auth}`))).toEqual([expect.stringContaining('secrets.vault.address: must be an https URL')]);
  });

  it('exactly one auth method; kv_version 1 or 2; bounds', () => {
    expect(lines(vault('address: "https://v", auth: {}'))).toEqual([expect.stringContaining('secrets.vault.auth: set exactly one of token_file or kubernetes')]);
    expect(lines(vault('address: "https://v", auth: { token_file: t, kubernetes: { role: r } }'))).toEqual([
      expect.stringContaining('secrets.vault.auth: set exactly one of token_file or kubernetes'),
    ]);
    expect(lines(vault('address: "https://v", auth: { kubernetes: {} }'))).toEqual([expect.stringContaining('secrets.vault.auth.kubernetes.role: is required')]);
    expect(lines(vault('address: "https://v", auth: { token_file: t }, kv_version: 3'))).toEqual([expect.stringContaining('secrets.vault.kv_version: must be 1 or 2')]);
    expect(lines(vault('address: "https://v", auth: { token_file: t }, max_response_bytes: 999999999'))).toEqual([
      expect.stringContaining('secrets.vault.max_response_bytes: must be at most'),
    ]);
    expect(parseConfig(vault('address: "https://v", auth: { token_file: t }, allow: [secret/a, "secret/t/*", "*"]'), 'w.yaml').secrets.vault?.allow).toHaveLength(3);
    expect(lines(vault('address: "https://v", auth: { token_file: t }, allow: ["a*b"]'))).toEqual([expect.stringContaining('secrets.vault.allow[0]: must be a mount/path')]);
    expect(lines(vault('auth: { token_file: t }'))).toEqual([expect.stringContaining('secrets.vault.address: is required')]);
    expect(lines(vault('address: "https://v", auth: { token_file: t }, namespace: "a b"'))).toEqual([expect.stringContaining('secrets.vault.namespace: must be a Vault namespace path')]);
    expect(lines(vault('address: "https://v", auth: { token_file: t }, namespace: "a/../b"'))).toEqual([expect.stringContaining('secrets.vault.namespace: must be a Vault namespace path')]);
    expect(lines(vault('address: "https://v", auth: { kubernetes: { role: r, mount: "../sys" } }'))).toEqual([expect.stringContaining('secrets.vault.auth.kubernetes.mount: must be an auth mount path')]);
    expect(parseConfig(vault('address: "https://v", auth: { kubernetes: { role: r, mount: k8s/prod } }, namespace: "a/b/"'), 'w.yaml').secrets.vault?.namespace).toBe('a/b/');
  });
});
