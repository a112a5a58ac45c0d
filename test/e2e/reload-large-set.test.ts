/**
 * A hot reload of a large template set keeps the server answering while it parses. The YAML
 * parser takes about 1.5 s of CPU per MiB of small documents: a set parsed in one go held the
 * event loop for seconds per MiB (23 s for 8 MiB on a loaded machine, a minute and more near the
 * 32 MiB cap), so probes, requests and the reload's own deadline all waited for it.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  w = await startWarden({ upstreamUrl: upstream.url });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

/** A file of `count` small templates (ids bulk/<file>/t0 …), about 200 bytes each. */
function manyTemplates(count: number, file = 0): string {
  const docs: string[] = [];
  for (let n = 0; n < count; n++) {
    docs.push(`id: bulk/f${file}/t${n}
version: 1
owner: o@example.com
sensitivity: internal
description: d
variables:
  x: {max_length: 10}
messages:
  - role: user
    content: "hi {{x}}"
`);
  }
  return docs.join('---\n');
}

/** Files of 3,000 templates each in the large set (one file stays under the 1 MiB file cap). */
const FILES = 3;

describe('reload of a large template set', () => {
  it('answers requests while the set is parsed, not only before and after (the server shares the loop with this test)', { timeout: 180_000 }, async () => {
    const file = (n: number): string => join(w.dir, 'templates', `bulk${n}.yaml`);
    /**
     * Reloads with `count` templates in each of `files` files (bulk0.yaml …), asking /healthz one
     * request after another meanwhile: how many answers came while the reload ran. The reload and
     * this server run in this process, so an answer arrives only when the event loop gets a turn.
     */
    const answeredDuring = async (count: number, files: number): Promise<number> => {
      for (let n = 0; n < FILES; n++) {
        if (n < files) writeFileSync(file(n), manyTemplates(count, n));
        else rmSync(file(n), { force: true });
      }
      let reloading = true;
      const reload = w.runtime.reload(`test: ${count} templates`).finally(() => (reloading = false));
      let answered = 0;
      while (reloading) {
        const r = await fetch(`${w.addresses.admin}/healthz`);
        await r.arrayBuffer();
        if (reloading) answered++;
      }
      expect(await reload).toBe(true);
      const last = `bulk/f${files - 1}/t${count - 1}`;
      expect(w.runtime.live()?.templates.get(last, 1)?.id).toBe(last);
      return answered;
    };
    expect(Buffer.byteLength(manyTemplates(3000))).toBeLessThan(1024 * 1024);
    // The turns a reload gives anyway (its file reads, the policies'), with one small template…
    const baseline = await answeredDuring(1, 1);
    // … and with 9,000 of them (three files): parsing them takes hundreds of 10 ms slices, each of
    // which lets requests through. Before, the parse held the loop from its first document to its
    // last, and the large set got no more answers than the small one. The count of answers grows
    // with the parse's length, not with the machine's speed (a round trip takes two or three
    // turns, one per slice), so the set is large enough for a quiet, fast machine too: with 3,000
    // templates an unloaded core parsed them in ~1.3 s, some 40-60 answers, against a bound of 50.
    const large = await answeredDuring(3000, FILES);
    expect(large - baseline, `${baseline} answers with one template, ${large} with ${3000 * FILES}`).toBeGreaterThanOrEqual(50);
  });
});
