/**
 * One non-streamed upstream call, as an undici dispatch handler: collects the response body into
 * memory (up to a limit) and settles one promise with the decoded result.
 *
 * Why not `pool.request()` + `body.arrayBuffer()`: that path builds, per call, a RequestHandler
 * (an AsyncResource), a BodyReadable stream with its listeners and nextTicks, and an abort
 * listener inside undici; a whole response here is one or two chunks, and all we need is the
 * bytes. The handler below is the only object undici calls back.
 *
 * Failures are mapped by `upstreamFailure` (the request's signal decides first: `cancelled` or
 * `upstream_timeout`), and a non-2xx answer fails with its status only: its body, which may quote
 * the prompt back, is counted and dropped, never kept or surfaced.
 *
 * The handler speaks the callbacks undici 7's HTTP/1.1 client calls itself (onConnect, onHeaders,
 * onData, onComplete, onError), not the controller API (onRequestStart, onResponseStart, ...):
 * given one of those, undici wraps the handler in an adapter per call that makes a controller and
 * turns the raw headers into an object twice (the answer's and its trailers'), ~1.5 µs per call in
 * a microbenchmark, where the answer needs two of its headers. The whole header object is made
 * only for an answer that fails (its status, an encoding) from the same undici helper.
 */
import { errors, util, type Dispatcher } from 'undici';
import { onAbort, type CancelSignal } from '../pipeline/cancel.js';
import { BytePieces } from '../pipeline/byte-pieces.js';
import { WardenError } from '../pipeline/errors.js';
import { Drain } from './drain.js';
import { encodedAnswer, upstreamFailure, upstreamStatusFailure } from './failure.js';

export { DISCARD_LIMIT } from './drain.js';

/**
 * The value `util.parseHeaders` gives the lower-case `name` in undici's raw header list (each
 * value read as latin1, an array when the name repeats), without making the whole object.
 */
function rawHeader(raw: readonly (Buffer | string)[], name: string): string | string[] | undefined {
  let out: string | string[] | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length !== name.length || util.headerNameToString(k) !== name) continue;
    const v = raw[i + 1]!;
    const value = typeof v === 'string' ? v : v.toString('latin1');
    if (out === undefined) out = value;
    else if (typeof out === 'string') out = [out, value];
    else out.push(value);
  }
  return out;
}

export class BodyCollector<T> implements Dispatcher.DispatchHandler {
  /** Settles once: with `decode(body)`, or with a WardenError. */
  readonly promise: Promise<T>;
  private resolve!: (value: T) => void;
  private reject!: (err: WardenError) => void;
  private settled = false;
  /** Set once undici starts the request on a connection; until then it may wait in the pool's queue. */
  private abortRequest: ((err: Error) => void) | undefined;
  private aborted = false;
  /** The body so far, as one buffer however many pieces it comes in (see BytePieces). */
  private readonly body: BytePieces;
  private size = 0;
  /** The answer was not 2xx: the call has failed, the rest of the body is only counted (within bounds). */
  private readonly drain = new Drain();
  private readonly stopListening: () => void;

  constructor(
    private readonly provider: string,
    private readonly signal: CancelSignal,
    private readonly maxBytes: number,
    private readonly decode: (body: Buffer) => T,
    /** Told of a 401 or 403 answer (see OpenAIProviderOptions.onAuthRefused). */
    private readonly onRefused?: (status: number) => void,
  ) {
    this.body = new BytePieces(maxBytes);
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // The caller checked `signal.aborted` before dispatching.
    this.stopListening = onAbort(signal, this.onAbort);
  }

  /** Client gone or upstream deadline: fail now (even while still queued) and close the request. */
  private readonly onAbort = (): void => {
    this.fail(upstreamFailure(undefined, this.signal, this.provider));
    if (this.abortRequest) this.abort(new errors.RequestAbortedError());
  };

  /** Closes the request, once (the drain and the size limit call it too); a no-op until it started. */
  abort(reason: Error): void {
    if (this.aborted || !this.abortRequest) return;
    this.aborted = true;
    this.abortRequest(reason);
  }

  private fail(err: WardenError): void {
    if (this.settled) return;
    this.settled = true;
    this.body.clear();
    this.stopListening();
    this.reject(err);
  }

  private tooLarge(): void {
    this.fail(new WardenError('upstream_error', `provider ${this.provider} returned a response larger than the limit`, { details: { provider: this.provider } }));
    this.abort(new errors.RequestAbortedError());
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortRequest = abort;
    // Cancelled while waiting for a connection: never send it.
    if (this.settled) this.abort(new errors.RequestAbortedError());
  }

  /** Returns true: the body is never paused (undici reads on). */
  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200 || this.settled) return true; // 1xx: the real answer follows.
    const declared = Number(rawHeader(rawHeaders, 'content-length'));
    if (statusCode >= 300) {
      if (statusCode === 401 || statusCode === 403) this.onRefused?.(statusCode);
      this.fail(upstreamStatusFailure(this.provider, statusCode, util.parseHeaders(rawHeaders)));
      this.drain.start(this, declared);
      return true;
    }
    const encoded = rawHeader(rawHeaders, 'content-encoding') === undefined ? undefined : encodedAnswer(this.provider, util.parseHeaders(rawHeaders));
    if (encoded !== undefined) {
      // Read to its end within the drain's bounds, as a streamed call does: the keep-alive
      // connection goes back to the pool.
      this.fail(encoded);
      this.drain.start(this, declared);
      return true;
    }
    // undici fails a body longer than it declared, so a declared size over the limit can be refused now.
    if (declared > this.maxBytes) this.tooLarge();
    else this.body.declare(declared);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.drain.draining) {
      this.drain.take(this, chunk.length);
      return true;
    }
    this.size += chunk.length;
    if (this.settled) return true;
    if (this.size > this.maxBytes) {
      this.tooLarge();
      return true;
    }
    this.body.add(chunk);
    return true;
  }

  onComplete(): void {
    this.drain.stop();
    if (this.settled) return;
    this.settled = true;
    this.stopListening();
    // Usually one chunk: no copy then.
    const body = this.body.take();
    let value: T;
    try {
      value = this.decode(body);
    } catch (err) {
      this.reject(upstreamFailure(err, this.signal, this.provider));
      return;
    }
    this.resolve(value);
  }

  onError(err: Error): void {
    this.drain.stop();
    this.fail(upstreamFailure(err, this.signal, this.provider));
  }
}
