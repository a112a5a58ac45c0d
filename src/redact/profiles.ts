/**
 * Built-in profiles and the per-request plan: which entities to detect, with which mode and
 * threshold, resolved from the policy's RedactionDecision over the configured profile.
 *
 * Precedence for an entity's mode: decision.modes[entity] > decision.modes[group] >
 * decision.mode > profile.settings[entity].mode > profile.settings[group].mode > profile.mode > mask.
 */
import { WardenError } from '../pipeline/errors.js';
import type { RedactionDecision, RedactionMode } from '../pipeline/types.js';
import { SECRET_ENTITIES } from './entities/index.js';
import type { ScanOptions } from './scanner.js';
import type { ProfileConfig } from './types.js';

/** Group names usable wherever an entity type is expected. */
export const GROUPS: Record<string, readonly string[]> = {
  SECRETS: SECRET_ENTITIES,
};

const STANDARD_ENTITIES = ['EMAIL_ADDRESS', 'PHONE_NUMBER', 'CREDIT_CARD', 'US_SSN', 'IBAN_CODE', 'IP_ADDRESS', 'MAC_ADDRESS', 'CRYPTO', 'SECRETS'];

export const BUILTIN_PROFILES: Record<string, ProfileConfig> = {
  standard: { entities: STANDARD_ENTITIES, mode: 'mask' },
  strict: {
    entities: [...STANDARD_ENTITIES, 'DATE_OF_BIRTH', 'URL'],
    mode: 'mask',
    settings: { SECRETS: { mode: 'block' } },
  },
};

const MODES: readonly string[] = ['mask', 'hash', 'tokenize', 'block', 'allow'];

export interface RedactionPlan {
  /** Entities to detect (those in `allow` mode are left out: no work for them). */
  entities: Set<string>;
  modes: Map<string, RedactionMode>;
  thresholds: Map<string, number>;
  failOpen: boolean;
  reidentify: boolean;
  usesHash: boolean;
  /** Some detected entity is in `block` mode (otherwise no prompt is refused for what it holds). */
  usesBlock: boolean;
  /** Some detected entity is in `tokenize` mode (otherwise no placeholder is ever minted). */
  usesTokenize: boolean;
  /**
   * Canonical form of what the scan depends on in this plan (entities and thresholds; the
   * Redactor's detectors, allow-list and regions are fixed for its lifetime): part of the
   * findings cache key, so plans that detect differently never share findings.
   */
  scanConfig: string;
  /**
   * The options of every scan for this plan (one object, not one per scan); the Redactor that
   * made the plan adds the detectors it needs (ScanOptions.detectors).
   */
  scan: ScanOptions;
}

/** The most UTF-16 units of a policy-written name an error repeats (configured names are far shorter). */
const MAX_SHOWN_NAME = 128;

/**
 * A name from the decision as an error repeats it: a policy writes what it likes (a profile built
 * from a data entry of a megabyte went whole into the 500's message and details). Its start, then
 * its length; never cut inside a surrogate pair.
 */
function shownName(name: string): string {
  if (name.length <= MAX_SHOWN_NAME) return name;
  const c = name.charCodeAt(MAX_SHOWN_NAME - 1);
  const end = c >= 0xd800 && c <= 0xdbff ? MAX_SHOWN_NAME - 1 : MAX_SHOWN_NAME;
  return `${name.slice(0, end)}... (${name.length} characters)`;
}

function groupOf(entity: string): string | undefined {
  for (const [g, members] of Object.entries(GROUPS)) if (members.includes(entity)) return g;
  return undefined;
}

export function expandEntities(names: readonly string[], known: ReadonlySet<string>, path: string): string[] {
  const out: string[] = [];
  for (const raw of names) {
    // Policies may write entity names in any case ("email_address").
    const name = raw.toUpperCase();
    const members = GROUPS[name];
    if (members) out.push(...members);
    else if (known.has(name)) out.push(name);
    else {
      const shown = shownName(name);
      throw new WardenError('redaction_failed', `unknown redaction entity type "${shown}" at ${path}`, {
        location: { path },
        details: { entity: shown },
      });
    }
  }
  return out;
}

export function buildPlan(
  decision: RedactionDecision,
  profiles: Readonly<Record<string, ProfileConfig>>,
  defaultProfile: string,
  known: ReadonlySet<string>,
): RedactionPlan {
  const profileName = decision.profile || defaultProfile;
  // Own members only: a profile named "constructor" must not find Object's.
  const profile = Object.hasOwn(profiles, profileName) ? profiles[profileName] : undefined;
  if (!profile) {
    const shown = shownName(profileName);
    throw new WardenError('redaction_failed', `unknown redaction profile "${shown}"`, {
      location: { path: 'decision.redaction.profile' },
      details: { profile: shown },
    });
  }
  const names = decision.entities.length > 0 ? decision.entities : profile.entities;
  const entities = expandEntities(names, known, decision.entities.length > 0 ? 'decision.redaction.entities' : `redaction.profiles.${profileName}.entities`);
  const modes = new Map<string, RedactionMode>();
  const thresholds = new Map<string, number>();
  const plan: RedactionPlan = {
    entities: new Set(),
    modes,
    thresholds,
    failOpen: decision.fail_open === true,
    reidentify: decision.reidentify === true,
    usesHash: false,
    usesBlock: false,
    usesTokenize: false,
    scanConfig: '',
    scan: { entities: new Set() },
  };
  const decisionModes: Record<string, RedactionMode> = {};
  for (const [k, v] of Object.entries(decision.modes ?? {})) {
    const name = k.toUpperCase();
    // A mistyped key ("SECRET" for "SECRETS") must not quietly drop the mode the policy asked for.
    if (!Object.hasOwn(GROUPS, name) && !known.has(name)) {
      const shown = shownName(name);
      throw new WardenError('redaction_failed', `unknown redaction entity type "${shown}" at decision.redaction.modes`, {
        location: { path: 'decision.redaction.modes' },
        details: { entity: shown },
      });
    }
    decisionModes[name] = v;
  }
  for (const e of entities) {
    const g = groupOf(e);
    const mode =
      decisionModes[e] ??
      (g ? decisionModes[g] : undefined) ??
      decision.mode ??
      profile.settings?.[e]?.mode ??
      (g ? profile.settings?.[g]?.mode : undefined) ??
      profile.mode ??
      'mask';
    if (!MODES.includes(mode)) {
      throw new WardenError('redaction_failed', `unknown redaction mode "${String(mode)}" for ${e}`, {
        location: { path: 'decision.redaction.modes' },
      });
    }
    const threshold = profile.settings?.[e]?.threshold ?? (g ? profile.settings?.[g]?.threshold : undefined);
    if (threshold !== undefined) thresholds.set(e, threshold);
    modes.set(e, mode);
    if (mode !== 'allow') plan.entities.add(e);
    if (mode === 'hash') plan.usesHash = true;
    if (mode === 'block') plan.usesBlock = true;
    if (mode === 'tokenize') plan.usesTokenize = true;
  }
  const thresholdList = [...thresholds].filter(([e]) => plan.entities.has(e)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  plan.scanConfig = JSON.stringify([[...plan.entities].sort(), thresholdList]);
  plan.scan = { entities: plan.entities, thresholds, failOpen: plan.failOpen };
  return plan;
}

/** Cache key of a decision (decisions repeat across requests; plans are immutable). */
export function decisionKey(d: RedactionDecision): string {
  return JSON.stringify([d.profile, d.entities, d.mode ?? null, d.modes ?? {}, d.fail_open === true, d.reidentify === true]);
}

/** What a plan depends on in a decision, copied (the caller's decision may change later). */
export interface DecisionSnapshot {
  readonly profile: string;
  readonly entities: readonly string[];
  readonly mode: RedactionMode | null;
  readonly modeKeys: readonly string[];
  readonly modeValues: readonly RedactionMode[];
  readonly failOpen: boolean;
  readonly reidentify: boolean;
}

export function snapshotOf(d: RedactionDecision): DecisionSnapshot {
  const modes = d.modes ?? {};
  return {
    profile: d.profile,
    entities: d.entities.slice(),
    mode: d.mode ?? null,
    modeKeys: Object.keys(modes),
    modeValues: Object.values(modes),
    failOpen: d.fail_open === true,
    reidentify: d.reidentify === true,
  };
}

/**
 * Does `d` decide what `s` decided, field for field (modes in the same order, as buildPlan reads
 * them)? Stricter than equal decisionKeys, never looser, so a match may reuse the snapshot's plan.
 * Allocates nothing: the redactor compares each request's decision with the last one planned,
 * which is cheaper than building the key when, as usual, decisions repeat.
 */
export function sameDecision(d: RedactionDecision, s: DecisionSnapshot): boolean {
  if (d.profile !== s.profile || (d.mode ?? null) !== s.mode) return false;
  if ((d.fail_open === true) !== s.failOpen || (d.reidentify === true) !== s.reidentify) return false;
  const entities = d.entities;
  if (entities.length !== s.entities.length) return false;
  for (let i = 0; i < entities.length; i++) if (entities[i] !== s.entities[i]) return false;
  const modes = d.modes ?? {};
  let i = 0;
  for (const k in modes) {
    if (!Object.hasOwn(modes, k)) continue;
    if (i >= s.modeKeys.length || k !== s.modeKeys[i] || modes[k] !== s.modeValues[i]) return false;
    i++;
  }
  return i === s.modeKeys.length;
}
