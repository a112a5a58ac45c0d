/**
 * Object built-ins: `object.get` (key or path), `object.keys`, `object.remove`,
 * `object.filter`, `object.union`, `object.union_n`, `object.subset`. Results are new
 * objects; inputs are never edited.
 */
import {
  RegoObject,
  RegoSet,
  equal,
  isObject,
  keyOf,
  makeObject,
  objectEntries,
  objectGet,
  objectKeys,
  type PlainObject,
  type Value,
} from '../value.js';
import type { BuiltinDef } from './types.js';
import { arr, def, elemErr, obj, typeErr } from './util.js';
import { work } from '../meter.js';

type Obj = PlainObject | RegoObject;

/** One step of a path: object key, array index, or set member. */
function step(v: Value, key: Value): Value | undefined {
  if (isObject(v)) return objectGet(v, key);
  if (Array.isArray(v)) {
    if (typeof key !== 'number' || !Number.isInteger(key) || key < 0 || key >= v.length) return undefined;
    return v[key];
  }
  if (v instanceof RegoSet) return v.has(key) ? key : undefined;
  return undefined;
}

function objectGetFn(args: Value[]): Value {
  const o = obj('object.get', args, 0);
  const key = args[1]!;
  const dflt = args[2]!;
  if (!Array.isArray(key)) {
    // A member whose value is null is present: OPA returns the null, not the default.
    const v = objectGet(o, key);
    return v === undefined ? dflt : v;
  }
  // An array key is a path; the empty path selects the object itself (as OPA).
  if (key.length === 0) return o;
  let cur: Value | undefined = o;
  for (const k of key) {
    cur = step(cur, k);
    if (cur === undefined) return dflt;
  }
  return cur;
}

/** Keys named by an array, set or object (its keys), as object.remove/filter accept. */
function keyList(name: string, args: Value[], i: number): readonly Value[] {
  const v = args[i]!;
  if (Array.isArray(v)) return v;
  if (v instanceof RegoSet) return [...v.values()];
  if (isObject(v)) return objectKeys(v);
  throw typeErr(name, i + 1, v, 'object', 'set', 'array');
}

function remove(args: Value[]): Value {
  const o = obj('object.remove', args, 0);
  const drop = new Set<string>();
  for (const k of keyList('object.remove', args, 1)) {
    work(1);
    drop.add(keyOf(k));
  }
  const kept: Array<[Value, Value]> = [];
  for (const e of objectEntries(o)) {
    work(1);
    if (!drop.has(keyOf(e[0]))) kept.push(e);
  }
  return makeObject(kept);
}

/**
 * Looks up each key kept rather than testing each member of `o`: the work is the size of the
 * key list, not of the object (`object.filter(data.table, [k])` on a large table).
 */
function filter(args: Value[]): Value {
  const o = obj('object.filter', args, 0);
  const keys = keyList('object.filter', args, 1);
  const entries: Array<[Value, Value]> = [];
  for (const k of keys) {
    work(1);
    // The object's own key (a listed 1 may find the key 1.0's entry), as testing members kept it.
    if (o instanceof RegoObject) {
      const e = o.map.get(keyOf(k));
      if (e !== undefined) entries.push(e);
    } else {
      const v = objectGet(o, k);
      if (v !== undefined) entries.push([k, v]);
    }
  }
  // A key listed twice is kept once (makeObject keeps the last, and both carry the same value).
  return makeObject(entries);
}

/** Deep merge: keys of `b` win, except that two objects under one key merge recursively. */
export function unionObjects(a: Obj, b: Obj): Obj {
  const merged = new Map<string, [Value, Value]>();
  for (const [k, v] of objectEntries(a)) merged.set(keyOf(k), [k, v]);
  for (const [k, v] of objectEntries(b)) {
    const id = keyOf(k);
    const prev = merged.get(id);
    merged.set(id, [k, prev && isObject(prev[1]) && isObject(v) ? unionObjects(prev[1], v) : v]);
  }
  return makeObject(merged.values());
}

function unionN(args: Value[]): Value {
  const list = arr('object.union_n', args, 0);
  let acc: Obj = {};
  for (const x of list) {
    if (!isObject(x)) throw elemErr('object.union_n', 1, list, x, 'object');
    acc = unionObjects(acc, x);
  }
  return acc;
}

/** `object.subset(super, sub)`: objects recursively, arrays as contiguous runs, sets as subsets. */
function isSubset(sup: Value, sub: Value): boolean {
  if (isObject(sup) && isObject(sub)) {
    for (const [k, v] of objectEntries(sub)) {
      const w = objectGet(sup, k);
      if (w === undefined) return false;
      if (isObject(w) && isObject(v) ? !isSubset(w, v) : !equal(w, v)) return false;
    }
    return true;
  }
  if (sup instanceof RegoSet && sub instanceof RegoSet) {
    for (const k of sub.map.keys()) if (!sup.map.has(k)) return false;
    return true;
  }
  if (Array.isArray(sup) && Array.isArray(sub)) {
    if (sub.length === 0) return true;
    for (let i = 0; i + sub.length <= sup.length; i++) {
      // Up to sub.length comparisons per position: metered.
      work(sub.length);
      let ok = true;
      for (let j = 0; j < sub.length && ok; j++) ok = equal(sup[i + j]!, sub[j]!);
      if (ok) return true;
    }
    return false;
  }
  if (Array.isArray(sup) && sub instanceof RegoSet) {
    const have = new Set(sup.map(keyOf));
    for (const k of sub.map.keys()) if (!have.has(k)) return false;
    return true;
  }
  return equal(sup, sub);
}

export const OBJECTS: BuiltinDef[] = [
  def('object.get', 3, objectGetFn),
  def('object.keys', 1, (args) => RegoSet.from(objectKeys(obj('object.keys', args, 0)))),
  def('object.remove', 2, remove),
  def('object.filter', 2, filter),
  def('object.union', 2, (args) => unionObjects(obj('object.union', args, 0), obj('object.union', args, 1))),
  def('object.union_n', 1, unionN),
  def('object.subset', 2, (args) => {
    const [a, b] = args as [Value, Value];
    const ok = (v: Value) => isObject(v) || Array.isArray(v) || v instanceof RegoSet;
    if (!ok(a)) throw typeErr('object.subset', 1, a, 'object', 'set', 'array');
    if (!ok(b)) throw typeErr('object.subset', 2, b, 'object', 'set', 'array');
    return isSubset(a, b);
  }),
];
