/**
 * The work meter: what keeps one built-in call (or one deep comparison, key or serialization)
 * inside the evaluation's deadline. The evaluator counts steps (topdown/context.ts `tick`), but
 * a single step may call a built-in over a huge value — `product` of a million numbers,
 * `json.marshal` of an array holding the same large array 100,000 times — so the code that
 * traverses or builds values in proportion to their size charges `work(units)` as it goes
 * (one unit ≈ one value visited or built, or a few dozen characters copied). Every
 * WORK_CHUNK units the clock is read; past the deadline of the evaluation running now, the
 * charge throws `eval_budget_exceeded`.
 *
 * The meter is module state rather than a parameter because value.ts (keys, ordering,
 * equality, JSON text) is called from everywhere, and evaluation is synchronous: `metered`
 * installs an evaluation's deadline for exactly the duration of the call and restores the
 * previous one after (so nesting is fine). Outside an evaluation (compile time, tests) the
 * deadline is infinite and charges never throw.
 *
 * Sizes are capped separately (MAX_RESULT_*; topdown/plan.ts `invokeBuiltin` and the
 * serializers), so that memory, not only time, stays bounded.
 */
import { RegoError } from './errors.js';

/** Units between two reads of the clock (≈ 0.1–1 ms of work). */
export const WORK_CHUNK = 1 << 14;

/** A built-in's result may hold at most this many elements (arrays, sets, non-string-keyed objects). */
export const MAX_RESULT_ELEMENTS = 1 << 21;
/** A built-in's string result (and any serialization) may be at most this many UTF-16 units. */
export const MAX_RESULT_STRING = 1 << 24;

let credit = WORK_CHUNK;
let deadline = Infinity;

export function budgetExceeded(what: string): RegoError {
  return new RegoError('eval_budget_exceeded', `evaluation budget exceeded: ${what}`);
}

/** Charges `units` of work; reads the clock once per WORK_CHUNK units. */
export function work(units: number): void {
  if ((credit -= units) <= 0) overdrawn();
}

function overdrawn(): void {
  credit = WORK_CHUNK;
  if (Date.now() > deadline) throw budgetExceeded('deadline passed');
}

/** Throws `eval_budget_exceeded` for a string longer than MAX_RESULT_STRING (`what` names the producer). */
export function checkStringSize(n: number, what: string): void {
  if (n > MAX_RESULT_STRING) throw budgetExceeded(`${what}: string of more than ${MAX_RESULT_STRING} characters`);
}

/** Throws `eval_budget_exceeded` for a collection of more than MAX_RESULT_ELEMENTS elements. */
export function checkElements(n: number, what: string): void {
  if (n > MAX_RESULT_ELEMENTS) throw budgetExceeded(`${what}: more than ${MAX_RESULT_ELEMENTS} elements`);
}

/** Runs `fn` with `until` (a Date.now() value) as the deadline that `work` enforces. */
export function metered<T>(until: number, fn: () => T): T {
  const prev = deadline;
  deadline = until;
  credit = WORK_CHUNK;
  try {
    return fn();
  } finally {
    deadline = prev;
  }
}

/**
 * A RangeError message that means a resource ran out (stack, string, array or BigInt size; V8's
 * wording), not a bad operand. Plain string tests, no regex: this runs right after a stack
 * overflow, where compiling a regex can overflow again.
 */
export function exhaustion(message: string): boolean {
  return (
    message.includes('call stack') ||
    message.includes('Invalid string length') ||
    message.includes('Invalid array length') ||
    message.includes('Invalid typed array length') ||
    message.includes('Maximum BigInt') ||
    message.includes('allocation failed')
  );
}

/**
 * For built-ins that answer `false` or undefined on a failure of their own (`json.is_valid`,
 * `yaml.unmarshal`, ...): errors that are not about the operand — the budget ran out, resources
 * were exhausted — are rethrown, so that they end the evaluation instead of becoming an answer
 * (a decision cached as if the document were merely invalid).
 */
export function rethrowFatal(e: unknown): void {
  if (e instanceof RegoError) throw e;
  if (e instanceof RangeError && exhaustion(e.message)) throw e;
}
