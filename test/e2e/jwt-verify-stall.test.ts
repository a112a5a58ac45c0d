/**
 * A signature check that does not return must not hold the request until its client gives up.
 * jose checks signatures with WebCrypto, whose jobs run on libuv's thread pool: with the pool
 * held by file calls that do not return (a dead mount under a secret file root, a jwks_file, an
 * audit file), `crypto.subtle.verify` waits with them. A token not verified before is refused
 * `signature check unavailable` once its check missed its 2 s deadline, and every such token
 * after it at once while that check has not returned; a remembered token needs no check and is
 * served. One warning per episode, no token content; when the check returns, tokens are verified
 * again.
 *
 * The stall is real: a `warden serve` child with a thread pool of 2 whose threads are held by
 * opens of FIFOs no one writes to (test/e2e/helpers/pool-staller.ts). The key set comes from a
 * loopback jwks_url (fetched before the stall), so no look at a key file is involved: the only
 * pool work a fresh token needs is its signature check.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVED, serveKeySetFor, startStallableWarden } from './helpers/pool-stall.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, prepareWardenDir } from './helpers/warden.js';

let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

describe('a signature check that does not return', () => {
  it('refuses a token not verified before at its deadline, and at once after; serves remembered tokens; verifies again once it returns', { timeout: 60_000 }, async () => {
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [stdout], required: true }' });
    // The key set from a loopback URL: fetched once, then kept in memory (no file look, no poll).
    const keySet = await serveKeySetFor(p.configFile, p.signer.jwks);
    const warden = await startStallableWarden(p.dir, p.configFile);
    try {
      const { lines, call } = warden;

      // A token verified now (the key set fetched, the upstream key read), and so remembered.
      const remembered = await p.signer.token('labs', 'raw-bot');
      expect(await call(remembered)).toEqual(SERVED);

      // The thread pool is held.
      await warden.stall();

      // A token not verified before: its signature check cannot run; refused at the deadline.
      const unavailable = { status: 401, code: 'unauthenticated', message: 'kubernetes authentication failed: signature check unavailable' };
      const fresh = await p.signer.token('labs', 'raw-bot');
      expect(await call(fresh)).toEqual(unavailable);
      // While that check has not returned, every token that needs one is refused (at once, not
      // queued behind it); a remembered token needs none and is served.
      const burst = await Promise.all([call(await p.signer.token('labs', 'raw-bot')), call(fresh), call(remembered)]);
      expect(burst).toEqual([unavailable, unavailable, SERVED]);

      // One warning for the episode, naming the method, never a token.
      const warnings = lines.filter((l) => l.includes('signature check did not return in time'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', method: 'kubernetes', deadline_ms: 2000 });
      for (const t of [remembered, fresh]) expect(lines.join('\n')).not.toContain(t.split('.')[2]!);

      // The pool is released: the check returns, and tokens are verified again.
      await warden.release();
      await eventually(() => lines.some((l) => l.includes('signature check returned; tokens are verified again')));
      expect(await call(fresh)).toEqual(SERVED);
      expect(await call(await p.signer.token('labs', 'raw-bot'))).toEqual(SERVED);
      expect(lines.filter((l) => l.includes('signature check did not return in time'))).toHaveLength(1);
    } finally {
      await warden.stop();
      keySet.close();
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('a JWKS fetch whose bearer-token file read cannot run ends with the fetch timeout: JWKS unavailable, not a hang', { timeout: 60_000 }, async () => {
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [stdout], required: true }' });
    writeFileSync(join(p.dir, 'jwks-reader-token'), 'reader-token\n');
    const keySet = await serveKeySetFor(p.configFile, p.signer.jwks, `, jwks_bearer_token_file: "${join(p.dir, 'jwks-reader-token')}"`);
    const warden = await startStallableWarden(p.dir, p.configFile);
    try {
      // The pool is held before the key set was ever fetched: the fetch must read the token file.
      await warden.stall();
      expect(await warden.call(await p.signer.token('labs', 'raw-bot'))).toEqual({
        status: 401,
        code: 'unauthenticated',
        message: 'kubernetes authentication failed: JWKS unavailable',
      });
      await warden.release();
    } finally {
      await warden.stop();
      keySet.close();
      rmSync(p.dir, { recursive: true, force: true });
    }
  });
});
