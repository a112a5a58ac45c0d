/**
 * SPIFFE JWT-SVIDs: `sub` is the workload's SPIFFE ID (`spiffe://trust-domain/path`), verified
 * against that trust domain's JWKS bundle only (each accepted domain has its own). A `/ns/<ns>/sa/<sa>` path (the SPIRE Kubernetes
 * convention) also fills namespace and service account so the same policies apply, but only in
 * the trust domains that name this cluster's service accounts: a partner's domain signs whatever
 * paths it likes, and `spiffe://partner.example/ns/prod/sa/payments` must not pass for prod's
 * payments service account in templates' `allowed_services` or in policies.
 */
import type { JWK, JWTPayload } from 'jose';
import type { Authenticator } from '../pipeline/ports.js';
import type { Credentials, Principal } from '../pipeline/types.js';
import { BearerJwtVerifier, type BearerJwtMethod, type BearerJwtOptions } from './bearer-jwt.js';
import { JwksConfigError, type JwksSourceOptions } from './jwks.js';
import { audiencesOf, DEFAULT_ALGORITHMS, peekClaims, unauthenticated } from './jwt.js';
import { isNamespaceName, isSubdomainName } from '../pipeline/kubernetes-names.js';

export interface SpiffeJwtAuthenticatorOptions extends BearerJwtOptions {
  /**
   * The trust domain verified with the options' own key set (`jwksUrl` / `jwksFile`), e.g.
   * `prod.example.com`. One at most: a key set serving several domains would let any of them
   * sign for the others.
   */
  trustDomains?: string[];
  /** Trust domains, each verified only with its own key set (its SPIFFE bundle). */
  bundles?: Record<string, JwksSourceOptions>;
  /** Optional accepted `iss` values (JWT-SVIDs need not carry one). */
  issuer?: string | string[];
  /**
   * The trust domains whose `/ns/<ns>/sa/<sa>` paths fill the principal's namespace and service
   * account. Default: the one domain of `trustDomains`; none of `bundles` (each must be listed).
   */
  kubernetesTrustDomains?: string[];
}

/**
 * A SPIFFE trust bundle is a JWKS whose keys say what they authenticate: `jwt-svid` keys verify
 * JWT-SVIDs, `x509-svid` keys are CA certificates and must never verify a JWT. jose only accepts
 * `use: "sig"` (or none), so JWT-SVID keys are presented as signing keys and the rest dropped.
 */
export function jwtSvidKeys(keys: JWK[]): JWK[] {
  const out: JWK[] = [];
  for (const k of keys) {
    if (k.use === undefined || k.use === 'sig') out.push(k);
    else if (k.use === 'jwt-svid') out.push({ ...k, use: 'sig' });
  }
  return out;
}

/**
 * A SPIFFE ID as the spec allows it: a lower-case trust domain, then path segments of letters,
 * digits, `.`, `-` and `_` (no empty, `.` or `..` segment, no percent-encoding, no trailing `/`).
 */
const SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[A-Za-z0-9._-]+)*)$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;
const MAX_SPIFFE_ID = 2048;
/** The SPIFFE libraries' limit on a trust domain name (a DNS name is at most 253). */
const MAX_TRUST_DOMAIN = 255;
const K8S_PATH = /^\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** The trust domain of a well-formed SPIFFE ID, or undefined. */
function trustDomainOf(id: string): string | undefined {
  if (id.length > MAX_SPIFFE_ID) return undefined;
  const m = SPIFFE_ID.exec(id);
  return m && m[1]!.length <= MAX_TRUST_DOMAIN && !DOT_SEGMENT.test(m[2]!) ? m[1] : undefined;
}

export class SpiffeJwtAuthenticator implements Authenticator {
  readonly method = 'spiffe';
  readonly takes = 'a JWT whose sub is a spiffe:// ID';
  /** One verifier per trust domain, each with that domain's key set only. */
  private readonly verifiers = new Map<string, BearerJwtVerifier>();
  private readonly principals = new Map<string, (payload: JWTPayload) => Principal>();
  /** Trust domains whose `/ns/<ns>/sa/<sa>` paths name Kubernetes service accounts. */
  private readonly kubernetesDomains: ReadonlySet<string>;
  /** The only trust domain, when there is one: its tokens need no peek before the cache. */
  private readonly single: { verifier: BearerJwtVerifier; toPrincipal: (payload: JWTPayload) => Principal } | undefined;

  constructor(opts: SpiffeJwtAuthenticatorOptions) {
    const bundles = Object.entries(opts.bundles ?? {});
    const shared = opts.trustDomains ?? [];
    if (shared.length + bundles.length === 0) throw new JwksConfigError('spiffe: at least one trust domain is required');
    if (shared.length > 1) {
      throw new JwksConfigError('spiffe: one key set cannot serve several trust domains (any of them could sign for the others); give each its own bundle');
    }
    this.kubernetesDomains = new Set(opts.kubernetesTrustDomains ?? shared);
    for (const d of this.kubernetesDomains) {
      if (!shared.includes(d) && !Object.hasOwn(opts.bundles ?? {}, d)) throw new JwksConfigError(`spiffe: kubernetes_trust_domains names ${d}, which is not an accepted trust domain`);
    }
    const method: BearerJwtMethod = {
      method: this.method,
      ...(opts.issuer === undefined ? {} : { issuers: Array.isArray(opts.issuer) ? opts.issuer.slice() : [opts.issuer] }),
      defaultAlgorithms: DEFAULT_ALGORITHMS.filter((a) => a !== 'EdDSA'),
      mapKeys: jwtSvidKeys,
    };
    const common: BearerJwtOptions = {
      audiences: opts.audiences,
      ...(opts.clockToleranceSec === undefined ? {} : { clockToleranceSec: opts.clockToleranceSec }),
      ...(opts.algorithms === undefined ? {} : { algorithms: opts.algorithms }),
      ...(opts.verifiedCacheMs === undefined ? {} : { verifiedCacheMs: opts.verifiedCacheMs }),
      ...(opts.now === undefined ? {} : { now: opts.now }),
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    };
    const add = (domain: string, keys: JwksSourceOptions): void => {
      if (this.verifiers.has(domain)) throw new JwksConfigError(`spiffe: trust domain ${domain} is listed twice`);
      this.verifiers.set(domain, new BearerJwtVerifier({ ...keys, ...common }, method));
      this.principals.set(domain, (payload) => this.toPrincipal(domain, payload));
    };
    if (shared.length === 1) add(shared[0]!, opts);
    for (const [domain, keys] of bundles) add(domain, keys);
    const [only] = this.verifiers.keys();
    this.single = this.verifiers.size === 1 ? { verifier: this.verifiers.get(only!)!, toPrincipal: this.principals.get(only!)! } : undefined;
  }

  authenticate(credentials: Credentials): Principal | null | Promise<Principal | null> {
    if (this.single) return this.single.verifier.authenticate(credentials.bearer, claimsSpiffeId, this.single.toPrincipal);
    // Several trust domains: the token's (unverified) SPIFFE ID picks the one key set that may
    // verify it; the verified ID is checked against that domain again.
    const token = credentials.bearer;
    if (!token) return null;
    const peek = peekClaims(this.method, token);
    if (!peek || !claimsSpiffeId(peek)) return null;
    const domain = trustDomainOf(peek.sub as string);
    if (domain === undefined) throw unauthenticated(this.method, 'sub is not a valid SPIFFE ID');
    const verifier = this.verifiers.get(domain);
    if (!verifier) throw unauthenticated(this.method, `trust domain ${domain} is not accepted`);
    return verifier.authenticate(token, claimsSpiffeId, this.principals.get(domain)!);
  }

  private toPrincipal(domain: string, payload: JWTPayload): Principal {
    const id = String(payload.sub);
    const td = trustDomainOf(id);
    if (td === undefined) throw unauthenticated(this.method, 'sub is not a valid SPIFFE ID');
    if (td !== domain) throw unauthenticated(this.method, `trust domain ${td} is not accepted`);
    const principal: Principal = { kind: 'spiffe', subject: id, spiffe_id: id, audiences: audiencesOf(payload) };
    if (typeof payload.iss === 'string') principal.issuer = payload.iss;
    const k8s = this.kubernetesDomains.has(td) ? K8S_PATH.exec(id.slice('spiffe://'.length + td.length)) : null;
    // Only names a cluster can hold: `/ns/-x/sa/a..b` names no service account, and is left unmapped.
    if (k8s && isNamespaceName(k8s[1]) && isSubdomainName(k8s[2])) {
      principal.namespace = k8s[1]!;
      principal.service_account = k8s[2]!;
    }
    return principal;
  }
}

/** Only a token whose subject is a SPIFFE ID is a JWT-SVID; anything else is left to other methods. */
function claimsSpiffeId(peek: JWTPayload): boolean {
  return typeof peek.sub === 'string' && peek.sub.startsWith('spiffe://');
}
