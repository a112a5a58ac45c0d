/**
 * SecretResolver: routes each ref to its scheme's provider, caches values within their lease,
 * and collapses concurrent misses for one ref into a single fetch (single flight), so a burst
 * of requests after a lease expires costs one read, not hundreds.
 *
 * Values live only in this cache and in the returned maps. They are never logged, and errors
 * name the ref and a reason written by us, never a value or a provider's raw message.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { onAbort, type CancelSignal } from '../pipeline/cancel.js';
import { WardenError, isWardenError } from '../pipeline/errors.js';
import type { SecretProvider, SecretResolver } from '../pipeline/ports.js';
import { SecretFetchError } from './file.js';
import { parseSecretRef, SecretRefError, type ParsedSecretRef } from '../pipeline/secret-ref.js';

export interface SecretResolverOptions {
  providers: SecretProvider[];
  /** Base directory for relative `file:` refs (normally the config file's directory). */
  baseDir?: string;
  /** Upper bound on cached values. Default 1000. */
  maxEntries?: number;
  /**
   * Deadline for one provider fetch (ms). Past it the fetch ends as `secret_unavailable` for every
   * waiter, so a stuck backend never holds a request (or the single-flight entry) for good.
   * Default 5000.
   */
  fetchTimeoutMs?: number;
  /**
   * How long a failed fetch is remembered (ms): requests for that ref within it fail at once with
   * the same reason instead of reading again. Default 1000; 0 turns it off.
   */
  failureTtlMs?: number;
}

export const DEFAULT_SECRET_FETCH_TIMEOUT_MS = 5_000;
export const DEFAULT_SECRET_FAILURE_TTL_MS = 1_000;

const ignore = (): void => undefined;

/**
 * Longest lease kept (ms). lru-cache arms its purge timer at the lease + 1 ms, and Node's timers
 * take at most 2^31 - 1 ms: a lease of 2^31 - 1 (the largest secrets.default_ttl_ms) would print
 * a TimeoutOverflowWarning on stderr for every value cached, and wake at once to re-arm.
 */
const MAX_LEASE_MS = 2 ** 31 - 2;

export interface CachingSecretResolver extends SecretResolver {
  /** Every value when all `refs` are cached within their lease, else undefined (see SecretResolver). */
  peek(refs: readonly string[]): Map<string, string> | undefined;
  /**
   * Resolves one ref: the value itself when it is cached within its lease, else a promise of it
   * (the same single-flight fetch as `resolve`). The synchronous answer lets a hot caller (the
   * provider's API key) reach its next step without a microtask hop; the lease is the same one
   * `resolve` honours, because both read the same cache entry.
   */
  resolveOne(ref: string): string | Promise<string>;
  /** Drops every cached value (e.g. on config reload), and the timers that would purge them: call it when done with the resolver. */
  clear(): void;
  /**
   * How many values the resolver holds in memory now, within their lease or not (a value past it
   * is dropped within about a millisecond of its lease). For tests and diagnostics: reading it
   * purges nothing.
   */
  readonly size: number;
}

/** Tells this module's stamps from those of another copy of it in the same process. */
const INSTANCE = randomBytes(6).toString('base64url');
/** Stamps handed out so far, by every resolver of this module: a stamp is never reused. */
let stamped = 0;

/** Schemes Warden knows but whose provider is not configured in this process. */
const KNOWN_BUT_UNCONFIGURED_HINT: Record<string, string> = {
  vault: 'the vault secret store is not configured',
  k8s: 'the k8s secret store is not configured',
};

export function createSecretResolver(opts: SecretResolverOptions): CachingSecretResolver {
  const providers = new Map<string, SecretProvider>();
  for (const p of opts.providers) providers.set(p.scheme, p);
  // ttlResolution 0: read the clock on each lease check. With lru-cache's default (1 ms) every
  // clock read that is not within a millisecond of the last one arms a 1 ms setTimeout to forget
  // it: at a steady few hundred requests per second, a timer set and a wake-up of the event loop
  // per request, for a clock read that costs ~50 ns.
  //
  // ttlAutopurge: a value leaves memory when its lease ends (one unref'd timer per cached value,
  // set by the fetch that caches it, cleared when the value is replaced, evicted or cleared),
  // not when it is next read: a value of a ref no template names any more would otherwise stay
  // in the heap for the process's lifetime. Reads (the request path) arm no timer.
  const cache = new LRUCache<string, string>({ max: opts.maxEntries ?? 1000, ttlResolution: 0, ttlAutopurge: true });
  /**
   * The stamp of each ref's cached value (see SecretResolver.stamps), set with the value. A stamp
   * outliving its value (evicted, expired) is never read: `stamps` answers only for refs the
   * cache still holds, and a value cached again gets a new stamp.
   */
  const stampOf = new Map<string, string>();
  const inflight = new Map<string, Promise<string>>();
  /** Recent failures by ref: the error and when it stops being reused. */
  const failed = new Map<string, { error: WardenError; until: number }>();
  const fetchTimeoutMs = opts.fetchTimeoutMs ?? DEFAULT_SECRET_FETCH_TIMEOUT_MS;
  const failureTtlMs = opts.failureTtlMs ?? DEFAULT_SECRET_FAILURE_TTL_MS;
  // Refs come from the loaded template set (a finite list), so parsing once per ref is enough.
  const parsed = new Map<string, ParsedSecretRef>();

  /**
   * Why a request stopped waiting for its secrets: the abort's own word when it is a WardenError
   * (`cancelled` from the ingress, `shutting_down` when the shutdown deadline cut it), else
   * `cancelled`. Never `secret_unavailable`: the secret store did nothing wrong.
   */
  function abortedError(signal: CancelSignal): WardenError {
    const reason: unknown = signal.reason;
    return isWardenError(reason) ? reason : new WardenError('cancelled', 'the request was cancelled while its secrets were fetched');
  }

  function unavailable(ref: string, reason: string): WardenError {
    return new WardenError('secret_unavailable', `secret ${ref} is unavailable: ${reason}`, { details: { ref } });
  }

  function parse(ref: string): ParsedSecretRef {
    let p = parsed.get(ref);
    if (p) return p;
    try {
      p = parseSecretRef(ref, opts.baseDir === undefined ? {} : { baseDir: opts.baseDir });
    } catch (err) {
      if (err instanceof SecretRefError) throw unavailable(ref, `${err.code}: ${err.message.replace(/ \(ref .*\)$/, '')}`);
      throw err;
    }
    if (parsed.size >= 10_000) parsed.clear();
    parsed.set(ref, p);
    return p;
  }

  async function fetchOne(p: ParsedSecretRef): Promise<string> {
    const provider = providers.get(p.scheme);
    if (!provider) throw unavailable(p.ref, KNOWN_BUT_UNCONFIGURED_HINT[p.scheme] ?? `no provider for scheme "${p.scheme}"`);
    let out: { value: string; ttlMs: number };
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(unavailable(p.ref, `fetch timed out after ${fetchTimeoutMs} ms`));
        }, fetchTimeoutMs);
        timer.unref();
      });
      out = await Promise.race([provider.fetch(p.url, controller.signal), deadline]);
    } catch (err) {
      if (err instanceof WardenError) throw err;
      // Only our own fetch errors carry a message we know to be value-free.
      throw unavailable(p.ref, err instanceof SecretFetchError ? err.message : 'provider fetch failed');
    } finally {
      clearTimeout(timer);
    }
    if (typeof out?.value !== 'string') throw unavailable(p.ref, 'provider returned no value');
    if (out.ttlMs > 0) {
      cache.set(p.ref, out.value, { ttl: Math.min(out.ttlMs, MAX_LEASE_MS) });
      stampOf.set(p.ref, `${INSTANCE}.${(stamped++).toString(36)}`);
    }
    return out.value;
  }

  function remember(ref: string, err: unknown): never {
    if (failureTtlMs > 0 && err instanceof WardenError) {
      if (failed.size >= 10_000) failed.clear();
      failed.set(ref, { error: err, until: performance.now() + failureTtlMs });
    }
    throw err;
  }

  function get(ref: string): string | Promise<string> {
    const hit = cache.get(ref);
    if (hit !== undefined) return hit;
    const p = parse(ref);
    let pending = inflight.get(ref);
    if (!pending) {
      const recent = failed.get(ref);
      if (recent !== undefined) {
        if (performance.now() < recent.until) return Promise.reject(recent.error);
        failed.delete(ref);
      }
      pending = fetchOne(p)
        .then(
          (value) => (failed.delete(ref), value),
          (err: unknown) => remember(ref, err),
        )
        .finally(() => inflight.delete(ref));
      inflight.set(ref, pending);
    }
    return pending;
  }

  return {
    async resolve(refs: readonly string[], signal?: CancelSignal): Promise<Map<string, string>> {
      // Checked before any fetch starts: a request whose client already left reads nothing.
      if (signal?.aborted) throw abortedError(signal);
      const out = new Map<string, string>();
      let waits: Array<Promise<void>> | undefined;
      for (const ref of refs) {
        let v: string | Promise<string>;
        try {
          v = get(ref);
        } catch (err) {
          // A bad ref: the fetches already started for earlier refs may still fail, and nobody
          // waits for them now. An unhandled rejection would end the process.
          if (waits) void Promise.all(waits).catch(ignore);
          throw err;
        }
        if (typeof v === 'string') out.set(ref, v);
        else (waits ??= []).push(v.then((value) => void out.set(ref, value)));
      }
      if (!waits) return out;
      const all = Promise.all(waits);
      if (!signal) {
        await all;
        return out;
      }
      // The shared fetch keeps going for other waiters; only this caller stops waiting. `all` is
      // handled on every path here (its failure after an abort is nobody's to report).
      await new Promise<void>((resolve, reject) => {
        const stop = onAbort(signal, () => reject(abortedError(signal)));
        all.then(
          () => (stop(), resolve()),
          (err: unknown) => (stop(), reject(err)),
        );
      });
      return out;
    },
    peek(refs: readonly string[]): Map<string, string> | undefined {
      const out = new Map<string, string>();
      for (const ref of refs) {
        // The same cache read as `resolve`: a value past its lease is a miss here too.
        const hit = cache.get(ref);
        if (hit === undefined) return undefined;
        out.set(ref, hit);
      }
      return out;
    },
    stamps(refs: readonly string[]): Map<string, string> | undefined {
      const out = new Map<string, string>();
      for (const ref of refs) {
        const stamp = stampOf.get(ref);
        if (stamp === undefined || !cache.has(ref)) return undefined;
        out.set(ref, stamp);
      }
      return out;
    },
    resolveOne(ref: string): string | Promise<string> {
      try {
        return get(ref);
      } catch (err) {
        // A bad ref fails the same way as through `resolve`: a rejected promise, never a throw.
        return Promise.reject(err);
      }
    },
    clear() {
      cache.clear();
      parsed.clear();
      failed.clear();
    },
    get size() {
      return cache.size;
    },
  };
}
