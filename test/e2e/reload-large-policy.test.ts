/**
 * A hot reload of a large policy set keeps the server answering while it compiles, and its
 * deadline (`reload.timeout_ms`) can stop it. Parsing and compiling take about 0.1-0.3 ms per
 * rule: a set near the modules' 2 MiB cap compiled in one synchronous step held the event loop
 * for seconds (4-5 s on the twenty-fourth session's loaded machine), so no request was answered,
 * and the deadline, a timer, fired only once the compile was done: the set was applied anyway.
 */
import { rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

/** A generated module of short rules, about `bytes` long (under the 1 MiB file cap). */
function generatedModule(pkg: number, bytes: number): string {
  const lines = [`package gen.p${pkg}`, '', 'import rego.v1', ''];
  let size = 40;
  for (let r = 0; size < bytes; r++) {
    const line = `deny contains "r${r}" if { input.request.model == "m${r}"; input.principal.namespace != "n${r}"; count(input.request.variables) < ${r} }\n`;
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join('\n');
}

/** Two modules of ~0.95 MB each: some 14,000 rules, near the modules' 2 MiB cap with the fixture's own. */
const LARGE = [generatedModule(0, 950_000), generatedModule(1, 950_000)];

function writeLarge(w: WardenFixture): void {
  mkdirSync(join(w.dir, 'policies', 'gen'), { recursive: true });
  LARGE.forEach((source, i) => writeFileSync(join(w.dir, 'policies', 'gen', `p${i}.rego`), source));
}

function removeLarge(w: WardenFixture): void {
  rmSync(join(w.dir, 'policies', 'gen'), { recursive: true, force: true });
}

describe('reload of a large policy set', () => {
  it('answers requests while the set compiles, not only before and after (the server shares the loop with this test)', { timeout: 240_000 }, async () => {
    // The deadline is not what this test is about: a machine loaded by parallel test files took
    // more than the default 30 s to compile the set, and the reload was refused.
    const w = await startWarden({ upstreamUrl: upstream.url, reloadKeys: 'timeout_ms: 600000' });
    try {
      /**
       * Reloads (with or without the large modules), asking /healthz one request after another
       * meanwhile: how many answers came while the reload ran. The reload and this server run in
       * this process, so an answer arrives only when the event loop gets a turn.
       */
      const answeredDuring = async (large: boolean): Promise<number> => {
        if (large) writeLarge(w);
        else removeLarge(w);
        const before = w.runtime.live()?.policy.revision;
        let reloading = true;
        const reload = w.runtime.reload(`test: ${large ? 'large' : 'small'} policy set`).finally(() => (reloading = false));
        let answered = 0;
        while (reloading) {
          const r = await fetch(`${w.addresses.admin}/healthz`);
          await r.arrayBuffer();
          if (reloading) answered++;
        }
        expect(await reload).toBe(true);
        if (large) expect(w.runtime.live()?.policy.revision).not.toBe(before);
        return answered;
      };
      // The turns a reload gives anyway (its file reads, the templates'), with the fixture's policy…
      const baseline = await answeredDuring(false);
      // … and with ~14,000 generated rules: their compile takes hundreds of 10 ms slices, each of
      // which lets requests through (a round trip takes two or three turns). Before, the compile
      // held the loop from its first token to its last rule, and the large set got no more
      // answers than the small one. An unloaded fast core compiles the set in about a second and a
      // half, some 150 slices, against a bound of 20 answers.
      const large = await answeredDuring(true);
      expect(large - baseline, `${baseline} answers with the fixture's policy, ${large} with the large set`).toBeGreaterThanOrEqual(20);
    } finally {
      await w.close();
    }
  });

  it('gives up a compile that runs past reload.timeout_ms: the reload is refused and the last good set keeps serving', { timeout: 240_000 }, async () => {
    // 1 s: the fixture's own set loads in a fraction of it (at start too), the large one takes
    // seconds to compile (about 1.5 s on an unloaded fast core, 4-6 s on a loaded one).
    const w = await startWarden({ upstreamUrl: upstream.url, reloadKeys: 'timeout_ms: 1000' });
    try {
      const before = w.runtime.live()?.policy.revision;
      expect(before).toBeDefined();
      writeLarge(w);
      // Before, the deadline's timer could fire only once the compile was done, and the reload
      // applied the set it should have given up.
      expect(await w.runtime.reload('test: a set that compiles past the deadline')).toBe(false);
      expect(w.runtime.live()?.policy.revision).toBe(before);
      const rejected = w.logs.find((l) => l.includes('reload rejected'));
      expect(rejected).toBeDefined();
      expect(rejected).toContain('did not load within 1000 ms (reload.timeout_ms)');
      const metrics = await (await fetch(`${w.addresses.admin}/metrics`)).text();
      expect(metrics).toMatch(/warden_reload_total\{kind="policies",outcome="error"[^}]*\} 1/);
      // The old set still decides, and the queue is free for the next reload.
      expect((await fetch(`${w.addresses.admin}/readyz`)).status).toBe(200);
      removeLarge(w);
      expect(await w.runtime.reload('test: back to the fixture')).toBe(true);
      expect(w.runtime.live()?.policy.revision).toBe(before);
    } finally {
      await w.close();
    }
  });

  it('gives up a compile under way when Warden shuts down: the drain does not share the loop with it, and its set is not applied', { timeout: 240_000 }, async () => {
    const w = await startWarden({ upstreamUrl: upstream.url, reloadKeys: 'timeout_ms: 600000' });
    try {
      const before = w.runtime.live()?.policy.revision;
      writeLarge(w);
      const reload = w.runtime.reload('test: a large set, then a shutdown');
      // The shutdown starts while the set is read or compiled (hundreds of 10 ms slices). Before,
      // the compile ran on through the drain (up to reload.timeout_ms) and then applied the set.
      const shutdown = w.runtime.shutdown('test');
      expect(await reload).toBe(false);
      expect(w.runtime.live()?.policy.revision).toBe(before);
      await shutdown;
      // Told as what it is: no reload error (logged or counted) for a set no one judged bad.
      expect(w.logs.some((l) => l.includes('reload given up: Warden is shutting down'))).toBe(true);
      expect(w.logs.some((l) => l.includes('reload rejected'))).toBe(false);
    } finally {
      await w.close();
    }
  });
});
