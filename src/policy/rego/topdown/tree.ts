/**
 * The rule tree: one node per path under `data` that rules define (packages and ref heads),
 * holding the compiled definitions of the rules at that path. Base documents (JSON/YAML data)
 * are kept apart and merged with the tree when a ref walks both.
 */
import type { Location, RuleKind } from '../ast/nodes.js';
import type { Value } from '../value.js';
import type { Ctx } from './context.js';

export type K = () => boolean;
export type VK = (v: Value) => boolean;
export type Frame = Array<Value | undefined>;
/** Evaluates a term, calling `k` with each value; returns true when `k` asked to stop. */
export type EvalFn = (c: Ctx, f: Frame, k: VK) => boolean;
/** Unifies a term with a value, binding its unbound variables while `k` runs. */
export type MatchFn = (c: Ctx, f: Frame, v: Value, k: K) => boolean;
export type ExprFn = (c: Ctx, f: Frame, k: K) => boolean;

export interface TermPlan {
  readonly eval: EvalFn;
  readonly match: MatchFn;
  /** For terms with at most one value: that value (undefined when undefined), without `k`. */
  readonly single?: (c: Ctx, f: Frame) => Value | undefined;
  /** Slots that must be bound before `eval` may run (else the term is matched as a pattern). */
  readonly inSlots: readonly number[];
  /** Set for constants. */
  readonly constant?: Value;
  readonly composite: 'array' | 'object' | undefined;
  readonly items?: readonly TermPlan[];
  readonly entries?: ReadonlyArray<readonly [TermPlan, TermPlan]>;
}

export interface RulePlan {
  readonly frameSize: number;
  readonly args?: readonly TermPlan[];
  readonly body: ExprFn;
  /** `set` rules: the element. */
  readonly key?: TermPlan;
  /** `object` rules: the head path below the node (keys of the nested object). */
  readonly dyn?: readonly TermPlan[];
  readonly value?: TermPlan;
  /** A multi-value rule with variables in its ref: the object's leaves are sets of `value`. */
  readonly multi?: boolean;
  /** The value is a constant, so one solution per definition is enough. */
  readonly constValue: boolean;
  readonly else?: RulePlan;
  /** A condition every solution needs: `input.<path> == value` (used for rule indexing). */
  readonly guard?: { readonly path: readonly string[]; readonly value: Value };
  readonly loc: Location;
}

/**
 * Rule index of a node with many definitions: the definitions guarded by an equality on one
 * input path, by the guard's value (keyOf), and the others. Only candidates are evaluated.
 */
export interface RuleIndex {
  readonly path: readonly string[];
  readonly byValue: Map<string, RulePlan[]>;
  readonly rest: RulePlan[];
}

export class DocNode {
  /** Index of this node's value in a query's rule-value cache (dense per compiled tree). */
  id = 0;
  readonly children = new Map<string, DocNode>();
  kind: RuleKind | undefined;
  readonly defs: RulePlan[] = [];
  defaultValue: Value | undefined;
  /** A default whose value holds a comprehension (`default p := [x | …]`): evaluated when needed. */
  defaultPlan: RulePlan | undefined;
  index: RuleIndex | undefined;
  arity = -1;

  constructor(
    readonly path: readonly string[],
    readonly name: string,
  ) {}

  child(key: string): DocNode {
    let c = this.children.get(key);
    if (!c) {
      c = new DocNode([...this.path, key], `${this.name}.${key}`);
      this.children.set(key, c);
    }
    return c;
  }
}
