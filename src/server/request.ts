/**
 * Protocol → canonical request: validates an OpenAI Chat Completions body (plus Warden's
 * top-level `warden` object) and builds the PromptRequest the pipeline runs on. No policy logic
 * lives here; it only checks shapes and limits, and every error names the field.
 */
import { isUtf8 } from 'node:buffer';
import { z } from 'zod';
import { NO_ATTACHMENTS, addAttachment } from '../pipeline/attachments.js';
import type { CancelSignal } from '../pipeline/cancel.js';
import { longerThanCodePoints } from '../pipeline/code-points.js';
import { WardenError } from '../pipeline/errors.js';
import { DEPTH_SCAN_MIN_BYTES, jsonScanError, scanJsonText } from '../pipeline/json-depth.js';
import { MAX_MODEL_LENGTH, MAX_TEMPLATE_VERSION, MEMBER_NAME, MODEL_NAME_RULE, TEMPLATE_VERSION, UNNAMED_MEMBER, VARIABLE_NAME, isModelName, isTemplateId } from '../pipeline/identifiers.js';
import type { Attachments, ChatMessage, Credentials, PeerInfo, PromptRequest, ToolDefinition } from '../pipeline/types.js';
import { checkAnswerParams } from './answer-params.js';
import { checkExactNumbers, checkParamNumbers, checkParamRange } from './param-numbers.js';
import type { IngressLimits } from './limits.js';
import { EMPTY_LIST, NULL_ONLY, checkMembers, eachObject, type MemberRule } from './members.js';
import { checkContentPart } from './parts.js';
import { checkStreamOptions } from './stream-options.js';

const role = z.enum(['system', 'developer', 'user', 'assistant', 'tool']);

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });

const toolCall = z.object({
  id: z.string(),
  type: z.literal('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

// Strip-mode objects: checkBodyMembers has refused every member they do not name before they
// run, so what they strip is only the empty members it lets go of (`audio: null`).
const message = z.object({
  role,
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.array(toolCall).optional(),
  tool_call_id: z.string().optional(),
  // An answer's refusal text sent back as history; `null` (what the SDK leaves) is dropped in toPromptRequest.
  refusal: z.string().nullable().optional(),
});

const tool = z.object({
  type: z.literal('function'),
  function: z.object({
    // A tool is called by its name: an empty one is refused (as over gRPC), not forwarded.
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: z.unknown().optional(),
    // Structured outputs for the call's arguments: goes upstream as sent.
    strict: z.boolean().nullish(),
  }),
});

/**
 * The members of messages, tool calls and tools Warden carries. An answer's `refusal` text is
 * carried (redacted like content) on an assistant message, so an app can append an answer the
 * model refused to its history. The other members OpenAI puts on an answer
 * (`ChatCompletionMessage`) are let go of only empty, as the official SDK hands them back: audio,
 * a legacy function call or annotations would be lost (and redaction does not read them), so
 * they are refused.
 */
const MESSAGE_MEMBERS: MemberRule = {
  what: 'a chat message',
  carried: ['role', 'content', 'name', 'tool_calls', 'tool_call_id', 'refusal'],
  dropped: { audio: NULL_ONLY, function_call: NULL_ONLY, annotations: EMPTY_LIST },
};
const TOOL_CALL_MEMBERS: MemberRule = { what: 'a tool call', carried: ['id', 'type', 'function'] };
const CALLED_FUNCTION_MEMBERS: MemberRule = { what: "a tool call's function", carried: ['name', 'arguments'] };
const TOOL_MEMBERS: MemberRule = { what: 'a tool', carried: ['type', 'function'] };
const FUNCTION_MEMBERS: MemberRule = { what: 'a function definition', carried: ['name', 'description', 'parameters', 'strict'] };

/**
 * Refuses a member of a message, tool call or tool that Warden would drop (see MESSAGE_MEMBERS),
 * before the schema, whose strip-mode objects would drop it without a word and whose paths would
 * carry a name that is the caller's text. Shapes and types are left to the schema.
 */
function checkBodyMembers(body: Record<string, unknown>): void {
  // Parsed JSON holds `__proto__` as an own member; copied into an object (the schema's output,
  // the pass-through parameters) it sets that object's prototype instead: the member would go
  // nowhere (not upstream, not through redaction), and its members would be read as if the
  // caller had sent them. gRPC refuses it in params_json alike.
  if (Object.hasOwn(body, '__proto__')) {
    throw new WardenError('invalid_request', 'the body has a member named __proto__, which is no parameter Warden can pass on', { location: { path: '__proto__' } });
  }
  eachObject(body.messages, 'messages', (m, path) => {
    checkMembers(m, MESSAGE_MEMBERS, path);
    eachObject(m.tool_calls, `${path}.tool_calls`, (call, callPath) => {
      checkMembers(call, TOOL_CALL_MEMBERS, callPath);
      if (isPlainObject(call.function)) checkMembers(call.function, CALLED_FUNCTION_MEMBERS, `${callPath}.function`);
    });
  });
  eachObject(body.tools, 'tools', (t, path) => {
    checkMembers(t, TOOL_MEMBERS, path);
    if (isPlainObject(t.function)) checkMembers(t.function, FUNCTION_MEMBERS, `${path}.function`);
  });
}

const variableValue = z.union([z.string(), z.number(), z.boolean()]);

/** Warden's own object: a member it does not know is a mistake (a typo'd `variables`), not a parameter. */
const wardenObject = z.strictObject({
  template: z.string().min(1).optional(),
  variables: z.record(z.string(), variableValue).optional(),
});
const WARDEN_MEMBERS: ReadonlySet<string> = new Set(['template', 'variables']);

const positiveInt = z.number().int().positive();

/** OpenAI's body; unknown keys pass through to the upstream as parameters. */
export const chatBody = z.looseObject({
  model: z.string().min(1).max(MAX_MODEL_LENGTH),
  messages: z.array(message).optional(),
  stream: z.boolean().nullish(),
  max_tokens: positiveInt.nullish(),
  max_completion_tokens: positiveInt.nullish(),
  tools: z.array(tool).optional(),
  warden: wardenObject.optional(),
});

type ChatBody = z.infer<typeof chatBody>;

/** Keys the canonical request carries itself; everything else goes to `params`. */
const OWN_KEYS = new Set(['model', 'messages', 'stream', 'max_tokens', 'max_completion_tokens', 'tools', 'warden']);

/**
 * The issue's path as an error may show it: up to the first member name that is not
 * identifier-shaped (a record's keys, as `warden.variables`, are the caller's), and whether it was cut there.
 */
function shownIssuePath(path: ReadonlyArray<PropertyKey>): { path: string; cut: boolean } {
  const shown: string[] = [];
  for (const seg of path) {
    if (typeof seg !== 'number' && !(typeof seg === 'string' && MEMBER_NAME.test(seg))) return { path: shown.join('.'), cut: true };
    shown.push(String(seg));
  }
  return { path: shown.join('.'), cut: false };
}

function fieldError(issue: z.core.$ZodIssue): WardenError {
  const { path, cut } = shownIssuePath(issue.path);
  const unnamed = issue.code === 'unrecognized_keys' && !issue.keys.every((k) => MEMBER_NAME.test(k));
  const what = cut
    ? 'has a member whose name is not a parameter name, with a value that is not accepted'
    : issue.code === 'invalid_type'
      ? `expected ${issue.expected}`
      : issue.code === 'invalid_value' || issue.code === 'invalid_union'
        ? 'has an unsupported value'
        : issue.code === 'too_small'
          ? 'is too small or empty'
          : issue.code === 'too_big'
            ? 'is too long or too large'
          : issue.code === 'unrecognized_keys'
            ? unnamed ? `has ${UNNAMED_MEMBER}` : `has unknown keys ${issue.keys.join(', ')}`
            : 'is invalid';
  // zod messages can quote the received value; ours name the field and the expectation only.
  return new WardenError('invalid_request', path ? `field '${path}' ${what}` : `request body ${what}`, {
    location: { path: path || '$' },
  });
}

/**
 * Refuses a member of the `warden` object other than `template` and `variables`, before the
 * schema: named (`warden.variabels`) when identifier-shaped, else at `warden` without repeating it.
 */
function checkWardenMembers(w: Record<string, unknown>): void {
  for (const key of Object.keys(w)) {
    if (WARDEN_MEMBERS.has(key)) continue;
    if (MEMBER_NAME.test(key)) {
      throw new WardenError('invalid_request', `field 'warden.${key}' is not a member of the warden object (template, variables)`, {
        location: { path: `warden.${key}` },
      });
    }
    throw new WardenError('invalid_request', `field 'warden' has ${UNNAMED_MEMBER}; the warden object takes template and variables`, {
      location: { path: 'warden' },
    });
  }
}

/**
 * A JSON number variable renders in its shortest round-trip form (String: `1.50` renders `1.5`,
 * `1e2` renders `100`): JSON.parse keeps the number, not how it was written, and reading the raw
 * text would cost every request a second parser. An integer beyond ±2^53 is refused: it is likely
 * not the number sent (12345678901234567890 parses as 12345678901234567000), where a string, as
 * gRPC always sends, keeps its digits. So is a number beyond a double's range (`1e400`), which
 * JSON.parse reads as Infinity: it would render as the word `Infinity`, which no caller wrote.
 * `warden render --vars` holds its JSON numbers to the same rule (cli/render.ts,
 * variablesFromDocument): the reason, or undefined for a number taken as sent.
 */
export function unsafeJsonNumber(name: string, v: number): string | undefined {
  if (!Number.isFinite(v)) return `variable '${name}' is a JSON number beyond a double's range, which JSON.parse reads as ${v}: send it as a string`;
  if (!Number.isInteger(v) || Number.isSafeInteger(v)) return undefined;
  return `variable '${name}' is a JSON number beyond ±${Number.MAX_SAFE_INTEGER}, which JSON.parse cannot keep exactly: send it as a string`;
}

/** `variable_invalid` for a number variable JSON did not keep as written; call after the names are checked (the refusal names it). */
function checkJsonNumbers(vars: Record<string, unknown>, path: string): void {
  for (const name in vars) {
    const v = vars[name];
    if (typeof v !== 'number') continue;
    const unsafe = unsafeJsonNumber(name, v);
    if (unsafe !== undefined) {
      throw new WardenError('variable_invalid', unsafe, { location: { path: `${path}.${name}` }, details: { variable: name } });
    }
  }
}

/**
 * What an error calls where a template or variables were sent: `field 'warden.template'`, or
 * `header 'x-warden-template'` for the headers a client may send them in instead.
 */
function named(path: string): string {
  return path.startsWith('x-warden-') ? `header '${path}'` : `field '${path}'`;
}

/** Parses `support/ticket-summary@2` (or without `@version`: the highest version). */
export function parseTemplateRef(ref: string, path: string): { id: string; version?: number } {
  const at = ref.lastIndexOf('@');
  if (at === -1) {
    checkTemplateId(ref, path);
    return { id: ref };
  }
  const id = ref.slice(0, at);
  const v = ref.slice(at + 1);
  if (id && /^[1-9][0-9]{9,}$/.test(v)) {
    // A positive integer all the same: "must be a positive integer" would mislead. Not repeated
    // (the caller's digits may be anything, a card number included).
    throw new WardenError('invalid_request', `${named(path)} names a version above ${MAX_TEMPLATE_VERSION}, the highest a template may have`, {
      location: { path },
    });
  }
  if (!id || !TEMPLATE_VERSION.test(v)) {
    throw new WardenError('invalid_request', `${named(path)} must look like 'id@version' with a positive integer version`, {
      location: { path },
    });
  }
  checkTemplateId(id, path);
  return { id, version: Number(v) };
}

export interface IngressMeta {
  id: string;
  credentials: Credentials;
  signal: CancelSignal;
  /** Aborts `signal` (see PromptRequest.cancel). */
  cancel?: (reason: unknown) => void;
  receivedAt: number;
  traceparent?: string;
  /** `x-warden-template` header, if any. */
  templateHeader?: string;
  /** `x-warden-variables` header (a JSON object), if any. */
  variablesHeader?: string;
}

/** The bounds a request's JSON texts are held to (IngressLimits). */
export type JsonLimits = Pick<IngressLimits, 'maxJsonDepth' | 'maxJsonValues'>;

/**
 * Tool-call arguments sent back as history (a JSON text in a string, which the body's scan does
 * not read inside): redaction parses them (redact/session.ts promptJsonText), and JSON.parse of a
 * large text of deep nesting or a million tiny values costs some tenths of a second. One over
 * DEPTH_SCAN_MIN_BYTES is scanned first, as a body is, and refused at its field; smaller ones
 * cost at most a few tens of ms and are read as they are (arguments are never walked recursively).
 */
export function checkToolCallArguments(args: unknown, path: string, limits: JsonLimits): void {
  if (typeof args !== 'string' || args.length <= DEPTH_SCAN_MIN_BYTES) return;
  const problem = scanJsonText(args, limits.maxJsonDepth, limits.maxJsonValues);
  if (problem !== undefined) throw jsonScanError(problem, `field '${path}'`, path, limits.maxJsonDepth, limits.maxJsonValues);
}

/** A template id a request names: the shape templates are held to, or a refusal that does not repeat it. */
function checkTemplateId(id: string, path: string): void {
  if (isTemplateId(id)) return;
  throw new WardenError('invalid_request', `${named(path)} must name a template id: a lower-case path such as 'support/ticket-summary'`, {
    location: { path },
  });
}

/**
 * Variable names are identifiers (templates can declare no others). Any other name is refused
 * here without being repeated: it is the caller's data, and names reach errors and the policy.
 */
/**
 * `__proto__` as a member of parsed JSON is an own key; copied into an object (as the schema
 * does) it sets the prototype instead, and the variable vanishes unchecked. No template may
 * declare it either, so it is refused by name.
 */
function refuseProtoKey(vars: unknown, path: string): void {
  if (vars !== null && typeof vars === 'object' && Object.hasOwn(vars, '__proto__')) {
    throw new WardenError('invalid_request', `${named(path)} has a variable named __proto__, which no template can declare`, { location: { path } });
  }
}

export function checkVariableNames(vars: Record<string, unknown>, path = 'warden.variables'): void {
  refuseProtoKey(vars, path);
  for (const name in vars) {
    if (!VARIABLE_NAME.test(name)) {
      throw new WardenError('invalid_request', `${named(path)} has a name that is not an identifier (letters, digits and _, at most 128 characters)`, {
        location: { path },
      });
    }
  }
}

export function checkVariables(vars: Record<string, string>, limits: IngressLimits, path = 'warden.variables'): void {
  const names = Object.keys(vars);
  if (names.length > limits.maxVariables) {
    throw new WardenError('invalid_request', `too many template variables (limit ${limits.maxVariables})`, {
      location: { path },
    });
  }
  checkVariableNames(vars, path);
  for (const name of names) {
    if (longerThanCodePoints(vars[name] as string, limits.maxVariableLength)) {
      throw new WardenError(
        'variable_invalid',
        `variable '${name}' is longer than ${limits.maxVariableLength} characters`,
        { location: { path: `${path}.${name}` }, details: { variable: name } },
      );
    }
  }
}

/**
 * A header value as text. Node hands header bytes over as latin-1, one character per byte, so
 * UTF-8 text (what curl and most clients send) would arrive as mojibake ("ZoÃ«"): bytes that
 * are valid UTF-8 are read as UTF-8, anything else as the latin-1 it was sent as (Python's
 * requests encodes "Zoë" so). ASCII, JSON's \u escapes included, is the same either way.
 */
function headerText(raw: string): string {
  let ascii = true;
  for (let i = 0; i < raw.length && ascii; i++) ascii = raw.charCodeAt(i) < 0x80;
  if (ascii) return raw;
  const bytes = Buffer.from(raw, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : raw;
}

function variablesFromHeader(raw: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(headerText(raw));
  } catch {
    throw new WardenError('invalid_request', "header 'x-warden-variables' must be a JSON object", {
      location: { path: 'x-warden-variables' },
    });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new WardenError('invalid_request', "header 'x-warden-variables' must be a JSON object", {
      location: { path: 'x-warden-variables' },
    });
  }
  return parsed as Record<string, unknown>;
}

/** The `x-warden-variables` header's variables, refused (naming the header) as the body's would be. */
function headerVariables(raw: string): Record<string, unknown> {
  const fromHeader = variablesFromHeader(raw);
  checkVariableNames(fromHeader, 'x-warden-variables');
  checkJsonNumbers(fromHeader, 'x-warden-variables');
  const check = z.record(z.string(), variableValue).safeParse(fromHeader);
  if (!check.success) {
    const issue = check.error.issues[0] as z.core.$ZodIssue;
    const key = issue.path.map(String).join('.');
    throw new WardenError('invalid_request', `variable '${key}' in header 'x-warden-variables' must be a string, number or boolean`, {
      location: { path: `x-warden-variables.${key}` },
    });
  }
  return check.data;
}

/** Whether two sets of variables render alike: the same names, each with the same text. */
function sameVariables(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  for (const name of names) {
    if (!Object.hasOwn(b, name) || String(a[name]) !== String(b[name])) return false;
  }
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * True when `body` is the governed-call shape (a model, a `warden` object with a template and
 * scalar variables, optionally `stream`, token limits and an empty `messages`, which the SDKs
 * send with every call, any pass-through parameters) and is valid by the `chatBody` schema.
 * The schema would return it unchanged, so the hot path skips zod's walk (the most expensive
 * part of ingress); anything else (messages, tools, every invalid body) goes through the schema
 * and gets its precise error. Called after checkParamRange passed the token limits: a positive
 * integer JSON keeps exactly, or null, is all the schema asks of them.
 */
export function isSimpleTemplateBody(body: unknown): body is ChatBody {
  if (!isPlainObject(body)) return false;
  if (typeof body.model !== 'string' || body.model === '' || body.model.length > MAX_MODEL_LENGTH) return false;
  const messages = body.messages;
  if ((messages !== undefined && !(Array.isArray(messages) && messages.length === 0)) || body.tools !== undefined) return false;
  const stream = body.stream;
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') return false;
  const w = body.warden;
  if (w === undefined) return true;
  if (!isPlainObject(w)) return false;
  for (const k in w) if (k !== 'template' && k !== 'variables') return false;
  if (w.template !== undefined && (typeof w.template !== 'string' || w.template === '')) return false;
  const vars = w.variables;
  if (vars === undefined) return true;
  if (!isPlainObject(vars)) return false;
  for (const k of Object.keys(vars)) {
    if (k === '__proto__') return false;
    const t = typeof vars[k];
    if (t !== 'string' && t !== 'number' && t !== 'boolean') return false;
  }
  return true;
}

/**
 * A refusal is the model's text, so OpenAI defines it on assistant messages only: on another
 * role it is refused (not dropped). `refusal: null`, which the SDK leaves on every answer, is
 * nothing to carry and is dropped, so the upstream body is the one it was before.
 */
function checkRefusal(m: Omit<ChatMessage, 'refusal'> & { refusal?: string | null }, i: number): void {
  if (m.refusal === null) delete m.refusal;
  if (m.refusal === undefined || m.role === 'assistant') return;
  throw new WardenError('invalid_request', `field 'messages.${i}.refusal' is only accepted on an assistant message: it is the model's refusal text`, {
    location: { path: `messages.${i}.refusal` },
  });
}

/** Validates a parsed Chat Completions body and builds the canonical request. */
export function toPromptRequest(body: unknown, meta: IngressMeta, limits: IngressLimits): PromptRequest {
  // Before the schema, whose errors name a field by its path: the caller's member names would be in it.
  if (isPlainObject(body) && isPlainObject(body.warden)) {
    checkWardenMembers(body.warden);
    const vars = body.warden.variables;
    if (isPlainObject(vars)) {
      checkVariableNames(vars);
      // Before the schema, which refuses 1e400 (Infinity) only on the paths that run it.
      checkJsonNumbers(vars, 'warden.variables');
    } else refuseProtoKey(vars, 'warden.variables');
  }
  if (isPlainObject(body)) {
    checkBodyMembers(body);
    // The token limits' ranges, from the table the pass-through parameters are held to (the
    // schema below would refuse them too, without saying the range).
    checkParamRange('max_tokens', body.max_tokens, 'max_tokens');
    checkParamRange('max_completion_tokens', body.max_completion_tokens, 'max_completion_tokens');
  }
  let b: ChatBody;
  if (isSimpleTemplateBody(body)) {
    b = body;
  } else {
    const parsed = chatBody.safeParse(body);
    if (!parsed.success) throw fieldError(parsed.error.issues[0] as z.core.$ZodIssue);
    b = parsed.data;
  }

  if (!isModelName(b.model)) {
    throw new WardenError('invalid_request', `field 'model' ${MODEL_NAME_RULE}`, { location: { path: 'model' } });
  }
  let templateRef: string | undefined = b.warden?.template;
  let templatePath = 'warden.template';
  if (meta.templateHeader !== undefined) {
    const fromHeader = meta.templateHeader.trim();
    if (templateRef === undefined) {
      templateRef = fromHeader;
      templatePath = 'x-warden-template';
    } else if (templateRef !== fromHeader) {
      // Both named (an SDK's defaultHeaders and the call's body): which one was meant is not
      // Warden's guess. The body used to win without a word.
      throw new WardenError('invalid_request', "field 'warden.template' and header 'x-warden-template' name different templates: name it once, or the same in both", {
        location: { path: 'warden.template' },
      });
    }
  }
  let rawVars: Record<string, unknown> | undefined = b.warden?.variables;
  let varsPath = 'warden.variables';
  if (meta.variablesHeader !== undefined) {
    const fromHeader = headerVariables(meta.variablesHeader);
    if (rawVars === undefined) {
      varsPath = 'x-warden-variables';
      rawVars = fromHeader;
    } else if (!sameVariables(rawVars, fromHeader)) {
      // As for the template; the values are the caller's data, so neither is named.
      throw new WardenError('invalid_request', "field 'warden.variables' and header 'x-warden-variables' give different variables: give them once, or the same in both", {
        location: { path: 'warden.variables' },
      });
    }
  }

  const variables: Record<string, string> = Object.create(null) as Record<string, string>;
  if (rawVars) {
    for (const [k, v] of Object.entries(rawVars)) variables[k] = typeof v === 'string' ? v : String(v);
    checkVariables(variables, limits, varsPath);
  }

  const messages = b.messages as ChatMessage[] | undefined;
  let template: PromptRequest['template'];
  if (templateRef !== undefined) {
    if (templateRef === '') {
      throw new WardenError('invalid_request', `${named(templatePath)} must not be empty`, { location: { path: templatePath } });
    }
    template = parseTemplateRef(templateRef, templatePath);
    if (messages && messages.length > 0) {
      throw new WardenError('invalid_request', "field 'messages' must be empty when a template is named: the template supplies the prompt", {
        location: { path: 'messages' },
      });
    }
  } else {
    if (!messages || messages.length === 0) {
      throw new WardenError('invalid_request', "field 'messages' is required (or name a template in 'warden.template')", {
        location: { path: 'messages' },
      });
    }
    if (rawVars && Object.keys(rawVars).length > 0) {
      // Named where the caller sent them: the body's object or the header.
      const what = varsPath === 'x-warden-variables' ? "header 'x-warden-variables' needs a template ('warden.template' or the header 'x-warden-template')" : "field 'warden.variables' needs 'warden.template'";
      throw new WardenError('invalid_request', what, { location: { path: varsPath } });
    }
  }

  const params: Record<string, unknown> = {};
  for (const key of Object.keys(b)) {
    if (!OWN_KEYS.has(key)) params[key] = (b as Record<string, unknown>)[key];
  }
  checkAnswerParams(params, '');
  checkStreamOptions(params, '');
  checkParamNumbers(params, '');
  // The walk that checks every part also counts the non-text ones for the policy (request.attachments):
  // loops, not closures, so that the count costs no allocation but its object, on a call with such parts.
  let attachments: Attachments | undefined;
  if (messages) {
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.content === undefined) m.content = null;
      checkRefusal(m, i);
      const calls = m.tool_calls;
      if (calls) for (let j = 0; j < calls.length; j++) checkToolCallArguments(calls[j]!.function.arguments, `messages.${i}.tool_calls.${j}.function.arguments`, limits);
      const content = m.content;
      if (!Array.isArray(content)) continue;
      for (let j = 0; j < content.length; j++) {
        const p = content[j]!;
        checkContentPart(p as Record<string, unknown>, `messages.${i}.content.${j}`);
        attachments = addAttachment(attachments, p.type);
      }
    }
  }

  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
  const req: PromptRequest = {
    id: meta.id,
    protocol: 'openai-http',
    action: 'prompt.execute',
    model: b.model,
    variables,
    stream: b.stream === true,
    params,
    credentials: meta.credentials,
    signal: meta.signal,
    receivedAt: meta.receivedAt,
  };
  if (meta.cancel) req.cancel = meta.cancel;
  if (template) req.template = template;
  // Sent in a header: the template stages' refusals name the header (README, "x-warden-variables").
  if (templatePath !== 'warden.template') req.templatePath = templatePath;
  if (varsPath !== 'warden.variables') req.variablesPath = varsPath;
  if (!template && messages) {
    req.messages = messages;
    req.attachments = attachments ?? NO_ATTACHMENTS;
  }
  if (b.tools) {
    req.tools = b.tools as ToolDefinition[];
    for (let i = 0; i < req.tools.length; i++) checkExactNumbers(req.tools[i]!.function.parameters, `tools.${i}.function.parameters`);
  }
  if (maxTokens !== undefined) req.max_tokens = maxTokens;
  if (b.max_completion_tokens !== undefined && b.max_completion_tokens !== null) req.max_tokens_param = 'max_completion_tokens';
  if (meta.traceparent) req.traceparent = meta.traceparent;
  return req;
}

/** Shared by every arriving request: read by the audit of a refused one, never written. */
const NO_VARIABLES: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);
const NO_PARAMS: Record<string, unknown> = Object.freeze({});

/**
 * The request as its credentials are checked, before its body is read (Pipeline.authenticate):
 * ids, trace, protocol and the credentials, nothing of the body. The audit record of one refused
 * there has no model, and over HTTP says `stream: false`, the body being unread.
 */
export function arrivingRequest(
  meta: Pick<IngressMeta, 'id' | 'credentials' | 'signal' | 'receivedAt' | 'traceparent'>,
  protocol: PromptRequest['protocol'],
  action: PromptRequest['action'] = 'prompt.execute',
  stream = false,
): PromptRequest {
  const req: PromptRequest = {
    id: meta.id,
    protocol,
    action,
    model: '',
    variables: NO_VARIABLES,
    stream,
    params: NO_PARAMS,
    credentials: meta.credentials,
    signal: meta.signal,
    receivedAt: meta.receivedAt,
  };
  if (meta.traceparent) req.traceparent = meta.traceparent;
  return req;
}

/**
 * The canonical request for a call refused before its body could be read, for its audit record:
 * ids, trace and protocol only. The bearer token is dropped (nothing authenticates it) and nothing
 * of the body is kept, so no prompt text or variable can reach the record.
 */
export function rejectedRequest(
  meta: { id: string; signal: CancelSignal; receivedAt: number; traceparent?: string | undefined; peer: PeerInfo },
  protocol: PromptRequest['protocol'],
  action: PromptRequest['action'] = 'prompt.execute',
  stream = false,
): PromptRequest {
  // The arriving request's shape, with the peer alone for credentials.
  return arrivingRequest({ id: meta.id, credentials: { peer: meta.peer }, signal: meta.signal, receivedAt: meta.receivedAt, traceparent: meta.traceparent }, protocol, action, stream);
}

/**
 * Loopback TCP peers and Unix socket peers are local; anything else is not. Which listener the
 * connection came in on decides Unix, not a missing address: node reports no remote address for
 * Unix socket peers, but also for a TCP peer whose connection was reset before it was read.
 * `relayHeader` is a proxy header the request carries (see PeerInfo.relayHeader).
 */
export function peerInfo(remoteAddress: string | undefined, unixListener: boolean, relayHeader?: string): PeerInfo {
  const peer: PeerInfo = unixListener
    ? { address: 'unix', local: true, transport: 'unix' }
    : remoteAddress === undefined || remoteAddress === ''
      ? { address: 'unknown', local: false, transport: 'tcp' }
      : { address: remoteAddress, local: remoteAddress === '::1' || remoteAddress.startsWith('127.') || remoteAddress.startsWith('::ffff:127.'), transport: 'tcp' };
  if (relayHeader !== undefined) peer.relayHeader = relayHeader;
  return peer;
}

/** Why a request still running when the shutdown deadline ended its connection or call ended. */
export function cutByShutdown(): WardenError {
  return new WardenError('shutting_down', 'warden stopped: the shutdown deadline passed before the request finished');
}

/** `Bearer <token>` → token; anything else → undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

/**
 * The credentials an Authorization header (HTTP) or `authorization` metadata entry (gRPC) gives:
 * none when it is absent, its bearer token, or — when it is there but is not `Bearer <token>`, or
 * came more than once — why it cannot be used (`malformed`; the authenticate stage refuses it).
 * Never "none" for something sent: `dev` takes a local caller without credentials as its
 * principal, so a mistyped header would quietly become dev. The reasons name the header, never
 * its value.
 */
export function authorizationCredentials(
  value: string | undefined,
  repeated: boolean,
  peer: PeerInfo,
  where: 'http' | 'grpc',
): Credentials {
  if (value === undefined) return { peer };
  if (repeated) return { peer, malformed: where === 'http' ? 'more than one Authorization header' : 'more than one authorization metadata value' };
  const bearer = bearerToken(value);
  if (bearer === undefined) {
    return { peer, malformed: where === 'http' ? 'the Authorization header is not a Bearer token' : 'the authorization metadata is not a Bearer token' };
  }
  return { bearer, peer };
}

/**
 * `/v1/messages` also takes the token as `x-api-key` (the Anthropic SDKs' `apiKey`). Both headers
 * are read: a bad one is refused whatever the other holds, and two different tokens are
 * ambiguous (the same token in both is what an SDK given both sends).
 */
export function withApiKey(credentials: Credentials, apiKey: string | undefined, repeated: boolean): Credentials {
  if (apiKey === undefined || credentials.malformed !== undefined) return credentials;
  const { peer } = credentials;
  if (repeated) return { peer, malformed: 'more than one x-api-key header' };
  const key = apiKey.trim();
  if (!/^\S+$/.test(key)) return { peer, malformed: 'the x-api-key header is not a single token' };
  if (credentials.bearer !== undefined && credentials.bearer !== key) {
    return { peer, malformed: 'the Authorization and x-api-key headers carry different tokens' };
  }
  return { bearer: key, peer };
}
