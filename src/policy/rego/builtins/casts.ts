/** `to_number`, as OPA: null → 0, booleans → 0/1, numeric strings parsed exactly. */
import type { Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, typeErr } from './util.js';
import { parseNumberText } from './numeric.js';

function toNumber(args: Value[]): Value {
  const v = args[0]!;
  if (v === null) return 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  if (typeof v === 'string') {
    const bare = v.replace(/^[+-]+/, '').toLowerCase();
    // Go's ParseFloat accepts these, OPA refuses them as not being numbers.
    if (bare === 'inf' || bare === 'infinity' || bare === 'nan') throw typeErr('to_number', 1, v, 'valid number string');
    const n = parseNumberText(v, 'to_number');
    if (n === undefined || (typeof n === 'number' && !Number.isFinite(n))) {
      // OPA quotes the string here; Warden does not repeat operand values in errors.
      throw builtinErr('to_number', 'strconv.ParseFloat: parsing the operand: invalid syntax');
    }
    return n;
  }
  throw typeErr('to_number', 1, v, 'null', 'boolean', 'number', 'string');
}

export const CASTS: BuiltinDef[] = [def('to_number', 1, toNumber)];
