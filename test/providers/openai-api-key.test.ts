/**
 * The provider's API key at call time: a key that cannot go in an HTTP header (a line break, a
 * control character, a character beyond Latin-1) and a key whose ref fails both end the call as
 * `secret_unavailable` naming the config key (`providers.NAME.api_key`), never the key nor where
 * Warden keeps it, with nothing sent upstream; the reason goes to the log hook, value-free.
 */
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import type { ModelProvider } from '../../src/pipeline/ports.js';
import { createOpenAIProvider, type OpenAIProviderOptions } from '../../src/providers/index.js';
import { closeAfterEach, failure, startUpstream, TEST_API_KEY, upstreamRequest, type FakeUpstream } from './fake-upstream.js';

let upstream: FakeUpstream | undefined;
const made: ModelProvider[] = [];

closeAfterEach(() => [...made.splice(0), upstream]);

function make(baseUrl: string, over: Partial<OpenAIProviderOptions>): ModelProvider {
  const provider = createOpenAIProvider({ name: 'up', baseUrl, connections: 4, ...over });
  made.push(provider);
  return provider;
}

async function streamFailure(p: ModelProvider): Promise<WardenError> {
  try {
    for await (const _ of p.stream(upstreamRequest({ stream: true }))) {
      // reading until it fails
    }
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    return err as WardenError;
  }
  throw new Error('expected the stream to fail');
}

const BAD_KEYS: Array<[string, string]> = [
  ['a trailing line feed (an env value from a file)', `${TEST_API_KEY}\n`],
  ['a line break inside (header injection)', `${TEST_API_KEY}\r\nX-Evil: 1`],
  ['a NUL', `${TEST_API_KEY}\u0000`],
  ['a character beyond Latin-1', `${TEST_API_KEY}€`],
  ['a leading space (`Bearer  key`)', ` ${TEST_API_KEY}`],
];

describe('an API key that cannot go in an HTTP header', () => {
  for (const [what, key] of BAD_KEYS) {
    it(`is secret_unavailable naming providers.up.api_key: ${what}`, async () => {
      upstream = await startUpstream();
      const reasons: string[] = [];
      for (const getApiKey of [() => key, async () => key]) {
        const p = make(upstream.baseUrl, { getApiKey, onKeyFailure: (reason) => void reasons.push(reason) });
        for (const err of [await failure(p.complete(upstreamRequest())), await streamFailure(p)]) {
          expect(err.code).toBe('secret_unavailable');
          expect(err.message).toBe('the API key of provider up (providers.up.api_key) is unavailable');
          expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain(TEST_API_KEY);
        }
      }
      expect(upstream.received).toHaveLength(0);
      expect(reasons.length).toBeGreaterThan(0);
      for (const r of reasons) {
        expect(r).toMatch(/cannot be sent in an HTTP header/);
        expect(r).not.toContain(TEST_API_KEY);
      }
    });
  }

  it('a good key after a bad one is sent again', async () => {
    upstream = await startUpstream();
    let key = `${TEST_API_KEY}\n`;
    const p = make(upstream.baseUrl, { getApiKey: () => key });
    expect((await failure(p.complete(upstreamRequest()))).code).toBe('secret_unavailable');
    key = TEST_API_KEY;
    await p.complete(upstreamRequest());
    expect(upstream.received.map((r) => r.headers.authorization)).toEqual([`Bearer ${TEST_API_KEY}`]);
  });
});

describe('an API key with spaces or tabs at its end', () => {
  it('is sent: HTTP drops them, so the upstream reads the key itself (as before the header check)', async () => {
    upstream = await startUpstream();
    for (const key of [`${TEST_API_KEY} `, `${TEST_API_KEY}\t`]) {
      const p = make(upstream.baseUrl, { getApiKey: () => key });
      await p.complete(upstreamRequest());
    }
    expect(upstream.received.map((r) => r.headers.authorization)).toEqual(Array(2).fill(`Bearer ${TEST_API_KEY}`));
  });
});

describe('an API key whose ref fails', () => {
  it("tells the caller the config key, not the path of Warden's key file; the log hook gets the ref and reason", async () => {
    upstream = await startUpstream();
    const ref = 'file:///srv/warden-private/secrets/upstream-key';
    const reasons: string[] = [];
    const p = make(upstream.baseUrl, {
      getApiKey: () => Promise.reject(new WardenError('secret_unavailable', `secret ${ref} is unavailable: cannot read secret file (ENOENT)`, { details: { ref } })),
      onKeyFailure: (reason) => void reasons.push(reason),
    });
    const err = await failure(p.complete(upstreamRequest()));
    expect(err.code).toBe('secret_unavailable');
    expect(err.message).toBe('the API key of provider up (providers.up.api_key) is unavailable');
    expect(err.details).toEqual({ provider: 'up', config_key: 'providers.up.api_key' });
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain('/srv/warden-private');
    expect(reasons).toEqual([`secret ${ref} is unavailable: cannot read secret file (ENOENT)`]);
    expect(upstream.received).toHaveLength(0);
  });
});
