/**
 * Graph helpers: `graph.reachable` (a built-in) and `walkPairs`, the enumeration behind OPA's
 * `walk(x, [path, value])`. `walk` is a relation (it yields many results), so the evaluator
 * calls `walkPairs` itself rather than going through BUILTINS.
 */
import { RegoSet, isObject, keyOf, objectEntries, objectGet, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, obj, typeErr } from './util.js';

/** Every [path, value] pair of `x`, root first (pre-order, as OPA's walk). */
export function walkPairs(x: Value): Array<[Value[], Value]> {
  const out: Array<[Value[], Value]> = [];
  const visit = (path: Value[], v: Value): void => {
    out.push([path, v]);
    if (Array.isArray(v)) v.forEach((e, i) => visit([...path, i], e));
    else if (v instanceof RegoSet) for (const e of v.sorted()) visit([...path, e], e);
    else if (isObject(v)) for (const [k, e] of objectEntries(v)) visit([...path, k], e);
  };
  visit([], x);
  return out;
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
