/**
 * A look at the JWKS file that does not return (a dead NFS mount, or libuv's thread pool held by
 * other file calls that do not return) must not hold every authenticated request until its
 * client gives up: the tokens waiting for it are refused `JWKS unavailable` once it missed its
 * deadline, and so is every token while it has still not returned (whether a key was withdrawn
 * cannot be known), with one warning for the episode. When it returns, the next look runs, and a
 * key withdrawn meanwhile is refused.
 *
 * The stall is real: a `warden serve` child with a thread pool of 2 whose threads are held by
 * opens of FIFOs no one writes to (test/e2e/helpers/pool-staller.ts), so Warden's own stat of the
 * key file queues behind them, as it would behind a dead mount's calls.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJwk, testKeyPair } from '../keys.js';
import { SERVED, startStallableWarden } from './helpers/pool-stall.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, rawBotToken, prepareWardenDir } from './helpers/warden.js';

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

/** Between the calls of a loop that waits for Warden's state to change (the test timeout bounds it). */
const pause = () => new Promise((r) => setTimeout(r, 100));

describe('a jwks_file look that does not return', () => {
  it('refuses the tokens waiting for it at its deadline, and every token until it returns; then looks again', { timeout: 60_000 }, async () => {
    // dev after kubernetes: a token that is not kubernetes' is left to it, stall or not.
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [stdout], required: true }', methods: '[kubernetes, dev]' });
    const warden = await startStallableWarden(p.dir, p.configFile);
    try {
      const { lines, call } = warden;

      // A token verified now, and so remembered.
      const remembered = await p.signer.token('labs', 'raw-bot');
      expect(await call(remembered)).toEqual(SERVED);

      // The thread pool is held: Warden's next stat of the key file cannot run.
      await warden.stall();

      // A token naming a key the file does not hold makes Warden look at the file: the look does
      // not return, and the token is refused at its deadline instead of waiting for good.
      const other = testKeyPair('ec');
      const unknownKid = await rawBotToken(other, 'not-in-the-file');
      const unavailable = { status: 401, code: 'unauthenticated', message: 'kubernetes authentication failed: JWKS unavailable' };
      expect(await call(unknownKid)).toEqual(unavailable);
      // While that look has not returned, no token is accepted, the remembered one included: a
      // key withdrawn from the file could not be seen.
      const burst = await Promise.all([call(remembered), call(remembered), call(await p.signer.token('labs', 'raw-bot'))]);
      expect(burst).toEqual([unavailable, unavailable, unavailable]);
      // A bearer that is no kubernetes token (an API key) is not refused for the key file: the
      // next method, dev, takes it (and the policy grants the dev principal no raw prompt).
      const apiKey = await call('sk-local-dev-key');
      expect(apiKey.code).toBe('policy_denied');

      // One warning for the episode, naming the method and the file, never a token.
      const warnings = lines.filter((l) => l.includes('jwks_file look did not return in time'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', method: 'kubernetes', file: join(p.dir, 'jwks.json'), deadline_ms: 2000 });
      // Not a second line per token or per 10 s ("identity key set unavailable"): the episode's one.
      expect(lines.filter((l) => l.includes('identity key set unavailable'))).toEqual([]);
      for (const t of [remembered, unknownKid]) expect(lines.join('\n')).not.toContain(t.split('.')[2]!);

      // Meanwhile the key is withdrawn from the file; then the pool is released.
      const next = testKeyPair('ec');
      writeFileSync(join(p.dir, 'jwks.next'), JSON.stringify({ keys: [await publicJwk(next, { kid: 'rotated-key', alg: 'ES256', use: 'sig' })] }));
      renameSync(join(p.dir, 'jwks.next'), join(p.dir, 'jwks.json'));
      await warden.release();

      // The late look and the next one run: the withdrawn key is refused, remembered or not, and
      // the new key is accepted.
      let after = await call(remembered);
      while (after.message === unavailable.message) after = await pause().then(() => call(remembered));
      expect(after).toEqual({ status: 401, code: 'unauthenticated', message: "kubernetes authentication failed: no matching key in the JWKS (unknown kid, or not for the token's algorithm)" });
      expect(await call(await rawBotToken(next, 'rotated-key'))).toEqual(SERVED);
      expect((await call(await p.signer.token('labs', 'raw-bot'))).status).toBe(401);
      await eventually(() => lines.some((l) => l.includes('jwks_file look returned on time again')));
      expect(lines.filter((l) => l.includes('jwks_file look did not return in time'))).toHaveLength(1);

      // Held again, with no token naming an unknown key: a remembered token is answered from
      // memory until the periodic look comes due (every 5 s); the token that finds it due, and
      // every token after it, is refused once that look misses its deadline. A new episode: a
      // new warning.
      const kept = await rawBotToken(next, 'rotated-key');
      expect((await call(kept)).status).toBe(200);
      await warden.stall();
      let refused = await call(kept);
      while (refused.status === 200) refused = await pause().then(() => call(kept));
      expect(refused).toEqual(unavailable);
      expect(await call(kept)).toEqual(unavailable);
      expect(lines.filter((l) => l.includes('jwks_file look did not return in time'))).toHaveLength(2);
      await warden.release();
      let back = await call(kept);
      while (back.message === unavailable.message) back = await pause().then(() => call(kept));
      expect(back.status).toBe(200);
    } finally {
      await warden.stop();
      rmSync(p.dir, { recursive: true, force: true });
    }
  });
});
