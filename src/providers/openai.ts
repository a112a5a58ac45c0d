/**
 * A provider for any OpenAI-compatible Chat Completions upstream. Warden sets the credentials
 * (`Authorization: Bearer`, from a secret ref resolved by the caller), so the application never
 * holds the key. One undici Pool per provider keeps connections alive across requests; connect,
 * headers and body timeouts bound every phase. Upstream failures become `upstream_error` /
 * `upstream_timeout` carrying the HTTP status only — never the upstream body, which may echo
 * the prompt.
 */
import { Pool, type Dispatcher } from 'undici';
import type { CancelSignal } from '../pipeline/cancel.js';
import { WardenError, isWardenError } from '../pipeline/errors.js';
import type { ModelProvider } from '../pipeline/ports.js';
import type { CompletionChunk, CompletionResult, UpstreamRequest } from '../pipeline/types.js';
import { SseError, SseParser } from './sse.js';
import { ChunkSchema, CompletionSchema, parseSimpleCompletion } from './validate.js';

export interface OpenAIProviderOptions {
  name: string;
  /** E.g. `https://api.openai.com/v1`; `/chat/completions` is appended. */
  baseUrl: string;
  /** Resolves the API key for each call (the caller caches it within its lease). Absent: no Authorization header. */
  getApiKey?: () => Promise<string>;
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number };
  connections?: number;
  /** Largest non-streaming response body accepted. Default 16 MiB. */
  maxResponseBytes?: number;
  /** Largest single SSE event accepted. Default 1 MiB. */
  maxEventBytes?: number;
}

type UpstreamResponse = Dispatcher.ResponseData;

/** Reads and drops what is left of a body we will not use (keeps the connection reusable when small). */
function discard(res: UpstreamResponse): void {
  res.body.dump({ limit: 64 * 1024 }).catch(() => {
    // The connection is closed instead; nothing to report.
  });
}

/** Closes a body mid-read; the error undici emits for it is expected, not unhandled. */
function abandon(res: UpstreamResponse): void {
  res.body.on('error', () => {});
  res.body.destroy();
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/**
 * Turns whatever the call failed with into a WardenError. The signal decides first: a client
 * abort is `cancelled`, a deadline is `upstream_timeout`, whatever error undici surfaced for it.
 */
export function upstreamFailure(err: unknown, signal: CancelSignal, provider: string): WardenError {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (isWardenError(reason)) return reason;
    if (reason instanceof Error && reason.name === 'TimeoutError') {
      return new WardenError('upstream_timeout', `provider ${provider} did not answer in time`, { details: { provider } });
    }
    return new WardenError('cancelled', 'the request was cancelled', { details: { provider } });
  }
  if (isWardenError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) {
    const phase = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect' : code === 'UND_ERR_HEADERS_TIMEOUT' ? 'headers' : 'body';
    return new WardenError('upstream_timeout', `provider ${provider} timed out (${phase})`, {
      details: { provider, phase },
      cause: err,
    });
  }
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) {
    return new WardenError('upstream_error', `provider ${provider} is unreachable (${code})`, {
      details: { provider, reason: code },
      cause: err,
    });
  }
  if (err instanceof SseError) {
    return new WardenError('upstream_error', `provider ${provider} sent an invalid stream`, { details: { provider }, cause: err });
  }
  return new WardenError('upstream_error', `provider ${provider} request failed`, { details: { provider }, cause: err });
}

function invalid(provider: string, what: string): WardenError {
  return new WardenError('upstream_error', `provider ${provider} returned ${what}`, { details: { provider } });
}

export function createOpenAIProvider(opts: OpenAIProviderOptions): ModelProvider {
  const { name } = opts;
  const url = new URL(opts.baseUrl);
  const path = `${url.pathname.replace(/\/+$/, '')}/chat/completions${url.search}`;
  const maxResponseBytes = opts.maxResponseBytes ?? 16 * 1024 * 1024;
  const maxEventChars = opts.maxEventBytes ?? 1024 * 1024;
  const pool = new Pool(url.origin, {
    connections: opts.connections ?? 64,
    connectTimeout: opts.timeouts?.connectMs ?? 5_000,
    headersTimeout: opts.timeouts?.headersMs ?? 60_000,
    bodyTimeout: opts.timeouts?.bodyMs ?? 300_000,
    keepAliveTimeout: 10_000,
  });

  async function headersFor(request: UpstreamRequest, stream: boolean): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: stream ? 'text/event-stream' : 'application/json',
      'user-agent': 'warden',
    };
    if (request.traceparent) headers.traceparent = request.traceparent;
    if (opts.getApiKey) {
      let key: string;
      try {
        key = await opts.getApiKey();
      } catch (err) {
        if (isWardenError(err)) throw err;
        throw new WardenError('secret_unavailable', `the API key of provider ${name} could not be resolved`, {
          details: { provider: name },
          cause: err,
        });
      }
      headers.authorization = `Bearer ${key}`;
    }
    return headers;
  }

  function bodyFor(request: UpstreamRequest, stream: boolean): string {
    // Passthrough parameters first, so they can never override what Warden decided.
    const messagesJson = request.messagesJson;
    const body: Record<string, unknown> = { ...request.params, model: request.model, stream };
    if (messagesJson === undefined) body.messages = request.messages;
    if (request.tools && request.tools.length > 0) body.tools = request.tools;
    if (request.max_tokens !== undefined) body.max_tokens = request.max_tokens;
    if (stream) body.stream_options = { include_usage: true };
    else if (body.stream_options !== undefined) body.stream_options = undefined;
    if (messagesJson === undefined) return JSON.stringify(body);
    // The prompt is already serialised (the same text the audit HMACs): splice it in as the last
    // member rather than stringify 4 KB of prompt a second time. `body` always has `model`.
    const rest = JSON.stringify(body);
    return `${rest.slice(0, -1)},"messages":${messagesJson}}`;
  }

  async function send(request: UpstreamRequest, stream: boolean): Promise<UpstreamResponse> {
    const headers = await headersFor(request, stream);
    if (request.signal.aborted) throw upstreamFailure(undefined, request.signal, name);
    let res: UpstreamResponse;
    try {
      res = await pool.request({ method: 'POST', path, headers, body: bodyFor(request, stream), signal: request.signal });
    } catch (err) {
      throw upstreamFailure(err, request.signal, name);
    }
    if (res.statusCode >= 300) {
      // Discard the body unread: it may quote the prompt back.
      discard(res);
      throw new WardenError('upstream_error', `provider ${name} answered HTTP ${res.statusCode}`, {
        details: { provider: name, status: res.statusCode },
      });
    }
    return res;
  }

  return {
    name,

    async complete(request: UpstreamRequest): Promise<CompletionResult> {
      const res = await send(request, false);
      let bytes: Buffer;
      const declared = Number(res.headers['content-length']);
      if (declared >= 0 && declared <= maxResponseBytes) {
        // The size is known and within the limit (undici fails a body longer than it declared):
        // read it in one go, without an async iterator over the stream.
        try {
          bytes = Buffer.from(await res.body.arrayBuffer());
        } catch (err) {
          throw upstreamFailure(err, request.signal, name);
        }
      } else {
        const parts: Buffer[] = [];
        let size = 0;
        try {
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            size += chunk.length;
            if (size > maxResponseBytes) {
              abandon(res);
              throw invalid(name, 'a response larger than the limit');
            }
            parts.push(chunk);
          }
        } catch (err) {
          throw upstreamFailure(err, request.signal, name);
        }
        bytes = Buffer.concat(parts, size);
      }
      let json: unknown;
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch {
        throw invalid(name, 'a body that is not JSON');
      }
      const simple = parseSimpleCompletion(json);
      if (simple) return simple as CompletionResult;
      const parsed = CompletionSchema.safeParse(json);
      if (!parsed.success) throw invalid(name, 'a body that is not a chat completion');
      return parsed.data as CompletionResult;
    },

    async *stream(request: UpstreamRequest): AsyncIterable<CompletionChunk> {
      const res = await send(request, true);
      const contentType = String(res.headers['content-type'] ?? '');
      if (!contentType.startsWith('text/event-stream')) {
        discard(res);
        throw invalid(name, `content type ${contentType.split(';')[0] || '(none)'} instead of an event stream`);
      }
      const parser = new SseParser(maxEventChars);
      const decoder = new TextDecoder('utf-8');
      let done = false;
      let finished = false;
      try {
        for await (const buf of res.body as AsyncIterable<Buffer>) {
          // After [DONE], drain what is left (normally nothing) so the keep-alive connection
          // returns to the pool instead of being torn down.
          if (done) continue;
          let events;
          try {
            events = parser.push(decoder.decode(buf, { stream: true }));
          } catch (err) {
            throw upstreamFailure(err, request.signal, name);
          }
          for (const event of events) {
            if (event.data === '[DONE]') {
              done = true;
              break;
            }
            let json: unknown;
            try {
              json = JSON.parse(event.data);
            } catch {
              throw invalid(name, 'a stream event that is not JSON');
            }
            const parsed = ChunkSchema.safeParse(json);
            if (!parsed.success) {
              const isError = typeof json === 'object' && json !== null && 'error' in json;
              throw invalid(name, isError ? 'an error in the stream' : 'a stream event that is not a chat completion chunk');
            }
            const chunk = parsed.data as CompletionChunk;
            if (chunk.choices.some((c) => c.finish_reason !== null)) finished = true;
            yield chunk;
          }
        }
        if (!done) {
          // Some compatible servers omit [DONE]; a stream that reached a finish_reason is whole.
          const { truncated } = parser.end();
          if (truncated || !finished) throw invalid(name, 'a stream that ended early');
          done = true;
        }
      } catch (err) {
        throw upstreamFailure(err, request.signal, name);
      } finally {
        // Consumer stopped early or something failed: close the upstream request (and its socket)
        // now rather than reading an answer nobody will see.
        if (!done) abandon(res);
      }
    },

    async close() {
      await pool.close();
    },
  };
}
