/**
 * The compiler: parsed modules → a rule tree whose nodes hold closures ready to evaluate.
 * Stages, in OPA's order where it matters: merge modules into one tree by package + head ref,
 * check conflicting rule kinds, resolve names (imports, package rules, built-ins, arity),
 * reorder bodies for safety and report unsafe variables, detect recursion, then plan.
 */
import type { Body, Location, Module, Rule, Term } from '../nodes.js';
import { parseModuleSteps, parseQuery, parseTerm } from '../parser.js';
import { runSteps, type Steps } from '../../../../pipeline/time-slices.js';
import { RegoError } from '../../errors.js';
import { isPlainObject, keyOf, type Value } from '../../value.js';
import { DocNode, type RulePlan } from '../../topdown/tree.js';
import { Planner, toDoubles } from '../../topdown/plan.js';
import type { IExpr, ITerm } from './ir.js';
import { Resolver, importTable, type ModuleEnv } from './resolve.js';
import { analyze, checkBound, reorder, reorderTerm } from './safety.js';
import type { ExprFn } from '../../topdown/tree.js';

export interface CompiledTree {
  root: DocNode;
  baseData: Value;
  planner: Planner;
  functionArity: Map<string, number>;
  /** Whether any literal is an exact decimal (then built-ins get doubles: decimal.ts). */
  numbers: { decimals: boolean };
  /**
   * Every rule definition (each `else` link too) in resolved form, as planned: what static
   * analyses such as input-deps.ts read, so they see exactly what evaluates. Emptied once
   * RegoPolicy.inputDeps() has read them (their only reader; they are a large part of the heap).
   */
  rules: ResolvedRule[];
}

/** One rule definition after name resolution: its head terms and its (reordered) body. */
export interface ResolvedRule {
  /** The rule's location (its head). */
  loc: Location;
  /** Head key, value, ref terms below the node, and function argument patterns. */
  head: ITerm[];
  body: IExpr[];
}

interface RuleEntry {
  rule: Rule;
  module: Module;
  env: ModuleEnv;
  node: DocNode;
  /** Head terms below the node (object rules). */
  dyn: Term[];
}

function staticSplit(pkg: readonly string[], rule: Rule): { path: string[]; dyn: Term[] } {
  const ref = rule.head.ref;
  const path = [...pkg, rule.head.name];
  let i = 1;
  for (; i < ref.length; i++) {
    const t = ref[i]!;
    if (t.type !== 'string') break;
    path.push(t.value);
  }
  return { path, dyn: ref.slice(i) };
}

function termIsConst(t: ITerm): t is ITerm & { t: 'const' } {
  return t.t === 'const';
}

/** Variable names bound by function-argument patterns. */
function patternVars(ts: readonly ITerm[]): Set<string> {
  const out = new Set<string>();
  for (const t of ts) {
    const i = new Set<string>();
    analyze(t, true, i, out);
    for (const v of i) out.add(v);
  }
  return out;
}

/** Whether the base data holds a value at `path` (through objects only, as OPA's store reads). */
function baseHas(base: Value, path: readonly string[]): boolean {
  let cur: Value | undefined = base;
  for (const p of path) {
    if (!isPlainObject(cur) || !Object.prototype.hasOwnProperty.call(cur, p)) return false;
    cur = cur[p];
  }
  return true;
}

export function compileModules(modules: Module[], baseData: Value, opts?: { dataConflicts?: boolean }): CompiledTree {
  return runSteps(compileSteps(modules, baseData, opts));
}

/**
 * compileModules' work, pausing (yield) after each rule of both stages and every few hundred
 * definitions of the rule index: a load in a serving process runs it a slice at a time (a rule
 * takes 0.1-0.3 ms, a set at the modules' 2 MiB cap seconds).
 */
export function* compileSteps(modules: Module[], baseData: Value, opts?: { dataConflicts?: boolean }): Steps<CompiledTree> {
  const dataConflicts = opts?.dataConflicts ?? true;
  const root = new DocNode([], 'data');
  const functionArity = new Map<string, number>();
  const numbers = { decimals: false };
  const ruleNames = new Map<string, Set<string>>();
  for (const m of modules) {
    const key = m.package.path.join('\u0000');
    let s = ruleNames.get(key);
    if (!s) ruleNames.set(key, (s = new Set()));
    for (const r of m.rules) s.add(r.head.name);
    let n = root;
    for (const p of m.package.path) n = n.child(p);
  }

  // Stage 1: the tree, with kinds checked.
  const entries: RuleEntry[] = [];
  // Where each node's first rule is, for errors found once the tree is whole (checkNesting).
  const firstRule = new Map<DocNode, Location>();
  const envs = new Map<Module, ModuleEnv>();
  for (const m of modules) {
    const env: ModuleEnv = {
      pkg: [...m.package.path],
      ruleNames: ruleNames.get(m.package.path.join('\u0000'))!,
      imports: importTable(m.imports),
      functionArity,
      numbers,
    };
    envs.set(m, env);
    for (const rule of m.rules) {
      const { path, dyn } = staticSplit(m.package.path, rule);
      let node = root;
      for (const p of path) node = node.child(p);
      // A ref head with a non-string key (`p[0] := 1`) defines an object, whatever the parser called it.
      // So does a multi-value rule with variables in its ref (`a[x] contains y`): an object of sets.
      const kind = (rule.head.kind === 'complete' || rule.head.kind === 'set') && dyn.length > 0 ? 'object' : rule.head.kind;
      if (node.kind !== undefined && node.kind !== kind) {
        throw new RegoError('rego_type_error', `conflicting rules ${node.name} found`, rule.loc);
      }
      // As OPA's compiler (checkDocumentConflicts): a rule may not define a path the base data
      // (data files) already holds a value at. Otherwise `data.a.b` and `data.a` then `.b` disagree.
      if (dataConflicts && node.kind === undefined && baseHas(baseData, path)) {
        throw new RegoError('rego_compile_error', `conflicting rule for data path ${path.join('/')} found`, rule.loc);
      }
      node.kind = kind;
      if (!firstRule.has(node)) firstRule.set(node, rule.loc);
      if (kind === 'function') {
        const arity = rule.head.args?.length ?? 0;
        if (node.arity >= 0 && node.arity !== arity) throw new RegoError('rego_type_error', `conflicting rules ${node.name} found`, rule.loc);
        node.arity = arity;
        functionArity.set(path.join('.'), arity);
      }
      entries.push({ rule, module: m, env, node, dyn });
      yield;
    }
  }
  checkNesting(root, firstRule);

  // Stage 2: resolve, reorder, plan.
  const planner = new Planner(root, baseData, numbers);
  const deps = new Map<DocNode, Set<string>>();
  const rules: ResolvedRule[] = [];
  for (const e of entries) {
    const resolver = new Resolver(e.env);
    planner.reset();
    const refs = deps.get(e.node) ?? new Set<string>();
    deps.set(e.node, refs);
    if (e.rule.default) {
      if (e.node.defaultValue !== undefined || e.node.defaultPlan !== undefined) {
        throw new RegoError('rego_type_error', `multiple default rules ${e.node.name} found`, e.rule.loc);
      }
      const scope = resolver.newScope();
      const v = resolver.term(e.rule.head.value!, scope);
      // The parser admits only constants and comprehensions (closures, as OPA's parser): a value
      // holding a comprehension reads data or input, so it is planned like a rule with an empty
      // body and evaluated when no other definition holds.
      if (termIsConst(v)) e.node.defaultValue = v.v;
      else e.node.defaultPlan = planChain(e, e.rule, resolver, planner, refs, rules);
      continue;
    }
    const plan = planChain(e, e.rule, resolver, planner, refs, rules);
    e.node.defs.push(plan);
    yield;
  }
  checkRecursion(root, deps);
  for (const n of allNodes(root)) yield* buildIndex(n);
  allNodes(root).forEach((n, i) => {
    n.id = i;
  });
  return { root, baseData, planner, functionArity, numbers, rules };
}

/** Rule indexing pays off only for nodes with many definitions. */
const INDEX_MIN_DEFS = 8;

function inputConstPath(t: ITerm): string[] | undefined {
  if (t.t !== 'ref' || t.head.t !== 'input') return undefined;
  // Built at its size (not pushed into): every rule with a guard keeps it.
  const out: string[] = new Array(t.path.length);
  for (let i = 0; i < t.path.length; i++) {
    const p = t.path[i]!;
    if (p.t !== 'const' || typeof p.v !== 'string') return undefined;
    out[i] = p.v;
  }
  return out;
}

function isScalar(v: Value): boolean {
  return v === null || typeof v !== 'object';
}

/** The first top-level `input.a.b == const` (or `=`) of a body: a condition every solution needs. */
function guardOf(body: IExpr[]): { guard: { path: string[]; value: Value } } | Record<string, never> {
  for (const e of body) {
    if (e.negated || e.with.length > 0) continue;
    let l: ITerm | undefined;
    let r: ITerm | undefined;
    if (e.k === 'unify') [l, r] = [e.left, e.right];
    else if (e.k === 'term' && e.term.t === 'call' && e.term.fn.kind === 'builtin' && e.term.fn.name === 'equal') [l, r] = e.term.args as [ITerm, ITerm];
    if (!l || !r) continue;
    for (const [a, b] of [[l, r], [r, l]] as const) {
      const path = inputConstPath(a);
      if (path && b.t === 'const' && isScalar(b.v)) return { guard: { path, value: b.v } };
    }
  }
  return {};
}

/** Definitions of one node indexed between two pauses of buildIndex. */
const DEFS_PER_STEP = 512;

/** Indexes a node's definitions by their guard, pausing every DEFS_PER_STEP definitions (a generated node may hold thousands). */
function* buildIndex(n: DocNode): Steps<void> {
  if (n.defs.length < INDEX_MIN_DEFS || n.kind === 'function') return;
  const counts = new Map<string, number>();
  for (const [i, d] of n.defs.entries()) {
    if (d.guard) counts.set(d.guard.path.join('\u0000'), (counts.get(d.guard.path.join('\u0000')) ?? 0) + 1);
    if (i % DEFS_PER_STEP === DEFS_PER_STEP - 1) yield;
  }
  let best: string | undefined;
  for (const [k, c] of counts) if (best === undefined || c > counts.get(best)!) best = k;
  if (best === undefined || counts.get(best)! < INDEX_MIN_DEFS / 2) return;
  const byValue = new Map<string, RulePlan[]>();
  const rest: RulePlan[] = [];
  for (const [i, d] of n.defs.entries()) {
    if (i % DEFS_PER_STEP === DEFS_PER_STEP - 1) yield;
    if (d.guard && d.guard.path.join('\u0000') === best) {
      const k = keyOf(d.guard.value);
      const list = byValue.get(k);
      if (list) list.push(d);
      else byValue.set(k, [d]);
    } else rest.push(d);
  }
  n.index = { path: best === '' ? [] : best.split('\u0000'), byValue, rest };
}

function allNodes(n: DocNode, out: DocNode[] = []): DocNode[] {
  out.push(n);
  for (const c of n.children.values()) allNodes(c, out);
  return out;
}

function checkNesting(n: DocNode, firstRule: ReadonlyMap<DocNode, Location>): void {
  if ((n.kind === 'complete' || n.kind === 'function' || n.kind === 'set') && n.children.size > 0) {
    const kids = [...n.children.values()].map((c) => c.name);
    // At the rule's first definition, as every compile error is located (file:line:col).
    throw new RegoError('rego_type_error', `rule ${n.name} conflicts with [${kids.join(' ')}]`, firstRule.get(n));
  }
  for (const c of n.children.values()) checkNesting(c, firstRule);
}

function planChain(e: RuleEntry, rule: Rule, resolver: Resolver, planner: Planner, refs: Set<string>, rules: ResolvedRule[]): RulePlan {
  const head = rule.head;
  const scope = resolver.newScope();
  if (head.args) resolver.declareArgs(scope, head.args);
  const args = head.args?.map((a) => resolver.term(a, scope));
  const bodyScope = resolver.newScope(scope);
  const body = resolver.body(rule.body, bodyScope);
  const bound = args ? patternVars(args) : new Set<string>();
  const ordered = reorder(body, bound);
  // A comprehension in the head (every template string is one) is a body of its own: reordered
  // and checked for safety with what the rule body binds, as one in the body is (reorderNested).
  // Left as written, `[x | x > 0; x = input.xs[_]]` was `[]`, and an unbound variable in it
  // failed every evaluation instead of the compile.
  const headTerm = (t: Term): ITerm => reorderTerm(resolver.headTerm(t, bodyScope), bound);
  const key = head.kind === 'set' && head.key ? headTerm(head.key) : undefined;
  const value = head.kind !== 'set' && head.value ? headTerm(head.value) : undefined;
  const dyn = e.dyn.map(headTerm);
  for (const t of [key, value, ...dyn]) if (t) checkBound(t, bound);
  const headTerms = [key, value, ...dyn, ...(args ?? [])].filter((t): t is ITerm => t !== undefined);
  collectRefs(ordered, headTerms, refs);
  rules.push({ loc: rule.loc, head: headTerms, body: ordered });
  const bodyFn: ExprFn = planner.body(ordered);
  const multi = head.kind === 'set' && dyn.length > 0;
  const plan: RulePlan = {
    frameSize: 0,
    ...(args ? { args: args.map((a) => planner.term(a)) } : {}),
    body: bodyFn,
    ...(key && !multi ? { key: planner.term(key) } : {}),
    ...(dyn.length ? { dyn: dyn.map((d) => planner.term(d)) } : {}),
    ...(value ? { value: planner.term(value) } : {}),
    ...(multi && key ? { value: planner.term(key), multi: true } : {}),
    constValue: value !== undefined && value.t === 'const' && dyn.length === 0,
    ...(rule.else ? { else: planChain(e, rule.else, resolver, planner, refs, rules) } : {}),
    ...(rule.else || head.args ? {} : guardOf(ordered)),
    loc: rule.loc,
  };
  (plan as { frameSize: number }).frameSize = Math.max(planner.frameSize, 1);
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Recursion
// ---------------------------------------------------------------------------------------------

function collectTerm(t: ITerm, out: Set<string>): void {
  switch (t.t) {
    case 'data': {
      const p: string[] = [];
      for (const x of t.path) {
        if (x.t === 'const' && typeof x.v === 'string') p.push(x.v);
        else {
          // A constant non-string key names no rule (rule paths are strings).
          if (x.t === 'const') p.push('\u0001');
          break;
        }
      }
      out.add(p.join('\u0000'));
      for (const x of t.path) collectTerm(x, out);
      return;
    }
    case 'ref':
      collectTerm(t.head, out);
      for (const x of t.path) collectTerm(x, out);
      return;
    case 'array':
    case 'set':
      for (const x of t.items) collectTerm(x, out);
      return;
    case 'object':
      for (const [k, v] of t.entries) {
        collectTerm(k, out);
        collectTerm(v, out);
      }
      return;
    case 'call':
      if (t.fn.kind === 'user') out.add(t.fn.path.join('\u0000'));
      for (const x of t.args) collectTerm(x, out);
      return;
    case 'member':
      if (t.key) collectTerm(t.key, out);
      collectTerm(t.value, out);
      collectTerm(t.coll, out);
      return;
    case 'arraycomp':
    case 'setcomp':
      collectTerm(t.term, out);
      collectRefs(t.body, [], out);
      return;
    case 'objectcomp':
      collectTerm(t.key, out);
      collectTerm(t.value, out);
      collectRefs(t.body, [], out);
      return;
    default:
      return;
  }
}

function collectRefs(body: IExpr[], extra: Array<ITerm | undefined>, out: Set<string>): void {
  for (const t of extra) if (t) collectTerm(t, out);
  for (const e of body) {
    for (const w of e.with) {
      collectTerm(w.value, out);
      if (w.fnValue?.kind === 'user') out.add(w.fnValue.path.join('\u0000'));
    }
    switch (e.k) {
      case 'term':
        collectTerm(e.term, out);
        break;
      case 'unify':
        collectTerm(e.left, out);
        collectTerm(e.right, out);
        break;
      case 'somein':
        if (e.key) collectTerm(e.key, out);
        collectTerm(e.value, out);
        collectTerm(e.coll, out);
        break;
      case 'every':
        collectTerm(e.domain, out);
        collectRefs(e.body, [], out);
        break;
      case 'body':
        collectRefs(e.body, [], out);
        break;
      case 'print':
        for (const a of e.args) collectTerm(a, out);
        break;
    }
  }
}

/** Rule nodes a static data path reaches: the first rule node on it, or every rule node below. */
function targets(root: DocNode, key: string): DocNode[] {
  let n = root;
  for (const p of key === '' ? [] : key.split('\u0000')) {
    if (n.kind !== undefined) return [n];
    const c = n.children.get(p);
    if (!c) return [];
    n = c;
  }
  return allNodes(n).filter((x) => x.kind !== undefined);
}

function checkRecursion(root: DocNode, deps: Map<DocNode, Set<string>>): void {
  const edges = new Map<DocNode, DocNode[]>();
  for (const [n, keys] of deps) {
    const out: DocNode[] = [];
    for (const k of keys) out.push(...targets(root, k));
    edges.set(n, out);
  }
  const state = new Map<DocNode, 1 | 2>();
  const stack: DocNode[] = [];
  const visit = (n: DocNode): void => {
    state.set(n, 1);
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      const s = state.get(m);
      if (s === 1) {
        const cycle = stack.slice(stack.indexOf(m)).map((x) => x.name);
        throw new RegoError('rego_recursion_error', `rule ${m.name} is recursive: ${[...cycle, m.name].join(' -> ')}`, m.defs[0]?.loc);
      }
      if (s === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of edges.keys()) if (!state.has(n)) visit(n);
}

// ---------------------------------------------------------------------------------------------
// Queries and terms
// ---------------------------------------------------------------------------------------------

export interface CompiledQuery {
  body: ExprFn;
  frameSize: number;
  /** User variables: name → slot, in order of appearance. */
  vars: Array<[string, number]>;
  /** Top-level expressions in source order (for `opa eval` output). */
  exprs: Array<{ loc: { row: number; col: number }; isTerm: boolean }>;
  /** Values of the top-level term expressions of the current solution (source order). */
  captured: Value[];
}

export function compileQueryBody(tree: CompiledTree, body: Body): CompiledQuery {
  const env: ModuleEnv = { pkg: [], ruleNames: new Set(), imports: new Map(), functionArity: tree.functionArity, numbers: tree.numbers };
  const resolver = new Resolver(env);
  const scope = resolver.newScope();
  const ir = resolver.body(body, scope);
  const srcIdx: number[] = [];
  body.forEach((e, i) => {
    if (e.kind !== 'some') srcIdx.push(i);
  });
  ir.forEach((e, j) => ((e as { idx?: number }).idx = srcIdx[j]));
  const ordered = reorder(ir, new Set());
  const planner = new Planner(tree.root, tree.baseData, tree.numbers);
  const cq: CompiledQuery = { body: () => false, frameSize: 1, vars: [], exprs: [], captured: [] };
  // OPA checks captured values only in a query of several expressions or one that iterates.
  const falseFails = body.length > 1 || ir.some(exprIterates);
  cq.body = planner.queryBody(
    ordered,
    (i, v) => {
      cq.captured[i] = v;
    },
    falseFails,
  );
  for (const [name, unique] of scope.names) {
    if (name.startsWith('$') || name === '_') continue;
    const slot = planner.slots.get(unique);
    if (slot !== undefined) cq.vars.push([name, slot]);
  }
  cq.frameSize = Math.max(planner.frameSize, 1);
  cq.exprs = body.map((e) => ({ loc: { row: e.loc.row, col: e.loc.col }, isTerm: e.kind === 'term' && !e.negated }));
  return cq;
}

/**
 * Whether an expression iterates, as OPA's rego package decides it (`iteration` in rego.go): a
 * reference with a variable after its head, or a call of a relation (`walk`); comprehensions
 * are their own queries and do not count.
 */
function exprIterates(e: IExpr): boolean {
  if (e.with.some((w) => termIterates(w.value))) return true;
  switch (e.k) {
    case 'term':
      return termIterates(e.term);
    case 'unify':
      return termIterates(e.left) || termIterates(e.right);
    case 'somein':
      return (e.key !== undefined && termIterates(e.key)) || termIterates(e.value) || termIterates(e.coll);
    case 'every':
      return (e.key !== undefined && termIterates(e.key)) || termIterates(e.value) || termIterates(e.domain) || e.body.some(exprIterates);
    case 'print':
      return e.args.some(termIterates);
    case 'body':
      return e.body.some(exprIterates);
  }
}

function termIterates(t: ITerm): boolean {
  switch (t.t) {
    case 'data':
      return t.path.some((p) => p.t === 'local' || termIterates(p));
    case 'ref':
      return termIterates(t.head) || t.path.some((p) => p.t === 'local' || termIterates(p));
    case 'array':
    case 'set':
      return t.items.some(termIterates);
    case 'object':
      return t.entries.some(([k, v]) => termIterates(k) || termIterates(v));
    case 'call':
      return t.fn.kind === 'relation' || t.args.some(termIterates);
    case 'member':
      return (t.key !== undefined && termIterates(t.key)) || termIterates(t.value) || termIterates(t.coll);
    default:
      // Constants, locals, input, and comprehensions (OPA's check does not enter them).
      return false;
  }
}

export function compileQueryText(tree: CompiledTree, text: string): CompiledQuery {
  return compileQueryBody(tree, parseQuery(text, 'query'));
}

/** A Rego term written as text (the compliance cases' `input_term`) → its value. */
export function inputTermToValue(text: string): Value {
  const term = parseTerm(text);
  const env: ModuleEnv = { pkg: [], ruleNames: new Set(), imports: new Map(), functionArity: new Map() };
  const resolver = new Resolver(env);
  const t = resolver.term(term, resolver.newScope());
  if (t.t !== 'const') throw new RegoError('rego_compile_error', 'input must be a constant term', term.loc);
  // Input is plain data: exact decimals (decimal.ts) live only in policy literals.
  return toDoubles(t.v);
}

export function parseModules(sources: Array<{ path: string; source: string }>): Module[] {
  return runSteps(parseModulesSteps(sources));
}

/** parseModules' work, pausing as parseModuleSteps does. */
export function* parseModulesSteps(sources: Array<{ path: string; source: string }>): Steps<Module[]> {
  const out: Module[] = [];
  const errors: RegoError[] = [];
  for (const s of sources) {
    try {
      out.push(yield* parseModuleSteps(s.source, s.path));
    } catch (e) {
      if (e instanceof RegoError) errors.push(e);
      else throw e;
    }
  }
  if (errors.length > 0) throw errors[0]!;
  return out;
}
