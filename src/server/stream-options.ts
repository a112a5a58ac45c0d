/**
 * `stream_options`, held to the members OpenAI's Chat Completions reference documents:
 * `include_usage` and `include_obfuscation`, each a boolean (or null: unset). The upstream
 * request's stream_options is Warden's own (providers/openai.ts streamOptions): `include_usage`
 * is always asked for (the audit record carries usage), the caller's only says whether the usage
 * chunk is passed on; `include_obfuscation` is forwarded as the caller set it. Any other member
 * (vLLM's `continuous_usage_stats`, a typo) was dropped there without a word, so the call ran
 * without it; it is refused here instead, at its location, before anything goes upstream. The
 * same holds for a call that does not stream (whose stream_options is not sent at all): the
 * parameter is malformed either way.
 *
 * On the request path: one property read when the parameter is absent.
 */
import { WardenError } from '../pipeline/errors.js';
import { checkMembers, type MemberRule } from './members.js';

/** The members forwarded (providers/openai.ts reads the same two). */
const RULE: MemberRule = { what: 'stream_options', carried: ['include_usage', 'include_obfuscation'] };

function invalid(message: string, path: string): WardenError {
  return new WardenError('invalid_request', message, { location: { path } });
}

/**
 * Throws `invalid_request` for a `stream_options` that is not null or an object of the documented
 * members holding booleans. `prefix` is where the parameters sit (`''` on HTTP, `params_json.` on gRPC).
 */
export function checkStreamOptions(params: Readonly<Record<string, unknown>>, prefix: string): void {
  const options = params['stream_options'];
  if (options === undefined || options === null) return;
  const path = `${prefix}stream_options`;
  if (typeof options !== 'object' || Array.isArray(options)) throw invalid(`field '${path}' must be an object (include_usage, include_obfuscation) or null`, path);
  const o = options as Record<string, unknown>;
  checkMembers(o, RULE, path);
  for (const key of RULE.carried) {
    const v = o[key];
    if (v !== undefined && v !== null && typeof v !== 'boolean') throw invalid(`field '${path}.${key}' must be a boolean or null`, `${path}.${key}`);
  }
}
