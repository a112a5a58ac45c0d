/**
 * The built-in function table. The evaluator looks built-ins up here by their full dotted
 * name (`count`, `strings.replace_n`, `plus` for `+`) and checks arity at compile time; a call
 * to a name that is neither here nor a rule is a compile error naming it.
 */
import type { BuiltinDef } from './types.js';
import { OPERATORS } from './operators.js';
import { AGGREGATES } from './aggregates.js';
import { NUMBERS } from './numbers.js';
import { STRINGS } from './strings.js';
import { SPRINTF } from './sprintf.js';
import { TYPECHECK } from './typecheck.js';
import { CASTS } from './casts.js';
import { ARRAYS } from './arrays.js';
import { OBJECTS } from './objects.js';
import { SETS } from './sets.js';

export { BuiltinError, type BuiltinContext, type BuiltinDef } from './types.js';

const ALL: BuiltinDef[] = [
  ...OPERATORS,
  ...AGGREGATES,
  ...NUMBERS,
  ...STRINGS,
  ...SPRINTF,
  ...TYPECHECK,
  ...CASTS,
  ...ARRAYS,
  ...OBJECTS,
  ...SETS,
];

function table(defs: BuiltinDef[]): ReadonlyMap<string, BuiltinDef> {
  const m = new Map<string, BuiltinDef>();
  for (const d of defs) {
    if (m.has(d.name)) throw new Error(`duplicate built-in ${d.name}`);
    m.set(d.name, d);
  }
  return m;
}

export const BUILTINS: ReadonlyMap<string, BuiltinDef> = table(ALL);

/** A context for calling built-ins outside a query (tests, constant folding). */
export function builtinContext(nowNs: bigint = BigInt(Date.now()) * 1_000_000n, strict = false) {
  return { nowNs, strict, cache: new Map<string, unknown>() };
}
