/**
 * Where verification keys come from: a JWKS URL (fetched by jose, cached, refetched on an
 * unknown `kid` or a key that cannot be used, at most once per cooldown) or a JWKS file read
 * once at start. The Kubernetes API serves
 * its keys at `/openid/v1/jwks`; reaching it from a pod needs the pod's own token and the
 * cluster CA, hence the optional bearer-token file and CA file.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type FetchImplementation, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';

export interface JwksSourceOptions {
  /** JWKS URL, e.g. `https://kubernetes.default.svc/openid/v1/jwks`. */
  jwksUrl?: string;
  /** JWKS file (a JSON Web Key Set), read once. */
  jwksFile?: string;
  /** Extra request headers for the JWKS URL. */
  jwksHeaders?: Record<string, string>;
  /** File holding a bearer token sent to the JWKS URL (re-read on each fetch: projected tokens rotate). */
  jwksBearerTokenFile?: string;
  /** PEM CA bundle for an https JWKS URL signed by a private CA (the cluster CA). */
  jwksCaFile?: string;
  /** How long fetched keys are trusted before a refetch (ms). Default 10 min. */
  jwksCacheMaxAgeMs?: number;
  /** Fetch timeout (ms). Default 5 s. */
  jwksTimeoutMs?: number;
  /**
   * Rewrites the key set before jose sees it (file and URL alike): a SPIFFE bundle marks its
   * JWT-SVID keys `use: "jwt-svid"`, which jose would otherwise skip as not `sig`.
   */
  mapKeys?: (keys: JWK[]) => JWK[];
}

/** A key source: the key lookup jose verifies with, and a way to fetch the key set again. */
export interface JwksSource {
  getKey: JWTVerifyGetKey;
  /**
   * Called when the key a token names (by `kid`) was found but could not be used: malformed, not
   * importable, too weak. Resolves true when a new key set was fetched, so verifying once more is
   * worth it; always false for a key file.
   */
  refetchAfterUnusableKey(kid: string | undefined): Promise<boolean>;
}

/** The least time between two fetches of a JWKS URL caused by an unknown or unusable key. */
const JWKS_COOLDOWN_MS = 30_000;

export class JwksConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksConfigError';
  }
}

/** JWK members that only private or symmetric keys have: a key set must never hold them. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** Why a key set is unusable, or undefined: no keys, or secret key material in it. */
function keySetProblem(keys: JWK[]): string | undefined {
  if (keys.length === 0) return 'has no keys';
  for (const k of keys) {
    if (typeof k !== 'object' || k === null) return 'holds a key that is not a JSON object';
    if (PRIVATE_MEMBERS.some((m) => m in k)) return 'holds private or symmetric key material; it must hold public keys only';
  }
  return undefined;
}

/** Reads a file named by a config key, failing with the key and the error code (never the contents). */
function readConfigFile(what: string, key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new JwksConfigError(`${what}: cannot read ${key} ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}

export function createJwksSource(opts: JwksSourceOptions, what: string): JwksSource {
  if (opts.jwksUrl && opts.jwksFile) throw new JwksConfigError(`${what}: set jwks_url or jwks_file, not both`);
  if (opts.jwksFile) {
    const text = readConfigFile(what, 'jwks_file', opts.jwksFile);
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(text) as JSONWebKeySet;
    } catch {
      // Not the parser's message: it quotes the file, which may be a token or a key by mistake.
      throw new JwksConfigError(`${what}: jwks_file ${opts.jwksFile} is not valid JSON`);
    }
    if (!jwks || !Array.isArray(jwks.keys)) throw new JwksConfigError(`${what}: jwks_file ${opts.jwksFile} has no "keys" array`);
    const keys = opts.mapKeys ? opts.mapKeys(jwks.keys) : jwks.keys;
    const problem = keySetProblem(keys);
    if (problem) throw new JwksConfigError(`${what}: jwks_file ${opts.jwksFile} ${problem}`);
    try {
      return { getKey: createLocalJWKSet({ keys }), refetchAfterUnusableKey: () => Promise.resolve(false) };
    } catch {
      throw new JwksConfigError(`${what}: jwks_file ${opts.jwksFile} is not a valid JSON Web Key Set`);
    }
  }
  if (!opts.jwksUrl) throw new JwksConfigError(`${what}: jwks_url or jwks_file is required`);
  let url: URL;
  try {
    url = new URL(opts.jwksUrl);
  } catch {
    throw new JwksConfigError(`${what}: jwks_url is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new JwksConfigError(`${what}: jwks_url must be http(s)`);
  const ca = opts.jwksCaFile === undefined ? undefined : readConfigFile(what, 'jwks_ca_file', opts.jwksCaFile);
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new JwksConfigError(`${what}: jwks_ca_file ${opts.jwksCaFile} holds no PEM certificate`);
  }
  // Re-read on every fetch (projected tokens rotate), but it must be there from the start.
  if (opts.jwksBearerTokenFile !== undefined) readConfigFile(what, 'jwks_bearer_token_file', opts.jwksBearerTokenFile);

  const remote: Parameters<typeof createRemoteJWKSet>[1] = {
    cacheMaxAge: opts.jwksCacheMaxAgeMs ?? 600_000,
    timeoutDuration: opts.jwksTimeoutMs ?? 5_000,
    cooldownDuration: JWKS_COOLDOWN_MS,
  };
  if (opts.jwksHeaders) remote.headers = { ...opts.jwksHeaders };
  if (opts.jwksBearerTokenFile || opts.jwksCaFile || opts.mapKeys) {
    const mapKeys = opts.mapKeys;
    const dispatcher = ca !== undefined ? new Agent({ connect: { ca } }) : undefined;
    const tokenFile = opts.jwksBearerTokenFile;
    const fetchImpl: FetchImplementation = async (href, init) => {
      const headers: Record<string, string> = {};
      init.headers.forEach((v, k) => (headers[k] = v));
      if (tokenFile) headers.authorization = `Bearer ${(await readFile(tokenFile, 'utf8')).trim()}`;
      const res = await undiciFetch(href, {
        method: init.method,
        redirect: init.redirect,
        signal: init.signal,
        headers,
        ...(dispatcher ? { dispatcher } : {}),
      });
      if (!mapKeys || !res.ok) return res as unknown as Response;
      // jose validates the body shape itself; only a well-formed key list is rewritten.
      const body = (await res.json()) as { keys?: unknown };
      const out = Array.isArray(body?.keys) ? { ...body, keys: mapKeys(body.keys as JWK[]) } : body;
      return new Response(JSON.stringify(out), { status: res.status, headers: { 'content-type': 'application/json' } });
    };
    remote[customFetch] = fetchImpl;
  }
  return refetchingOnUnusableKey(createRemoteJWKSet(url, remote));
}

/**
 * jose refetches a JWKS URL only for an unknown `kid`: a key set that served one malformed key
 * would be trusted, and the key refused, until the cache age ends (10 min). Here a key that is
 * in the current set but cannot be used makes the set be fetched again, once per cooldown
 * counted from the last fetch or try (a failed fetch too), so a bad issuer cannot make Warden
 * hammer its endpoint.
 */
function refetchingOnUnusableKey(remote: ReturnType<typeof createRemoteJWKSet>): JwksSource {
  let lastTry = Number.NEGATIVE_INFINITY;
  let pending: Promise<boolean> | undefined;
  const refetch = async (): Promise<boolean> => {
    try {
      await remote.reload();
      return true;
    } catch {
      return false; // the caller keeps its own error: the key it had could not be used
    } finally {
      pending = undefined;
    }
  };
  return {
    getKey: remote,
    refetchAfterUnusableKey(kid) {
      if (pending) return pending; // requests failing together share one fetch
      // Only when the failure was the key's: a set that could not be fetched is jose's to retry.
      if (!remote.fresh || !holdsKey(remote.jwks()?.keys, kid)) return Promise.resolve(false);
      if (remote.coolingDown || Date.now() - lastTry < JWKS_COOLDOWN_MS) return Promise.resolve(false);
      lastTry = Date.now();
      return (pending = refetch());
    },
  };
}

/** Whether a key set has the key a token names (any key, for a token without `kid`). */
function holdsKey(keys: JWK[] | undefined, kid: string | undefined): boolean {
  if (!keys) return false;
  return kid === undefined ? keys.length > 0 : keys.some((k) => k.kid === kid);
}
