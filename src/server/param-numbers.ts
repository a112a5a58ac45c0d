/**
 * Numbers in pass-through parameters (and tool schemas) that Warden cannot pass on as the caller
 * wrote them. A JSON
 * body (HTTP, gRPC's `params_json`) is parsed into doubles: an integer past ±(2^53 − 1) is rounded
 * (a `seed` of 12345678901234567890 would go upstream as 12345678901234567000), and one past the
 * double range is Infinity, which JSON.stringify writes as `null`. Either would change the call
 * without a word, so it is refused, naming the parameter only (a member's name inside it is the
 * caller's text). Template variables have the same rule (`variable_invalid`).
 *
 * On the request path: one walk over the parameters' values (nothing for a call without any), no
 * allocation unless one is refused.
 */
import { WardenError } from '../pipeline/errors.js';
import { MEMBER_NAME, UNNAMED_MEMBER } from '../pipeline/identifiers.js';

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
 * Throws `invalid_request` for a parameter that holds a number Warden would not pass on exactly.
 * `prefix` is where the parameters sit in the caller's request (`''` on HTTP, `params_json.` on gRPC).
 */
export function checkParamNumbers(params: Readonly<Record<string, unknown>>, prefix: string): void {
  for (const key in params) {
    if (!Object.hasOwn(params, key)) continue;
    const why = inexactNumber(params[key]);
    if (why === undefined) continue;
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
