/**
 * Findings cache: templates make most of a prompt (the fixed system message) identical on every
 * request, and scanning it again each time is the bulk of the redact stage. A prompt scan
 * (scanPromptText: the text as written and, when it holds JSON escapes, decoded) is a
 * pure function of the text and the static detector configuration (the Redactor's detectors,
 * entity info, allow-list and phone regions, plus the plan's entities and thresholds), so its
 * findings can be reused.
 *
 * What is kept: findings (offsets, entity type, score) and the entity types seen, under the key
 * (plan's scan configuration, the text's name: see below), from the second time a key is seen (the
 * first time only the key is kept), so the third identical request skips the scan. Never the
 * text: no prompt or PII outlives its request in memory. What is not cached: failed scans (a
 * detector error must fail closed every time, and a fail-open scan that lost a detector is
 * incomplete), short texts (the digest would cost as much as the scan), output scans (streamed,
 * clipped, and mostly fresh). Modes,
 * token numbering, block decisions and the leak guard are applied per request by the session,
 * after the cache. One cache per Redactor: a config reload builds a new Redactor, and the cache
 * dies with the old one.
 *
 * The text's name: a text the template renderer produced carries its render provenance key
 * (templates/provenance.ts: compiled template uid, message index, salted digest of the inserted
 * values), which determines the text exactly and costs a hash of the few inserted values instead
 * of the whole text; it is used only when the text to scan is exactly the rendered one. Any other
 * text (raw messages, parts, tool text, a message changed after render) is named by the SHA-256
 * of its text. The two kinds of name sit under different prefixes and never meet.
 */
import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { TextProvenance } from '../pipeline/types.js';
import { jsonEscapeReadings } from './leak-guard.js';
import { toOriginalSpan, unitAround, type FoldedText } from './normalize.js';
import type { RedactionPlan } from './profiles.js';
import { resolveOverlaps, type Scanner, type ScanOptions, type ScanResult } from './scanner.js';
import type { Finding } from './types.js';

/** Below this many UTF-16 units the scan is cheap enough that hashing would not pay (measured:
 * at 512 units SHA-256 costs ~1.4 µs, the scan ~4 µs). */
export const DEFAULT_MIN_CACHED_CHARS = 512;
export const DEFAULT_MAX_CACHED_TEXTS = 1024;
/** Distinct scan configurations tagged before the cache starts over (see configTag). */
const MAX_SCAN_CONFIGS = 256;
/** Bound on the findings held in total (each entry weighs 1 + its findings). */
export const DEFAULT_MAX_CACHED_FINDINGS = 65_536;

export interface FindingsCacheOptions {
  minChars?: number;
  maxEntries?: number;
  maxFindings?: number;
}

/** A prompt scan as the session consumes it; cached ones are frozen and shared across requests. */
export interface PromptScan {
  findings: readonly Finding[];
  seen: ReadonlySet<string>;
  failures: number;
}

interface CachedScan extends PromptScan {
  findings: readonly Readonly<Finding>[];
  seen: ReadonlySet<string>;
}

/** String.prototype.isWellFormed: in Node 20+, typed only in lib ES2024 (this build uses ES2023). */
type WellFormedCheck = string & { isWellFormed(): boolean };

/**
 * SHA-256 of the text, in one call (crypto.hash: no Hash object, no stream machinery, which cost
 * more than the digest itself for a 4 KB prompt). UTF-8 is injective only on well-formed text (it
 * folds lone surrogates into U+FFFD, so two different texts would share a digest): those rare
 * texts hash their UTF-16 code units instead, under another tag. UTF-8 halves the bytes hashed for
 * the usual ASCII-heavy prompt, and isWellFormed is constant time on V8's one-byte strings.
 */
function textDigest(text: string): string {
  if ((text as WellFormedCheck).isWellFormed()) return `u8:${hash('sha256', text, 'base64')}`;
  return `u16:${hash('sha256', Buffer.from(text, 'utf16le'), 'base64')}`;
}


/**
 * A prompt text's scan: the text as written and, when it holds a backslash, the text read as the
 * model reads JSON, its string escapes decoded. A tool result is JSON more often than not, and so
 * is any content an app serialised with Python's `json.dumps` (which escapes every non-ASCII
 * character) or a user pasted: `jane.doe\u0040example.com` or `+1\u00a0415\u00a0555\u00a02671`
 * is an address or a phone number to the model. What the decoded reading finds is mapped back over
 * the escapes as written and merged with the plain findings as the answer side merges its own
 * (Session.escapedFindings): a container holds what it contains, and a losing reading is never
 * left visible in part. Its entity types join `seen` (a `block` entity found only through escapes
 * still refuses the request). An invalid or cut escape (`C:\new` reads a line break, but
 * `\u00zz` stays as written) changes nothing. Still a pure function of the text and the scan
 * options, so the findings cache keeps it under the same key. Escapes are read at every level
 * (jsonEscapeReadings: JSON inside a JSON string, `+1\\u00a0415…`), each reading scanned and
 * mapped back over the escapes as written; a finding of any reading but the deepest is moved out
 * of a deeper escape as the plain findings are. Cost: one indexOf for a text without a
 * backslash; with one, a decoding pass and, when an escape decoded, a second scan and an indexOf
 * on the decoded text; a pass and a scan more per deeper level only when there is one.
 */
export function scanPromptText(scanner: Scanner, text: string, opts: ScanOptions): ScanResult {
  const res = scanner.scan(text, opts);
  if (text.indexOf('\\') < 0) return res;
  // Every escape decodes to one unit and is at least two: nothing decoded, nothing new to read.
  const readings = jsonEscapeReadings(text);
  if (readings.length === 0) return res;
  const deepest = readings[readings.length - 1]!;
  let failures = res.failures;
  const findings = outOfEscapes(res.findings, deepest);
  let seen = res.seen;
  let added = false;
  for (let l = 0; l < readings.length; l++) {
    const view = readings[l]!;
    const more = scanner.scan(view.text, opts);
    failures += more.failures;
    if (more.findings.length === 0) continue;
    added = true;
    for (const e of more.seen) if (!seen.has(e)) seen = new Set([...seen, e]);
    // The decoded scan's own findings, fresh objects: moved onto the text in place. One of a
    // reading above the deepest may begin or end inside an escape of a deeper level (`\\n` of
    // `line\\njane@…` reads `\n` once decoded): moved out as the plain findings are.
    const last = l === readings.length - 1;
    for (const f of more.findings) {
      [f.start, f.end] = toOriginalSpan(view, f.start, f.end);
      if (!last) {
        const s = escapeEndAround(deepest, f.start);
        const e = escapeEndAround(deepest, f.end);
        if (s >= 0) f.start = s;
        if (e >= 0) f.end = e;
        if (f.start >= f.end) continue;
      }
      findings.push(f);
    }
  }
  if (!added) return { findings, seen: res.seen, failures, folded: res.folded };
  return { findings: resolveOverlaps(findings, text), seen, failures, folded: res.folded };
}

/**
 * `findings` of a text as written, with each edge that falls inside one of `view`'s escapes moved
 * to that escape's end. Read as written, `line\njane.doe@example.com` holds the address
 * `njane.doe@example.com`, which begins after the backslash of `\n`: replaced so, the text would
 * read `line\[EMAIL_ADDRESS]` (an escape JSON does not have, in a tool result the model and the
 * app parse) and `tokenize` would restore `njane.doe…`. An end inside `\"` moves past it, so a
 * value read up to the quote does not end the string early. Whatever the move leaves out is read
 * by the decoded reading, whose findings are merged with these. A new array; moved findings are
 * new objects.
 */
function outOfEscapes(findings: readonly Finding[], view: FoldedText): Finding[] {
  const out: Finding[] = [];
  for (const f of findings) {
    const start = escapeEndAround(view, f.start);
    const end = escapeEndAround(view, f.end);
    if (start < 0 && end < 0) out.push(f);
    else {
      const s = start < 0 ? f.start : start;
      const e = end < 0 ? f.end : end;
      if (s < e) out.push({ ...f, start: s, end: e });
    }
  }
  return out;
}

/** The end of the escape of `view` (a decoded text) that `at` (an offset of the original) falls strictly inside, else -1. */
function escapeEndAround(view: FoldedText, at: number): number {
  const k = unitAround(view, at);
  return k < 0 ? -1 : view.ends![k]!;
}

/** Marks a digest seen once, whose findings are not kept yet. */
const SEEN_ONCE = Symbol('seen once');

export interface FindingsCacheStats {
  hits: number;
  misses: number;
  entries: number;
}

export class FindingsCache {
  private readonly lru: LRUCache<string, CachedScan | typeof SEEN_ONCE>;
  private readonly minChars: number;
  private readonly configTags = new Map<string, string>();
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly scanner: Scanner,
    opts: FindingsCacheOptions = {},
  ) {
    this.minChars = opts.minChars ?? DEFAULT_MIN_CACHED_CHARS;
    this.lru = new LRUCache<string, CachedScan | typeof SEEN_ONCE>({
      max: opts.maxEntries ?? DEFAULT_MAX_CACHED_TEXTS,
      maxSize: opts.maxFindings ?? DEFAULT_MAX_CACHED_FINDINGS,
      sizeCalculation: (v) => (v === SEEN_ONCE ? 1 : 1 + v.findings.length),
    });
  }

  /**
   * Scans a prompt text for `plan`, or returns the findings of an earlier identical scan.
   * `provenance`, when it vouches for this very text, names it instead of its digest.
   */
  scanPrompt(text: string, plan: RedactionPlan, provenance?: TextProvenance): PromptScan {
    if (text.length < this.minChars) return this.scan(text, plan);
    // The provenance key names `provenance.text` only: any other text (changed after render, or
    // the record of another message) falls back to the digest of what is actually scanned.
    const name = provenance !== undefined && provenance.text === text ? `r:${provenance.key()}` : textDigest(text);
    const key = this.configTag(plan.scanConfig) + name;
    const cached = this.lru.get(key);
    if (cached !== undefined && cached !== SEEN_ONCE) {
      this.hits++;
      return cached;
    }
    this.misses++;
    const res = this.scan(text, plan); // throws (fail closed) before anything is stored
    if (res.failures > 0) return res;
    // Admission on second sight: most long texts (user messages, documents) never come back, and
    // keeping their findings would only churn the heap. The first time, only the digest is kept.
    if (cached === undefined) {
      this.lru.set(key, SEEN_ONCE);
      return res;
    }
    // Kept as the scan made them, not copied or frozen (frozen objects take another hidden class
    // in the session's loops): the types say readonly, and the prompt path only reads them
    // (outputFindings, which clips findings in place, never comes here).
    const entry: CachedScan = { findings: res.findings, seen: res.seen, failures: 0 };
    this.lru.set(key, entry);
    return entry;
  }

  /**
   * A short tag per distinct scan configuration, in front of the text digest: plans that detect
   * differently never share a key, and the configuration (a few hundred characters) is neither
   * hashed again nor part of every key. Decisions rarely differ in what they detect; should a
   * policy produce more than MAX_SCAN_CONFIGS of them, the cache starts over (tags are never
   * reused for another configuration while entries under them remain).
   */
  private configTag(scanConfig: string): string {
    let tag = this.configTags.get(scanConfig);
    if (tag === undefined) {
      if (this.configTags.size >= MAX_SCAN_CONFIGS) {
        this.configTags.clear();
        this.lru.clear();
      }
      tag = `${this.configTags.size}:`;
      this.configTags.set(scanConfig, tag);
    }
    return tag;
  }

  stats(): FindingsCacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.lru.size };
  }

  private scan(text: string, plan: RedactionPlan): ScanResult {
    return scanPromptText(this.scanner, text, plan.scan);
  }
}
