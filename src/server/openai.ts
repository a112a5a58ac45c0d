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

export function completionBody(result: CompletionResult): string {
  return JSON.stringify({
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
