/**
 * The secret refs the config itself names (providers' `api_key`, `redaction.hmac_key`,
 * `audit.hmac_key`): the operator's. They are read wherever they point (secrets.file_roots and
 * env_allow bound the templates' refs only), and no template may name them, whatever the bounds:
 * a root or an allow-list broad enough to hold them (`env_allow: ["*"]`) must not hand Warden's
 * own keys to a template.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { k8sRefId } from '../pipeline/secret-access.js';
import { parseSecretRef } from '../secrets/index.js';
import { vaultSecretName } from '../pipeline/vault-ref.js';
import type { Config } from './schema.js';

export function configSecretRefs(config: Config): string[] {
  const refs: string[] = [];
  for (const p of Object.values(config.providers)) if (p.kind === 'openai' && p.api_key !== undefined) refs.push(p.api_key);
  if (config.redaction.hmac_key !== undefined) refs.push(config.redaction.hmac_key);
  if (config.audit.hmac_key !== undefined) refs.push(config.audit.hmac_key);
  return refs;
}

/** What the config's own refs read: file paths (absolute, relative ones against `configDir`) and variable names. */
export interface ConfigRefTargets {
  readonly paths: ReadonlySet<string>;
  readonly names: ReadonlySet<string>;
  /** Vault secrets (`mount/path`, decoded) the config's own `vault:` refs read, whatever their key. */
  readonly vault: ReadonlySet<string>;
  /** `k8s:` refs' Secret keys, as `namespace/name#key` (pipeline/secret-access.ts k8sRefId). */
  readonly k8s: ReadonlySet<string>;
}

/**
 * The credential files the config names by path rather than by ref: each JWT method's
 * `jwks_bearer_token_file` (often the pod's own service-account token), read by the identity
 * module, the Vault auth's token files, read by the Vault store, and the Kubernetes Secret store's
 * service-account token: not by the file provider. Warden's own as much as an api_key: no template may read one.
 * Absolute once the config is loaded (relative ones are resolved against its directory).
 */
export function configCredentialFiles(config: Config): string[] {
  const files: string[] = [];
  const add = (section: { jwks_bearer_token_file?: string | undefined } | undefined): void => {
    if (section?.jwks_bearer_token_file !== undefined) files.push(section.jwks_bearer_token_file);
  };
  add(config.identity.kubernetes);
  add(config.identity.spiffe);
  for (const bundle of Object.values(config.identity.spiffe?.bundles ?? {})) add(bundle);
  // Warden's Vault token, or the service-account token it logs in to Vault with.
  const vaultAuth = config.secrets.vault?.auth;
  if (vaultAuth?.token_file !== undefined) files.push(vaultAuth.token_file);
  if (vaultAuth?.kubernetes !== undefined) files.push(vaultAuth.kubernetes.token_file);
  // The Kubernetes Secret store's service-account token: read by the k8s provider itself.
  if (config.secrets.kubernetes !== undefined) files.push(config.secrets.kubernetes.token_file);
  return files;
}

/**
 * What no template ref may read: what the config's own refs read (configRefTargets) and its
 * credential files (configCredentialFiles). Unlike the former, the latter are not exempt from the
 * roots at fetch: no ref of the config's reads them.
 */
export function reservedRefTargets(config: Config, configDir: string): ConfigRefTargets {
  const own = configRefTargets(config, configDir);
  const paths = new Set(own.paths);
  for (const file of configCredentialFiles(config)) paths.add(resolve(configDir, file));
  return { paths, names: own.names, vault: own.vault, k8s: own.k8s };
}

export function configRefTargets(config: Config, configDir: string): ConfigRefTargets {
  const paths = new Set<string>();
  const names = new Set<string>();
  const vault = new Set<string>();
  const k8s = new Set<string>();
  for (const ref of configSecretRefs(config)) {
    let p;
    try {
      p = parseSecretRef(ref, { baseDir: configDir });
    } catch {
      continue; // the schema has refused it already
    }
    if (p.scheme === 'file') paths.add(fileURLToPath(p.url));
    else if (p.scheme === 'env') names.add(p.url.host);
    else if (p.scheme === 'vault') vault.add(vaultSecretName(p.url).secret);
    else if (p.scheme === 'k8s') k8s.add(k8sRefId(p.url));
  }
  return { paths, names, vault, k8s };
}
