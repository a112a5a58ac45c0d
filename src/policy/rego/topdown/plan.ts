/**
 * The planner: turns resolved, reordered IR into closures, once, at compile time. Evaluation
 * is continuation-passing: a term calls `k` with each of its values, an expression calls `k`
 * for each way it holds, and a `true` return means "stop" (used for negation, complete rules
 * with constant values and early exit). Variables live in per-rule frames (arrays indexed by
 * slot); a binding made while matching is undone when its continuation returns.
 */
import { RegoError } from '../errors.js';
import { BuiltinError, type BuiltinDef } from '../builtins/types.js';
import { printLine, walkPairs } from '../builtins/index.js';
import {
  RegoDecimal,
  RegoObject,
  RegoSet,
  equal,
  isObject,
  keyOf,
  makeObject,
  objectGet,
  objectEntries,
  objectSize,
  type PlainObject,
  type Value,
} from '../value.js';
import type { FnTarget, IExpr, ITerm, IWith } from '../ast/compile/ir.js';
import { analyze, displayName } from '../ast/compile/safety.js';
import type { Location } from '../ast/nodes.js';
import { Ctx, tick, type Mock, type OverrideTree } from './context.js';
import { MAX_RESULT_ELEMENTS, MAX_RESULT_STRING, checkElements, checkStringSize, exhaustion } from '../meter.js';
import { allBound, callFunction, dataConst, enumerate, lookup, setPath, walkData, walkValue } from './eval.js';
import type { DocNode, ExprFn, Frame, K, TermPlan, VK } from './tree.js';

type Single = (c: Ctx, f: Frame) => Value | undefined;

function evalKeys(c: Ctx, f: Frame, parts: readonly Single[]): Value[] | undefined {
  const keys: Value[] = new Array(parts.length);
  for (let i = 0; i < parts.length; i++) {
    const k = parts[i]!(c, f);
    if (k === undefined) return undefined;
    keys[i] = k;
  }
  return keys;
}

function matchByEval(ev: TermPlan['eval']): TermPlan['match'] {
  return (c, f, x, k) => ev(c, f, (v) => (equal(v, x) ? k() : false));
}

/** Shared by every plan without inputs (never written to). */
const NO_SLOTS: readonly number[] = Object.freeze([]);

/**
 * The plan of a single-valued term without variables: `eval` and `match` are methods over
 * `single` rather than closures per term, and the term's sub-plans are not kept (only their
 * `single` evaluators are). Most terms of a typical policy (`input.a.b`, constants, calls on
 * them) are of this kind, and closures with their contexts were most of a compiled policy's heap.
 */
class SinglePlan implements TermPlan {
  readonly composite = undefined;
  constructor(
    readonly single: Single,
    readonly inSlots: readonly number[],
  ) {}

  eval(c: Ctx, f: Frame, k: VK): boolean {
    const v = this.single(c, f);
    return v === undefined ? false : k(v);
  }

  match(c: Ctx, f: Frame, x: Value, k: K): boolean {
    const v = this.single(c, f);
    return v !== undefined && equal(v, x) ? k() : false;
  }
}

/** A constant's plan: one object per constant, its methods shared. */
class ConstPlan implements TermPlan {
  readonly inSlots = NO_SLOTS;
  readonly composite = undefined;
  readonly single: Single;
  constructor(readonly constant: Value) {
    this.single = constSingle(constant);
  }

  eval(_c: Ctx, _f: Frame, k: VK): boolean {
    return k(this.constant);
  }

  match(_c: Ctx, _f: Frame, x: Value, k: K): boolean {
    return equal(x, this.constant) ? k() : false;
  }
}

/** A variable's plan: its frame slot; unbound, it is an error to evaluate and bound by matching. */
class LocalPlan implements TermPlan {
  readonly composite = undefined;
  readonly inSlots: readonly number[];
  readonly single: Single;
  constructor(
    private readonly slot: number,
    private readonly name: string,
    private readonly loc: Location,
  ) {
    this.inSlots = [slot];
    this.single = slotSingle(slot);
  }

  eval(_c: Ctx, f: Frame, k: VK): boolean {
    const v = f[this.slot];
    if (v === undefined) throw new RegoError('rego_unsafe_var_error', `var ${this.name} is unsafe`, this.loc);
    return k(v);
  }

  match(_c: Ctx, f: Frame, x: Value, k: K): boolean {
    const s = this.slot;
    const cur = f[s];
    if (cur === undefined) {
      f[s] = x;
      const r = k();
      f[s] = undefined;
      return r;
    }
    return equal(cur, x) ? k() : false;
  }
}

function slotSingle(s: number): Single {
  return (_c, f) => f[s];
}

// Module-level factories: a closure made here captures only its parameters, not the planner's
// locals (a closure keeps its whole enclosing scope's context alive).
function constSingle(v: Value): Single {
  return () => v;
}

const inputSingle: Single = (c) => c.input;

/** `head.k1.k2…` with constant keys. */
function refConstSingle(head: Single, keys: readonly Value[]): Single {
  const n = keys.length;
  return (c, f) => {
    let v = head(c, f);
    for (let i = 0; i < n && v !== undefined; i++) v = lookup(v, keys[i]!);
    return v;
  };
}

/** `data.k1.k2…` with constant keys, from the deepest static node (unless `with data` is in force). */
function dataConstSingle(root: DocNode, rootBase: Value, node: DocNode, base: Value | undefined, keys: readonly Value[], start: number): Single {
  return (c) => (c.overrides === undefined ? dataConst(c, node, base, undefined, keys, start) : dataConst(c, root, rootBase, c.overrides, keys, 0));
}

/** A term expression with a single evaluator: holds unless undefined or false. */
function singleExpr(single: Single): ExprFn {
  return (c, f, k) => {
    tick(c.budget);
    const v = single(c, f);
    return v === undefined || v === false ? false : k();
  };
}

function argsOf(c: Ctx, f: Frame, singles: readonly Single[]): Value[] | undefined {
  const n = singles.length;
  const vals: Value[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const v = singles[i]!(c, f);
    if (v === undefined) return undefined;
    vals[i] = v;
  }
  return vals;
}

function builtinSingle(singles: readonly Single[], def: BuiltinDef, name: string, loc: Location, numbers: { decimals: boolean }): Single {
  return (c, f) => {
    const vals = argsOf(c, f, singles);
    if (vals === undefined) return undefined;
    if (c.mocks !== undefined) {
      const m = c.mocks.get(name);
      if (m !== undefined) return m.kind === 'value' ? m.value : m.call(unmocked(c), vals);
    }
    return invokeBuiltin(c, def, vals, loc, numbers.decimals);
  };
}

function functionSingle(singles: readonly Single[], node: DocNode, name: string): Single {
  return (c, f) => {
    const vals = argsOf(c, f, singles);
    if (vals === undefined) return undefined;
    if (c.mocks !== undefined) {
      const m = c.mocks.get(name);
      if (m !== undefined) return m.kind === 'value' ? m.value : m.call(unmocked(c), vals);
    }
    return callFunction(c, node, vals);
  };
}

/**
 * Built-ins that only compare or count (through value.ts `compare`/`equal`/sizes), so they get
 * exact decimals as they are; every other built-in gets doubles (toDoubles).
 */
const EXACT_BUILTINS = new Set(['equal', 'neq', 'lt', 'lte', 'gt', 'gte', 'count', 'max', 'min', 'sort']);

/** An array, set or object: what `every` iterates (anything else makes it false). */
function isCollection(v: Value): boolean {
  return Array.isArray(v) || v instanceof RegoSet || isObject(v);
}

/** Values with every exact decimal (decimal.ts) replaced by its nearest double; `v` itself if none. */
export function toDoubles(v: Value): Value {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof RegoDecimal) return v.num;
  if (Array.isArray(v)) {
    let out: Value[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = toDoubles(v[i]!);
      if (x !== v[i] && out === undefined) out = v.slice(0, i);
      if (out !== undefined) out.push(x);
    }
    return out ?? v;
  }
  let changed = false;
  const entries: Array<[Value, Value]> = [];
  const items = v instanceof RegoSet ? [...v.values()].map((x) => [x, x] as [Value, Value]) : objectEntries(v);
  for (const [k, x] of items) {
    const k2 = toDoubles(k);
    const x2 = toDoubles(x);
    if (k2 !== k || x2 !== x) changed = true;
    entries.push([k2, x2]);
  }
  if (!changed) return v;
  return v instanceof RegoSet ? RegoSet.from(entries.map((e) => e[0])) : makeObject(entries);
}

/**
 * A built-in's result must fit the size caps (meter.ts): a call may not build a value larger
 * than MAX_RESULT_ELEMENTS / MAX_RESULT_STRING, so repeated doubling (`array.concat(a, a)`)
 * stops at the first oversized result. Constant time: plain objects are not counted (the
 * built-ins that build them are bounded by their operands or check as they build).
 */
function checkResult(name: string, r: Value): void {
  if (typeof r === 'string') {
    if (r.length > MAX_RESULT_STRING) checkStringSize(r.length, name);
  } else if (typeof r === 'object' && r !== null) {
    if (Array.isArray(r)) {
      if (r.length > MAX_RESULT_ELEMENTS) checkElements(r.length, name);
    } else if (r instanceof RegoSet || r instanceof RegoObject) {
      if (r.size > MAX_RESULT_ELEMENTS) checkElements(r.size, name);
    }
  }
}

export function invokeBuiltin(c: Ctx, def: BuiltinDef, args: Value[], loc: Location, decimals = false): Value | undefined {
  try {
    if (decimals && !EXACT_BUILTINS.has(def.name)) args = args.map(toDoubles);
    const r = def.fn(args, c.budget.bctx);
    if (r !== undefined) checkResult(def.name, r);
    return r;
  } catch (e) {
    if (e instanceof BuiltinError) {
      // As OPA: built-in errors (type errors included) make the call undefined unless strict.
      if (c.budget.bctx.strict) throw new RegoError(e.code, e.message, loc);
      return undefined;
    }
    // Budget errors from the work meter carry no location: give them the call's.
    if (e instanceof RegoError) {
      if (e.location !== undefined) throw e;
      const named = e.code !== 'eval_budget_exceeded' || e.message.includes(def.name) ? e.message : `${e.message} (in ${def.name})`;
      throw new RegoError(e.code, named, loc);
    }
    if (e instanceof RangeError) {
      // Only exhaustion is a budget matter (stack, string, array or bigint too large); any
      // other RangeError is an operand the built-in did not anticipate, handled as a built-in
      // error. Its message may quote the operand, so it is not repeated.
      if (exhaustion(e.message)) throw new RegoError('eval_budget_exceeded', `evaluation budget exceeded: ${def.name}: ${e.message}`, loc);
      if (c.budget.bctx.strict) throw new RegoError('eval_builtin_error', `${def.name}: invalid operand`, loc);
      return undefined;
    }
    throw new RegoError('eval_internal_error', `${def.name}: ${e instanceof Error ? e.message : String(e)}`, loc);
  }
}

/** Evaluates argument terms left to right (each may enumerate), then calls `k` with the values. */
// Module-level recursive helpers rather than per-call named closures: cheaper to create.
function evalArgs(c: Ctx, f: Frame, args: readonly TermPlan[], k: (vals: Value[]) => boolean): boolean {
  return evalItems(c, f, args, new Array(args.length), 0, k);
}

function evalItems(c: Ctx, f: Frame, items: readonly TermPlan[], out: Value[], i: number, k: (vals: Value[]) => boolean): boolean {
  if (i === items.length) return k(out.slice());
  return items[i]!.eval(c, f, (v) => {
    out[i] = v;
    return evalItems(c, f, items, out, i + 1, k);
  });
}

function matchItems(c: Ctx, f: Frame, items: readonly TermPlan[], x: Value[], i: number, k: K): boolean {
  if (i === items.length) return k();
  return items[i]!.match(c, f, x[i]!, () => matchItems(c, f, items, x, i + 1, k));
}

type Entries = ReadonlyArray<readonly [TermPlan, TermPlan]>;

function evalEntries(c: Ctx, f: Frame, entries: Entries, out: Array<[Value, Value]>, i: number, k: VK): boolean {
  if (i === entries.length) return k(makeObject(out));
  return entries[i]![0].eval(c, f, (kv) =>
    entries[i]![1].eval(c, f, (vv) => {
      out[i] = [kv, vv];
      return evalEntries(c, f, entries, out, i + 1, k);
    }),
  );
}

function matchEntries(c: Ctx, f: Frame, entries: Entries, x: PlainObject | RegoObject, i: number, k: K): boolean {
  if (i === entries.length) return k();
  return entries[i]![0].eval(c, f, (kv) => {
    const xv = objectGet(x, kv);
    return xv === undefined ? false : entries[i]![1].match(c, f, xv, () => matchEntries(c, f, entries, x, i + 1, k));
  });
}

export class Planner {
  slots = new Map<string, number>();
  /**
   * Each term's plan, made once per frame layout: planning a term looks at its parts more than
   * once (its plan, then whether it has a single value), which made nested arrays, objects or
   * template strings exponential to compile (20 levels of `[[…input.x…]]` took 11 s). A plan
   * depends only on the term and the slots, which grow but never change, so it can be reused.
   */
  private planned = new Map<ITerm, TermPlan>();

  constructor(
    private readonly root: DocNode,
    private readonly baseData: Value,
    /** Read at evaluation (complete by then): whether built-in arguments need toDoubles. */
    private readonly numbers: { decimals: boolean } = { decimals: false },
  ) {}

  /** Starts a new frame layout (one per rule chain or query). */
  reset(): void {
    this.slots = new Map();
    this.planned = new Map();
  }

  get frameSize(): number {
    return this.slots.size;
  }

  slot(name: string): number {
    let s = this.slots.get(name);
    if (s === undefined) {
      s = this.slots.size;
      this.slots.set(name, s);
    }
    return s;
  }

  private inSlots(t: ITerm): readonly number[] {
    const inputs = new Set<string>();
    analyze(t, false, inputs, new Set());
    return inputs.size === 0 ? NO_SLOTS : [...inputs].map((n) => this.slot(n));
  }

  nodeAt(path: readonly string[]): DocNode | undefined {
    let n: DocNode | undefined = this.root;
    for (const p of path) {
      n = n.children.get(p);
      if (!n) return undefined;
    }
    return n;
  }

  /**
   * Plans a term. Terms that can have at most one value (constants, bound variables, refs
   * with constant paths, calls on such terms, comprehensions) also get `single`, a direct
   * evaluator the hot path uses instead of continuation passing.
   */
  term(t: ITerm): TermPlan {
    let plan = this.planned.get(t);
    if (plan === undefined) {
      plan = this.termOnce(t);
      this.planned.set(t, plan);
    }
    return plan;
  }

  private termOnce(t: ITerm): TermPlan {
    // Without variables a single-valued term needs no continuation-passing plan of its own:
    // `eval` and `match` over `single` are what that plan would do (at most one value).
    // Terms with variables keep theirs (an unbound variable is an error there, not undefined),
    // and arrays and objects keep their items (unification matches them item by item).
    if (t.t === 'input' || t.t === 'data' || t.t === 'ref' || t.t === 'set' || t.t === 'member') {
      const inSlots = this.inSlots(t);
      if (inSlots.length === 0) {
        const single = this.singleOf(t);
        if (single) return new SinglePlan(single, inSlots);
      }
    }
    const plan = this.termCore(t);
    if (plan.single !== undefined || t.t === 'local' || t.t === 'const') return plan;
    const single = this.singleOf(t);
    if (!single) return plan;
    return { ...plan, single, eval: (c, f, k) => {
      const v = single(c, f);
      return v === undefined ? false : k(v);
    } };
  }

  private singleOf(t: ITerm): Single | undefined {
    switch (t.t) {
      case 'const': {
        const v = t.v;
        return () => v;
      }
      case 'local':
        return slotSingle(this.slot(t.name));
      case 'input':
        return inputSingle;
      case 'data': {
        const root = this.root;
        const rootBase = this.baseData;
        if (t.path.every((p) => p.t === 'const')) {
          const keys = t.path.map((p) => (p as { v: Value }).v);
          const { node, base, start } = this.staticPrefix(keys);
          return dataConstSingle(root, rootBase, node, base, keys, start);
        }
        // Keys computed from single-valued terms (`data.x[input.y]`): still one value.
        const parts = this.singleKeys(t.path);
        if (!parts) return undefined;
        const consts: Value[] = [];
        for (const p of t.path) {
          if (p.t !== 'const') break;
          consts.push(p.v);
        }
        const { node, base, start } = this.staticPrefix(consts);
        return (c, f) => {
          const keys = evalKeys(c, f, parts);
          if (keys === undefined) return undefined;
          return c.overrides === undefined ? dataConst(c, node, base, undefined, keys, start) : dataConst(c, root, rootBase, c.overrides, keys, 0);
        };
      }
      case 'ref': {
        const head = this.singleOf(t.head) ?? this.term(t.head).single;
        if (!head) return undefined;
        if (t.path.every((p) => p.t === 'const')) return refConstSingle(head, t.path.map((p) => (p as { v: Value }).v));
        const parts = this.singleKeys(t.path);
        if (!parts) return undefined;
        const n = parts.length;
        return (c, f) => {
          let v = head(c, f);
          for (let i = 0; i < n && v !== undefined; i++) {
            const key = parts[i]!(c, f);
            v = key === undefined ? undefined : lookup(v, key);
          }
          return v;
        };
      }
      case 'array':
      case 'set': {
        const items = t.items.map((x) => this.term(x).single);
        if (!items.every((x) => x !== undefined)) return undefined;
        const its = items as Single[];
        const isSet = t.t === 'set';
        return (c, f) => {
          const out: Value[] = new Array(its.length);
          for (let i = 0; i < its.length; i++) {
            const v = its[i]!(c, f);
            if (v === undefined) return undefined;
            out[i] = v;
          }
          return isSet ? RegoSet.from(out) : out;
        };
      }
      case 'object': {
        const entries = t.entries.map(([k, v]) => [this.term(k).single, this.term(v).single] as const);
        if (!entries.every(([k, v]) => k !== undefined && v !== undefined)) return undefined;
        const es = entries as unknown as Array<readonly [Single, Single]>;
        return (c, f) => {
          const out: Array<[Value, Value]> = new Array(es.length);
          for (let i = 0; i < es.length; i++) {
            const k = es[i]![0](c, f);
            if (k === undefined) return undefined;
            const v = es[i]![1](c, f);
            if (v === undefined) return undefined;
            out[i] = [k, v];
          }
          return makeObject(out);
        };
      }
      case 'member': {
        const key = t.key ? this.term(t.key).single : undefined;
        const value = this.term(t.value).single;
        const coll = this.term(t.coll).single;
        if (!value || !coll || (t.key && !key)) return undefined;
        return (c, f) => {
          const cv = coll(c, f);
          if (cv === undefined) return undefined;
          const vv = value(c, f);
          if (vv === undefined) return undefined;
          if (!key) return memberOf(cv, vv);
          const kv = key(c, f);
          if (kv === undefined) return undefined;
          if (cv instanceof RegoSet) return cv.has(kv) && equal(kv, vv);
          const x = lookup(cv, kv);
          return x !== undefined && equal(x, vv);
        };
      }
      default:
        return undefined;
    }
  }

  /**
   * Single-valued evaluators for ref path terms, or undefined when a term may enumerate
   * (a variable, which may be unbound, or a pattern).
   */
  private singleKeys(path: ITerm[]): Single[] | undefined {
    const out: Single[] = [];
    for (const p of path) {
      if (p.t === 'local' || p.t === 'array' || p.t === 'object') return undefined;
      const s = this.term(p).single;
      if (!s) return undefined;
      out.push(s);
    }
    return out;
  }

  private staticPrefix(keys: readonly Value[]): { node: DocNode; base: Value | undefined; start: number } {
    let node = this.root;
    let base: Value | undefined = this.baseData;
    let i = 0;
    while (i < keys.length && node.kind === undefined) {
      const key = keys[i];
      if (typeof key !== 'string') break;
      const child = node.children.get(key);
      if (!child) break;
      node = child;
      base = base === undefined ? undefined : lookup(base, key);
      i++;
    }
    return { node, base, start: i };
  }

  private termCore(t: ITerm): TermPlan {
    switch (t.t) {
      case 'const':
        return new ConstPlan(t.v);
      case 'local':
        return new LocalPlan(this.slot(t.name), displayName(t.name), t.loc);
      case 'input': {
        const ev: TermPlan['eval'] = (c, _f, k) => (c.input === undefined ? false : k(c.input));
        return { eval: ev, match: matchByEval(ev), inSlots: [], composite: undefined };
      }
      case 'data':
        return this.dataRef(t.path.map((p) => this.term(p)), t);
      case 'ref': {
        const head = this.term(t.head);
        const path = t.path.map((p) => this.term(p));
        const ev: TermPlan['eval'] = (c, f, k) => head.eval(c, f, (hv) => walkValue(c, f, hv, path, 0, k));
        return { eval: ev, match: matchByEval(ev), inSlots: this.inSlots(t), composite: undefined };
      }
      case 'array': {
        const items = t.items.map((x) => this.term(x));
        const n = items.length;
        const ev: TermPlan['eval'] = (c, f, k) => evalItems(c, f, items, new Array(n), 0, k);
        const match: TermPlan['match'] = (c, f, x, k) => (Array.isArray(x) && x.length === n ? matchItems(c, f, items, x, 0, k) : false);
        return { eval: ev, match, inSlots: this.inSlots(t), composite: 'array', items };
      }
      case 'object': {
        const entries = t.entries.map(([k, v]) => [this.term(k), this.term(v)] as const);
        const n = entries.length;
        const ev: TermPlan['eval'] = (c, f, k) => evalEntries(c, f, entries, new Array(n), 0, k);
        const match: TermPlan['match'] = (c, f, x, k) => (isObject(x) && objectSize(x) === n ? matchEntries(c, f, entries, x, 0, k) : false);
        return { eval: ev, match, inSlots: this.inSlots(t), composite: 'object', entries };
      }
      case 'set': {
        const items = t.items.map((x) => this.term(x));
        const n = items.length;
        const ev: TermPlan['eval'] = (c, f, k) => evalItems(c, f, items, new Array(n), 0, (vals) => k(RegoSet.from(vals)));
        return { eval: ev, match: matchByEval(ev), inSlots: this.inSlots(t), composite: undefined };
      }
      case 'call': {
        const args = t.args.map((a) => this.term(a));
        const inSlots = this.inSlots(t);
        if (inSlots.length === 0 && t.fn.kind !== 'relation' && args.every((a) => a.single !== undefined)) {
          return new SinglePlan(this.callSingle(t.fn, args.map((a) => a.single!), t.loc), inSlots);
        }
        const { ev, single } = this.call(t.fn, args, t.loc);
        return { eval: ev, match: matchByEval(ev), inSlots: this.inSlots(t), composite: undefined, ...(single ? { single } : {}) };
      }
      case 'member': {
        const key = t.key ? this.term(t.key) : undefined;
        const value = this.term(t.value);
        const coll = this.term(t.coll);
        const ev: TermPlan['eval'] = (c, f, k) =>
          coll.eval(c, f, (cv) =>
            value.eval(c, f, (vv) => {
              if (key) return key.eval(c, f, (kv) => {
                if (cv instanceof RegoSet) return k(cv.has(kv) && equal(kv, vv));
                const x = lookup(cv, kv);
                return k(x !== undefined && !(cv instanceof RegoSet) && equal(x, vv));
              });
              return k(memberOf(cv, vv));
            }),
          );
        return { eval: ev, match: matchByEval(ev), inSlots: this.inSlots(t), composite: undefined };
      }
      case 'arraycomp': {
        const body = this.body(t.body);
        const head = this.term(t.term);
        const single: Single = (c, f) => {
          const out: Value[] = [];
          body(c, f, () => head.eval(c, f, (v) => (out.push(v), false)));
          return out;
        };
        const ev: TermPlan['eval'] = (c, f, k) => k(single(c, f)!);
        return { eval: ev, match: matchByEval(ev), single, inSlots: this.inSlots(t), composite: undefined };
      }
      case 'setcomp': {
        const body = this.body(t.body);
        const head = this.term(t.term);
        const single: Single = (c, f) => {
          const out = new RegoSet();
          body(c, f, () => head.eval(c, f, (v) => (out.add(v), false)));
          return out;
        };
        const ev: TermPlan['eval'] = (c, f, k) => k(single(c, f)!);
        return { eval: ev, match: matchByEval(ev), single, inSlots: this.inSlots(t), composite: undefined };
      }
      case 'objectcomp': {
        const body = this.body(t.body);
        const key = this.term(t.key);
        const value = this.term(t.value);
        const loc = t.loc;
        const single: Single = (c, f) => {
          const out = new Map<string, [Value, Value]>();
          body(c, f, () =>
            key.eval(c, f, (kv) =>
              value.eval(c, f, (vv) => {
                const kk = keyOf(kv);
                const prev = out.get(kk);
                if (prev !== undefined && !equal(prev[1], vv)) throw new RegoError('eval_conflict_error', 'object keys must be unique', loc);
                out.set(kk, [kv, vv]);
                return false;
              }),
            ),
          );
          return makeObject(out.values());
        };
        const ev: TermPlan['eval'] = (c, f, k) => k(single(c, f)!);
        return { eval: ev, match: matchByEval(ev), single, inSlots: this.inSlots(t), composite: undefined };
      }
    }
  }

  private dataRef(path: TermPlan[], t: ITerm): TermPlan {
    const root = this.root;
    const rootBase = this.baseData;
    // Resolve the constant prefix once: evaluation starts at the deepest static tree node.
    const consts: Value[] = [];
    for (const p of path) {
      if (p.constant === undefined) break;
      consts.push(p.constant);
    }
    const { node: startNode, base: startBase, start } = this.staticPrefix(consts);
    const ev: TermPlan['eval'] = (c, f, k) =>
      c.overrides === undefined ? walkData(c, f, startNode, startBase, undefined, path, start, k) : walkData(c, f, root, rootBase, c.overrides, path, 0, k);
    return { eval: ev, match: matchByEval(ev), inSlots: this.inSlots(t), composite: undefined };
  }

  /** A call without variables whose arguments are single-valued: its one evaluator. */
  private callSingle(fn: FnTarget & { kind: 'builtin' | 'user' }, singles: Single[], loc: Location): Single {
    if (fn.kind === 'builtin') return builtinSingle(singles, fn.def, fn.name, loc, this.numbers);
    const node = this.functionNode(fn, singles.length, loc);
    return functionSingle(singles, node, node.name);
  }

  private functionNode(fn: FnTarget & { kind: 'user' }, n: number, loc: Location): DocNode {
    const node = this.nodeAt(fn.path);
    if (!node || node.kind !== 'function') throw new RegoError('rego_type_error', `undefined function ${fn.name}`, loc);
    if (node.arity !== n) throw new RegoError('rego_type_error', `${fn.name}: arity mismatch: have ${n} arguments, want ${node.arity}`, loc);
    return node;
  }

  private call(fn: FnTarget, args: TermPlan[], loc: Location): { ev: TermPlan['eval']; single?: Single } {
    if (fn.kind === 'relation') return { ev: relation(fn.name, args) };
    const n = args.length;
    const allConst = args.every((a) => a.constant !== undefined);
    const constArgs = allConst ? args.map((a) => a.constant!) : undefined;
    const singles = args.every((a) => a.single !== undefined) ? args.map((a) => a.single!) : undefined;
    const argValues = (c: Ctx, f: Frame): Value[] | undefined => {
      const vals: Value[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = singles![i]!(c, f);
        if (v === undefined) return undefined;
        vals[i] = v;
      }
      return vals;
    };
    const withSingle = (ev: TermPlan['eval'], apply: (c: Ctx, vals: Value[]) => Value | undefined) => {
      if (!singles) return { ev };
      const single: Single = (c, f) => {
        const vals = argValues(c, f);
        return vals === undefined ? undefined : apply(c, vals);
      };
      return { ev, single };
    };
    if (fn.kind === 'builtin') {
      const def = fn.def;
      const name = fn.name;
      const numbers = this.numbers;
      const apply = (c: Ctx, vals: Value[]): Value | undefined => {
        if (c.mocks !== undefined) {
          const m = c.mocks.get(name);
          if (m !== undefined) return m.kind === 'value' ? m.value : m.call(unmocked(c), vals);
        }
        return invokeBuiltin(c, def, vals, loc, numbers.decimals);
      };
      const invoke = (c: Ctx, vals: Value[], k: VK): boolean => {
        const r = apply(c, vals);
        return r === undefined ? false : k(r);
      };
      if (constArgs) return withSingle((c, _f, k) => invoke(c, constArgs.slice(), k), apply);
      return withSingle((c, f, k) => evalArgs(c, f, args, (vals) => invoke(c, vals, k)), apply);
    }
    const node = this.functionNode(fn, n, loc);
    const name = node.name;
    const apply = (c: Ctx, vals: Value[]): Value | undefined => {
      if (c.mocks !== undefined) {
        const m = c.mocks.get(name);
        if (m !== undefined) return m.kind === 'value' ? m.value : m.call(unmocked(c), vals);
      }
      return callFunction(c, node, vals);
    };
    return withSingle(
      (c, f, k) =>
        evalArgs(c, f, args, (vals) => {
          const r = apply(c, vals);
          return r === undefined ? false : k(r);
        }),
      apply,
    );
  }

  /** A function as a `with` replacement value. */
  private mockFn(fn: FnTarget, loc: Location): (c: Ctx, args: Value[]) => Value | undefined {
    if (fn.kind === 'builtin') {
      const def = fn.def;
      const numbers = this.numbers;
      return (c, args) => invokeBuiltin(c, def, args, loc, numbers.decimals);
    }
    if (fn.kind === 'relation') {
      throw new RegoError('rego_compile_error', `with keyword replacement must not be the relation ${fn.name}`, loc);
    }
    const node = this.nodeAt(fn.path);
    if (!node || node.kind !== 'function') throw new RegoError('rego_type_error', `undefined function ${fn.name}`, loc);
    return (c, args) => callFunction(c, node, args);
  }

  body(exprs: IExpr[]): ExprFn {
    const fns = exprs.map((e) => this.expr(e));
    return seq(fns, 0);
  }

  /**
   * Query bodies: records the value of each top-level term expression in `capture`, as OPA's
   * rego package does (its query is rewritten to `term = capture`). With `falseFails` a
   * captured `false` still fails the query, which OPA checks only when the query has more than
   * one expression or iterates; otherwise `false` is the query's (defined) value.
   */
  queryBody(exprs: IExpr[], capture: (index: number, v: Value) => void, falseFails: boolean): ExprFn {
    const fns = exprs.map((e, pos) => {
      const idx = (e as { idx?: number }).idx ?? pos;
      if (e.k === 'term' && !e.negated) {
        const t = this.term(e.term);
        const fn: ExprFn = (c, f, k) => {
          tick(c.budget);
          return t.eval(c, f, (v) => {
            if (v === false && falseFails) return false;
            capture(idx, v);
            return k();
          });
        };
        return e.with.length > 0 ? this.withs(e.with, fn) : fn;
      }
      return this.expr(e);
    });
    return seq(fns, 0);
  }

  expr(e: IExpr): ExprFn {
    let fn = this.exprCore(e);
    if (e.negated) {
      const inner = fn;
      fn = (c, f, k) => (inner(c, f, () => true) ? false : k());
    }
    if (e.with.length > 0) fn = this.withs(e.with, fn);
    return fn;
  }

  /** Every expression counts one step of the budget (`tick`) before it runs. */
  private exprCore(e: IExpr): ExprFn {
    switch (e.k) {
      case 'term': {
        const t = this.term(e.term);
        if (t.single) return singleExpr(t.single);
        return (c, f, k) => {
          tick(c.budget);
          return t.eval(c, f, (v) => (v === false ? false : k()));
        };
      }
      case 'unify': {
        const L = this.term(e.left);
        const R = this.term(e.right);
        const loc = e.loc;
        const generic: ExprFn = (c, f, k) => {
          tick(c.budget);
          return unify(c, f, L, R, k, loc);
        };
        return this.walkAt(e.left, e.right) ?? this.walkAt(e.right, e.left) ?? generic;
      }
      case 'print': {
        const args = e.args.map((a) => this.term(a));
        return (c, f, k) => {
          tick(c.budget);
          const hook = c.budget.print;
          if (hook !== undefined) printCross(c, f, args, hook);
          return k();
        };
      }
      case 'somein': {
        const key = e.key ? this.term(e.key) : undefined;
        const value = this.term(e.value);
        const coll = this.term(e.coll);
        return (c, f, k) => {
          tick(c.budget);
          return coll.eval(c, f, (cv) =>
            enumerate(c, cv, (kv, vv) => (key ? key.match(c, f, kv, () => value.match(c, f, vv, k)) : value.match(c, f, vv, k))),
          );
        };
      }
      case 'body': {
        const body = this.body(e.body);
        return (c, f, k) => {
          tick(c.budget);
          return body(c, f, k);
        };
      }
      case 'every': {
        const key = e.key ? this.term(e.key) : undefined;
        const value = this.term(e.value);
        const domain = this.term(e.domain);
        const body = this.body(e.body);
        return (c, f, k) => {
          tick(c.budget);
          return domain.eval(c, f, (dv) => {
            // As in OPA, a domain that is no collection (a number, string, boolean, null) makes
            // `every` false, not vacuously true: `allow if every t in input.tools { … }` must not
            // hold when the caller sent a string where the policy expected a list.
            if (!isCollection(dv)) return false;
            let ok = true;
            enumerate(c, dv, (kv, vv) => {
              const holds = key
                ? key.match(c, f, kv, () => value.match(c, f, vv, () => body(c, f, () => true)))
                : value.match(c, f, vv, () => body(c, f, () => true));
              if (!holds) ok = false;
              return !holds;
            });
            return ok ? k() : false;
          });
        };
      }
    }
  }

  /**
   * `walk(x, [path, value])` where `path` is known when the expression runs (a constant or a
   * bound variable): one lookup along the path instead of enumerating every pair of `x`.
   * Falls back to `generic` (full enumeration) when the path is not bound or `walk` is mocked.
   */
  private walkAt(call: ITerm, pattern: ITerm): ExprFn | undefined {
    if (call.t !== 'call' || call.fn.kind !== 'relation' || call.fn.name !== 'walk') return undefined;
    let pathT: ITerm;
    let valueT: ITerm;
    if (pattern.t === 'array' && pattern.items.length === 2) [pathT, valueT] = pattern.items as [ITerm, ITerm];
    else if (pattern.t === 'const' && Array.isArray(pattern.v) && pattern.v.length === 2) {
      pathT = { t: 'const', v: pattern.v[0]!, loc: pattern.loc };
      valueT = { t: 'const', v: pattern.v[1]!, loc: pattern.loc };
    } else return undefined;
    const X = this.term(call.args[0]!);
    const P = this.term(pathT);
    const V = this.term(valueT);
    const C = this.term(call);
    const R = this.term(pattern);
    const pathOf = P.single;
    if (pathOf === undefined) return undefined;
    const loc = call.loc;
    return (c, f, k) => {
      tick(c.budget);
      if (!allBound(f, P.inSlots) || (c.mocks !== undefined && c.mocks.has('walk'))) return unify(c, f, C, R, k, loc);
      const p = pathOf(c, f);
      if (!Array.isArray(p)) return false;
      return X.eval(c, f, (x) => {
        let v: Value | undefined = x;
        for (let i = 0; i < p.length && v !== undefined; i++) v = lookup(v, p[i]!);
        return v === undefined ? false : V.match(c, f, v, k);
      });
    };
  }

  private withs(ws: IWith[], inner: ExprFn): ExprFn {
    const mods = ws.map((w) => ({
      target: w.target,
      value: w.fnValue ? undefined : this.term(w.value),
      fn: w.fnValue ? this.mockFn(w.fnValue, w.loc) : undefined,
    }));
    return (c, f, k) => withValues(c, f, k, mods, [], 0, inner);
  }
}

/**
 * A relation call: each result in turn (`walk(x)` → every [path, value] pair of x, root first).
 * A `with walk as …` replacement yields its single result instead.
 */
function relation(name: 'walk', args: readonly TermPlan[]): TermPlan['eval'] {
  const arg = args[0]!;
  return (c, f, k) =>
    arg.eval(c, f, (x) => {
      if (c.mocks !== undefined) {
        const m = c.mocks.get(name);
        if (m !== undefined) {
          const r = m.kind === 'value' ? m.value : m.call(unmocked(c), [x]);
          return r === undefined ? false : k(r);
        }
      }
      const b = c.budget;
      for (const pair of walkPairs(x)) {
        tick(b);
        if (k(pair)) return true;
      }
      return false;
    });
}

/** `print`: each operand's values as a set (empty: `<undefined>`), a line per combination. */
function printCross(c: Ctx, f: Frame, args: readonly TermPlan[], hook: (line: string) => void): void {
  const values: Value[][] = args.map((a) => {
    const s = new RegoSet();
    a.eval(c, f, (v) => (s.add(v), false));
    return s.sorted();
  });
  const line: Array<Value | undefined> = new Array(args.length);
  const go = (i: number): void => {
    if (i === values.length) {
      hook(printLine(line));
      return;
    }
    const vs = values[i]!;
    if (vs.length === 0) {
      line[i] = undefined;
      go(i + 1);
      return;
    }
    for (const v of vs) {
      line[i] = v;
      go(i + 1);
    }
  };
  go(0);
}

/** A replacement function runs without the mocks in force (it may call the original). */
function unmocked(c: Ctx): Ctx {
  return new Ctx(c.budget, c.input, c.overrides, undefined);
}

function seq(fns: ExprFn[], i: number): ExprFn {
  if (i === fns.length) return (_c, _f, k) => k();
  const first = fns[i]!;
  if (i === fns.length - 1) return first;
  const rest = seq(fns, i + 1);
  return (c, f, k) => first(c, f, () => rest(c, f, k));
}

function memberOf(coll: Value, v: Value): boolean {
  if (coll instanceof RegoSet) return coll.has(v);
  if (Array.isArray(coll)) return coll.some((x) => equal(x, v));
  if (isObject(coll)) {
    if (coll instanceof RegoObject) {
      for (const [, x] of coll.map.values()) if (equal(x, v)) return true;
      return false;
    }
    for (const k in coll) if (equal((coll as PlainObject)[k]!, v)) return true;
  }
  return false;
}

function unify(c: Ctx, f: Frame, L: TermPlan, R: TermPlan, k: K, loc: Location): boolean {
  if (allBound(f, L.inSlots)) {
    if (L.single !== undefined) {
      const v = L.single(c, f);
      return v === undefined ? false : R.match(c, f, v, k);
    }
    return L.eval(c, f, (v) => R.match(c, f, v, k));
  }
  if (allBound(f, R.inSlots)) {
    if (R.single !== undefined) {
      const v = R.single(c, f);
      return v === undefined ? false : L.match(c, f, v, k);
    }
    return R.eval(c, f, (v) => L.match(c, f, v, k));
  }
  if (L.composite === 'array' && R.composite === 'array') {
    const a = L.items!;
    const b = R.items!;
    if (a.length !== b.length) return false;
    const go = (i: number): boolean => (i === a.length ? k() : unify(c, f, a[i]!, b[i]!, () => go(i + 1), loc));
    return go(0);
  }
  if (L.composite === 'object' && R.composite === 'object') {
    const a = L.entries!;
    const b = R.entries!;
    if (a.length !== b.length) return false;
    const go = (i: number): boolean => {
      if (i === a.length) return k();
      const [ka, va] = a[i]!;
      return ka.eval(c, f, (kv) => {
        const j = b.findIndex(([kb]) => kb.constant !== undefined && equal(kb.constant, kv));
        if (j < 0) return false;
        return unify(c, f, va, b[j]![1], () => go(i + 1), loc);
      });
    };
    return go(0);
  }
  throw new RegoError('rego_unsafe_var_error', 'unification of two unbound terms', loc);
}

/** Evaluates the `with` values (each may enumerate), then runs the expression in a derived context. */
function withValues(c: Ctx, f: Frame, k: K, mods: Mod[], vals: Array<Value | undefined>, i: number, inner: ExprFn): boolean {
  if (i === mods.length) return inner(derive(c, mods, vals), f, k);
  const m = mods[i]!;
  if (!m.value) {
    vals[i] = undefined;
    return withValues(c, f, k, mods, vals, i + 1, inner);
  }
  return m.value.eval(c, f, (v) => {
    vals[i] = v;
    return withValues(c, f, k, mods, vals, i + 1, inner);
  });
}

type Mod = { target: IWith['target']; value: TermPlan | undefined; fn: ((c: Ctx, args: Value[]) => Value | undefined) | undefined };

function cloneOverrides(t: OverrideTree | undefined): OverrideTree {
  if (!t) return { has: false, value: undefined, children: new Map() };
  return { has: t.has, value: t.value, children: new Map(t.children) };
}

function setOverride(root: OverrideTree, path: readonly string[], v: Value): OverrideTree {
  const out = cloneOverrides(root);
  let cur = out;
  for (const p of path) {
    const next = cloneOverrides(cur.children.get(p));
    cur.children.set(p, next);
    cur = next;
  }
  cur.has = true;
  cur.value = v;
  cur.children = new Map();
  return out;
}

function derive(c: Ctx, mods: Mod[], vals: Array<Value | undefined>): Ctx {
  let input = c.input;
  let overrides = c.overrides;
  let mocks = c.mocks;
  for (let i = 0; i < mods.length; i++) {
    const m = mods[i]!;
    const t = m.target;
    if (t.kind === 'input') input = setPath(input, t.path, vals[i]!);
    else if (t.kind === 'data') overrides = setOverride(overrides ?? cloneOverrides(undefined), t.path, vals[i]!);
    else {
      mocks = new Map(mocks);
      const mock: Mock = m.fn ? { kind: 'fn', call: m.fn } : { kind: 'value', value: vals[i]! };
      mocks.set(t.name, mock);
    }
  }
  return new Ctx(c.budget, input, overrides, mocks);
}
