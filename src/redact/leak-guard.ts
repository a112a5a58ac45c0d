/**
 * Leak guard: the exact secret values resolved for a request, and their base64 (standard and
 * URL-safe, at every byte alignment inside a longer blob) and URL-encoded forms, are found in
 * text by plain substring search. In a prompt they refuse the request; in a response they are
 * masked. Values shorter than MIN_SECRET_LENGTH are ignored: they would match ordinary text.
 */
import type { Finding } from './types.js';

export const MIN_SECRET_LENGTH = 6;
export const LEAK_ENTITY = 'SECRET_VALUE';

function base64Cores(value: Buffer): string[] {
  const out: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), value]);
    let b64 = padded.toString('base64').replace(/=+$/, '');
    // Characters touched by the zero prefix or by the unknown bytes after the value vary with
    // context: keep only the stable middle.
    const skip = shift === 0 ? 0 : Math.ceil((shift * 8) / 6);
    const total = padded.length * 8;
    const stableEnd = Math.floor(total / 6);
    b64 = b64.slice(skip, stableEnd);
    if (b64.length >= 8) out.push(b64);
  }
  return out;
}

export class LeakGuard {
  private readonly needles: string[];

  constructor(secrets: readonly string[]) {
    const set = new Set<string>();
    for (const s of secrets) {
      if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) continue;
      set.add(s);
      const enc = encodeURIComponent(s);
      if (enc !== s) set.add(enc);
      const formEnc = enc.replace(/%20/g, '+');
      if (formEnc !== enc) set.add(formEnc);
      // The value's own encoding, whole (padding included), wins over the stable cores below.
      const whole = Buffer.from(s, 'utf8');
      set.add(whole.toString('base64'));
      set.add(whole.toString('base64url'));
      for (const core of base64Cores(whole)) {
        set.add(core);
        set.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
      }
    }
    // Longest first, so a value wins over its own shorter encodings at the same place.
    this.needles = [...set].sort((a, b) => b.length - a.length);
  }

  /**
   * The guard for `secrets`: requests with no secret to guard (most) share one inactive guard,
   * and requests granted the same secrets share theirs (a guard never changes once built; its
   * encodings cost microseconds per request otherwise). The cache holds values the secret
   * resolver's cache holds too, and forgets the oldest past GUARD_CACHE_SIZE.
   */
  static for(secrets: readonly string[]): LeakGuard {
    if (secrets.length === 0) return NO_SECRETS;
    // Length-prefixed: no list of secrets can spell another's key ("A\0B" alone vs A and B).
    let key = '';
    for (const v of secrets) key += `${v.length}:${v}`;
    let guard = guards.get(key);
    if (guard === undefined) {
      if (guards.size >= GUARD_CACHE_SIZE) guards.delete(guards.keys().next().value as string);
      guards.set(key, (guard = new LeakGuard(secrets)));
    }
    return guard;
  }

  get active(): boolean {
    return this.needles.length > 0;
  }

  /** Appends a finding per occurrence (original offsets; the guard reads the text unfolded). */
  find(text: string, out: Finding[]): number {
    let n = 0;
    for (const needle of this.needles) {
      let i = text.indexOf(needle);
      while (i >= 0) {
        out.push({ entity: LEAK_ENTITY, start: i, end: i + needle.length, score: 1 });
        n++;
        i = text.indexOf(needle, i + needle.length);
      }
    }
    return n;
  }
}

const NO_SECRETS = new LeakGuard([]);
const GUARD_CACHE_SIZE = 64;
const guards = new Map<string, LeakGuard>();
