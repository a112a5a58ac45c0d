/**
 * The contract between the evaluator (topdown/) and built-in functions (builtins/).
 * The evaluator looks a built-in up by its full dotted name (`count`, `strings.replace_n`,
 * `plus` for `+`), checks arity at compile time, and calls `fn` with evaluated arguments.
 */
import type { Value } from '../value.js';

export interface BuiltinContext {
  /** `time.now_ns()` is fixed for a whole query, as in OPA. */
  readonly nowNs: bigint;
  /** Strict mode: built-in errors are raised instead of making the expression undefined. */
  readonly strict: boolean;
  /** Per-query cache for compiled regexes, parsed JWKS, etc. */
  readonly cache: Map<string, unknown>;
}

/**
 * Errors a built-in raises. `code` follows OPA: `eval_type_error` for operand type errors,
 * `eval_builtin_error` for other failures. What happens to them is the evaluator's rule
 * (topdown/plan.ts `invokeBuiltin`), the same for both codes, as in OPA's topdown:
 *  - by default the call is undefined (so the expression fails and evaluation goes on, e.g.
 *    `count(1)` or `to_number("x")` make their rule undefined, and a default value applies);
 *  - in strict mode (`EvalOptions.strictBuiltinErrors`, `warden policy eval --strict`) the
 *    error is raised as a RegoError with this code and the call's location.
 * Only errors that are not BuiltinErrors are raised in both modes: a RegoError a built-in
 * throws on purpose (the work meter's `eval_budget_exceeded`, meter.ts), a RangeError that
 * means exhaustion (stack, string or array length: `eval_budget_exceeded`), anything else
 * (`eval_internal_error`); other RangeErrors count as built-in errors. Built-ins that traverse
 * or build values in proportion to their size charge `work()` as they go and respect the
 * result caps (meter.ts). Messages must never include operand values (they may be secrets).
 */
export class BuiltinError extends Error {
  constructor(
    readonly code: 'eval_type_error' | 'eval_builtin_error',
    message: string,
  ) {
    super(message);
    this.name = 'BuiltinError';
  }
}

export interface BuiltinDef {
  /** Full dotted name as written in Rego, e.g. `strings.replace_n`. */
  readonly name: string;
  /** Number of arguments (not counting the output). */
  readonly arity: number;
  /** Set for `time.now_ns`, `rand.*`: never folded at compile time. */
  readonly nondeterministic?: boolean;
  /**
   * Returns the result, or `undefined` when the call is undefined (e.g. `to_number("x")` is an
   * error in OPA; see each built-in's doc). Throw BuiltinError for errors.
   */
  readonly fn: (args: Value[], ctx: BuiltinContext) => Value | undefined;
}
