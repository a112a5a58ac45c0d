/**
 * Request deadlines of one length (an upstream call's `upstream_timeout_ms`) on one timer.
 *
 * Every request used to set a timer of its own and clear it when its call settled. When requests
 * do not overlap (a sidecar's usual load), each such timer was the only one of its length: Node
 * made a timer list for it, queued the list, armed libuv's timer, and undid all of it a moment
 * later. Deadlines of one length expire in the order they were set, so they can wait in one list
 * in that order, with one timer for the earliest: setting one is an append, releasing one an
 * unlink, and the timer is armed again only when it fires (once per deadline length at most,
 * while requests keep coming). Measured on the gateway benchmark together with the body timer
 * (server/http.ts): a few microseconds of CPU per request.
 */
import { performance } from 'node:perf_hooks';

/** A deadline waiting in its list. */
interface Pending {
  /** performance.now() when it expires. */
  readonly at: number;
  fire: (() => void) | undefined;
  prev: Pending | undefined;
  next: Pending | undefined;
}

/**
 * Node may run a timer up to a millisecond before performance.now() says its time has come (it
 * counts from the event loop's cached clock): a deadline that close is due, not re-armed for.
 */
const EARLY_MS = 1;

class DeadlineList {
  private head: Pending | undefined;
  private tail: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** `expire` is running: it arms the timer once at its end, for whatever is then first. */
  private expiring = false;

  constructor(private readonly ms: number) {}

  add(fire: () => void): Pending {
    const pending: Pending = { at: performance.now() + this.ms, fire, prev: this.tail, next: undefined };
    if (this.tail) this.tail.next = pending;
    else this.head = pending;
    this.tail = pending;
    // A timer already set fires for an earlier deadline (or one since released) and re-arms.
    if (this.timer === undefined && !this.expiring) this.arm(this.ms);
    return pending;
  }

  /** Takes `pending` out unfired; nothing for one that fired or was removed already. */
  remove(pending: Pending): void {
    if (pending.fire === undefined) return;
    pending.fire = undefined;
    if (pending.prev) pending.prev.next = pending.next;
    else this.head = pending.next;
    if (pending.next) pending.next.prev = pending.prev;
    else this.tail = pending.prev;
    pending.prev = pending.next = undefined;
  }

  private arm(delay: number): void {
    // Never keeps the process up: a deadline only matters to a request still running.
    this.timer = setTimeout(this.expire, delay).unref();
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    this.expiring = true;
    try {
      const now = performance.now();
      for (let p = this.head; p !== undefined && p.at <= now + EARLY_MS; p = this.head) {
        const fire = p.fire!;
        this.remove(p);
        // A deadline's work (aborting its call) may release or set others: the list is read anew.
        fire();
      }
    } finally {
      // Also after a deadline's work threw: the ones after it still need the timer.
      this.expiring = false;
      if (this.head) this.arm(Math.max(1, Math.ceil(this.head.at - performance.now())));
    }
  };
}

/** One list per length: a handful (the configured upstream_timeout_ms), never a caller's number. */
const lists = new Map<number, DeadlineList>();

/**
 * Calls `fire` once `ms` milliseconds have passed, unless the returned release is called first
 * (calling it again, or after `fire`, does nothing). Deadlines of each length share one timer,
 * which does not keep the process up.
 */
export function setDeadline(ms: number, fire: () => void): () => void {
  let list = lists.get(ms);
  if (list === undefined) {
    list = new DeadlineList(ms);
    lists.set(ms, list);
  }
  const pending = list.add(fire);
  const owner = list;
  return () => owner.remove(pending);
}
