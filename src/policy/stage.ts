/**
 * Stage 3, decide: build the policy input, evaluate, normalize, and enforce what the decision
 * says about the request itself (allow, model, max_tokens). Secrets and redaction are enforced
 * by their own stages from `ctx.decision`.
 */
import { randomUUID } from 'node:crypto';
import { WardenError } from '../pipeline/errors.js';
import type { PolicyEngine } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import { normalizeDecision } from './decision.js';
import { buildPolicyInput, type PolicyEnvironment } from './input.js';

export interface DecideStageOptions {
  /** Read per request: hot reload swaps the engine. */
  getEngine: () => PolicyEngine;
  environment: PolicyEnvironment;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
}

/** `*` in the decision's models allows any model; otherwise exact names. */
export function modelAllowed(models: readonly string[], model: string): boolean {
  return models.includes(model) || models.includes('*');
}

/**
 * The refusal of a model the decision does not list. A configured model (resolve routed it to a
 * provider) is named; any other name is the caller's data, which may hold anything, so it is
 * neither repeated in the message nor in `details`.
 */
function modelNotAllowed(ctx: RequestContext, decision: { models: readonly string[]; id: string }): WardenError {
  const configured = ctx.provider !== undefined;
  const model = ctx.request.model;
  return new WardenError('model_not_allowed', configured ? `model ${model} is not allowed for this request` : 'the requested model is not allowed for this request', {
    location: { path: 'model' },
    details: { ...(configured ? { model } : {}), allowed: decision.models, decision_id: decision.id },
  });
}

export function createDecideStage(opts: DecideStageOptions): Stage {
  const now = opts.now ?? Date.now;
  return {
    name: 'decide',
    run(ctx: RequestContext) {
      const input = buildPolicyInput(ctx, opts.environment, now());
      ctx.policyInput = input;
      let raw: unknown;
      try {
        raw = opts.getEngine().evaluate(input);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        // The engine's message may name rules and locations; the caller only learns the code.
        throw new WardenError('policy_error', 'policy evaluation failed; the request is denied', {
          details: { code: typeof code === 'string' ? code : 'error' },
          cause: err,
        });
      }
      const decision = normalizeDecision(raw, randomUUID());
      ctx.decision = decision;
      if (!decision.allow) {
        throw new WardenError('policy_denied', `denied by policy: ${decision.reasons.join('; ')}`, {
          details: { reasons: decision.reasons, decision_id: decision.id },
        });
      }
      const req = ctx.request;
      if (req.action !== 'models.list' && !modelAllowed(decision.models, req.model)) throw modelNotAllowed(ctx, decision);
      if (decision.max_tokens !== undefined && (req.max_tokens === undefined || req.max_tokens > decision.max_tokens)) {
        req.max_tokens = decision.max_tokens;
      }
    },
  };
}
