/**
 * Turns whatever the policy returned into a Decision. Least privilege throughout: only a
 * well-formed object with `allow === true` allows; a known field of the wrong type denies (a
 * policy bug must not widen access); a missing field takes the most restrictive default;
 * unknown fields are ignored.
 */
import type { Decision, RedactionDecision, RedactionMode } from '../pipeline/types.js';

const MODES: ReadonlySet<string> = new Set<RedactionMode>(['mask', 'hash', 'tokenize', 'block', 'allow']);

export function defaultRedaction(): RedactionDecision {
  return { profile: 'standard', entities: [], mode: 'mask', modes: {}, reidentify: false, fail_open: false };
}

function deny(id: string, reasons: string[]): Decision {
  return { allow: false, reasons, secrets: [], redaction: defaultRedaction(), models: [], audit: { log_variables_names: false }, id };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringList(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  // A fresh array without duplicates (lists are short: a linear check beats building a Set).
  const out: string[] = [];
  for (const x of v) {
    if (typeof x !== 'string') return undefined;
    if (!out.includes(x)) out.push(x);
  }
  return out;
}

function positiveInt(v: unknown): number | undefined {
  if (typeof v === 'bigint') return v > 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/** Thrown internally for a malformed known field; becomes a deny naming the field. */
class Malformed extends Error {}

function field<T>(obj: Record<string, unknown>, key: string, parse: (v: unknown) => T | undefined, fallback: T): T {
  if (!(key in obj) || obj[key] === undefined) return fallback;
  const out = parse(obj[key]);
  if (out === undefined) throw new Malformed(key);
  return out;
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
    out[k] = m as RedactionMode;
  }
  return out;
}

function redactionOf(v: unknown): RedactionDecision | undefined {
  if (!isObject(v)) return undefined;
  const profile = field(v, 'profile', profileName, 'standard');
  const entities = field(v, 'entities', stringList, [] as string[]);
  // Without an explicit mode the profile's own per-entity modes apply, so no default here.
  const mode = field(v, 'mode', modeOf, undefined as RedactionMode | undefined);
  const modes = field(v, 'modes', modesOf, {} as Record<string, RedactionMode>);
  const out: RedactionDecision = {
    profile,
    entities,
    modes,
    reidentify: field(v, 'reidentify', bool, false),
    fail_open: field(v, 'fail_open', bool, false),
  };
  if (mode !== undefined) out.mode = mode;
  return out;
}

function auditOf(x: unknown): Decision['audit'] | undefined {
  return isObject(x) ? { log_variables_names: field(x, 'log_variables_names', bool, false) } : undefined;
}

/**
 * Normalised forms of the frozen results the decision cache shares between requests, without
 * their `id`. A cache hit returns the same frozen raw object every time, so its validation is done
 * once; each request still gets a Decision object of its own carrying its own id. The shared parts
 * (reasons, secrets, redaction, models, audit) are frozen: a stage that tried to change one would
 * throw (and so fail closed) instead of changing the next request's decision. Weak keys: an entry
 * dies with the cached result it was made from.
 */
const sharedNormalized = new WeakMap<object, Decision>();

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
 */
export function normalizeDecision(raw: unknown, id: string): Decision {
  if (raw === null || typeof raw !== 'object' || !Object.isFrozen(raw)) return normalizeFresh(raw, id);
  let shared = sharedNormalized.get(raw);
  if (!shared) {
    shared = normalizeFresh(raw, '');
    for (const k of ['reasons', 'secrets', 'redaction', 'models', 'audit'] as const) deepFreeze(shared[k]);
    sharedNormalized.set(raw, shared);
  }
  return withId(shared, id);
}

function normalizeFresh(raw: unknown, id: string): Decision {
  if (raw === undefined) return deny(id, ['policy returned no decision (entrypoint undefined)']);
  if (!isObject(raw)) return deny(id, ['policy decision is not an object']);
  let reasons: string[];
  try {
    reasons = field(raw, 'reasons', stringList, []);
  } catch {
    return deny(id, ['policy decision field "reasons" is malformed']);
  }
  if (raw.allow !== true) return deny(id, reasons.length > 0 ? reasons : ['denied by policy']);
  try {
    const decision: Decision = {
      allow: true,
      reasons,
      secrets: field(raw, 'secrets', stringList, []),
      redaction: field(raw, 'redaction', redactionOf, defaultRedaction()),
      models: field(raw, 'models', stringList, []),
      audit: field(raw, 'audit', auditOf, { log_variables_names: false }),
      id,
    };
    const maxTokens = field(raw, 'max_tokens', positiveInt, undefined as number | undefined);
    if (maxTokens !== undefined) decision.max_tokens = maxTokens;
    return decision;
  } catch (err) {
    if (err instanceof Malformed) return deny(id, [`policy decision field "${err.message}" is malformed`]);
    throw err;
  }
}
