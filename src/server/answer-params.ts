/**
 * Pass-through parameters that ask for a part of the answer Warden does not carry back. Warden
 * passes on only the answer fields it checks and redacts (content, tool calls, refusal, finish
 * reason, usage: see providers/validate.ts); a caller that asks for log probabilities, audio
 * output or a legacy `function_call` would get an answer with that part silently missing
 * (`logprobs: null`, `content: null` and no audio, `finish_reason: "function_call"` and no call),
 * after the upstream was paid for it. Such a request is refused before it goes anywhere, naming
 * the parameter. Only `logprobs: false`, `modalities: ["text"]` and null pass: other values that
 * ask for nothing in effect (`top_logprobs: 0`, `functions: []`) are refused too, as the simpler
 * rule to state (an upstream may refuse them anyway).
 *
 * On the request path: a few property reads of the params object, no allocation.
 */
import { WardenError } from '../pipeline/errors.js';

function refuse(prefix: string, key: string, why: string): WardenError {
  const path = `${prefix}${key}`;
  return new WardenError('invalid_request', `field '${path}' asks for ${why}`, { location: { path } });
}

const isNone = (v: unknown): boolean => v === undefined || v === null;

/** Only text output: absent, null, or a list holding nothing but `"text"`. */
function textOnly(v: unknown): boolean {
  if (isNone(v)) return true;
  if (!Array.isArray(v)) return false;
  for (const m of v) if (m !== 'text') return false;
  return true;
}

/**
 * Throws `invalid_request` for a parameter asking for an answer part Warden does not carry.
 * `prefix` is where the parameters sit in the caller's request (`''` on HTTP, `params_json.` on gRPC).
 */
export function checkAnswerParams(params: Readonly<Record<string, unknown>>, prefix: string): void {
  const logprobs = params['logprobs'];
  if (!isNone(logprobs) && logprobs !== false) {
    throw refuse(prefix, 'logprobs', "log probabilities, which Warden does not pass on (they are model output it does not redact): the answer's logprobs is always null");
  }
  if (!isNone(params['top_logprobs'])) {
    throw refuse(prefix, 'top_logprobs', "log probabilities, which Warden does not pass on (they are model output it does not redact): the answer's logprobs is always null");
  }
  if (!isNone(params['audio'])) {
    throw refuse(prefix, 'audio', 'audio output, which Warden does not pass on (it cannot redact it): ask for text');
  }
  if (!textOnly(params['modalities'])) {
    throw refuse(prefix, 'modalities', 'an output other than text, which Warden does not pass on (it cannot redact it): ask for ["text"]');
  }
  if (!isNone(params['functions'])) {
    throw refuse(prefix, 'functions', "legacy function calling, whose answer (message.function_call) Warden does not pass on: declare them as 'tools'");
  }
  if (!isNone(params['function_call'])) {
    throw refuse(prefix, 'function_call', "legacy function calling, whose answer (message.function_call) Warden does not pass on: use 'tool_choice'");
  }
}
