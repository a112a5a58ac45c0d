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
 * Errors a built-in raises. `code` follows OPA: `eval_type_error` for operand type errors
 * (always raised), `eval_builtin_error` for other failures (raised only in strict mode or
 * where OPA always raises; otherwise the expression is undefined).
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
