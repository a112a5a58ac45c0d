/**
 * Strict rendering. Each template's messages are compiled once into segments (at load, or on
 * first use) and rendering only concatenates: values are data, never re-expanded, never
 * HTML-escaped. Errors name the variable, never its value.
 */
import { longerThanCodePoints } from '../pipeline/code-points.js';
import { WardenError } from '../pipeline/errors.js';
import type { ChatMessage, Role, Template, VariableSpec } from '../pipeline/types.js';
import { parsePlaceholders, type Segment } from './placeholders.js';
import { newCompileUid, RenderedText } from './provenance.js';

interface CompiledMessage {
  role: Role;
  /** Set when the content has no placeholders: rendering reuses the string as is. */
  readonly fixed?: string;
  /**
   * Never changed after compile (readonly, and this module hands them out read-only): a render's
   * output is a function of the compile and the values, which render provenance keys rely on. Not
   * frozen: frozen arrays cost the render loop ~0.15 µs per request.
   */
  readonly segments: readonly Segment[];
  /**
   * The fixed text segments escaped for a JSON string (no quotes), in the same order as the
   * string segments of `segments`: escaped once here, so that a request's JSON literal of the
   * content is a concatenation (see `renderTemplate`'s `json`).
   */
  escaped: string[];
  /** `<compile uid>:<index>`: names this message of this compile in render provenance keys. */
  readonly source: string;
}

export interface CompiledTemplate {
  readonly template: Template;
  readonly messages: readonly CompiledMessage[];
}

const compiled = new WeakMap<Template, CompiledTemplate>();

/** Compiles (once per Template object) and returns the segments. Throws `template_invalid`. */
export function compileTemplate(template: Template): CompiledTemplate {
  let c = compiled.get(template);
  if (c) return c;
  const uid = newCompileUid();
  const messages: CompiledMessage[] = template.messages.map((m, i) => {
    const p = parsePlaceholders(m.content);
    const where = { ...(template.source ? { file: template.source.file } : {}), path: `messages[${i}].content` };
    if (p.problems.length > 0) {
      throw new WardenError('template_invalid', `template ${template.id}@${template.version}: ${p.problems[0]!.message}`, { location: where });
    }
    for (const name of p.variables) {
      // Own keys only: `{{constructor}}` is not declared just because every object has one.
      if (!Object.hasOwn(template.variables, name)) {
        throw new WardenError('template_invalid', `template ${template.id}@${template.version}: placeholder {{${name}}} is not declared`, { location: where });
      }
    }
    const only = p.segments.length === 0 ? '' : p.segments.length === 1 && typeof p.segments[0] === 'string' ? p.segments[0] : undefined;
    const escaped = p.segments.filter((seg): seg is string => typeof seg === 'string').map(escapeJson);
    const segments: readonly Segment[] = p.segments;
    const source = `${uid}:${i}`;
    return only === undefined ? { role: m.role, segments, escaped, source } : { role: m.role, fixed: only, segments, escaped, source };
  });
  c = { template, messages };
  compiled.set(template, c);
  return c;
}

/**
 * Printable ASCII other than `"` and `\`: JSON writes it as is. Most inserted values (ids, codes,
 * short sentences) are, and the test costs a fraction of a JSON.stringify call.
 */
const JSON_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** The inside of JSON.stringify(s): the text escaped for a JSON string, without the quotes. */
function escapeJson(s: string): string {
  if (JSON_PLAIN.test(s)) return s;
  const q = JSON.stringify(s);
  return q.slice(1, -1);
}

/**
 * True when a text ending with the UTF-16 unit `last` (0: empty) joined to `right` splits a
 * surrogate pair: escaped apart, each half would be written as a lone `\udXXX`, where the joined
 * text keeps the pair. Such a join gets no literal. The caller keeps `last` from the piece it
 * appended: reading it off the text built by `+=` made V8 flatten (copy) that whole text at every
 * inserted value, quadratic in a message of many placeholders.
 */
function splitsPair(last: number, right: string): boolean {
  if (right.length === 0 || last < 0xd800 || last > 0xdbff) return false;
  const lo = right.charCodeAt(0);
  return lo >= 0xdc00 && lo <= 0xdfff;
}

const NO_VALUES: readonly string[] = Object.freeze([]);

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * Checks one request-supplied value against its spec and returns it as the string to insert.
 * Throws `variable_invalid` naming the variable (never the value).
 */
export function checkVariableValue(name: string, spec: VariableSpec, value: unknown, path = 'warden.variables'): string {
  const bad = (why: string) =>
    new WardenError('variable_invalid', `variable ${name} ${why}`, { location: { path: `${path}.${name}` }, details: { variable: name } });
  let s: string;
  if (typeof value === 'string') s = value;
  else if (typeof value === 'number' && Number.isFinite(value)) s = String(value);
  else if (typeof value === 'boolean') s = String(value);
  else throw bad(`must be a ${spec.type}`);
  if (spec.type === 'number' && !NUMBER.test(s)) throw bad('must be a number');
  if (spec.type === 'boolean' && s !== 'true' && s !== 'false') throw bad('must be true or false');
  if (spec.max_length !== undefined && longerThanCodePoints(s, spec.max_length)) {
    throw bad(`is longer than its max_length ${spec.max_length}`);
  }
  return s;
}

/** A required variable the request did not supply: named, with where it belongs. */
function missingVariable(template: Template, name: string, path = 'warden.variables'): WardenError {
  return new WardenError('variable_missing', `variable ${name} is required by template ${template.id}@${template.version}`, {
    location: { path: `${path}.${name}` },
    details: { variable: name },
  });
}

/**
 * Per template object (immutable once loaded): its required request variables that a placeholder
 * uses, in the order the renderer meets them, so that the check reports the same variable as
 * `renderTemplate` would. A required variable no placeholder uses was never asked for.
 */
const requiredInOrder = new WeakMap<Template, readonly string[]>();

function requiredRequestVariables(template: Template): readonly string[] {
  let names = requiredInOrder.get(template);
  if (names !== undefined) return names;
  const list: string[] = [];
  for (const m of compileTemplate(template).messages) {
    for (const seg of m.segments) {
      if (typeof seg === 'string' || list.includes(seg.variable)) continue;
      const spec = template.variables[seg.variable];
      if (spec?.source === 'request' && spec.required) list.push(seg.variable);
    }
  }
  names = Object.freeze(list);
  requiredInOrder.set(template, names);
  return names;
}

/**
 * What a render of a template weighs: the UTF-8 bytes of its fixed text and config values, and
 * how many times each request or secret variable is inserted. Per template object (immutable once
 * loaded), so a request's check costs a look at each such variable's length.
 */
interface RenderWeight {
  fixedBytes: number;
  uses: ReadonlyArray<readonly [name: string, count: number]>;
}

const weights = new WeakMap<Template, RenderWeight>();

function renderWeight(template: Template): RenderWeight {
  let w = weights.get(template);
  if (w !== undefined) return w;
  let fixedBytes = 0;
  const counts = new Map<string, number>();
  for (const m of compileTemplate(template).messages) {
    for (const seg of m.segments) {
      if (typeof seg === 'string') fixedBytes += Buffer.byteLength(seg);
      else counts.set(seg.variable, (counts.get(seg.variable) ?? 0) + 1);
    }
  }
  const uses: Array<readonly [string, number]> = [];
  for (const [name, count] of counts) {
    const spec = template.variables[name];
    if (spec?.source === 'config') fixedBytes += count * Buffer.byteLength(spec.value ?? '');
    else uses.push([name, count]);
  }
  w = { fixedBytes, uses };
  weights.set(template, w);
  return w;
}

/**
 * Refuses a render larger than `maxBytes` (`limits.max_body_bytes`), counted as the UTF-8 bytes of
 * the messages' text: a value goes in once per placeholder that names it, so a template that
 * inserts one many times made a prompt of tens of megabytes from a request of a few kilobytes
 * (20,000 uses of a 3 KB value: 60 MB, held in memory, redacted and sent), where a raw prompt is
 * bounded by its body. A value not in `values` counts nothing: resolve checks before any secret
 * is fetched, render again with the secrets. `payload_too_large` at `path`, naming the template
 * and the limit, never a size (with a secret in it, the size would tell the secret's length).
 */
export function checkRenderedSize(template: Template, values: Readonly<Record<string, string>>, maxBytes: number, path = 'warden.variables'): void {
  const w = renderWeight(template);
  // An upper bound first (a UTF-16 unit is at most 3 bytes of UTF-8): most calls stop here.
  let upper = w.fixedBytes;
  for (const [name, count] of w.uses) upper += count * 3 * (values[name]?.length ?? 0);
  if (upper <= maxBytes) return;
  let bytes = w.fixedBytes;
  for (const [name, count] of w.uses) {
    const v = values[name];
    if (v !== undefined) bytes += count * Buffer.byteLength(v);
  }
  if (bytes <= maxBytes) return;
  throw new WardenError(
    'payload_too_large',
    `template ${template.id}@${template.version} with these variables would render a prompt larger than limits.max_body_bytes (${maxBytes} bytes), the most a request may carry (a value is inserted at every placeholder naming it)`,
    { location: { path } },
  );
}

/**
 * Checks a request's variables against the template's declarations, before anything is done for
 * the call (the fetch stage reads secrets only for a call that can run), and returns the supplied
 * values as the strings to insert. A fresh object without prototype (a caller-chosen name such as
 * "constructor" never finds anything inherited); the render stage completes it (config and secret
 * values, '' for an optional variable not supplied) in the one pass it makes over the declarations. Throws, naming the variable (never the
 * value): `variable_missing` for an undeclared name, `variable_invalid` for a config or secret
 * variable or a bad value (checkVariableValue), then `variable_missing` for a required one not
 * supplied. Each at `path.<name>`: `path` is where the caller sent them (the body's
 * `warden.variables`, or the `x-warden-variables` header).
 */
export function checkRequestVariables(template: Template, supplied: Readonly<Record<string, unknown>> | undefined, path = 'warden.variables'): Record<string, string> {
  const values: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name in supplied) {
    const spec = Object.hasOwn(template.variables, name) ? template.variables[name] : undefined;
    if (!spec) {
      throw new WardenError('variable_missing', `variable ${name} is not declared by template ${template.id}@${template.version}`, {
        location: { path: `${path}.${name}` },
        details: { variable: name },
      });
    }
    if (spec.source !== 'request') {
      // A caller must never override a config value or a secret.
      throw new WardenError('variable_invalid', `variable ${name} is not a request variable (source: ${spec.source})`, {
        location: { path: `${path}.${name}` },
        details: { variable: name },
      });
    }
    values[name] = checkVariableValue(name, spec, supplied[name], path);
  }
  for (const name of requiredRequestVariables(template)) {
    if (values[name] === undefined) throw missingVariable(template, name, path);
  }
  return values;
}

/**
 * Renders the template's messages with `values` (strings already checked by the caller; a
 * placeholder without a value is `variable_missing`). With `json`, also stores at each message's
 * index its content's JSON string literal (exactly `JSON.stringify(content)`), built from the
 * fixed text escaped at compile time plus the escaped values; undefined where it cannot be.
 * With `provenance`, stores at each index what produced the content (see provenance.ts).
 * `stamps` names some variables' values (name → stamp): a stamp must stand for exactly one value
 * for as long as this compiled template lives. A message whose every inserted value has a stamp is
 * named by its stamps instead of a digest of its values. `secrets` names the variables whose
 * values are secrets: their spans in each content go into its provenance (secretSpans), so that
 * redaction sends the granted credential as fetched and the leak guard can mask it whole.
 */
export function renderTemplate(
  template: Template,
  values: Readonly<Record<string, string>>,
  json?: Array<string | undefined>,
  provenance?: RenderedText[],
  stamps?: Readonly<Record<string, string>>,
  secrets?: ReadonlySet<string>,
): ChatMessage[] {
  const c = compileTemplate(template);
  const out: ChatMessage[] = new Array(c.messages.length);
  for (let i = 0; i < c.messages.length; i++) {
    const m = c.messages[i]!;
    if (m.fixed !== undefined) {
      out[i] = { role: m.role, content: m.fixed };
      if (json) json[i] = `"${m.escaped[0] ?? ''}"`;
      if (provenance) provenance[i] = new RenderedText(m.fixed, m.source, NO_VALUES);
      continue;
    }
    const inserted: string[] | undefined = provenance ? [] : undefined;
    // The stamps of the inserted values, while every one has a stamp.
    let named: string[] | undefined = provenance && stamps ? [] : undefined;
    let secretSpans: Array<[number, number]> | undefined;
    let content = '';
    /** The last UTF-16 unit of `content` (0 while it is empty), for splitsPair. */
    let last = 0;
    let literal: string | undefined = json ? '' : undefined;
    let fixedIndex = 0;
    for (const seg of m.segments) {
      let piece: string;
      let escaped: string | undefined;
      if (typeof seg === 'string') {
        piece = seg;
        escaped = m.escaped[fixedIndex++];
      } else {
        const v = values[seg.variable];
        if (v === undefined) throw missingVariable(template, seg.variable);
        piece = v;
        inserted?.push(v);
        if (provenance && v.length > 0 && secrets?.has(seg.variable)) (secretSpans ??= []).push([content.length, content.length + v.length]);
        if (named) {
          const stamp = stamps![seg.variable];
          if (stamp === undefined) named = undefined;
          else named.push(stamp);
        }
      }
      if (literal !== undefined) {
        if (splitsPair(last, piece)) literal = undefined;
        else literal += escaped ?? escapeJson(piece);
        if (piece.length > 0) last = piece.charCodeAt(piece.length - 1);
      }
      content += piece;
    }
    out[i] = { role: m.role, content };
    if (json) json[i] = literal === undefined ? undefined : `"${literal}"`;
    if (provenance) provenance[i] = new RenderedText(content, m.source, inserted!, named, secretSpans);
  }
  return out;
}
