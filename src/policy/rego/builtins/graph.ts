/**
 * Graph helpers: `graph.reachable` (a built-in) and `walkPairs`, the enumeration behind OPA's
 * `walk(x, [path, value])`. `walk` is a relation (it yields many results), so the evaluator
 * calls `walkPairs` itself rather than going through BUILTINS.
 */
import { RegoSet, isObject, objectEntries, objectGet, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { def, obj, typeErr } from './util.js';

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

export const GRAPH: BuiltinDef[] = [
  def('graph.reachable', 2, (args) => {
    const g = obj('graph.reachable', args, 0);
    const init = args[1]!;
    if (!Array.isArray(init) && !(init instanceof RegoSet)) throw typeErr('graph.reachable', 2, init, 'set', 'array');
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
