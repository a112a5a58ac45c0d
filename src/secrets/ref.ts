/**
 * Secret references are URIs (DESIGN.md, "Secret refs"). This module only parses and validates
 * them; providers fetch. A ref is a *name*: it may appear in errors, logs and audit records,
 * the value it points to never does.
 *
 *   file:///abs/path            absolute file path
 *   file:relative/path          resolved against a base directory (the config file's directory)
 *   env://NAME                  process environment variable
 *   vault://mount/path#key      HashiCorp Vault KV (provider: later issue)
 *   k8s://namespace/name#key    Kubernetes Secret (provider: later issue)
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';

export const SECRET_SCHEMES = ['file', 'env', 'vault', 'k8s'] as const;
export type SecretScheme = (typeof SECRET_SCHEMES)[number];

export type SecretRefErrorCode =
  | 'ref_empty'
  | 'ref_not_uri'
  | 'ref_unknown_scheme'
  | 'ref_invalid_file'
  | 'ref_invalid_env'
  | 'ref_invalid_vault'
  | 'ref_invalid_k8s';

export class SecretRefError extends Error {
  readonly code: SecretRefErrorCode;
  readonly ref: string;
  /** What is wrong, without the ref itself: for places that must not repeat a value that may be a pasted secret. */
  readonly reason: string;
  constructor(code: SecretRefErrorCode, ref: string, message: string) {
    super(`${message} (ref ${JSON.stringify(ref)})`);
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
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const K8S_KEY = /^[-._a-zA-Z0-9]+$/;

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
      const url = tryUrl(ref);
      if (!url || !ref.toLowerCase().startsWith('vault://') || url.host === '' || url.pathname.length <= 1 || url.hash.length <= 1 || url.search !== '') {
        throw new SecretRefError('ref_invalid_vault', ref, 'vault ref must be vault://mount/path#key');
      }
      return { ref, scheme, url };
    }
    case 'k8s': {
      const url = tryUrl(ref);
      const name = url?.pathname.slice(1) ?? '';
      const key = url?.hash.slice(1) ?? '';
      if (!url || !ref.toLowerCase().startsWith('k8s://') || !K8S_NAME.test(url.host) || !K8S_NAME.test(name) || !K8S_KEY.test(key) || url.search !== '') {
        throw new SecretRefError('ref_invalid_k8s', ref, 'k8s ref must be k8s://namespace/name#key');
      }
      return { ref, scheme, url };
    }
  }
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
    return url;
  }
  const rel = decodeURIComponentSafe(ref.slice(5), ref);
  if (rel === '' || isAbsolute(rel)) {
    throw new SecretRefError('ref_invalid_file', ref, 'file ref must be file:///absolute/path or file:relative/path');
  }
  return pathToFileURL(resolvePath(baseDir ?? process.cwd(), rel));
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
