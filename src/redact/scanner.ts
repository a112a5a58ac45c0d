/**
 * The scanner: folds the text, runs the enabled detectors on the folded copy, scores findings
 * with context words, applies thresholds and allow-lists, resolves overlaps and maps every
 * finding back to exact UTF-16 offsets of the original text.
 *
 * Fail closed: a detector that throws ends the scan with WardenError('redaction_failed') naming
 * the detector (never the text), unless the caller explicitly allows failing open.
 */
import { WardenError } from '../pipeline/errors.js';
import type { AllowList } from './allow-list.js';
import { scanDigits, type DecodedAt, type DigitChunk, type DigitScan } from './entities/digit-runs.js';
import { SECRET_ENTITIES } from './entities/secrets.js';
import { isDigitCode } from './entities/util.js';
import { decodedUnit, escapeNear, fold, percentDecodedWindows, spacedView, toOriginalSpan, type FoldedText } from './normalize.js';
import { holdersInUse, mergeJoined, notContained } from './span-sweep.js';
import { PREFILTER_MAX_CHARS, textTraits, type TextTraits } from './prefilter.js';
import type { DetectContext, Detector, EntityInfo, Finding } from './types.js';

/** How far before a finding context words are looked for (UTF-16 units). */
export const CONTEXT_WINDOW = 48;
export const DEFAULT_THRESHOLD = 0.5;
/** A negative context word ("version" before an IP, "EAN" before a card) takes this off. */
const NEGATIVE_PENALTY = 0.45;

export interface ScanOptions {
  entities: ReadonlySet<string>;
  thresholds?: ReadonlyMap<string, number>;
  failOpen?: boolean;
  /** Findings that end at or before this offset are context only and not returned. */
  from?: number;
  /**
   * `false` calls every wanted detector, skipping none on the prefilter (prefilter.ts); the
   * tests use it to show the prefilter never changes a result.
   */
  prefilter?: boolean;
  /**
   * The detectors that emit one of `entities`, as `detectorsFor(entities)` of this scanner
   * returned them: plans look them up once instead of at every scan. Absent: looked up here.
   */
  detectors?: readonly Detector[];
  /**
   * The phone detector's validation results by digits, kept across scans: a stream's session
   * passes its own, as each piece it releases is scanned again with the window before it (~150
   * characters of which only the last few are new), and a table of numbers re-validated the same
   * windows on every piece. Absent: each scan keeps its own.
   */
  phoneValidations?: Map<string, boolean>;
}

export interface ScanResult {
  /** Non-overlapping findings above threshold, sorted by start, in original offsets. */
  findings: Finding[];
  /** Every entity type that passed its threshold, including findings lost to an overlap. */
  seen: ReadonlySet<string>;
  /** Detectors that failed (only non-zero when failing open). */
  failures: number;
  /**
   * The folded text the detectors read, with its offset map (no map: the text was read as it
   * is), so the leak guard can search the same text without folding it again.
   */
  folded?: FoldedText;
}

function isLetter(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

/**
 * The part of a context window where a negative word counts. Such a word names the number right
 * after it ("order 4111…", "EAN 4006381333931"); when another number stands between it and the
 * finding ("order 12345 4111 1111 1111 1111"), it names that number, not the finding.
 */
function negativeScope(window: string): string {
  let k = window.length;
  while (k > 0 && isBlankCode(window.charCodeAt(k - 1))) k--;
  if (k === window.length || k === 0 || !isDigitCode(window.charCodeAt(k - 1))) return window;
  // The number: digits with '-', '.' or '/' inside ("112-3456789"), a token of its own (after a
  // space, '#', ':' or '='). Digits glued to the word ("EAN-13 5054521606451") are its name.
  let s = k;
  while (s > 0 && (isDigitCode(window.charCodeAt(s - 1)) || window.charCodeAt(s - 1) === 45 || window.charCodeAt(s - 1) === 46 || window.charCodeAt(s - 1) === 47)) s--;
  while (s < k && !isDigitCode(window.charCodeAt(s))) s++;
  const before = s > 0 ? window.charCodeAt(s - 1) : 32;
  return isBlankCode(before) || before === 35 || before === 58 || before === 61 ? window.slice(k) : window;
}

function isBlankCode(c: number): boolean {
  return c === 32 || c === 9;
}

/** A context word occurs in `window` (lower case) as a word, not inside another word. */
function hasWord(window: string, word: string): boolean {
  let i = window.indexOf(word);
  while (i >= 0) {
    const before = i > 0 ? window.charCodeAt(i - 1) : 32;
    const after = i + word.length < window.length ? window.charCodeAt(i + word.length) : 32;
    if (!isLetter(before) && !isLetter(after)) return true;
    i = window.indexOf(word, i + 1);
  }
  return false;
}

/**
 * What detectors see of one scan. A class rather than an object of closures: one allocation per
 * scan, and the digit scan is computed once, on first use, for every numeric detector.
 */
class ScanContext implements DetectContext {
  private digits: DigitScan | null = null;
  private validations: Map<string, boolean> | undefined;

  constructor(
    private readonly text: string,
    private readonly entities: ReadonlySet<string>,
    private readonly info: Readonly<Record<string, EntityInfo>>,
    readonly phoneRegions: readonly string[],
    readonly traits: TextTraits | null,
    private readonly decodedAt: DecodedAt | null,
    shared: Map<string, boolean> | undefined,
  ) {
    this.validations = shared;
  }

  phoneValidations(): Map<string, boolean> {
    return (this.validations ??= new Map());
  }

  wants(entity: string): boolean {
    return this.entities.has(entity);
  }

  digitChunks(): readonly DigitChunk[] {
    return this.digitScan().chunks;
  }

  digitScan(): DigitScan {
    return (this.digits ??= scanDigits(this.text, this.decodedAt));
  }

  contextBefore(entity: string, start: number): boolean {
    const info = this.info[entity];
    if (!info) return false;
    const window = this.text.slice(Math.max(0, start - CONTEXT_WINDOW), start).toLowerCase();
    return info.context.some((w) => hasWord(window, w));
  }
}

/** A scan that found nothing shares this (callers only read `seen`). */
const NOTHING_SEEN: ReadonlySet<string> = new Set<string>();

export class Scanner {
  constructor(
    private readonly detectors: readonly Detector[],
    private readonly info: Readonly<Record<string, EntityInfo>>,
    private readonly allow: AllowList,
    private readonly phoneRegions: readonly string[],
  ) {}

  /** The detectors that emit at least one of `entities`, in scan order. */
  detectorsFor(entities: ReadonlySet<string>): readonly Detector[] {
    return this.detectors.filter((d) => wantsAny(entities, d.entities));
  }

  scan(text: string, opts: ScanOptions): ScanResult {
    if (text.length === 0) return { findings: [], seen: NOTHING_SEEN, failures: 0 };
    const detectors = opts.detectors ?? this.detectorsFor(opts.entities);
    // Traits describe the folded text, which is what detectors read. ASCII folds to itself, and
    // the traits pass tells whether the text is ASCII: only other texts are folded (and their
    // traits taken again). Long texts are not prefiltered (see PREFILTER_MAX_CHARS).
    const prefilter = opts.prefilter !== false && text.length <= PREFILTER_MAX_CHARS;
    let traits = prefilter ? textTraits(text) : null;
    let folded: FoldedText;
    if (traits === null || traits.nonAscii) {
      folded = fold(text);
      if (traits !== null) traits = textTraits(folded.text);
    } else folded = { text, starts: null, ends: null };
    const result = this.scanView(text, folded, traits, opts, detectors, false);
    let holders = result.holders;
    // Format characters dropped between two visible units (`with\u200b4111…`): read once more
    // as spaces, and what only that reading finds is added (see spacedView). A finding there that
    // partly overlaps one of the text as written is joined with it (mergeJoined): either one
    // winning the overlap would leave the rest of the other in clear (the end of a phone number,
    // a URL's user name).
    const spaced = spacedView(folded);
    if (spaced !== null) {
      const traitsOf = opts.prefilter !== false && spaced.text.length <= PREFILTER_MAX_CHARS ? textTraits(spaced.text) : null;
      const more = this.scanView(text, spaced, traitsOf, opts, detectors, false);
      result.failures += more.failures;
      result.findings = mergeJoined(result.findings, more.findings);
      for (const f of more.findings) if (!result.seen.has(f.entity)) result.seen = new Set([...result.seen, f.entity]);
      if (more.holders !== null) for (const h of notContained(more.holders, holders ?? [])) (holders ??= []).push(h);
    }
    // Percent escapes ("phone=%2B14155552671", "jane.doe%40example.com") and HTML character
    // references ("jane.doe&#64;example.com", "4111&nbsp;1111…"): the text around them is read decoded too, and what it holds is added. Added only: a decoded "%20" ends a URL or a
    // password value that the text as written shows whole, and that finding stays (it contains
    // the other).
    const windows = percentDecodedWindows(text);
    if (windows !== null) {
      // What the windows add, joined with the rest once at the end as the spaced view's findings
      // are: a decoded reading ("x=241+92+5521 (212) 555") that partly overlaps a finding of the
      // text as written ("(212) 555 9015") is masked together with it, where either one winning
      // the overlap would leave the rest of the other in clear. The windows' spaced readings are
      // joined after their plain ones.
      let decodedMore: Finding[] | null = null;
      let spacedMore: Finding[] | null = null;
      for (const w of windows) {
        for (const view of w.spaced === null ? [w.view] : [w.view, w.spaced]) {
          const traitsOf = opts.prefilter !== false && view.text.length <= PREFILTER_MAX_CHARS ? textTraits(view.text) : null;
          const more = this.scanView(text, view, traitsOf, opts, detectors, true);
          result.failures += more.failures;
          for (const f of more.findings) {
            // Only what the escapes change: elsewhere the window reads the plain text with less
            // context than the plain scan had (its edge may cut off "order" before a number).
            if (!escapeNear(text, f.start, f.end)) continue;
            if (view === w.spaced) (spacedMore ??= []).push(f);
            else (decodedMore ??= []).push(f);
            if (!result.seen.has(f.entity)) result.seen = new Set([...result.seen, f.entity]);
          }
          for (const h of more.holders ?? []) if (escapeNear(text, h.start, h.end)) (holders ??= []).push(h);
        }
      }
      if (decodedMore !== null) result.findings = mergeJoined(result.findings, decodedMore);
      if (spacedMore !== null) result.findings = mergeJoined(result.findings, spacedMore);
    }
    if (holders !== null) {
      for (const h of holdersInUse(holders, result.findings)) {
        result.findings.push(h);
        if (!result.seen.has(h.entity)) result.seen = new Set([...result.seen, h.entity]);
      }
    }
    result.findings = resolveOverlaps(result.findings, text);
    return { findings: result.findings, seen: result.seen, failures: result.failures, folded: result.folded };
  }

  /**
   * Runs the detectors on `view` (a folded view of `text`) and returns the findings that pass
   * their threshold and the allow-list, in `text`'s offsets, overlaps not resolved yet.
   * `decodedValues`: the view decodes escapes, and a value allowed as it reads there is allowed.
   */
  private scanView(
    text: string,
    view: FoldedText,
    traits: TextTraits | null,
    opts: ScanOptions,
    detectors: readonly Detector[],
    decodedValues: boolean,
  ): { findings: Finding[]; seen: ReadonlySet<string>; failures: number; folded: FoldedText; holders: Finding[] | null } {
    const ftext = view.text;
    // In a decoded view, which separators were escapes (a card's layout ignores their kind).
    const decodedAt = decodedValues ? (k: number): boolean => decodedUnit(text, view, k) : null;
    const ctx = new ScanContext(ftext, opts.entities, this.info, this.phoneRegions, traits, decodedAt, opts.phoneValidations);
    const raw: Finding[] = [];
    let failures = 0;
    for (const d of detectors) {
      if (traits !== null && d.mayMatch !== undefined && !d.mayMatch(traits)) continue;
      try {
        d.detect(ftext, ctx, raw);
      } catch {
        if (!opts.failOpen) {
          throw new WardenError('redaction_failed', `redaction detector "${d.name}" failed; request refused (fail closed)`, {
            details: { detector: d.name },
          });
        }
        failures++;
      }
    }
    if (raw.length === 0) return { findings: [], seen: NOTHING_SEEN, failures, folded: view, holders: null };
    const seen = new Set<string>();
    const accepted: Finding[] = [];
    let holders: Finding[] | null = null;
    for (const f of raw) {
      if (!opts.entities.has(f.entity)) continue;
      let score = f.score;
      const info = this.info[f.entity];
      if (info && (info.context.length > 0 || info.negative)) {
        const window = ftext.slice(Math.max(0, f.start - CONTEXT_WINDOW), f.start).toLowerCase();
        for (const w of info.context) {
          if (hasWord(window, w)) {
            score += info.contextBoost;
            break;
          }
        }
        if (info.negative) {
          const scope = negativeScope(window);
          for (const w of info.negative) {
            if (hasWord(scope, w)) {
              score -= NEGATIVE_PENALTY;
              break;
            }
          }
        }
      }
      score = Math.min(1, Math.max(0, score));
      const threshold = opts.thresholds?.get(f.entity) ?? DEFAULT_THRESHOLD;
      if (score < threshold) continue;
      const [start, end] = toOriginalSpan(view, f.start, f.end);
      if (opts.from !== undefined && end <= opts.from) continue;
      if (!this.allow.empty && (this.allow.allows(text.slice(start, end)) || (decodedValues && this.allow.allows(ftext.slice(f.start, f.end))))) continue;
      const kept: Finding = { entity: f.entity, start, end, score: Math.round(score * 100) / 100 };
      if (f.holder === true) {
        (holders ??= []).push(kept);
        continue;
      }
      seen.add(f.entity);
      accepted.push(kept);
    }
    return { findings: accepted, seen, failures, folded: view, holders };
  }
}

function wantsAny(wanted: ReadonlySet<string>, entities: readonly string[]): boolean {
  for (const e of entities) if (wanted.has(e)) return true;
  return false;
}

/**
 * Overlaps: a container (URL, key block, JWT) wins over what it holds (a URL holding an email is
 * masked whole);
 * otherwise the higher score wins, then the longer span; a losing finding that the winners do not
 * cover is masked together with the winners it overlaps (see joinUncovered). Findings are swept
 * in start order and only clusters of mutually overlapping findings (small) are resolved
 * pairwise, so the cost stays linear in the number of findings. `text`: what the findings are
 * offsets of; with it, only a letter or digit left out of the winners counts as uncovered (a
 * space between a card and the phone after it does not).
 */
export function resolveOverlaps(findings: Finding[], text?: string): Finding[] {
  if (findings.length <= 1) return findings;
  findings.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  let cluster: Finding[] = [];
  let clusterEnd = -1;
  const flush = (): void => {
    if (cluster.length === 1) out.push(cluster[0]!);
    else if (cluster.length > 1) resolveCluster(cluster, out, text);
    cluster = [];
  };
  for (const f of findings) {
    if (f.start >= clusterEnd) {
      flush();
      clusterEnd = f.end;
    } else if (f.end > clusterEnd) clusterEnd = f.end;
    cluster.push(f);
  }
  flush();
  return out;
}

/**
 * Entities that legitimately contain others (a URL holds an email; a key block holds anything),
 * and every secret: a secret value is masked whole, whatever it holds. A password such as
 * `Hq7xTz9pL2:+14155552671:more` holds a phone number that scores higher than the password; the
 * phone winning would send the rest of the secret upstream in clear.
 */
const CONTAINERS = new Set<string>(['URL', ...SECRET_ENTITIES]);

function resolveCluster(cluster: Finding[], out: Finding[], text: string | undefined): void {
  const order = cluster.slice().sort((a, b) => b.end - b.start - (a.end - a.start) || b.score - a.score);
  const kept: Finding[] = [];
  for (const f of order) {
    if (!kept.some((k) => CONTAINERS.has(k.entity) && k.start <= f.start && f.end <= k.end)) kept.push(f);
  }
  kept.sort((a, b) => b.score - a.score || b.end - b.start - (a.end - a.start));
  let chosen: Finding[] = [];
  for (const f of kept) {
    if (!chosen.some((o) => f.start < o.end && o.start < f.end)) chosen.push(f);
  }
  if (chosen.length < kept.length) chosen = joinUncovered(kept, chosen, text);
  chosen.sort((a, b) => a.start - b.start);
  for (const f of chosen) out.push(f);
}

/**
 * Never reveal what a losing reading would have masked: a finding that lost an overlap and that
 * the winners leave partly uncovered (a phone reading over the first 12 digits of a 15-digit
 * card that outscored the card; a card that outscored a phone reading running on past it) is
 * joined with the winners it overlaps into one finding over their union, with the entity and
 * score of the best of those winners. `chosen` is in score order (best first) and stays so.
 */
function joinUncovered(kept: readonly Finding[], chosen: Finding[], text: string | undefined): Finding[] {
  const winners = new Set(chosen);
  for (const f of kept) {
    if (winners.has(f) || covered(f, chosen, text)) continue;
    const group = chosen.filter((o) => f.start < o.end && o.start < f.end);
    const best = group[0]!;
    let start = f.start;
    let end = f.end;
    for (const o of group) {
      start = Math.min(start, o.start);
      end = Math.max(end, o.end);
    }
    const joined: Finding = { entity: best.entity, start, end, score: best.score };
    chosen = chosen.filter((o) => o === best || !group.includes(o)).map((o) => (o === best ? joined : o));
  }
  return chosen;
}

/** Every letter or digit of `f` (every unit, without `text`) lies inside one of `by`. */
function covered(f: Finding, by: readonly Finding[], text: string | undefined): boolean {
  const spans = by.filter((o) => f.start < o.end && o.start < f.end).sort((a, b) => a.start - b.start);
  let at = f.start;
  const gapShows = (from: number, to: number): boolean => {
    if (from >= to) return false;
    if (text === undefined) return true;
    for (let i = from; i < to; i++) if (LETTER_OR_DIGIT.test(text[i]!)) return true;
    return false;
  };
  for (const o of spans) {
    if (gapShows(at, o.start)) return false;
    at = Math.max(at, o.end);
  }
  return !gapShows(at, f.end);
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;
