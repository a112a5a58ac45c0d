/**
 * Runs the `test_*` rules of a compiled policy set, one at a time: the runner of
 * `warden policy test` (cli.ts) and of `policy.require_tests` at each load (load-tests.ts), so
 * that a set the sidecar accepts is one the CLI passes, and the other way round.
 */
import type { Location } from './rego/ast/nodes.js';
import { RegoError, type RegoPolicy } from './rego/index.js';
import { formatRegoError } from './rego/errors.js';

export interface TestOutcome {
  /** The rule's full data path (`data.warden_test.test_allow`). */
  name: string;
  /** Where its first definition stands (undefined for none, which a compiled rule always has). */
  location: Location | undefined;
  status: 'PASS' | 'FAIL' | 'ERROR';
  ns: bigint;
  /** For ERROR: `file:line:col: code: message` (never a value: the engine's messages name types and positions). */
  error?: string;
  /** What the test print()ed (only when `print` lines were asked for). */
  output: string[];
}

export interface RunTestsOptions {
  /** As `policy.strict_builtin_errors`: a failed built-in is the test's ERROR. */
  strictBuiltinErrors: boolean;
  /**
   * Keep what each test print()s (the CLI shows it). Off: print evaluates nothing, as in the
   * sidecar, whose logs must never carry policy data.
   */
  keepPrinted?: boolean;
  /**
   * Awaited before each test (a load yields to the event loop there, and stops when its deadline
   * has passed by throwing). Each test itself runs to its end in one turn.
   */
  beforeEach?: () => Promise<void>;
}

export function errorLine(e: unknown): string {
  if (e instanceof RegoError) return formatRegoError(e.code, e.message, e.location);
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Every `test_*` rule's outcome: PASS when it is defined and not false, ERROR when it raised. */
export async function runTestRules(policy: RegoPolicy, opts: RunTestsOptions): Promise<TestOutcome[]> {
  const outcomes: TestOutcome[] = [];
  for (const t of policy.testRules()) {
    await opts.beforeEach?.();
    const start = process.hrtime.bigint();
    let status: TestOutcome['status'];
    let error: string | undefined;
    const output: string[] = [];
    try {
      const v = policy.evaluate(t.name, undefined, {
        strictBuiltinErrors: opts.strictBuiltinErrors,
        ...(opts.keepPrinted ? { print: (line: string) => void output.push(line) } : {}),
      });
      status = v !== undefined && v !== false ? 'PASS' : 'FAIL';
    } catch (e) {
      status = 'ERROR';
      error = errorLine(e);
    }
    outcomes.push({ name: t.name, location: t.location, status, ns: process.hrtime.bigint() - start, ...(error ? { error } : {}), output });
  }
  return outcomes;
}
