/**
 * SPIFFE JWT-SVIDs: `sub` is the workload's SPIFFE ID (`spiffe://trust-domain/path`), verified
 * against the trust domain's JWKS bundle. A `/ns/<ns>/sa/<sa>` path (the SPIRE Kubernetes
 * convention) also fills namespace and service account so the same policies apply.
 */
import type { JWK, JWTPayload } from 'jose';
import type { Authenticator } from '../pipeline/ports.js';
import type { Credentials, Principal } from '../pipeline/types.js';
import { BearerJwtVerifier, type BearerJwtOptions } from './bearer-jwt.js';
import { JwksConfigError } from './jwks.js';
import { audiencesOf, DEFAULT_ALGORITHMS, unauthenticated } from './jwt.js';

export interface SpiffeJwtAuthenticatorOptions extends BearerJwtOptions {
  /** Accepted trust domains, e.g. `prod.example.com`. */
  trustDomains: string[];
  /** Optional accepted `iss` values (JWT-SVIDs need not carry one). */
  issuer?: string | string[];
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
  private readonly verifier: BearerJwtVerifier;
  private readonly trustDomains: Set<string>;
  private readonly toPrincipal = (payload: JWTPayload): Principal => {
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
    return principal;
  };

  constructor(opts: SpiffeJwtAuthenticatorOptions) {
    if (!opts.trustDomains?.length) throw new JwksConfigError('spiffe: at least one trust domain is required');
    this.trustDomains = new Set(opts.trustDomains);
    this.verifier = new BearerJwtVerifier(opts, {
      method: this.method,
      ...(opts.issuer === undefined ? {} : { issuers: Array.isArray(opts.issuer) ? opts.issuer.slice() : [opts.issuer] }),
      defaultAlgorithms: DEFAULT_ALGORITHMS.filter((a) => a !== 'EdDSA'),
      mapKeys: jwtSvidKeys,
    });
  }

  authenticate(credentials: Credentials): Principal | null | Promise<Principal | null> {
    return this.verifier.authenticate(credentials.bearer, claimsSpiffeId, this.toPrincipal);
  }
}

/** Only a token whose subject is a SPIFFE ID is a JWT-SVID; anything else is left to other methods. */
function claimsSpiffeId(peek: JWTPayload): boolean {
  return typeof peek.sub === 'string' && peek.sub.startsWith('spiffe://');
}
