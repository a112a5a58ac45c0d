import { BUILTINS, builtinContext } from '../../../../src/policy/rego/builtins/index.js';
import { BuiltinError } from '../../../../src/policy/rego/builtins/types.js';
import type { Value } from '../../../../src/policy/rego/value.js';

export const ctx = builtinContext(1_700_000_000_000_000_000n);

/** Calls a built-in by name the way the evaluator does. */
export function call(name: string, ...args: Value[]): Value | undefined {
  const d = BUILTINS.get(name);
  if (!d) throw new Error(`no built-in ${name}`);
  if (d.arity !== args.length) throw new Error(`${name} takes ${d.arity} arguments, got ${args.length}`);
  return d.fn(args, ctx);
}

/** The BuiltinError a call raises (fails the test when it does not raise one). */
export function callError(name: string, ...args: Value[]): BuiltinError {
  try {
    call(name, ...args);
  } catch (e) {
    if (e instanceof BuiltinError) return e;
    throw e;
  }
  throw new Error(`${name} did not raise`);
}
