/**
 * What a `vault://mount/path#key` ref names, decoded (used by the ref parser at load, the Vault
 * store at each read and the template loader's bounds): the mount (one segment), the secret's path
 * segments and the key. The grammar is checked at load (pipeline/secret-ref.ts); this decodes the
 * percent-encoding and refuses what would make Vault read another secret than the one named:
 * an encoded `/` (Vault decodes the path before routing it, so `a%2Fb` would be `a/b`), an empty
 * segment (`a//b`), a control character. Each segment is encoded again, one way, for the request:
 * two spellings of one secret (`%61` and `a`) read the same secret and compare equal as names.
 */
export interface VaultSecretName {
  readonly mount: string;
  readonly segments: readonly string[];
  readonly key: string;
  /** `mount/seg/seg` decoded: the secret, whatever its key, for comparing names. */
  readonly secret: string;
}

export class VaultRefError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultRefError';
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function decodePart(part: string, what: string): string {
  let out: string;
  try {
    out = decodeURIComponent(part);
  } catch {
    throw new VaultRefError(`vault ref ${what} has an invalid percent-encoding`);
  }
  if (out === '') throw new VaultRefError(`vault ref ${what} has an empty segment`);
  if (out.includes('/')) throw new VaultRefError(`vault ref ${what} holds a percent-encoded "/"`);
  if (CONTROL.test(out)) throw new VaultRefError(`vault ref ${what} holds a control character`);
  if (out === '.' || out === '..') throw new VaultRefError(`vault ref ${what} holds a "." or ".." segment`);
  return out;
}

/**
 * Mounts Vault keeps for itself (its protected paths): no KV engine can be mounted there, and a
 * GET under them answers with credentials, not a stored secret. With KV v1 (`GET /v1/<mount>/<path>`)
 * `vault://auth/token/lookup-self#id` would read Warden's own token (`data.id`), and
 * `identity/oidc/token/<role>` mint one; so would any `*` allow list. Compared without case.
 */
const SYSTEM_MOUNTS = new Set(['auth', 'sys', 'identity', 'audit']);

/** The secret a parsed `vault:` URL names; VaultRefError when it cannot be read as written. */
export function vaultSecretName(url: URL): VaultSecretName {
  const mount = decodePart(url.host, 'mount');
  if (SYSTEM_MOUNTS.has(mount.toLowerCase())) throw new VaultRefError(`vault ref mount "${mount.toLowerCase()}" is Vault's own (auth, sys, identity, audit), not a KV secrets engine`);
  const segments = url.pathname.slice(1).split('/').map((s) => decodePart(s, 'path'));
  let key: string;
  try {
    key = decodeURIComponent(url.hash.slice(1));
  } catch {
    throw new VaultRefError('vault ref key has an invalid percent-encoding');
  }
  if (key === '' || CONTROL.test(key)) throw new VaultRefError('vault ref key is empty or holds a control character');
  return { mount, segments, key, secret: [mount, ...segments].join('/') };
}

/** The API path that reads the secret: KV v2 `/v1/<mount>/data/<path>`, KV v1 `/v1/<mount>/<path>`. */
export function vaultReadPath(name: VaultSecretName, kvVersion: 1 | 2): string {
  const path = name.segments.map(encodeURIComponent).join('/');
  const mount = encodeURIComponent(name.mount);
  return kvVersion === 2 ? `/v1/${mount}/data/${path}` : `/v1/${mount}/${path}`;
}
