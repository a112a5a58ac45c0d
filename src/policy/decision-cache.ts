/**
 * The decision cache of one loaded policy: raw policy results by the input values the policy can
 * read (input-key.ts). Only a policy the analysis proves deterministic in those values gets one
 * (`cacheable` from rego/ast/compile/input-deps.ts). A hot reload builds a new engine and so a new,
 * empty cache.
 *
 * What is kept is the engine's raw result, deeply frozen: every caller gets the same object, and
 * none can change what the next one gets (a result not kept is the caller's own fresh copy). The
 * decide stage normalises a kept result once (normalizeDecision remembers the frozen normal form
 * of each frozen result) and gives each request its own Decision object and decision id.
 */
import { LRUCache } from 'lru-cache';
import { InputKeyer } from './input-key.js';

export type DecisionCacheOutcome = 'hit' | 'miss' | 'off';

/**
 * A deeply frozen copy of a result. A copy, not the result frozen in place: the engine's export
 * may hand back objects it shares (a set's plain members can be the input's own objects), and
 * freezing those would reach into the caller's input.
 */
export function frozenCopy(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return Object.freeze(v.map(frozenCopy));
  const o: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = frozenCopy((v as Record<string, unknown>)[k]);
    if (k === '__proto__') Object.defineProperty(o, k, { value: x, enumerable: true });
    else o[k] = x;
  }
  return Object.freeze(o);
}

/** lru-cache's get() allocates an options object when given none: share one (it only sets `status: undefined` on it). */
const GET_OPTIONS: LRUCache.GetOptions<string, { readonly raw: unknown }, unknown> = {};

export class DecisionCache {
  /** Boxed, so that undefined (the entrypoint undefined for that input) and scalars are kept too. */
  private readonly entries: LRUCache<string, { readonly raw: unknown }>;
  /**
   * Keys seen once and not kept yet, as 32-bit hashes in a fixed table. A result is kept from the
   * second sight of its key on, so that inputs that never repeat (a policy reading `input.time`,
   * one-off principals) cost a key, not a frozen decision in the LRU that old-generation GC then
   * has to trace and evict. Measured on an all-miss workload: keeping every result cost ~80% over
   * no cache; remembering first sights as strings in an LRU, ~45%; as hashes in this table, less
   * (README, "Decision cache"). A collision only admits a result one sight early.
   */
  private readonly seen: Int32Array;
  private readonly keyer: InputKeyer;
  /**
   * Lookups and hits in the current window, and calls left to pass by. A workload whose inputs
   * hardly repeat (under 1 in 20 lookups hits) pays for keys and gains nothing, so after such a
   * window the cache stands aside for `pause` calls (counted `off`), then looks again.
   */
  private lookups = 0;
  private hits = 0;
  private bypass = 0;
  private readonly window: number;
  private readonly pause: number;

  constructor(paths: readonly (readonly string[])[], maxEntries: number, tuning: { window?: number; pause?: number } = {}) {
    this.window = tuning.window ?? 4096;
    this.pause = tuning.pause ?? 16 * this.window;
    this.entries = new LRUCache<string, { readonly raw: unknown }>({ max: maxEntries });
    this.seen = new Int32Array(2 ** Math.ceil(Math.log2(Math.max(1024, 2 * maxEntries))));
    // Keys name strings by their number in the keyer's table; when the table starts over, so
    // must the entries. Several strings per entry, and most are shared between entries.
    this.keyer = new InputKeyer(paths, Math.max(1024, 4 * maxEntries), () => this.entries.clear());
  }

  get size(): number {
    return this.entries.size;
  }

  /** True the first time a key is seen (by its hash), false after. */
  private firstSight(key: string): boolean {
    // FNV-1a over the key's code units; odd, so 0 marks an empty slot.
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h |= 1;
    const slot = (h >>> 1) & (this.seen.length - 1);
    if (this.seen[slot] === h) return false;
    this.seen[slot] = h;
    return true;
  }

  /**
   * The cached result for this input, else `evaluate(input)` — kept from the second time its
   * key is seen, and only when it returns (an error, a budget overrun included, propagates and
   * is never cached). `outcome` is told what happened, before evaluating: `hit`, `miss` (a
   * failed evaluation counts as one), or `off` when the input cannot be keyed or the cache stands
   * aside (then nothing is looked up or kept).
   */
  evaluate(input: unknown, evaluate: (input: unknown) => unknown, outcome: (o: DecisionCacheOutcome) => void): unknown {
    if (this.bypass > 0) {
      this.bypass--;
      outcome('off');
      return evaluate(input);
    }
    const key = this.keyer.key(input);
    if (key === undefined) {
      outcome('off');
      return evaluate(input);
    }
    const hit = this.entries.get(key, GET_OPTIONS);
    if (hit !== undefined) this.hits++;
    if (++this.lookups === this.window) {
      if (this.hits * 20 < this.window) this.bypass = this.pause;
      this.lookups = this.hits = 0;
    }
    if (hit !== undefined) {
      outcome('hit');
      return hit.raw;
    }
    outcome('miss');
    // First sight: evaluate and keep nothing (the result is this caller's own copy).
    if (this.firstSight(key)) return evaluate(input);
    const raw = frozenCopy(evaluate(input));
    this.entries.set(key, { raw });
    return raw;
  }
}
