/**
 * The Redactor: compiled once from configuration (detectors, custom entities on RE2,
 * allow-lists, profiles), it hands out one Session per request. Plans derived from a decision are
 * cached: decisions repeat, and a plan is immutable.
 */
import { WardenError } from '../pipeline/errors.js';
import type { Redactor } from '../pipeline/ports.js';
import type { RedactionDecision } from '../pipeline/types.js';
import { AllowList } from './allow-list.js';
import { compileCustomEntity } from './custom.js';
import { FindingsCache, type FindingsCacheOptions } from './findings-cache.js';
import { BUILTIN_ENTITIES, builtinDetectors, ENTITY_INFO } from './entities/index.js';
import { LEAK_ENTITY } from './leak-guard.js';
import type { PhoneValidation } from './entities/phone.js';
import { BUILTIN_PROFILES, buildPlan, decisionKey, expandEntities, GROUPS, sameDecision, snapshotOf, type DecisionSnapshot, type RedactionPlan } from './profiles.js';
import { Scanner } from './scanner.js';
import { Session } from './session.js';
import type { Detector, EntityInfo, ProfileConfig, RedactionConfig, StreamSecretHold } from './types.js';

export const DEFAULT_PHONE_REGIONS = [
  'US', 'CA', 'GB', 'IE', 'DE', 'AT', 'CH', 'FR', 'BE', 'NL', 'LU', 'IT', 'ES', 'PT', 'SE', 'NO', 'DK', 'FI',
  'PL', 'CZ', 'HU', 'AU', 'NZ', 'IN', 'BR', 'MX', 'JP',
];
export const DEFAULT_MAX_HOLD_BACK = 8192;
const PLAN_CACHE_SIZE = 256;

export interface RedactorOptions {
  /** Extra detectors (tests use this to prove fail-closed behaviour). */
  detectors?: Detector[];
  /**
   * Overrides `config.phoneValidation`; also takes `valid-only` (valid numbers only, without the
   * context rule for possible numbers), which the evaluation uses to count what that rule recovers.
   */
  phoneValidation?: PhoneValidation;
  /** Bounds of the prompt findings cache, or `false` to scan every text every time. */
  findingsCache?: FindingsCacheOptions | false;
}

export class WardenRedactor implements Redactor {
  readonly scanner: Scanner;
  readonly profiles: Readonly<Record<string, ProfileConfig>>;
  readonly defaultProfile: string;
  readonly known: ReadonlySet<string>;
  private readonly hashKey: Buffer | undefined;
  private readonly maxHoldBack: number;
  private readonly secretHold: StreamSecretHold;
  private readonly plans = new Map<string, RedactionPlan>();
  /** The last decision planned (a copy) and its plan: most requests repeat it. */
  private last: { decision: DecisionSnapshot; plan: RedactionPlan } | null = null;
  /** Prompt findings by digest; dies with this Redactor (a config reload builds a new one). */
  readonly findingsCache: FindingsCache | undefined;

  constructor(config: RedactionConfig, opts: RedactorOptions = {}) {
    const info: Record<string, EntityInfo> = { ...ENTITY_INFO };
    const detectors: Detector[] = builtinDetectors({ phoneValidation: opts.phoneValidation ?? config.phoneValidation });
    const known = new Set<string>(BUILTIN_ENTITIES);
    (config.customEntities ?? []).forEach((c, i) => {
      checkCustomName(c.name, i, known);
      const { detector, info: ci } = compileCustomEntity(c, i);
      detectors.push(detector);
      info[c.name] = ci;
      known.add(c.name);
    });
    for (const d of opts.detectors ?? []) {
      detectors.push(d);
      for (const e of d.entities) known.add(e);
    }
    this.known = known;
    const regions = (config.phoneRegions ?? DEFAULT_PHONE_REGIONS).map((r) => r.toUpperCase());
    this.scanner = new Scanner(detectors, info, new AllowList(config.allow), regions);
    this.profiles = { ...BUILTIN_PROFILES, ...(config.profiles ?? {}) };
    this.defaultProfile = config.defaultProfile ?? 'standard';
    if (!Object.hasOwn(this.profiles, this.defaultProfile)) {
      throw new WardenError('invalid_request', `redaction.default_profile "${this.defaultProfile}" is not a profile`, {
        location: { path: 'redaction.default_profile' },
      });
    }
    // Validate every profile now, so a typo is a startup error and not a refused request.
    for (const [name, p] of Object.entries(this.profiles)) {
      const path = `redaction.profiles.${name}`;
      if (!Array.isArray(p.entities)) {
        throw new WardenError('invalid_request', `${path}.entities must be a list of entity types`, { location: { path: `${path}.entities` } });
      }
      let entities: string[];
      try {
        entities = expandEntities(p.entities, known, `${path}.entities`);
      } catch (err) {
        throw new WardenError('invalid_request', (err as Error).message, { location: { path: `${path}.entities` } });
      }
      checkSettingsKeys(p, entities, path);
      const modes = [p.mode, ...Object.values(p.settings ?? {}).map((x) => x.mode)];
      for (const m of modes) {
        if (m !== undefined && !['mask', 'hash', 'tokenize', 'block', 'allow'].includes(m)) {
          throw new WardenError('invalid_request', `${path}: unknown mode "${String(m)}"`, { location: { path } });
        }
      }
    }
    this.findingsCache = opts.findingsCache === false ? undefined : new FindingsCache(this.scanner, opts.findingsCache);
    this.hashKey = config.hashKey;
    this.maxHoldBack = config.maxHoldBack ?? DEFAULT_MAX_HOLD_BACK;
    this.secretHold = config.streamSecretHold ?? 'window';
  }

  /**
   * Every entity type a session's report can count: the detectors' (built-in and custom, which
   * come from config, so the list is bounded) and the leak guard's. Metrics label findings by it.
   */
  reportedEntities(): string[] {
    return [...this.known, LEAK_ENTITY];
  }

  plan(decision: RedactionDecision): RedactionPlan {
    const last = this.last;
    if (last !== null && sameDecision(decision, last.decision)) return last.plan;
    const key = decisionKey(decision);
    let plan = this.plans.get(key);
    if (!plan) {
      plan = buildPlan(decision, this.profiles, this.defaultProfile, this.known);
      plan.scan = { ...plan.scan, detectors: this.scanner.detectorsFor(plan.entities) };
      if (plan.usesHash && !this.hashKey) {
        throw new WardenError('redaction_failed', 'redaction mode "hash" needs redaction.hmac_key', {
          location: { path: 'redaction.hmac_key' },
        });
      }
      if (this.plans.size >= PLAN_CACHE_SIZE) this.plans.delete(this.plans.keys().next().value as string);
      this.plans.set(key, plan);
    }
    this.last = { decision: snapshotOf(decision), plan };
    return plan;
  }

  session(decision: RedactionDecision, secrets: readonly string[], answerSecrets: readonly string[] = secrets): Session {
    return new Session({
      scanner: this.scanner,
      plan: this.plan(decision),
      hashKey: this.hashKey,
      secrets,
      answerSecrets,
      maxHoldBack: this.maxHoldBack,
      secretHold: this.secretHold,
      findingsCache: this.findingsCache,
    });
  }
}

/**
 * A custom entity's name must be its own: one named like a built-in entity would replace that
 * entity's context words, one named like a group could never be selected (the group wins), and
 * `SECRET_VALUE` is what the leak guard reports.
 */
function checkCustomName(name: string, index: number, known: ReadonlySet<string>): void {
  const path = `redaction.custom_entities[${index}].name`;
  const clash = Object.hasOwn(GROUPS, name)
    ? 'a group'
    : name === LEAK_ENTITY
      ? "the leak guard's entity"
      : BUILTIN_ENTITIES.includes(name)
        ? 'a built-in entity'
        : known.has(name)
          ? 'an earlier custom entity'
          : null;
  if (clash !== null) {
    throw new WardenError('invalid_request', `${path} "${name}" is already the name of ${clash}`, { location: { path } });
  }
}

/**
 * Settings apply by exact key to the profile's entities (or a group of them): any other key, a
 * typo such as `EMAIL_ADRESS` or an entity the profile does not list, would be silently ignored,
 * and with it the mode or threshold it asked for.
 */
function checkSettingsKeys(p: ProfileConfig, entities: readonly string[], path: string): void {
  for (const key of Object.keys(p.settings ?? {})) {
    const members = Object.hasOwn(GROUPS, key) ? GROUPS[key]! : [key];
    if (members.some((e) => entities.includes(e))) continue;
    throw new WardenError('invalid_request', `${path}.settings.${key} is not one of the profile's entities (or a group of them)`, {
      location: { path: `${path}.settings.${key}` },
    });
  }
}

export function createRedactor(config: RedactionConfig, opts: RedactorOptions = {}): WardenRedactor {
  return new WardenRedactor(config, opts);
}
