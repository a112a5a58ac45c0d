/**
 * Strict rendering. Each template's messages are compiled once into segments (at load, or on
 * first use) and rendering only concatenates: values are data, never re-expanded, never
 * HTML-escaped. Errors name the variable, never its value.
 */
import { WardenError } from '../pipeline/errors.js';
import type { ChatMessage, Role, Template, VariableSpec } from '../pipeline/types.js';
import { parsePlaceholders, type Segment } from './placeholders.js';

interface CompiledMessage {
  role: Role;
  /** Set when the content has no placeholders: rendering reuses the string as is. */
  fixed?: string;
  segments: Segment[];
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
  const messages: CompiledMessage[] = template.messages.map((m, i) => {
    const p = parsePlaceholders(m.content);
    const where = { ...(template.source ? { file: template.source.file } : {}), path: `messages[${i}].content` };
    if (p.problems.length > 0) {
      throw new WardenError('template_invalid', `template ${template.id}@${template.version}: ${p.problems[0]!.message}`, { location: where });
    }
    for (const name of p.variables) {
      if (!(name in template.variables)) {
        throw new WardenError('template_invalid', `template ${template.id}@${template.version}: placeholder {{${name}}} is not declared`, { location: where });
      }
    }
    const only = p.segments.length === 0 ? '' : p.segments.length === 1 && typeof p.segments[0] === 'string' ? p.segments[0] : undefined;
    return only === undefined ? { role: m.role, segments: p.segments } : { role: m.role, fixed: only, segments: p.segments };
  });
  c = { template, messages };
  compiled.set(template, c);
  return c;
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
    else {
      n++;
      i++; // a surrogate pair counts once
    }
  }
  return n;
}

/**
 * Checks one request-supplied value against its spec and returns it as the string to insert.
 * Throws `variable_invalid` naming the variable (never the value).
 */
export function checkVariableValue(name: string, spec: VariableSpec, value: unknown): string {
  const bad = (why: string) =>
    new WardenError('variable_invalid', `variable ${name} ${why}`, { location: { path: `warden.variables.${name}` }, details: { variable: name } });
  let s: string;
  if (typeof value === 'string') s = value;
  else if (typeof value === 'number' && Number.isFinite(value)) s = String(value);
  else if (typeof value === 'boolean') s = String(value);
  else throw bad(`must be a ${spec.type}`);
  if (spec.type === 'number' && !NUMBER.test(s)) throw bad('must be a number');
  if (spec.type === 'boolean' && s !== 'true' && s !== 'false') throw bad('must be true or false');
  if (spec.max_length !== undefined && s.length > spec.max_length && codePointLength(s) > spec.max_length) {
    throw bad(`is longer than its max_length ${spec.max_length}`);
  }
  return s;
}

/**
 * Renders with the given final values (every placeholder must have one). `values` holds strings
 * already checked by the caller; a placeholder without a value is `variable_missing`.
 */
export function renderTemplate(template: Template, values: Readonly<Record<string, string>>): ChatMessage[] {
  const c = compileTemplate(template);
  const out: ChatMessage[] = new Array(c.messages.length);
  for (let i = 0; i < c.messages.length; i++) {
    const m = c.messages[i]!;
    if (m.fixed !== undefined) {
      out[i] = { role: m.role, content: m.fixed };
      continue;
    }
    let content = '';
    for (const seg of m.segments) {
      if (typeof seg === 'string') content += seg;
      else {
        const v = values[seg.variable];
        if (v === undefined) {
          throw new WardenError('variable_missing', `variable ${seg.variable} is required by template ${template.id}@${template.version}`, {
            location: { path: `warden.variables.${seg.variable}` },
            details: { variable: seg.variable },
          });
        }
        content += v;
      }
    }
    out[i] = { role: m.role, content };
  }
  return out;
}
