/**
 * The HashiCorp Vault secret store (`vault://mount/path#key`): the provider built from the
 * config's `secrets.vault` section, and the ref decoding the template loader compares names with.
 */
import { WardenError } from '../../pipeline/errors.js';
import type { SecretProvider } from '../../pipeline/ports.js';
import { FileTooLargeError, readFailure, readRegularFileSync } from '../../pipeline/regular-file.js';
import { MIB } from '../../pipeline/sizes.js';
import { kubernetesLoginSource, tokenFileSource } from './auth.js';
import { createVaultHttp } from './http.js';
import { createVaultProvider, VAULT_SECRET_TTL_MS } from './provider.js';

export { VAULT_SECRET_TTL_MS } from './provider.js';
export { vaultSecretName, vaultReadPath, VaultRefError, type VaultSecretName } from '../../pipeline/vault-ref.js';

export interface VaultStoreOptions {
  address: string;
  caFile?: string | undefined;
  namespace?: string | undefined;
  auth: { tokenFile: string } | { kubernetes: { role: string; mount: string; tokenFile: string } };
  kvVersion: 1 | 2;
  timeoutMs: number;
  maxResponseBytes: number;
  /** Lease of a value (ms); default VAULT_SECRET_TTL_MS. */
  ttlMs?: number | undefined;
  /**
   * Which secrets (`mount/path`) may be read (secrets.vault.allow): exact, or prefixes ending in
   * `*`. Secrets in `exempt` (the config's own refs) are read whatever `allow` says. Unset: any.
   */
  access?: { allow: readonly string[]; exempt: ReadonlySet<string> } | undefined;
}

/** The provider, and `close` for its connections (the runtime's end). */
export type VaultStore = SecretProvider & { close(): Promise<void> };

/** The largest ca_file read: a CA bundle, the system's whole included, is a few hundred KB. */
const MAX_CA_FILE_BYTES = MIB;

export function createVaultStore(opts: VaultStoreOptions): VaultStore {
  let ca: string | undefined;
  if (opts.caFile !== undefined) {
    const location = { path: 'secrets.vault.ca_file' };
    try {
      // Read at start, as every config file is: a CA that cannot be read stops the start.
      ca = readRegularFileSync(opts.caFile, MAX_CA_FILE_BYTES);
    } catch (err) {
      const why = err instanceof FileTooLargeError ? `larger than ${MAX_CA_FILE_BYTES} bytes` : readFailure(err);
      throw new WardenError('secret_unavailable', `cannot read ${opts.caFile} (${why})`, { location });
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new WardenError('secret_unavailable', `${opts.caFile} holds no PEM certificate`, { location });
  }
  const http = createVaultHttp({ address: opts.address, ...(ca === undefined ? {} : { ca }), timeoutMs: opts.timeoutMs, maxResponseBytes: opts.maxResponseBytes });
  const headers: Record<string, string> = opts.namespace === undefined ? {} : { 'x-vault-namespace': opts.namespace };
  const auth =
    'tokenFile' in opts.auth
      ? tokenFileSource(opts.auth.tokenFile, opts.timeoutMs)
      : kubernetesLoginSource({ http, role: opts.auth.kubernetes.role, mount: opts.auth.kubernetes.mount, jwtFile: opts.auth.kubernetes.tokenFile, timeoutMs: opts.timeoutMs, headers });
  const provider = createVaultProvider({ http, auth, kvVersion: opts.kvVersion, headers, ttlMs: opts.ttlMs ?? VAULT_SECRET_TTL_MS, access: opts.access });
  return { scheme: provider.scheme, fetch: provider.fetch, close: () => http.close() };
}
