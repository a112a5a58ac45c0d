/**
 * Per-query evaluation state: the input, `with` overrides of data and functions, the virtual
 * document cache, and the budget (steps, deadline, nesting depth) every evaluation carries so
 * that no policy or input can hang or crash the process.
 */
import { budgetExceeded } from '../meter.js';
import type { BuiltinContext } from '../builtins/types.js';
import type { Value } from '../value.js';

/** `with data.a.b as v` overrides, as a tree walked alongside the data tree. */
export interface OverrideTree {
  has: boolean;
  value: Value | undefined;
  children: Map<string, OverrideTree>;
}

/** A `with` replacement of a function or built-in: a value, or another function to call. */
export type Mock = { kind: 'value'; value: Value } | { kind: 'fn'; call: (c: Ctx, args: Value[]) => Value | undefined };

export const DEFAULT_MAX_STEPS = 1_000_000;
export const DEFAULT_DEADLINE_MS = 1_000;
export const DEFAULT_MAX_DEPTH = 2_000;

/** Shared by every context of one query (including those `with` derives). */
export interface Budget {
  steps: number;
  readonly maxSteps: number;
  readonly deadline: number;
  depth: number;
  readonly maxDepth: number;
  readonly bctx: BuiltinContext;
  /** Where `print(…)` lines go; undefined: print evaluates nothing and writes nothing. */
  readonly print: ((line: string) => void) | undefined;
}

export const UNDEF: unique symbol = Symbol('undefined');
export const IN_PROGRESS: unique symbol = Symbol('in-progress');

export class Ctx {
  /** Virtual document values computed in this context, indexed by rule node id. */
  readonly cache: Array<Value | typeof UNDEF | typeof IN_PROGRESS | undefined> = [];

  constructor(
    readonly budget: Budget,
    readonly input: Value | undefined,
    readonly overrides: OverrideTree | undefined,
    readonly mocks: Map<string, Mock> | undefined,
  ) {}
}

export { budgetExceeded };

/** Counts one evaluation step; checks the clock every 1024 steps. */
export function tick(b: Budget): void {
  const s = ++b.steps;
  if (s > b.maxSteps) throw budgetExceeded(`more than ${b.maxSteps} steps`);
  if ((s & 1023) === 0 && Date.now() > b.deadline) throw budgetExceeded('deadline passed');
}

export function enter(b: Budget): void {
  if (++b.depth > b.maxDepth) throw budgetExceeded(`nesting deeper than ${b.maxDepth}`);
}
