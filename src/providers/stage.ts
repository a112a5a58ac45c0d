/**
 * Stage 7, forward: sends the outbound (rendered, redacted) prompt to the provider the model
 * routes to. Token limits are clamped to the decision's `max_tokens` — including the newer
 * `max_completion_tokens` parameter and llama.cpp's `n_predict`, so a caller cannot pass around
 * the cap. For streams, the
 * stage waits for the first chunk: an upstream that is down or answers 4xx/5xx fails the request
 * with a proper error before any byte of a stream is sent to the client.
 */
import { deadlineExceeded, isDeadlineExceeded, onAbort, RequestSignal, type CancelSignal } from '../pipeline/cancel.js';
import { setDeadline } from '../pipeline/deadlines.js';
import { outboundJson } from '../pipeline/canonical-json.js';
import { WardenError } from '../pipeline/errors.js';
import type { ModelProvider } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import type { CompletionChunk, CompletionResult, PromptRequest, UpstreamRequest } from '../pipeline/types.js';
import { formatTraceparent } from '../telemetry/tracing.js';
import type { UpstreamOutcome } from '../telemetry/metrics.js';
import type { ProviderRegistry } from './registry.js';

export interface ForwardStageOptions {
  /** Deadline for the whole upstream call (streams: to the last chunk). */
  upstreamTimeoutMs?: number;
  /** Upstream metrics (the telemetry Metrics object fits). */
  metrics?: { observeUpstream(provider: string, outcome: UpstreamOutcome, seconds: number): void };
}

function clamp(requested: unknown, cap: number | undefined): number | undefined {
  const asked = typeof requested === 'number' && Number.isFinite(requested) ? requested : undefined;
  if (cap === undefined) return asked;
  return asked === undefined ? cap : Math.min(asked, cap);
}

/**
 * One deadline per upstream call, tied to the client's signal. When the ingress lets stages
 * cancel the request (`request.cancel`), the deadline aborts the request's own signal: no second
 * AbortController and no listener between the two (AbortSignals are costly to create and to
 * listen to, and this runs on every request). Otherwise a signal of its own follows the client's,
 * hand-rolled rather than AbortSignal.any so the listener and deadline are released as soon as the
 * call settles. The deadline shares one timer with every other of its length (pipeline/deadlines).
 */
function upstreamSignal(request: PromptRequest, timeoutMs: number | undefined): { signal: CancelSignal; release: () => void } {
  const client = request.signal;
  const cancel = request.cancel;
  if (cancel) {
    if (timeoutMs === undefined) return { signal: client, release: noop };
    return { signal: client, release: setDeadline(timeoutMs, () => cancel(deadlineExceeded())) };
  }
  const own = new RequestSignal();
  let stop = noop;
  if (client.aborted) own.abort(client.reason);
  else stop = onAbort(client, () => own.abort(client.reason));
  const clear = timeoutMs === undefined ? noop : setDeadline(timeoutMs, () => own.abort(deadlineExceeded()));
  return {
    signal: own,
    release: () => {
      clear();
      stop();
    },
  };
}

/**
 * A pass-through `n_predict` under the decision's cap. llama.cpp's server reads it before
 * `max_tokens` (its chat route passes unknown members on to the sampler), and -1 there is "no
 * limit": anything but a positive number becomes the cap. Never added when absent: OpenAI refuses
 * members it does not know.
 */
function cappedNPredict(requested: unknown, cap: number): number {
  return typeof requested === 'number' && requested > 0 ? Math.min(requested, cap) : cap;
}

function noop(): void {}

/**
 * `aborted`: Warden's side ended the call, the client going away (`cancelled`) or the shutdown
 * deadline (`shutting_down`); not the provider's failure, which `error` alerts are about.
 */
function outcomeOf(err: unknown): UpstreamOutcome {
  const code = err instanceof WardenError ? err.code : 'upstream_error';
  return code === 'upstream_timeout' ? 'timeout' : code === 'cancelled' || code === 'shutting_down' ? 'aborted' : 'error';
}

/**
 * The refusal of a model the `models` config does not route to a provider. The name is repeated
 * only when the decision lists it by name (then it is the policy's own text); a name the policy
 * allowed by `*` is the caller's data, which may hold anything, and is not.
 */
export function modelNotConfigured(model: string, allowed: readonly string[] = []): WardenError {
  const message = allowed.includes(model) ? `model ${JSON.stringify(model)} is not configured` : 'the requested model is not configured';
  return new WardenError('invalid_request', message, { location: { path: 'model' } });
}

export function createForwardStage(getProviders: () => ProviderRegistry, opts: ForwardStageOptions = {}): Stage {
  return {
    name: 'forward',
    // Not async: a non-streamed call is one `then` on the provider's promise (an async function
    // would add its own promise and an await's); streams continue in `firstChunk`. A refusal
    // before anything is sent still comes back as a rejected promise, as from an async function.
    run(ctx: RequestContext): Promise<void> {
      try {
        return forward(ctx);
      } catch (err) {
        return Promise.reject(err);
      }
    },
  };

  function forward(ctx: RequestContext): Promise<void> {
    const { request, decision, outbound } = ctx;
    // Fail closed when an earlier stage did not produce what forwarding needs.
    if (!decision || !outbound) throw new WardenError('internal', 'internal error');
    // Tools and pass-through parameters go upstream only in their redacted form.
    if (request.tools?.length && !ctx.outboundTools) throw new WardenError('internal', 'internal error');
    if (!ctx.outboundParams && Object.keys(request.params).length > 0) throw new WardenError('internal', 'internal error');
    if (!decision.allow) throw new WardenError('policy_denied', 'the request was not allowed by policy');

    const providers = getProviders();
    const providerName = ctx.provider ?? providers.providerNameFor(request.model);
    const provider: ModelProvider | undefined = providerName === undefined ? undefined : providers.get(providerName);
    // Already refused after the decision (modelNotConfigured); kept so forward never guesses.
    if (!provider || providerName === undefined) throw modelNotConfigured(request.model, decision.models);
    ctx.provider = providerName;

    const params = { ...ctx.outboundParams };
    if (params.max_completion_tokens !== undefined) {
      params.max_completion_tokens = clamp(params.max_completion_tokens, decision.max_tokens);
    }
    if (params.n_predict !== undefined && decision.max_tokens !== undefined) params.n_predict = cappedNPredict(params.n_predict, decision.max_tokens);
    const { signal, release } = upstreamSignal(request, opts.upstreamTimeoutMs);
    const upstream: UpstreamRequest = {
      model: request.model,
      messages: outbound,
      // Serialised once: the audit stage HMACs this same text.
      messagesJson: outboundJson(ctx),
      tools: ctx.outboundTools,
      stream: request.stream,
      max_tokens: clamp(request.max_tokens, decision.max_tokens),
      max_tokens_param: request.max_tokens_param,
      params,
      signal,
      traceparent: formatTraceparent({
        traceId: ctx.trace.traceId,
        spanId: ctx.trace.spanId,
        sampled: (ctx.trace as { sampled?: boolean }).sampled,
      }),
    };

    const started = performance.now();
    const observe = (outcome: UpstreamOutcome) =>
      opts.metrics?.observeUpstream(providerName, outcome, (performance.now() - started) / 1000);

    const failed = (err: unknown): Promise<never> => {
      release();
      observe(outcomeOf(err));
      return Promise.reject(err);
    };
    if (!request.stream) {
      let answer: Promise<CompletionResult>;
      try {
        answer = provider.complete(upstream);
      } catch (err) {
        return failed(err);
      }
      return answer.then((result) => {
        release();
        ctx.response = { kind: 'complete', result };
        ctx.usage = result.usage;
        observe('ok');
      }, failed);
    }
    return firstChunk(ctx, provider, upstream, release, observe, failed);
  }
}

/** Starts a stream and waits for its first chunk, so a failing upstream fails the request before any byte is sent. */
async function firstChunk(
  ctx: RequestContext,
  provider: ModelProvider,
  upstream: UpstreamRequest,
  release: () => void,
  observe: (outcome: UpstreamOutcome) => void,
  failed: (err: unknown) => Promise<never>,
): Promise<void> {
  let iterator: AsyncIterator<CompletionChunk>;
  let first: IteratorResult<CompletionChunk>;
  try {
    iterator = provider.stream(upstream)[Symbol.asyncIterator]();
    first = await iterator.next();
  } catch (err) {
    return failed(err);
  }
  ctx.response = { kind: 'stream', chunks: relay(first, iterator, ctx, upstream.signal, release, observe) };
}

/** Replays the first chunk, then the rest; records usage and settles the deadline exactly once. */
async function* relay(
  first: IteratorResult<CompletionChunk>,
  iterator: AsyncIterator<CompletionChunk>,
  ctx: RequestContext,
  signal: CancelSignal,
  release: () => void,
  observe: (outcome: UpstreamOutcome) => void,
): AsyncGenerator<CompletionChunk> {
  let outcome: UpstreamOutcome = 'aborted';
  try {
    let step = first;
    while (!step.done) {
      if (step.value.usage) ctx.usage = step.value.usage;
      yield step.value;
      step = await iterator.next();
    }
    outcome = 'ok';
  } catch (err) {
    outcome = outcomeOf(err);
    throw err;
  } finally {
    // Reached on normal end, on error, and when the consumer stops early (client went away, or
    // it stopped reading and the deadline ended the request): closing the provider's iterator
    // closes the upstream request.
    if (outcome === 'aborted') {
      await iterator.return?.();
      if (isDeadlineExceeded(signal.reason)) outcome = 'timeout';
    }
    release();
    observe(outcome);
  }
}
