/**
 * Regex built-ins with RE2 syntax, as OPA's Go regexp: `regex.match`, `regex.is_valid`,
 * `regex.find_n`, `regex.find_all_string_submatch_n`, `regex.split`, `regex.replace`.
 */
import type { Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, int, str } from './util.js';
import { MAX_RESULT_STRING, checkStringSize, work } from '../meter.js';
import { compileRegex, findAll, isValidRegex, type Match } from './patterns.js';

/** Go's regexp.Split(s, -1). */
function split(args: Value[]): Value {
  const re = compileRegex('regex.split', str('regex.split', args, 0));
  const s = str('regex.split', args, 1);
  if (s === '') return [''];
  const out: Value[] = [];
  let beg = 0;
  let end = 0;
  for (const m of findAll(re, s, -1)) {
    end = m.index;
    if (m.end !== 0) out.push(s.slice(beg, end));
    beg = m.end;
  }
  if (end !== s.length) out.push(s.slice(beg));
  return out;
}

/** Go's Regexp.Expand template: `$1`, `${1}`, `$name`, `${name}`, `$$`. */
function expand(template: string, m: Match): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '$' || i + 1 >= template.length) {
      out += c;
      continue;
    }
    if (template[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    let name: string;
    let next: number;
    if (template[i + 1] === '{') {
      const close = template.indexOf('}', i + 2);
      const inner = close < 0 ? '' : template.slice(i + 2, close);
      if (!/^\w+$/.test(inner)) {
        out += c;
        continue;
      }
      name = inner;
      next = close;
    } else {
      const word = /^\w+/.exec(template.slice(i + 1));
      if (!word) {
        out += c;
        continue;
      }
      name = word[0];
      next = i + word[0].length;
    }
    // A name of digits is a group number; anything else a named group; unknown ones expand to "".
    if (/^\d+$/.test(name)) out += m.groups[Number(name)] ?? '';
    else out += m.named?.[name] ?? '';
    i = next;
  }
  return out;
}

function replace(args: Value[]): Value {
  const s = str('regex.replace', args, 0);
  const re = compileRegex('regex.replace', str('regex.replace', args, 1));
  const template = str('regex.replace', args, 2);
  let out = '';
  let last = 0;
  for (const m of findAll(re, s, -1)) {
    out += s.slice(last, m.index) + expand(template, m);
    work(1 + (template.length >>> 5));
    if (out.length > MAX_RESULT_STRING) checkStringSize(out.length, 'regex.replace');
    last = m.end;
  }
  return out + s.slice(last);
}

/**
 * `regex.template_match(template, value, start, end)`: the template is literal text with regex
 * parts between the delimiters (`urn:foo:{.*}`); the whole value must match.
 */
function templateMatch(args: Value[]): Value {
  const name = 'regex.template_match';
  const template = str(name, args, 0);
  const value = str(name, args, 1);
  const start = str(name, args, 2);
  const end = str(name, args, 3);
  if (start.length !== 1) throw builtinErr(name, `start delimiter has to be exactly one character long but is ${start.length} long`);
  if (end.length !== 1) throw builtinErr(name, `end delimiter has to be exactly one character long but is ${end.length} long`);
  let source = '^';
  let depth = 0;
  let part = '';
  for (const c of template) {
    if (c === start) {
      if (depth === 0) {
        source += part.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
        part = '';
      } else part += c;
      depth++;
    } else if (c === end && depth > 0) {
      depth--;
      if (depth === 0) {
        source += '(?:' + part + ')';
        part = '';
      } else part += c;
    } else part += c;
  }
  if (depth !== 0) throw builtinErr(name, 'unbalanced braces in the template');
  source += part.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&') + '$';
  const re = compileRegex(name, source);
  re.lastIndex = 0;
  const ok = re.test(value);
  re.lastIndex = 0;
  return ok;
}

export const REGEX: BuiltinDef[] = [
  def('regex.template_match', 4, templateMatch),
  def('regex.match', 2, (args) => {
    const re = compileRegex('regex.match', str('regex.match', args, 0));
    const s = str('regex.match', args, 1);
    re.lastIndex = 0;
    const ok = re.test(s);
    re.lastIndex = 0;
    return ok;
  }),
  def('regex.is_valid', 1, (args) => typeof args[0] === 'string' && isValidRegex(args[0])),
  def('regex.find_n', 3, (args) => {
    const re = compileRegex('regex.find_n', str('regex.find_n', args, 0));
    const s = str('regex.find_n', args, 1);
    return findAll(re, s, int('regex.find_n', args, 2)).map((m) => m.groups[0]!);
  }),
  def('regex.find_all_string_submatch_n', 3, (args) => {
    const name = 'regex.find_all_string_submatch_n';
    const re = compileRegex(name, str(name, args, 0));
    const s = str(name, args, 1);
    return findAll(re, s, int(name, args, 2)).map((m) => m.groups.map((g) => g ?? ''));
  }),
  def('regex.split', 2, split),
  def('regex.replace', 3, replace),
];
