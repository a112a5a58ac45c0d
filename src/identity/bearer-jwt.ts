/**
 * The bearer-JWT flow both token authenticators share: answer from the verified-token cache,
 * peek at the unverified claims to decide whether the token is meant for this method (so another
 * method may try it), verify it against the JWKS, map the claims to a principal and remember it.
 * The methods differ only in which tokens they claim and how claims become a principal.
 */
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { Principal } from '../pipeline/types.js';
import { createJwksSource, JwksConfigError, type JwksSource, type JwksSourceOptions } from './jwks.js';
import { frozenPrincipal } from './frozen.js';
import { VerifiedTokenCache } from './token-cache.js';
import { guardKeySource, peekClaims, SIGNATURE_CHECK_DEADLINE_MS, unauthenticated, verifyJwt, type SignatureCheckWatch } from './jwt.js';

/** Options every bearer-JWT authenticator accepts. */
export interface BearerJwtOptions extends JwksSourceOptions {
  /** Accepted audiences. At least one: tokens minted for other audiences must not work here. */
  audiences: string[];
  /** Clock skew tolerated on exp/nbf, seconds. Default 10. */
  clockToleranceSec?: number;
  algorithms?: string[];
  /** How long a verified token is remembered at most (ms; 0 disables). Default 60 s. */
  verifiedCacheMs?: number;
  /** Clock for expiry checks (epoch ms); injectable for tests. */
  now?: () => number;
  /** Where a key source failure is reported (no token data; at most one line per 10 s), and a changed JWKS file that cannot be used. */
  logger?: { warn(obj: object, msg?: string): void; info?(obj: object, msg?: string): void };
}

/** At most one "key set unavailable" line per method in this many ms: an outage fails every request. */
const KEY_SET_LOG_INTERVAL_MS = 10_000;

export interface BearerJwtMethod {
  /** The method name used in errors (`kubernetes`, `spiffe`). */
  method: string;
  /** Accepted `iss` values; absent = any issuer. */
  issuers?: string[];
  /** Algorithms accepted when the options name none. */
  defaultAlgorithms: string[];
  /** Rewrites the JWKS before jose sees it (see JwksSourceOptions.mapKeys). */
  mapKeys?: JwksSourceOptions['mapKeys'];
}

export class BearerJwtVerifier {
  private readonly method: string;
  private readonly keys: JwksSource;
  private readonly getKey: JWTVerifyGetKey;
  private readonly issuers: string[] | undefined;
  private readonly audiences: string[];
  private readonly algorithms: string[];
  private readonly clockToleranceSec: number;
  private readonly verified: VerifiedTokenCache | undefined;
  /** The key set generation the cached tokens were verified under (JwksSource.generation). */
  private verifiedUnder: number;
  private readonly now: () => number;
  private readonly onKeySetUnavailable: ((reason: string) => void) | undefined;
  /**
   * Signature checks that missed their deadline and have not returned: while there is one, the
   * thread pool is held, and a token that needs a check is refused at once rather than queued
   * behind it (2 s each, and one more job on a pool that does not move). Remembered tokens need
   * no check and are answered as before.
   */
  private overdueChecks = 0;
  private readonly signatureWatch: SignatureCheckWatch;

  constructor(opts: BearerJwtOptions, m: BearerJwtMethod) {
    if (!opts.audiences?.length) {
      throw new JwksConfigError(`${m.method}: at least one audience is required (tokens for other audiences must not work here)`);
    }
    this.method = m.method;
    this.issuers = m.issuers;
    this.audiences = opts.audiences.slice();
    this.algorithms = opts.algorithms ?? m.defaultAlgorithms;
    this.clockToleranceSec = opts.clockToleranceSec ?? 10;
    this.keys = createJwksSource(m.mapKeys ? { ...opts, mapKeys: m.mapKeys } : opts, m.method);
    this.getKey = guardKeySource(this.keys.getKey);
    const logger = opts.logger;
    let lastLogged = Number.NEGATIVE_INFINITY;
    this.onKeySetUnavailable = logger
      ? (reason) => {
          const at = Date.now();
          if (at - lastLogged < KEY_SET_LOG_INTERVAL_MS) return;
          lastLogged = at;
          logger.warn({ method: m.method, reason }, 'identity key set unavailable: tokens cannot be verified');
        }
      : undefined;
    this.signatureWatch = {
      late: () => {
        if (this.overdueChecks++ > 0) return;
        // One line per episode (the first check that missed its deadline), no token content.
        logger?.warn(
          { method: m.method, deadline_ms: SIGNATURE_CHECK_DEADLINE_MS },
          'signature check did not return in time (the thread pool is held by blocked file calls): tokens not verified before are refused (signature check unavailable) until it returns',
        );
      },
      returned: () => {
        if (--this.overdueChecks > 0) return;
        logger?.info?.({ method: m.method }, 'signature check returned; tokens are verified again');
      },
    };
    const cacheMs = opts.verifiedCacheMs ?? 60_000;
    this.verified = cacheMs > 0 ? new VerifiedTokenCache(cacheMs) : undefined;
    this.verifiedUnder = this.keys.generation;
    this.now = opts.now ?? Date.now;
  }

  /**
   * The principal for `token`, or null when the token is not meant for this method (`claims`
   * says no on its unverified claims). A token that is ours but fails a check throws
   * `unauthenticated`; so may `toPrincipal`.
   */
  authenticate(
    token: string | undefined,
    claims: (unverified: JWTPayload) => boolean,
    toPrincipal: (payload: JWTPayload) => Principal,
  ): Principal | null | Promise<Principal | null> {
    if (!token) return null;
    // A look at the key set that is due or under way is waited for (JwksSource.poll): at most
    // once per look, and a stat, not a read, unless the set changed.
    const look = this.keys.poll();
    if (look !== undefined) return look.then(() => this.answer(token, claims, toPrincipal), () => this.lookFailed(token, claims));
    return this.answer(token, claims, toPrincipal);
  }

  /**
   * The look missed its deadline (the key source logged it, once per episode): a token of this
   * method is refused, remembered or not, since whether its key was withdrawn cannot be known;
   * a token that is not (another method's JWT, an API key) is left to the next method.
   */
  private lookFailed(token: string, claims: (unverified: JWTPayload) => boolean): null {
    const peek = peekClaims(this.method, token);
    if (!peek || !claims(peek)) return null;
    throw unauthenticated(this.method, 'JWKS unavailable');
  }

  private answer(
    token: string,
    claims: (unverified: JWTPayload) => boolean,
    toPrincipal: (payload: JWTPayload) => Principal,
  ): Principal | null | Promise<Principal | null> {
    const now = this.now();
    const keys = this.keys;
    // Another key set is in use: a token verified before may have been verified with a key it no
    // longer holds (a rotation, a withdrawn key), so every token is verified again.
    if (keys.generation !== this.verifiedUnder) {
      this.verified?.clear();
      this.verifiedUnder = keys.generation;
    }
    // A token verified before (the usual case: a pod reuses its token for minutes) is answered
    // at once, without a promise.
    const hit = this.verified?.get(token, now);
    if (hit) return hit;
    const peek = peekClaims(this.method, token);
    if (!peek || !claims(peek)) return null;
    if (this.overdueChecks > 0) throw unauthenticated(this.method, 'signature check unavailable');
    return this.verify(token, toPrincipal, now);
  }

  private async verify(token: string, toPrincipal: (payload: JWTPayload) => Principal, now: number): Promise<Principal> {
    const generation = this.keys.generation;
    const payload = await verifyJwt(this.method, token, this.getKey, {
      ...(this.issuers ? { issuer: this.issuers } : {}),
      audiences: this.audiences,
      algorithms: this.algorithms,
      clockToleranceSec: this.clockToleranceSec,
      nowMs: now,
      refetchAfterKeyFailure: (kid) => this.keys.refetchAfterKeyFailure(kid),
      ...(this.onKeySetUnavailable ? { onKeySetUnavailable: this.onKeySetUnavailable } : {}),
      signatureWatch: this.signatureWatch,
    });
    const principal = frozenPrincipal(toPrincipal(payload));
    // Verified with a key set replaced meanwhile (the key may be gone from the new one): not
    // remembered, the next call verifies it again.
    if (this.keys.generation === generation) this.verified?.set(token, principal, payload.exp as number, this.clockToleranceSec, now);
    return principal;
  }
}
