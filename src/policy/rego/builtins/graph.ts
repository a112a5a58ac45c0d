/**
 * Graph helpers: `graph.reachable` (a built-in) and `walkPairs`, the enumeration behind OPA's
 * `walk(x, [path, value])`. `walk` is a relation (it yields many results), so the evaluator
 * calls `walkPairs` itself rather than going through BUILTINS.
 */
import { RegoSet, isObject, keyOf, objectGet, sortedEntries, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, obj, typeErr } from './util.js';
import { work } from '../meter.js';

/** A composite being walked: its path, its children's keys (undefined: array indexes) and values. */
interface WalkFrame {
  path: Value[];
  keys: Value[] | undefined;
  values: Value[];
  next: number;
}

function walkFrame(path: Value[], v: Value): WalkFrame | undefined {
  if (Array.isArray(v)) return v.length === 0 ? undefined : { path, keys: undefined, values: v, next: 0 };
  if (v instanceof RegoSet) {
    const s = v.sorted();
    return s.length === 0 ? undefined : { path, keys: s, values: s, next: 0 };
  }
  if (isObject(v)) {
    // Key order, as OPA walks objects.
    const entries = sortedEntries(v);
    return entries.length === 0 ? undefined : { path, keys: entries.map((e) => e[0]), values: entries.map((e) => e[1]), next: 0 };
  }
  return undefined;
}

/**
 * Every [path, value] pair of `x`, root first (pre-order, as OPA's walk), one at a time: the
 * caller counts a step per pair and may stop early, so nothing is built ahead of it (a value
 * holding the same large value many times over has far more pairs than memory could hold).
 * Each path is built from its parent's when its pair is reached.
 */
export function* walkPairs(x: Value): Generator<[Value[], Value], void, undefined> {
  yield [[], x];
  const stack: WalkFrame[] = [];
  const root = walkFrame([], x);
  if (root !== undefined) stack.push(root);
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.next >= f.values.length) {
      stack.pop();
      continue;
    }
    const i = f.next++;
    const v = f.values[i]!;
    const path = f.path.slice();
    path.push(f.keys === undefined ? i : f.keys[i]!);
    work(path.length);
    yield [path, v];
    const child = walkFrame(path, v);
    if (child !== undefined) stack.push(child);
  }
}

function neighbours(v: Value | undefined): Value[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  if (v instanceof RegoSet) return [...v.values()];
  return [];
}

/** Paths are enumerated, and their number can grow exponentially: refuse past this. */
const MAX_PATHS = 10_000;

/**
 * OPA's graph.reachable_paths: every path from each initial node, ending at a leaf, at a node
 * outside the graph (not included), or just before a node already on the path (a cycle).
 */
function reachablePaths(args: Value[]): Value {
  const name = 'graph.reachable_paths';
  const g = obj(name, args, 0);
  const init = args[1]!;
  if (!Array.isArray(init) && !(init instanceof RegoSet)) throw typeErr(name, 2, init, '{array, set}');
  const out = new RegoSet();
  const commit = (path: Value[]) => {
    out.add(path);
    if (out.size > MAX_PATHS) throw builtinErr(name, `more than ${MAX_PATHS} paths`);
  };
  const build = (node: Value, path: Value[], onPath: Set<string>): void => {
    const edges = objectGet(g, node);
    if (edges === undefined) return commit(path);
    const here = [...path, node];
    const next = neighbours(edges);
    if (next.length === 0) return commit(here);
    const seen = new Set(onPath).add(keyOf(node));
    for (const n of next) {
      if (seen.has(keyOf(n))) commit(here);
      else build(n, here, seen);
    }
  };
  for (const node of neighbours(init)) {
    const edges = objectGet(g, node);
    if (edges === undefined) continue;
    const next = neighbours(edges);
    if (next.length === 0) commit([node]);
    else for (const n of next) build(n, [node], new Set([keyOf(node)]));
  }
  return out;
}

export const GRAPH: BuiltinDef[] = [
  def('graph.reachable_paths', 2, reachablePaths),
  def('graph.reachable', 2, (args) => {
    const g = obj('graph.reachable', args, 0);
    const init = args[1]!;
    if (!Array.isArray(init) && !(init instanceof RegoSet)) throw typeErr('graph.reachable', 2, init, '{array, set}');
    const seen = new RegoSet();
    const stack = [...neighbours(init)];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      const edges = objectGet(g, n);
      // Nodes absent from the graph are not reachable, as in OPA.
      if (edges === undefined) continue;
      seen.add(n);
      stack.push(...neighbours(edges));
    }
    return seen;
  }),
];
