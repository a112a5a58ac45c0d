/**
 * Which secrets a template may name (README, "Secrets", "Where a template's refs may point").
 *
 * A `file:` ref names a path and an `env:` ref a variable of the Warden process: without a bound,
 * a template could name the pod's service-account token, `/proc/self/environ` or a cloud
 * credential in Warden's own environment, and have it placed in a prompt. So a template's refs
 * must lie under `secrets.file_roots` (after symlinks and `..` are resolved) and match
 * `secrets.env_allow`. The refs the config itself names (`providers.*.api_key`, the `hmac_key`s)
 * are the operator's, and are allowed as written: they need not (and should not) be under a
 * root, which keeps Warden's own credentials out of every template's reach.
 *
 * Checked at template load (lexically, and through symlinks for a file that exists then) and
 * again by the providers at each fetch, on the file actually opened.
 */
import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';

export interface SecretRefAccess {
  /** Absolute directories a template's `file:` refs may point under. Empty: no `file:` ref. */
  readonly fileRoots: readonly string[];
  /** Variable names, or prefixes ending in `*`, a template's `env:` refs may name. Empty: no `env:` ref. */
  readonly envAllow: readonly string[];
  /**
   * Vault secrets (`mount/path`, decoded), or prefixes ending in `*`, a template's `vault:` refs
   * may name (secrets.vault.allow). Empty: no `vault:` ref. Unset: no Vault is configured, and
   * `vault:` refs are not checked (none can be read).
   */
  readonly vaultAllow?: readonly string[];
  /**
   * What the config's own refs read (providers' api_key, the hmac_keys): never a template's,
   * whatever the roots and the allow-lists hold. `vault`: Vault secrets (`mount/path`), any key;
   * `k8s`: Secret keys (`namespace/name#key`, k8sRefId).
   */
  readonly reserved?: {
    readonly paths: ReadonlySet<string>;
    readonly names: ReadonlySet<string>;
    readonly vault?: ReadonlySet<string>;
    readonly k8s?: ReadonlySet<string>;
  };
  /** Namespaces a template's `k8s:` refs may name (secrets.kubernetes). Unset: no `k8s:` ref. */
  readonly k8s?: K8sNamespaces;
}

/**
 * The namespaces a template's `k8s://` refs may name (secrets/k8s/settings.ts reads them from the
 * config, or Warden's own namespace). `why` says why the list is empty, for the error at a ref.
 */
export interface K8sNamespaces {
  readonly namespaces: readonly string[];
  readonly why?: string;
}

/** A `k8s:` ref's Secret key as compared with the config's own (`namespace/name#key`). */
export function k8sRefId(url: URL): string {
  return `${url.host}${url.pathname}${url.hash}`;
}

/** The message for a `k8s:` ref to a namespace outside the list; `list` as for outsideRootsReason. */
export function k8sNamespaceNotAllowedReason(allowed: K8sNamespaces | undefined, list = true): string {
  if (allowed === undefined) return 'k8s refs are not allowed in templates: secrets.kubernetes is not set';
  if (allowed.namespaces.length === 0) return allowed.why ?? 'k8s refs are not allowed in templates: secrets.kubernetes.namespaces is empty';
  return `k8s ref names a namespace outside secrets.kubernetes.namespaces${list ? ` (${allowed.namespaces.join(', ')})` : ''}`;
}

/** The message for a template ref to what one of the config's own refs reads. */
export const RESERVED_REF_REASON = "names a secret the config itself uses (a provider's api_key, an hmac_key): a template may not read Warden's own keys";

/** Whether `path` is `root` or below it (both absolute, normalized). */
export function isUnder(path: string, root: string): boolean {
  if (path === root) return true;
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Whether an environment variable name matches one entry of `allow` (a name, or a prefix ending in `*`). */
export function envNameAllowed(name: string, allow: readonly string[]): boolean {
  for (const entry of allow) {
    if (entry.endsWith('*') ? name.startsWith(entry.slice(0, -1)) : name === entry) return true;
  }
  return false;
}

/** A root with its symlinks resolved; the root as written when it does not exist (yet). */
export function realRootSync(root: string): string {
  try {
    return realpathSync(root);
  } catch {
    return root;
  }
}

/** A root with its symlinks resolved, read now (a root that is a symlink may be swapped); undefined when it is not there. */
export async function realRoot(root: string): Promise<string | undefined> {
  try {
    return await realpath(root);
  } catch {
    return undefined;
  }
}

/**
 * The message for a file outside every root: names the setting, never the path. `list`: the
 * roots too (configuration: at load, for the operator; a caller refused at fetch is not told them).
 */
export function outsideRootsReason(roots: readonly string[], through: 'path' | 'symlink', list = true): string {
  if (roots.length === 0) return 'file refs are not allowed in templates: secrets.file_roots is not set';
  const where = through === 'symlink' ? 'resolves (through a symlink) to a file outside' : 'is outside';
  return `file ref ${where} secrets.file_roots${list ? ` (${roots.join(', ')})` : ''}`;
}

/** The message for a variable env_allow does not allow; `list` as for outsideRootsReason. */
export function envNotAllowedReason(allow: readonly string[], list = true): string {
  if (allow.length === 0) return 'env refs are not allowed in templates: secrets.env_allow is not set';
  return `env ref names a variable secrets.env_allow does not allow${list ? ` (${allow.join(', ')})` : ''}`;
}

/** The message for a Vault secret secrets.vault.allow does not allow; `list` as for outsideRootsReason. */
export function vaultNotAllowedReason(allow: readonly string[], list = true): string {
  if (allow.length === 0) return 'vault refs are not allowed in templates: secrets.vault.allow is not set';
  return `vault ref names a secret secrets.vault.allow does not allow${list ? ` (${allow.join(', ')})` : ''}`;
}
