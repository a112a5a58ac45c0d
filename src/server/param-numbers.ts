/**
 * Numbers in pass-through parameters (and tool schemas) that Warden cannot pass on as the caller
 * wrote them. A JSON
 * body (HTTP, gRPC's `params_json`) is parsed into doubles: an integer past ±(2^53 − 1) is rounded
 * (a `seed` of 12345678901234567890 would go upstream as 12345678901234567000), and one past the
 * double range is Infinity, which JSON.stringify writes as `null`. Either would change the call
 * without a word, so it is refused, naming the parameter only (a member's name inside it is the
 * caller's text). Template variables have the same rule (`variable_invalid`).
 *
 * The same walk holds the parameters OpenAI documents a range for to that range (PARAM_RANGES, the
 * one table for HTTP, `/v1/messages` and gRPC): out of it (`temperature: 7`, `n: 0`) the call is
 * refused at ingress, naming the parameter and the range, rather than shown to the policy (which
 * would judge a value no upstream serves) and refused by the upstream in its own words, or served
 * by a compatible server that accepts nonsense.
 *
 * On the request path: one walk over the parameters' values (nothing for a call without any), one
 * Map lookup per parameter, no allocation unless one is refused.
 */
import { WardenError } from '../pipeline/errors.js';
import { MEMBER_NAME, UNNAMED_MEMBER } from '../pipeline/identifiers.js';

/** A documented range: `expected` says it in the error (`must be a number from 0 to 2`). */
export interface ParamRange {
  integer: boolean;
  min?: number;
  max?: number;
  expected: string;
}

/** Whether the number `v` is in `range` (an integer, when it must be one, that JSON keeps exactly). */
export function inParamRange(v: unknown, range: ParamRange): boolean {
  if (typeof v !== 'number') return false;
  if (range.integer ? !Number.isSafeInteger(v) : !Number.isFinite(v)) return false;
  return (range.min === undefined || v >= range.min) && (range.max === undefined || v <= range.max);
}

const LOGIT_BIAS: ParamRange = { integer: false, min: -100, max: 100, expected: 'an object mapping token ids to numbers from -100 to 100' };
const TOKEN_LIMIT: ParamRange = { integer: true, min: 1, expected: 'a positive integer' };

/**
 * The ranges OpenAI's Chat Completions reference documents for its parameters (`null`, the
 * default, is always accepted). `logit_bias` holds its range for each value. Not here:
 * `top_logprobs` (0–20), refused whatever its value (answer-params.ts); `seed`, any integer
 * (one JSON cannot keep exactly is refused above); parameters with no documented bound.
 */
export const PARAM_RANGES: ReadonlyMap<string, ParamRange> = new Map([
  ['temperature', { integer: false, min: 0, max: 2, expected: 'a number from 0 to 2' }],
  ['top_p', { integer: false, min: 0, max: 1, expected: 'a number from 0 to 1' }],
  ['presence_penalty', { integer: false, min: -2, max: 2, expected: 'a number from -2 to 2' }],
  ['frequency_penalty', { integer: false, min: -2, max: 2, expected: 'a number from -2 to 2' }],
  ['n', { integer: true, min: 1, max: 128, expected: 'an integer from 1 to 128' }],
  ['seed', { integer: true, expected: 'an integer' }],
  ['max_tokens', TOKEN_LIMIT],
  ['max_completion_tokens', TOKEN_LIMIT],
  ['logit_bias', LOGIT_BIAS],
]);

function accepts(v: unknown, range: ParamRange): boolean {
  if (range !== LOGIT_BIAS) return inParamRange(v, range);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  for (const k in v) if (Object.hasOwn(v, k) && !inParamRange((v as Record<string, unknown>)[k], range)) return false;
  return true;
}

/**
 * Throws `invalid_request` at `path` when `value` is out of the documented range of the
 * parameter `key` (see PARAM_RANGES); null, undefined and parameters without a range pass.
 */
export function checkParamRange(key: string, value: unknown, path: string): void {
  if (value === undefined || value === null) return;
  const range = PARAM_RANGES.get(key);
  if (range !== undefined && !accepts(value, range)) throw outOfRange(path, range);
}

function outOfRange(path: string, range: ParamRange): WardenError {
  return new WardenError('invalid_request', `field '${path}' must be ${range.expected}`, { location: { path } });
}

/** Why `v` (a parsed JSON value) holds a number that is not the one the caller wrote; undefined if none. */
function inexactNumber(v: unknown): string | undefined {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return 'a JSON number beyond the range of a double, which would go upstream as null';
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
      return `a JSON number beyond ±${Number.MAX_SAFE_INTEGER}, which JSON parsing cannot keep exactly (it would go upstream rounded)`;
    }
    return undefined;
  }
  if (Array.isArray(v)) {
    for (const item of v) {
      const why = inexactNumber(item);
      if (why !== undefined) return why;
    }
  } else if (v !== null && typeof v === 'object') {
    for (const k in v) {
      if (!Object.hasOwn(v, k)) continue;
      const why = inexactNumber((v as Record<string, unknown>)[k]);
      if (why !== undefined) return why;
    }
  }
  return undefined;
}

/**
 * Throws `invalid_request` for a parameter that holds a number Warden would not pass on exactly,
 * or a value out of its documented range (PARAM_RANGES).
 * `prefix` is where the parameters sit in the caller's request (`''` on HTTP, `params_json.` on gRPC).
 */
export function checkParamNumbers(params: Readonly<Record<string, unknown>>, prefix: string): void {
  for (const key in params) {
    if (!Object.hasOwn(params, key)) continue;
    const value = params[key];
    const why = inexactNumber(value);
    if (why === undefined) {
      const range = PARAM_RANGES.get(key);
      // A key in the table is a parameter name: the path is safe to show.
      if (range !== undefined && value !== null && !accepts(value, range)) throw outOfRange(`${prefix}${key}`, range);
      continue;
    }
    if (MEMBER_NAME.test(key)) {
      const path = `${prefix}${key}`;
      throw new WardenError('invalid_request', `field '${path}' holds ${why}`, { location: { path } });
    }
    const at = prefix === '' ? '$' : prefix.slice(0, -1);
    throw new WardenError('invalid_request', `the request has ${UNNAMED_MEMBER} that holds ${why}`, { location: { path: at } });
  }
}

/**
 * Throws `invalid_request` at `path` (a location Warden names itself, such as
 * `tools.0.function.parameters`) when `value` holds a number Warden would not pass on exactly.
 */
export function checkExactNumbers(value: unknown, path: string): void {
  const why = inexactNumber(value);
  if (why !== undefined) throw new WardenError('invalid_request', `field '${path}' holds ${why}`, { location: { path } });
}
