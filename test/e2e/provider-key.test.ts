/**
 * A provider API key that fails after the start (rotated to a bad value, removed): the call is
 * 503 `secret_unavailable` naming `providers.NAME.api_key`, never the key nor the path of
 * Warden's key file; nothing goes upstream; and the log says why (the ref and the reason).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { CANARY_API_KEY, eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;

beforeAll(async () => {
  upstream = await startUpstream();
  // No lease and no failure memory to wait out: each call reads the key file again.
  w = await startWarden({ upstreamUrl: upstream.url, secrets: 'secrets: { default_ttl_ms: 0, file_roots: [secrets] }' });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

const SUMMARY = { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hello' } } };

async function call(): Promise<{ status: number; text: string }> {
  const token = await w.signer.token('support', 'ticket-bot');
  const r = await postChat(w.addresses.http, token, SUMMARY);
  return { status: r.status, text: await r.text() };
}

describe('a provider API key that fails at request time', () => {
  const keyFile = () => join(w.dir, 'secrets', 'upstream-key');

  it('works with the good key (control)', async () => {
    expect((await call()).status).toBe(200);
  });

  for (const [what, change, reason] of [
    ['a key rotated to one with a line break inside', () => writeFileSync(keyFile(), `${CANARY_API_KEY}\n\n`), /cannot be sent in an HTTP header: it holds a line break/],
    ['a key file removed', () => rmSync(keyFile()), /cannot read secret file \(ENOENT\)/],
  ] as const) {
    it(`${what}: the caller learns the config key only; the log says why`, async () => {
      const before = upstream.calls.length;
      const logged = w.logs.length;
      change();
      // The failure memory of the 1 s before may still answer: wait for this reason.
      await eventually(async () => {
        await call();
        return w.logs.slice(logged).some((l) => reason.test(l));
      }, 200);
      const r = await call();
      expect(r.status).toBe(503);
      const body = JSON.parse(r.text) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('secret_unavailable');
      expect(body.error.message).toBe('the API key of provider upstream (providers.upstream.api_key) is unavailable');
      expect(r.text).not.toContain(w.dir);
      expect(r.text).not.toContain(CANARY_API_KEY);
      expect(upstream.calls.length).toBe(before);
      const warning = w.logs.slice(logged).find((l) => reason.test(l))!;
      expect(warning).toContain('"config_key":"providers.upstream.api_key"');
      expect(warning).toContain('"level":"warn"');
      expect(w.logs.join('\n')).not.toContain(CANARY_API_KEY);
      expect(w.audit().at(-1)?.error_code).toBe('secret_unavailable');
      writeFileSync(keyFile(), `${CANARY_API_KEY}\n`);
      await eventually(async () => (await call()).status === 200, 200);
    });
  }
});
