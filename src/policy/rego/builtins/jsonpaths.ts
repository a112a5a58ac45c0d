/**
 * `json.filter` and `json.remove`: keep or drop the parts of an object named by paths, written
 * either as `/`-separated JSON pointers (`"a/b/0"`, with `~1` for `/` and `~0` for `~`) or as
 * arrays of segments. Array elements are addressed by their index ("0" or 0).
 */
import { RegoSet, isObject, keyOf, makeObject, objectEntries, objectGet, typeName, type PlainObject, type RegoObject, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { pathSegments } from './json-pointer.js';
import { def, obj, operandErr, typeErr } from './util.js';
import { work } from '../meter.js';

/** A path tree: a leaf (null) selects the whole value below it. */
type Tree = Map<string, TreeEntry>;
interface TreeEntry {
  key: Value;
  sub: Tree | null;
}

function pathsOf(name: string, args: Value[]): Value[][] {
  const v = args[1]!;
  const items = Array.isArray(v) ? v : v instanceof RegoSet ? v.sorted() : undefined;
  if (!items) throw typeErr(name, 2, v, 'set', 'array');
  // Paths, tree nodes and members are charged one by one: a call may name 200,000 paths.
  return items.map((p) => {
    work(1);
    const path = pathSegments(p);
    if (path) return path;
    // OPA names the offending element's type (a type, never a value).
    throw operandErr(name, 2, `must be one of {set, array} containing string paths or array of path segments but got ${typeName(p)}`);
  });
}

function treeOf(paths: Value[][]): Tree | null {
  const root: Tree = new Map();
  for (const path of paths) {
    // The empty path names nothing (OPA skips it).
    if (path.length === 0) continue;
    let node = root;
    for (let i = 0; i < path.length; i++) {
      work(1);
      const id = keyOf(path[i]!);
      const last = i === path.length - 1;
      const child = node.get(id);
      if (last) {
        node.set(id, { key: path[i]!, sub: null });
        break;
      }
      if (child && child.sub === null) break; // an ancestor is already selected whole
      if (!child) {
        const sub: Tree = new Map();
        node.set(id, { key: path[i]!, sub });
        node = sub;
      } else node = child.sub!;
    }
  }
  return root;
}

/** The tree entry for an array index, addressed as "1" or 1. */
function indexEntry(t: Tree, i: number): TreeEntry | undefined {
  return t.get(keyOf(String(i))) ?? t.get(keyOf(i));
}

/**
 * Rebuilds an array or set from what `f` makes of each element given its tree entry (array
 * elements by index, set members by value); an undefined result drops the element.
 */
function mapElements(v: Value[] | RegoSet, t: Tree, f: (elem: Value, e: TreeEntry | undefined) => Value | undefined): Value {
  if (Array.isArray(v)) {
    const out: Value[] = [];
    for (let i = 0; i < v.length; i++) {
      work(1);
      const y = f(v[i]!, indexEntry(t, i));
      if (y !== undefined) out.push(y);
    }
    return out;
  }
  const out = new RegoSet();
  for (const m of v.values()) {
    work(1);
    const y = f(m, t.get(keyOf(m)));
    if (y !== undefined) out.add(y);
  }
  return out;
}

function filterValue(v: Value, t: Tree | null): Value | undefined {
  if (t === null) return v;
  if (isObject(v)) {
    const out: Array<[Value, Value]> = [];
    for (const { key, sub } of t.values()) {
      work(1);
      const x = objectGet(v, key);
      if (x === undefined) continue;
      const y = filterValue(x, sub);
      if (y !== undefined) out.push([key, y]);
    }
    return makeObject(out);
  }
  if (Array.isArray(v) || v instanceof RegoSet) return mapElements(v, t, (x, e) => (e ? filterValue(x, e.sub) : undefined));
  return v;
}

function removeValue(v: Value, t: Tree | null | undefined): Value | undefined {
  if (t === undefined) return v;
  if (t === null) return undefined;
  if (isObject(v)) {
    const out: Array<[Value, Value]> = [];
    for (const [k, x] of objectEntries(v)) {
      work(1);
      const e = t.get(keyOf(k));
      const y = removeValue(x, e ? e.sub : undefined);
      if (y !== undefined) out.push([k, y]);
    }
    return makeObject(out);
  }
  // Removed array elements close up, as in JSON Patch.
  if (Array.isArray(v) || v instanceof RegoSet) return mapElements(v, t, (x, e) => removeValue(x, e ? e.sub : undefined));
  return v;
}

export const JSON_PATHS: BuiltinDef[] = [
  def('json.filter', 2, (args) => {
    const o = obj('json.filter', args, 0) as PlainObject | RegoObject;
    return filterValue(o, treeOf(pathsOf('json.filter', args)));
  }),
  def('json.remove', 2, (args) => {
    const o = obj('json.remove', args, 0) as PlainObject | RegoObject;
    return removeValue(o, treeOf(pathsOf('json.remove', args)));
  }),
];
