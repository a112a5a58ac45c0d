/**
 * Kubernetes projected service-account tokens (`serviceAccountToken` volume projection with an
 * audience such as `warden`). Bound tokens carry a `kubernetes.io` claim with the namespace,
 * service account and pod; older tokens only say `sub: system:serviceaccount:<ns>:<sa>`.
 */
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { Authenticator } from '../pipeline/ports.js';
import type { Credentials, Principal } from '../pipeline/types.js';
import { createJwksSource, JwksConfigError, type JwksSourceOptions } from './jwks.js';
import { VerifiedTokenCache } from './token-cache.js';
import { audiencesOf, DEFAULT_ALGORITHMS, peekClaims, unauthenticated, verifyJwt } from './jwt.js';

export interface KubernetesTokenAuthenticatorOptions extends JwksSourceOptions {
  /** Accepted `iss` values, e.g. `https://kubernetes.default.svc.cluster.local`. */
  issuer: string | string[];
  /** Accepted audiences (the projected token's `audience`). At least one. */
  audiences: string[];
  /** Only these namespaces may authenticate (absent = any). */
  allowedNamespaces?: string[];
  /** Clock skew tolerated on exp/nbf, seconds. Default 10. */
  clockToleranceSec?: number;
  algorithms?: string[];
  /** How long a verified token is remembered at most (ms; 0 disables). Default 60 s. */
  verifiedCacheMs?: number;
  /** Clock for expiry checks (epoch ms); injectable for tests. */
  now?: () => number;
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const LEGACY_SUB = /^system:serviceaccount:([^:]+):([^:]+)$/;

export class KubernetesTokenAuthenticator implements Authenticator {
  readonly method = 'kubernetes';
  private readonly getKey: JWTVerifyGetKey;
  private readonly issuers: string[];
  private readonly audiences: string[];
  private readonly namespaces: Set<string> | undefined;
  private readonly algorithms: string[];
  private readonly clockToleranceSec: number;
  private readonly verified: VerifiedTokenCache | undefined;
  private readonly now: () => number;

  constructor(opts: KubernetesTokenAuthenticatorOptions) {
    this.issuers = Array.isArray(opts.issuer) ? opts.issuer.slice() : [opts.issuer];
    if (this.issuers.length === 0 || this.issuers.some((i) => !i)) throw new JwksConfigError('kubernetes: issuer is required');
    if (!opts.audiences?.length) throw new JwksConfigError('kubernetes: at least one audience is required (tokens for other audiences must not work here)');
    this.audiences = opts.audiences.slice();
    this.namespaces = opts.allowedNamespaces ? new Set(opts.allowedNamespaces) : undefined;
    this.algorithms = opts.algorithms ?? DEFAULT_ALGORITHMS;
    this.clockToleranceSec = opts.clockToleranceSec ?? 10;
    this.getKey = createJwksSource(opts, 'kubernetes');
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
    // A JWT from another issuer belongs to another method (e.g. SPIFFE): let it try.
    if (!peek || typeof peek.iss !== 'string' || !this.issuers.includes(peek.iss)) return null;
    const payload = await verifyJwt(this.method, token, this.getKey, {
      issuer: this.issuers,
      audiences: this.audiences,
      algorithms: this.algorithms,
      clockToleranceSec: this.clockToleranceSec,
      nowMs: now,
    });
    const { namespace, serviceAccount, pod } = this.serviceAccountOf(payload);
    if (this.namespaces && !this.namespaces.has(namespace)) throw unauthenticated(this.method, `namespace ${namespace} is not allowed`);
    const principal: Principal = {
      kind: 'kubernetes',
      subject: `system:serviceaccount:${namespace}:${serviceAccount}`,
      namespace,
      service_account: serviceAccount,
      issuer: payload.iss as string,
      audiences: audiencesOf(payload),
    };
    if (pod) principal.pod = pod;
    this.verified?.set(token, principal, payload.exp as number, this.clockToleranceSec, now);
    return principal;
  }

  private serviceAccountOf(payload: JWTPayload): { namespace: string; serviceAccount: string; pod?: string } {
    const k8s = payload['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown }; pod?: { name?: unknown } } | undefined;
    const legacy = typeof payload.sub === 'string' ? LEGACY_SUB.exec(payload.sub) : null;
    let namespace: unknown;
    let serviceAccount: unknown;
    let pod: unknown;
    if (k8s && typeof k8s === 'object') {
      namespace = k8s.namespace;
      serviceAccount = k8s.serviceaccount?.name;
      pod = k8s.pod?.name;
      if (legacy && (legacy[1] !== namespace || legacy[2] !== serviceAccount)) {
        throw unauthenticated(this.method, 'token sub and kubernetes.io claims disagree');
      }
    } else if (legacy) {
      namespace = legacy[1];
      serviceAccount = legacy[2];
    } else {
      throw unauthenticated(this.method, 'token carries no service account (kubernetes.io claim or system:serviceaccount sub)');
    }
    if (typeof namespace !== 'string' || !LABEL.test(namespace) || namespace.length > 63) throw unauthenticated(this.method, 'token namespace claim is invalid');
    if (typeof serviceAccount !== 'string' || !SUBDOMAIN.test(serviceAccount) || serviceAccount.length > 253) {
      throw unauthenticated(this.method, 'token service account claim is invalid');
    }
    if (pod !== undefined && (typeof pod !== 'string' || !SUBDOMAIN.test(pod))) throw unauthenticated(this.method, 'token pod claim is invalid');
    return pod === undefined ? { namespace, serviceAccount } : { namespace, serviceAccount, pod: pod as string };
  }
}
