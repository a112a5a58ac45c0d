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
import { isNamespaceName, isSubdomainName } from '../pipeline/kubernetes-names.js';

export interface KubernetesTokenAuthenticatorOptions extends BearerJwtOptions {
  /** Accepted `iss` values, e.g. `https://kubernetes.default.svc.cluster.local`. */
  issuer: string | string[];
  /** Accepted audiences (the projected token's `audience`). At least one. */
  audiences: string[];
  /** Only these namespaces may authenticate (absent = any). */
  allowedNamespaces?: string[];
}

const LEGACY_SUB = /^system:serviceaccount:([^:]+):([^:]+)$/;

export class KubernetesTokenAuthenticator implements Authenticator {
  readonly method = 'kubernetes';
  readonly takes = 'a JWT whose iss is one of identity.kubernetes.issuer';
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
    const k8s = payload['kubernetes.io'];
    // Present but not an object (or an array): malformed, not a reason to fall back to `sub`.
    if (k8s !== undefined && !isObject(k8s)) throw unauthenticated(this.method, 'token kubernetes.io claim is not an object');
    let namespace: unknown;
    let serviceAccount: unknown;
    let pod: unknown;
    if (k8s) {
      namespace = k8s['namespace'];
      const sa = k8s['serviceaccount'];
      serviceAccount = isObject(sa) ? sa['name'] : undefined;
      // A token bound to no pod has no `pod` member; one that is there must name the pod.
      const boundPod = k8s['pod'];
      if (boundPod !== undefined) pod = isObject(boundPod) && typeof boundPod['name'] === 'string' ? boundPod['name'] : null;
    } else {
      const legacy = typeof payload.sub === 'string' ? LEGACY_SUB.exec(payload.sub) : null;
      if (!legacy) throw unauthenticated(this.method, 'token carries no service account (kubernetes.io claim or system:serviceaccount sub)');
      namespace = legacy[1];
      serviceAccount = legacy[2];
    }
    if (!isNamespaceName(namespace)) throw unauthenticated(this.method, 'token namespace claim is invalid');
    if (!isSubdomainName(serviceAccount)) throw unauthenticated(this.method, 'token service account claim is invalid');
    // With kubernetes.io, any `sub` at all must be this very service account: one of another
    // shape, or one that only starts like one, is a claim the token makes about someone else.
    if (k8s && payload.sub !== undefined && payload.sub !== `system:serviceaccount:${namespace}:${serviceAccount}`) {
      throw unauthenticated(this.method, 'token sub and kubernetes.io claims disagree');
    }
    if (pod === undefined) return { namespace, serviceAccount };
    if (!isSubdomainName(pod)) throw unauthenticated(this.method, 'token pod claim is invalid');
    return { namespace, serviceAccount, pod };
  }
}

/** A JSON object (not null, not an array). */
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
