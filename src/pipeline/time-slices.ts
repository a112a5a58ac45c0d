/**
 * Long CPU work done off the request path but on its thread (parsing and compiling a policy or
 * template set on a hot reload) is written once, as a generator that yields wherever it may
 * pause, and run one of two ways: at once (`runSteps`: the CLI, tests), or a slice at a time
 * (`runStepsYielding`: a load in a serving process), giving the event loop a turn whenever a slice
 * has been used, so requests, probes and the load's own deadline are not held for the whole of it,
 * and stopping at its next turn once its AbortSignal is aborted (the deadline gave up on it).
 */

/** Work that pauses (yields) between steps and returns its result. */
export type Steps<T> = Generator<void, T, void>;

/**
 * The most a load runs without giving the event loop a turn. One step (a rule, a document, a
 * thousand tokens) takes well under a millisecond, so a turn waits about this long at most.
 */
export const SLICE_MS = 10;

/** Runs `steps` to the end without pausing. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** Lets the event loop run what is waiting (I/O callbacks, timers) before going on. */
const turn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs `steps`, giving the event loop a turn whenever `sliceMs` have passed since the last one.
 * Once `signal` is aborted it stops at its next turn, rejecting with the signal's reason (the
 * generator is closed: its `finally` blocks run). `sliceMs` 0: a turn after every step.
 */
export async function runStepsYielding<T>(steps: Steps<T>, signal?: AbortSignal, sliceMs = SLICE_MS): Promise<T> {
  try {
    signal?.throwIfAborted();
    let since = performance.now();
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      if (performance.now() - since >= sliceMs) {
        await turn();
        signal?.throwIfAborted();
        since = performance.now();
      }
    }
  } finally {
    steps.return(undefined as T);
  }
}
