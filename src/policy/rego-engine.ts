/**
 * The built-in Rego engine behind the PolicyEngine port: `.rego` files (tests excluded) compiled
 * once per load; each request evaluates the configured entrypoint — or takes the result from the
 * decision cache (decision-cache.ts) when the policy's analysis allows one.
 */
import { WardenError } from '../pipeline/errors.js';
import type { PolicyEngine } from '../pipeline/ports.js';
import type { PolicyInput } from '../pipeline/types.js';
import { loadRegoPolicy, RegoError, type EvalOptions, type LeftOutRules, type RegoPolicy } from './rego/index.js';
import { DecisionCache, type DecisionCacheOutcome } from './decision-cache.js';
import { runStepsYielding } from '../pipeline/time-slices.js';

export interface RegoPolicyEngineOptions {
  /** Files or directories of `.rego` (and `data.json`/`.yaml`) files. */
  paths: string[];
  /** `warden/decision` or `data.warden.decision`. */
  entrypoint: string;
  /** Per-evaluation budget (steps, deadline) — a runaway policy becomes `policy_error`, not a hang. */
  maxSteps?: number;
  deadlineMs?: number;
  /**
   * Built-in errors (`1 / 0`, `to_number("x")`, an operand of the wrong type) end the evaluation
   * with their error, a deny, instead of leaving the call undefined as OPA does by default: under
   * `not`, an undefined risk check is an allow. Default true (config `policy.strict_builtin_errors`).
   */
  strictBuiltinErrors?: boolean;
  /** Default: on, 10,000 entries. */
  decisionCache?: { enabled: boolean; maxEntries: number };
  /** Told, per evaluation, whether the cache answered (`hit`), missed, or was not used (`off`). */
  onDecisionCache?: (outcome: DecisionCacheOutcome) => void;
  /**
   * Gives the load up (its deadline, `reload.timeout_ms`): the compile, which runs a slice at a
   * time, stops at its next turn and the engine rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/** Whether this engine caches decisions, and if not, why (for the load log and `policy check`). */
export interface DecisionCacheStatus {
  enabled: boolean;
  /** Set iff not enabled. */
  reason?: string;
  /** The input paths the key is made of (when enabled). */
  paths: string[][];
  maxEntries: number;
}

export interface RegoPolicyEngine extends PolicyEngine {
  readonly decisionCache: DecisionCacheStatus;
  /** Problems that do not stop the load, for its log: rules left out with `*_test.rego` files. */
  readonly warnings: readonly LeftOutRules[];
}

export const DEFAULT_DECISION_CACHE = { enabled: true, maxEntries: 10_000 } as const;

const noOutcome = (_o: DecisionCacheOutcome): void => undefined;

const ENTRYPOINT = /^(?:data\.)?[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*$/;

/** At most this many names in a load error's "what is there" list. */
const MAX_NAMES = 12;

function nameList(names: readonly string[]): string {
  const shown = names.slice(0, MAX_NAMES).join(', ');
  return names.length > MAX_NAMES ? `${shown} and ${names.length - MAX_NAMES} more` : shown;
}

/** The entrypoint as a data path for messages: `warden/decision` → `data.warden.decision`. */
function dataPath(entrypoint: string): string {
  const s = entrypoint.startsWith('data.') ? entrypoint.slice(5) : entrypoint;
  return ['data', ...s.split(/[./]/)].join('.');
}

/**
 * Refuses an entrypoint that names no rule, package or data in the loaded set, or names a
 * function, saying what is there instead. One that names a rule undefined for some input passes:
 * that is decided per request.
 */
function checkEntrypoint(policy: RegoPolicy, entrypoint: string): void {
  const found = policy.lookup(entrypoint);
  const where = dataPath(entrypoint);
  let message: string;
  if (found.found === 'function') message = `"${entrypoint}" names a function (${where}), not a rule: a function has no value without arguments`;
  else if (found.found === 'none') message = `"${entrypoint}" names no rule: ${where} is not defined by the loaded policies; ${whatIsThere(policy, entrypoint, found)}`;
  else return;
  throw new WardenError('policy_error', message, {
    location: { path: 'policy.entrypoint' },
    details: { code: 'entrypoint_undefined', entrypoint },
  });
}

/** The hint of an undefined entrypoint: the right form of OPA's `data/` prefix, or what the nearest path holds. */
function whatIsThere(policy: RegoPolicy, entrypoint: string, found: { reached: string[]; keys: string[] }): string {
  // OPA's REST paths (`/v1/data/warden/decision`) start with data/; Warden's are relative to data.
  // Taken literally it is `package data.warden`, which may exist (then it was found above).
  const rest = entrypoint.startsWith('data/') ? entrypoint.slice(5) : undefined;
  if (rest !== undefined && rest !== '') {
    const bare = policy.lookup(rest).found;
    if (bare !== 'none' && bare !== 'function') return `the path is relative to data: write ${rest}`;
  }
  if (found.reached.length > 0 && found.keys.length > 0) return `data.${found.reached.join('.')} holds ${nameList(found.keys)}`;
  if (policy.packages.length > 0) return `the loaded packages are ${nameList(policy.packages)}`;
  return 'they define no package (files named *_test.rego are left out)';
}

export async function createRegoPolicyEngine(opts: RegoPolicyEngineOptions): Promise<RegoPolicyEngine> {
  if (!ENTRYPOINT.test(opts.entrypoint)) {
    throw new WardenError('policy_error', `invalid policy entrypoint "${opts.entrypoint}" (want warden/decision or data.warden.decision)`, {
      location: { path: 'policy.entrypoint' },
    });
  }
  let policy: RegoPolicy;
  try {
    policy = await loadRegoPolicy(opts.paths, { excludeTests: true, ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (err) {
    if (opts.signal?.aborted === true) throw err;
    if (err instanceof RegoError) {
      const loc = err.location;
      throw new WardenError('policy_error', `${err.code}: ${err.message}`, {
        ...(loc ? { location: loc.row > 0 ? { file: loc.file, line: loc.row, column: loc.col } : { file: loc.file } } : { location: { path: 'policy.paths' } }),
        details: { code: err.code },
        cause: err,
      });
    }
    const code = (err as NodeJS.ErrnoException).code;
    throw new WardenError('policy_error', `cannot load policies from ${opts.paths.join(', ')}${code ? ` (${code})` : ''}`, {
      location: { path: 'policy.paths' },
    });
  }
  // No paths is the documented deny-all set; with paths, an entrypoint that can never be defined
  // is a configuration mistake, refused here (a start fails, a reload keeps the last good set)
  // instead of denying every call as "entrypoint undefined".
  if (opts.paths.length > 0) checkEntrypoint(policy, opts.entrypoint);
  // One options object, reused: evaluation is synchronous and reads it only at its start, so
  // each call just sets its clock instead of spreading a fresh copy.
  // The policy input comes from buildPolicyInput: metadata only, bounded by the ingress limits
  // (variable count, header and body size) and by config, so the engine's size walk is skipped.
  const options: EvalOptions = { inputBounded: true, strictBuiltinErrors: opts.strictBuiltinErrors ?? true };
  if (opts.maxSteps !== undefined) options.maxSteps = opts.maxSteps;
  if (opts.deadlineMs !== undefined) options.deadlineMs = opts.deadlineMs;
  const compiled = policy;
  const entrypoint = opts.entrypoint;
  const evaluate = (input: unknown): unknown => {
    // time.now_ns() inside the policy equals input.time.now_ns: Warden's input holds it as an
    // exact bigint; an input from elsewhere may hold a double, whose value is taken as it is.
    // (A policy that calls it is never cached: the analysis counts the clock as nondeterministic.)
    const ns = (input as PolicyInput).time.now_ns;
    options.nowNs = typeof ns === 'bigint' ? ns : BigInt(Math.round(ns));
    return compiled.evaluate(entrypoint, input, options);
  };
  const { enabled, maxEntries } = opts.decisionCache ?? DEFAULT_DECISION_CACHE;
  // A pass over every rule, so a slice at a time too.
  const deps = await runStepsYielding(compiled.inputDepsSteps(), opts.signal);
  const status: DecisionCacheStatus = !enabled
    ? { enabled: false, reason: 'disabled in the configuration (policy.decision_cache.enabled: false)', paths: [], maxEntries }
    : deps.cacheable
      ? { enabled: true, paths: deps.paths, maxEntries }
      : { enabled: false, reason: deps.reason ?? 'the policy analysis gave no reason', paths: [], maxEntries };
  const cache = status.enabled ? new DecisionCache(status.paths, maxEntries) : undefined;
  const outcome = opts.onDecisionCache ?? noOutcome;
  return {
    kind: 'rego',
    revision: compiled.revision,
    decisionCache: status,
    warnings: compiled.leftOutRules,
    evaluate(input: PolicyInput): unknown {
      if (cache === undefined) {
        outcome('off');
        return evaluate(input);
      }
      return cache.evaluate(input, evaluate, outcome);
    },
  };
}
