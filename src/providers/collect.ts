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
 */
import { errors, type Dispatcher } from 'undici';
import { onAbort, type CancelSignal } from '../pipeline/cancel.js';
import { BytePieces } from '../pipeline/byte-pieces.js';
import { WardenError } from '../pipeline/errors.js';
import { Drain } from './drain.js';
import { encodedAnswer, upstreamFailure, upstreamStatusFailure } from './failure.js';

export { DISCARD_LIMIT } from './drain.js';

type Controller = Dispatcher.DispatchController;

export class BodyCollector<T> implements Dispatcher.DispatchHandler {
  /** Settles once: with `decode(body)`, or with a WardenError. */
  readonly promise: Promise<T>;
  private resolve!: (value: T) => void;
  private reject!: (err: WardenError) => void;
  private settled = false;
  /** Set once undici starts the request on a connection; until then it may wait in the pool's queue. */
  private controller: Controller | undefined;
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
    this.controller?.abort(new errors.RequestAbortedError());
  };

  private fail(err: WardenError): void {
    if (this.settled) return;
    this.settled = true;
    this.body.clear();
    this.stopListening();
    this.reject(err);
  }

  private tooLarge(controller: Controller): void {
    this.fail(new WardenError('upstream_error', `provider ${this.provider} returned a response larger than the limit`, { details: { provider: this.provider } }));
    controller.abort(new errors.RequestAbortedError());
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    // Cancelled while waiting for a connection: never send it.
    if (this.settled) controller.abort(new errors.RequestAbortedError());
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200 || this.settled) return; // 1xx: the real answer follows.
    const declared = Number(headers['content-length']);
    if (statusCode >= 300) {
      if (statusCode === 401 || statusCode === 403) this.onRefused?.(statusCode);
      this.fail(upstreamStatusFailure(this.provider, statusCode, headers));
      this.drain.start(controller, declared);
      return;
    }
    const encoded = encodedAnswer(this.provider, headers);
    if (encoded !== undefined) {
      // Read to its end within the drain's bounds, as a streamed call does: the keep-alive
      // connection goes back to the pool.
      this.fail(encoded);
      this.drain.start(controller, declared);
      return;
    }
    // undici fails a body longer than it declared, so a declared size over the limit can be refused now.
    if (declared > this.maxBytes) this.tooLarge(controller);
    else this.body.declare(declared);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.drain.draining) {
      this.drain.take(controller, chunk.length);
      return;
    }
    this.size += chunk.length;
    if (this.settled) return;
    if (this.size > this.maxBytes) {
      this.tooLarge(controller);
      return;
    }
    this.body.add(chunk);
  }

  onResponseEnd(): void {
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

  onResponseError(_controller: Controller | undefined, err: Error): void {
    this.drain.stop();
    this.fail(upstreamFailure(err, this.signal, this.provider));
  }
}
