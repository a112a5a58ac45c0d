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
import { closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchServe } from './helpers/cli.js';
import { postChat } from './helpers/http.js';
import { releaseFifos, spawnStallableWarden, STALL_POOL, stallFifos } from './helpers/pool-stall.js';
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
    const fifos = stallFifos(p.dir);
    const writers: number[] = [];
    // The key set from a loopback URL: fetched once, then kept in memory (no file look, no poll).
    const jwks: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(p.signer.jwks)));
    jwks.listen(0, '127.0.0.1');
    await once(jwks, 'listening');
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
    writeFileSync(p.configFile, readFileSync(p.configFile, 'utf8').replace('jwks_file: jwks.json', `jwks_url: "${jwksUrl}"`));
    const child = spawnStallableWarden(p.configFile);
    try {
      const { lines, listening } = watchServe(child);
      const addr = await listening;
      const messages: Array<Record<string, number>> = [];
      child.on('message', (m: Record<string, number>) => messages.push(m));
      const call = async (token: string) => {
        const res = await postChat(addr.http, token, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
        const json = (await res.json()) as { error?: { code?: string; message?: string } };
        return { status: res.status, code: json.error?.code, message: json.error?.message };
      };
      const ok = { status: 200, code: undefined, message: undefined };

      // A token verified now (the key set fetched, the upstream key read), and so remembered.
      const remembered = await p.signer.token('labs', 'raw-bot');
      expect(await call(remembered)).toEqual(ok);

      // The thread pool is held.
      child.send({ stall: fifos });
      await eventually(() => messages.some((m) => m.stalled === STALL_POOL));

      // A token not verified before: its signature check cannot run; refused at the deadline.
      const unavailable = { status: 401, code: 'unauthenticated', message: 'kubernetes authentication failed: signature check unavailable' };
      const fresh = await p.signer.token('labs', 'raw-bot');
      expect(await call(fresh)).toEqual(unavailable);
      // While that check has not returned, every token that needs one is refused (at once, not
      // queued behind it); a remembered token needs none and is served.
      const burst = await Promise.all([call(await p.signer.token('labs', 'raw-bot')), call(fresh), call(remembered)]);
      expect(burst).toEqual([unavailable, unavailable, ok]);

      // One warning for the episode, naming the method, never a token.
      const warnings = lines.filter((l) => l.includes('signature check did not return in time'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', method: 'kubernetes', deadline_ms: 2000 });
      for (const t of [remembered, fresh]) expect(lines.join('\n')).not.toContain(t.split('.')[2]!);

      // The pool is released: the check returns, and tokens are verified again.
      writers.push(...releaseFifos(fifos));
      await eventually(() => messages.some((m) => m.released === STALL_POOL));
      await eventually(() => lines.some((l) => l.includes('signature check returned; tokens are verified again')));
      expect(await call(fresh)).toEqual(ok);
      expect(await call(await p.signer.token('labs', 'raw-bot'))).toEqual(ok);
      expect(lines.filter((l) => l.includes('signature check did not return in time'))).toHaveLength(1);
    } finally {
      for (const fd of writers) closeSync(fd);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      jwks.close();
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('a JWKS fetch whose bearer-token file read cannot run ends with the fetch timeout: JWKS unavailable, not a hang', { timeout: 60_000 }, async () => {
    const p = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [stdout], required: true }' });
    const fifos = stallFifos(p.dir);
    const writers: number[] = [];
    const jwks: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(p.signer.jwks)));
    jwks.listen(0, '127.0.0.1');
    await once(jwks, 'listening');
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
    writeFileSync(join(p.dir, 'jwks-reader-token'), 'reader-token\n');
    writeFileSync(
      p.configFile,
      readFileSync(p.configFile, 'utf8').replace('jwks_file: jwks.json', `jwks_url: "${jwksUrl}", jwks_bearer_token_file: "${join(p.dir, 'jwks-reader-token')}"`),
    );
    const child = spawnStallableWarden(p.configFile);
    try {
      const { listening } = watchServe(child);
      const addr = await listening;
      const messages: Array<Record<string, number>> = [];
      child.on('message', (m: Record<string, number>) => messages.push(m));
      // The pool is held before the key set was ever fetched: the fetch must read the token file.
      child.send({ stall: fifos });
      await eventually(() => messages.some((m) => m.stalled === STALL_POOL));
      const res = await postChat(addr.http, await p.signer.token('labs', 'raw-bot'), { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      const json = (await res.json()) as { error?: { code?: string; message?: string } };
      expect({ status: res.status, code: json.error?.code, message: json.error?.message }).toEqual({
        status: 401,
        code: 'unauthenticated',
        message: 'kubernetes authentication failed: JWKS unavailable',
      });
      writers.push(...releaseFifos(fifos));
      await eventually(() => messages.some((m) => m.released === STALL_POOL));
    } finally {
      for (const fd of writers) closeSync(fd);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      jwks.close();
      rmSync(p.dir, { recursive: true, force: true });
    }
  });
});
