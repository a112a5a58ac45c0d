/**
 * `strings.render_template(template, vars)`: OPA renders Go text/template with the variables
 * (missing keys are errors). Warden supports the part policies use — `{{.name}}`, nested
 * `{{.a.b}}`, `{{.}}`, trim markers `{{-`/`-}}` and comments — and refuses any other action
 * with an error rather than render it differently from OPA.
 */
import { RegoDecimal, RegoSet, isObject, objectGet, sortedEntries, type Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, obj, str } from './util.js';
import { numberText } from './terms.js';
import { MAX_RESULT_STRING, checkStringSize, work } from '../meter.js';

/** Go's %v of the value after OPA's JSON round trip (numbers keep their JSON text, objects are maps). */
function goValue(v: Value | undefined): string {
  if (v === undefined || v === null) return '<no value>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' || typeof v === 'bigint') return numberText(v);
  if (Array.isArray(v)) {
    work(v.length);
    return '[' + v.map(goValue).join(' ') + ']';
  }
  if (v instanceof RegoSet) return '[' + v.sorted().map(goValue).join(' ') + ']';
  if (v instanceof RegoDecimal) return numberText(v.num);
  const entries = sortedEntries(v);
  return 'map[' + entries.map(([k, x]) => `${typeof k === 'string' ? k : goValue(k)}:${goValue(x)}`).join(' ') + ']';
}

function render(name: string, template: string, vars: Value): string {
  let out = '';
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{{', i);
    if (open < 0) {
      out += template.slice(i);
      break;
    }
    let text = template.slice(i, open);
    const close = template.indexOf('}}', open + 2);
    if (close < 0) throw builtinErr(name, 'template: unclosed action');
    let action = template.slice(open + 2, close);
    // `{{- ` trims the whitespace before the action, ` -}}` the whitespace after it.
    if (/^-\s/.test(action)) {
      text = text.replace(/\s+$/, '');
      action = action.slice(1);
    }
    let trimAfter = false;
    if (/\s-$/.test(action)) {
      trimAfter = true;
      action = action.slice(0, -1);
    }
    out += text;
    action = action.trim();
    if (/^\/\*[\s\S]*\*\/$/.test(action)) {
      // comment
    } else if (action === '.') {
      out += goValue(vars);
    } else if (/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(action)) {
      let cur: Value | undefined = vars;
      for (const key of action.slice(1).split('.')) {
        if (!isObject(cur)) throw builtinErr(name, `template: can't evaluate field ${key}`);
        cur = objectGet(cur, key);
        if (cur === undefined) throw builtinErr(name, `template: map has no entry for key "${key}"`);
      }
      out += goValue(cur);
    } else {
      throw builtinErr(name, 'template: only {{.field}} actions are supported by Warden');
    }
    if (out.length > MAX_RESULT_STRING) checkStringSize(out.length, name);
    i = close + 2;
    if (trimAfter) while (i < template.length && /\s/.test(template[i]!)) i++;
  }
  return out;
}

export const TEMPLATE: BuiltinDef[] = [
  def('strings.render_template', 2, (args) => {
    const name = 'strings.render_template';
    return render(name, str(name, args, 0), obj(name, args, 1));
  }),
];
