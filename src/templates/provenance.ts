/**
 * Render provenance: for each rendered message, a key that names exactly what produced its text,
 * so that the redact stage's findings cache can look up a long templated prompt without hashing
 * the whole text (a 4 KB system prompt costs ~3 µs of SHA-256 warm, more from cold caches; its
 * few inserted values cost ~0.3 µs).
 *
 * Why the key is exact: a message's text is the concatenation of its compiled segments, fixed
 * strings and values in segment order, and nothing else (renderer.ts). The key is
 *   (uid of the compiled template, message index, digest of the inserted values in segment order)
 * and a compiled template never changes after compile (readonly), so the same key always
 * means the same segments and the same values, hence the same text. The uid is unique per compile
 * within the process (a counter, plus a random tag for this copy of the module): a hot reload
 * builds new Template objects, which compile anew and get new uids. The values are length-prefixed
 * (`<length>:<value>` per value), so no two different value lists encode alike however their text
 * looks (placeholder-like text, separators, digits). The digest is SHA-256 of that encoding in
 * UTF-8 when it is well-formed and of its UTF-16 code units otherwise, under different tags (UTF-8
 * folds lone surrogates into U+FFFD, which would let two different values collide); SHA-256 is
 * collision resistant, so a caller who controls a value cannot craft another list with its key.
 *
 * Stamps instead of a digest: when every value inserted into a message has a stamp (a name that
 * stands for exactly that value, given by the caller), the key is
 *   (uid of the compiled template, message index, the stamps in segment order)
 * and no hash is computed. The render stage stamps config values (fixed for a template object,
 * hence for its compile) and cached secret values (the secret resolver names each cached value
 * once and never reuses a name; a refetch gets a new one). A templated system prompt made of fixed
 * text, config and secrets is then named without hashing anything: the digest, the first crypto
 * call of a request, cost ~2 µs in the loaded gateway, more from cold caches.
 *
 * Why it never holds text: the key carries a uid, an index and a digest; the values are hashed,
 * behind a random per-process salt so that a short value (an 8-character secret) cannot be
 * recovered from a key by hashing guesses. The record itself (text and values) lives on the
 * request context and dies with the request; only the key may outlive it, in the findings cache.
 */
import { hash, randomBytes } from 'node:crypto';
import type { TextProvenance } from '../pipeline/types.js';

/** Tells this module's compiled templates from those of another copy of it in the same process. */
const INSTANCE = randomBytes(6).toString('base64url');
/** Hashed in front of the values: the keys reveal nothing about short values. Never leaves memory. */
const SALT = randomBytes(16).toString('base64');
let compiles = 0;

/** A new uid for one compile of one template: never reused in this process. */
export function newCompileUid(): string {
  return `${INSTANCE}.${(compiles++).toString(36)}`;
}

/** `<length>:<value>` for each value in order: two different lists never encode alike. */
export function encodeValues(values: readonly string[]): string {
  let s = '';
  for (const v of values) s += `${v.length}:${v}`;
  return s;
}

/** String.prototype.isWellFormed: in Node 20+, typed only in lib ES2024 (this build uses ES2023). */
type WellFormedCheck = string & { isWellFormed(): boolean };

/**
 * Salted SHA-256 of the encoded values; '' when there are none (the compiled message alone then
 * determines the text). One crypto.hash call: ~0.3 µs warm for a few short values, ~1.5 µs from
 * the cold caches of the gateway pipeline (a JavaScript SHA-256 of one block measured no better).
 */
export function valuesDigest(values: readonly string[]): string {
  if (values.length === 0) return '';
  const s = SALT + encodeValues(values);
  if ((s as WellFormedCheck).isWellFormed()) return `u8:${hash('sha256', s, 'base64')}`;
  return `u16:${hash('sha256', Buffer.from(s, 'utf16le'), 'base64')}`;
}

/**
 * One rendered message's provenance: `text` is the content exactly as rendered; `key()` names its
 * producer (computed on first use: most messages are too short for the findings cache to ask).
 * A consumer must use the key only for a text equal to `text`.
 */
export class RenderedText implements TextProvenance {
  private memo: string | undefined;

  constructor(
    readonly text: string,
    /** `<compile uid>:<message index>`, fixed at compile. */
    private readonly source: string,
    /** The values inserted, in segment order (the strings themselves: immutable). */
    private readonly inserted: readonly string[],
    /**
     * A stamp per inserted value, in the same order, when every value has one (renderTemplate's
     * `stamps`): each stands for exactly one value, so they name the values without a hash.
     */
    private readonly stamps?: readonly string[],
    /** Where secret values sit in `text` (TextProvenance.secretSpans); offsets, never values. */
    readonly secretSpans?: ReadonlyArray<readonly [number, number]>,
  ) {}

  key(): string {
    if (this.memo === undefined) {
      // `s:` and the digest's `u8:`/`u16:` (or '' for no values) never meet: the two kinds of
      // name cannot collide. Stamps hold no comma (secrets/resolver.ts, the render stage).
      this.memo = this.stamps ? `${this.source}:s:${this.stamps.join(',')}` : `${this.source}:${valuesDigest(this.inserted)}`;
    }
    return this.memo;
  }
}
