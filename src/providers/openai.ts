/**
 * A provider for any OpenAI-compatible Chat Completions upstream. Warden sets the credentials
 * (`Authorization: Bearer`, from a secret ref resolved by the caller), so the application never
 * holds the key. One undici Pool per provider keeps connections alive across requests; connect,
 * headers and body timeouts bound every phase. Upstream failures become `upstream_error` /
 * `upstream_timeout` carrying the HTTP status only — never the upstream body, which may echo
 * the prompt.
 *
 * Non-streamed calls go through `pool.dispatch` with a handler of our own (collect.ts) rather than
 * `pool.request`: the per-call stream machinery of the latter is most of what a small JSON answer
 * costs. Streams keep `pool.request`, whose body stream the SSE loop reads.
 */
import { Pool, type Dispatcher } from 'undici';
import { WardenError, isWardenError } from '../pipeline/errors.js';
import type { ModelProvider } from '../pipeline/ports.js';
import type { CompletionChunk, CompletionResult, UpstreamRequest } from '../pipeline/types.js';
import { BodyCollector } from './collect.js';
import { upstreamFailure } from './failure.js';
import { SseParser } from './sse.js';
import { ChunkSchema, CompletionSchema, parseSimpleCompletion } from './validate.js';

export interface OpenAIProviderOptions {
  name: string;
  /** E.g. `https://api.openai.com/v1`; `/chat/completions` is appended. */
  baseUrl: string;
  /**
   * Resolves the API key for each call (the caller caches it within its lease). A cached key should
   * come back as the string itself, not a promise: the call then goes out synchronously (see
   * `complete`). Absent: no Authorization header.
   */
  getApiKey?: () => string | Promise<string>;
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

function hasOwnKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
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

  // The Authorization value, rebuilt only when the key changes (a rotated secret).
  let lastKey: string | undefined;
  let lastAuthorization = '';

  function keyFailure(err: unknown): WardenError {
    if (isWardenError(err)) return err;
    return new WardenError('secret_unavailable', `the API key of provider ${name} could not be resolved`, {
      details: { provider: name },
      cause: err,
    });
  }

  /** The API key: the string itself when the caller has it cached, else a promise of it; undefined when none is configured. */
  function apiKey(): string | Promise<string> | undefined {
    if (!opts.getApiKey) return undefined;
    let key: string | Promise<string>;
    try {
      key = opts.getApiKey();
    } catch (err) {
      return Promise.reject(keyFailure(err));
    }
    if (typeof key === 'string') return key;
    return key.then(undefined, (err: unknown) => {
      throw keyFailure(err);
    });
  }

  /** Request headers as undici's flat [name, value, ...] list (no per-call Object.keys over an object). */
  function headersFor(request: UpstreamRequest, stream: boolean, key: string | undefined): string[] {
    const headers = ['content-type', 'application/json', 'accept', stream ? 'text/event-stream' : 'application/json', 'user-agent', 'warden'];
    if (request.traceparent) headers.push('traceparent', request.traceparent);
    if (key !== undefined) {
      if (key !== lastKey) {
        lastAuthorization = `Bearer ${key}`;
        lastKey = key;
      }
      headers.push('authorization', lastAuthorization);
    }
    return headers;
  }

  function bodyFor(request: UpstreamRequest, stream: boolean): string {
    const { messagesJson, params } = request;
    if (messagesJson !== undefined && !hasOwnKeys(params) && !(request.tools && request.tools.length > 0)) {
      // The common request (no passthrough parameters, no tools), written directly: the same text
      // as the general path below, without building and copying an object first.
      let head = `{"model":${JSON.stringify(request.model)},"stream":${stream}`;
      if (request.max_tokens !== undefined) head += `,"max_tokens":${JSON.stringify(request.max_tokens)}`;
      if (stream) head += ',"stream_options":{"include_usage":true}';
      return `${head},"messages":${messagesJson}}`;
    }
    // Passthrough parameters first, so they can never override what Warden decided.
    const body: Record<string, unknown> = { ...params, model: request.model, stream };
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

  /** A whole response body → the checked completion; throws `upstream_error` for anything else. */
  function decodeCompletion(bytes: Buffer): CompletionResult {
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
  }

  /** Sends a non-streamed call now (synchronously) and returns the promise of its result. */
  function startCompletion(request: UpstreamRequest, key: string | undefined): Promise<CompletionResult> {
    const { signal } = request;
    if (signal.aborted) return Promise.reject(upstreamFailure(undefined, signal, name));
    try {
      const call = new BodyCollector(name, signal, maxResponseBytes, decodeCompletion);
      // With a connected idle socket, undici writes the request before dispatch() returns;
      // otherwise it waits in the pool's queue. Either way the result comes through `call`.
      pool.dispatch({ method: 'POST', path, headers: headersFor(request, false, key), body: bodyFor(request, false) }, call);
      return call.promise;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async function send(request: UpstreamRequest, stream: boolean): Promise<UpstreamResponse> {
    const pending = apiKey();
    const headers = headersFor(request, stream, typeof pending === 'object' ? await pending : pending);
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

    /**
     * Not an async function, on purpose: when the key is cached (the usual case) the call is
     * dispatched to undici before this returns, so `forward.run()` returns with the request already
     * queued on a connection, and the pipeline's audit work done after it (the prompt HMAC) overlaps
     * the upstream's processing instead of delaying the send. An awaited key would put that work
     * before the dispatch. Note: on a reused keep-alive socket undici 7 writes the bytes in the
     * next check phase, not inside dispatch() (its idle-socket validation, GHSA-35p6-xmwp-9g52),
     * so "dispatched" here means queued, not yet on the wire.
     */
    complete(request: UpstreamRequest): Promise<CompletionResult> {
      const key = apiKey();
      if (typeof key === 'object') return key.then((k) => startCompletion(request, k));
      return startCompletion(request, key);
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
