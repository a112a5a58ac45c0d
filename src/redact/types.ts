/**
 * The redactor's own types: configuration (plain TS, mapped from YAML by the config module),
 * detector contract and findings. Offsets are UTF-16 code units, end exclusive.
 */
import type { RedactionMode } from '../pipeline/types.js';
import type { DigitChunk, DigitScan } from './entities/digit-runs.js';
import type { TextTraits } from './prefilter.js';

export type { RedactionMode };

export type ValidatorName = 'luhn' | 'mod97' | 'mod11' | 'verhoeff' | 'none';

export interface EntitySettings {
  /** Mode used when the decision does not name one. Default `mask`. */
  mode?: RedactionMode;
  /** Minimum score (0..1) for a finding to count. Default 0.5. */
  threshold?: number;
}

export interface ProfileConfig {
  /** Entity types (or the group `SECRETS`) this profile detects. */
  entities: string[];
  /** Default mode for every entity of the profile. Default `mask`. */
  mode?: RedactionMode;
  /** Per-entity mode and threshold. */
  settings?: Record<string, EntitySettings>;
}

export interface CustomEntityConfig {
  /** Entity type name, e.g. `CUSTOMER_ID` (upper snake case). */
  name: string;
  /** RE2 syntax; run on the linear-time `re2` engine. Either this or `dictionary` (or both). */
  pattern?: string;
  /** RE2 flags besides `g` (e.g. `i`). */
  flags?: string;
  /** Check the matched value (digits only for luhn/verhoeff/mod11). */
  validator?: ValidatorName;
  /** Words near a match that raise its score. */
  context?: string[];
  /** Literal values to find (case-insensitive), e.g. customer ids. */
  dictionary?: string[];
  /** Score of a match before context. Default 0.6 (0.85 when validated). */
  score?: number;
}

export interface AllowListConfig {
  /** Exact values (compared case-insensitively) that are never redacted. */
  literals?: string[];
  /** RE2 patterns; a finding whose whole text matches one is never redacted. */
  patterns?: string[];
}

export interface RedactionConfig {
  /** Profile used when the decision names none (an unknown name fails closed). Default `standard`. */
  defaultProfile?: string;
  /** Extra or overriding profiles (`standard` and `strict` are built in). */
  profiles?: Record<string, ProfileConfig>;
  customEntities?: CustomEntityConfig[];
  allow?: AllowListConfig;
  /** ISO 3166 regions national phone numbers are validated against. */
  phoneRegions?: string[];
  /** Key of the keyed hash (`hash` mode). Resolved by the caller (secret ref). */
  hashKey?: Buffer;
  /**
   * `valid` (default): numbers in assigned ranges; a number that is only possible (right length
   * for a configured region) counts only after a phone context word, with a lower score.
   * `possible`: right length is enough, context or not (looser, opt-in).
   */
  phoneValidation?: 'valid' | 'possible';
  /** Streaming hold-back cap in UTF-16 units (the longest run held before forced release). */
  maxHoldBack?: number;
  /** What a stream that guards a secret holds back for the leak guard (see StreamSecretHold). Default `window`. */
  streamSecretHold?: StreamSecretHold;
}

/**
 * `window`: a fixed window of trailing units as long as the longest guarded form could span, so
 * where a stream breaks never depends on the secret (the first words wait for it to fill).
 * `prefix`: only a tail that could begin a guarded value, so the first words go on at once, but
 * chunk boundaries tell a caller whether a text the model repeats begins a secret.
 */
export type StreamSecretHold = 'window' | 'prefix';

/** A detector's raw result, in offsets of the text it was given (the folded text). */
export interface Finding {
  entity: string;
  start: number;
  end: number;
  score: number;
  /**
   * A container that does not count on its own: a `password=` value too plain to be taken for a
   * secret (low entropy, like a word). The scanner keeps it, as an ordinary finding, only when
   * it holds another finding and more besides (`Zq9kW:4111111111111111`): the secret is then
   * masked whole, not the card alone with the rest of the value in clear. Scan results never
   * carry the flag.
   */
  holder?: boolean;
}

export interface DetectContext {
  /** Entities the caller wants (detectors may skip work for entities not in the set). */
  wants(entity: string): boolean;
  /** Phone regions. */
  readonly phoneRegions: readonly string[];
  /** Digit chunks of the text (computed once, shared by the numeric detectors). */
  digitChunks(): readonly DigitChunk[];
  /** The digit scan, with IBAN-style letter-prefixed anchors. */
  digitScan(): DigitScan;
  /**
   * True when a context word of `entity` occurs shortly before `start`: detectors use it to skip
   * costly validation of candidates that could not pass the threshold without context.
   */
  contextBefore(entity: string, start: number): boolean;
  /**
   * The phone detector's validation results by digits (`+` before international ones), for the
   * configured phone regions: this scan's own, or one a stream keeps across its scans (see
   * ScanOptions.phoneValidations). The detector bounds it.
   */
  phoneValidations(): Map<string, boolean>;
  /**
   * The prefilter's traits of the text (prefilter.ts), absent or null when the prefilter is off: a
   * detector made of independent parts may skip a part whose condition fails, as the scanner
   * skips whole detectors.
   */
  readonly traits?: TextTraits | null;
}

export interface Detector {
  /** Stable name (used in error messages, never values). */
  readonly name: string;
  /** Entity types this detector can emit. */
  readonly entities: readonly string[];
  /** Appends findings to `out`. Must be linear in `text.length`. */
  detect(text: string, ctx: DetectContext, out: Finding[]): void;
  /**
   * Prefilter (prefilter.ts): false only when `detect` cannot find anything in a text with these
   * traits, a condition every finding implies (never a guess), so the scanner may skip the call.
   * Absent: always called (custom entities, injected detectors).
   */
  mayMatch?(traits: TextTraits): boolean;
}

/** Entity-level metadata: context words and the default score threshold. */
export interface EntityInfo {
  context: readonly string[];
  /** Score added when a context word is found shortly before the match. */
  contextBoost: number;
  /** Words that, found shortly before, lower the score (e.g. `version` before an IP). */
  negative?: readonly string[];
}
