import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createForwardStage, createProviders, type ProviderRegistry } from '../../src/providers/index.js';
import type { RequestContext } from '../../src/pipeline/stage.js';
import { WardenError, type CompletionChunk, type Decision, type PromptRequest } from '../../src/pipeline/index.js';
import { createMetrics, startTrace } from '../../src/telemetry/index.js';
import { allowDecision, makeRequest } from '../stage-context.js';
import { chunk, closeAfterEach, sse, sseHead, startUpstream, type FakeUpstream } from './fake-upstream.js';

const KEY = 'sk-CANARY-SECRET-9f8e7d';

let upstream: FakeUpstream | undefined;
let providers: ProviderRegistry | undefined;

closeAfterEach(() => [providers, upstream]);

function registry(baseUrl: string): ProviderRegistry {
  const config = parseConfig(
    [
      'providers:',
      '  echo: { kind: echo }',
      `  openai: { kind: openai, base_url: "${baseUrl}", api_key: "env://TEST_OPENAI_KEY", timeouts: { headers_ms: 30000 } }`,
      'models: { echo: echo, gpt-4o-mini: openai, local: echo }',
    ].join('\n'),
    'test.yaml',
  );
  const secrets: Record<string, string> = { 'env://TEST_OPENAI_KEY': KEY };
  providers = createProviders(config, {
    resolveSecret: async (ref) => {
      const v = secrets[ref];
      if (v === undefined) throw new WardenError('secret_unavailable', 'secret unavailable');
      return v;
    },
  });
  return providers;
}

function decision(over: Partial<Decision> = {}): Decision {
  return allowDecision({ models: ['gpt-4o-mini', 'echo', 'local'], audit: { log_variables_names: false }, id: 'd-1', ...over });
}

function context(over: Partial<PromptRequest> = {}, d: Decision = decision(), signal = new AbortController().signal): RequestContext {
  const request = makeRequest({ id: 'r-1', model: 'gpt-4o-mini', signal, ...over });
  const ctx: RequestContext = {
    request,
    trace: startTrace('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'),
    timings: {},
    decision: d,
    outbound: [{ role: 'user', content: 'outbound prompt' }],
  };
  // As the redact stage leaves it: a redacted copy of the parameters whenever there are any.
  if (Object.keys(request.params).length > 0) ctx.outboundParams = { ...request.params };
  return ctx;
}

async function rejects(p: Promise<unknown> | void): Promise<WardenError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    return err as WardenError;
  }
  throw new Error('expected a failure');
}

describe('forward stage', () => {
  it('refuses a model no configuration routes (a decision allowing *) without naming it', async () => {
    const stage = createForwardStage(() => registry('http://127.0.0.1:9/v1'));
    const err = await rejects(stage.run(context({ model: 'CANARY-MODEL jane@example.com' }, decision({ models: ['*'] }))));
    expect(err).toMatchObject({ code: 'invalid_request', message: 'the requested model is not configured', location: { path: 'model' } });
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain('CANARY');
  });

  it('sends the outbound prompt with the key from the secret ref, clamps tokens, records usage and upstream metrics', async () => {
    upstream = await startUpstream();
    const metrics = createMetrics({ collectDefault: false });
    const stage = createForwardStage(() => registry(upstream!.baseUrl), { metrics });
    expect(stage.name).toBe('forward');
    const ctx = context({ max_tokens: 500, params: { temperature: 0, max_completion_tokens: 900 } }, decision({ max_tokens: 100 }));
    await stage.run(ctx);
    const sent = upstream.received[0]!;
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent.headers.traceparent).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${ctx.trace.spanId}-01`);
    expect(sent.body).toMatchObject({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'outbound prompt' }],
      max_tokens: 100,
      max_completion_tokens: 100,
      temperature: 0,
      stream: false,
    });
    expect(ctx.provider).toBe('openai');
    expect(ctx.response?.kind).toBe('complete');
    expect(ctx.usage).toEqual({ prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
    const text = await metrics.render();
    expect(text).toContain('warden_upstream_requests_total{provider="openai",outcome="ok"} 1');
  });

  it('sends the redacted parameters, and fails closed when the request has parameters but no redacted copy', async () => {
    upstream = await startUpstream();
    const stage = createForwardStage(() => registry(upstream!.baseUrl));
    const ctx = context({ params: { user: 'jane.doe@example.com', seed: 7 } });
    ctx.outboundParams = { user: '<EMAIL_ADDRESS_1>', seed: 7 };
    await stage.run(ctx);
    expect(upstream.received[0]!.body).toMatchObject({ user: '<EMAIL_ADDRESS_1>', seed: 7 });
    expect(JSON.stringify(upstream.received[0]!.body)).not.toContain('jane.doe');

    const unredacted = context({ params: { user: 'jane.doe@example.com' } });
    delete unredacted.outboundParams;
    expect((await rejects(stage.run(unredacted))).code).toBe('internal');
    expect(upstream.received).toHaveLength(1);
  });

  it('uses the decision cap when the caller asks for no limit, and the smaller of the two otherwise', async () => {
    upstream = await startUpstream();
    const stage = createForwardStage(() => registry(upstream!.baseUrl));
    await stage.run(context({}, decision({ max_tokens: 64 })));
    await stage.run(context({ max_tokens: 10 }, decision({ max_tokens: 64 })));
    await stage.run(context({ max_tokens: 10 }, decision()));
    expect(upstream.received.map((r) => r.body.max_tokens)).toEqual([64, 10, 10]);
  });

  it('routes models through the config map to the echo provider', async () => {
    upstream = await startUpstream();
    const stage = createForwardStage(() => registry(upstream!.baseUrl));
    const ctx = context({ model: 'local' });
    await stage.run(ctx);
    expect(ctx.provider).toBe('echo');
    if (ctx.response?.kind !== 'complete') throw new Error('expected complete');
    expect(ctx.response.result.choices[0]!.message.content).toBe('user: outbound prompt');
    expect(upstream.received).toHaveLength(0);
  });

  it('streams: the response relays every chunk and usage lands in the context', async () => {
    upstream = await startUpstream();
    const stage = createForwardStage(() => registry(upstream!.baseUrl));
    const ctx = context({ stream: true });
    await stage.run(ctx);
    if (ctx.response?.kind !== 'stream') throw new Error('expected stream');
    const chunks: CompletionChunk[] = [];
    for await (const c of ctx.response.chunks) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello there');
    expect(ctx.usage).toEqual({ prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 });
  });

  it('a streaming request to a failing upstream fails in the stage, before any chunk is sent', async () => {
    upstream = await startUpstream((_req, res) => {
      res.writeHead(503);
      res.end('down');
    });
    const metrics = createMetrics({ collectDefault: false });
    const stage = createForwardStage(() => registry(upstream!.baseUrl), { metrics });
    const ctx = context({ stream: true });
    const e = await rejects(stage.run(ctx));
    expect(e.code).toBe('upstream_error');
    expect(e.details).toMatchObject({ status: 503 });
    expect(ctx.response).toBeUndefined();
    expect(await metrics.render()).toContain('warden_upstream_requests_total{provider="openai",outcome="error"} 1');
  });

  it('the client going away mid-stream closes the upstream connection', async () => {
    upstream = await startUpstream((_req, res) => {
      sseHead(res);
      sse(res, chunk({ role: 'assistant', content: 'first' }));
    });
    const stage = createForwardStage(() => registry(upstream!.baseUrl));
    const ac = new AbortController();
    const ctx = context({ stream: true }, decision(), ac.signal);
    await stage.run(ctx);
    if (ctx.response?.kind !== 'stream') throw new Error('expected stream');
    const it = ctx.response.chunks[Symbol.asyncIterator]();
    expect((await it.next()).value?.choices[0]?.delta.content).toBe('first');
    ac.abort();
    await it.return?.();
    await upstream.sockets[0]!.closed;
    expect(upstream.sockets[0]!.isClosed()).toBe(true);
  });

  it('the upstream deadline ends a call that takes too long', async () => {
    upstream = await startUpstream(() => {
      /* never answers */
    });
    const stage = createForwardStage(() => registry(upstream!.baseUrl), { upstreamTimeoutMs: 100 });
    const e = await rejects(stage.run(context()));
    expect(e.code).toBe('upstream_timeout');
  });

  it('with request.cancel, the deadline aborts the request signal itself and the upstream socket closes', async () => {
    upstream = await startUpstream(() => {
      /* never answers */
    });
    const ac = new AbortController();
    const stage = createForwardStage(() => registry(upstream!.baseUrl), { upstreamTimeoutMs: 100 });
    const e = await rejects(stage.run(context({ cancel: (reason) => ac.abort(reason) }, decision(), ac.signal)));
    expect(e.code).toBe('upstream_timeout');
    expect(ac.signal.aborted).toBe(true);
    expect((ac.signal.reason as Error).name).toBe('TimeoutError');
    await upstream.sockets[0]!.closed;
  });

  it('with request.cancel, a call that settles in time leaves the request signal alone', async () => {
    upstream = await startUpstream();
    const ac = new AbortController();
    const stage = createForwardStage(() => registry(upstream!.baseUrl), { upstreamTimeoutMs: 100 });
    const ctx = context({ cancel: (reason) => ac.abort(reason) }, decision(), ac.signal);
    await stage.run(ctx);
    expect(ctx.response?.kind).toBe('complete');
    // The deadline was cleared when the call settled: it never fires afterwards.
    await new Promise((r) => setTimeout(r, 200));
    expect(ac.signal.aborted).toBe(false);
  });

  it('fails closed: denied decision, missing decision or prompt, unconfigured model — nothing is sent', async () => {
    upstream = await startUpstream();
    const stage = createForwardStage(() => registry(upstream!.baseUrl));
    expect((await rejects(stage.run(context({}, decision({ allow: false }))))).code).toBe('policy_denied');
    const noDecision = context();
    delete noDecision.decision;
    expect((await rejects(stage.run(noDecision))).code).toBe('internal');
    const noPrompt = context();
    delete noPrompt.outbound;
    expect((await rejects(stage.run(noPrompt))).code).toBe('internal');
    const unknown = await rejects(stage.run(context({ model: 'gpt-5-unknown' })));
    expect(unknown.code).toBe('invalid_request');
    expect(unknown.location).toEqual({ path: 'model' });
    expect(upstream.received).toHaveLength(0);
  });
});
