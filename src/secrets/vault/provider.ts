/**
 * `vault://mount/path#key` secret provider: one key of a HashiCorp Vault KV secret.
 *
 * KV v2: `GET /v1/<mount>/data/<path>` → `data.data[<key>]`; KV v1: `GET /v1/<mount>/<path>` →
 * `data[<key>]`. The value must be a non-empty, well-formed string. A missing secret or key, a deleted or
 * destroyed version, a refusal, a sealed or failing Vault, a timeout, a body that is not JSON or
 * is too large: each a SecretFetchError in our words (the resolver makes it `secret_unavailable`),
 * never Vault's body, never a value or a token. A 403 is retried once with a fresh token (the
 * token may have expired or been revoked); a second 403 is the answer.
 *
 * KV secrets carry no lease (v2 reports 0; v1's lease_duration is only a refresh hint of 32
 * days by default), so a value is cached for `ttlMs`: secrets.default_ttl_ms, else 60 s.
 */
import type { SecretProvider } from '../../pipeline/ports.js';
import { envNameAllowed, vaultNotAllowedReason } from '../../pipeline/secret-access.js';
import { SecretFetchError } from '../file.js';
import { statusWords, type VaultTokenSource } from './auth.js';
import type { VaultHttp } from './http.js';
import { VaultRefError, vaultReadPath, vaultSecretName } from '../../pipeline/vault-ref.js';

/** Default lease of a Vault KV value: a rotated secret is picked up within a minute. */
export const VAULT_SECRET_TTL_MS = 60_000;

export interface VaultProviderOptions {
  http: VaultHttp;
  auth: VaultTokenSource;
  kvVersion: 1 | 2;
  /** Headers sent with every request (`X-Vault-Namespace`). */
  headers: Record<string, string>;
  ttlMs?: number;
  /** See VaultStoreOptions.access: checked before any request, so a refused ref costs no read. */
  access?: { allow: readonly string[]; exempt: ReadonlySet<string> } | undefined;
}

export function createVaultProvider(opts: VaultProviderOptions): SecretProvider {
  const ttlMs = opts.ttlMs ?? VAULT_SECRET_TTL_MS;

  async function read(path: string, token: string, signal?: AbortSignal) {
    return opts.http.request('GET', path, { ...opts.headers, 'x-vault-token': token }, undefined, signal);
  }

  return {
    scheme: 'vault',
    async fetch(ref: URL, signal?: AbortSignal) {
      let name;
      try {
        name = vaultSecretName(ref);
      } catch (err) {
        if (err instanceof VaultRefError) throw new SecretFetchError(err.message);
        throw err;
      }
      const access = opts.access;
      if (access !== undefined && !access.exempt.has(name.secret) && !envNameAllowed(name.secret, access.allow)) {
        throw new SecretFetchError(vaultNotAllowedReason(access.allow, false));
      }
      const path = vaultReadPath(name, opts.kvVersion);
      let token = await opts.auth.token(signal);
      let res = await read(path, token, signal);
      if (res.status === 403 && (await opts.auth.rejected(token, signal))) {
        token = await opts.auth.token(signal);
        res = await read(path, token, signal);
      }
      const body = res.body as { data?: unknown } | undefined;
      if (res.status === 404) {
        // KV v2 answers a deleted or destroyed latest version with 404 and its metadata.
        const meta = opts.kvVersion === 2 ? metadataOf(body) : undefined;
        if (meta?.destroyed === true) throw new SecretFetchError("the secret's current version is destroyed in Vault");
        if (typeof meta?.deletion_time === 'string' && meta.deletion_time !== '') throw new SecretFetchError("the secret's current version is deleted in Vault");
        throw new SecretFetchError('no secret at this path in Vault (HTTP 404)');
      }
      if (res.status === 403) throw new SecretFetchError("Vault refused the read (HTTP 403): Warden's token has no read capability on this path, or is no longer valid");
      if (res.status !== 200) throw new SecretFetchError(`Vault did not answer the read (${statusWords(res.status)})`);
      if (body === undefined || typeof body !== 'object' || body === null) throw new SecretFetchError("Vault's answer is not a JSON object");
      let data: unknown = body.data;
      if (opts.kvVersion === 2) {
        const meta = metadataOf(body);
        // A deletion_time in the future is a version scheduled for deletion (delete_version_after)
        // and still readable; one in the past (or that cannot be read as a time) is deleted.
        const deletion = typeof meta?.deletion_time === 'string' && meta.deletion_time !== '' ? Date.parse(meta.deletion_time) : undefined;
        if (meta?.destroyed === true || (deletion !== undefined && !(deletion > Date.now()))) {
          throw new SecretFetchError("the secret's current version is deleted in Vault");
        }
        data = isObject(data) ? data.data : undefined;
      }
      if (!isObject(data)) {
        throw new SecretFetchError(opts.kvVersion === 2 ? "Vault's answer has no data.data object (is the mount KV version 2?)" : "Vault's answer has no data object");
      }
      if (!Object.hasOwn(data, name.key)) throw new SecretFetchError('the secret in Vault has no such key');
      const value = data[name.key];
      if (typeof value !== 'string') throw new SecretFetchError("the secret's key in Vault does not hold a string");
      // An empty key would go upstream as a bare "Bearer": refused, as the other providers refuse one.
      if (value === '') throw new SecretFetchError("the secret's key in Vault is empty");
      // Warden's own token read back (auth/token/lookup-self answers it as data.id): reachable
      // through a Vault Enterprise namespace in the path (`vault://team/auth/token/lookup-self`
      // with KV v1), which the refusal of the system mounts at parse cannot tell from a KV path.
      if (value.includes(token)) throw new SecretFetchError("the secret's key in Vault holds Warden's own Vault token");
      // A lone surrogate (a `\ud800` escape in the JSON) is no text: written as UTF-8 into a header
      // or a prompt it would become U+FFFD, a different credential. Refused, as the file and k8s
      // stores refuse bytes that are not UTF-8 rather than replace them.
      if (!(value as WellFormedCheck).isWellFormed()) throw new SecretFetchError("the secret's key in Vault is not well-formed text (a lone surrogate)");
      return { value, ttlMs };
    },
  };
}

/** String.prototype.isWellFormed: in Node 20+, typed only in lib ES2024 (this build uses ES2023). */
type WellFormedCheck = string & { isWellFormed(): boolean };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function metadataOf(body: unknown): { deletion_time?: unknown; destroyed?: unknown } | undefined {
  const data = isObject(body) ? body.data : undefined;
  const meta = isObject(data) ? data.metadata : undefined;
  return isObject(meta) ? meta : undefined;
}
