/**
 * A hot reload of a large policy data file keeps the server answering while the file is read, and
 * its deadline (`reload.timeout_ms`) can stop the read. A data file was decoded, parsed and checked
 * in one synchronous step: a 5.5 MB JSON file held the event loop for seconds on a loaded machine,
 * a 1.6 MB YAML file 5-9 s, and the deadline, a timer, fired only once the read was done.
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

/** A generated table under `data.gen` (a directory of its own, so it merges with nothing else). */
function writeLarge(w: WardenFixture, kind: 'json' | 'yaml', entries = kind === 'json' ? 60_000 : 10_000): void {
  mkdirSync(join(w.dir, 'policies', 'gen'), { recursive: true });
  const text =
    kind === 'json'
      ? `{"users": {\n${Array.from({ length: entries }, (_, i) => `  "user-${i}": {"team": "t${i % 97}", "tier": ${i % 5}}`).join(',\n')}\n}}\n`
      : `users:\n${Array.from({ length: entries }, (_, i) => `  user-${i}:\n    team: t${i % 97}\n    tier: ${i % 5}\n`).join('')}`;
  writeFileSync(join(w.dir, 'policies', 'gen', `data.${kind}`), text);
}

function removeLarge(w: WardenFixture): void {
  rmSync(join(w.dir, 'policies', 'gen'), { recursive: true, force: true });
}

describe('reload of a large policy data file', () => {
  it('answers requests while the data is read, and applies it', { timeout: 240_000 }, async () => {
    const w = await startWarden({ upstreamUrl: upstream.url, reloadKeys: 'timeout_ms: 600000' });
    try {
      for (const kind of ['json', 'yaml'] as const) {
        writeLarge(w, kind);
        const before = w.runtime.live()?.policy.revision;
        let reloading = true;
        const reload = w.runtime.reload(`test: a large ${kind} data file`).finally(() => (reloading = false));
        // The reload and this server run in this process: an answer arrives only when the event
        // loop gets a turn.
        let answered = 0;
        while (reloading) {
          const r = await fetch(`${w.addresses.admin}/healthz`);
          await r.arrayBuffer();
          if (reloading) answered++;
        }
        expect(await reload).toBe(true);
        expect(w.runtime.live()?.policy.revision).not.toBe(before);
        expect(answered).toBeGreaterThan(0);
        removeLarge(w);
        expect(await w.runtime.reload('test: back to the fixture')).toBe(true);
      }
    } finally {
      await w.close();
    }
  });

  it('gives up a data file read past reload.timeout_ms: the reload is refused and the last good set keeps serving', { timeout: 240_000 }, async () => {
    // 1 s: the fixture's own set loads in a fraction of it; 40,000 YAML maps (1.6 MB) take seconds
    // to read (the yaml library reads 1-2 MB/s on a fast idle core, far less on a loaded one).
    const w = await startWarden({ upstreamUrl: upstream.url, reloadKeys: 'timeout_ms: 1000' });
    try {
      const before = w.runtime.live()?.policy.revision;
      writeLarge(w, 'yaml', 40_000);
      expect(await w.runtime.reload('test: a data file read past the deadline')).toBe(false);
      expect(w.runtime.live()?.policy.revision).toBe(before);
      const rejected = w.logs.find((l) => l.includes('reload rejected'));
      expect(rejected).toContain('did not load within 1000 ms (reload.timeout_ms)');
      expect((await fetch(`${w.addresses.admin}/readyz`)).status).toBe(200);
      removeLarge(w);
      expect(await w.runtime.reload('test: back to the fixture')).toBe(true);
      expect(w.runtime.live()?.policy.revision).toBe(before);
    } finally {
      await w.close();
    }
  });
});
