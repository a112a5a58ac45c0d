/**
 * Stage 6 (redact) and stage 8 (respond): thin adapters from the pipeline context to the
 * Redactor port. The engine (detectors, modes, streaming hold-back, leak guard) lives in the
 * rest of this folder; these stages only decide what it is given and where its output goes.
 */
import { WardenError } from '../pipeline/errors.js';
import type { Redactor } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import type { CompletionResult } from '../pipeline/types.js';
import { failedGeneration, isFailedFinish } from '../pipeline/failed-finish.js';

const NONE: readonly string[] = [];

/**
 * Secret values the leak guard must stop in the prompt: every secret resolved for this request
 * except those the template placed in the prompt on purpose (their refs are in
 * `secretsInPrompt`). In the answer it masks them all: the model may repeat what it was given,
 * and the calling app never holds the secrets Warden fetched for it.
 */
function guardedSecrets(ctx: RequestContext): { prompt: readonly string[]; answer: readonly string[] } {
  if (!ctx.secrets || ctx.secrets.size === 0) return { prompt: NONE, answer: NONE };
  const all = [...ctx.secrets.values()];
  const placed = ctx.secretsInPrompt;
  if (!placed || placed.size === 0) return { prompt: all, answer: all };
  const prompt: string[] = [];
  for (const [ref, value] of ctx.secrets) if (!placed.has(ref)) prompt.push(value);
  return { prompt, answer: all };
}

export function createRedactStage(getRedactor: () => Redactor): Stage {
  return {
    name: 'redact',
    run(ctx: RequestContext) {
      const { decision, messages } = ctx;
      // Fail closed: without a decision and a rendered prompt there is nothing safe to send.
      if (!decision || !messages) throw new WardenError('internal', 'internal error');
      const secrets = guardedSecrets(ctx);
      const session = getRedactor().session(decision.redaction, secrets.prompt, secrets.answer);
      ctx.redaction = session;
      ctx.outbound = session.redactMessages(messages, ctx.renderProvenance);
      // Tool definitions leave the pod too: their descriptions and schemas are redacted the same way.
      const tools = ctx.request.tools;
      if (tools && tools.length > 0) ctx.outboundTools = session.redactTools(tools);
      // So do the pass-through parameters: `user`, `metadata` or `prediction` can carry PII.
      const params = ctx.request.params;
      if (Object.keys(params).length > 0) ctx.outboundParams = session.redactParams(params);
    },
  };
}

export function createRespondStage(): Stage {
  return {
    name: 'respond',
    run(ctx: RequestContext) {
      const { response, redaction } = ctx;
      if (!response || !redaction) throw new WardenError('internal', 'internal error');
      if (response.kind === 'complete') {
        if (ctx.request.failedFinishIsError === true) refuseFailedGeneration(ctx, response.result);
        ctx.response = { kind: 'complete', result: redaction.processCompletion(response.result, ctx.request.stopSequences) };
      } else if (response.kind === 'stream') {
        ctx.response = { kind: 'stream', chunks: redaction.processStream(response.chunks, ctx.request.sequentialStream === true, ctx.request.stopSequences) };
      }
    },
  };
}

/**
 * Throws `upstream_error` when a choice's generation failed upstream (see
 * PromptRequest.failedFinishIsError). The usage goes in the record first: the upstream answered,
 * and what it counted was paid for.
 */
function refuseFailedGeneration(ctx: RequestContext, result: CompletionResult): void {
  const failed = result.choices.find((c) => isFailedFinish(c.finish_reason));
  if (failed === undefined) return;
  if (result.usage) ctx.usage = result.usage;
  throw failedGeneration(failed.finish_reason!);
}
