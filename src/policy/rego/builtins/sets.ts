/** `union` and `intersection` of a set of sets. */
import { RegoSet, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { def, set, typeErr } from './util.js';
import { MAX_RESULT_ELEMENTS, checkElements, work } from '../meter.js';
import { setIntersection } from './operators.js';

function setsOf(name: string, args: Value[]): RegoSet[] {
  const s = set(name, args, 0);
  const out: RegoSet[] = [];
  for (const x of s.values()) {
    // OPA reports a non-set member as the operand itself being of the wrong type.
    if (!(x instanceof RegoSet)) throw typeErr(name, 1, x, 'set');
    out.push(x);
  }
  return out;
}

export const SETS: BuiltinDef[] = [
  def('union', 1, (args) => {
    const out = new RegoSet();
    for (const s of setsOf('union', args)) {
      work(s.size);
      for (const [k, v] of s.map) out.map.set(k, v);
      if (out.size > MAX_RESULT_ELEMENTS) checkElements(out.size, 'union');
    }
    return out;
  }),
  def('intersection', 1, (args) => {
    const sets = setsOf('intersection', args);
    if (sets.length === 0) return new RegoSet();
    let acc = sets[0]!;
    for (let i = 1; i < sets.length; i++) {
      work(acc.size);
      acc = setIntersection(acc, sets[i]!);
    }
    return acc;
  }),
];
