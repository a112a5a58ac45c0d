/**
 * Runtime operations the compiled closures call: value lookup and enumeration, walking `data`
 * across base documents, rules and `with` overrides, evaluating virtual documents (complete,
 * partial set, partial object and function rules) with conflict detection as OPA does.
 */
import { RegoError } from '../errors.js';
import {
  RegoObject,
  RegoSet,
  defineKey,
  equal,
  isPlainObject,
  keyOf,
  makeObject,
  objectEntries,
  objectGet,
  sortedEntries,
  sortedKeys,
  type PlainObject,
  type Value,
} from '../value.js';
import { Ctx, IN_PROGRESS, UNDEF, enter, tick, type OverrideTree } from './context.js';
import type { DocNode, Frame, RulePlan, TermPlan, VK } from './tree.js';

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/** Lookup in a base document, where `data.x[2]` finds the key "2" as OPA's store does. */
export function lookupBase(v: Value, key: Value): Value | undefined {
  const x = lookup(v, key);
  if (x !== undefined || (typeof key !== 'number' && typeof key !== 'bigint')) return x;
  return isPlainObject(v) ? objectGet(v, String(key)) : undefined;
}

export function lookup(v: Value, key: Value): Value | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  if (Array.isArray(v)) {
    let i: number;
    if (typeof key === 'number') i = key;
    else if (typeof key === 'bigint') return undefined;
    else return undefined;
    return Number.isInteger(i) && i >= 0 && i < v.length ? v[i] : undefined;
  }
  if (v instanceof RegoSet) return v.has(key) ? key : undefined;
  return objectGet(v as PlainObject | RegoObject, key);
}

/** Calls `cb(key, value)` for each element; stops when `cb` returns true. */
export function enumerate(c: Ctx, v: Value, cb: (key: Value, val: Value) => boolean): boolean {
  if (v === null || typeof v !== 'object') return false;
  const b = c.budget;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      tick(b);
      if (cb(i, v[i]!)) return true;
    }
    return false;
  }
  if (v instanceof RegoSet) {
    for (const x of v.sorted()) {
      tick(b);
      if (cb(x, x)) return true;
    }
    return false;
  }
  // Objects in key order, as OPA iterates them (sets above likewise).
  if (v instanceof RegoObject) {
    for (const [k, x] of sortedEntries(v)) {
      tick(b);
      if (cb(k, x)) return true;
    }
    return false;
  }
  for (const k of sortedKeys(v as PlainObject)) {
    tick(b);
    if (cb(k, (v as PlainObject)[k]!)) return true;
  }
  return false;
}

export function allBound(f: Frame, slots: readonly number[]): boolean {
  for (let i = 0; i < slots.length; i++) if (f[slots[i]!] === undefined) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Ref paths
// ---------------------------------------------------------------------------------------------

/** Applies path terms `path[i..]` to `v`, enumerating where a term is an unbound variable. */
export function walkValue(c: Ctx, f: Frame, v: Value, path: readonly TermPlan[], i: number, k: VK, lk: typeof lookup = lookup): boolean {
  while (i < path.length) {
    const p = path[i]!;
    if (p.constant !== undefined) {
      const x = lk(v, p.constant);
      if (x === undefined) return false;
      v = x;
      i++;
      continue;
    }
    const j = i + 1;
    if (allBound(f, p.inSlots)) {
      const cur = v;
      return p.eval(c, f, (key) => {
        const x = lk(cur, key);
        return x === undefined ? false : walkValue(c, f, x, path, j, k, lk);
      });
    }
    return enumerate(c, v, (key, x) => p.match(c, f, key, () => walkValue(c, f, x, path, j, k, lk)));
  }
  return k(v);
}

function overrideChild(ov: OverrideTree | undefined, key: Value): OverrideTree | undefined {
  return ov && typeof key === 'string' ? ov.children.get(key) : undefined;
}

/**
 * Walks `data` from `node` (a tree node, or null below the rule tree) with base document
 * `base` and overrides `ov` at the same path.
 */
export function walkData(
  c: Ctx,
  f: Frame,
  node: DocNode | null,
  base: Value | undefined,
  ov: OverrideTree | undefined,
  path: readonly TermPlan[],
  i: number,
  k: VK,
): boolean {
  if (node !== null && node.kind !== undefined && node.children.size === 0) {
    if (node.kind === 'function') return false;
    let v = ruleValue(c, node);
    if (ov !== undefined) v = applyOverrides(v, ov);
    return v === undefined ? false : walkValue(c, f, v, path, i, k);
  }
  if (i === path.length) {
    const v = materialize(c, node, base, ov);
    return v === undefined ? false : k(v);
  }
  if (node === null && ov === undefined) return base === undefined ? false : walkValue(c, f, base, path, i, k, lookupBase);
  const p = path[i]!;
  if (p.constant !== undefined) return stepData(c, f, node, base, ov, path, i, k, p.constant);
  if (allBound(f, p.inSlots)) return p.eval(c, f, (key) => stepData(c, f, node, base, ov, path, i, k, key));
  // Enumerate the keys of everything at this path.
  const v = materialize(c, node, base, ov);
  if (v === undefined) return false;
  return enumerate(c, v, (key, x) => p.match(c, f, key, () => walkValue(c, f, x, path, i + 1, k)));
}

function stepData(
  c: Ctx,
  f: Frame,
  node: DocNode | null,
  base: Value | undefined,
  ov: OverrideTree | undefined,
  path: readonly TermPlan[],
  i: number,
  k: VK,
  key: Value,
): boolean {
    const ovc = overrideChild(ov, key);
    if (ovc?.has) return walkValue(c, f, ovc.value!, path, i + 1, k);
    const child = node !== null && typeof key === 'string' ? (node.children.get(key) ?? null) : null;
    const baseChild = base === undefined ? undefined : lookupBase(base, key);
    if (child === null && ovc === undefined) {
      const x = node === null ? undefined : ownKey(c, node, key);
      if (x !== undefined) return walkValue(c, f, x, path, i + 1, k);
      return baseChild === undefined ? false : walkValue(c, f, baseChild, path, i + 1, k, lookupBase);
    }
    const merged = child === null ? undefined : keyOfBoth(c, node, child, key, baseChild, ovc);
    if (merged !== undefined) return walkValue(c, f, merged, path, i + 1, k);
    return walkData(c, f, child, baseChild, ovc, path, i + 1, k);
}

/**
 * The value at `key` of an object rule node with sub-nodes, none of them at `key`: the node's own
 * rules' value there (which wins over base data, as materialize merges them). Only the node's own
 * rules are evaluated, not the sub-nodes: they cannot hold the key, and evaluating them made a
 * sub-node reading `p.x` fail as recursive (OPA answers).
 */
function ownKey(c: Ctx, node: DocNode, key: Value): Value | undefined {
  if (node.kind === undefined) return undefined;
  const own = ruleValue(c, node);
  return own === undefined ? undefined : lookup(own, key);
}

/**
 * The value at `key` of an object node that also has rules below it under that key (`p[q].r :=
 * …` next to `p.a.r := …`), when the node's own rules define the key too: the two merged
 * (mergeHeads). Undefined when the node's own rules do not define it: then the sub-tree alone
 * holds the value and is walked as usual (lazily, and without evaluating the node's own rules
 * for a path they do not reach).
 */
function keyOfBoth(c: Ctx, node: DocNode | null, child: DocNode, key: Value, baseChild: Value | undefined, ovc: OverrideTree | undefined): Value | undefined {
  if (node === null || node.kind !== 'object') return undefined;
  const own = ruleValue(c, node);
  const x = own !== undefined && (isPlainObject(own) || own instanceof RegoObject) ? objectGet(own, key) : undefined;
  if (x === undefined) return undefined;
  const below = materialize(c, child, baseChild, undefined);
  const v = below === undefined ? x : mergeHeads(node, x, below, headDepth(node) - 1);
  // Overrides below this key (`with data.p.a.r as …`; one at the key itself was applied by the caller).
  return ovc === undefined ? v : applyOverrides(v, ovc);
}

/**
 * How many keys below an object node its own rules' heads make (`p[q].r.s` at `p`: 3): down to
 * there the node's value is structure that other rules' heads may add to; at that depth each
 * value is one rule's leaf. The smallest over the definitions, so that no rule's leaf is ever
 * taken for structure and merged into.
 */
function headDepth(node: DocNode): number {
  let d = Infinity;
  for (const p of node.defs) d = Math.min(d, p.dyn?.length ?? 0);
  return d === Infinity ? 0 : d;
}

function isObjectDoc(v: Value): v is PlainObject | RegoObject {
  return isPlainObject(v) || v instanceof RegoObject;
}

/**
 * A value of an object node's own rules merged with the value the rule tree below the node has
 * at the same key, as OPA builds one document from rules whose heads overlap (`p[q].r := i` and
 * `p.a.r := 0`): keys made by heads (`depth` levels of them) merge level by level; a leaf (a
 * rule's value) may be repeated by another rule but not changed or reached into, else
 * `eval_conflict_error`; leaves of multi-value rules (`p[q] contains x`, `p.b contains y`) are
 * sets and unite. Before, the rules below won silently, or their value was dropped, so a
 * deny-list built this way lost entries.
 */
function mergeHeads(node: DocNode, own: Value, below: Value, depth: number): Value {
  if (depth > 0) {
    if (!isObjectDoc(own) || !isObjectDoc(below)) throw conflict(OBJECT_CONFLICT, node, node.defs[0]);
    const entries: Array<[Value, Value]> = [];
    for (const [k, x] of objectEntries(own)) {
      const y = objectGet(below, k);
      entries.push([k, y === undefined ? x : mergeHeads(node, x, y, depth - 1)]);
    }
    for (const [k, y] of objectEntries(below)) if (objectGet(own, k) === undefined) entries.push([k, y]);
    return makeObject(entries);
  }
  if (own instanceof RegoSet && below instanceof RegoSet && node.defs.some((d) => d.multi === true)) {
    const out = RegoSet.from(own.values());
    for (const x of below.values()) out.add(x);
    return out;
  }
  if (equal(own, below)) return own;
  throw conflict(OBJECT_CONFLICT, node, node.defs[0]);
}

/** Follows constant keys from `keys[i]` on (the `walkData` of a ref with a constant path). */
export function dataConst(c: Ctx, node: DocNode | null, base: Value | undefined, ov: OverrideTree | undefined, keys: readonly Value[], i: number): Value | undefined {
  for (;;) {
    if (node !== null && node.kind !== undefined && node.children.size === 0) {
      if (node.kind === 'function') return undefined;
      let v = ruleValue(c, node);
      if (ov !== undefined) v = applyOverrides(v, ov);
      return v === undefined ? undefined : lookupPath(v, keys, i, lookup);
    }
    if (i === keys.length) return materialize(c, node, base, ov);
    if (node === null && ov === undefined) return base === undefined ? undefined : lookupPath(base, keys, i, lookupBase);
    const key = keys[i]!;
    const ovc = overrideChild(ov, key);
    if (ovc?.has) return lookupPath(ovc.value!, keys, i + 1, lookup);
    const child = node !== null && typeof key === 'string' ? (node.children.get(key) ?? null) : null;
    const baseChild = base === undefined ? undefined : lookupBase(base, key);
    if (child === null && ovc === undefined) {
      const x = node === null ? undefined : ownKey(c, node, key);
      if (x !== undefined) return lookupPath(x, keys, i + 1, lookup);
      return baseChild === undefined ? undefined : lookupPath(baseChild, keys, i + 1, lookupBase);
    }
    const merged = child === null ? undefined : keyOfBoth(c, node, child, key, baseChild, ovc);
    if (merged !== undefined) return lookupPath(merged, keys, i + 1, lookup);
    node = child;
    base = baseChild;
    ov = ovc;
    i++;
  }
}

function lookupPath(v: Value, keys: readonly Value[], i: number, lk: typeof lookup): Value | undefined {
  let x: Value | undefined = v;
  for (; i < keys.length && x !== undefined; i++) x = lk(x, keys[i]!);
  return x;
}

/** The full value at a tree node: rule values, sub-packages and base documents merged. */
export function materialize(c: Ctx, node: DocNode | null, base: Value | undefined, ov: OverrideTree | undefined): Value | undefined {
  let v: Value | undefined;
  if (node === null) v = base;
  else if (node.kind === 'function') v = undefined;
  else if (node.kind !== undefined && node.children.size === 0) v = ruleValue(c, node);
  else {
    const entries: Array<[Value, Value]> = [];
    const seen = new Set<string>();
    /** Keys of the node's own rule value, by keyOf, to their place in `entries`. */
    const own = new Map<string, number>();
    if (node.kind !== undefined) {
      const rv = ruleValue(c, node);
      if (rv !== undefined && rv !== null && typeof rv === 'object' && !Array.isArray(rv) && !(rv instanceof RegoSet)) {
        for (const [k, x] of objectEntries(rv as PlainObject)) {
          seen.add(keyOf(k));
          own.set(keyOf(k), entries.length);
          entries.push([k, x]);
        }
      }
    }
    if (base !== undefined && base !== null && typeof base === 'object' && !Array.isArray(base) && !(base instanceof RegoSet)) {
      for (const [k, x] of objectEntries(base as PlainObject)) {
        if (typeof k === 'string' && node.children.has(k) && node.children.get(k)!.kind === undefined) continue;
        if (seen.has(keyOf(k))) continue;
        seen.add(keyOf(k));
        entries.push([k, x]);
      }
    }
    const depth = own.size > 0 ? headDepth(node) : 0;
    for (const [k, child] of node.children) {
      const at = own.get(keyOf(k));
      if (at !== undefined) {
        // The node's own rules and the rules below it both define this key: one document.
        // Overrides below the node are applied to the whole value afterwards.
        const cv = materialize(c, child, base === undefined ? undefined : lookup(base, k), undefined);
        if (cv !== undefined) entries[at] = [k, mergeHeads(node, entries[at]![1], cv, depth - 1)];
        continue;
      }
      // a base document at a rule's path takes precedence, as in OPA's store
      if (child.kind !== undefined && seen.has(keyOf(k))) continue;
      const cv = materialize(c, child, base === undefined ? undefined : lookup(base, k), overrideChild(ov, k));
      if (cv !== undefined) entries.push([k, cv]);
    }
    v = makeObject(entries);
    if (ov !== undefined) v = applyOverrides(v, ov, true);
    return v;
  }
  if (ov !== undefined) v = applyOverrides(v, ov);
  return v;
}

/** Patches `with data…` overrides below a value. */
function applyOverrides(v: Value | undefined, ov: OverrideTree, childrenOnly = false): Value | undefined {
  if (!childrenOnly && ov.has) return ov.value;
  if (ov.children.size === 0) return v;
  const entries: Array<[Value, Value]> = [];
  const src = v !== undefined && v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RegoSet) ? (v as PlainObject | RegoObject) : undefined;
  if (src) for (const [k, x] of objectEntries(src)) if (!(typeof k === 'string' && ov.children.has(k))) entries.push([k, x]);
  for (const [k, child] of ov.children) {
    const cur = src ? objectGet(src, k) : undefined;
    const x = applyOverrides(cur, child);
    if (x !== undefined) entries.push([k, x]);
  }
  return makeObject(entries);
}

// ---------------------------------------------------------------------------------------------
// Virtual documents
// ---------------------------------------------------------------------------------------------

function conflict(message: string, node: DocNode, plan?: RulePlan): RegoError {
  return new RegoError('eval_conflict_error', message.replace('%s', node.name), plan?.loc);
}

const COMPLETE_CONFLICT = 'complete rules must not produce multiple outputs: rule %s produced conflicting values';
const FUNCTION_CONFLICT = 'functions must not produce multiple outputs for same inputs: function %s produced conflicting values for the same inputs';
const OBJECT_CONFLICT = 'object keys must be unique: rule %s produced conflicting values';

/** Runs a definition and its else chain; calls `onValue` for each head value of the first that holds. */
function runChain(c: Ctx, plan: RulePlan, args: Value[] | undefined, sink: Sink): void {
  for (let p: RulePlan | undefined = plan; p !== undefined; p = p.else) {
    const f: Frame = new Array(p.frameSize);
    const state = { found: false };
    if (args !== undefined && p.args !== undefined) matchArgs(c, f, p.args, args, 0, () => runBody(c, f, p!, state, sink));
    else runBody(c, f, p, state, sink);
    if (state.found) return;
  }
}

function runBody(c: Ctx, f: Frame, p: RulePlan, state: { found: boolean }, sink: Sink): boolean {
  return p.body(c, f, () => {
    state.found = true;
    return sink.onValue(f, p);
  });
}

function matchArgs(c: Ctx, f: Frame, pats: readonly TermPlan[], args: Value[], i: number, k: () => boolean): boolean {
  if (i === pats.length) return k();
  return pats[i]!.match(c, f, args[i]!, () => matchArgs(c, f, pats, args, i + 1, k));
}

const NO_DEFS: RulePlan[] = [];

/** The definitions that can hold for this query: all, or the index's candidates. */
function candidates(c: Ctx, node: DocNode): readonly RulePlan[] {
  const ix = node.index;
  if (ix === undefined) return node.defs;
  let v: Value | undefined = c.input;
  for (let i = 0; i < ix.path.length && v !== undefined; i++) v = lookup(v, ix.path[i]!);
  const hit = v === undefined ? NO_DEFS : (ix.byValue.get(keyOf(v)) ?? NO_DEFS);
  if (ix.rest.length === 0) return hit;
  if (hit.length === 0) return ix.rest;
  return [...hit, ...ix.rest];
}

/**
 * An error that names no place (the step or time budget, the nesting depth, raised by the
 * evaluator itself rather than by a built-in call, which names its own) given the place of the
 * innermost rule or function that was running: the operator's log line (`policy evaluation
 * failed (eval_budget_exceeded at policies/x.rego:12:1)`) then says which rule ran away.
 */
function located(e: unknown, node: DocNode): unknown {
  if (!(e instanceof RegoError) || e.location !== undefined) return e;
  const loc = node.defs[0]?.loc;
  return loc === undefined ? e : new RegoError(e.code, e.message, loc);
}

export function ruleValue(c: Ctx, node: DocNode): Value | undefined {
  const id = node.id;
  const cached = c.cache[id];
  if (cached !== undefined) {
    if (cached === UNDEF) return undefined;
    if (cached === IN_PROGRESS) throw new RegoError('rego_recursion_error', `rule ${node.name} is recursive`, node.defs[0]?.loc);
    return cached;
  }
  c.cache[id] = IN_PROGRESS;
  const b = c.budget;
  enter(b);
  let v: Value | undefined;
  try {
    if (node.kind === 'set') v = evalSet(c, node);
    else if (node.kind === 'object') v = evalObject(c, node);
    else v = evalComplete(c, node);
  } catch (e) {
    c.cache[id] = undefined;
    throw located(e, node);
  } finally {
    b.depth--;
  }
  c.cache[id] = v === undefined ? UNDEF : v;
  return v;
}

/**
 * Where a rule's solutions go. Sinks are classes, not per-call closures: evaluation creates one
 * object per rule evaluation and no function objects.
 */
interface Sink {
  onValue(f: Frame, p: RulePlan): boolean;
}

/** Head values of single-value rules (complete rules, functions): one value, or a conflict. */
class ValueSink implements Sink {
  result: Value | undefined = undefined;
  constructor(
    private readonly c: Ctx,
    private readonly node: DocNode,
    private readonly message: string,
  ) {}

  take(v: Value, p: RulePlan): void {
    if (this.result === undefined) this.result = v;
    else if (!equal(this.result, v)) throw conflict(this.message, this.node, p);
  }

  onValue(f: Frame, p: RulePlan): boolean {
    const val = p.value!;
    if (val.single !== undefined) {
      const v = val.single(this.c, f);
      if (v !== undefined) this.take(v, p);
      return p.constValue;
    }
    return val.eval(this.c, f, (v) => {
      this.take(v, p);
      return p.constValue;
    });
  }
}

class SetSink implements Sink {
  readonly out = new RegoSet();
  constructor(private readonly c: Ctx) {}

  onValue(f: Frame, p: RulePlan): boolean {
    const key = p.key!;
    if (key.single === undefined) {
      return key.eval(this.c, f, (v) => {
        this.out.add(v);
        return false;
      });
    }
    const v = key.single(this.c, f);
    if (v !== undefined) this.out.add(v);
    return false;
  }
}

function evalComplete(c: Ctx, node: DocNode): Value | undefined {
  const sink = new ValueSink(c, node, COMPLETE_CONFLICT);
  for (const d of candidates(c, node)) runChain(c, d, undefined, sink);
  return sink.result === undefined ? defaultOf(c, node, undefined) : sink.result;
}

/** The default's value: its constant, or its comprehension evaluated now (one value, no body). */
function defaultOf(c: Ctx, node: DocNode, args: Value[] | undefined): Value | undefined {
  if (node.defaultPlan === undefined) return node.defaultValue;
  const sink = new ValueSink(c, node, COMPLETE_CONFLICT);
  runChain(c, node.defaultPlan, args, sink);
  return sink.result;
}

function evalSet(c: Ctx, node: DocNode): Value {
  const sink = new SetSink(c);
  for (const d of candidates(c, node)) runChain(c, d, undefined, sink);
  return sink.out;
}

/** Nested object under construction: keyOf(key) → [key, value or sub-builder]. */
type Builder = Map<string, [Value, Value | Builder]>;

function insertPath(node: DocNode, p: RulePlan, into: Builder, keys: Value[], v: Value): void {
  let cur = into;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const kk = keyOf(key);
    const last = i === keys.length - 1;
    const existing = cur.get(kk);
    if (last) {
      if (p.multi) {
        if (existing === undefined) cur.set(kk, [key, RegoSet.from([v])]);
        else if (existing[1] instanceof RegoSet) existing[1].add(v);
        else throw conflict(OBJECT_CONFLICT, node, p);
        return;
      }
      if (existing === undefined) cur.set(kk, [key, v]);
      else if (existing[1] instanceof Map || !equal(existing[1], v)) throw conflict(OBJECT_CONFLICT, node, p);
      return;
    }
    if (existing === undefined) {
      const sub: Builder = new Map();
      cur.set(kk, [key, sub]);
      cur = sub;
    } else if (existing[1] instanceof Map) cur = existing[1];
    else throw conflict(OBJECT_CONFLICT, node, p);
  }
}

function finish(b: Builder): Value {
  const entries: Array<[Value, Value]> = [];
  for (const [k, x] of b.values()) entries.push([k, x instanceof Map ? finish(x) : x]);
  return makeObject(entries);
}

function evalKeys(c: Ctx, f: Frame, node: DocNode, p: RulePlan, out: Builder, keys: Value[], i: number): boolean {
  if (i === p.dyn!.length) {
    return p.value!.eval(c, f, (v) => {
      insertPath(node, p, out, keys, v);
      return false;
    });
  }
  return p.dyn![i]!.eval(c, f, (key) => {
    keys.push(key);
    const r = evalKeys(c, f, node, p, out, keys, i + 1);
    keys.pop();
    return r;
  });
}

class ObjectSink implements Sink {
  constructor(
    private readonly c: Ctx,
    private readonly node: DocNode,
    private readonly out: Builder,
  ) {}

  onValue(f: Frame, p: RulePlan): boolean {
    return evalKeys(this.c, f, this.node, p, this.out, [], 0);
  }
}

function evalObject(c: Ctx, node: DocNode): Value {
  const out: Builder = new Map();
  for (const d of candidates(c, node)) {
    runChain(c, d, undefined, new ObjectSink(c, node, out));
  }
  return finish(out);
}

export function callFunction(c: Ctx, node: DocNode, args: Value[]): Value | undefined {
  const b = c.budget;
  enter(b);
  try {
    const sink = new ValueSink(c, node, FUNCTION_CONFLICT);
    for (const d of node.defs) runChain(c, d, args, sink);
    return sink.result === undefined ? defaultOf(c, node, args) : sink.result;
  } catch (e) {
    throw located(e, node);
  } finally {
    b.depth--;
  }
}

// ---------------------------------------------------------------------------------------------
// Paths into input (`with input.a.b as v`)
// ---------------------------------------------------------------------------------------------

export function setPath(v: Value | undefined, path: readonly string[], x: Value, i = 0): Value {
  if (i === path.length) return x;
  const key = path[i]!;
  const o: PlainObject = {};
  if (isPlainObject(v)) for (const k of Object.keys(v)) defineKey(o, k, v[k]!);
  else if (v instanceof RegoObject) return RegoObject.from([...objectEntries(v).filter(([k]) => k !== key), [key, setPath(v.get(key), path, x, i + 1)]]);
  defineKey(o, key, setPath(isPlainObject(v) ? objectGet(v, key) : undefined, path, x, i + 1));
  return o;
}
