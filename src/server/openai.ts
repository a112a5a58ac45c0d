/**
 * Canonical response → OpenAI Chat Completions wire shapes (objects, chunks, errors).
 */
import { ERROR_CODES, type ErrorCode, WardenError } from '../pipeline/errors.js';
import type { CompletionChunk, CompletionResult } from '../pipeline/types.js';

/** OpenAI's error `type` by HTTP status class, so SDKs pick the right exception class. */
function errorType(code: ErrorCode): string {
  const status = ERROR_CODES[code].http;
  switch (status) {
    case 400:
    case 404:
    case 410:
    case 413:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 429:
      return 'rate_limit_error';
    case 499:
      return 'cancelled';
    default:
      return status >= 500 ? 'server_error' : 'invalid_request_error';
  }
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string; param: string | null; details?: Record<string, unknown> };
}

export function errorBody(err: WardenError): OpenAIErrorBody {
  const loc = err.location;
  const param = loc?.path ?? (loc?.file ? formatFileLocation(loc) : null);
  const body: OpenAIErrorBody = {
    error: { message: err.message, type: errorType(err.code), code: err.code, param },
  };
  if (err.details) body.error.details = err.details;
  return body;
}

function formatFileLocation(loc: NonNullable<WardenError['location']>): string {
  let s = loc.file ?? '';
  if (loc.line !== undefined) s += `:${loc.line}`;
  if (loc.column !== undefined) s += `:${loc.column}`;
  return s;
}

/**
 * The answer's JSON: the same text as JSON.stringify of the object below, written directly for
 * the common answer (text messages of `role` and `content`, the three usage counts), the members
 * in the same order. JSON.stringify of that small object cost ~2 µs per request, most of it V8's
 * generic walk (a toJSON lookup per object); anything of another shape takes that walk.
 */
export function completionBody(result: CompletionResult): string {
  return simpleCompletionBody(result) ?? JSON.stringify({
    id: result.id,
    object: 'chat.completion',
    created: result.created,
    model: result.model,
    choices: result.choices.map((c) => ({
      index: c.index,
      message: c.message,
      logprobs: null,
      finish_reason: c.finish_reason,
    })),
    usage: result.usage,
  });
}

/** Printable ASCII but `"` and `\\`: a string JSON writes as it is, between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function jsonString(v: string): string {
  return PLAIN.test(v) ? `"${v}"` : JSON.stringify(v);
}

/** A finite number as JSON writes it (String() prints the same digits, -0 as 0 too), else undefined. */
function jsonNumber(v: unknown): string | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
}

/** `{"role":…,"content":…}` for a message of exactly those own members in that order, string or null content. */
function simpleMessage(m: unknown): string | undefined {
  if (m === null || typeof m !== 'object' || Object.getPrototypeOf(m) !== Object.prototype) return undefined;
  let members = 0;
  for (const k in m) {
    if (k !== (members === 0 ? 'role' : 'content')) return undefined;
    if (++members > 2) return undefined;
  }
  const { role, content } = m as { role: unknown; content: unknown };
  if (members !== 2 || typeof role !== 'string') return undefined;
  if (content !== null && typeof content !== 'string') return undefined;
  return `{"role":${jsonString(role)},"content":${content === null ? 'null' : jsonString(content)}}`;
}

/** The three counts in their usual order, or undefined for a usage of any other shape. */
function simpleUsage(u: unknown): string | undefined {
  if (u === null || typeof u !== 'object' || Object.getPrototypeOf(u) !== Object.prototype) return undefined;
  let members = 0;
  for (const k in u) {
    if (k !== (members === 0 ? 'prompt_tokens' : members === 1 ? 'completion_tokens' : 'total_tokens')) return undefined;
    if (++members > 3) return undefined;
  }
  const x = u as Record<string, unknown>;
  const prompt = jsonNumber(x.prompt_tokens);
  const completion = jsonNumber(x.completion_tokens);
  const total = jsonNumber(x.total_tokens);
  if (members !== 3 || prompt === undefined || completion === undefined || total === undefined) return undefined;
  return `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${total}}`;
}

/** completionBody's text for the common shape, or undefined (JSON.stringify has the final word). */
function simpleCompletionBody(result: CompletionResult): string | undefined {
  const { id, model, choices, usage } = result;
  const created = jsonNumber(result.created);
  if (typeof id !== 'string' || typeof model !== 'string' || created === undefined || !Array.isArray(choices)) return undefined;
  let out = `{"id":${jsonString(id)},"object":"chat.completion","created":${created},"model":${jsonString(model)},"choices":[`;
  for (let i = 0; i < choices.length; i++) {
    const c = choices[i];
    if (c === null || typeof c !== 'object') return undefined;
    const index = jsonNumber(c.index);
    const message = simpleMessage(c.message);
    const finish = c.finish_reason;
    if (index === undefined || message === undefined || (finish !== null && typeof finish !== 'string')) return undefined;
    out += `${i === 0 ? '' : ','}{"index":${index},"message":${message},"logprobs":null,"finish_reason":${finish === null ? 'null' : jsonString(finish)}}`;
  }
  // JSON.stringify leaves out a member whose value is undefined.
  if (usage === undefined) return `${out}]}`;
  const counts = simpleUsage(usage);
  return counts === undefined ? undefined : `${out}],"usage":${counts}}`;
}

/** One chunk as an SSE event; `usage` only for a caller that asked for it (see writeStream). */
export function chunkEvent(chunk: CompletionChunk, withUsage = true): string {
  const out: Record<string, unknown> = {
    id: chunk.id,
    object: 'chat.completion.chunk',
    created: chunk.created,
    model: chunk.model,
    choices: chunk.choices,
  };
  if (withUsage && chunk.usage !== undefined) out.usage = chunk.usage;
  return `data: ${JSON.stringify(out)}\n\n`;
}

export const DONE_EVENT = 'data: [DONE]\n\n';
