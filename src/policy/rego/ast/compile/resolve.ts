/**
 * Name resolution: AST → IR. Mirrors OPA's compiler stages that rewrite refs: rule names in
 * the package and imports become absolute `data` refs, locals get scope-unique names (so a
 * comprehension's `x` never clashes with the body's `x`), built-in calls are checked against
 * the registry (unknown name → "undefined function", wrong arity → type error), calls with an
 * extra output argument become unifications, and ground composites are folded to constants.
 */
import type { Body, Expr, Import, Location, Module, Term, VarTerm, WithModifier } from '../nodes.js';
import { RegoError } from '../../errors.js';
import { BUILTINS } from '../../builtins/index.js';
import { RegoDecimal, RegoSet, makeObject, type Value } from '../../value.js';
import { RELATIONS, isRelation, type FnTarget, type IExpr, type ITerm, type IWith } from './ir.js';

/** A built-in or relation name (`count`, `walk`): a `with` target or replacement, not a variable. */
function isBuiltinName(name: string): boolean {
  return BUILTINS.has(name) || isRelation(name);
}

/** Module-level names: what a bare name means before locals are considered. */
export interface ModuleEnv {
  /** Package path below data. */
  pkg: string[];
  /** Rule names (first head segment) of every rule in the package, from all its modules. */
  ruleNames: Set<string>;
  /** Import name → absolute path, first element 'data' or 'input'. */
  imports: Map<string, { root: 'data' | 'input'; path: Term[] }>;
  /** Absolute function path (dot-joined, without `data.`) → arity. */
  functionArity: Map<string, number>;
  /** Set when a literal needs an exact decimal (shared with the planner: see decimal.ts). */
  numbers?: { decimals: boolean };
}

class Scope {
  readonly names = new Map<string, string>();
  /** Names declared with `:=` in this scope (a second `:=` is an error, as in OPA). */
  readonly assigned = new Set<string>();
  constructor(readonly parent: Scope | undefined, private readonly counter: { n: number }) {}
  lookup(name: string): string | undefined {
    return this.names.get(name) ?? this.parent?.lookup(name);
  }
  declare(name: string): string {
    const unique = `${name}#${this.counter.n++}`;
    this.names.set(name, unique);
    return unique;
  }
}

function constOf(t: ITerm): Value | undefined {
  return t.t === 'const' ? t.v : undefined;
}

/** Collects var names used in a term, not descending into comprehension bodies. */
function termVars(t: Term, out: Set<string>): void {
  switch (t.type) {
    case 'var':
      out.add(t.name);
      return;
    case 'ref':
      termVars(t.head, out);
      for (const p of t.path) termVars(p, out);
      return;
    case 'array':
    case 'set':
      for (const x of t.items) termVars(x, out);
      return;
    case 'object':
      for (const [k, v] of t.entries) {
        termVars(k, out);
        termVars(v, out);
      }
      return;
    case 'call':
      for (const a of t.args) termVars(a, out);
      return;
    case 'member':
      if (t.key) termVars(t.key, out);
      termVars(t.value, out);
      termVars(t.collection, out);
      return;
    default:
      return;
  }
}

function exprVars(e: Expr, out: Set<string>): void {
  switch (e.kind) {
    case 'term':
      termVars(e.term, out);
      break;
    case 'assign':
    case 'unify':
      termVars(e.left, out);
      termVars(e.right, out);
      break;
    case 'somein':
      termVars(e.collection, out);
      break;
    case 'every':
      termVars(e.domain, out);
      break;
    case 'some':
      break;
  }
  for (const w of e.with) {
    // `with count as sum`: a built-in's name is not a variable
    const v = w.value;
    if (v.type === 'var' && isBuiltinName(v.name)) continue;
    if (v.type === 'ref' && v.head.type === 'var' && v.path.every((p) => p.type === 'string')) {
      const name = [v.head.name, ...v.path.map((p) => (p as { value: string }).value)].join('.');
      if (isBuiltinName(name)) continue;
    }
    termVars(v, out);
  }
}

export class Resolver {
  private readonly counter = { n: 0 };
  /** Per enclosing body: names a later `:=` / `some` declares (using them earlier is an error). */
  private readonly pending: Array<Set<string>> = [];
  constructor(private readonly env: ModuleEnv) {}

  newScope(parent?: Scope): Scope {
    return new Scope(parent, this.counter);
  }

  /** Declares function-argument vars in a fresh rule scope. */
  declareArgs(scope: Scope, args: readonly Term[]): void {
    const vs = new Set<string>();
    for (const a of args) termVars(a, vs);
    for (const v of vs) scope.declare(v);
  }

  private isGlobal(name: string): boolean {
    return name === 'input' || name === 'data' || this.env.imports.has(name) || this.env.ruleNames.has(name);
  }

  /**
   * Resolves a body in `scope`. As in OPA, variables declared with `:=`, `some` or `some … in`
   * are declared where they appear (a comprehension before the declaration has its own
   * variable of that name); other variables are unification variables of the whole body.
   */
  body(body: Body, scope: Scope): IExpr[] {
    const declared = new Set<string>();
    for (const e of body) {
      if (e.kind === 'some') for (const v of e.vars) declared.add(v.name);
      else if (e.kind === 'assign') termVars(e.left, declared);
      else if (e.kind === 'somein') {
        if (e.key) termVars(e.key, declared);
        termVars(e.value, declared);
      }
    }
    const used = new Set<string>();
    for (const e of body) exprVars(e, used);
    for (const v of used) {
      if (declared.has(v) || scope.lookup(v) !== undefined || this.isGlobal(v)) continue;
      scope.declare(v);
    }
    const out: IExpr[] = [];
    this.pending.push(declared);
    try {
      for (const e of body) {
        const r = this.expr(e, scope);
        if (r) out.push(r);
      }
    } finally {
      this.pending.pop();
    }
    return out;
  }

  /** Declares implicit locals for head terms not bound by the body (they will be unsafe). */
  headTerm(t: Term, scope: Scope): ITerm {
    const used = new Set<string>();
    termVars(t, used);
    for (const v of used) if (scope.lookup(v) === undefined && !this.isGlobal(v)) scope.declare(v);
    return this.term(t, scope);
  }

  private withs(ws: readonly WithModifier[], scope: Scope): IWith[] {
    return ws.map((w) => this.with(w, scope));
  }

  private dotted(t: Term): string[] | undefined {
    if (t.type === 'var') return [t.name];
    if (t.type !== 'ref') return undefined;
    const head = this.dotted(t.head);
    if (!head) return undefined;
    const rest: string[] = [];
    for (const p of t.path) {
      if (p.type !== 'string') return undefined;
      rest.push(p.value);
    }
    return [...head, ...rest];
  }

  /** Absolute path of a name as written (`f`, `lib.f`, `data.x.f`), or undefined if not data. */
  private absolute(parts: string[], scope: Scope): { root: 'data' | 'input'; path: string[] } | undefined {
    const [first, ...rest] = parts;
    if (first === undefined || scope.lookup(first) !== undefined) return undefined;
    if (first === 'data') return { root: 'data', path: rest };
    if (first === 'input') return { root: 'input', path: rest };
    const imp = this.env.imports.get(first);
    if (imp) {
      const p: string[] = [];
      for (const x of imp.path) if (x.type === 'string') p.push(x.value);
      return { root: imp.root, path: [...p, ...rest] };
    }
    if (this.env.ruleNames.has(first)) return { root: 'data', path: [...this.env.pkg, first, ...rest] };
    return undefined;
  }

  private with(w: WithModifier, scope: Scope): IWith {
    const parts = this.dotted(w.target);
    if (!parts) throw new RegoError('rego_compile_error', 'with keyword target must reference existing input, data, or a function', w.loc);
    const abs = this.absolute(parts, scope);
    let target: IWith['target'];
    if (abs?.root === 'input') target = { kind: 'input', path: abs.path };
    else if (abs?.root === 'data') {
      const key = abs.path.join('.');
      target = this.env.functionArity.has(key) ? { kind: 'fn', name: 'data.' + key } : { kind: 'data', path: abs.path };
    } else {
      const name = parts.join('.');
      if (!isBuiltinName(name)) throw new RegoError('rego_compile_error', `with keyword target must reference existing input, data, or a function: ${name}`, w.loc);
      target = { kind: 'fn', name };
    }
    const res: IWith = { target, value: { t: 'const', v: null, loc: w.loc }, loc: w.loc };
    const vparts = this.dotted(w.value);
    if (vparts) {
      const vabs = this.absolute(vparts, scope);
      if (vabs?.root === 'data' && this.env.functionArity.has(vabs.path.join('.'))) {
        res.fnValue = { kind: 'user', path: vabs.path, name: 'data.' + vabs.path.join('.') };
        return res;
      }
      const name = vparts.join('.');
      if (!vabs && scope.lookup(vparts[0]!) === undefined && BUILTINS.has(name)) {
        res.fnValue = { kind: 'builtin', name, def: BUILTINS.get(name)! };
        return res;
      }
    }
    if (target.kind === 'fn' && target.name.startsWith('data.') && !vparts) {
      // a user function mocked by a value is allowed (OPA treats it as a constant result)
    }
    res.value = this.term(w.value, scope);
    return res;
  }

  expr(e: Expr, scope: Scope): IExpr | undefined {
    const base = { negated: e.negated, with: this.withs(e.with, scope), loc: e.loc };
    switch (e.kind) {
      case 'some':
        for (const v of e.vars) {
          this.pending[this.pending.length - 1]?.delete(v.name);
          scope.declare(v.name);
        }
        return undefined;
      case 'assign': {
        const right = this.term(e.right, scope);
        const vs = new Set<string>();
        termVars(e.left, vs);
        for (const v of vs) {
          if (v.startsWith('$')) continue;
          if (v === 'input' || v === 'data') throw new RegoError('rego_compile_error', `variables must not shadow ${v} (use a different variable name)`, e.loc);
          if (scope.assigned.has(v)) throw new RegoError('rego_compile_error', `var ${v} assigned above`, e.loc);
          scope.assigned.add(v);
        }
        for (const v of vs) {
          this.pending[this.pending.length - 1]?.delete(v);
          scope.declare(v);
        }
        return { ...base, k: 'unify', left: this.term(e.left, scope), right };
      }
      case 'unify':
        return { ...base, k: 'unify', left: this.term(e.left, scope), right: this.term(e.right, scope) };
      case 'somein': {
        const coll = this.term(e.collection, scope);
        const vs = new Set<string>();
        if (e.key) termVars(e.key, vs);
        termVars(e.value, vs);
        for (const v of vs) {
          this.pending[this.pending.length - 1]?.delete(v);
          scope.declare(v);
        }
        return {
          ...base,
          k: 'somein',
          ...(e.key ? { key: this.term(e.key, scope) } : {}),
          value: this.term(e.value, scope),
          coll,
        };
      }
      case 'every': {
        const inner = this.newScope(scope);
        const vs = new Set<string>();
        if (e.key) termVars(e.key, vs);
        termVars(e.value, vs);
        for (const v of vs) inner.declare(v);
        const key = e.key ? this.term(e.key, inner) : undefined;
        const value = this.term(e.value, inner);
        const body = this.body(e.body, inner);
        return {
          ...base,
          k: 'every',
          ...(key ? { key } : {}),
          value,
          domain: this.term(e.domain, scope),
          body,
          locals: new Set(inner.names.values()),
        };
      }
      case 'notbody': {
        const inner = this.newScope(scope);
        const body = this.body(e.body, inner);
        return { ...base, negated: true, k: 'body', body, locals: new Set(inner.names.values()) };
      }
      case 'term': {
        const t = e.term;
        if (t.type === 'call' && this.isPrint(t.op, t.opPath, scope)) {
          return { ...base, k: 'print', args: t.args.map((a) => this.term(a, scope)) };
        }
        if (t.type === 'call') {
          const fn = this.fnTarget(t.op, t.opPath, t.loc, scope);
          const arity = this.arityOf(fn);
          if (arity !== undefined && t.args.length === arity + 1) {
            const call: ITerm = { t: 'call', fn, args: t.args.slice(0, -1).map((a) => this.term(a, scope)), loc: t.loc };
            return { ...base, k: 'unify', left: call, right: this.term(t.args[arity]!, scope) };
          }
        }
        return { ...base, k: 'term', term: this.term(t, scope) };
      }
    }
  }

  private arityOf(fn: FnTarget): number | undefined {
    if (fn.kind === 'builtin') return fn.def.arity;
    if (fn.kind === 'relation') return RELATIONS[fn.name];
    return this.env.functionArity.get(fn.path.join('.'));
  }

  /** `print(…)`, unless a package function of that name shadows the built-in. */
  private isPrint(op: string, opPath: readonly string[], scope: Scope): boolean {
    return op === 'print' && opPath.length === 1 && this.absolute([...opPath], scope) === undefined;
  }

  private fnTarget(op: string, opPath: readonly string[], loc: Location, scope: Scope): FnTarget {
    const abs = this.absolute([...opPath], scope);
    if (abs?.root === 'data') {
      const key = abs.path.join('.');
      if (!this.env.functionArity.has(key) && opPath[0] !== 'data' && BUILTINS.has(op)) {
        return { kind: 'builtin', name: op, def: BUILTINS.get(op)! };
      }
      if (!this.env.functionArity.has(key) && opPath[0] !== 'data' && isRelation(op)) return { kind: 'relation', name: op };
      if (!this.env.functionArity.has(key)) throw new RegoError('rego_type_error', `undefined function data.${key}`, loc);
      return { kind: 'user', path: abs.path, name: 'data.' + key };
    }
    const def = BUILTINS.get(op);
    if (!def && isRelation(op)) return { kind: 'relation', name: op };
    if (!def) throw new RegoError('rego_type_error', `undefined function ${op}`, loc);
    return { kind: 'builtin', name: op, def };
  }

  term(t: Term, scope: Scope): ITerm {
    const loc = t.loc;
    switch (t.type) {
      case 'null':
        return { t: 'const', v: null, loc };
      case 'number': {
        // A literal a double cannot hold exactly (more digits, underflow) keeps its exact value.
        if (typeof t.value === 'number' && /[.eE]/.test(t.raw)) {
          const d = RegoDecimal.fromLiteral(t.raw);
          if (d !== undefined) {
            if (this.env.numbers) this.env.numbers.decimals = true;
            return { t: 'const', v: d, loc };
          }
        }
        return { t: 'const', v: t.value, loc };
      }
      case 'boolean':
      case 'string':
        return { t: 'const', v: t.value, loc };
      case 'var':
        return this.varTerm(t, scope);
      case 'ref': {
        let head = this.term(t.head, scope);
        let path = t.path.map((p) => this.term(p, scope));
        if (head.t === 'data') {
          path = [...head.path, ...path];
          return { t: 'data', path, loc };
        }
        if (head.t === 'ref') {
          path = [...head.path, ...path];
          head = head.head;
        }
        return { t: 'ref', head, path, loc };
      }
      case 'array': {
        const items = t.items.map((x) => this.term(x, scope));
        if (items.every((x) => x.t === 'const')) return { t: 'const', v: items.map((x) => constOf(x)!), loc };
        return { t: 'array', items, loc };
      }
      case 'set': {
        const items = t.items.map((x) => this.term(x, scope));
        if (items.every((x) => x.t === 'const')) return { t: 'const', v: RegoSet.from(items.map((x) => constOf(x)!)), loc };
        return { t: 'set', items, loc };
      }
      case 'object': {
        const entries = t.entries.map(([k, v]) => [this.term(k, scope), this.term(v, scope)] as [ITerm, ITerm]);
        if (entries.every(([k, v]) => k.t === 'const' && v.t === 'const')) {
          const keys = new Set<string>();
          let dup = false;
          for (const [k] of entries) {
            const kk = JSON.stringify(typeof constOf(k) === 'bigint' ? String(constOf(k)) : constOf(k) ?? null);
            if (keys.has(kk)) dup = true;
            keys.add(kk);
          }
          if (!dup) return { t: 'const', v: makeObject(entries.map(([k, v]) => [constOf(k)!, constOf(v)!])), loc };
        }
        return { t: 'object', entries, loc };
      }
      case 'call': {
        // print has no value to use (OPA: a statement only)
        if (this.isPrint(t.op, t.opPath, scope)) throw new RegoError('rego_type_error', 'print: used as a value: print can only be a statement of its own', loc);
        const fn = this.fnTarget(t.op, t.opPath, t.loc, scope);
        const arity = this.arityOf(fn);
        if (arity !== undefined && t.args.length !== arity) {
          throw new RegoError('rego_type_error', `${t.op}: arity mismatch: have ${t.args.length} arguments, want ${arity}`, loc);
        }
        return { t: 'call', fn, args: t.args.map((a) => this.term(a, scope)), loc };
      }
      case 'member':
        return {
          t: 'member',
          ...(t.key ? { key: this.term(t.key, scope) } : {}),
          value: this.term(t.value, scope),
          coll: this.term(t.collection, scope),
          loc,
        };
      case 'arraycomp':
      case 'setcomp': {
        const inner = this.newScope(scope);
        const body = this.body(t.body, inner);
        const term = this.headTerm(t.term, inner);
        return { t: t.type, term, body, locals: new Set(inner.names.values()), loc };
      }
      case 'objectcomp': {
        const inner = this.newScope(scope);
        const body = this.body(t.body, inner);
        const key = this.headTerm(t.key, inner);
        const value = this.headTerm(t.value, inner);
        return { t: 'objectcomp', key, value, body, locals: new Set(inner.names.values()), loc };
      }
    }
  }

  private varTerm(t: VarTerm, scope: Scope): ITerm {
    const local = scope.lookup(t.name);
    if (local !== undefined) return { t: 'local', name: local, wildcard: t.wildcard === true, loc: t.loc };
    if (t.name === 'input') return { t: 'input', loc: t.loc };
    if (t.name === 'data') return { t: 'data', path: [], loc: t.loc };
    const imp = this.env.imports.get(t.name);
    if (imp) {
      const path = imp.path.map((p) => this.term(p, scope));
      if (imp.root === 'input') return path.length ? { t: 'ref', head: { t: 'input', loc: t.loc }, path, loc: t.loc } : { t: 'input', loc: t.loc };
      return { t: 'data', path, loc: t.loc };
    }
    if (this.env.ruleNames.has(t.name)) {
      return { t: 'data', path: [...this.env.pkg, t.name].map((s) => ({ t: 'const', v: s, loc: t.loc }) as ITerm), loc: t.loc };
    }
    // Unknown at this point: a fresh local (safety reports it if nothing binds it) — unless a
    // later `:=` or `some` declares it, which OPA reports here.
    // (In a comprehension, such a name is the comprehension's own variable, as in OPA.)
    if (!t.wildcard && this.pending[this.pending.length - 1]?.has(t.name)) {
      throw new RegoError('rego_compile_error', `var ${t.name} referenced above`, t.loc);
    }
    return { t: 'local', name: scope.declare(t.name), wildcard: t.wildcard === true, loc: t.loc };
  }
}

/** Builds the import table of a module. `rego.v1` / `future.keywords` imports bind nothing. */
export function importTable(imports: readonly Import[]): Map<string, { root: 'data' | 'input'; path: Term[] }> {
  const m = new Map<string, { root: 'data' | 'input'; path: Term[] }>();
  for (const imp of imports) {
    if (imp.keyword) continue;
    const p = imp.path;
    const headName = p.type === 'var' ? p.name : p.head.type === 'var' ? p.head.name : undefined;
    if (headName !== 'data' && headName !== 'input') {
      throw new RegoError('rego_parse_error', 'unexpected import path, must begin with one of: {data, input}', imp.loc);
    }
    m.set(imp.name, { root: headName, path: p.type === 'ref' ? [...p.path] : [] });
  }
  return m;
}

export type { Module };
