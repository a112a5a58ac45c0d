/**
 * Canonical JSON for hashing: object keys sorted by code unit, no whitespace, `undefined`
 * members dropped (as JSON.stringify does). Two records with the same content hash the same no
 * matter how they were built or re-parsed, which is what makes the chain verifiable from a file.
 *
 * Hot path (every request hashes its record and its outbound prompt): instead of building the
 * text piece by piece in JavaScript, copy the value with sorted keys and let the native
 * JSON.stringify write it once. The output is the same as the reference walk below.
 *
 * It lives with the pipeline contracts because two stages need the same text of the outbound
 * prompt: forward sends it upstream, audit HMACs it. `outboundJson` serialises it once per request.
 */
import type { RequestContext } from './stage.js';
import type { ChatMessage, TextProvenance } from './types.js';

/**
 * Canonical JSON of `ctx.outbound`, computed once per request and kept on the context (a 4 KB
 * prompt costs ~10 µs to serialise on Node 20). The memo is tied to the array it was made from,
 * so a stage that replaces `ctx.outbound` gets fresh text.
 */
export function outboundJson(ctx: RequestContext): string | undefined {
  return outboundText(ctx)?.json;
}

/**
 * A prefix of the outbound JSON and the key that names exactly that text: the canonical JSON of
 * the first message, `[{"content":…,"role":…}`, named by its render provenance key (which
 * determines the content) and its role. Consumers that hash the outbound text may keep work done
 * on a named prefix across requests (audit/prompt-hmac.ts).
 */
export interface NamedPrefix {
  readonly key: string;
  /** Length in UTF-16 code units. */
  readonly length: number;
}

/** The memo `outboundJson` keeps on the context: the text, and its named prefix when it has one. */
export interface OutboundText {
  readonly of: ChatMessage[];
  readonly json: string;
  readonly prefix?: NamedPrefix;
}

/** `outboundJson` with the named prefix of the text, when the first message has one. */
export function outboundText(ctx: RequestContext): OutboundText | undefined {
  const outbound = ctx.outbound;
  if (!outbound) return undefined;
  const memo = ctx.outboundJson;
  if (memo && memo.of === outbound) return memo;
  const literals = ctx.contentJson;
  const plain = literals && ctx.messages ? plainMessagesJson(outbound, ctx.messages, literals, ctx.renderProvenance) : undefined;
  const text: OutboundText = plain ? { of: outbound, json: plain.json, prefix: plain.prefix } : { of: outbound, json: canonicalJson(outbound) };
  ctx.outboundJson = text;
  return text;
}

/**
 * Canonical JSON of messages that are all `{ role, content }` with string content, reusing the
 * JSON literals the render stage made (`ctx.contentJson`, by index into the rendered `rendered`)
 * for contents redaction left as they were. `content` sorts before `role`, so the text is what
 * canonicalJson writes. Undefined for any other shape (the generic walk handles it).
 */
function plainMessagesJson(
  messages: readonly unknown[],
  rendered: readonly ChatMessage[],
  literals: ReadonlyArray<string | undefined>,
  provenance: ReadonlyArray<TextProvenance | undefined> | undefined,
): { json: string; prefix?: NamedPrefix } | undefined {
  let out = '[';
  let prefix: NamedPrefix | undefined;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as Record<string, unknown>;
    const content = m.content;
    const role = m.role;
    if (typeof content !== 'string' || typeof role !== 'string') return undefined;
    let keys = 0;
    for (const k in m) {
      if (k !== 'role' && k !== 'content') return undefined;
      keys++;
    }
    if (keys !== 2) return undefined;
    // Unchanged by redaction: usually the very same string, so the comparison is a pointer check.
    const literal = messages.length === rendered.length && rendered[i]?.content === content ? literals[i] : undefined;
    out += `${i === 0 ? '' : ','}{"content":${literal ?? JSON.stringify(content)},"role":${JSON.stringify(role)}}`;
    // The first message as rendered, and long enough to be worth naming: its text is a function
    // of its provenance key (content) and its role, so the two together name it.
    if (i === 0 && literal !== undefined && out.length >= MIN_NAMED_PREFIX) {
      const source = provenance?.[0];
      if (source !== undefined && source.text === content) prefix = { key: `${source.key()}\u0000${role}`, length: out.length };
    }
  }
  return { json: `${out}]`, prefix };
}

/** Shorter first messages are not named: the key would cost about what it saves. */
export const MIN_NAMED_PREFIX = 512;

/** Canonical JSON of `value` (`null` for a value JSON cannot represent at top level). */
export function canonicalJson(value: unknown): string {
  const sorted = sortedCopy(value);
  if (sorted === INDEX_KEYS) return referenceCanonicalJson(value);
  return sorted === undefined ? 'null' : JSON.stringify(sorted);
}

/**
 * Canonical JSON of `{ ...base, ...extra }` without building that merged object first (a spread
 * of a record-sized object costs more than the whole canonical walk).
 */
export function canonicalJsonMerged(base: Record<string, unknown>, extra: Record<string, unknown>): string {
  const extraKeys = Object.keys(extra);
  for (const k of extraKeys) {
    if (Object.prototype.hasOwnProperty.call(base, k)) return canonicalJson({ ...base, ...extra });
  }
  const baseKeys = Object.keys(base);
  const layout = layoutFor(baseKeys, extraKeys);
  if (layout === undefined) return referenceCanonicalJson({ ...base, ...extra });
  const out = { ...layout.blank };
  for (const k of layout.sorted) {
    const v = sortedCopy(Object.prototype.hasOwnProperty.call(extra, k) ? extra[k] : base[k]);
    if (v === INDEX_KEYS) return referenceCanonicalJson({ ...base, ...extra });
    out[k] = v; // undefined members stay and are dropped by JSON.stringify, as canonical JSON drops them
  }
  return JSON.stringify(out);
}

/**
 * The merged object's key layout, kept for the last key list seen (every audit record has the
 * same members in the same order): the sorted keys and a blank object with those members, made
 * by JSON.parse so that it has fast properties. Filling a copy of it keeps fast properties; an
 * object given 20-odd members by keyed stores (`out[k] = v`) becomes a dictionary, which is
 * slower to build and to stringify.
 */
interface Layout {
  base: readonly string[];
  extra: readonly string[];
  sorted: readonly string[];
  blank: Record<string, unknown>;
}

let lastLayout: Layout | undefined;

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Undefined when a key would be enumerated out of sorted order (integer-like, `__proto__`). */
function layoutFor(baseKeys: readonly string[], extraKeys: readonly string[]): Layout | undefined {
  const last = lastLayout;
  if (last && sameKeys(last.base, baseKeys) && sameKeys(last.extra, extraKeys)) return last;
  const sorted = baseKeys.concat(extraKeys).sort();
  for (const k of sorted) if ((k.length > 0 && isDigit(k.charCodeAt(0))) || k === '__proto__') return undefined;
  const blank = JSON.parse(`{${sorted.map((k) => `${JSON.stringify(k)}:null`).join(',')}}`) as Record<string, unknown>;
  lastLayout = { base: baseKeys.slice(), extra: extraKeys.slice(), sorted, blank };
  return lastLayout;
}

/**
 * Sorts a fresh key list in place by code unit, as `Array.prototype.sort()` orders strings. The
 * objects on the hot path have a handful of keys: an insertion sort allocates nothing, where the
 * built-in sort copies into a work array on every call (a sixth of the audit's allocation).
 */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** Returned by `sortedCopy` for keys a rebuilt object cannot keep in order (integer-like, `__proto__`). */
const INDEX_KEYS = Symbol('index-keys');

/** A first character that makes V8 enumerate a key before others (array-index keys). */
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Returns a structure JSON.stringify writes canonically: objects rebuilt with their keys
 * inserted in sorted order (V8 enumerates string keys in insertion order), functions and symbols
 * made explicit, `toJSON` never consulted (the walk reads own enumerable properties only).
 * Returns undefined where canonical JSON drops a member.
 */
function sortedCopy(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return value;
    case 'undefined':
    case 'function':
      return undefined;
    case 'symbol':
      return null;
    case 'bigint':
      return value; // JSON.stringify throws on BigInt, as the reference walk does
    default:
      break;
  }
  if (value === null) return null;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const v = sortedCopy(value[i]);
      if (v === INDEX_KEYS) return INDEX_KEYS;
      out[i] = v === undefined ? null : v;
    }
    return out;
  }
  const obj = value as Record<string, unknown>;
  const keys = sortKeys(Object.keys(obj));
  for (const k of keys) {
    // Integer-like keys would be enumerated first by any object we build: write this one by hand.
    if ((k.length > 0 && isDigit(k.charCodeAt(0))) || k === '__proto__') return INDEX_KEYS;
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = sortedCopy(obj[k]);
    if (v === INDEX_KEYS) return INDEX_KEYS;
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * The reference walk (text built piece by piece). Used where V8 would enumerate keys out of
 * sorted order in any object we build (integer-like keys such as "10" before "9").
 */
export function referenceCanonicalJson(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += referenceCanonicalJson(value[i]);
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(k)}:${referenceCanonicalJson(v)}`;
  }
  return `${out}}`;
}
