/**
 * Serialisation built-ins: `json.*`, `yaml.*`, `base64.*`, `base64url.*`, `hex.*`,
 * `urlquery.*`. Decoders are strict as Go's are (OPA accepts what Go accepts); error
 * messages never quote the input, which may hold secrets.
 */
import YAML, { Composer, Lexer, LineCounter, Parser, type Document } from 'yaml';
import {
  RegoDecimal,
  RegoSet,
  defineKey,
  normalizeInt,
  objectEntries,
  sortedEntries,
  toJSON,
  type PlainObject,
  type Value,
} from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, obj, operandErr, str, typeErr } from './util.js';
import { MAX_RESULT_STRING, budgetExceeded, checkStringSize, rethrowFatal, work } from '../meter.js';
import { MAX_YAML_DEPTH, yamlTooDeep } from '../../../pipeline/yaml-depth.js';
import { JSONSyntaxError, firstLine, marshalJSON, unmarshalJSON } from './json.js';

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

function jsonUnmarshal(args: Value[]): Value {
  const s = str('json.unmarshal', args, 0);
  try {
    return unmarshalJSON(s);
  } catch (e) {
    if (e instanceof JSONSyntaxError) throw builtinErr('json.unmarshal', e.message);
    throw e;
  }
}

function jsonMarshalWithOptions(args: Value[]): Value {
  const v = args[0]!;
  const opts = obj('json.marshal_with_options', args, 1);
  let pretty: boolean | undefined;
  let indent: string | undefined;
  let prefix: string | undefined;
  for (const [k, x] of objectEntries(opts)) {
    if (k === 'pretty' && typeof x === 'boolean') pretty = x;
    else if (k === 'indent' && typeof x === 'string') indent = x;
    else if (k === 'prefix' && typeof x === 'string') prefix = x;
    else if (k === 'pretty' || k === 'indent' || k === 'prefix') {
      throw operandErr('json.marshal_with_options', 2, `key ${k} has the wrong type`);
    } else throw operandErr('json.marshal_with_options', 2, 'object contained an unknown key (want pretty, indent, prefix)');
  }
  // Giving an indent or prefix asks for pretty output unless `pretty: false` says otherwise.
  const wantPretty = pretty ?? (indent !== undefined || prefix !== undefined);
  return wantPretty ? marshalJSON(v, indent ?? '\t', prefix ?? '') : marshalJSON(v);
}

// ---------------------------------------------------------------------------------------------
// YAML (OPA uses sigs.k8s.io/yaml over go-yaml v2: YAML 1.1 scalars, keys as strings)
// ---------------------------------------------------------------------------------------------

/** Converts parsed YAML (with bigint integers) to a Rego value. */
function fromYAML(x: unknown): Value {
  work(1);
  if (x === null || x === undefined) return null;
  if (typeof x === 'bigint') return normalizeInt(x);
  if (typeof x === 'number') return Number.isFinite(x) ? x : (() => {
    throw new JSONSyntaxError('YAML value is not a finite number');
  })();
  if (typeof x === 'string' || typeof x === 'boolean') return x;
  if (x instanceof Date) return x.toISOString();
  if (Array.isArray(x)) return x.map(fromYAML);
  if (x instanceof Map) {
    const o: PlainObject = {};
    for (const [k, v] of x) defineKey(o, typeof k === 'string' ? k : String(k), fromYAML(v));
    return o;
  }
  if (typeof x === 'object') {
    const o: PlainObject = {};
    for (const [k, v] of Object.entries(x)) defineKey(o, k, fromYAML(v));
    return o;
  }
  throw new JSONSyntaxError('unsupported YAML value');
}

const YAML_PARSE = { version: '1.1', intAsBigInt: true, maxAliasCount: 100, uniqueKeys: false } as const;

/**
 * The YAML library's error without any document text. Its messages quote the document freely
 * (`Block scalar header includes extra characters: |<text> at line 1, column 5`), so a parse
 * error is reported by its code and position only (`unexpected token at line 1, column 5`);
 * any other message is cut at its first `: ` (after which the library may quote the document).
 */
function yamlMessage(e: Error): string {
  const { code, linePos } = e as Error & { code?: unknown; linePos?: Array<{ line: number; col: number }> };
  if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) {
    const what = code.toLowerCase().replace(/_/g, ' ');
    const at = linePos?.[0];
    return at ? `${what} at line ${at.line}, column ${at.col}` : what;
  }
  const line = firstLine(e.message);
  const cut = line.indexOf(': ');
  return cut < 0 ? line : line.slice(0, cut);
}

/**
 * The tokens of `text`, each lexeme charged to the work meter before the parser gets it: the
 * library parses a document in one call (a 131k-line list took seconds), and this is where it
 * can be stopped at the deadline. Composition and toJS, which follow, cost a fraction of it.
 */
function* meteredTokens(parser: Parser, text: string): Generator<ReturnType<Parser['next']> extends Generator<infer T> ? T : never> {
  for (const lexeme of new Lexer().lex(text)) {
    // A lexeme costs the library microseconds (it builds the document token as it goes): worth
    // about as much as 32 values visited elsewhere, so the clock is read every ~2 ms of parsing.
    work(32 + (lexeme.length >>> 5));
    yield* parser.next(lexeme);
  }
  yield* parser.end();
}

/**
 * The first document of `text` (YAML.parseDocument, yaml 2.x public-api.js, over metered tokens),
 * with error positions. OPA reads YAML with go-yaml's Unmarshal, which decodes the first
 * document of a stream and never reads past it: `a: 1\n---\nb: 2` is `{"a": 1}`, and whatever
 * follows the first document is not parsed at all (so it cannot make the text invalid). The
 * parser hands over a document once it has seen where it ends; tokens are not read past it.
 */
function parseYAMLDocument(text: string): Document.Parsed {
  const lines = new LineCounter();
  lines.addNewLine(0);
  const parser = new Parser(lines.addNewLine);
  const composer = new Composer(YAML_PARSE);
  for (const token of meteredTokens(parser, text)) {
    // The composer yields a document only when the next one starts, so before the first
    // document token (the last one read) it yields nothing: it holds that document.
    for (const d of composer.next(token)) void d;
    if (token.type === 'document') break;
  }
  // end(forceDoc = true) yields the document held, or an empty one for a text without any.
  let doc: Document.Parsed | undefined;
  for (const d of composer.end(true, text.length)) doc ??= d;
  const parsed = doc!;
  for (const e of parsed.errors) if (e.pos[0] !== -1) e.linePos = [lines.linePos(e.pos[0]), lines.linePos(e.pos[1])];
  return parsed;
}

function parseYAML(name: string, text: string): Value {
  // Too deep for the parser to survive (see pipeline/yaml-depth.ts): the evaluation ends, as any
  // exhausted budget does, instead of the document passing for merely invalid.
  if (yamlTooDeep(text)) throw budgetExceeded(`${name}: document nested more than ${MAX_YAML_DEPTH} levels`);
  let doc;
  try {
    doc = parseYAMLDocument(text);
  } catch (e) {
    rethrowFatal(e);
    throw builtinErr(name, e instanceof Error ? yamlMessage(e) : 'invalid YAML');
  }
  const failed = doc.errors[0];
  // The parser reports its own stack overflow as a document error (code RESOURCE_EXHAUSTION).
  if (failed?.code === 'RESOURCE_EXHAUSTION') throw budgetExceeded(`${name}: document too large or too deep to parse`);
  if (failed) throw builtinErr(name, yamlMessage(failed));
  try {
    return fromYAML(doc.toJS({ mapAsMap: true, maxAliasCount: 100 }));
  } catch (e) {
    rethrowFatal(e);
    throw builtinErr(name, e instanceof Error ? yamlMessage(e) : 'invalid YAML');
  }
}

/**
 * Plain data with sorted keys (sets become sorted arrays), for the YAML writer. A copy per
 * occurrence: `size` tracks a lower bound of the YAML text (strings, plus two per value) so that
 * a value holding one large value many times over stops at the size cap, not in memory.
 */
function sortedPlain(v: Value, size: { n: number } = { n: 0 }): unknown {
  work(1);
  if ((size.n += typeof v === 'string' ? v.length + 2 : 2) > MAX_RESULT_STRING) checkStringSize(size.n, 'yaml.marshal');
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => sortedPlain(x, size));
  if (v instanceof RegoSet) return v.sorted().map((x) => sortedPlain(x, size));
  if (v instanceof RegoDecimal) return v.num;
  const o: Record<string, unknown> = {};
  for (const [k, x] of sortedEntries(v)) {
    const key = typeof k === 'string' ? k : JSON.stringify(toJSON(k));
    size.n += key.length;
    Object.defineProperty(o, key, { value: sortedPlain(x, size), enumerable: true, writable: true, configurable: true });
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// base64 / hex (strict as Go's decoders)
// ---------------------------------------------------------------------------------------------

const STD = /^[A-Za-z0-9+/]*$/;
const URL = /^[A-Za-z0-9_-]*$/;

/** Go base64 decoding: padded to a multiple of 4 (StdEncoding ignores \r and \n). */
function decodeBase64(name: string, s: string, url: boolean): string {
  const t = url ? s : s.replace(/[\r\n]/g, '');
  const body = t.replace(/={1,2}$/, '');
  const padding = t.length - body.length;
  const ok =
    t.length % 4 === 0 && (url ? URL : STD).test(body) && padding === (4 - (body.length % 4)) % 4 && body.length % 4 !== 1;
  if (!ok) throw builtinErr(name, 'illegal base64 data');
  return Buffer.from(body, url ? 'base64url' : 'base64').toString('utf8');
}

function isValidStdBase64(s: string): boolean {
  try {
    decodeBase64('base64.is_valid', s, false);
    return true;
  } catch (e) {
    rethrowFatal(e);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// urlquery (Go net/url QueryEscape / QueryUnescape / Values.Encode)
// ---------------------------------------------------------------------------------------------

export function queryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    // Charged per byte: the loop is slow (a regex test and a concatenation per byte).
    work(1);
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function queryUnescape(name: string, s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    work(1);
    const b = raw[i]!;
    if (b === 0x25) {
      const hex = raw.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw builtinErr(name, 'invalid URL escape');
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(b === 0x2b ? 0x20 : b);
  }
  return Buffer.from(bytes).toString('utf8');
}

const ENCODE_OBJECT_VALUES = 'values must be string, array[string], or set[string]';

function encodeObject(args: Value[]): Value {
  const o = obj('urlquery.encode_object', args, 0);
  const parts: string[] = [];
  const entries = sortedEntries(o);
  for (const [k, v] of entries) {
    if (typeof k !== 'string') throw typeErr('urlquery.encode_object', 1, k, 'string');
    let values: Value[];
    if (typeof v === 'string') values = [v];
    else if (Array.isArray(v)) values = v;
    else if (v instanceof RegoSet) values = v.sorted();
    else throw operandErr('urlquery.encode_object', 1, ENCODE_OBJECT_VALUES);
    for (const x of values) {
      work(1);
      if (typeof x !== 'string') throw operandErr('urlquery.encode_object', 1, ENCODE_OBJECT_VALUES);
      parts.push(queryEscape(k) + '=' + queryEscape(x));
    }
  }
  return parts.join('&');
}

function decodeObject(args: Value[]): Value {
  const s = str('urlquery.decode_object', args, 0);
  const groups = new Map<string, string[]>();
  for (const part of s.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) throw builtinErr('urlquery.decode_object', 'invalid semicolon separator in query');
    const eq = part.indexOf('=');
    const k = queryUnescape('urlquery.decode_object', eq < 0 ? part : part.slice(0, eq));
    const v = queryUnescape('urlquery.decode_object', eq < 0 ? '' : part.slice(eq + 1));
    const list = groups.get(k);
    if (list) list.push(v);
    else groups.set(k, [v]);
  }
  const o: PlainObject = {};
  for (const [k, v] of groups) defineKey(o, k, v);
  return o;
}

export const ENCODING: BuiltinDef[] = [
  def('json.marshal', 1, (args) => marshalJSON(args[0]!)),
  def('json.marshal_with_options', 2, jsonMarshalWithOptions),
  def('json.unmarshal', 1, jsonUnmarshal),
  def('json.is_valid', 1, (args) => {
    if (typeof args[0] !== 'string') return false;
    try {
      unmarshalJSON(args[0]);
      return true;
    } catch (e) {
      rethrowFatal(e);
      return false;
    }
  }),
  def('yaml.marshal', 1, (args) =>
    // The replacer sees every node the writer creates: charged there, the writer's node building
    // stops at the deadline (its final text pass, ~60% of the call, cannot be interrupted).
    YAML.stringify(sortedPlain(args[0]!), (_k: unknown, v: unknown) => (work(1), v), { version: '1.1', indentSeq: false, lineWidth: 0 }),
  ),
  def('yaml.unmarshal', 1, (args) => parseYAML('yaml.unmarshal', str('yaml.unmarshal', args, 0))),
  def('yaml.is_valid', 1, (args) => {
    if (typeof args[0] !== 'string') return false;
    try {
      parseYAML('yaml.is_valid', args[0]);
      return true;
    } catch (e) {
      rethrowFatal(e);
      return false;
    }
  }),
  def('base64.encode', 1, (a) => Buffer.from(str('base64.encode', a, 0), 'utf8').toString('base64')),
  def('base64.decode', 1, (a) => decodeBase64('base64.decode', str('base64.decode', a, 0), false)),
  def('base64.is_valid', 1, (a) => isValidStdBase64(str('base64.is_valid', a, 0))),
  def('base64url.encode', 1, (a) => {
    const raw = Buffer.from(str('base64url.encode', a, 0), 'utf8').toString('base64url');
    return raw + '='.repeat((4 - (raw.length % 4)) % 4);
  }),
  def('base64url.encode_no_pad', 1, (a) => Buffer.from(str('base64url.encode_no_pad', a, 0), 'utf8').toString('base64url')),
  def('base64url.decode', 1, (a) => {
    let s = str('base64url.decode', a, 0);
    // RFC 7515 Appendix C: unpadded input is padded before decoding, as OPA does.
    if (!s.endsWith('=')) {
      const r = s.length % 4;
      if (r === 1) throw builtinErr('base64url.decode', 'illegal base64url string');
      if (r) s += '='.repeat(4 - r);
    }
    return decodeBase64('base64url.decode', s, true);
  }),
  def('hex.encode', 1, (a) => Buffer.from(str('hex.encode', a, 0), 'utf8').toString('hex')),
  def('hex.decode', 1, (a) => {
    const s = str('hex.decode', a, 0);
    if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw builtinErr('hex.decode', 'invalid hex string');
    return Buffer.from(s, 'hex').toString('utf8');
  }),
  def('urlquery.encode', 1, (a) => queryEscape(str('urlquery.encode', a, 0))),
  def('urlquery.decode', 1, (a) => queryUnescape('urlquery.decode', str('urlquery.decode', a, 0))),
  def('urlquery.encode_object', 1, encodeObject),
  def('urlquery.decode_object', 1, decodeObject),
];

