/**
 * Kubernetes projected service-account tokens (`serviceAccountToken` volume projection with an
 * audience such as `warden`). Bound tokens carry a `kubernetes.io` claim with the namespace,
 * service account and pod; older tokens only say `sub: system:serviceaccount:<ns>:<sa>`.
 */
import type { JWTPayload } from 'jose';
import type { Authenticator } from '../pipeline/ports.js';
import type { Credentials, Principal } from '../pipeline/types.js';
import { BearerJwtVerifier, type BearerJwtOptions } from './bearer-jwt.js';
import { JwksConfigError } from './jwks.js';
import { audiencesOf, DEFAULT_ALGORITHMS, unauthenticated } from './jwt.js';

export interface KubernetesTokenAuthenticatorOptions extends BearerJwtOptions {
  /** Accepted `iss` values, e.g. `https://kubernetes.default.svc.cluster.local`. */
  issuer: string | string[];
  /** Accepted audiences (the projected token's `audience`). At least one. */
  audiences: string[];
  /** Only these namespaces may authenticate (absent = any). */
  allowedNamespaces?: string[];
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const LEGACY_SUB = /^system:serviceaccount:([^:]+):([^:]+)$/;

export class KubernetesTokenAuthenticator implements Authenticator {
  readonly method = 'kubernetes';
  private readonly verifier: BearerJwtVerifier;
  private readonly issuers: string[];
  private readonly namespaces: Set<string> | undefined;
  // A JWT from another issuer belongs to another method (e.g. SPIFFE): let it try.
  private readonly claims = (peek: JWTPayload): boolean => typeof peek.iss === 'string' && this.issuers.includes(peek.iss);
  private readonly toPrincipal = (payload: JWTPayload): Principal => {
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
    return principal;
  };

  constructor(opts: KubernetesTokenAuthenticatorOptions) {
    this.issuers = Array.isArray(opts.issuer) ? opts.issuer.slice() : [opts.issuer];
    if (this.issuers.length === 0 || this.issuers.some((i) => !i)) throw new JwksConfigError('kubernetes: issuer is required');
    this.namespaces = opts.allowedNamespaces ? new Set(opts.allowedNamespaces) : undefined;
    this.verifier = new BearerJwtVerifier(opts, { method: this.method, issuers: this.issuers, defaultAlgorithms: DEFAULT_ALGORITHMS });
  }

  authenticate(credentials: Credentials): Principal | null | Promise<Principal | null> {
    return this.verifier.authenticate(credentials.bearer, this.claims, this.toPrincipal);
  }

  private serviceAccountOf(payload: JWTPayload): { namespace: string; serviceAccount: string; pod?: string } {
    const k8s = payload['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown }; pod?: { name?: unknown } } | undefined;
    const legacy = typeof payload.sub === 'string' ? LEGACY_SUB.exec(payload.sub) : null;
    let namespace: unknown;
    let serviceAccount: unknown;
    let pod: unknown;
    // Present but not an object (or an array): malformed, not a reason to fall back to `sub`.
    if (k8s !== undefined && (k8s === null || typeof k8s !== 'object' || Array.isArray(k8s))) {
      throw unauthenticated(this.method, 'token kubernetes.io claim is not an object');
    }
    if (k8s) {
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
