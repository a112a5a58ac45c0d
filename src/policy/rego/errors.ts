/**
 * The Rego engine's error: one class for parse, compile and evaluation failures, with OPA's
 * error codes where OPA has one, so that `warden policy eval` output and the compliance cases'
 * `want_error_code` line up with OPA. The policy layer maps any RegoError to Warden's
 * `policy_error` (and the request to a deny).
 *
 * Messages name rules, built-ins, types and locations — never input or data values, which may
 * hold secrets or PII.
 */
import type { Location } from './ast/nodes.js';

export const REGO_ERROR_CODES = [
  // ast: parse and compile (OPA ast.ParseErr, CompileErr, TypeErr, UnsafeVarErr, RecursionErr)
  'rego_parse_error',
  'rego_compile_error',
  'rego_type_error',
  'rego_unsafe_var_error',
  'rego_recursion_error',
  // topdown: evaluation (OPA topdown error codes)
  'eval_conflict_error',
  'eval_type_error',
  'eval_builtin_error',
  'eval_with_merge_error',
  'eval_cancel_error',
  'eval_internal_error',
  // Warden's own limits (OPA has no equivalent): step/time budget, nesting depth, input size.
  'eval_budget_exceeded',
  'eval_depth_exceeded',
  'eval_input_too_large',
] as const;

export type RegoErrorCode = (typeof REGO_ERROR_CODES)[number];

export class RegoError extends Error {
  readonly code: RegoErrorCode;
  readonly location: Location | undefined;

  constructor(code: RegoErrorCode, message: string, location?: Location, opts?: { cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RegoError';
    this.code = code;
    this.location = location;
  }

  /** `file:row:col: code: message` (or `code: message` when there is no location). */
  override toString(): string {
    return formatRegoError(this.code, this.message, this.location);
  }
}

/**
 * A location naming a file as a whole (a data file that does not merge, a path that is missing):
 * row 0, printed as the file name alone.
 */
export function fileLocation(file: string): Location {
  return { file, row: 0, col: 0 };
}

export function formatLocation(loc: Location | undefined): string {
  if (!loc) return '';
  return loc.row > 0 ? `${loc.file}:${loc.row}:${loc.col}` : loc.file;
}

export function formatRegoError(code: string, message: string, loc: Location | undefined): string {
  const where = formatLocation(loc);
  return where ? `${where}: ${code}: ${message}` : `${code}: ${message}`;
}
