import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { RunningRequests } from '../../src/server/running.js';

describe('RunningRequests', () => {
  it('cancels exactly the requests still tracked, in any order of removal', () => {
    const running = new RunningRequests();
    const got: string[] = [];
    const entries = ['a', 'b', 'c', 'd'].map((name) => running.add((reason) => got.push(`${name}:${String(reason)}`)));
    running.remove(entries[0]!); // the oldest (the list's tail)
    running.remove(entries[3]!); // the newest (its head)
    running.remove(entries[3]!); // twice: nothing
    expect(running.size).toBe(2);
    running.cancelAll(() => 'bye');
    expect(got.sort()).toEqual(['b:bye', 'c:bye']);
  });

  it('a request that removes itself (or another) while being cancelled does not stop the others', () => {
    const running = new RunningRequests();
    const got: string[] = [];
    const entries: ReturnType<RunningRequests['add']>[] = [];
    for (const name of ['a', 'b', 'c']) {
      entries.push(
        running.add(() => {
          got.push(name);
          for (const e of entries) running.remove(e);
        }),
      );
    }
    running.cancelAll(() => undefined);
    expect(got.sort()).toEqual(['a', 'b', 'c']);
    expect(running.size).toBe(0);
    // Empty again: a new request is tracked alone.
    running.add(() => got.push('d'));
    running.cancelAll(() => undefined);
    expect(got).toContain('d');
  });

  it('track: the source event aborts with its reason, unless the reason is undefined; dispose stops both ways in', () => {
    const running = new RunningRequests();
    const client = new EventEmitter();
    let finished = false;
    const t = running.track(client, 'close', () => (finished ? undefined : 'gone'));
    expect(running.size).toBe(1);
    finished = true;
    client.emit('close'); // a close after the answer finished: no departure
    expect(t.signal.aborted).toBe(false);
    finished = false;
    client.emit('close');
    expect(t.signal.reason).toBe('gone');
    t.dispose();
    expect(running.size).toBe(0);
    expect(client.listenerCount('close')).toBe(0);

    // cancel and the shutdown deadline reach a tracked request's signal; once disposed, neither does.
    const a = running.track(new EventEmitter(), 'cancelled', () => 'x');
    a.cancel('deadline');
    expect(a.signal.reason).toBe('deadline');
    const b = running.track(new EventEmitter(), 'cancelled', () => 'x');
    const c = running.track(new EventEmitter(), 'cancelled', () => 'x');
    c.dispose();
    running.cancelAll(() => 'shutting down');
    expect(b.signal.reason).toBe('shutting down');
    expect(c.signal.aborted).toBe(false);
  });
});
