/**
 * Built-ins that reach outside the policy. Warden decides on the hot path from the input
 * alone, so these never do I/O: `opa.runtime()` reports nothing (no environment variables or
 * config can leak into a decision), and `http.send` exists only so that policy tests can mock
 * it with `with http.send as …` as OPA's documentation teaches; called for real it fails, and
 * a failed call leaves the rule undefined, which the default policy turns into a deny.
 */
import type { BuiltinDef } from './types.js';
import { builtinErr, def, str } from './util.js';

export const RUNTIME: BuiltinDef[] = [
  def('opa.runtime', 0, () => ({}), true),
  // Never folded at compile time: a policy that calls it must compile, and fail (deny) when run.
  def(
    'http.send',
    1,
    () => {
      throw builtinErr('http.send', 'network calls are disabled in Warden policies (mock http.send with `with` in tests)');
    },
    true,
  ),
  // `trace(note)` is true; Warden keeps no explanation trace, so the note goes nowhere.
  def('trace', 1, (args) => {
    str('trace', args, 0);
    return true;
  }),
];
