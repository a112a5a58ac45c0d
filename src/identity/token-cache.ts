/**
 * Verified-token cache. A pod reuses its projected token for minutes, and an RSA signature check
 * costs far more than the rest of the pipeline, so a token verified once is remembered (by its
 * exact text, in memory only) until it expires or for at most `maxAgeMs`, whichever is sooner.
 * The verifier clears it when another key set comes into use (bearer-jwt.ts), so a token verified
 * with a key since removed from the JWKS is not answered from here.
 */
import { LRUCache } from 'lru-cache';
import type { Principal } from '../pipeline/types.js';
import { frozenPrincipal } from './frozen.js';

interface Entry {
  principal: Principal;
  /** `exp` in epoch ms (tolerance included). */
  expiresAt: number;
}

export class VerifiedTokenCache {
  private readonly cache: LRUCache<string, Entry>;

  constructor(
    private readonly maxAgeMs = 60_000,
    max = 2_000,
  ) {
    // ttlResolution 0: see secrets/resolver.ts (no 1 ms timer per clock read).
    this.cache = new LRUCache<string, Entry>({ max, ttlResolution: 0 });
  }

  get(token: string, nowMs: number): Principal | undefined {
    const e = this.cache.get(token);
    if (!e) return undefined;
    // jose refuses a token from the second `exp + tolerance` on (it compares whole seconds):
    // from that millisecond on, the cache must not answer for it either.
    if (nowMs >= e.expiresAt) {
      this.cache.delete(token);
      return undefined;
    }
    return e.principal;
  }

  /** Remembers a verified token; `expSec` is its `exp` claim, `toleranceSec` the accepted skew. */
  set(token: string, principal: Principal, expSec: number, toleranceSec: number, nowMs: number): void {
    const expiresAt = (expSec + toleranceSec) * 1000;
    const ttl = Math.min(this.maxAgeMs, expiresAt - nowMs);
    if (ttl <= 0) return;
    this.cache.set(token, { principal: frozenPrincipal(principal), expiresAt }, { ttl });
  }

  clear(): void {
    this.cache.clear();
  }
}
