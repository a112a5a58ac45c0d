/**
 * `internal.template_string(parts)`: what a template string (`$"…{x}…"`) evaluates to. The
 * parser (ast/parser.ts `parseTemplate`) passes the literal parts and constants as they are and
 * each other expression as the set of its values; as OPA's topdown (template_string.go, on
 * print's operand writer): strings render as they are, other scalars and collections as Rego
 * terms, an empty set (the expression was undefined) as `<undefined>`, and a set of several
 * values is a conflict, raised whatever the strict mode (OPA halts).
 */
import { RegoError } from '../errors.js';
import { RegoSet, isObject, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { arr, def, typeErr } from './util.js';
import { termString } from './terms.js';
import { MAX_RESULT_STRING, checkStringSize } from '../meter.js';

const NAME = 'internal.template_string';

function part(v: Value): string {
  return typeof v === 'string' ? v : termString(v);
}

export const TEMPLATE_STRING: BuiltinDef[] = [
  def(NAME, 1, (args) => {
    let out = '';
    for (const p of arr(NAME, args, 0)) {
      if (p instanceof RegoSet) {
        if (p.size > 1) throw new RegoError('eval_conflict_error', 'template-strings must not produce multiple outputs');
        out += p.size === 0 ? '<undefined>' : part(p.sorted()[0]!);
      } else if (Array.isArray(p) || isObject(p)) {
        // Only a direct call can pass one: the parser passes collections inside a set.
        throw typeErr(NAME, 1, p, 'string', 'number', 'boolean', 'null', 'set');
      } else out += part(p);
      if (out.length > MAX_RESULT_STRING) checkStringSize(out.length, NAME);
    }
    return out;
  }),
];
