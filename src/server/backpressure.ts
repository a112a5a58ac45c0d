/**
 * Waiting out backpressure on a streamed answer, the same for every ingress: until the stream can
 * take more (`drain`), the client is gone (`close` on an HTTP response, `cancelled` on a gRPC
 * call), or the request's signal aborts. Without the last, a client that stops reading would hold
 * its stream, its place under max_in_flight and its audit record past the upstream deadline, for
 * as long as it keeps the connection open.
 */
import type { EventEmitter } from 'node:events';
import { onAbort, type CancelSignal } from '../pipeline/cancel.js';

/** Resolves true when `stream` drained, false when the client went away (`goneEvent`) or the request is over. */
export function whenWritable(stream: EventEmitter, goneEvent: 'close' | 'cancelled', signal: CancelSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (writable: boolean) => {
      stream.off('drain', onDrain);
      stream.off(goneEvent, onEnd);
      stopListening();
      resolve(writable);
    };
    const onDrain = () => done(true);
    const onEnd = () => done(false);
    stream.once('drain', onDrain);
    stream.once(goneEvent, onEnd);
    const stopListening = onAbort(signal, onEnd);
  });
}

/**
 * Closes `stream`'s connection if it has not finished within `ms` (a client that does not take
 * what it was sent); nothing to do for one that already has. The timer never keeps the process up.
 */
export function closeUnlessFinishedWithin(stream: { writableFinished: boolean; destroyed: boolean; destroy(): void } & EventEmitter, ms: number): void {
  if (stream.writableFinished || stream.destroyed) return;
  const timer = setTimeout(() => stream.destroy(), ms);
  timer.unref();
  stream.once('close', () => clearTimeout(timer));
}
