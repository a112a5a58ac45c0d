/**
 * JSON text ↔ Rego values, exact as OPA (which decodes with UseNumber): integers beyond 2^53
 * keep every digit as bigint, keys come out sorted, and `<`, `>`, `&`, U+2028, U+2029 are
 * escaped as Go's json.Marshal escapes them.
 */
import { defineKey, stringifyJSON, type PlainObject, type Value } from '../value.js';
import { parseNumberText } from './numeric.js';
import { MAX_RESULT_STRING, checkStringSize, work } from '../meter.js';

export class JSONSyntaxError extends Error {}

/** Go's encoding/json HTML-safe escaping (these characters only occur inside strings). */
const GO_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

export function marshalJSON(v: Value, indent?: string, prefix = ''): string {
  const compact = stringifyJSON(v).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]!);
  if (indent === undefined && prefix === '') return compact;
  // Go's MarshalIndent prefixes every line but the first; OPA then prefixes the first too.
  const text = indentJSON(compact, indent ?? '\t');
  if (prefix) checkStringSize(text.length + prefix.length * (occurrences(text, '\n') + 1), 'json.marshal_with_options');
  return prefix ? prefix + text.split('\n').join('\n' + prefix) : text;
}

/** Indented text grows by depth × indent per line: charged and capped line by line. */
function grown(out: string, added: number): void {
  work(1 + (added >>> 5));
  if (out.length > MAX_RESULT_STRING) checkStringSize(out.length, 'json.marshal_with_options');
}

/** Re-indents compact JSON text (walking the text keeps bigints exact). */
function indentJSON(compact: string, indent: string): string {
  let out = '';
  let depth = 0;
  let inStr = false;
  for (let i = 0; i < compact.length; i++) {
    const c = compact[i]!;
    if (inStr) {
      out += c;
      if (c === '\\') out += compact[++i]!;
      else if (c === '"') inStr = false;
      continue;
    }
    switch (c) {
      case '"':
        inStr = true;
        out += c;
        break;
      case '{':
      case '[': {
        const close = c === '{' ? '}' : ']';
        if (compact[i + 1] === close) {
          out += c + close;
          i++;
        } else out += c + '\n' + indent.repeat(++depth);
        grown(out, depth * indent.length);
        break;
      }
      case '}':
      case ']':
        out += '\n' + indent.repeat(--depth) + c;
        grown(out, depth * indent.length);
        break;
      case ',':
        out += ',\n' + indent.repeat(depth);
        grown(out, depth * indent.length);
        break;
      case ':':
        out += ': ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

/**
 * Text JSON.parse would read inexactly: JSON.parse turns a long digit run into an inexact double
 * and a large exponent (1e400) into Infinity, which is not a Rego number. Such text takes the
 * exact parser (bigint, or an error). A match is at most 16 characters long (see jsonDataSteps).
 */
export const NEEDS_EXACT_PARSE = /\d{16}|[eE][+-]?\d{3}/;

/** The exact parser's reading of `text` (see NEEDS_EXACT_PARSE); throws JSONSyntaxError. */
export function parseJSONExact(text: string): Value {
  return new ExactParser(text).parseDocument();
}

/** Parses JSON; JSON.parse is used unless a long digit run could be a big integer. */
export function unmarshalJSON(text: string): Value {
  work(text.length >>> 4);
  // Go's decoder (OPA's json.unmarshal, json.is_valid) refuses nesting past 10,000 levels;
  // JSON.parse takes any depth, so a text long enough to hold that many is looked at first.
  if (text.length > 2 * MAX_DEPTH) {
    const at = nestingPastMax(text);
    if (at >= 0) throw new JSONSyntaxError(`exceeded max depth at offset ${at}`);
  }
  if (!NEEDS_EXACT_PARSE.test(text)) {
    try {
      return JSON.parse(text) as Value;
    } catch (e) {
      // V8's message quotes the text around the error, which may be a secret: keep only where.
      const at = e instanceof Error ? /position (\d+)/.exec(e.message) : null;
      throw new JSONSyntaxError(at ? `invalid JSON at offset ${at[1]}` : 'invalid JSON');
    }
  }
  return new ExactParser(text).parseDocument();
}

/**
 * Offset of the first syntax error in `text` (undefined if it parses), found by the exact parser:
 * V8's JSON.parse names a position for some errors only (not for an unexpected token, whose
 * message quotes the text instead). For messages that say where, never what.
 */
export function jsonSyntaxErrorOffset(text: string): number | undefined {
  try {
    new ExactParser(text).parseDocument();
    return undefined;
  } catch (e) {
    const m = e instanceof JSONSyntaxError ? / at offset (\d+)$/.exec(e.message) : null;
    return m ? Number(m[1]) : undefined;
  }
}

function occurrences(s: string, c: string): number {
  let n = 0;
  for (let i = s.indexOf(c); i >= 0; i = s.indexOf(c, i + 1)) n++;
  return n;
}

export function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

const WS = new Set([' ', '\t', '\n', '\r']);
/** Go's encoding/json maxNestingDepth: an array or object opened inside 10,000 others is an error. */
const MAX_DEPTH = 10_000;

/**
 * Offset of the bracket that opens a 10,001st level of nesting, or -1. Brackets inside strings
 * do not count; the text is not otherwise checked (the parser that follows does that).
 */
function nestingPastMax(text: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: to the next quote not escaped by a backslash.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_DEPTH) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return -1;
}

/** A small JSON parser that keeps big integers exact (taken for texts with long digit runs). */
class ExactParser {
  private i = 0;
  constructor(private readonly s: string) {}

  parseDocument(): Value {
    const v = this.value();
    this.ws();
    if (this.i < this.s.length) this.fail('unexpected data after top-level value');
    return v;
  }

  private fail(msg: string): never {
    throw new JSONSyntaxError(`${msg} at offset ${this.i}`);
  }

  private ws(): void {
    while (this.i < this.s.length && WS.has(this.s[this.i]!)) this.i++;
  }

  /**
   * One value, with an explicit stack of the arrays and objects open around the current one
   * (not recursion): 10,000 levels, which Go's decoder takes, would exhaust the call stack, and
   * whether they did would depend on how far the engine had optimised this code.
   */
  private value(): Value {
    type Open = { out: Value[]; key?: undefined } | { out: PlainObject; key: string };
    const open: Open[] = [];
    for (;;) {
      this.ws();
      const c = this.s[this.i];
      let v: Value;
      if (c === '[' || c === '{') {
        if (open.length >= MAX_DEPTH) this.fail('exceeded max depth');
        this.i++;
        this.ws();
        if (c === '[') {
          if (this.s[this.i] !== ']') {
            open.push({ out: [] });
            continue;
          }
          this.i++;
          v = [];
        } else {
          if (this.s[this.i] !== '}') {
            open.push({ out: {}, key: this.key() });
            continue;
          }
          this.i++;
          v = {};
        }
      } else v = this.scalar(c);
      // Hand the value to the container around it; close every container that ends here.
      for (;;) {
        const top = open[open.length - 1];
        if (top === undefined) return v;
        if (top.key === undefined) (top.out as Value[]).push(v);
        else defineKey(top.out as PlainObject, top.key, v);
        this.ws();
        const sep = this.s[this.i++];
        if (top.key === undefined) {
          if (sep === ',') break;
          if (sep !== ']') this.fail("expected ',' or ']'");
        } else {
          if (sep === ',') {
            top.key = this.key();
            break;
          }
          if (sep !== '}') this.fail("expected ',' or '}'");
        }
        open.pop();
        v = top.out;
      }
    }
  }

  /** An object member's key and its colon. */
  private key(): string {
    this.ws();
    if (this.s[this.i] !== '"') this.fail('expected string key');
    const k = this.string();
    this.ws();
    if (this.s[this.i++] !== ':') this.fail("expected ':'");
    return k;
  }

  private scalar(c: string | undefined): Value {
    switch (c) {
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        return this.number();
    }
  }

  private literal(word: string, v: Value): Value {
    if (!this.s.startsWith(word, this.i)) this.fail('invalid literal');
    this.i += word.length;
    return v;
  }

  private number(): Value {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 4096));
    if (!m) this.fail('invalid character');
    this.i += m[0].length;
    const n = parseNumberText(m[0], 'JSON number');
    if (n === undefined || (typeof n === 'number' && !Number.isFinite(n))) this.fail('number out of range');
    return n;
  }

  private string(): string {
    const start = this.i;
    this.i++;
    for (;;) {
      const c = this.s.charCodeAt(this.i);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 0x22) break;
      if (c === 0x5c) this.i++;
      else if (c < 0x20) this.fail('control character in string');
      this.i++;
    }
    this.i++;
    try {
      return JSON.parse(this.s.slice(start, this.i)) as string;
    } catch {
      this.i = start;
      return this.fail('invalid string escape');
    }
  }
}
