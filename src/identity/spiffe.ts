/**
 * SPIFFE JWT-SVIDs: `sub` is the workload's SPIFFE ID (`spiffe://trust-domain/path`), verified
 * against the trust domain's JWKS bundle. A `/ns/<ns>/sa/<sa>` path (the SPIRE Kubernetes
 * convention) also fills namespace and service account so the same policies apply.
 */
import type { JWK, JWTVerifyGetKey } from 'jose';
import type { Authenticator } from '../pipeline/ports.js';
import type { Credentials, Principal } from '../pipeline/types.js';
import { createJwksSource, JwksConfigError, type JwksSourceOptions } from './jwks.js';
import { VerifiedTokenCache } from './token-cache.js';
import { audiencesOf, DEFAULT_ALGORITHMS, peekClaims, unauthenticated, verifyJwt } from './jwt.js';

export interface SpiffeJwtAuthenticatorOptions extends JwksSourceOptions {
  /** Accepted trust domains, e.g. `prod.example.com`. */
  trustDomains: string[];
  audiences: string[];
  /** Optional accepted `iss` values (JWT-SVIDs need not carry one). */
  issuer?: string | string[];
  clockToleranceSec?: number;
  algorithms?: string[];
  /** How long a verified token is remembered at most (ms; 0 disables). Default 60 s. */
  verifiedCacheMs?: number;
  /** Clock for expiry checks (epoch ms); injectable for tests. */
  now?: () => number;
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

const SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]+)(\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$/;
const K8S_PATH = /^\/ns\/([a-z0-9-]+)\/sa\/([a-z0-9.-]+)$/;

export class SpiffeJwtAuthenticator implements Authenticator {
  readonly method = 'spiffe';
  private readonly getKey: JWTVerifyGetKey;
  private readonly trustDomains: Set<string>;
  private readonly audiences: string[];
  private readonly issuers: string[] | undefined;
  private readonly algorithms: string[];
  private readonly clockToleranceSec: number;
  private readonly verified: VerifiedTokenCache | undefined;
  private readonly now: () => number;

  constructor(opts: SpiffeJwtAuthenticatorOptions) {
    if (!opts.trustDomains?.length) throw new JwksConfigError('spiffe: at least one trust domain is required');
    if (!opts.audiences?.length) throw new JwksConfigError('spiffe: at least one audience is required');
    this.trustDomains = new Set(opts.trustDomains);
    this.audiences = opts.audiences.slice();
    this.issuers = opts.issuer === undefined ? undefined : Array.isArray(opts.issuer) ? opts.issuer.slice() : [opts.issuer];
    this.algorithms = opts.algorithms ?? DEFAULT_ALGORITHMS.filter((a) => a !== 'EdDSA');
    this.clockToleranceSec = opts.clockToleranceSec ?? 10;
    this.getKey = createJwksSource({ ...opts, mapKeys: jwtSvidKeys }, 'spiffe');
    const cacheMs = opts.verifiedCacheMs ?? 60_000;
    this.verified = cacheMs > 0 ? new VerifiedTokenCache(cacheMs) : undefined;
    this.now = opts.now ?? Date.now;
  }

  async authenticate(credentials: Credentials): Promise<Principal | null> {
    const token = credentials.bearer;
    if (!token) return null;
    const now = this.now();
    const hit = this.verified?.get(token, now);
    if (hit) return hit;
    const peek = peekClaims(this.method, token);
    if (!peek || typeof peek.sub !== 'string' || !peek.sub.startsWith('spiffe://')) return null;
    const payload = await verifyJwt(this.method, token, this.getKey, {
      ...(this.issuers ? { issuer: this.issuers } : {}),
      audiences: this.audiences,
      algorithms: this.algorithms,
      clockToleranceSec: this.clockToleranceSec,
      nowMs: now,
    });
    const m = SPIFFE_ID.exec(String(payload.sub));
    if (!m) throw unauthenticated(this.method, 'sub is not a valid SPIFFE ID');
    if (!this.trustDomains.has(m[1]!)) throw unauthenticated(this.method, `trust domain ${m[1]} is not accepted`);
    const principal: Principal = { kind: 'spiffe', subject: m[0], spiffe_id: m[0], audiences: audiencesOf(payload) };
    if (typeof payload.iss === 'string') principal.issuer = payload.iss;
    const k8s = m[2] ? K8S_PATH.exec(m[2]) : null;
    if (k8s) {
      principal.namespace = k8s[1]!;
      principal.service_account = k8s[2]!;
    }
    this.verified?.set(token, principal, payload.exp as number, this.clockToleranceSec, now);
    return principal;
  }
}
