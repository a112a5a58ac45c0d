/**
 * Anthropic Messages API (`POST /v1/messages`) ↔ the canonical request and response. The body is
 * translated into the OpenAI Chat Completions shape the canonical types use, then checked by the
 * same `toPromptRequest` as the OpenAI route (one place for the `warden` object, template header
 * and variable limits). Answers go back as an Anthropic `message` or as its SSE event sequence
 * (`message_start`, `content_block_start/delta/stop`, `message_delta`, `message_stop`).
 *
 * What maps to what:
 *   system (string | text blocks)        → a leading system message (blocks as text parts, as a
 *                                          message's; refused on the governed path)
 *   text block                           → text part (one text block alone: a string), either role
 *   image block (base64 | url source)    → OpenAI `image_url` part (data: URL for base64)
 *   assistant tool_use block             → assistant `tool_calls[]` (input as JSON arguments)
 *   user tool_result block               → a `tool` message with `tool_call_id`, before the rest
 *   tools[] {name, description, input_schema} → function tools
 *   tool_choice auto|any|tool|none       → auto|required|{function}|none
 *   tool_choice.disable_parallel_tool_use: true → parallel_tool_calls: false
 *   stop_sequences → stop; metadata.user_id → user; max_tokens (required), temperature, top_p, top_k
 *     (the last three in the ranges Anthropic documents)
 *   tools[].strict                       → function.strict
 * Dropped: `cache_control` (a caching hint to Anthropic, which no OpenAI-style upstream takes; the
 * answer does not depend on it) and the empty members the SDK returns on an answer an app appends
 * to its history (`citations: null`, a direct `caller`, `toolset_name: null`, `is_error: false`).
 * A last assistant turn (a prefill) is refused: an OpenAI-style upstream does not continue it.
 * Anything else is refused with `invalid_request` naming the field, rather than silently dropped,
 * and so is what would change on the way (an empty content list, an empty tool name or id): the
 * location is always the caller's Anthropic field, never the OpenAI one it maps to.
 */
import { WardenError } from '../pipeline/errors.js';
import { DEFAULT_MAX_JSON_DEPTH, DEPTH_SCAN_MIN_BYTES, textNestsDeeperThan, tooDeepAt } from '../pipeline/json-depth.js';
import { MEMBER_NAME } from '../pipeline/identifiers.js';
import { MIB } from '../pipeline/sizes.js';
import { failedGeneration, isFailedFinish } from '../pipeline/failed-finish.js';
import type { ChatMessage, CompletionChunk, CompletionResult, ContentPart, PromptRequest, ToolCall } from '../pipeline/types.js';
import type { IngressLimits } from './limits.js';
import { ANY_OBJECT, FALSE_ONLY, NULL_ONLY, NULL_OR_EMPTY_LIST, checkMembers, type Droppable, type MemberRule } from './members.js';
import { checkExactNumbers, inParamRange, type ParamRange } from './param-numbers.js';
import { toPromptRequest, type IngressMeta } from './request.js';

/**
 * A path of Anthropic's API: `/v1/messages`, and the routes its SDK calls beside it that Warden
 * does not serve (`/v1/messages/count_tokens`, `/v1/messages/batches...`, the legacy
 * `/v1/complete`). Their refusals (404, 405, overloaded, ...) use Anthropic's error shape and its
 * `request-id` header, so the SDK reads their type and request id as it reads any other error.
 */
export function isAnthropicPath(path: string): boolean {
  return path === '/v1/messages' || path.startsWith('/v1/messages/') || path === '/v1/complete';
}

function invalid(message: string, path: string): WardenError {
  return new WardenError('invalid_request', message, { location: { path } });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Body keys this adapter understands (Anthropic's documented ones it can map, plus `warden`). */
const KNOWN_KEYS = new Set([
  'model',
  'messages',
  'system',
  'max_tokens',
  'stream',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'tools',
  'tool_choice',
  'metadata',
  'warden',
]);

/** A tool_use the model made itself, as the SDK's `ToolUseBlock.caller` says of every ordinary call. */
const DIRECT_CALLER: Droppable = {
  accepts: (v) => isObject(v) && Object.keys(v).length === 1 && v.type === 'direct',
  expected: '{"type": "direct"}',
};

const CACHE = { cache_control: ANY_OBJECT };
const MESSAGE_MEMBERS: MemberRule = { what: 'a message', carried: ['role', 'content'] };
const TEXT_MEMBERS: MemberRule = { what: 'a text block', carried: ['type', 'text'], dropped: { ...CACHE, citations: NULL_OR_EMPTY_LIST } };
const IMAGE_MEMBERS: MemberRule = { what: 'an image block', carried: ['type', 'source'], dropped: CACHE };
const BASE64_SOURCE_MEMBERS: MemberRule = { what: 'a base64 image source', carried: ['type', 'media_type', 'data'] };
const URL_SOURCE_MEMBERS: MemberRule = { what: 'a url image source', carried: ['type', 'url'] };
const TOOL_USE_MEMBERS: MemberRule = {
  what: 'a tool_use block',
  carried: ['type', 'id', 'name', 'input'],
  dropped: { ...CACHE, caller: DIRECT_CALLER, toolset_name: NULL_ONLY },
};
/** `is_error: true` has no OpenAI counterpart: dropped, the failed tool's result would read as a success. */
const TOOL_RESULT_MEMBERS: MemberRule = { what: 'a tool_result block', carried: ['type', 'tool_use_id', 'content'], dropped: { ...CACHE, is_error: FALSE_ONLY } };
const TOOL_MEMBERS: MemberRule = { what: 'a tool', carried: ['type', 'name', 'description', 'input_schema', 'strict'], dropped: CACHE };

function textOf(v: unknown, path: string): string {
  if (typeof v !== 'string') throw invalid(`field '${path}' must be a string`, path);
  return v;
}

/**
 * A name or id that pairs things up (a tool's name, a tool call's id and the result's
 * `tool_use_id`): an empty one pairs with nothing, so it is refused here, at the caller's field,
 * rather than forwarded (or refused later at the OpenAI field it was mapped to).
 */
function labelOf(v: unknown, path: string): string {
  const text = textOf(v, path);
  if (text === '') throw invalid(`field '${path}' must not be empty`, path);
  return text;
}

function textPart(block: Record<string, unknown>, path: string): ContentPart {
  checkMembers(block, TEXT_MEMBERS, path);
  return { type: 'text', text: textOf(block.text, `${path}.text`) };
}

/**
 * The image types Anthropic accepts. Both members end up inside an opaque `data:` URL that
 * redaction does not read, so neither may carry free text: the media type is one of these, the
 * data base64 (the value is never quoted back).
 */
const IMAGE_MEDIA_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function imagePart(block: Record<string, unknown>, path: string): ContentPart {
  checkMembers(block, IMAGE_MEMBERS, path);
  const source = block.source;
  if (!isObject(source)) throw invalid(`field '${path}.source' must be an object`, `${path}.source`);
  if (source.type === 'base64' || source.type === 'url') {
    checkMembers(source, source.type === 'base64' ? BASE64_SOURCE_MEMBERS : URL_SOURCE_MEMBERS, `${path}.source`);
  }
  if (source.type === 'base64') {
    const media = source.media_type;
    if (typeof media !== 'string' || !IMAGE_MEDIA_TYPES.has(media)) {
      throw invalid(`field '${path}.source.media_type' must be one of ${[...IMAGE_MEDIA_TYPES].join(', ')}`, `${path}.source.media_type`);
    }
    const data = textOf(source.data, `${path}.source.data`);
    if (!BASE64.test(data)) throw invalid(`field '${path}.source.data' must be base64`, `${path}.source.data`);
    return { type: 'image_url', image_url: { url: `data:${media};base64,${data}` } };
  }
  if (source.type === 'url') return { type: 'image_url', image_url: { url: textOf(source.url, `${path}.source.url`) } };
  throw invalid(`field '${path}.source.type' must be "base64" or "url"`, `${path}.source.type`);
}

/**
 * A block type this adapter does not map (`document`, `thinking`, ...): refused rather than
 * dropped or passed on, listing the ones it maps; the type itself is not quoted.
 */
function unsupportedBlock(path: string, accepted: string): WardenError {
  return invalid(`field '${path}' is not a supported content block type (accepted: ${accepted})`, path);
}

/** A tool_result's content (string or text/image blocks) → a tool message's content. */
function toolResultContent(v: unknown, path: string): string | ContentPart[] {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) throw invalid(`field '${path}' must be a string or a list of content blocks`, path);
  // No blocks is no content, as an absent one: OpenAI refuses a tool message's empty part list.
  if (v.length === 0) return '';
  return v.map((b, i) => {
    const p = `${path}.${i}`;
    if (!isObject(b)) throw invalid(`field '${p}' must be an object`, p);
    if (b.type === 'text') return textPart(b, p);
    if (b.type === 'image') return imagePart(b, p);
    throw unsupportedBlock(`${p}.type`, 'text, image');
  });
}

type OpenAIMessage = Record<string, unknown>;

function translateMessage(m: unknown, i: number, out: OpenAIMessage[]): void {
  const path = `messages.${i}`;
  if (!isObject(m)) throw invalid(`field '${path}' must be an object`, path);
  checkMembers(m, MESSAGE_MEMBERS, path);
  const role = m.role;
  if (role !== 'user' && role !== 'assistant') throw invalid(`field '${path}.role' must be "user" or "assistant"`, `${path}.role`);
  const content = m.content;
  if (typeof content === 'string') {
    out.push({ role, content });
    return;
  }
  if (!Array.isArray(content)) throw invalid(`field '${path}.content' must be a string or a list of content blocks`, `${path}.content`);
  // Anthropic refuses it too; dropped, the turn would vanish and its neighbours run together.
  if (content.length === 0) throw invalid(`field '${path}.content' must not be an empty list`, `${path}.content`);
  const parts: ContentPart[] = [];
  const toolCalls: ToolCall[] = [];
  content.forEach((b, j) => {
    const p = `${path}.content.${j}`;
    if (!isObject(b)) throw invalid(`field '${p}' must be an object`, p);
    switch (b.type) {
      case 'text':
        parts.push(textPart(b, p));
        return;
      case 'image':
        if (role !== 'user') throw invalid(`field '${p}' is an image block, which only user messages may carry`, p);
        parts.push(imagePart(b, p));
        return;
      case 'tool_use': {
        if (role !== 'assistant') throw invalid(`field '${p}' is a tool_use block, which only assistant messages may carry`, p);
        checkMembers(b, TOOL_USE_MEMBERS, p);
        if (!isObject(b.input)) throw invalid(`field '${p}.input' must be an object`, `${p}.input`);
        // Written back as JSON text: 12345678901234567890 would go upstream rounded, 1e400 as null.
        checkExactNumbers(b.input, `${p}.input`);
        toolCalls.push({
          id: labelOf(b.id, `${p}.id`),
          type: 'function',
          function: { name: labelOf(b.name, `${p}.name`), arguments: JSON.stringify(b.input) },
        });
        return;
      }
      case 'tool_result':
        if (role !== 'user') throw invalid(`field '${p}' is a tool_result block, which only user messages may carry`, p);
        checkMembers(b, TOOL_RESULT_MEMBERS, p);
        // OpenAI wants each tool answer as its own message right after the assistant's calls.
        out.push({ role: 'tool', tool_call_id: labelOf(b.tool_use_id, `${p}.tool_use_id`), content: toolResultContent(b.content, `${p}.content`) });
        return;
      default:
        throw unsupportedBlock(`${p}.type`, 'text, image, tool_use, tool_result');
    }
  });
  if (role === 'assistant') {
    const msg: OpenAIMessage = { role, content: parts.length > 0 ? contentOf(parts) : null };
    if (toolCalls.length > 0) msg.tool_calls = toolCalls;
    out.push(msg);
    return;
  }
  // A user turn of tool results only has become tool messages; nothing of it is left to send.
  if (parts.length > 0) out.push({ role, content: contentOf(parts) });
}

/**
 * Text and image blocks → OpenAI content, the same for both roles: one text block is a string,
 * anything else stays a list of parts (the blocks are not run together: `Hello` + `World` is not
 * `HelloWorld`; redaction reads them as one text all the same, see redact/session.ts).
 */
function contentOf(parts: ContentPart[]): string | ContentPart[] {
  return parts.length === 1 && parts[0]!.type === 'text' ? (parts[0] as { text: string }).text : parts;
}

function translateTools(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw invalid("field 'tools' must be a list", 'tools');
  return v.map((t, i) => {
    const p = `tools.${i}`;
    if (!isObject(t)) throw invalid(`field '${p}' must be an object`, p);
    checkMembers(t, TOOL_MEMBERS, p);
    // Server tools (web_search, bash, ...) carry a `type`; they run at Anthropic, not upstream here.
    if (t.type !== undefined && t.type !== 'custom') throw invalid(`field '${p}.type' is not supported (only client tools with input_schema)`, `${p}.type`);
    if (!isObject(t.input_schema)) throw invalid(`field '${p}.input_schema' must be an object`, `${p}.input_schema`);
    // Here, at the caller's field: toPromptRequest would refuse it at tools.N.function.parameters.
    checkExactNumbers(t.input_schema, `${p}.input_schema`);
    const fn: Record<string, unknown> = { name: labelOf(t.name, `${p}.name`), parameters: t.input_schema };
    if (t.description !== undefined) fn.description = textOf(t.description, `${p}.description`);
    if (t.strict !== undefined) {
      if (typeof t.strict !== 'boolean') throw invalid(`field '${p}.strict' must be a boolean`, `${p}.strict`);
      fn.strict = t.strict;
    }
    return { type: 'function', function: fn };
  });
}

/** The members Anthropic documents per tool_choice type (`none` has no parallel setting). */
const CHOICE_MEMBERS: Record<string, MemberRule> = {
  auto: { what: 'an auto tool_choice', carried: ['type', 'disable_parallel_tool_use'] },
  any: { what: 'an any tool_choice', carried: ['type', 'disable_parallel_tool_use'] },
  tool: { what: 'a tool tool_choice', carried: ['type', 'name', 'disable_parallel_tool_use'] },
  none: { what: 'a none tool_choice', carried: ['type'] },
};

/**
 * Anthropic's tool_choice → OpenAI's `tool_choice`, and `parallel_tool_calls: false` when it
 * disables parallel tool use (at most / exactly one call: OpenAI's way of saying the same).
 * `false` is Anthropic's default, so it adds nothing.
 */
function translateToolChoice(v: unknown, out: Record<string, unknown>): void {
  if (!isObject(v)) throw invalid("field 'tool_choice' must be an object", 'tool_choice');
  const type = typeof v.type === 'string' && Object.hasOwn(CHOICE_MEMBERS, v.type) ? v.type : undefined;
  if (type === undefined) throw invalid("field 'tool_choice.type' must be one of \"auto\", \"any\", \"tool\", \"none\"", 'tool_choice.type');
  checkMembers(v, CHOICE_MEMBERS[type]!, 'tool_choice');
  const single = v.disable_parallel_tool_use;
  if (single !== undefined && typeof single !== 'boolean') throw invalid("field 'tool_choice.disable_parallel_tool_use' must be a boolean", 'tool_choice.disable_parallel_tool_use');
  out.tool_choice = type === 'auto' ? 'auto' : type === 'any' ? 'required' : type === 'none' ? 'none' : { type: 'function', function: { name: labelOf(v.name, 'tool_choice.name') } };
  if (single === true) out.parallel_tool_calls = false;
}

/** `metadata`: Anthropic documents `user_id` only; anything else would be dropped, so it is refused. */
const METADATA_MEMBERS: MemberRule = { what: 'metadata', carried: ['user_id'] };

/** What an Anthropic parameter name looks like (`max_tokens`, `stop_sequences`, `thinking`). */
const PARAM_NAME = MEMBER_NAME;

/**
 * Anthropic's sampling parameters, held to the ranges Anthropic documents: passed on unchecked, a
 * wrong one would come back as the upstream's refusal (`upstream_rejected`) or, where the
 * upstream's range is wider (OpenAI's temperature goes to 2), as an answer Anthropic would not give.
 * The translated body then goes through the OpenAI table (param-numbers.ts) as any HTTP call does.
 */
const SAMPLING: Record<string, ParamRange> = {
  temperature: { integer: false, min: 0, max: 1, expected: 'a number from 0 to 1' },
  top_p: { integer: false, min: 0, max: 1, expected: 'a number from 0 to 1' },
  top_k: { integer: true, min: 0, expected: 'a non-negative integer' },
};

/** Anthropic Messages body → an OpenAI Chat Completions body for `toPromptRequest`. */
export function anthropicToChatBody(body: unknown): Record<string, unknown> {
  if (!isObject(body)) throw invalid('request body must be a JSON object', '$');
  for (const key of Object.keys(body)) {
    if (KNOWN_KEYS.has(key)) continue;
    // Named back only when it looks like a parameter name: a key is the caller's text.
    if (PARAM_NAME.test(key)) throw invalid(`field '${key}' is not supported by Warden's Anthropic-compatible API`, key);
    throw invalid("the body has a field that is not an Anthropic parameter name (letters, digits and _, at most 64 characters)", '$');
  }
  const maxTokens = body.max_tokens;
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw invalid("field 'max_tokens' is required and must be a positive integer", 'max_tokens');
  }
  const out: Record<string, unknown> = { model: body.model, max_tokens: maxTokens };
  const messages: OpenAIMessage[] = [];
  if (body.system !== undefined) {
    const sys = body.system;
    if (typeof sys === 'string') messages.push({ role: 'system', content: sys });
    else if (Array.isArray(sys)) {
      // Text parts, as a message's blocks are, so redaction reads them as one text: joined with a
      // blank line here, a value split across two blocks (`jane.doe@exa` | `mple.com`) was no
      // address to the scan, and went upstream whole but for the line break.
      const parts = sys.map((b, i) => {
        if (!isObject(b) || b.type !== 'text') throw invalid(`field 'system.${i}' must be a text block`, `system.${i}`);
        return textPart(b, `system.${i}`);
      });
      // No blocks is no system prompt (an empty parts list is no content an upstream takes).
      if (parts.length > 0) messages.push({ role: 'system', content: contentOf(parts) });
    } else throw invalid("field 'system' must be a string or a list of text blocks", 'system');
  }
  if (body.messages !== undefined) {
    if (!Array.isArray(body.messages)) throw invalid("field 'messages' must be a list", 'messages');
    body.messages.forEach((m, i) => translateMessage(m, i, messages));
    // A last assistant turn is Anthropic's prefill: the answer continues it (`{` then the rest of
    // the JSON). An OpenAI-style upstream answers with a new message instead, which the app would
    // append to its prefill (`{{"a": 1}`): refused, as Anthropic's own newer models refuse it.
    const last = body.messages.length - 1;
    if (last >= 0 && (body.messages[last] as { role?: unknown }).role === 'assistant') {
      throw invalid(`field 'messages.${last}' is an assistant turn last (a prefill), which Warden's OpenAI-compatible upstreams do not continue: end with a user turn`, `messages.${last}`);
    }
  }
  // With a template (governed path) the template supplies the whole prompt: `toPromptRequest`
  // refuses any message, a system prompt included, rather than dropping it silently.
  out.messages = messages;
  if (body.stream !== undefined) out.stream = body.stream;
  for (const [key, rule] of Object.entries(SAMPLING)) {
    const v = body[key];
    if (v === undefined) continue;
    if (!inParamRange(v, rule)) throw invalid(`field '${key}' must be ${rule.expected}`, key);
    out[key] = v;
  }
  if (body.stop_sequences !== undefined) {
    if (!Array.isArray(body.stop_sequences) || body.stop_sequences.some((s) => typeof s !== 'string')) {
      throw invalid("field 'stop_sequences' must be a list of strings", 'stop_sequences');
    }
    out.stop = body.stop_sequences;
  }
  if (body.tools !== undefined) out.tools = translateTools(body.tools);
  if (body.tool_choice !== undefined) {
    translateToolChoice(body.tool_choice, out);
    // Anthropic refuses a tool_choice without tools, or naming a tool not among them, and so does
    // an OpenAI upstream (it came back as `upstream_rejected`, at no field of the caller's):
    // refused here, at the caller's field.
    const tools = out.tools as Array<{ function: { name: string } }> | undefined;
    if (tools === undefined || tools.length === 0) throw invalid("field 'tool_choice' may only be given with 'tools'", 'tool_choice');
    const forced = out.tool_choice;
    if (isObject(forced) && !tools.some((t) => t.function.name === (forced.function as { name: string }).name)) {
      throw invalid("field 'tool_choice.name' must name one of the request's tools", 'tool_choice.name');
    }
  }
  if (body.metadata !== undefined) {
    if (!isObject(body.metadata)) throw invalid("field 'metadata' must be an object", 'metadata');
    checkMembers(body.metadata, METADATA_MEMBERS, 'metadata');
    if (body.metadata.user_id !== undefined && body.metadata.user_id !== null) out.user = textOf(body.metadata.user_id, 'metadata.user_id');
  }
  if (body.warden !== undefined) out.warden = body.warden;
  return out;
}

/**
 * The canonical request for an Anthropic body: mapped (anthropicToChatBody), then checked as an
 * OpenAI body is. On the governed path the template supplies the whole prompt, so a `system`
 * prompt is refused, as any message is; it is refused here, at `system`, because mapped to a
 * leading message it would be refused at `messages`, which the caller may not even have sent.
 */
export function anthropicPromptRequest(body: unknown, meta: IngressMeta, limits: IngressLimits): PromptRequest {
  const chat = anthropicToChatBody(body);
  if (isObject(body) && body.system !== undefined && namesTemplate(body, meta)) {
    throw invalid("field 'system' must be absent when a template is named: the template supplies the prompt", 'system');
  }
  return toPromptRequest(chat, meta, limits);
}

/** The template a request names as toPromptRequest reads it: `warden.template`, else the header. */
function namesTemplate(body: Record<string, unknown>, meta: IngressMeta): boolean {
  const template = isObject(body.warden) ? body.warden.template : undefined;
  return template === undefined ? meta.templateHeader !== undefined : typeof template === 'string';
}

// --- responses ----------------------------------------------------------------------------------

const STOP_REASONS: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  // Mistral's: the model's own context length ended the answer, as `length` does.
  model_length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
};

/**
 * No finish_reason (null, absent, ""): `end_turn`, as the upstream ended its answer without saying
 * why, streamed or not (an Anthropic message always has a stop reason).
 */
function stopReason(finish: string | null | undefined): string {
  // Own members only: the upstream's finish_reason is its text, and "constructor" is not a reason.
  return finish && Object.hasOwn(STOP_REASONS, finish) ? STOP_REASONS[finish]! : 'end_turn';
}

/**
 * Anthropic's `stop_reason` and `stop_sequence` for a choice. `stop_sequence` only when the
 * upstream said which stop string ended it (vLLM's stop_reason; OpenAI's format does not say)
 * and it is one of the request's stop_sequences (redaction drops any other: redact/stream.ts
 * keptStop). Otherwise a stop is `end_turn`, as Warden cannot tell a stop sequence from the
 * model's own end.
 */
function stopOf(finish: string | null | undefined, stopSequence: string | undefined, refused: boolean, toolUse: boolean): { stop_reason: string; stop_sequence: string | null } {
  if (refused) return { stop_reason: 'refusal', stop_sequence: null };
  const reason = stopReason(finish);
  // A message with tool_use blocks stops with `tool_use` unless the limit cut it: OpenAI itself
  // says `stop` for the call a named tool_choice forces (Anthropic's `{type: "tool"}`), and so do
  // Ollama, SGLang and vLLM in some modes. Read as `end_turn`, the SDK loops that run tools while
  // stop_reason is `tool_use` took the call for the final answer and never ran it.
  if (toolUse && reason === 'end_turn') return { stop_reason: 'tool_use', stop_sequence: null };
  // And `tool_use` without a tool_use block (a `tool_calls` finish with no call) is no call to
  // run: a loop reading it would answer a call that is not there. The model's turn ended.
  if (!toolUse && reason === 'tool_use') return { stop_reason: 'end_turn', stop_sequence: null };
  if (finish === 'stop' && stopSequence !== undefined) return { stop_reason: 'stop_sequence', stop_sequence: stopSequence };
  return { stop_reason: reason, stop_sequence: null };
}

function messageId(id: string): string {
  return id.startsWith('msg_') ? id : `msg_${id}`;
}

/**
 * A tool call's arguments → Anthropic's `input`, which must be a JSON object: OpenAI's arguments
 * are JSON text, and nothing (or only white space) is no arguments, `{}`. Anything else is
 * `upstream_error`, streamed or not (the encoder checks each call when its block closes): an
 * `input: {}` in its place would have the app run the tool without what the model gave it, and
 * an array or text passed on is not a tool_use Anthropic's SDKs can read. Arguments the token
 * limit cut (`finish_reason` length) are refused too, saying so: what they hold is no call an app
 * may run, a partial object would be Warden's guess, and Anthropic's advice for a tool_use cut by
 * max_tokens is the same, to ask again with more. Never quotes the arguments (model output).
 */
function toolInput(args: string, finish: string | null | undefined): Record<string, unknown> {
  if (args.trim() === '') return {};
  // Large arguments are scanned for their depth before JSON.parse, as a large body is
  // (providers/openai.ts decodeCompletion): up to the answer's size of `[` held the event loop.
  if (args.length > DEPTH_SCAN_MIN_BYTES && textNestsDeeperThan(args, DEFAULT_MAX_JSON_DEPTH)) throw argumentsTooDeep();
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    parsed = undefined;
  }
  if (isObject(parsed)) {
    // The input goes out as part of the message, which JSON.stringify writes recursively: a few
    // thousand levels (a few KB of arguments) overflowed the stack there, a 500 `internal` for
    // the upstream's answer. Held to the depth every upstream answer is (openai.ts decodeCompletion).
    if (tooDeepAt(parsed, DEFAULT_MAX_JSON_DEPTH)) throw argumentsTooDeep();
    return parsed;
  }
  if (finish === 'length' || finish === 'model_length') {
    throw new WardenError('upstream_error', "the upstream's tool call arguments were cut at the token limit (finish_reason length), so there is no tool_use input to pass on: ask again with a larger max_tokens", {
      details: { finish_reason: 'length' },
    });
  }
  throw new WardenError('upstream_error', "the upstream sent tool call arguments that are not a JSON object, which an Anthropic tool_use input must be");
}

/** Arguments nested too deep to pass on: the tool_use input goes out through JSON.stringify, which recurses. */
function argumentsTooDeep(): WardenError {
  return new WardenError('upstream_error', `the upstream sent tool call arguments nested deeper than ${DEFAULT_MAX_JSON_DEPTH} levels, which Warden does not pass on as a tool_use input`);
}

/**
 * A tool_use block needs an id and a name (an SDK cannot route a call without them, nor match its
 * result); OpenAI sends both in a call's first piece. Streamed or not.
 */
function checkToolLabels(id: string | undefined, name: string): void {
  if (!id || name === '') throw new WardenError('upstream_error', 'the upstream began a tool call without an id or a name');
}

/**
 * The one choice a /v1/messages answer has: index 0. An upstream may not add others (the provider
 * refuses a choice the request did not ask for: providers/validate.ts askedChoices); checked here
 * again, as this is where choices would be merged or dropped.
 */
function onlyChoice<C extends { index: number }>(choices: readonly C[]): C | undefined {
  if (choices.some((c) => c.index !== 0) || choices.length > 1) {
    throw new WardenError('upstream_error', 'the upstream sent a choice the request did not ask for, which an Anthropic message cannot carry');
  }
  return choices[0];
}

/**
 * An answer message's text, and whether the model refused. Every part counts: `text`,
 * `input_text` and `output_text` parts are its text, a `refusal` part (or the `refusal` member)
 * is Anthropic's text with stop_reason `refusal`, in the order they came, as the streamed answer
 * puts both in its text block. (Redaction has refused any other part type before this point:
 * redact/session.ts answerTexts, which also redacts all of them as one text, as joined here.)
 */
function answerText(msg: ChatMessage): { text: string; refused: boolean } {
  let text = '';
  let refused = false;
  if (typeof msg.content === 'string') text = msg.content;
  else if (Array.isArray(msg.content)) {
    for (const p of msg.content) {
      const rec = p as Record<string, unknown>;
      if (p.type === 'refusal' && typeof rec.refusal === 'string') {
        text += rec.refusal;
        // An empty refusal refuses nothing, as the stream reads one (encodeChoice).
        if (rec.refusal !== '') refused = true;
      } else if (typeof rec.text === 'string') text += rec.text;
    }
  }
  if (msg.refusal !== undefined && msg.refusal !== '') return { text: text + msg.refusal, refused: true };
  return { text, refused };
}

/**
 * The Anthropic message for a (redacted) answer. Throws `upstream_error` for an answer it cannot
 * carry (another choice than index 0, a tool call without id or name, or with arguments that are
 * not a JSON object): the ingress calls it before the audit record is written
 * (PromptRequest.answerCheck), so the record says so. `fallbackId`, `fallbackModel`: the
 * message's id (the request id) and model (the requested one) when the upstream's are empty.
 */
export function anthropicMessageBody(result: CompletionResult, fallbackId = '', fallbackModel = ''): string {
  const choice = onlyChoice(result.choices);
  // Refused before the audit record already (PromptRequest.failedFinishIsError); never end_turn.
  if (isFailedFinish(choice?.finish_reason)) throw failedGeneration(choice.finish_reason);
  const content: unknown[] = [];
  const msg = choice?.message;
  let refused = false;
  if (msg) {
    const said = answerText(msg);
    refused = said.refused;
    // No text is no text block, as Anthropic answers an empty turn (`content: []`, end_turn) and as
    // the stream does (a block opens with the first text): an empty block was one the stream lacked.
    if (said.text !== '') content.push({ type: 'text', text: said.text });
    for (const t of msg.tool_calls ?? []) {
      checkToolLabels(t.id, t.function.name);
      content.push({ type: 'tool_use', id: t.id, name: t.function.name, input: toolInput(t.function.arguments, choice?.finish_reason) });
    }
  }
  return JSON.stringify({
    // An upstream that leaves both empty (as Azure's filter chunks do): the message is still
    // named, as the streamed one is (AnthropicStreamEncoder's fallbacks), not `msg_` and "".
    id: messageId(result.id || fallbackId),
    type: 'message',
    role: 'assistant',
    model: result.model || fallbackModel,
    content,
    ...stopOf(choice?.finish_reason, choice?.stop_sequence, refused, (msg?.tool_calls?.length ?? 0) > 0),
    usage: { input_tokens: result.usage?.prompt_tokens ?? 0, output_tokens: result.usage?.completion_tokens ?? 0 },
  });
}

/**
 * The HTTP status on this route: Warden's own, except `overloaded` (the in-flight limit), which is
 * Anthropic's 529 `overloaded_error`, the status its SDKs raise as `OverloadedError` and back off
 * from (retrying after the `retry-after` Warden sends).
 */
export function anthropicStatus(err: WardenError): number {
  return err.code === 'overloaded' ? 529 : err.httpStatus;
}

/**
 * Anthropic's error `type` for a status, as its API documents them (400, 401, 403, 404, 413,
 * 429, 500, 504 `timeout_error`, 529), so code that branches on `err.type` reads Warden's errors
 * as it reads Anthropic's. Another 4xx is `invalid_request_error` (as Anthropic answers it), any
 * other 5xx `api_error`: a secret or the audit sink unavailable is no overload to back off from.
 */
function anthropicErrorType(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/**
 * `{type: "error", error: {type, message}, request_id}` plus Warden's stable `code`, the field
 * (`param`) and the same `details` the OpenAI route's error carries (policy reasons and decision
 * id, the redaction reason, the upstream's status, ...). Extra members of `error` leave the shape
 * Anthropic's SDKs parse intact (they keep the body as `err.error`). The request id is also in
 * the `request-id` header, where the SDKs read it.
 */
export function anthropicErrorBody(err: WardenError, requestId: string): Record<string, unknown> {
  const error: Record<string, unknown> = { type: anthropicErrorType(anthropicStatus(err)), message: err.message, code: err.code };
  if (err.location?.path) error.param = err.location.path;
  if (err.details) error.details = err.details;
  return { type: 'error', error, request_id: requestId };
}

function sse(event: string, data: object): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function anthropicErrorEvent(err: WardenError, requestId: string): string {
  return sse('error', anthropicErrorBody(err, requestId));
}

/**
 * A tool call's id or name so far with its next piece: appended, as openai-python joins the
 * pieces (OpenAI sends each once, whole, but its format allows pieces), except a piece that
 * repeats the label so far whole, as DeepSeek, Qwen and Fireworks send the id and name with every
 * piece of a call.
 */
function joinLabel(label: string, piece: string | null | undefined): string {
  if (!piece) return label;
  if (label === '') return piece;
  return piece === label ? label : label + piece;
}

/**
 * The most of one tool call's arguments a stream may carry (UTF-16 units): the encoder holds them
 * until the block closes, to check they are the JSON object a tool_use input must be (toolInput).
 * Unbounded, an upstream streaming one call's arguments for the whole upstream deadline (minutes)
 * grew the process without limit, where redaction holds a stream's text in a bounded window. 16 MiB
 * is the cap of a whole non-streamed answer (providers/openai.ts maxResponseBytes), which such a
 * call could not pass either; a UTF-8 byte is at least one unit, so nothing that cap lets through
 * is refused here.
 */
const MAX_STREAMED_ARGUMENTS = 16 * MIB;

type ToolDelta = NonNullable<CompletionChunk['choices'][number]['delta']['tool_calls']>[number];
type ChunkChoice = CompletionChunk['choices'][number];

/**
 * OpenAI-shaped chunks → Anthropic stream events. One content block is open at a time: text
 * deltas go to a text block, each new tool call opens a tool_use block whose argument pieces are
 * `input_json_delta`s. `finish()` closes the open block and ends the message.
 *
 * A tool_use block carries its tool's id and name when it opens, while OpenAI's chunks may send
 * both in pieces (each piece is appended, as openai-python does, but for a piece that repeats
 * the whole label: see joinLabel; redaction holds a call's id and name back and sends each whole,
 * leak-guarded joined: redact/stream.ts ToolLabel). So a tool call's block opens only once its
 * id and name are whole: at its first argument piece, or when anything else comes (text, another
 * call, the finish). A name or id piece after that is refused as `upstream_error`: what was
 * sent cannot be changed, and passing on the first piece alone would name another tool, or give
 * the call an id its result would not be matched by.
 *
 * What a non-streamed answer must be, a stream must be too (anthropicMessageBody): one choice
 * (index 0), tool calls with an id and a name, and arguments that are a JSON object (toolInput,
 * checked when the block closes, so its arguments are kept until then). Any of these is thrown as
 * `upstream_error`: mid-stream, the ingress ends the stream with an error event; at the end,
 * `finish()` throws it before the stream's audit record is written (PromptRequest.streamEnd).
 */
export class AnthropicStreamEncoder {
  private started = false;
  private index = -1;
  private open: 'text' | 'tool' | undefined;
  private toolIndex = -1;
  /** The open tool_use block's id and name: a piece repeating either whole is no new piece. */
  private toolId = '';
  private toolName = '';
  /** The open tool_use block's arguments so far, checked when it closes (toolInput). */
  private toolArgs = '';
  /** Whether the open tool_use block has sent an input_json_delta (its leading white space is not sent). */
  private argsBegun = false;
  /** Tool calls seen (a block cannot be reopened once closed). */
  private readonly toolsSeen = new Set<number>();
  /** The tool call whose block is not open yet: its name may still be growing. */
  private pending: { index: number; id: string; name: string } | undefined;
  private stop: { stop_reason: string; stop_sequence: string | null } | undefined;
  /** The upstream's finish_reason, once it came: a cut (length) explains arguments that do not parse. */
  private finishReason: string | null = null;
  private refused = false;
  private outputTokens = 0;
  /** From the usage chunk, which comes last: reported in message_delta. */
  private inputTokens: number | undefined;

  /**
   * `fallbackId`, `fallbackModel`: the message's id (the request id) and model (the requested one)
   * when the chunk that starts it has none (`""`).
   */
  constructor(
    private readonly fallbackId = '',
    private readonly fallbackModel = '',
  ) {}

  /** The events for one chunk (possibly empty). */
  encode(chunk: CompletionChunk): string {
    let out = '';
    if (chunk.usage) {
      this.outputTokens = chunk.usage.completion_tokens;
      this.inputTokens = chunk.usage.prompt_tokens;
    }
    if (!this.started) {
      // Azure's first chunk (its prompt_filter_results: no choices, id "" and model "") is no
      // part of the answer: the message starts with the answer's first chunk, under its id.
      if (chunk.choices.length === 0 && chunk.id === '') return out;
      out += this.start(chunk.id, chunk.model);
    }
    const choice = onlyChoice(chunk.choices);
    return choice === undefined ? out : out + this.encodeChoice(choice);
  }

  /** `message_start`, under `id` and `model` (the fallbacks for empty ones). */
  private start(id: string, model: string): string {
    this.started = true;
    return sse('message_start', {
      type: 'message_start',
      message: {
        id: messageId(id || this.fallbackId),
        type: 'message',
        role: 'assistant',
        model: model || this.fallbackModel,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: this.inputTokens ?? 0, output_tokens: 0 },
      },
    });
  }

  private encodeChoice(choice: ChunkChoice): string {
    let out = '';
    const d = choice.delta;
    // A refusal streams as text, and the message stops with `refusal`.
    if (typeof d.refusal === 'string' && d.refusal !== '') this.refused = true;
    const text = typeof d.content === 'string' && d.content !== '' ? d.content : typeof d.refusal === 'string' ? d.refusal : '';
    if (text !== '') {
      if (this.open !== 'text') {
        out += this.openPending();
        out += this.closeBlock();
        this.index++;
        this.open = 'text';
        out += sse('content_block_start', { type: 'content_block_start', index: this.index, content_block: { type: 'text', text: '' } });
      }
      out += sse('content_block_delta', { type: 'content_block_delta', index: this.index, delta: { type: 'text_delta', text } });
    }
    for (const t of d.tool_calls ?? []) out += this.toolPiece(t);
    if (choice.finish_reason) {
      // A generation the upstream says failed: end_turn would read as complete. Thrown, so the
      // stream ends with an `error` event and no message_stop, audited as upstream_error.
      if (isFailedFinish(choice.finish_reason)) throw failedGeneration(choice.finish_reason);
      this.finishReason = choice.finish_reason;
      out += this.openPending();
      // The answer is over: its last block is checked (and closed) now, not after the stream.
      out += this.closeBlock();
      this.stop = stopOf(choice.finish_reason, choice.stop_sequence, this.refused, this.toolsSeen.size > 0);
    }
    return out;
  }

  /** One tool call piece: its name grows the pending call's; its arguments open the block and go in it. */
  private toolPiece(t: ToolDelta): string {
    let out = '';
    const namePiece = t.function?.name ?? '';
    if (this.pending?.index === t.index) {
      this.pending.name = joinLabel(this.pending.name, namePiece);
      this.pending.id = joinLabel(this.pending.id, t.id);
    } else if (this.open === 'tool' && t.index === this.toolIndex) {
      if (namePiece !== '' && namePiece !== this.toolName) {
        throw new WardenError('upstream_error', "the upstream sent more of a tool call's name after its arguments began, which an Anthropic stream cannot carry (a tool_use block is named when it opens)");
      }
      if (t.id && t.id !== this.toolId) {
        throw new WardenError('upstream_error', "the upstream sent more of a tool call's id after its arguments began, which an Anthropic stream cannot carry (a tool_use block carries its id when it opens)");
      }
    } else {
      // The request streams sequentially (redaction releases each part's tail before the next
      // part starts), so only an upstream that goes back to an earlier tool call gets here.
      if (this.toolsSeen.has(t.index)) {
        throw new WardenError('upstream_error', 'the upstream went back to an earlier tool call, which an Anthropic stream cannot carry');
      }
      this.toolsSeen.add(t.index);
      out += this.openPending();
      this.pending = { index: t.index, id: t.id ?? '', name: namePiece };
    }
    const piece = t.function?.arguments;
    if (!piece) return out;
    out += this.openPending();
    if (this.toolArgs.length + piece.length > MAX_STREAMED_ARGUMENTS) {
      throw new WardenError('upstream_error', `the upstream streamed tool call arguments longer than 16 MiB (${MAX_STREAMED_ARGUMENTS} characters), more than a whole non-streamed answer may hold, which Warden does not pass on as a tool_use input`);
    }
    this.toolArgs += piece;
    // White space before the value is no part of it, and alone it is no JSON: arguments of white
    // space only are `{}` (toolInput), but sent as input_json_delta the SDK parsed them when the
    // input was read, and threw. So the block's pieces start at its first other character.
    let sent = piece;
    if (!this.argsBegun) {
      sent = piece.trimStart();
      if (sent === '') return out;
      this.argsBegun = true;
    }
    return out + sse('content_block_delta', { type: 'content_block_delta', index: this.index, delta: { type: 'input_json_delta', partial_json: sent } });
  }

  /** Opens the pending tool call's tool_use block (its name is whole by now), closing the open block. */
  private openPending(): string {
    const p = this.pending;
    if (p === undefined) return '';
    this.pending = undefined;
    checkToolLabels(p.id, p.name);
    const out = this.closeBlock();
    this.index++;
    this.open = 'tool';
    this.toolIndex = p.index;
    this.toolId = p.id;
    this.toolName = p.name;
    this.toolArgs = '';
    this.argsBegun = false;
    return out + sse('content_block_start', { type: 'content_block_start', index: this.index, content_block: { type: 'tool_use', id: p.id, name: p.name, input: {} } });
  }

  /** message_delta's usage: cumulative, with the input tokens once the upstream reported them. */
  private usage(): { output_tokens: number; input_tokens?: number } {
    return this.inputTokens === undefined ? { output_tokens: this.outputTokens } : { input_tokens: this.inputTokens, output_tokens: this.outputTokens };
  }

  /** Closes the open block; a tool_use block's arguments must be a JSON object by then (toolInput). */
  private closeBlock(): string {
    if (this.open === undefined) return '';
    if (this.open === 'tool') {
      toolInput(this.toolArgs, this.finishReason);
      this.toolArgs = '';
    }
    this.open = undefined;
    return sse('content_block_stop', { type: 'content_block_stop', index: this.index });
  }

  /**
   * The closing events: the open block's stop, `message_delta` (stop reason, usage),
   * `message_stop`. Throws `upstream_error` when the answer ends on a tool call it cannot carry:
   * called when the stream has ended but before its audit record is written (see the class).
   */
  finish(fallbackId: string, model: string): string {
    let out = '';
    if (!this.started) out += this.start(fallbackId, model);
    out += this.openPending();
    out += this.closeBlock();
    out += sse('message_delta', { type: 'message_delta', delta: this.stop ?? stopOf(null, undefined, this.refused, this.toolsSeen.size > 0), usage: this.usage() });
    out += sse('message_stop', { type: 'message_stop' });
    return out;
  }
}
