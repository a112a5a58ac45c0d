/**
 * Admission: how many requests the app listeners (HTTP, its Unix socket, gRPC) serve at once,
 * across all of them. Past `limits.max_in_flight` a new request is refused at once with
 * `overloaded` (503 / UNAVAILABLE, retry after a second) instead of queueing without bound: each
 * one in flight holds memory (an open stream ~45 KB) and an upstream connection.
 */
export class Admission {
  private active = 0;

  constructor(readonly max: number) {}

  /** Takes a place; false when all are taken (the request must then be refused). */
  tryEnter(): boolean {
    if (this.active >= this.max) return false;
    this.active++;
    return true;
  }

  /** Gives a place back: call once for every `tryEnter` that returned true. */
  leave(): void {
    this.active--;
  }

  get inFlight(): number {
    return this.active;
  }
}

/** What a refused caller is told to wait before trying again, in seconds. */
export const OVERLOADED_RETRY_AFTER_S = 1;
