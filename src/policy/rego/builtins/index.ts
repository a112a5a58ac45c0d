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
import { REGEX } from './regex.js';
import { GLOB } from './glob.js';
import { ENCODING } from './encoding.js';
import { TIME } from './time.js';
import { NET } from './net.js';
import { SEMVER_BUILTINS } from './semver.js';
import { JWT } from './jwt.js';
import { CRYPTO } from './crypto.js';
import { UNITS } from './units.js';
import { GRAPH } from './graph.js';
import { RUNTIME } from './runtime.js';
import { JSON_PATHS } from './jsonpaths.js';
import { JSON_PATCH } from './jsonpatch.js';
import { TEMPLATE } from './template.js';
import { TEMPLATE_STRING } from './template-string.js';
import { BITS } from './bits.js';
import { RANDOM } from './random.js';

export { BuiltinError, type BuiltinContext, type BuiltinDef } from './types.js';
/** `walk(x, [path, value])` is a relation; the evaluator enumerates these pairs itself. */
export { walkPairs } from './graph.js';
/** Rego term text (as OPA prints values), for messages and `print`. */
export { printLine, termString } from './terms.js';
/** JSON text ↔ values, exact on big integers (for loading input/data files). */
export { marshalJSON, unmarshalJSON, JSONSyntaxError } from './json.js';

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
  ...REGEX,
  ...GLOB,
  ...ENCODING,
  ...TIME,
  ...NET,
  ...SEMVER_BUILTINS,
  ...JWT,
  ...CRYPTO,
  ...UNITS,
  ...GRAPH,
  ...RUNTIME,
  ...JSON_PATHS,
  ...JSON_PATCH,
  ...TEMPLATE,
  ...TEMPLATE_STRING,
  ...BITS,
  ...RANDOM,
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
