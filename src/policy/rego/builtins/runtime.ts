/**
 * Built-ins that reach outside the policy. Warden decides on the hot path from the input
 * alone, so these never do I/O: `opa.runtime()` reports nothing (no environment variables or
 * config can leak into a decision), and `http.send` exists only so that policy tests can mock
 * it with `with http.send as …` as OPA's documentation teaches. Called for real it ends the
 * whole evaluation with an error (the sidecar's `policy_error`, a deny), in every mode: a
 * built-in error would leave the call undefined outside strict mode, and `not blocked` over an
 * undefined risk check is an allow (fail open); nor can it answer as OPA does with
 * `raise_error: false`, since a made-up response is a result the policy would act on.
 *
 * Checked when called rather than refused at compile time: the same modules hold the rules
 * that call it and the tests that mock it (`warden policy test`), and a call in a branch the
 * input never reaches is harmless.
 */
import type { BuiltinDef } from './types.js';
import { RegoError } from '../errors.js';
import { def, str } from './util.js';

export const RUNTIME: BuiltinDef[] = [
  def('opa.runtime', 0, () => ({}), true),
  // Never folded at compile time: a policy that calls it must compile, and fail (deny) when run.
  // A RegoError, not a BuiltinError: raised in every mode (the evaluator adds the location).
  def(
    'http.send',
    1,
    () => {
      throw new RegoError('eval_builtin_error', 'http.send: network calls are disabled in Warden policies (mock http.send with `with` in tests)');
    },
    true,
  ),
  // `trace(note)` is true; Warden keeps no explanation trace, so the note goes nowhere.
  def('trace', 1, (args) => {
    str('trace', args, 0);
    return true;
  }),
];
