/**
 * The rest of a body nobody will read: an error answer, a stream that is not one, what follows
 * `[DONE]`. Reading it to its end lets the keep-alive connection go back to the pool, which is
 * worth it only within bounds: an upstream that keeps the body open (events after `[DONE]`, an
 * error page trickled a byte at a time) would otherwise hold a pooled connection for as long as it
 * likes, and a few such calls starve every later call to that provider. Past DISCARD_LIMIT bytes
 * or DRAIN_MS the request is closed instead (the connection is lost, nothing else).
 */
import { errors, type Dispatcher } from 'undici';

/** A body this small is read and dropped so its keep-alive connection is reused; a larger one closes it. */
export const DISCARD_LIMIT = 64 * 1024;
/** How long the rest of such a body may take to arrive before the request is closed. */
export const DRAIN_MS = 1_000;

/** What the drain closes: undici's controller (sse-call.ts), or a handler that closes its own request (collect.ts). */
export type Abortable = Pick<Dispatcher.DispatchController, 'abort'>;

export class Drain {
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private active = false;
  private closed = false;

  /** True from `start()` until the body ends or the request is closed. */
  get draining(): boolean {
    return this.active;
  }

  /** From now on the body is only counted; closes the request if it runs past the bounds. */
  start(controller: Abortable, declaredLength?: unknown): void {
    if (this.active) return;
    this.active = true;
    if (Number(declaredLength) > DISCARD_LIMIT) {
      this.close(controller);
      return;
    }
    this.timer = setTimeout(() => this.close(controller), DRAIN_MS);
    this.timer.unref();
  }

  /** Counts dropped bytes; closes the request past the byte bound. */
  take(controller: Abortable, length: number): void {
    this.bytes += length;
    if (this.bytes > DISCARD_LIMIT) this.close(controller);
  }

  /** The body ended or failed: nothing more to bound. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private close(controller: Abortable): void {
    this.stop();
    if (this.closed) return;
    this.closed = true;
    controller.abort(new errors.RequestAbortedError());
  }
}
