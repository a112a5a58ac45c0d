/**
 * `input.request.params`: the call's pass-through parameters (everything it sends upstream besides
 * the model, the prompt, the stream flag, the token limit and the tools) as the policy sees them.
 * A policy can then write "a restricted prompt is never stored by the provider" (`store`), cap
 * `n`, or keep `service_tier: "priority"` to some callers.
 *
 * The input is built from names and metadata, never from the caller's text (README, "The input"),
 * so a value is given only where it cannot be text:
 * - `true`, `false`, a number or `null`: as sent;
 * - a string: as sent for the parameters whose documented values are a short list of words
 *   (ENUM_PARAMS), when it looks like one; any other string (a `user` id, a `stop` sequence, a
 *   `prompt_cache_key`) is given as `"string"`;
 * - an object or an array (`metadata`, `response_format`, `web_search_options`, `stop` as a
 *   list): `"object"` or `"array"`.
 * So a policy can test that a parameter is present (`input.request.params.web_search_options`)
 * and read the settings it can act on, and no value the caller wrote as text reaches the policy,
 * the decision cache's keys, or a reason built from the input.
 *
 * Names: a parameter whose name is not parameter-like (letters, digits and `_`, starting with a
 * letter or `_`, at most 64 characters; ingress passes such names upstream, redacted) is not
 * named, since its name is the caller's text: all of them together are the member `"*"`, their
 * count. A policy that allows a list of parameters sees `"*"` as one it does not allow.
 */

/** Parameters whose documented values are a few words; given as sent when they are one. */
const ENUM_PARAMS = new Set(['service_tier', 'reasoning_effort', 'verbosity', 'tool_choice', 'prompt_cache_retention']);

/** A word such as OpenAI's enumerations use (`auto`, `flex`, `24h`, `required`). */
const ENUM_WORD = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** A parameter-like name, as the ingress names parameters back in errors. */
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The member under which parameters with other names are counted. */
export const UNNAMED_PARAMS = '*';

export type ParamSummary = boolean | number | null | string;

/** What a call without pass-through parameters gives: shared, frozen (no object per request). */
export const NO_PARAMS: Readonly<Record<string, ParamSummary>> = Object.freeze({});

function summary(name: string, v: unknown): ParamSummary {
  if (v === null || typeof v === 'boolean') return v;
  // A number JSON parsing made is finite; anything else is not a value the policy could compare.
  if (typeof v === 'number') return Number.isFinite(v) ? v : 'number';
  if (typeof v === 'string') return ENUM_PARAMS.has(name) && ENUM_WORD.test(v) ? v : 'string';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** The policy's view of `params` (see the file comment); NO_PARAMS when there are none. */
export function paramsInput(params: Readonly<Record<string, unknown>>): Readonly<Record<string, ParamSummary>> {
  let out: Record<string, ParamSummary> | undefined;
  let unnamed = 0;
  for (const name in params) {
    if (!Object.hasOwn(params, name)) continue;
    const v = params[name];
    // An undefined member is not sent (JSON drops it): not a parameter of the call.
    if (v === undefined) continue;
    out ??= {};
    // `__proto__` is parameter-shaped, but set on `out` it would replace its prototype.
    if (PARAM_NAME.test(name) && name !== '__proto__') out[name] = summary(name, v);
    else unnamed++;
  }
  if (out === undefined) return NO_PARAMS;
  if (unnamed > 0) out[UNNAMED_PARAMS] = unnamed;
  return out;
}
