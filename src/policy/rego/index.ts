/**
 * Warden's built-in Rego engine: compile `.rego` modules and data once, then evaluate
 * entrypoints (`data.warden.decision`) or ad-hoc queries against inputs, with OPA's semantics
 * and a budget (steps, deadline, depth, input size) that turns runaway evaluation into a
 * `RegoError` instead of a hung or crashed process.
 */
import { createHash } from 'node:crypto';
import type { Location } from './ast/nodes.js';
import { RegoError } from './errors.js';
import { MAX_JSON_DEPTH_CEILING, tooDeepAt } from '../../pipeline/json-depth.js';
import { compileQueryText, compileSteps, parseModulesSteps, type CompiledQuery, type CompiledTree } from './ast/compile/index.js';
import { inputDepsSteps, type InputDeps } from './ast/compile/input-deps.js';
import { loadFiles } from './data.js';
import { leftOutRules, type LeftOutRules } from './test-files.js';
import { budgetExceeded, metered, work } from './meter.js';
import { Ctx, DEFAULT_DEADLINE_MS, DEFAULT_MAX_DEPTH, DEFAULT_MAX_STEPS, type Budget } from './topdown/context.js';
import { walkData } from './topdown/eval.js';
import type { DocNode, Frame, TermPlan } from './topdown/tree.js';
import { RegoSet, equal, fromJSON, isPlainObject, jsonTextSteps, toJSON, type Value } from './value.js';
import { MIB } from '../../pipeline/sizes.js';
import { runSteps, runStepsYielding, type Steps } from '../../pipeline/time-slices.js';

export { RegoError } from './errors.js';
export type { LeftOutRules } from './test-files.js';
export { formatInputPath, type InputDeps } from './ast/compile/input-deps.js';

export interface RegoSource {
  path: string;
  source: string;
  /**
   * The name the policy revision hashes instead of `path`: the file's place under its configured
   * root, so identical policies mounted elsewhere (a checkout, the image, a ConfigMap) have one
   * revision. Absent for sources that are not files under a root.
   */
  revisionName?: string;
}

export interface EvalOptions {
  /** Maximum evaluation steps (expressions + iterations); default 1,000,000. */
  maxSteps?: number;
  /** Wall-clock budget in milliseconds; default 1000. */
  deadlineMs?: number;
  /** `time.now_ns()` for this evaluation; default the current time. */
  nowNs?: bigint;
  /** Raise built-in errors instead of treating the call as undefined (OPA's strict mode). */
  strictBuiltinErrors?: boolean;
  /** Maximum nesting of rule and function evaluation; default 2000. */
  maxDepth?: number;
  /**
   * Receives each line `print(…)` writes. Default: none, and then `print` evaluates nothing and
   * writes nothing — the sidecar never prints policy data (it may hold secrets or PII) to stdout.
   * The CLI passes one for `warden policy eval` (stderr) and `warden policy test` (the report).
   */
  print?: (line: string) => void;
  /**
   * The caller vouches that `input` is bounded (the sidecar builds it from metadata its own
   * ingress limits already bound): skip the MAX_INPUT_BYTES walk over it. Default false.
   */
  inputBounded?: boolean;
}

export interface CompiledPolicy {
  readonly revision: string;
  evaluate(ref: string, input: unknown, opts?: EvalOptions): unknown;
  query(query: string, input?: unknown, opts?: EvalOptions): Array<Record<string, unknown>>;
  /**
   * The input paths the policy can read and whether its results depend on anything but them
   * (see ast/compile/input-deps.ts): what a decision cache may key on. Computed once.
   */
  inputDeps(): InputDeps;
}

/** One query solution as `opa eval` reports it. */
export interface QueryResult {
  expressions: Array<{ value: unknown; text: string; location: { row: number; col: number } }>;
  bindings: Record<string, unknown>;
}

/**
 * What an entrypoint reaches in a compiled policy, known without evaluating it: a rule (or a path
 * into a rule's value), a package or other node holding rules, base data, a function, or nothing.
 * For nothing: how far the path got (`reached`) and the keys defined there.
 */
export type RefLookup =
  | { found: 'rule' | 'document' | 'data' }
  | { found: 'function' }
  | { found: 'none'; reached: string[]; keys: string[] };

/** Inputs larger than this (estimated serialized size) are refused. */
export const MAX_INPUT_BYTES = 10 * MIB;

/**
 * Inputs and data nested deeper than this are refused: evaluation walks them recursively. The
 * same ceiling as the ingress's `limits.max_json_depth`, so any request Warden serves fits.
 */
export const MAX_INPUT_DEPTH = MAX_JSON_DEPTH_CEILING;

/**
 * A cheap serialized-size estimate, stopping as soon as the cap is passed. Returns the budget
 * left (negative when over). Recursion is fine: the depth was checked first.
 */
function sizeLeft(x: unknown, left: number): number {
  if (typeof x === 'string') return left - x.length - 2;
  if (x === null || typeof x !== 'object') return left - 8;
  if (Array.isArray(x)) {
    left -= 2 + x.length;
    for (let i = 0; i < x.length && left >= 0; i++) left = sizeLeft(x[i], left);
    return left;
  }
  if (x instanceof RegoSet) {
    left -= 2 + x.size;
    for (const e of x.values()) if ((left = sizeLeft(e, left)) < 0) break;
    return left;
  }
  for (const k in x as Record<string, unknown>) {
    left = sizeLeft((x as Record<string, unknown>)[k], left - k.length - 4);
    if (left < 0) break;
  }
  return left;
}

/**
 * A fresh plain-JSON copy of a result (sets → sorted arrays, non-string keys → JSON text):
 * callers may mutate what they get without touching values the compiled policy shares.
 */
function exportValue(v: Value): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    // Metered: a result may hold one large value many times over, and each copy is made.
    work(v.length);
    for (let i = 0; i < v.length; i++) out[i] = exportValue(v[i]!);
    return out;
  }
  // Sets and non-string-keyed objects become JSON first; copying that result too keeps the
  // promise of a fresh value (toJSON hands back plain members, such as input objects, as they are).
  if (v instanceof RegoSet || !isPlainObject(v)) {
    const j = toJSON(v);
    return j === v ? j : exportValue(j as Value);
  }
  const o: Record<string, unknown> = {};
  for (const k in v) {
    if (k === '__proto__') Object.defineProperty(o, k, { value: exportValue(v[k]!), enumerable: true, writable: true, configurable: true });
    else o[k] = exportValue(v[k]!);
  }
  return o;
}

function refPath(ref: string): string[] {
  let s = ref.trim();
  if (s === 'data') return [];
  if (s.startsWith('data.')) s = s.slice(5);
  const parts = s.includes('/') ? s.split('/') : s.split('.');
  const out = parts.filter((p) => p.length > 0);
  if (out.length === 0 || out.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
    throw new RegoError('rego_parse_error', `invalid entrypoint ${JSON.stringify(ref)}: want data.a.b or a/b`);
  }
  return out;
}

function constPlan(v: Value): TermPlan {
  return { eval: (_c, _f, k) => k(v), match: (_c, _f, x, k) => (equal(x, v) ? k() : false), inSlots: [], constant: v, composite: undefined };
}

export class RegoPolicy implements CompiledPolicy {
  readonly revision: string;
  private readonly entrypoints = new Map<string, { node: DocNode; base: Value | undefined; path: TermPlan[]; start: number }>();
  private readonly queries = new Map<string, CompiledQuery>();
  private deps: InputDeps | undefined;
  /** Set by loadRegoPolicy with `excludeTests`: rules of the policy's packages in the test files it left out. */
  leftOutRules: LeftOutRules[] = [];

  constructor(
    private readonly tree: CompiledTree,
    revision: string,
    /** The packages of the compiled modules, dotted (`warden`, `authz.rules`), sorted. */
    readonly packages: readonly string[] = [],
  ) {
    this.revision = revision;
  }

  /**
   * What `ref` (`a/b` or `data.a.b`) reaches, walking rules and base data as evaluation does. A
   * path below a rule or into non-object data counts as found: only evaluation can tell whether
   * it is defined. Throws RegoError for a ref that is not a path.
   */
  lookup(ref: string): RefLookup {
    const path = refPath(ref);
    let node: DocNode | undefined = this.tree.root;
    let base: Value | undefined = this.tree.baseData;
    for (let i = 0; i < path.length; i++) {
      if (node?.kind !== undefined) return { found: node.kind === 'function' ? 'function' : 'rule' };
      if (base !== undefined && !isPlainObject(base)) return { found: 'data' };
      const key = path[i]!;
      const child: DocNode | undefined = node?.children.get(key);
      const below: Value | undefined = base !== undefined && Object.hasOwn(base, key) ? base[key] : undefined;
      if (child === undefined && below === undefined) {
        const keys = new Set<string>(node ? node.children.keys() : []);
        if (base !== undefined) for (const k of Object.keys(base)) keys.add(k);
        return { found: 'none', reached: path.slice(0, i), keys: [...keys].sort() };
      }
      node = child;
      base = below;
    }
    if (node?.kind === 'function') return { found: 'function' };
    return { found: node?.kind !== undefined ? 'rule' : node !== undefined ? 'document' : 'data' };
  }

  private budget(opts: EvalOptions | undefined): Budget {
    const nowNs = opts?.nowNs ?? BigInt(Date.now()) * 1_000_000n;
    return {
      steps: 0,
      maxSteps: opts?.maxSteps ?? DEFAULT_MAX_STEPS,
      deadline: Date.now() + (opts?.deadlineMs ?? DEFAULT_DEADLINE_MS),
      depth: 0,
      maxDepth: opts?.maxDepth ?? DEFAULT_MAX_DEPTH,
      bctx: { nowNs, strict: opts?.strictBuiltinErrors === true, cache: new Map() },
      print: opts?.print,
    };
  }

  private checkInput(input: unknown, bounded?: boolean): Value | undefined {
    if (input === undefined) return undefined;
    if (bounded !== true) {
      if (tooDeepAt(input, MAX_INPUT_DEPTH)) {
        throw new RegoError('eval_budget_exceeded', `evaluation budget exceeded: input nested deeper than ${MAX_INPUT_DEPTH} levels`);
      }
      if (sizeLeft(input, MAX_INPUT_BYTES) < 0) {
        throw new RegoError('eval_budget_exceeded', `evaluation budget exceeded: input larger than ${MAX_INPUT_BYTES} bytes`);
      }
    }
    return fromJSON(input);
  }

  /**
   * Runs with the budget's deadline on the work meter (meter.ts), RangeErrors as budget errors.
   * The clock is read once more at the end: work the meter could not interrupt (a library call
   * inside a built-in) may have run past the deadline, and such a result is an error, never an
   * answer (`policy.timeout_ms`: exceeding it is `policy_error`).
   */
  private run<T>(b: Budget, fn: () => T): T {
    let out: T;
    try {
      out = metered(b.deadline, fn);
    } catch (e) {
      if (e instanceof RegoError) throw e;
      if (e instanceof RangeError) throw new RegoError('eval_budget_exceeded', `evaluation budget exceeded: ${e.message}`);
      throw new RegoError('eval_internal_error', e instanceof Error ? e.message : String(e));
    }
    if (Date.now() > b.deadline) throw budgetExceeded('deadline passed');
    return out;
  }

  evaluate(ref: string, input: unknown, opts?: EvalOptions): unknown {
    let ep = this.entrypoints.get(ref);
    if (!ep) {
      const path = refPath(ref);
      let node = this.tree.root;
      let base: Value | undefined = this.tree.baseData;
      let i = 0;
      while (i < path.length && node.kind === undefined) {
        const child = node.children.get(path[i]!);
        if (!child) break;
        node = child;
        base = isPlainObject(base) ? base[path[i]!] : undefined;
        i++;
      }
      ep = { node, base, path: path.map((p) => constPlan(p)), start: i };
      if (this.entrypoints.size < 1000) this.entrypoints.set(ref, ep);
    }
    const { node, base, path, start } = ep;
    const b = this.budget(opts);
    const c = new Ctx(b, this.checkInput(input, opts?.inputBounded), undefined, undefined);
    let out: Value | undefined;
    const f: Frame = [];
    // One metered run for evaluation and export (the export is metered too).
    return this.run(b, () => {
      walkData(c, f, node, base, undefined, path, start, (v) => {
        out = v;
        return true;
      });
      return out === undefined ? undefined : exportValue(out);
    });
  }

  private compiled(text: string): CompiledQuery {
    let q = this.queries.get(text);
    if (!q) {
      q = compileQueryText(this.tree, text);
      if (this.queries.size < 1000) this.queries.set(text, q);
    }
    return q;
  }

  /** Solutions with expression values and bindings, as `opa eval` prints them. */
  queryResults(text: string, input?: unknown, opts?: EvalOptions): QueryResult[] {
    const q = this.compiled(text);
    const b = this.budget(opts);
    const c = new Ctx(b, this.checkInput(input), undefined, undefined);
    const f: Frame = new Array(q.frameSize);
    const lines = text.split('\n');
    const out: QueryResult[] = [];
    const exprTexts = q.exprs.map((e, i) => {
      const next = q.exprs[i + 1];
      const line = lines[e.loc.row - 1] ?? '';
      const end = next && next.loc.row === e.loc.row ? next.loc.col - 1 : line.length;
      return line.slice(e.loc.col - 1, end).replace(/[;\s]+$/, '');
    });
    this.run(b, () =>
      q.body(c, f, () => {
        const bindings: Record<string, unknown> = {};
        for (const [name, slot] of q.vars) {
          const v = f[slot];
          if (v !== undefined) bindings[name] = toJSON(v);
        }
        out.push({
          expressions: q.exprs.map((e, i) => ({
            // A captured null is a value (`data.x` holding null), not "nothing captured".
            value: e.isTerm && q.captured[i] !== undefined ? toJSON(q.captured[i]) : true,
            text: exprTexts[i]!,
            location: e.loc,
          })),
          bindings,
        });
        return false;
      }),
    );
    return out;
  }

  query(text: string, input?: unknown, opts?: EvalOptions): Array<Record<string, unknown>> {
    return this.queryResults(text, input, opts).map((r) => r.bindings);
  }

  inputDeps(): InputDeps {
    return this.deps ?? runSteps(this.inputDepsSteps());
  }

  /** inputDeps' work, pausing after each rule: a load in a serving process runs it a slice at a time. */
  *inputDepsSteps(): Steps<InputDeps> {
    if (this.deps === undefined) {
      const deps = yield* inputDepsSteps(this.tree.rules);
      // A run abandoned midway (its load's deadline passed) left neither the result nor the
      // rules' release behind: it ends here only when the analysis is whole.
      this.deps = deps;
      // The resolved rules are kept for this analysis only: once it has run they go (they were
      // about a third of a compiled policy's heap).
      this.tree.rules = [];
    }
    return this.deps;
  }

  /** `test_*` rules (for `warden policy test`), as full data paths. */
  testRules(): Array<{ name: string; location: Location | undefined }> {
    const out: Array<{ name: string; location: Location | undefined }> = [];
    const visit = (n: DocNode): void => {
      const last = n.path[n.path.length - 1];
      if (n.kind === 'complete' && last !== undefined && last.startsWith('test_')) out.push({ name: n.name, location: n.defs[0]?.loc });
      for (const c of n.children.values()) visit(c);
    };
    visit(this.tree.root);
    return out;
  }
}

export interface CompileOptions {
  /** Leave out `*_test.rego` modules (the sidecar does). */
  excludeTests?: boolean;
  /**
   * Refuse a rule at a path the data already holds a value at (`rego_compile_error: conflicting
   * rule for data path a/b found`), as OPA's compiler does when it compiles against a store
   * (`opa check`/`eval` with data files, bundles). Default: on for compileRegoPolicy and the
   * loaders, off for compilePolicy, which compiles modules and data as given, as OPA's compiler
   * does without a store (and OPA's compliance cases expect: base data then wins on reads of
   * the parent document).
   */
  dataConflicts?: boolean;
}

export function compilePolicy(modules: RegoSource[], data?: unknown, opts?: CompileOptions): CompiledPolicy {
  return compileRegoPolicy(modules, data, { ...opts, dataConflicts: opts?.dataConflicts ?? false });
}

/** Like compilePolicy, returning the concrete class (query results with expressions, test rules); checks data conflicts by default. */
export function compileRegoPolicy(modules: RegoSource[], data?: unknown, opts?: CompileOptions): RegoPolicy {
  return runSteps(compileRegoPolicySteps(modules, data, opts));
}

/** Characters of the data's JSON text handed to the revision's hash at a time. */
const HASH_CHUNK = 1 << 16;

/**
 * compileRegoPolicy's work, pausing (yield) between small steps (a few thousand tokens, a
 * statement, a rule): loadRegoPolicy runs it a slice at a time (time-slices.ts), so a large set
 * compiled on a hot reload does not hold the serving process's event loop for seconds, and its
 * deadline can stop it.
 */
export function* compileRegoPolicySteps(modules: RegoSource[], data?: unknown, opts?: CompileOptions): Steps<RegoPolicy> {
  const sources = opts?.excludeTests ? modules.filter((m) => !m.path.endsWith('_test.rego')) : modules;
  const base = fromJSON(data ?? {});
  if (!isPlainObject(base)) throw new RegoError('rego_compile_error', 'data must be an object');
  const parsed = yield* parseModulesSteps(sources);
  let tree: CompiledTree;
  try {
    tree = yield* compileSteps(parsed, base, { dataConflicts: opts?.dataConflicts ?? true });
  } catch (e) {
    // The parser bounds nesting, operator chains and body length well below this; a smaller
    // JS stack than Node's default could still end here.
    if (e instanceof RangeError) throw new RegoError('rego_compile_error', 'policy too large to compile: the JS stack ran out (nesting, operator chains or long bodies)');
    throw e;
  }
  const packages = [...new Set(parsed.map((m) => m.package.path.join('.')))].sort();
  return new RegoPolicy(tree, yield* revisionSteps(sources, base), packages);
}

/**
 * The revision of a set of modules and data (as the engine holds it, fromJSON): a digest of each
 * module's name and text, in name order, and of the data. Exported so that a second load of the
 * same files (policy.require_tests) can tell whether it read the set the engine serves.
 */
export function revisionOf(sources: readonly RegoSource[], base: Value): string {
  return runSteps(revisionSteps(sources, base));
}

/** revisionOf's work, pausing between pieces of the data's text (see compileRegoPolicySteps). */
export function* revisionSteps(sources: readonly RegoSource[], base: Value): Steps<string> {
  const h = createHash('sha256');
  const named = sources.map((m) => ({ name: m.revisionName ?? m.path, source: m.source }));
  for (const m of named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    h.update(m.name).update('\0').update(m.source).update('\0');
  }
  // The data as the engine holds it, with exact integers written as numbers: a JSON.stringify with
  // bigints as their digit strings gave `[9007199254740993]` and `["9007199254740993"]`, which
  // decide differently, one revision. Streamed into the hash in pieces (jsonTextSteps), a
  // slice at a time: the text of data files of several MB is never built whole.
  let pending = '';
  yield* jsonTextSteps(base, (text) => {
    pending += text;
    if (pending.length >= HASH_CHUNK) {
      h.update(pending);
      pending = '';
    }
  });
  h.update(pending);
  return h.digest('hex');
}

/** Loads `.rego` and data files (data conflicts are checked, as `opa check` does with data files). */
export async function loadPolicy(paths: string[], opts?: CompileOptions): Promise<CompiledPolicy> {
  return loadRegoPolicy(paths, opts);
}

export interface LoadOptions extends CompileOptions {
  /**
   * Abandons the load at its next turn (rejecting with the signal's reason): parsing and
   * compiling run a slice at a time (time-slices.ts), so a deadline can stop them.
   */
  signal?: AbortSignal;
}

/** Loads and compiles the files under `paths`, giving the event loop a turn every few milliseconds while it compiles. */
export async function loadRegoPolicy(paths: string[], opts?: LoadOptions): Promise<RegoPolicy> {
  const signal = opts?.signal;
  const { modules, data, skippedTests, budget } = await loadFiles(paths, opts);
  const policy = await runStepsYielding(compileRegoPolicySteps(modules, data, opts), signal);
  if (skippedTests.length > 0) policy.leftOutRules = await leftOutRules(skippedTests, policy.packages, budget, signal);
  return policy;
}
