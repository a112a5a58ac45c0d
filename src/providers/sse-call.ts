/**
 * One streamed upstream call, as an undici dispatch handler that is also the async iterator the
 * forward stage reads: SSE bytes in (undici's callbacks), checked chunks out (`next()`).
 *
 * Why not `pool.request()` and `for await` over its body: every SSE event then goes through a
 * BodyReadable (push, read, the stream's async iterator and its promises) before our parser sees
 * it. Here undici hands each piece of the body straight to the parser, and parsed chunks wait in
 * a small queue for the consumer. When the consumer falls behind by HIGH_WATER chunks or
 * HIGH_WATER_CHARS characters of event data, undici is asked to stop reading the socket
 * (backpressure) until the queue is drained. The check comes after queueing, so one event always
 * gets through, however big (up to the event limit).
 *
 * Ends: `[DONE]` ends the iteration at once (what is left of the body is read and dropped so the
 * keep-alive connection goes back to the pool, within the bounds of drain.ts, else the request is
 * closed); a body that ends after a finish_reason without
 * `[DONE]` is whole once every choice it began has one; anything else is `upstream_error`. A consumer that stops early (`return()`),
 * a client abort or a deadline (the request's signal) closes the upstream request. Errors are
 * delivered after the chunks parsed before them, as a generator would.
 */
import { errors, type Dispatcher } from 'undici';
import { onAbort, type CancelSignal } from '../pipeline/cancel.js';
import { WardenError } from '../pipeline/errors.js';
import type { CompletionChunk } from '../pipeline/types.js';
import { Drain } from './drain.js';
import { encodedAnswer, mediaTypeForMessage, upstreamFailure, upstreamStatusFailure } from './failure.js';
import { SseParser } from './sse.js';
import { StreamCheck } from './validate.js';

/** Parsed chunks the consumer may fall behind by before undici stops reading the socket. */
const HIGH_WATER = 64;
/**
 * Event data (characters, about bytes for the JSON of a chunk) the consumer may fall behind by
 * before undici stops reading the socket. Normal events (~100-300 bytes) reach HIGH_WATER first;
 * this bounds a stream of big events (up to 1 MiB each), which 64 chunks alone would not (64 MB).
 */
const HIGH_WATER_CHARS = 64 * 1024;

type Controller = Dispatcher.DispatchController;

export interface SseCallOptions {
  provider: string;
  signal: CancelSignal;
  maxEventChars: number;
  /** One event's data → a checked chunk; throws a WardenError for anything else. */
  decode: (data: string) => CompletionChunk;
  /** Sends the request (dispatching this call as its handler); called on the first `next()`. */
  start: (call: SseCall) => void;
  /** How many choices the request asked for (validate.ts askedChoices); 1 when absent. */
  choices?: number;
  /** Told of a 401 or 403 answer (see OpenAIProviderOptions.onAuthRefused). */
  onRefused?: (status: number) => void;
}

export class SseCall implements Dispatcher.DispatchHandler, AsyncIterableIterator<CompletionChunk> {
  private readonly opts: SseCallOptions;
  private readonly parser: SseParser;
  private readonly decoder = new TextDecoder('utf-8');
  private controller: Controller | undefined;
  /** Chunks not yet taken, from `head` on (taken slots are cleared: the memory is what is counted). */
  private queue: Array<CompletionChunk | undefined> = [];
  /** The event data length of each queued chunk (parallel to `queue`), and their sum from `head` on. */
  private sizes: number[] = [];
  private queuedChars = 0;
  private head = 0;
  private paused = false;
  private started = false;
  /** No more chunks will be queued: [DONE], a whole body, a failure, or the consumer left. */
  private ended = false;
  /** The consumer has seen the end (or left): `next()` only answers done. */
  private closed = false;
  private error: WardenError | undefined;
  /** What must hold across chunks: bounded choices and tool calls, nothing after a finish_reason, an answer before [DONE]. */
  private readonly check: StreamCheck;
  /**
   * The rest of the body is only counted, within bounds (drain.ts): after `[DONE]`, or when the
   * answer was not a stream (status or content type).
   */
  private readonly drain = new Drain();
  private waiter: { resolve: (r: IteratorResult<CompletionChunk>) => void; reject: (err: WardenError) => void } | undefined;
  private stopListening: () => void = noop;

  constructor(opts: SseCallOptions) {
    this.opts = opts;
    this.parser = new SseParser(opts.maxEventChars);
    this.check = new StreamCheck(opts.choices);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<CompletionChunk>> {
    if (!this.started) this.begin();
    if (this.head < this.queue.length) return Promise.resolve({ value: this.take(), done: false });
    if (this.ended || this.closed) return this.finish();
    if (this.waiter) return Promise.reject(new WardenError('internal', 'internal error'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The consumer stops early: close the upstream request now rather than read an answer nobody will see. */
  return(): Promise<IteratorResult<CompletionChunk>> {
    this.closed = true;
    this.queue = [];
    this.sizes = [];
    this.queuedChars = 0;
    this.head = 0;
    if (!this.ended) {
      this.ended = true;
      this.stopListening();
      this.controller?.abort(new errors.RequestAbortedError());
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  /** True once no more chunks can come (e.g. cancelled while the key was being fetched: nothing to send). */
  get over(): boolean {
    return this.ended;
  }

  /** Fails the call (once); the error reaches the consumer after the chunks queued before it. */
  fail(err: WardenError): void {
    if (this.ended) return;
    this.ended = true;
    this.error = err;
    this.stopListening();
    this.wake();
  }

  private begin(): void {
    this.started = true;
    const { signal } = this.opts;
    if (signal.aborted) {
      this.fail(upstreamFailure(undefined, signal, this.opts.provider));
      return;
    }
    this.stopListening = onAbort(signal, this.onAbort);
    this.opts.start(this);
  }

  private readonly onAbort = (): void => {
    if (this.ended) return;
    this.fail(upstreamFailure(undefined, this.opts.signal, this.opts.provider));
    this.controller?.abort(new errors.RequestAbortedError());
  };

  /** Fails on a broken stream and closes the request (the connection cannot be reused mid-body). */
  private broken(controller: Controller, err: WardenError): void {
    this.fail(err);
    controller.abort(new errors.RequestAbortedError());
  }

  private take(): CompletionChunk {
    this.queuedChars -= this.sizes[this.head]!;
    const value = this.queue[this.head]!;
    this.queue[this.head++] = undefined;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.sizes = [];
      this.queuedChars = 0;
      this.head = 0;
      if (this.paused) {
        this.paused = false;
        this.controller?.resume();
      }
    }
    return value;
  }

  private finish(): Promise<IteratorResult<CompletionChunk>> {
    this.closed = true;
    const err = this.error;
    if (err) {
      this.error = undefined;
      return Promise.reject(err);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Hands the consumer waiting in `next()` its chunk, or the end. */
  private wake(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    if (this.head < this.queue.length) {
      this.waiter = undefined;
      waiter.resolve({ value: this.take(), done: false });
    } else if (this.ended) {
      this.waiter = undefined;
      this.finish().then(waiter.resolve, waiter.reject);
    }
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    // Cancelled (or abandoned) while waiting for a connection: never send it.
    if (this.ended) controller.abort(new errors.RequestAbortedError());
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200 || this.ended) return; // 1xx: the real answer follows.
    const { provider } = this.opts;
    let err: WardenError | undefined;
    if (statusCode >= 300) {
      if (statusCode === 401 || statusCode === 403) this.opts.onRefused?.(statusCode);
      // Never the body: it may quote the prompt back.
      err = upstreamStatusFailure(provider, statusCode, headers);
    } else {
      const contentType = String(headers['content-type'] ?? '');
      // Media types are case-insensitive (RFC 9110 §8.3.1): `Text/Event-Stream` is a stream too.
      if (!contentType.trimStart().toLowerCase().startsWith('text/event-stream')) {
        err = new WardenError('upstream_error', `provider ${provider} returned content type ${mediaTypeForMessage(contentType)} instead of an event stream`, {
          details: { provider },
        });
      } else {
        err = encodedAnswer(provider, headers);
      }
    }
    if (!err) return;
    this.fail(err);
    this.drain.start(controller, headers['content-length']);
  }

  onResponseData(controller: Controller, bytes: Buffer): void {
    // After [DONE] or a failed answer: drop the rest (normally nothing) so the connection returns to the pool.
    if (this.drain.draining) {
      this.drain.take(controller, bytes.length);
      return;
    }
    if (this.ended) return;
    const { provider, signal, decode } = this.opts;
    let events;
    try {
      events = this.parser.push(this.decoder.decode(bytes, { stream: true }));
    } catch (err) {
      this.broken(controller, upstreamFailure(err, signal, provider));
      return;
    }
    for (const event of events) {
      if (event.data === '[DONE]') {
        if (this.check.answered) {
          this.ended = true;
          this.stopListening();
        } else {
          // [DONE] alone is no answer, not an empty one.
          this.fail(new WardenError('upstream_error', `provider ${provider} returned a stream with no answer`, { details: { provider } }));
        }
        // Nothing more will be queued: read (and drop) the rest at once, even if the consumer is behind.
        if (this.paused) {
          this.paused = false;
          controller.resume();
        }
        this.drain.start(controller);
        break;
      }
      let chunk: CompletionChunk;
      try {
        chunk = decode(event.data);
      } catch (err) {
        this.broken(controller, upstreamFailure(err, signal, provider));
        return;
      }
      const wrong = this.check.check(chunk);
      if (wrong !== undefined) {
        this.broken(controller, new WardenError('upstream_error', `provider ${provider} returned ${wrong}`, { details: { provider } }));
        return;
      }
      this.queue.push(chunk);
      this.sizes.push(event.data.length);
      this.queuedChars += event.data.length;
    }
    this.wake();
    if (!this.paused && !this.ended && (this.queue.length - this.head >= HIGH_WATER || this.queuedChars >= HIGH_WATER_CHARS)) {
      this.paused = true;
      controller.pause();
    }
  }

  onResponseEnd(): void {
    this.drain.stop();
    if (this.ended) return;
    // Some compatible servers omit [DONE], or end on it without the blank line; a stream whose
    // every choice reached its finish_reason is whole.
    const { truncated, done } = this.parser.end();
    if (done === true && !this.check.answered) {
      const { provider } = this.opts;
      this.fail(new WardenError('upstream_error', `provider ${provider} returned a stream with no answer`, { details: { provider } }));
      return;
    }
    if (done !== true && (truncated || !this.check.whole)) {
      const { provider } = this.opts;
      this.fail(new WardenError('upstream_error', `provider ${provider} returned a stream that ended early`, { details: { provider } }));
      return;
    }
    this.ended = true;
    this.stopListening();
    this.wake();
  }

  onResponseError(_controller: Controller | undefined, err: Error): void {
    this.drain.stop();
    this.fail(upstreamFailure(err, this.opts.signal, this.opts.provider));
  }
}

function noop(): void {}

