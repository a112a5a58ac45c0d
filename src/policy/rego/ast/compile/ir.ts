/**
 * The compiler's intermediate form: the AST with every name resolved. Rule names, imports and
 * package-relative refs become absolute `data` refs, built-in calls carry their definition,
 * locals carry a scope-unique name, and ground composites are folded into constants. Safety
 * analysis (safety.ts) reorders IR bodies; the planner (topdown/plan.ts) turns IR into closures.
 */
import type { Location } from '../nodes.js';
import type { BuiltinDef } from '../../builtins/types.js';
import type { Value } from '../../value.js';

export type ITerm =
  | { t: 'const'; v: Value; loc: Location }
  | { t: 'local'; name: string; wildcard: boolean; loc: Location }
  | { t: 'input'; loc: Location }
  /** An absolute data ref; `path` are the terms after `data` (may be empty: `data` itself). */
  | { t: 'data'; path: ITerm[]; loc: Location }
  /** A ref whose head is a local, `input`, a composite or a call. */
  | { t: 'ref'; head: ITerm; path: ITerm[]; loc: Location }
  | { t: 'array'; items: ITerm[]; loc: Location }
  | { t: 'object'; entries: Array<[ITerm, ITerm]>; loc: Location }
  | { t: 'set'; items: ITerm[]; loc: Location }
  | { t: 'call'; fn: FnTarget; args: ITerm[]; loc: Location }
  | { t: 'member'; key?: ITerm; value: ITerm; coll: ITerm; loc: Location }
  | { t: 'arraycomp'; term: ITerm; body: IExpr[]; locals: Set<string>; loc: Location }
  | { t: 'setcomp'; term: ITerm; body: IExpr[]; locals: Set<string>; loc: Location }
  | { t: 'objectcomp'; key: ITerm; value: ITerm; body: IExpr[]; locals: Set<string>; loc: Location };

/**
 * What a call calls: a built-in by name, a user function at a data path, or a relation — a
 * built-in with many results (`walk`), which the evaluator enumerates like a generator.
 */
export type FnTarget =
  | { kind: 'builtin'; name: string; def: BuiltinDef }
  | { kind: 'user'; path: string[]; name: string }
  | { kind: 'relation'; name: RelationName };

/** Relations: built-ins that yield many results, by name → number of arguments (not the output). */
export const RELATIONS = { walk: 1 } as const;
export type RelationName = keyof typeof RELATIONS;

export function isRelation(name: string): name is RelationName {
  return Object.prototype.hasOwnProperty.call(RELATIONS, name);
}

/** A `with` target: input (with a path below it), a data path, or a function/built-in to mock. */
export type WithTarget =
  | { kind: 'input'; path: string[] }
  | { kind: 'data'; path: string[] }
  | { kind: 'fn'; name: string };

export interface IWith {
  target: WithTarget;
  value: ITerm;
  /** Set when the value names a function or built-in (`with count as f`): a replacement. */
  fnValue?: FnTarget;
  loc: Location;
}

interface IExprBase {
  negated: boolean;
  with: IWith[];
  loc: Location;
}

export type IExpr =
  | (IExprBase & { k: 'term'; term: ITerm })
  | (IExprBase & { k: 'unify'; left: ITerm; right: ITerm })
  | (IExprBase & { k: 'somein'; key?: ITerm; value: ITerm; coll: ITerm })
  | (IExprBase & { k: 'every'; key?: ITerm; value: ITerm; domain: ITerm; body: IExpr[]; locals: Set<string> })
  /**
   * `print(a, b, …)`: always holds; with a print hook, writes a line per combination of the
   * operands' values (an undefined operand prints `<undefined>`), as OPA.
   */
  | (IExprBase & { k: 'print'; args: ITerm[] })
  /** `not { … }`: a nested conjunction (always negated). */
  | (IExprBase & { k: 'body'; body: IExpr[]; locals: Set<string> });
