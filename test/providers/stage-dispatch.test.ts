/**
 * The forward stage with a cached API key: the upstream call is handed to undici before
 * `forward.run()` returns, so the pipeline's work after it overlaps the upstream's.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { RequestSignal } from '../../src/pipeline/cancel.js';
import type { RequestContext } from '../../src/pipeline/stage.js';
import { createForwardStage, createProviders, type ProviderRegistry } from '../../src/providers/index.js';
import { createSecretResolver } from '../../src/secrets/index.js';
import { startTrace } from '../../src/telemetry/index.js';
import { allowDecision, makeRequest } from '../stage-context.js';
import { closeAfterEach, startUpstream, type FakeUpstream } from './fake-upstream.js';

const KEY = 'sk-CANARY-SECRET-9f8e7d';

let upstream: FakeUpstream | undefined;
let providers: ProviderRegistry | undefined;

closeAfterEach(() => [providers, upstream]);

const decision = allowDecision({ models: ['gpt-4o-mini'], audit: { log_variables_names: false }, id: 'd-1' });

function context(): RequestContext {
  const signal = new RequestSignal();
  const request = makeRequest({ id: 'r-1', model: 'gpt-4o-mini', signal, cancel: (reason) => signal.abort(reason) });
  return { request, trace: startTrace(), timings: {}, decision, outbound: [{ role: 'user', content: 'outbound prompt' }] };
}

describe('forward stage with the secret resolver wired as in runtime/components.ts', () => {
  it('dispatches the upstream call before run() returns once the key is cached', async () => {
    upstream = await startUpstream();
    let fetches = 0;
    const resolver = createSecretResolver({
      providers: [
        {
          scheme: 'env',
          fetch: async () => {
            fetches++;
            return { value: KEY, ttlMs: 60_000 };
          },
        },
      ],
    });
    const config = parseConfig(
      [`providers:`, `  openai: { kind: openai, base_url: "${upstream.baseUrl}", api_key: "env://TEST_OPENAI_KEY" }`, 'models: { gpt-4o-mini: openai }'].join('\n'),
      'test.yaml',
    );
    providers = createProviders(config, { resolveSecret: (ref) => resolver.resolveOne(ref) });
    const stage = createForwardStage(() => providers!, { upstreamTimeoutMs: 30_000 });
    let created = 0;
    const onCreate = () => void created++;
    subscribe('undici:request:create', onCreate);
    try {
      // First call: the key is fetched (a promise), so the dispatch comes later.
      const first = stage.run(context());
      expect(created).toBe(0);
      await first;
      expect(created).toBe(1);
      // Cached: dispatched synchronously.
      const ctx = context();
      const second = stage.run(ctx);
      expect(created).toBe(2);
      await second;
      expect(ctx.response?.kind).toBe('complete');
    } finally {
      unsubscribe('undici:request:create', onCreate);
    }
    expect(fetches).toBe(1);
    expect(upstream.received.map((r) => r.headers.authorization)).toEqual([`Bearer ${KEY}`, `Bearer ${KEY}`]);
  });
});
