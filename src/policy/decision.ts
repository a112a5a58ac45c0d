/**
 * Turns whatever the policy returned into a Decision. Least privilege throughout: only a
 * well-formed object with `allow === true` allows; a known field of the wrong type denies (a
 * policy bug must not widen access); a missing field takes the most restrictive default;
 * unknown fields are ignored.
 */
import type { Decision, RedactionDecision, RedactionMode } from '../pipeline/types.js';

const MODES: ReadonlySet<string> = new Set<RedactionMode>(['mask', 'hash', 'tokenize', 'block', 'allow']);

/** The profile when neither the decision nor the caller names one (config `redaction.default_profile`'s default). */
export const BUILT_IN_DEFAULT_PROFILE = 'standard';

/**
 * The redaction of a decision that names none: the configured default profile with its own
 * per-entity modes. No `mode` here: a mode would override the profile's modes (a `block` on
 * secrets would become `mask`), making a missing block weaker than an empty one.
 */
export function defaultRedaction(defaultProfile: string = BUILT_IN_DEFAULT_PROFILE): RedactionDecision {
  return { profile: defaultProfile, entities: [], modes: {}, reidentify: false, fail_open: false };
}

/** Something wrong with what the policy returned, for the operator's log (names only, never values). */
export interface DecisionProblem {
  kind: 'undefined' | 'not_object' | 'malformed' | 'unknown_field';
  /**
   * The decision field, as a path (`redaction.profile`); '' for the decision as a whole. An unknown
   * key is named only when it could be a typo of a field (see `nameableKey`); any other ends the
   * path as UNNAMED_KEY (`redaction.<key not named>`).
   */
  path: string;
}

/** Stands for an unknown decision key that is not named (it may be built from input). */
export const UNNAMED_KEY = '<key not named>';

/** Told about each problem found while reading a decision (the decide stage logs them). */
export type ProblemSink = (problem: DecisionProblem) => void;

function deny(id: string, reasons: string[], defaultProfile: string): Decision {
  return { allow: false, reasons, secrets: [], redaction: defaultRedaction(defaultProfile), models: [], audit: { log_variables_names: false }, id };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Up to this many items, duplicates are found by scanning what is kept (no Set to build for the
 * usual list of a few reasons or models); past it by a Set, since a scan per item is quadratic:
 * a rule making one reason per entry of a 20,000-entry data list took over a second a request.
 */
const SCAN_DUPLICATES_UP_TO = 16;

function stringList(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  // A fresh array without duplicates, in order.
  const out: string[] = [];
  if (v.length <= SCAN_DUPLICATES_UP_TO) {
    for (const x of v) {
      if (typeof x !== 'string') return undefined;
      if (!out.includes(x)) out.push(x);
    }
    return out;
  }
  const seen = new Set<string>();
  for (const x of v) {
    if (typeof x !== 'string') return undefined;
    if (!seen.has(x)) {
      seen.add(x);
      out.push(x);
    }
  }
  return out;
}

function positiveInt(v: unknown): number | undefined {
  if (typeof v === 'bigint') return v > 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/** Thrown internally for a malformed known field; becomes a deny naming the field's path. */
class Malformed extends Error {}

/**
 * `obj[key]` parsed, or `fallback` when absent. `prefix` is the path of `obj` in the decision
 * (`redaction.`), so a malformed nested field is named where it is, not by its last key.
 */
function field<T>(obj: Record<string, unknown>, key: string, parse: (v: unknown) => T | undefined, fallback: T, prefix = ''): T {
  if (!(key in obj) || obj[key] === undefined) return fallback;
  const out = parse(obj[key]);
  if (out === undefined) throw new Malformed(prefix + key);
  return out;
}

/** The fields Warden reads, per object of the decision; anything else is ignored (and reported). */
export const DECISION_KEYS: ReadonlySet<string> = new Set(['allow', 'reasons', 'secrets', 'redaction', 'models', 'max_tokens', 'audit']);
export const REDACTION_KEYS: ReadonlySet<string> = new Set(['profile', 'entities', 'mode', 'modes', 'reidentify', 'fail_open']);
export const AUDIT_KEYS: ReadonlySet<string> = new Set(['log_variables_names']);

/**
 * Reports the keys of `obj` Warden does not read. They are ignored, as README promises, but a typo
 * (`max_token`) silently drops what the policy meant to grant or limit, so the author should hear.
 */
function reportUnknown(obj: Record<string, unknown>, known: ReadonlySet<string>, prefix: string, onProblem: ProblemSink): void {
  for (const k in obj) {
    if (Object.hasOwn(obj, k) && !known.has(k)) onProblem({ kind: 'unknown_field', path: prefix + (nameableKey(k, known) ? k : UNNAMED_KEY) });
  }
}

/** Longest unknown key that may be named: every decision field is far shorter. */
const MAX_NAMED_KEY = 40;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Whether an unknown key may be named in the operator's log: only a likely typo of a field at
 * that level (an identifier within two edits of one: `max_token`, `Allow`), which is what the
 * report is for. A key can be built from input (`{input.request.model: …}`): the caller's text,
 * of any length, with newlines, maybe PII, and it must not reach the log as it is.
 */
function nameableKey(key: string, known: ReadonlySet<string>): boolean {
  if (key.length > MAX_NAMED_KEY || !IDENTIFIER.test(key)) return false;
  for (const field of known) if (editDistanceAtMost(key.toLowerCase(), field, 2)) return true;
  return false;
}

/** Whether `a` becomes `b` in at most `max` single-character insertions, deletions or substitutions. */
function editDistanceAtMost(a: string, b: string, max: number): boolean {
  if (Math.abs(a.length - b.length) > max) return false;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]! <= max;
}

function reportUnknownFields(raw: Record<string, unknown>, onProblem: ProblemSink): void {
  reportUnknown(raw, DECISION_KEYS, '', onProblem);
  if (isObject(raw.redaction)) reportUnknown(raw.redaction, REDACTION_KEYS, 'redaction.', onProblem);
  if (isObject(raw.audit)) reportUnknown(raw.audit, AUDIT_KEYS, 'audit.', onProblem);
}

// Field parsers live at module level: one set of functions, not fresh closures per decision.
const bool = (x: unknown): boolean | undefined => (typeof x === 'boolean' ? x : undefined);
const profileName = (x: unknown): string | undefined => (typeof x === 'string' && x !== '' ? x : undefined);
const modeOf = (x: unknown): RedactionMode | undefined => (typeof x === 'string' && MODES.has(x) ? (x as RedactionMode) : undefined);

function modesOf(x: unknown): Record<string, RedactionMode> | undefined {
  if (!isObject(x)) return undefined;
  const out: Record<string, RedactionMode> = {};
  for (const k in x) {
    if (!Object.prototype.hasOwnProperty.call(x, k)) continue;
    const m = x[k];
    if (typeof m !== 'string' || !MODES.has(m)) return undefined;
    // An own member, even for `__proto__` (plain assignment would set nothing), so the redactor
    // refuses that key as the unknown entity type it is, as it refuses `constructor`.
    if (k === '__proto__') Object.defineProperty(out, k, { value: m, enumerable: true, writable: true, configurable: true });
    else out[k] = m as RedactionMode;
  }
  return out;
}

function redactionOf(v: unknown, defaultProfile: string): RedactionDecision | undefined {
  if (!isObject(v)) return undefined;
  const profile = field(v, 'profile', profileName, defaultProfile, 'redaction.');
  const entities = field(v, 'entities', stringList, [] as string[], 'redaction.');
  // Without an explicit mode the profile's own per-entity modes apply, so no default here.
  const mode = field(v, 'mode', modeOf, undefined as RedactionMode | undefined, 'redaction.');
  const modes = field(v, 'modes', modesOf, {} as Record<string, RedactionMode>, 'redaction.');
  const out: RedactionDecision = {
    profile,
    entities,
    modes,
    reidentify: field(v, 'reidentify', bool, false, 'redaction.'),
    fail_open: field(v, 'fail_open', bool, false, 'redaction.'),
  };
  if (mode !== undefined) out.mode = mode;
  return out;
}

/** The decision's `redaction` (no closure per call: `field` would need one to pass the default profile). */
function redactionField(raw: Record<string, unknown>, defaultProfile: string): RedactionDecision {
  if (!('redaction' in raw) || raw.redaction === undefined) return defaultRedaction(defaultProfile);
  const out = redactionOf(raw.redaction, defaultProfile);
  if (out === undefined) throw new Malformed('redaction');
  return out;
}

function auditOf(x: unknown): Decision['audit'] | undefined {
  return isObject(x) ? { log_variables_names: field(x, 'log_variables_names', bool, false, 'audit.') } : undefined;
}

/**
 * Normalised forms of the frozen results the decision cache shares between requests, without
 * their `id`. A cache hit returns the same frozen raw object every time, so its validation is done
 * once; each request still gets a Decision object of its own carrying its own id. The shared parts
 * (reasons, secrets, redaction, models, audit) are frozen: a stage that tried to change one would
 * throw (and so fail closed) instead of changing the next request's decision. Weak keys: an entry
 * dies with the cached result it was made from.
 */
const sharedNormalized = new WeakMap<object, { defaultProfile: string; decision: Decision }>();

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

/** A fresh Decision with the shared, frozen parts of `d` and its own `id`. */
function withId(d: Decision, id: string): Decision {
  const out: Decision = { allow: d.allow, reasons: d.reasons, secrets: d.secrets, redaction: d.redaction, models: d.models, audit: d.audit, id };
  if (d.max_tokens !== undefined) out.max_tokens = d.max_tokens;
  return out;
}

/**
 * The request's Decision from what the policy returned. A frozen result (the decision cache's
 * shared copy) is validated once and its normal form reused; any other is validated each time.
 * `defaultProfile` is config `redaction.default_profile`: the profile of a decision that names
 * none. `onProblem` hears of an undefined, malformed or partly unknown decision (for a frozen
 * result only when it is first validated: the caller throttles its reports anyway).
 */
export function normalizeDecision(raw: unknown, id: string, defaultProfile: string = BUILT_IN_DEFAULT_PROFILE, onProblem?: ProblemSink): Decision {
  if (raw === null || typeof raw !== 'object' || !Object.isFrozen(raw)) return normalizeFresh(raw, id, defaultProfile, onProblem);
  let shared = sharedNormalized.get(raw);
  if (!shared || shared.defaultProfile !== defaultProfile) {
    const decision = normalizeFresh(raw, '', defaultProfile, onProblem);
    for (const k of ['reasons', 'secrets', 'redaction', 'models', 'audit'] as const) deepFreeze(decision[k]);
    shared = { defaultProfile, decision };
    sharedNormalized.set(raw, shared);
  }
  return withId(shared.decision, id);
}

function normalizeFresh(raw: unknown, id: string, defaultProfile: string, onProblem: ProblemSink | undefined): Decision {
  if (raw === undefined) {
    onProblem?.({ kind: 'undefined', path: '' });
    return deny(id, ['policy returned no decision (entrypoint undefined)'], defaultProfile);
  }
  if (!isObject(raw)) {
    onProblem?.({ kind: 'not_object', path: '' });
    return deny(id, ['policy decision is not an object'], defaultProfile);
  }
  if (onProblem) reportUnknownFields(raw, onProblem);
  try {
    return readDecision(raw, id, defaultProfile);
  } catch (err) {
    if (!(err instanceof Malformed)) throw err;
    onProblem?.({ kind: 'malformed', path: err.message });
    return deny(id, [`policy decision field "${err.message}" is malformed`], defaultProfile);
  }
}

/** The Decision of a well-shaped result; throws Malformed naming the first bad field's path. */
function readDecision(raw: Record<string, unknown>, id: string, defaultProfile: string): Decision {
  // `"true"` or 1 is a policy bug, not a decision: reported as malformed like any other field.
  const allow = field(raw, 'allow', (v) => (typeof v === 'boolean' ? v : undefined), false);
  const reasons = field(raw, 'reasons', stringList, []);
  // The stage says "denied by policy: <reasons>"; the fallback must not say it again.
  if (!allow) return deny(id, reasons.length > 0 ? reasons : ['no reason given'], defaultProfile);
  const decision: Decision = {
    allow: true,
    reasons,
    secrets: field(raw, 'secrets', stringList, []),
    redaction: redactionField(raw, defaultProfile),
    models: field(raw, 'models', stringList, []),
    audit: field(raw, 'audit', auditOf, { log_variables_names: false }),
    id,
  };
  const maxTokens = field(raw, 'max_tokens', positiveInt, undefined as number | undefined);
  if (maxTokens !== undefined) decision.max_tokens = maxTokens;
  return decision;
}
