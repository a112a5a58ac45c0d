/**
 * Stage 3, decide: build the policy input, evaluate, normalize, and enforce what the decision
 * says about the request itself (allow, model, max_tokens). Secrets and redaction are enforced
 * by their own stages from `ctx.decision`.
 */
import { randomUUID } from 'node:crypto';
import { boundedStrings, MAX_REASONS_CHARS } from '../pipeline/bounded-strings.js';
import { WardenError } from '../pipeline/errors.js';
import type { PolicyEngine } from '../pipeline/ports.js';
import { modelAllowed } from '../pipeline/model-grant.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import type { RedactionDecision } from '../pipeline/types.js';
import { BUILT_IN_DEFAULT_PROFILE, normalizeDecision, UNNAMED_KEY, type DecisionProblem } from './decision.js';
import { buildPolicyInput, type PolicyEnvironment } from './input.js';

export interface DecideStageOptions {
  /** Read per request: hot reload swaps the engine. */
  getEngine: () => PolicyEngine;
  environment: PolicyEnvironment;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
  /** Config `redaction.default_profile`: the profile of a decision that names none. */
  defaultProfile?: string;
  /** Where a broken decision (undefined, malformed, unknown fields) or a failed evaluation is reported to the operator. */
  logger?: { warn(fields: Record<string, unknown>, message: string): void };
  /** Config `policy.entrypoint`, named in those reports. */
  entrypoint?: string;
  /**
   * Throws the redactor's WardenError (`redaction_failed`) for a redaction it cannot apply (a
   * profile or entity type it does not know). Asked for every allowed call but a models listing,
   * so such a decision fails here, before any secret is read or the prompt rendered, and is
   * reported as a policy problem; the redact stage would refuse it anyway.
   */
  checkRedaction?: (redaction: RedactionDecision) => void;
}

/** Distinct problems reported per policy revision; past this, a revision's further problems stay unlogged. */
const MAX_PROBLEM_REPORTS = 32;

/**
 * An evaluation that failed (conflicting rule values, a built-in error, the budget): the engine's
 * error code and the policy location it names (`file:row:col`), never its message.
 */
interface EvalProblem {
  kind: 'eval_error';
  code: string;
  location: string | undefined;
}

/** A decision the redactor cannot apply: `path` is the field (`redaction.profile`), never the value. */
interface UnknownValueProblem {
  kind: 'unknown_value';
  path: string;
}

type StageProblem = DecisionProblem | EvalProblem | UnknownValueProblem;

function problemMessage(p: StageProblem): string {
  switch (p.kind) {
    case 'unknown_value':
      return `policy decision field "${p.path}" names a value the redactor does not know: calls given this decision fail with redaction_failed`;
    case 'eval_error':
      return `policy evaluation failed (${p.code}${p.location === undefined ? '' : ` at ${p.location}`}): calls that meet it are denied with policy_error`;
    case 'undefined':
      return 'policy returned no decision (entrypoint undefined): every call is denied';
    case 'not_object':
      return 'policy decision is not an object: every call is denied';
    case 'malformed':
      return `policy decision field "${p.path}" is malformed: calls given this decision are denied`;
    case 'unknown_field':
      if (p.path.endsWith(UNNAMED_KEY)) {
        const where = p.path.slice(0, -UNNAMED_KEY.length - 1);
        return `policy decision${where ? ` field "${where}"` : ''} has a key that is not a decision field and is ignored (not named: it is no near miss of a field name, and may be built from input)`;
      }
      return `policy decision field "${p.path}" is not a decision field and is ignored (a typo?)`;
  }
}

/**
 * A sink that logs each distinct problem once per policy revision. The deny itself already fails
 * closed; the log line is what tells an operator a policy bug from ordinary denies. It names the
 * problem and the field path (or the engine's error code and policy location) only, never input
 * values (the decision's values, and an engine message, may be derived from them), and at most
 * MAX_PROBLEM_REPORTS lines per revision. A key could be made from input: one that is no near
 * miss of a field name is not named (decision.ts), so all such keys of an object are one problem,
 * one line.
 */
function problemReporter(opts: DecideStageOptions): (revision: string) => ((problem: StageProblem) => void) | undefined {
  const logger = opts.logger;
  if (!logger) return () => undefined;
  let revision: string | undefined;
  const seen = new Set<string>();
  let sink: (problem: StageProblem) => void = () => {};
  return (current) => {
    if (current !== revision) {
      revision = current;
      seen.clear();
      sink = (p) => {
        const key = p.kind === 'eval_error' ? `${p.kind}\0${p.code}\0${p.location ?? ''}` : `${p.kind}\0${p.path}`;
        if (seen.has(key) || seen.size >= MAX_PROBLEM_REPORTS) return;
        seen.add(key);
        const fields: Record<string, unknown> = { policy_revision: current, problem: p.kind };
        if (p.kind === 'eval_error') {
          fields.code = p.code;
          if (p.location !== undefined) fields.location = p.location;
        } else if (p.path !== '') fields.field = p.path;
        if (opts.entrypoint !== undefined) fields.entrypoint = opts.entrypoint;
        logger.warn(fields, problemMessage(p));
      };
    }
    return sink;
  };
}

/** `file:row:col` of an engine error's location (`file` alone for row 0), if it has one of that shape. */
function errorLocation(err: unknown): string | undefined {
  const loc = (err as { location?: unknown }).location;
  if (loc === null || typeof loc !== 'object') return undefined;
  const { file, row, col } = loc as { file?: unknown; row?: unknown; col?: unknown };
  if (typeof file !== 'string' || typeof row !== 'number' || typeof col !== 'number') return undefined;
  return row > 0 ? `${file}:${row}:${col}` : file;
}

/** How the redactor's errors name a decision field (`decision.redaction.profile`). */
const DECISION_PREFIX = 'decision.';

/**
 * The refusal of a model the decision does not list. The same words and details whether the
 * model is configured or not: naming a configured one (and only it) would tell a caller which
 * models exist that it may not use, which `GET /v1/models/{id}` hides on purpose (404 either
 * way). The caller knows what it asked for; the name is also the caller's data, which may hold
 * anything. The audit record still names a configured model for the operator.
 */
function modelNotAllowed(decision: { models: readonly string[]; id: string }): WardenError {
  return new WardenError('model_not_allowed', 'the requested model is not allowed for this request', {
    location: { path: 'model' },
    details: {
      // The policy's list, bounded as its reasons are (a list of every model of a large data set).
      allowed: boundedStrings(decision.models, MAX_REASONS_CHARS, (rest) => `(${rest} more model(s) not shown: an error keeps ${MAX_REASONS_CHARS} characters of models)`),
      decision_id: decision.id,
    },
  });
}

export function createDecideStage(opts: DecideStageOptions): Stage {
  const now = opts.now ?? Date.now;
  const defaultProfile = opts.defaultProfile ?? BUILT_IN_DEFAULT_PROFILE;
  const reporterFor = problemReporter(opts);
  const checkRedaction = opts.checkRedaction;
  return {
    name: 'decide',
    run(ctx: RequestContext) {
      const input = buildPolicyInput(ctx, opts.environment, now());
      ctx.policyInput = input;
      const engine = opts.getEngine();
      ctx.policyRevision = engine.revision;
      let raw: unknown;
      try {
        raw = engine.evaluate(input);
      } catch (err) {
        const errCode = (err as { code?: unknown }).code;
        const code = typeof errCode === 'string' ? errCode : 'error';
        // The operator hears of it (once per revision, code and location); the caller only
        // learns the code: the engine's message and location name the policy's rules.
        reporterFor(engine.revision)?.({ kind: 'eval_error', code, location: errorLocation(err) });
        throw new WardenError('policy_error', 'policy evaluation failed; the request is denied', {
          details: { code },
          cause: err,
        });
      }
      const decision = normalizeDecision(raw, randomUUID(), defaultProfile, reporterFor(engine.revision));
      ctx.decision = decision;
      if (!decision.allow) {
        // Bounded as the record's are: a rule with one reason per data entry would make a body of megabytes.
        const reasons = boundedStrings(decision.reasons, MAX_REASONS_CHARS, (rest) => `(${rest} more reason(s) not shown: an error keeps ${MAX_REASONS_CHARS} characters of reasons)`);
        throw new WardenError('policy_denied', `denied by policy: ${reasons.join('; ')}`, {
          details: { reasons, decision_id: decision.id },
        });
      }
      const req = ctx.request;
      if (req.action !== 'models.list' && !modelAllowed(decision.models, req.model)) throw modelNotAllowed(decision);
      if (decision.max_tokens !== undefined && (req.max_tokens === undefined || req.max_tokens > decision.max_tokens)) {
        req.max_tokens = decision.max_tokens;
      }
      if (checkRedaction !== undefined && req.action !== 'models.list') {
        try {
          checkRedaction(decision.redaction);
        } catch (err) {
          const path = (err as { location?: { path?: unknown } }).location?.path;
          if (typeof path === 'string' && path.startsWith(DECISION_PREFIX)) {
            reporterFor(engine.revision)?.({ kind: 'unknown_value', path: path.slice(DECISION_PREFIX.length) });
          }
          throw err;
        }
      }
    },
  };
}
