/**
 * The decision cache of one loaded policy: raw policy results by the input values the policy can
 * read (input-key.ts). Only a policy the analysis proves deterministic in those values gets one
 * (`cacheable` from rego/ast/compile/input-deps.ts). A hot reload builds a new engine and so a new,
 * empty cache.
 *
 * What is kept is the engine's raw result, deeply frozen: every caller gets the same object, and
 * none can change what the next one gets. The decide stage normalises it per request
 * (normalizeDecision builds a fresh Decision and never hands out parts of its argument), so each
 * request still gets its own Decision and decision id.
 */
import { LRUCache } from 'lru-cache';
import { InputKeyer } from './input-key.js';

export type DecisionCacheOutcome = 'hit' | 'miss' | 'off';

/** Freezes a plain JSON-like value in place, all the way down; returns it. */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    if (Array.isArray(v)) for (const x of v) deepFreeze(x);
    else for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** lru-cache's get() allocates an options object when given none: share one (it only sets `status: undefined` on it). */
const GET_OPTIONS: LRUCache.GetOptions<string, { readonly raw: unknown }, unknown> = {};

export class DecisionCache {
  /** Boxed, so that undefined (the entrypoint undefined for that input) and scalars are kept too. */
  private readonly entries: LRUCache<string, { readonly raw: unknown }>;
  private readonly keyer: InputKeyer;

  constructor(paths: readonly (readonly string[])[], maxEntries: number) {
    this.entries = new LRUCache<string, { readonly raw: unknown }>({ max: maxEntries });
    // Keys name strings by their number in the keyer's table; when the table starts over, so
    // must the entries. Several strings per entry, and most are shared between entries.
    this.keyer = new InputKeyer(paths, Math.max(1024, 8 * maxEntries), () => this.entries.clear());
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The cached result for this input, else `evaluate(input)` — kept only when it returns (an
   * error, a budget overrun included, propagates and is never cached). `outcome` is told what
   * happened before evaluating: `hit`, `miss` (a failed evaluation counts as one), or `off` when
   * the input cannot be keyed (then nothing is looked up or kept).
   */
  evaluate(input: unknown, evaluate: (input: unknown) => unknown, outcome: (o: DecisionCacheOutcome) => void): unknown {
    const key = this.keyer.key(input);
    if (key === undefined) {
      outcome('off');
      return evaluate(input);
    }
    const hit = this.entries.get(key, GET_OPTIONS);
    if (hit !== undefined) {
      outcome('hit');
      return hit.raw;
    }
    outcome('miss');
    const raw = deepFreeze(evaluate(input));
    this.entries.set(key, { raw });
    return raw;
  }
}
