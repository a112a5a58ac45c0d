/**
 * Safety, as OPA's compiler checks it: every variable must be bound (by unification, a ref
 * lookup, `some … in`, or a function argument) before it is used as an input (a built-in
 * argument, a negated expression, a comprehension's free variable). Bodies are reordered so
 * that the expressions that bind a variable run before those that read it, keeping source
 * order otherwise; a variable nothing can bind is a `rego_unsafe_var_error`.
 */
import { RegoError } from '../../errors.js';
import type { IExpr, ITerm } from './ir.js';

type Names = Set<string>;

/** Free (non-local) variables of a comprehension or every body. */
function freeVars(body: IExpr[], extra: ITerm[], locals: Set<string>, out: Names): void {
  const all = new Set<string>();
  for (const e of body) exprAllVars(e, all);
  for (const t of extra) termAllVars(t, all);
  for (const v of all) if (!locals.has(v)) out.add(v);
}

function termAllVars(t: ITerm, out: Names): void {
  const i = new Set<string>();
  analyze(t, true, i, out);
  for (const v of i) out.add(v);
}

function exprAllVars(e: IExpr, out: Names): void {
  const { inputs, outputs } = exprNeeds(e, true);
  for (const v of inputs) out.add(v);
  for (const v of outputs) out.add(v);
}

/**
 * Splits a term's variables into those that must be bound before it can be evaluated
 * (`inputs`) and those its evaluation can bind (`outputs`: ref keys, and pattern positions when
 * `pattern` is set).
 */
export function analyze(t: ITerm, pattern: boolean, inputs: Names, outputs: Names): void {
  switch (t.t) {
    case 'local':
      (pattern ? outputs : inputs).add(t.name);
      return;
    case 'const':
    case 'input':
      return;
    case 'data':
    case 'ref':
      if (t.t === 'ref') analyze(t.head, false, inputs, outputs);
      for (const p of t.path) {
        if (p.t === 'local') outputs.add(p.name);
        else analyze(p, p.t === 'array' || p.t === 'object', inputs, outputs);
      }
      return;
    case 'array':
      for (const x of t.items) analyze(x, pattern, inputs, outputs);
      return;
    case 'object':
      for (const [k, v] of t.entries) {
        analyze(k, false, inputs, outputs);
        analyze(v, pattern, inputs, outputs);
      }
      return;
    case 'set':
      for (const x of t.items) analyze(x, false, inputs, outputs);
      return;
    case 'call':
      for (const a of t.args) analyze(a, false, inputs, outputs);
      return;
    case 'member':
      if (t.key) analyze(t.key, false, inputs, outputs);
      analyze(t.value, false, inputs, outputs);
      analyze(t.coll, false, inputs, outputs);
      return;
    case 'arraycomp':
    case 'setcomp':
    case 'objectcomp':
      for (const v of comprehensionFreeVars(t)) inputs.add(v);
      return;
  }
}

/**
 * A comprehension's free variables, found once per comprehension: a unification analyzes each
 * side twice (as a value and as a pattern), so comprehensions nested in unifications (as every
 * template string's `{…}` is) were walked 2^depth times; 22 nested template strings took 12 s
 * to compile. The set does not depend on the order of the body, which safety may change.
 */
const freeVarsOf = new WeakMap<ITerm, readonly string[]>();

function comprehensionFreeVars(t: Extract<ITerm, { t: 'arraycomp' | 'setcomp' | 'objectcomp' }>): readonly string[] {
  let vars = freeVarsOf.get(t);
  if (vars === undefined) {
    const out = new Set<string>();
    freeVars(t.body, t.t === 'objectcomp' ? [t.key, t.value] : [t.term], t.locals, out);
    vars = [...out];
    freeVarsOf.set(t, vars);
  }
  return vars;
}

function isComposite(t: ITerm): boolean {
  return t.t === 'array' || t.t === 'object' || (t.t === 'const' && t.v !== null && typeof t.v === 'object');
}

/** Inputs/outputs of an expression; `all` = the variables of both sides in any role. */
function exprNeeds(e: IExpr, all = false): { inputs: Names; outputs: Names; alts?: Names[] } {
  const inputs = new Set<string>();
  const outputs = new Set<string>();
  for (const w of e.with) analyze(w.value, false, inputs, outputs);
  switch (e.k) {
    case 'term':
      analyze(e.term, false, inputs, outputs);
      break;
    case 'unify': {
      // Either side may be evaluated and the other matched against it; both composite sides
      // are unified element by element. Record the alternatives' inputs.
      const li = new Set<string>(), lo = new Set<string>(), ri = new Set<string>(), ro = new Set<string>();
      analyze(e.left, false, li, lo);
      analyze(e.right, false, ri, ro);
      const lpi = new Set<string>(), lpo = new Set<string>(), rpi = new Set<string>(), rpo = new Set<string>();
      analyze(e.left, true, lpi, lpo);
      analyze(e.right, true, rpi, rpo);
      for (const s of [lpo, rpo, lpi, rpi]) for (const v of s) outputs.add(v);
      const alt1 = new Set([...li, ...rpi, ...inputs]);
      const alt2 = new Set([...ri, ...lpi, ...inputs]);
      const alts = [alt1, alt2];
      if (isComposite(e.left) && isComposite(e.right)) alts.push(new Set([...lpi, ...rpi, ...inputs]));
      if (all) {
        for (const v of [...li, ...ri]) inputs.add(v);
        return { inputs, outputs };
      }
      return { inputs, outputs, alts };
    }
    case 'somein':
      analyze(e.coll, false, inputs, outputs);
      if (e.key) analyze(e.key, true, inputs, outputs);
      analyze(e.value, true, inputs, outputs);
      break;
    case 'every':
      analyze(e.domain, false, inputs, outputs);
      freeVars(e.body, [], e.locals, inputs);
      break;
    case 'body':
      freeVars(e.body, [], e.locals, inputs);
      break;
    case 'print':
      // Each operand is evaluated on its own (OPA rewrites it to a set comprehension): a ref key
      // it leaves unbound is enumerated inside the operand and binds nothing for the body.
      for (const a of e.args) analyze(a, false, inputs, outputs);
      if (!all) outputs.clear();
      break;
  }
  if (e.negated && !all) {
    for (const v of outputs) if (!v.startsWith('$')) inputs.add(v);
    outputs.clear();
  }
  return { inputs, outputs };
}

function subset(a: Names, bound: Names): boolean {
  for (const v of a) if (!bound.has(v)) return false;
  return true;
}

export function displayName(v: string): string {
  const i = v.lastIndexOf('#');
  return i > 0 ? v.slice(0, i) : v;
}

/**
 * Reorders `body` so that every expression's inputs are bound when it runs; `bound` holds the
 * variables bound on entry and is extended with what the body binds. Nested comprehension and
 * `every` bodies are reordered too, with the enclosing variables counted as bound.
 */
export function reorder(body: IExpr[], bound: Names): IExpr[] {
  const pending = body.map((e) => ({ e, needs: exprNeeds(e) }));
  const out: IExpr[] = [];
  while (pending.length > 0) {
    let picked = -1;
    for (let i = 0; i < pending.length; i++) {
      const { needs } = pending[i]!;
      const ok = needs.alts ? needs.alts.some((a) => subset(a, bound)) : subset(needs.inputs, bound);
      if (ok) {
        picked = i;
        break;
      }
    }
    if (picked < 0) {
      const { e, needs } = pending[0]!;
      // Every alternative's variables, the first's first: in a template string's `{y}`, read as
      // `{$N | $N = y}`, the first alternative holds only the generated `$N`, and the variable
      // to name is the one the author wrote (`y`, as OPA names it), not `_`.
      const missing = (needs.alts ?? [needs.inputs]).flatMap((a) => [...a]).filter((v) => !bound.has(v));
      const names = [...new Set(missing.map(displayName))].filter((n) => !n.startsWith('$'));
      throw new RegoError('rego_unsafe_var_error', `var ${names[0] ?? '_'} is unsafe`, e.loc);
    }
    const [{ e, needs }] = pending.splice(picked, 1);
    for (const v of needs.inputs) bound.add(v);
    for (const v of needs.outputs) bound.add(v);
    out.push(reorderNested(e, bound));
  }
  return out;
}

/** `t` with each comprehension in it reordered (reorder) with `bound` counted as bound. */
export function reorderTerm(t: ITerm, bound: Names): ITerm {
  switch (t.t) {
    case 'arraycomp':
    case 'setcomp':
    case 'objectcomp': {
      const inner = new Set<string>();
      for (const v of bound) inner.add(v);
      const body = reorder(t.body, inner);
      const head = t.t === 'objectcomp' ? [t.key, t.value] : [t.term];
      for (const h of head) checkBound(h, inner);
      return { ...t, body };
    }
    case 'array':
      return { ...t, items: t.items.map((x) => reorderTerm(x, bound)) };
    case 'set':
      return { ...t, items: t.items.map((x) => reorderTerm(x, bound)) };
    case 'object':
      return { ...t, entries: t.entries.map(([k, v]) => [reorderTerm(k, bound), reorderTerm(v, bound)] as [ITerm, ITerm]) };
    case 'call':
      return { ...t, args: t.args.map((x) => reorderTerm(x, bound)) };
    case 'ref':
      return { ...t, head: reorderTerm(t.head, bound), path: t.path.map((x) => reorderTerm(x, bound)) };
    case 'data':
      return { ...t, path: t.path.map((x) => reorderTerm(x, bound)) };
    case 'member':
      return {
        ...t,
        ...(t.key ? { key: reorderTerm(t.key, bound) } : {}),
        value: reorderTerm(t.value, bound),
        coll: reorderTerm(t.coll, bound),
      };
    default:
      return t;
  }
}

function reorderNested(e: IExpr, bound: Names): IExpr {
  const withs = e.with.map((w) => ({ ...w, value: reorderTerm(w.value, bound) }));
  switch (e.k) {
    case 'term':
      return { ...e, with: withs, term: reorderTerm(e.term, bound) };
    case 'unify':
      return { ...e, with: withs, left: reorderTerm(e.left, bound), right: reorderTerm(e.right, bound) };
    case 'somein':
      return { ...e, with: withs, coll: reorderTerm(e.coll, bound) };
    case 'every': {
      const inner = new Set<string>(bound);
      for (const v of e.locals) inner.add(v);
      return { ...e, with: withs, domain: reorderTerm(e.domain, bound), body: reorder(e.body, inner) };
    }
    case 'body':
      return { ...e, with: withs, body: reorder(e.body, new Set(bound)) };
    case 'print':
      return { ...e, with: withs, args: e.args.map((a) => reorderTerm(a, bound)) };
  }
}

/** Head terms (rule value, key) must only use bound variables. */
export function checkBound(t: ITerm, bound: Names): void {
  const inputs = new Set<string>();
  const outputs = new Set<string>();
  analyze(t, false, inputs, outputs);
  for (const v of inputs) {
    if (!bound.has(v)) throw new RegoError('rego_unsafe_var_error', `var ${displayName(v)} is unsafe`, t.loc);
  }
}
