/**
 * Secret references are URIs (DESIGN.md, "Secret refs"). This module only parses and validates
 * them; providers fetch. A ref is a *name*: it may appear in errors, logs and audit records,
 * the value it points to never does.
 *
 *   file:///abs/path            absolute file path
 *   file:relative/path          resolved against a base directory (the config file's directory)
 *   env://NAME                  process environment variable
 *   vault://mount/path#key      HashiCorp Vault KV (src/secrets/vault)
 *   k8s://namespace/name#key    Kubernetes Secret (src/secrets/k8s)
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { vaultSecretName, VaultRefError } from './vault-ref.js';

export const SECRET_SCHEMES = ['file', 'env', 'vault', 'k8s'] as const;
export type SecretScheme = (typeof SECRET_SCHEMES)[number];

export type SecretRefErrorCode =
  | 'ref_empty'
  | 'ref_not_uri'
  | 'ref_unknown_scheme'
  | 'ref_invalid_file'
  | 'ref_invalid_env'
  | 'ref_invalid_vault'
  | 'ref_invalid_k8s'
  | 'ref_too_long';

/** Longest ref accepted: a ref is a name repeated in errors, policy input and every audit record (PATH_MAX is 4096). */
export const MAX_SECRET_REF_LENGTH = 4096;

export class SecretRefError extends Error {
  readonly code: SecretRefErrorCode;
  readonly ref: string;
  /** What is wrong, without the ref itself: for places that must not repeat a value that may be a pasted secret. */
  readonly reason: string;
  constructor(code: SecretRefErrorCode, ref: string, message: string) {
    // A ref past the length limit is not repeated whole: its start names it well enough.
    super(`${message} (ref ${JSON.stringify(ref.length > MAX_SECRET_REF_LENGTH ? `${ref.slice(0, 64)}…` : ref)})`);
    this.name = 'SecretRefError';
    this.code = code;
    this.ref = ref;
    this.reason = message;
  }
}

export interface ParsedSecretRef {
  /** The ref exactly as written (the name used for grants, cache keys and audit). */
  readonly ref: string;
  readonly scheme: SecretScheme;
  /** Normalized URL handed to the provider (`file:` refs are made absolute). */
  readonly url: URL;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// eslint-disable-next-line no-control-regex
const UNSEEN = /[\u0000-\u001f\u007f]|\s$/;
/** A DNS-1123 label: a Kubernetes namespace (at most 63 characters, checked apart). */
const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
/** A DNS-1123 subdomain: a Kubernetes Secret's name (at most 253 characters, checked apart). */
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const K8S_KEY = /^[-._a-zA-Z0-9]+$/;

/**
 * The authority (between `//` and the next `/`) as written: the URL parser would move a
 * `user:password@` out of the host, where a check of the host alone does not see it.
 */
function rawAuthority(ref: string): string {
  const rest = ref.slice(ref.indexOf('//') + 2);
  const end = rest.search(/[/?#]/);
  return end < 0 ? rest : rest.slice(0, end);
}

/**
 * A ref is a name that appears in errors, policies and audit records: credentials in it would be
 * repeated to callers. Refused, with a reason that does not repeat them.
 */
function refuseCredentials(ref: string, code: 'ref_invalid_vault' | 'ref_invalid_k8s'): void {
  if (rawAuthority(ref).includes('@')) {
    throw new SecretRefError(code, ref, 'secret ref may not carry user:password@ (a ref is a name shown in errors and audit records; the store\'s credentials are configuration)');
  }
}

function isSecretScheme(s: string): s is SecretScheme {
  return (SECRET_SCHEMES as readonly string[]).includes(s);
}

/** The scheme of a ref without validating the rest (`undefined` when it is not a URI at all). */
export function secretRefScheme(ref: string): string | undefined {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(ref);
  return m ? m[1]!.toLowerCase() : undefined;
}

/**
 * Parses and validates a ref. `baseDir` resolves relative `file:` refs; without it they are
 * resolved against the current directory.
 */
export function parseSecretRef(ref: string, opts: { baseDir?: string } = {}): ParsedSecretRef {
  if (typeof ref !== 'string' || ref.trim() === '') throw new SecretRefError('ref_empty', String(ref), 'secret ref is empty');
  const scheme = secretRefScheme(ref);
  if (scheme === undefined) throw new SecretRefError('ref_not_uri', ref, 'secret ref is not a URI (expected scheme:...)');
  if (!isSecretScheme(scheme)) {
    throw new SecretRefError('ref_unknown_scheme', ref, `unknown secret ref scheme "${scheme}" (expected one of ${SECRET_SCHEMES.join(', ')})`);
  }
  if (ref.length > MAX_SECRET_REF_LENGTH) {
    throw new SecretRefError('ref_too_long', ref, `secret ref is longer than ${MAX_SECRET_REF_LENGTH} characters`);
  }
  // The URL parser drops tabs and line breaks anywhere and controls or spaces at the ends: the
  // secret read would not be the one the ref (the name policies grant and audit records show) names.
  if (UNSEEN.test(ref)) {
    throw new SecretRefError(`ref_invalid_${scheme}`, ref, 'secret ref holds a control character or ends in whitespace');
  }
  switch (scheme) {
    case 'file':
      return { ref, scheme, url: parseFileRef(ref, opts.baseDir) };
    case 'env': {
      const m = /^env:\/\/([^/?#]*)$/i.exec(ref);
      if (!m || !ENV_NAME.test(m[1]!)) {
        throw new SecretRefError('ref_invalid_env', ref, 'env ref must be env://NAME with NAME a variable name');
      }
      return { ref, scheme, url: new URL(ref) };
    }
    case 'vault': {
      refuseCredentials(ref, 'ref_invalid_vault');
      const url = tryUrl(ref);
      // No port (the store's address is configuration), no `.`/`..` segments (the URL parser
      // would fetch another path than the one granted by name), one `#`.
      if (
        !url || !ref.toLowerCase().startsWith('vault://') || url.host === '' || url.port !== '' || rawAuthority(ref).includes(':') ||
        url.pathname.length <= 1 || url.hash.length <= 1 || url.search !== '' || ref.split('#').length !== 2 ||
        hasDotSegment(ref)
      ) {
        throw new SecretRefError('ref_invalid_vault', ref, 'vault ref must be vault://mount/path#key');
      }
      // Decoded now: a ref that loads is one the store reads as named (no encoded "/", no empty segment).
      try {
        vaultSecretName(url);
      } catch (err) {
        if (err instanceof VaultRefError) throw new SecretRefError('ref_invalid_vault', ref, err.message);
        throw err;
      }
      return { ref, scheme, url };
    }
    case 'k8s': {
      refuseCredentials(ref, 'ref_invalid_k8s');
      const url = tryUrl(ref);
      const namespace = rawAuthority(ref);
      const name = url?.pathname.slice(1) ?? '';
      const key = url?.hash.slice(1) ?? '';
      if (
        !url || !ref.toLowerCase().startsWith('k8s://') || url.search !== '' || hasDotSegment(ref) ||
        namespace.length > 63 || !DNS1123_LABEL.test(namespace) || url.host !== namespace ||
        name.length > 253 || !K8S_NAME.test(name) ||
        key.length > 253 || !K8S_KEY.test(key)
      ) {
        throw new SecretRefError(
          'ref_invalid_k8s',
          ref,
          'k8s ref must be k8s://namespace/name#key (namespace a DNS-1123 label of at most 63 characters, name a DNS-1123 subdomain of at most 253)',
        );
      }
      return { ref, scheme, url };
    }
  }
}

/**
 * Whether the path of a `scheme://authority/path#key` ref has a `.` or `..` segment, written
 * plainly or percent-encoded (`%2e%2e`): the URL parser removes them, so the store would be asked
 * for another path than the one the policy granted by name.
 */
function hasDotSegment(ref: string): boolean {
  const rest = ref.slice(ref.indexOf('//') + 2).split('#')[0]!;
  const slash = rest.indexOf('/');
  if (slash === -1) return false;
  return rest
    .slice(slash + 1)
    .split('/')
    .some((segment) => {
      const plain = segment.replace(/%2e/gi, '.');
      return plain === '.' || plain === '..';
    });
}

function parseFileRef(ref: string, baseDir: string | undefined): URL {
  if (ref.includes('?') || ref.includes('#')) {
    throw new SecretRefError('ref_invalid_file', ref, 'file ref may not carry a query or fragment');
  }
  if (/^file:\/\//i.test(ref)) {
    const url = tryUrl(ref);
    // file://host/path is a remote share: refuse, only local absolute paths are meaningful here.
    if (!url || url.host !== '' || url.pathname === '/' || !ref.slice(7).startsWith('/')) {
      throw new SecretRefError('ref_invalid_file', ref, 'file ref must be file:///absolute/path or file:relative/path');
    }
    // The path the provider will open, decoded now: a ref that loads is one it can open.
    checkFilePath(filePathOf(url, ref), ref);
    return url;
  }
  const rel = decodeURIComponentSafe(ref.slice(5), ref);
  if (rel === '' || isAbsolute(rel)) {
    throw new SecretRefError('ref_invalid_file', ref, 'file ref must be file:///absolute/path or file:relative/path');
  }
  checkFilePath(rel, ref);
  return pathToFileURL(resolvePath(baseDir ?? process.cwd(), rel));
}

/** The local path of a `file://` URL; refused when it has none (an encoded `/`, bad percent-encoding). */
function filePathOf(url: URL, ref: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    throw new SecretRefError('ref_invalid_file', ref, 'file ref has an invalid percent-encoding or a percent-encoded "/"');
  }
}

/** A NUL cannot be in a path the system opens. */
function checkFilePath(path: string, ref: string): void {
  if (path.includes('\0')) throw new SecretRefError('ref_invalid_file', ref, 'file ref path holds a NUL (%00)');
}

function decodeURIComponentSafe(s: string, ref: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new SecretRefError('ref_invalid_file', ref, 'file ref has an invalid percent-encoding');
  }
}

function tryUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}
