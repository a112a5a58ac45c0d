/**
 * Where verification keys come from: a JWKS URL (fetched by jose, cached, refetched on an
 * unknown `kid` after a cooldown) or a JWKS file read once at start. The Kubernetes API serves
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

export class JwksConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksConfigError';
  }
}

export function createJwksSource(opts: JwksSourceOptions, what: string): JWTVerifyGetKey {
  if (opts.jwksUrl && opts.jwksFile) throw new JwksConfigError(`${what}: set jwks_url or jwks_file, not both`);
  if (opts.jwksFile) {
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(readFileSync(opts.jwksFile, 'utf8')) as JSONWebKeySet;
    } catch (err) {
      throw new JwksConfigError(`${what}: cannot read JWKS file ${opts.jwksFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (!jwks || !Array.isArray(jwks.keys)) throw new JwksConfigError(`${what}: JWKS file ${opts.jwksFile} has no "keys" array`);
    return createLocalJWKSet(opts.mapKeys ? { keys: opts.mapKeys(jwks.keys) } : jwks);
  }
  if (!opts.jwksUrl) throw new JwksConfigError(`${what}: jwks_url or jwks_file is required`);
  let url: URL;
  try {
    url = new URL(opts.jwksUrl);
  } catch {
    throw new JwksConfigError(`${what}: jwks_url is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new JwksConfigError(`${what}: jwks_url must be http(s)`);

  const remote: Parameters<typeof createRemoteJWKSet>[1] = {
    cacheMaxAge: opts.jwksCacheMaxAgeMs ?? 600_000,
    timeoutDuration: opts.jwksTimeoutMs ?? 5_000,
    cooldownDuration: 30_000,
  };
  if (opts.jwksHeaders) remote.headers = { ...opts.jwksHeaders };
  if (opts.jwksBearerTokenFile || opts.jwksCaFile || opts.mapKeys) {
    const mapKeys = opts.mapKeys;
    const dispatcher = opts.jwksCaFile ? new Agent({ connect: { ca: readFileSync(opts.jwksCaFile, 'utf8') } }) : undefined;
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
  return createRemoteJWKSet(url, remote);
}
