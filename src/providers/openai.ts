/**
 * A provider for any OpenAI-compatible Chat Completions upstream. Warden sets the credentials
 * (`Authorization: Bearer`, from a secret ref resolved by the caller), so the application never
 * holds the key. One undici Pool per provider keeps connections alive across requests; connect,
 * headers and body timeouts bound every phase. Upstream failures become `upstream_error` /
 * `upstream_timeout` carrying the HTTP status only — never the upstream body, which may echo
 * the prompt.
 *
 * Calls go through `pool.dispatch` with handlers of our own (collect.ts for a whole JSON answer,
 * sse-call.ts for a stream) rather than `pool.request`: the per-call stream machinery of the
 * latter (a BodyReadable and its async iterator) is most of what a small answer or an SSE event
 * costs.
 */
import { Pool } from 'undici';
import { WardenError, isWardenError } from '../pipeline/errors.js';
import { bytesNestDeeperThan, DEFAULT_MAX_JSON_DEPTH, DEPTH_SCAN_MIN_BYTES, textNestsDeeperThan, tooDeepAt } from '../pipeline/json-depth.js';
import type { ModelProvider, PoolLoad } from '../pipeline/ports.js';
import type { CompletionChunk, CompletionResult, UpstreamRequest } from '../pipeline/types.js';
import { apiKeyProblem } from './api-key.js';
import { bodyBuffer } from './body-slab.js';
import { BodyCollector } from './collect.js';
import { upstreamFailure } from './failure.js';
import { SseCall } from './sse-call.js';
import { answerFault, askedChoices, CompletionSchema, parseChunk, parseSimpleCompletion, unaskedChoice } from './validate.js';
import { MIB } from '../pipeline/sizes.js';

export interface OpenAIProviderOptions {
  name: string;
  /** E.g. `https://api.openai.com/v1`; `/chat/completions` is appended. */
  baseUrl: string;
  /**
   * Resolves the API key for each call (the caller caches it within its lease). A cached key should
   * come back as the string itself, not a promise: the call is then dispatched synchronously (see
   * `complete`). Absent: no Authorization header.
   */
  getApiKey?: () => string | Promise<string>;
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number };
  /**
   * Most connections to this upstream, so most calls to it at once; further calls wait in the
   * pool's queue for a connection (within their deadline). Absent: no limit of its own, the
   * caller bounds the calls (Warden's registry passes `limits.max_in_flight` by default).
   */
  connections?: number;
  /**
   * Called when a call waits for a connection (every one is busy). Checked only when undici's
   * dispatch says no connection is left free, so it costs nothing otherwise; rate-limit any
   * logging in it.
   */
  onSaturated?: () => void;
  /**
   * How long an idle connection is kept for reuse when the upstream sends no `Keep-Alive: timeout=`
   * hint (undici follows a hint when there is one). Default DEFAULT_KEEP_ALIVE_MS.
   */
  keepAliveMs?: number;
  /**
   * Told why the API key could not be used (the ref's failure, or why the key cannot go in a
   * header): value-free, for the log. The caller is only told the key is unavailable. Called on
   * every failing call: rate-limit any logging in it.
   */
  onKeyFailure?: (reason: string) => void;
  /**
   * Told when the upstream answers 401 or 403: it refused Warden's credentials (the API key) or
   * their access to the model. The caller is only told `upstream_error` with the status, which it
   * cannot act on; this is for the operator's log. Called on every such answer: rate-limit any
   * logging in it.
   */
  onAuthRefused?: (status: number) => void;
  /** Largest non-streaming response body accepted. Default 16 MiB. */
  maxResponseBytes?: number;
  /** Largest single SSE event accepted. Default 1 MiB. */
  maxEventBytes?: number;
}

/**
 * Below common servers' idle timeouts (uvicorn 5 s, Node 5 s, nginx 75 s), which often come with
 * no Keep-Alive hint: a connection the server has closed, or is closing, must not be reused, or
 * the call sent on it fails with a reset.
 */
export const DEFAULT_KEEP_ALIVE_MS = 4_000;

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
  const maxResponseBytes = opts.maxResponseBytes ?? 16 * MIB;
  const maxEventChars = opts.maxEventBytes ?? MIB;
  const onSaturated = opts.onSaturated ?? noop;
  /** After a dispatch that left no connection free: tells onSaturated when a call is waiting. */
  const queuedCall = (): void => {
    if (pool.stats.queued > 0) onSaturated();
  };
  const pool = new Pool(url.origin, {
    // null: undici opens a connection for every concurrent call (no queue of its own).
    connections: opts.connections ?? null,
    connectTimeout: opts.timeouts?.connectMs ?? 5_000,
    headersTimeout: opts.timeouts?.headersMs ?? 60_000,
    bodyTimeout: opts.timeouts?.bodyMs ?? 300_000,
    keepAliveTimeout: opts.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
  });

  const keySetting = `providers.${name}.api_key`;

  /**
   * The caller's error when the key cannot be used: it names the config key only. The app is not
   * meant to know about the key at all, let alone where Warden keeps it (a `file:` ref is an
   * absolute path by now); the reason, which may name the ref, goes to the log.
   */
  function keyFailure(err: unknown): WardenError {
    // Only our own errors carry a message we know to be value-free.
    opts.onKeyFailure?.(isWardenError(err) ? err.message : `the key could not be resolved (${err instanceof Error ? err.constructor.name : typeof err})`);
    return new WardenError('secret_unavailable', `the API key of provider ${name} (${keySetting}) is unavailable`, {
      details: { provider: name, config_key: keySetting },
      cause: err,
    });
  }

  /** The caller's error for a key that cannot go in a header (see apiKeyProblem). */
  function unusable(problem: string): WardenError {
    return keyFailure(new WardenError('secret_unavailable', `${keySetting}: the API key ${problem}`));
  }

  /**
   * The API key: the string itself when the caller has it cached, else a promise of it; undefined
   * when none is configured. Checked on every call, not remembered as checked: the key must not
   * outlive its lease in the secret cache (the check is a pass over a few dozen characters).
   */
  function apiKey(): string | Promise<string> | undefined {
    if (!opts.getApiKey) return undefined;
    let key: string | Promise<string>;
    try {
      key = opts.getApiKey();
    } catch (err) {
      return Promise.reject(keyFailure(err));
    }
    if (typeof key === 'string') {
      const problem = apiKeyProblem(key);
      return problem === undefined ? key : Promise.reject(unusable(problem));
    }
    return key.then(
      (value) => {
        const problem = apiKeyProblem(value);
        if (problem !== undefined) throw unusable(problem);
        return value;
      },
      (err: unknown) => {
        throw keyFailure(err);
      },
    );
  }

  /** Request headers as undici's flat [name, value, ...] list (no per-call Object.keys over an object). */
  function headersFor(request: UpstreamRequest, stream: boolean, key: string | undefined): string[] {
    // identity: Warden does not decode bodies, and without accept-encoding any coding is acceptable (RFC 9110 §12.5.3).
    const headers = ['content-type', 'application/json', 'accept', stream ? 'text/event-stream' : 'application/json', 'accept-encoding', 'identity', 'user-agent', 'warden'];
    if (request.traceparent) headers.push('traceparent', request.traceparent);
    // Built per call, not memoised: the key must not outlive its lease in the secret cache.
    if (key !== undefined) headers.push('authorization', `Bearer ${key}`);
    return headers;
  }

  function bodyFor(request: UpstreamRequest, stream: boolean): string | Buffer {
    const { messagesJson, params } = request;
    if (messagesJson !== undefined && !hasOwnKeys(params) && !(request.tools && request.tools.length > 0)) {
      // The common request (no passthrough parameters, no tools), written directly: the same text
      // as the general path below, without building and copying an object first.
      let head = `{"model":${JSON.stringify(request.model)},"stream":${stream}`;
      if (request.max_tokens !== undefined) head += `,"${request.max_tokens_param ?? 'max_tokens'}":${JSON.stringify(request.max_tokens)}`;
      if (stream) head += ',"stream_options":{"include_usage":true}';
      return utf8Body(`${head},"messages":`, messagesJson, '}');
    }
    // Passthrough parameters first, so they can never override what Warden decided.
    const body: Record<string, unknown> = { ...params, model: request.model, stream };
    if (messagesJson === undefined) body.messages = request.messages;
    if (request.tools && request.tools.length > 0) body.tools = request.tools;
    // Under the caller's own name: reasoning models refuse `max_tokens`, older ones may not know the other.
    if (request.max_tokens !== undefined) body[request.max_tokens_param ?? 'max_tokens'] = request.max_tokens;
    if (stream) body.stream_options = streamOptions(params['stream_options']);
    else if (body.stream_options !== undefined) body.stream_options = undefined;
    if (messagesJson === undefined) return JSON.stringify(body);
    // The prompt is already serialised (the same text the audit HMACs): splice it in as the last
    // member rather than stringify 4 KB of prompt a second time. `body` always has `model`.
    const rest = JSON.stringify(body);
    return `${rest.slice(0, -1)},"messages":${messagesJson}}`;
  }

  /**
   * The request body's UTF-8 bytes, written piece by piece into one buffer. Handed a string,
   * undici would first copy the joined text into a flat string and then encode that into a
   * buffer; the prompt (several KB) is encoded once here instead, straight from its own text.
   */
  function utf8Body(head: string, prompt: string, tail: string): Buffer {
    const headBytes = Buffer.byteLength(head);
    const promptBytes = Buffer.byteLength(prompt);
    const out = bodyBuffer(headBytes + promptBytes + Buffer.byteLength(tail));
    out.write(head, 0);
    out.write(prompt, headBytes);
    out.write(tail, headBytes + promptBytes);
    return out;
  }

  /** A whole response body → the checked completion; throws `upstream_error` for anything else. */
  function decodeCompletion(bytes: Buffer): CompletionResult {
    // A large body is scanned for its depth before JSON.parse, as a request's is (server/http.ts
    // parseJson): 16 MiB of `[` (maxResponseBytes) held the event loop, every request with it,
    // for seconds before the walk below could refuse it.
    if (bytes.length > DEPTH_SCAN_MIN_BYTES && bytesNestDeeperThan(bytes, DEFAULT_MAX_JSON_DEPTH)) {
      throw invalid(name, `a body nested deeper than ${DEFAULT_MAX_JSON_DEPTH} levels`);
    }
    let json: unknown;
    try {
      // A UTF-8 byte order mark is no part of the JSON text: RFC 8259 §8.1 lets a parser ignore
      // it, and the openai SDK does (fetch's json()), so an app calling such an upstream itself
      // reads its answers. (A stream's is dropped by its TextDecoder.)
      const from = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
      json = JSON.parse(bytes.toString('utf8', from));
    } catch {
      throw invalid(name, 'a body that is not JSON');
    }
    const simple = parseSimpleCompletion(json);
    if (simple) return simple as CompletionResult;
    // The simple shape above holds scalars only; here content parts pass through as they came,
    // and one nested beyond reason would overflow the stack where the answer is redacted and
    // written out (a 500 `internal` instead of the upstream's fault).
    if (tooDeepAt(json, DEFAULT_MAX_JSON_DEPTH)) throw invalid(name, `a body nested deeper than ${DEFAULT_MAX_JSON_DEPTH} levels`);
    const parsed = CompletionSchema.safeParse(json);
    if (!parsed.success) throw invalid(name, answerFault(json, false) ?? 'a body that is not a chat completion');
    return parsed.data as CompletionResult;
  }

  /** A decoded completion whose choices are all ones the request asked for (see askedChoices). */
  function askedFor(result: CompletionResult, asked: number): CompletionResult {
    for (const c of result.choices) {
      const unasked = unaskedChoice(c.index, asked);
      if (unasked !== undefined) throw invalid(name, unasked);
    }
    return result;
  }

  /** Sends a non-streamed call now (synchronously) and returns the promise of its result. */
  function startCompletion(request: UpstreamRequest, key: string | undefined): Promise<CompletionResult> {
    const { signal } = request;
    if (signal.aborted) return Promise.reject(upstreamFailure(undefined, signal, name));
    try {
      const asked = askedChoices(request.params);
      const call = new BodyCollector(name, signal, maxResponseBytes, (bytes) => askedFor(decodeCompletion(bytes), asked), opts.onAuthRefused);
      // With a connected idle socket, undici writes the request before dispatch() returns;
      // otherwise it waits in the pool's queue. Either way the result comes through `call`.
      // false: this call took the last free connection (or waits for one); only a call that
      // waits is news (at the default, max_in_flight refuses the next one first).
      if (!pool.dispatch({ method: 'POST', path, headers: headersFor(request, false, key), body: bodyFor(request, false) }, call)) queuedCall();
      return call.promise;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** One event's data → the checked chunk; throws `upstream_error` for anything else. */
  function decodeChunk(data: string): CompletionChunk {
    // As a body (decodeCompletion): an event may be up to maxEventBytes.
    if (data.length > DEPTH_SCAN_MIN_BYTES && textNestsDeeperThan(data, DEFAULT_MAX_JSON_DEPTH)) {
      throw invalid(name, `a stream event nested deeper than ${DEFAULT_MAX_JSON_DEPTH} levels`);
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      throw invalid(name, 'a stream event that is not JSON');
    }
    // An event with an `error` is the upstream's failure, as OpenAI's SDKs read it (they throw on
    // any event whose `error` is set), even when it also has a chunk's members: OpenRouter reports
    // a generation that failed mid-stream so (`error` beside a choice with finish_reason "error").
    // Passed on as a chunk, the error was dropped and the stream audited ok.
    if ((json as { error?: unknown } | null)?.error) throw invalid(name, 'an error in the stream');
    const chunk = parseChunk(json);
    if (chunk === undefined) {
      const isError = typeof json === 'object' && json !== null && 'error' in json;
      throw invalid(name, isError ? 'an error in the stream' : (answerFault(json, true) ?? 'a stream event that is not a chat completion chunk'));
    }
    return chunk;
  }

  /** Sends a streamed call with `call` as its handler (the key is known by now). */
  function startStream(request: UpstreamRequest, key: string | undefined, call: SseCall): void {
    if (call.over) return;
    try {
      if (!pool.dispatch({ method: 'POST', path, headers: headersFor(request, true, key), body: bodyFor(request, true) }, call)) queuedCall();
    } catch (err) {
      call.fail(upstreamFailure(err, request.signal, name));
    }
  }

  return {
    name,

    /**
     * Not an async function, on purpose: when the key is cached (the usual case) the call is
     * dispatched to undici before this returns, so `forward.run()` returns with the request already
     * queued on a connection. On a reused keep-alive socket undici 7 writes the bytes from a
     * setImmediate (its idle-socket validation, GHSA-35p6-xmwp-9g52), so "dispatched" means
     * queued; the pipeline queues the audit stage's draft behind that immediate, so the draft
     * overlaps the upstream's processing instead of delaying the send. An awaited key would queue
     * the request after the draft.
     */
    complete(request: UpstreamRequest): Promise<CompletionResult> {
      const key = apiKey();
      if (typeof key === 'object') return key.then((k) => startCompletion(request, k));
      return startCompletion(request, key);
    },

    /** The request goes out on the first `next()` (as a generator's body would start), with the same synchronous key path as `complete`. */
    stream(request: UpstreamRequest): AsyncIterable<CompletionChunk> {
      return new SseCall({
        provider: name,
        signal: request.signal,
        maxEventChars,
        decode: decodeChunk,
        choices: askedChoices(request.params),
        onRefused: opts.onAuthRefused,
        start(call) {
          const key = apiKey();
          if (typeof key === 'object') key.then((k) => startStream(request, k, call), (err: WardenError) => call.fail(err));
          else startStream(request, key, call);
        },
      });
    },

    poolLoad(): PoolLoad {
      const stats = pool.stats;
      return { active: stats.running, queued: stats.queued, limit: opts.connections };
    },

    /**
     * Destroys the pool rather than closing it gracefully: the runtime closes its providers once
     * every request has ended (drained, or cut by the shutdown deadline, which aborts its call).
     * What undici may still hold then is no one's: a connect for a call already aborted (undici
     * cannot drop one mid-connect; it aborts it once connected), which a graceful close waited for
     * up to `timeouts.connect_ms` (a TLS handshake the upstream never answers), or a body being
     * dropped (drain.ts).
     */
    async close() {
      await pool.destroy();
    },
  };
}

/**
 * The upstream's stream_options: usage always (the audit record carries it; the caller's
 * `include_usage` only decides whether its chunk is passed on), and the caller's
 * `include_obfuscation` as set. Those are the members OpenAI documents; ingress refuses any other
 * (server/stream-options.ts), so nothing the caller asked for is dropped here.
 */
function streamOptions(caller: unknown): { include_usage: true; include_obfuscation?: boolean } {
  const obfuscation = (caller as { include_obfuscation?: unknown } | null | undefined)?.include_obfuscation;
  return typeof obfuscation === 'boolean' ? { include_usage: true, include_obfuscation: obfuscation } : { include_usage: true };
}

function noop(): void {}
