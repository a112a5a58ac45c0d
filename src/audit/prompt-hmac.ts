/**
 * The prompt HMAC of audit records (HMAC-SHA256 of the outbound messages' canonical JSON), made
 * cheaper for templated prompts without changing a bit of it.
 *
 * A governed template usually starts with a long fixed system message (policy text, plus config
 * or secret values that rarely change), and only later messages carry the request's variables.
 * HMAC is `H((K ^ opad) || H((K ^ ipad) || text))` (RFC 2104), and SHA-256 absorbs its input
 * front to back, so the inner hash's state after `(K ^ ipad) || prefix` can be kept and copied:
 * each request then hashes only the rest of its text, plus the 96-byte outer hash, and skips the
 * HMAC set-up that OpenSSL does per call. For a 4 KB system prompt that is ~2 µs instead of ~4.5
 * (tests check the result equals `crypto.createHmac` byte for byte).
 *
 * What names a prefix: the render provenance key of the first message (templates/provenance.ts),
 * which determines its text exactly. The caller vouches that the text starts with the canonical
 * JSON of that message; the key's owner (canonical-json.ts) only names a prefix that is that.
 * What is kept: hash states, never text (a state cannot be turned back into its input). A state is
 * kept from the second time its key is seen, as the findings cache admits entries, so prefixes
 * that never come back (a system message with a request variable in it) churn nothing. The states
 * belong to one key: the audit stage makes one PromptHmac for its key, and they die together.
 */
import { createHash, createHmac, hash, type Hash, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { MIN_NAMED_PREFIX, type NamedPrefix } from '../pipeline/canonical-json.js';

const BLOCK = 64; // SHA-256's block size in bytes
const SEEN_ONCE = Symbol('seen once');

export interface PromptHmacOptions {
  /** How many prefix states are kept (default 256). */
  maxPrefixes?: number;
}

export class PromptHmac {
  private readonly innerPad: Buffer;
  private readonly outerPad: Buffer;
  private readonly states: LRUCache<string, Hash | typeof SEEN_ONCE>;

  constructor(
    private readonly key: KeyObject | Buffer,
    opts: PromptHmacOptions = {},
  ) {
    let k = Buffer.isBuffer(key) ? key : key.export();
    if (k.length > BLOCK) k = createHash('sha256').update(k).digest();
    this.innerPad = Buffer.alloc(BLOCK, 0x36);
    this.outerPad = Buffer.alloc(BLOCK + 32, 0x5c); // the outer hash's input: pad, then the inner digest
    for (let i = 0; i < k.length; i++) {
      this.innerPad[i]! ^= k[i]!;
      this.outerPad[i]! ^= k[i]!;
    }
    this.states = new LRUCache({ max: opts.maxPrefixes ?? 256 });
  }

  /** Hex HMAC-SHA256 of `text`'s UTF-8 bytes; `prefix`, when given, names `text`'s first units. */
  digest(text: string, prefix?: NamedPrefix): string {
    if (prefix === undefined || prefix.length < MIN_NAMED_PREFIX || prefix.length > text.length) {
      return createHmac('sha256', this.key).update(text).digest('hex');
    }
    // A prefix ending between the halves of a surrogate pair would encode each half alone.
    const last = text.charCodeAt(prefix.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) return createHmac('sha256', this.key).update(text).digest('hex');
    let state = this.states.get(prefix.key);
    if (state === undefined || state === SEEN_ONCE) {
      if (state === undefined) {
        this.states.set(prefix.key, SEEN_ONCE);
        return createHmac('sha256', this.key).update(text).digest('hex');
      }
      state = createHash('sha256').update(this.innerPad).update(text.slice(0, prefix.length));
      this.states.set(prefix.key, state);
    }
    const inner = state.copy().update(text.slice(prefix.length)).digest();
    // The pad buffer is shared: the digest is written into its tail and hashed at once, synchronously.
    inner.copy(this.outerPad, BLOCK);
    return hash('sha256', this.outerPad, 'hex');
  }
}
