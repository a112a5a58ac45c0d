/**
 * Rules the sidecar leaves out with the `*_test.rego` files (the `opa test` convention) that OPA
 * bundles and `opa eval` would include: a rule not named `test_…` in a test file of a package
 * the policy set defines. It would apply under OPA and not under Warden, so each such file is
 * reported once (its first rule's position), as a load warning, never an error: the files load
 * as before.
 */
import type { Rule } from './ast/nodes.js';
import { parseModuleSteps } from './ast/index.js';
import { runStepsYielding } from '../../pipeline/time-slices.js';
import { PolicySetTooLargeError, readText, type ReadBudget } from './data.js';

export interface LeftOutRules {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** `test_…` runs under `opa test`, `todo_test_…` is a skipped test: both are test rules. */
function isTestRule(rule: Rule): boolean {
  return rule.head.name.startsWith('test_') || rule.head.name.startsWith('todo_test_');
}

/**
 * Reads and parses each left-out test file; one that does not read or parse is none of Warden's
 * business and is passed over. They are read within the load's `budget`: past the cap of all
 * the files under the policy paths together, the load fails as `warden policy check` does (which
 * reads them as part of the set), rather than read test files without bound at every reload.
 */
export async function leftOutRules(testFiles: readonly string[], packages: readonly string[], budget?: ReadBudget, signal?: AbortSignal): Promise<LeftOutRules[]> {
  const policyPackages = new Set(packages);
  const out: LeftOutRules[] = [];
  for (const file of testFiles) {
    let module;
    try {
      // Parsed a slice at a time, as the policy itself: test files share the set's 32 MiB, not
      // the 2 MiB of the modules compiled.
      module = await runStepsYielding(parseModuleSteps(await readText(file, '', budget), file), signal);
    } catch (e) {
      // Too large, or the load was given up (its deadline): the load ends here.
      if (e instanceof PolicySetTooLargeError || signal?.aborted === true) throw e;
      continue;
    }
    const pkg = module.package.path.join('.');
    if (!policyPackages.has(pkg)) continue;
    const names = [...new Set(module.rules.filter((r) => !isTestRule(r)).map((r) => r.head.name))];
    const first = module.rules.find((r) => !isTestRule(r));
    if (first === undefined) continue;
    const more = names.length > 1 ? ` (and ${names.length - 1} more)` : '';
    out.push({
      file,
      line: first.loc.row,
      column: first.loc.col,
      message:
        `rule "${first.head.name}"${more} of package ${pkg} is left out: files named *_test.rego are not part of the policy set ` +
        '(OPA bundles and opa eval include them); move it to a file not named *_test.rego, or name it test_…',
    });
  }
  return out;
}
