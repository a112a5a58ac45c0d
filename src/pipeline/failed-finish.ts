/**
 * An upstream generation that says it failed (its finish reason), shared by the respond stage
 * (redact/stage.ts) and the Anthropic ingress, which cannot say so in Anthropic's stop_reason.
 * Here in pipeline/, not in providers/, as stages and ingress share only what pipeline/ holds.
 */
import { WardenError } from './errors.js';

/**
 * The finish reasons of a generation the upstream itself says failed: Mistral's `error`, vLLM's
 * `abort` (the request was aborted server-side). What came before them is an incomplete answer.
 */
const FAILED_FINISHES: ReadonlySet<string> = new Set(['error', 'abort']);

/** Whether `finish` says the upstream's generation failed (see FAILED_FINISHES). */
export function isFailedFinish(finish: string | null | undefined): finish is string {
  return finish !== null && finish !== undefined && FAILED_FINISHES.has(finish);
}

/**
 * The refusal of an answer whose generation the upstream says failed, for a caller whose format
 * cannot say so (Anthropic's stop_reason has no such value: `end_turn` would read as complete).
 * The reason is one of FAILED_FINISHES, never the upstream's free text, so it may be quoted.
 */
export function failedGeneration(finish: string): WardenError {
  return new WardenError('upstream_error', `the upstream reported that its generation failed (finish_reason "${finish}"), so its answer is incomplete`, {
    details: { finish_reason: finish },
  });
}
