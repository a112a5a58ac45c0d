/**
 * `json.patch(doc, ops)`: RFC 6902 JSON Patch (add, remove, replace, move, copy, test) over Rego
 * values, with paths as JSON pointers (`/a/0/b`, `~1` for `/`, `~0` for `~`) or arrays of
 * segments. Values are copied along the changed path, never edited. As in OPA, a patch that
 * cannot apply leaves the call undefined rather than raising.
 */
import {
  RegoSet,
  defineKey,
  equal,
  isObject,
  isPlainObject,
  makeObject,
  objectEntries,
  objectGet,
  type PlainObject,
  type RegoObject,
  type Value,
} from '../value.js';
import type { BuiltinDef } from './types.js';
import { pathSegments } from './json-pointer.js';
import { arr, def } from './util.js';
import { work } from '../meter.js';

class PatchFailed extends Error {}
const fail = (): never => {
  throw new PatchFailed();
};

function pathOf(p: Value | undefined): Value[] {
  return pathSegments(p) ?? fail();
}

/** An array index from a segment ("2" or 2), within [0, max]. */
function index(seg: Value, max: number): number {
  const n = typeof seg === 'string' && /^(0|[1-9]\d*)$/.test(seg) ? Number(seg) : typeof seg === 'number' ? seg : NaN;
  if (!Number.isInteger(n) || n < 0 || n > max) fail();
  return n;
}

function get(doc: Value, path: Value[]): Value {
  let cur: Value = doc;
  for (const seg of path) {
    if (isObject(cur)) {
      const next = objectGet(cur, seg);
      if (next === undefined) fail();
      cur = next!;
    } else if (Array.isArray(cur)) cur = cur[index(seg, cur.length - 1)]!;
    else if (cur instanceof RegoSet) cur = cur.has(seg) ? seg : fail();
    else fail();
  }
  return cur;
}

function withKey(o: PlainObject | RegoObject, key: Value, v: Value | undefined): Value {
  const entries = objectEntries(o).filter(([k]) => !equal(k, key));
  if (v !== undefined) entries.push([key, v]);
  if (isPlainObject(o) && typeof key === 'string') {
    const out: PlainObject = {};
    for (const [k, x] of entries) defineKey(out, k as string, x);
    return out;
  }
  return makeObject(entries);
}

/** Applies `edit` to the value at `path` (copying every container on the way). */
function update(doc: Value, path: Value[], edit: (parent: Value, last: Value) => Value): Value {
  if (path.length === 0) return fail();
  if (path.length === 1) return edit(doc, path[0]!);
  const [seg, ...rest] = path as [Value, ...Value[]];
  if (isObject(doc)) {
    const child = objectGet(doc, seg);
    if (child === undefined) fail();
    return withKey(doc, seg, update(child!, rest, edit));
  }
  if (Array.isArray(doc)) {
    const i = index(seg, doc.length - 1);
    work(doc.length >>> 3);
    const out = doc.slice();
    out[i] = update(doc[i]!, rest, edit);
    return out;
  }
  // A set member is its own path segment (OPA): the member is replaced by its edited copy.
  if (doc instanceof RegoSet) {
    if (!doc.has(seg)) fail();
    return withMember(doc, seg, update(seg, rest, edit));
  }
  return fail();
}

/** A copy of `set` without `drop`, plus `v` unless undefined. */
function withMember(set: RegoSet, drop: Value | undefined, v: Value | undefined): RegoSet {
  work(set.size >>> 3);
  const out = RegoSet.from(drop === undefined ? set.values() : [...set.values()].filter((x) => !equal(x, drop)));
  if (v !== undefined) out.add(v);
  return out;
}

function add(doc: Value, path: Value[], v: Value): Value {
  if (path.length === 0) return v;
  return update(doc, path, (parent, last) => {
    if (isObject(parent)) return withKey(parent, last, v);
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : index(last, parent.length);
      work(parent.length >>> 3);
      return [...parent.slice(0, i), v, ...parent.slice(i)];
    }
    // In a set the path's last segment is the member itself, so the value must be that member.
    if (parent instanceof RegoSet) return equal(last, v) ? withMember(parent, undefined, v) : fail();
    return fail();
  });
}

function remove(doc: Value, path: Value[]): Value {
  return update(doc, path, (parent, last) => {
    if (isObject(parent)) {
      if (objectGet(parent, last) === undefined) fail();
      return withKey(parent, last, undefined);
    }
    if (Array.isArray(parent)) {
      const i = index(last, parent.length - 1);
      return [...parent.slice(0, i), ...parent.slice(i + 1)];
    }
    if (parent instanceof RegoSet) {
      if (!parent.has(last)) fail();
      return withMember(parent, last, undefined);
    }
    return fail();
  });
}

function apply(doc: Value, op: Value): Value {
  if (!isObject(op)) return fail();
  const kind = objectGet(op, 'op');
  const path = pathOf(objectGet(op, 'path'));
  const value = objectGet(op, 'value');
  const need = (v: Value | undefined): Value => (v === undefined ? fail() : v);
  switch (kind) {
    case 'add':
      return add(doc, path, need(value));
    case 'remove':
      return remove(doc, path);
    case 'replace':
      get(doc, path);
      return add(path.length === 0 ? doc : remove(doc, path), path, need(value));
    case 'move': {
      const from = pathOf(objectGet(op, 'from'));
      const v = get(doc, from);
      return add(remove(doc, from), path, v);
    }
    case 'copy':
      return add(doc, path, get(doc, pathOf(objectGet(op, 'from'))));
    case 'test':
      return equal(get(doc, path), need(value)) ? doc : fail();
    default:
      return fail();
  }
}

export const JSON_PATCH: BuiltinDef[] = [
  def('json.patch', 2, (args) => {
    const ops = arr('json.patch', args, 1);
    let doc: Value = args[0]!;
    try {
      for (const op of ops) doc = apply(doc, op);
    } catch (e) {
      if (e instanceof PatchFailed) return undefined;
      throw e;
    }
    return doc;
  }),
];
