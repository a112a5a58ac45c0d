/**
 * `policy.require_tests`: a policy set serves only once its own `*_test.rego` tests pass. A set
 * that compiles but denies everything, errors on every call or allows what it must not would
 * otherwise be swapped in at a hot reload and serve at once in every pod; with this, such a load
 * fails like any bad change (a start stops, a reload is rejected and the last good set serves).
 *
 * The tests run as `warden policy test` runs them (the same runner, test-runner.ts), on the files
 * of the loaded set plus its test files, compiled apart from the engine that serves (which leaves
 * the test files out). What is reported is each failing test's name, file:line and, for an ERROR,
 * the engine's error line (a code, a position and a message naming types, never values); what a
 * test print()s is not kept: the load's log lines must not carry policy data.
 */
import { WardenError, type ErrorLocation } from '../pipeline/errors.js';
import { runStepsYielding } from '../pipeline/time-slices.js';
import { compileRegoPolicySteps, RegoError, revisionSteps, type LeftOutRules } from './rego/index.js';
import { loadFiles } from './rego/data.js';
import { fromJSON } from './rego/value.js';
import { runTestRules, type TestOutcome } from './test-runner.js';

/** At most this many failing tests are named in the load's error (then "and N more"). */
const MAX_NAMED = 10;

export interface RequiredTestsOptions {
  /** `policy.paths`, as the engine loaded them. */
  paths: string[];
  /** The revision of the set the engine serves: the tests must have run on that set. */
  revision: string;
  /** The engine's left-out rules (non-test rules in `*_test.rego` files of the set's packages). */
  leftOut: readonly LeftOutRules[];
  /** `policy.strict_builtin_errors`: the tests evaluate as the served calls will. */
  strictBuiltinErrors: boolean;
  /** The load's deadline (`reload.timeout_ms`): aborted, the tests stop before their next one. */
  signal?: AbortSignal;
}

const KEY = 'policy.require_tests';

function refuse(message: string, location: ErrorLocation, details: Record<string, unknown>, cause?: unknown): WardenError {
  return new WardenError('policy_error', `${message} (${KEY} is true)`, { location, details, ...(cause === undefined ? {} : { cause }) });
}

function where(o: TestOutcome): string {
  return o.location ? `${o.location.file}:${o.location.row}` : 'unknown position';
}

/** Yields to the event loop (requests are served between tests) and stops once the load gave up. */
function between(signal: AbortSignal | undefined): () => Promise<void> {
  return async () => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw signal.reason;
  };
}

/**
 * Runs the set's tests; resolves when every one passes, else throws a `policy_error` located at
 * the first failing test, naming the failing ones. Refuses a set with no tests at all, and one
 * whose test files hold rules of the served packages (the tests would judge rules that do not
 * serve).
 */
export async function requirePassingTests(opts: RequiredTestsOptions): Promise<void> {
  const first = opts.leftOut[0];
  if (first !== undefined) {
    // The tests compile with these rules, the served set without them: a pass would say nothing
    // about what serves.
    throw refuse(
      `${first.message}; the tests would run against rules the served set leaves out`,
      { file: first.file, line: first.line, column: first.column },
      { code: 'policy_tests_mismatch' },
    );
  }
  let loaded;
  let policy;
  try {
    loaded = await loadFiles(opts.paths, opts.signal ? { signal: opts.signal } : {});
    // A slice at a time, as the engine's own compile (time-slices.ts): the set and its tests
    // compile again here, on a reload while requests are served.
    policy = await runStepsYielding(compileRegoPolicySteps(loaded.modules, loaded.data), opts.signal);
  } catch (err) {
    if (!(err instanceof RegoError)) throw err;
    const loc = err.location;
    const location: ErrorLocation = loc ? (loc.row > 0 ? { file: loc.file, line: loc.row, column: loc.col } : { file: loc.file }) : { path: 'policy.paths' };
    throw refuse(`the policy tests do not compile: ${err.code}: ${err.message}`, location, { code: err.code }, err);
  }
  const served = loaded.modules.filter((m) => !m.path.endsWith('_test.rego'));
  if ((await runStepsYielding(revisionSteps(served, fromJSON(loaded.data)), opts.signal)) !== opts.revision) {
    // A file changed between the engine's read and this one: the tests ran on another set. The
    // change itself starts another reload, which reads (and tests) the set anew.
    throw refuse('the policy files changed while their tests were read; the tests did not run on the set that was loaded', { path: 'policy.paths' }, { code: 'policy_tests_stale' });
  }
  const outcomes = await runTestRules(policy, { strictBuiltinErrors: opts.strictBuiltinErrors, beforeEach: between(opts.signal) });
  if (outcomes.length === 0) {
    throw refuse('the policy set has no tests: no test_ rule in a *_test.rego file under policy.paths', { path: 'policy.paths' }, { code: 'policy_tests_missing' });
  }
  const failed = outcomes.filter((o) => o.status !== 'PASS');
  if (failed.length === 0) return;
  const named = failed.slice(0, MAX_NAMED).map((o) => `${o.name} ${o.status} at ${where(o)}${o.error ? ` (${o.error})` : ''}`);
  const more = failed.length > MAX_NAMED ? `; and ${failed.length - MAX_NAMED} more` : '';
  const loc = failed[0]!.location;
  throw refuse(
    `${failed.length} of ${outcomes.length} policy tests failed: ${named.join('; ')}${more}`,
    loc ? { file: loc.file, line: loc.row } : { path: 'policy.paths' },
    { code: 'policy_tests_failed', failed: failed.length, total: outcomes.length },
  );
}
