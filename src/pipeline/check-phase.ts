/**
 * Work queued during this event-loop turn, done in its check phase: `run` is called for each item
 * in queue order, and one setImmediate serves the whole turn however many items it queued. Used
 * for work the caller need not wait for (metrics, the audit draft) and for checks that must wait
 * until the turn's socket reads are parsed (the request body's deadline).
 */
export function inCheckPhase<T>(run: (item: T) => void): (item: T) => void {
  let queue: T[] = [];
  const flush = () => {
    const list = queue;
    queue = [];
    for (const item of list) run(item);
  };
  return (item) => {
    if (queue.push(item) === 1) setImmediate(flush);
  };
}
