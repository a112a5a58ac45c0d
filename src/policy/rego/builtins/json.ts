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
const MAX_DEPTH = 10_000;

/** A small recursive-descent JSON parser that keeps big integers exact. */
class ExactParser {
  private i = 0;
  constructor(private readonly s: string) {}

  parseDocument(): Value {
    const v = this.value(0);
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

  private value(depth: number): Value {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    this.ws();
    const c = this.s[this.i];
    switch (c) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
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

  private array(depth: number): Value[] {
    this.i++;
    const out: Value[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') this.fail("expected ',' or ']'");
    }
  }

  private object(depth: number): PlainObject {
    this.i++;
    const out: PlainObject = {};
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail('expected string key');
      const k = this.string();
      this.ws();
      if (this.s[this.i++] !== ':') this.fail("expected ':'");
      defineKey(out, k, this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') this.fail("expected ',' or '}'");
    }
  }
}
