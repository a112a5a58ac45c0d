/**
 * Deadlines of one length share one timer (src/pipeline/deadlines.ts): each still fires at its
 * own time, in order, never when released, and none keeps the process up.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { describe, expect, it, vi } from 'vitest';
import { setDeadline } from '../../src/pipeline/deadlines.js';
import { REPO } from '../e2e/helpers/cli.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('setDeadline', () => {
  it('fires once its time has come, not before, and each deadline at its own time', async () => {
    const MS = 60;
    const fired: Array<[string, number]> = [];
    const t0 = performance.now();
    setDeadline(MS, () => fired.push(['a', performance.now() - t0]));
    await sleep(25);
    setDeadline(MS, () => fired.push(['b', performance.now() - t0]));
    await sleep(MS + 60);
    expect(fired.map(([name]) => name)).toEqual(['a', 'b']);
    // At its time: the one set 25 ms later fires at least 25 ms later (less Node's 1 ms rounding).
    expect(fired[0]![1]).toBeGreaterThanOrEqual(MS - 1);
    expect(fired[1]![1]).toBeGreaterThanOrEqual(MS + 25 - 2);
  });

  it('a released deadline never fires; the ones after it still do, at their time', async () => {
    const MS = 50;
    const fired: string[] = [];
    const releaseFirst = setDeadline(MS, () => fired.push('first'));
    await sleep(20);
    const t1 = performance.now();
    let secondAt = 0;
    setDeadline(MS, () => {
      fired.push('second');
      secondAt = performance.now() - t1;
    });
    releaseFirst();
    releaseFirst(); // again: nothing
    await sleep(MS + 60);
    expect(fired).toEqual(['second']);
    expect(secondAt).toBeGreaterThanOrEqual(MS - 2);
  });

  it('release after firing does nothing, and a deadline set while one fires is kept', async () => {
    const fired: string[] = [];
    let release = () => {};
    release = setDeadline(20, () => {
      fired.push('outer');
      setDeadline(20, () => fired.push('inner'));
    });
    await sleep(120);
    release();
    expect(fired).toEqual(['outer', 'inner']);
  });

  it('deadlines set from inside a firing one share the one timer (none is orphaned to re-arm on its own)', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      let fires = 0;
      const chain = () => {
        fires++;
        if (fires < 20) setDeadline(7, chain);
      };
      setDeadline(7, chain);
      await vi.waitFor(() => expect(fires).toBe(20), { timeout: 5_000, interval: 20 });
      await sleep(60);
      const armed = spy.mock.calls.filter(([, ms]) => typeof ms === 'number' && ms <= 7).length;
      // One timer armed per fire (and the first); an orphaned timer per fire re-arming would be hundreds.
      expect(armed).toBeLessThanOrEqual(fires + 2);
    } finally {
      spy.mockRestore();
    }
  });

  it('deadlines of different lengths are independent', async () => {
    const fired: string[] = [];
    setDeadline(80, () => fired.push('long'));
    setDeadline(20, () => fired.push('short'));
    await sleep(50);
    expect(fired).toEqual(['short']);
    await sleep(80);
    expect(fired).toEqual(['short', 'long']);
  });

  it('a pending deadline does not keep the process up', () => {
    // No clock: a deadline that held the process would end it with status 3 when it fired (60 s),
    // or spawnSync's kill (status null) comes first; only a process that ends by itself exits 0.
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/pipeline/deadlines.ts').then((m) => { m.setDeadline(60_000, () => process.exit(3)); })"], {
      cwd: REPO,
      timeout: 15_000,
      encoding: 'utf8',
    });
    expect(child.status, child.stderr).toBe(0);
  });
});
