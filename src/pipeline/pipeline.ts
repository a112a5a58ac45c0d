/**
 * The request pipeline: the one place that knows the stage order (DESIGN.md, "One request, end
 * to end"). It runs the stages on a RequestContext, times each one, ends the request closed on the
 * first failure, and writes exactly one audit record per request — for streams, when the stream
 * ends, fails or the client goes away.
 */
import { performance } from 'node:perf_hooks';
import { startTrace } from '../telemetry/tracing.js';
import { boundedStrings, MAX_REASONS_CHARS } from './bounded-strings.js';
import { abortReasonError, onAbort } from './cancel.js';
import { inCheckPhase } from './check-phase.js';
import { WardenError, isWardenError } from './errors.js';
import { markUpstream } from './upstream-failure.js';
import { auditRecordKept } from './ports.js';
import type { RequestContext, Stage, StageName } from './stage.js';
import type { CompletionChunk, Credentials, Decision, PipelineResponse, PromptRequest, ToolDefinition } from './types.js';

/** The stages in the order they run. Ingress adapters never see this list. */
export const STAGE_ORDER = [
  'authenticate',
  'resolve',
  'decide',
  'fetch',
  'render',
  'redact',
  'forward',
  'respond',
] as const satisfies readonly StageName[];

export type RequestStageName = (typeof STAGE_ORDER)[number];

/** A `prompt.render` dry run stops after this stage: nothing is forwarded. */
const LAST_RENDER_STAGE: RequestStageName = 'redact';

/** A `models.list` request only needs to know who is asking and what the policy says. */
const MODELS_LIST_STAGES: readonly RequestStageName[] = ['authenticate', 'decide'];

export type PipelineStages = Record<RequestStageName, Stage>;

/** What the pipeline reports to metrics; the telemetry module's registry implements it. */
export interface PipelineMetrics {
  observeStage(stage: StageName, seconds: number): void;
  observeRequest(outcome: RequestOutcome): void;
  observeDecision?(allow: boolean): void;
  observeRedactions?(counts: Readonly<Record<string, number>>): void;
  streamOpened?(): void;
  streamClosed?(): void;
  observeAudit?(outcome: 'ok' | 'error'): void;
}

export interface RequestOutcome {
  protocol: PromptRequest['protocol'];
  action: PromptRequest['action'];
  /** `ok` or the Warden error code. */
  code: string;
  stream: boolean;
  seconds: number;
  decision: 'allow' | 'deny' | 'none';
}

/** The minimal logger surface used here (pino's Logger satisfies it). */
export interface PipelineLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

export interface PipelineOptions {
  stages: PipelineStages;
  /** The audit stage: builds the record from the context and appends it to the audit log. */
  audit: Stage;
  /** When true, a failed audit write fails the request (`audit_unavailable`); else it is logged. */
  auditRequired: boolean;
  metrics?: PipelineMetrics;
  logger: PipelineLogger;
}

export interface Pipeline {
  /**
   * Runs a `prompt.execute` or `prompt.render` request. Throws WardenError only. `admitted`: the
   * request's credentials already went through `authenticate` (the same Credentials object): the
   * authenticate stage is not run again, its principal and timing are this one's.
   */
  run(request: PromptRequest, admitted?: Admitted): Promise<PipelineResponse>;
  /**
   * Runs the authenticate stage (the first) ahead of the rest, on what an ingress knows before it
   * reads the body: the credentials, ids and trace of `request` (its model, messages and params
   * are not read). Credentials that fail are refused before the body costs a read or a parse:
   * the request is audited (one record, its outcome `unauthenticated` or the stage's error) and
   * the error thrown. Answers at once when the method does (dev, a token verified before).
   */
  authenticate(request: PromptRequest): Admitted | Promise<Admitted>;
  /**
   * Runs a `models.list` request and returns the decision's models. `check` may refuse the answer
   * (a `GET /v1/models/{id}` for a model the caller may not use): its error is the request's
   * outcome, audited and thrown. Throws WardenError only.
   */
  listModels(request: PromptRequest, check?: (models: readonly string[]) => WardenError | undefined): Promise<{ models: string[]; decision: Decision }>;
  /**
   * Writes the audit record of a request the ingress refused before it could be read (bad JSON,
   * too large, invalid UTF-8, wrong types): only the request id, trace, protocol, action and the
   * error code, and the principal when its credentials had passed (`admitted`, from `authenticate`
   * for this request: a body refused after them is still the authenticated caller's). Without it
   * the record has no principal (the credentials were never checked). `request` carries no body
   * content. Never throws: the caller is already answering with `error`.
   */
  auditRejected(request: PromptRequest, error: WardenError, admitted?: Admitted): Promise<void>;
}

const INTERNAL_MESSAGE = 'internal error';

/**
 * Credentials that passed the authenticate stage (Pipeline.authenticate), for the `run` of the
 * request that carries them. Only this module makes one (its members are private), and `run`
 * takes it only with the very Credentials object it was made for.
 */
export class Admitted {
  readonly #credentials: Credentials;
  readonly #ctx: RequestContext;
  /** @internal */
  constructor(credentials: Credentials, ctx: RequestContext) {
    this.#credentials = credentials;
    this.#ctx = ctx;
  }
  /** @internal The context the authenticate stage ran on, when it was for `credentials`. */
  static contextFor(admitted: Admitted, credentials: Credentials): RequestContext | undefined {
    return admitted.#credentials === credentials ? admitted.#ctx : undefined;
  }
  /**
   * @internal The context the authenticate stage ran on, for the record of its request refused
   * afterwards for its body (auditRejected): that request carries no credentials to compare.
   */
  static refusedContext(admitted: Admitted): RequestContext {
    return admitted.#ctx;
  }
}

/**
 * A request's stage durations, every stage's member there from the start (undefined until the
 * stage ran). runStages stores them by the stage's name: into an empty object, each store added a
 * member from a call site that sees every name, which V8 does in its runtime (a map transition
 * per stage, seen in a perf profile at saturation); into members that exist, it is a plain store.
 */
function stageTimings(): RequestContext['timings'] {
  return {
    authenticate: undefined,
    resolve: undefined,
    decide: undefined,
    fetch: undefined,
    render: undefined,
    redact: undefined,
    forward: undefined,
    respond: undefined,
    audit: undefined,
  };
}

/**
 * Any non-Warden error becomes `internal`: its message may carry data we must not leak, so the
 * caller and the log only learn its type and where it happened.
 */
function toWardenError(err: unknown, stage: StageName, logger: PipelineLogger): WardenError {
  if (isWardenError(err)) return err;
  const type = err instanceof Error ? err.constructor.name : typeof err;
  // Only the stack's frames: its first lines are the message, which may run over several lines.
  const frames = err instanceof Error && typeof err.stack === 'string' ? stackFrames(err, err.stack) : undefined;
  logger.error({ stage, error_type: type, frames }, 'unexpected error in pipeline stage');
  return new WardenError('internal', INTERNAL_MESSAGE, { cause: err });
}

/**
 * Up to seven frame lines of `err`'s stack, never a line of its message: V8 writes the stack as
 * the error's text (`Type: message`, as many lines as the message has) and then the frames. A
 * message line that looks like a frame (input quoted in it) is cut off with the message when the
 * stack begins with that text, as V8 writes it; only a stack rewritten by its code falls back to
 * the frame-shaped lines alone.
 */
function stackFrames(err: Error, stack: string): string {
  let text: string;
  try {
    text = String(err);
  } catch {
    text = '';
  }
  const rest = text !== '' && stack.startsWith(text) ? stack.slice(text.length) : stack;
  const frames: string[] = [];
  for (const line of rest.split('\n')) {
    if (STACK_FRAME.test(line) && frames.push(line) === 7) break;
  }
  return frames.join('\n');
}

const STACK_FRAME = /^ {4}at /;

/**
 * The decision as a dry run shows it: its policy-written lists bounded as a refusal's and a
 * record's are (64 Ki characters each, then one item counting the rest). An allowing decision's
 * reasons are unbounded too: one per entry of a 20,000-entry data list made a gRPC `Render`
 * answer of megabytes, past a client's 4 MiB receive limit. The lists are the decision's own
 * (no copy) when they fit.
 */
function renderedDecision(d: Decision): Decision {
  const reasons = boundedStrings(d.reasons, MAX_REASONS_CHARS, (rest) => `(${rest} more reason(s) not shown: a dry run keeps ${MAX_REASONS_CHARS} characters of reasons)`);
  const models = boundedStrings(d.models, MAX_REASONS_CHARS, (rest) => `(${rest} more model(s) not shown: a dry run keeps ${MAX_REASONS_CHARS} characters of models)`);
  const secrets = boundedStrings(d.secrets, MAX_REASONS_CHARS, (rest) => `(${rest} more secret ref(s) not shown: a dry run keeps ${MAX_REASONS_CHARS} characters of secret refs)`);
  if (reasons === d.reasons && models === d.models && secrets === d.secrets) return d;
  return { ...d, reasons: reasons as string[], models: models as string[], secrets: secrets as string[] };
}

export function createPipeline(opts: PipelineOptions): Pipeline {
  const { stages, audit, auditRequired, metrics, logger } = opts;
  for (const name of STAGE_ORDER) {
    const stage = stages[name];
    if (!stage || stage.name !== name) {
      throw new WardenError('internal', `pipeline stage '${name}' is missing or misnamed`);
    }
  }
  const ordered = STAGE_ORDER.map((name) => stages[name]);
  const renderStages = ordered.slice(0, STAGE_ORDER.indexOf(LAST_RENDER_STAGE) + 1);
  // The same without the authenticate stage, for a request whose credentials were admitted first.
  const authenticate = stages.authenticate;
  const admittedOrdered = ordered.filter((s) => s !== authenticate);
  const admittedRender = renderStages.filter((s) => s !== authenticate);
  const modelStages = MODELS_LIST_STAGES.map((name) => stages[name]);

  const forward = stages.forward;
  const respond = stages.respond;
  const prepareAudit = audit.prepare?.bind(audit);

  async function runStages(ctx: RequestContext, list: readonly Stage[]): Promise<void> {
    const signal = ctx.request.signal;
    // One clock read per stage boundary: a stage's end is the next one's start.
    let start = performance.now();
    for (const stage of list) {
      // A client that left does not start the next stage: no secret read, no upstream call for
      // nobody (one property read per stage). Not `respond`: once the upstream has answered, the
      // answer (and its usage) was paid for, and the record must say so.
      if (signal.aborted && stage !== respond) throw abortOutcome(ctx);
      try {
        // Most stages are synchronous: awaiting their undefined would still cost a microtask hop.
        const running = stage.run(ctx);
        if (running !== undefined) {
          // The forward stage has handed the prompt to the upstream client and waits for the
          // answer: the audit stage drafts its record (the prompt HMAC and every member the rest
          // of the request cannot change) in that wait, while this process would otherwise be
          // idle, instead of after the answer, where the caller waits for it.
          if (stage === forward && prepareAudit) prepareSoon(ctx);
          await running;
        }
      } catch (err) {
        throw toWardenError(err, stage.name, logger);
      } finally {
        const end = performance.now();
        const ms = end - start;
        start = end;
        // Observed with the request's other metrics once the response is out (reportSoon).
        ctx.timings[stage.name] = ms;
      }
    }
  }

  /**
   * Contexts waiting for the audit stage's `prepare`, run in the check phase of this event-loop
   * turn: undici writes a request on a reused keep-alive connection from a setImmediate of its own
   * (it first lets pending bytes on the idle socket be read), queued while forward ran, so an
   * immediate queued now runs after the request has left. Done at once, the work would delay the
   * write instead of overlapping the upstream. One immediate serves every request of the turn.
   */
  const prepareSoon = inCheckPhase((ctx: RequestContext) => {
    // `prepare` must not throw; if one does anyway, the audit's `run` does the work itself.
    try {
      prepareAudit!(ctx);
    } catch (err) {
      logger.warn({ stage: 'audit', error_type: err instanceof Error ? err.constructor.name : typeof err }, 'audit prepare failed; the record is built without it');
    }
  });

  /**
   * Writes the one audit record. Resolves with the error to surface to the caller (only when the
   * audit is required), or undefined; never rejects. Not async: one `then` on the audit's own
   * promise, instead of an async function's promise and an await's.
   */
  function writeAudit(ctx: RequestContext): Promise<WardenError | undefined> {
    const start = performance.now();
    const written = (): undefined => {
      ctx.timings.audit = performance.now() - start;
      metrics?.observeAudit?.('ok');
      return undefined;
    };
    const failed = (err: unknown): WardenError | undefined => {
      ctx.timings.audit = performance.now() - start;
      metrics?.observeAudit?.('error');
      const code = isWardenError(err) ? err.code : 'internal';
      // A record a failed sink keeps is written once it recovers (the sink's failure was logged
      // once): an error line per request refused meanwhile would say it was lost, and flood the log.
      if (auditRecordKept(err)) logger.debug?.({ request_id: ctx.request.id, code, required: auditRequired }, 'audit record kept until the audit sink recovers');
      else logger.error({ request_id: ctx.request.id, code, required: auditRequired }, 'audit record could not be written');
      if (!auditRequired) return undefined;
      return isWardenError(err) && err.code === 'audit_unavailable'
        ? err
        : new WardenError('audit_unavailable', 'the audit record could not be written', { cause: err });
    };
    let running: void | Promise<void>;
    try {
      running = audit.run(ctx);
    } catch (err) {
      return Promise.resolve(failed(err));
    }
    return Promise.resolve(running).then(written, failed);
  }

  /**
   * Requests whose metrics are still to be observed: stage durations (`ctx.timings`), decision,
   * redactions and the request itself. They are observed in the check phase of the turn in
   * which the request finished, after its response went out, one immediate for the whole turn:
   * a dozen observations from cold caches are a few microseconds the caller need not wait for.
   * `stream` undefined: only the stage durations (a request refused before it was read).
   */
  const queueReport = inCheckPhase((r: { ctx: RequestContext; stream: boolean | undefined; seconds: number }) => {
    try {
      report(r.ctx, r.stream, r.seconds);
    } catch (err) {
      // Metrics must never take the process down; the request itself is already answered.
      logger.warn({ error_type: err instanceof Error ? err.constructor.name : typeof err }, 'request metrics could not be recorded');
    }
  });

  function reportSoon(ctx: RequestContext, stream: boolean | undefined): void {
    if (!metrics) return;
    // The request's duration ends now, not when the metrics are written.
    queueReport({ ctx, stream, seconds: (performance.timeOrigin + performance.now() - ctx.request.receivedAt) / 1000 });
  }

  function report(ctx: RequestContext, stream: boolean | undefined, seconds: number): void {
    if (!metrics) return;
    const timings = ctx.timings;
    for (const name in timings) {
      // A stage that did not run keeps the undefined stageTimings gave it.
      const ms = timings[name as StageName];
      if (ms !== undefined) metrics.observeStage(name as StageName, ms / 1000);
    }
    if (stream === undefined) return;
    const d = ctx.decision;
    if (d) metrics.observeDecision?.(d.allow);
    if (ctx.redaction && metrics.observeRedactions) {
      const r = ctx.redaction.report();
      metrics.observeRedactions(r.counts);
      metrics.observeRedactions(r.responseCounts);
    }
    metrics.observeRequest({
      protocol: ctx.request.protocol,
      action: ctx.request.action,
      code: ctx.error ? ctx.error.code : 'ok',
      stream,
      seconds,
      decision: d ? (d.allow ? 'allow' : 'deny') : 'none',
    });
  }

  /** Audits the request and schedules its metrics; rejects with the audit's error when it must. */
  function finish(ctx: RequestContext, stream: boolean): Promise<void> {
    return writeAudit(ctx).then((auditError) => {
      if (auditError && !ctx.error) ctx.error = auditError;
      reportSoon(ctx, stream);
      if (auditError) throw auditError;
    });
  }

  function newContext(request: PromptRequest): RequestContext {
    return { request, trace: startTrace(request.traceparent), timings: stageTimings() };
  }

  /**
   * The context for `request`: a new one, or one that carries on from the authenticate stage run
   * ahead (its trace ids, principal and timing). One admitted for other credentials counts for
   * nothing: the request is authenticated as if none were given.
   */
  function contextFor(request: PromptRequest, admitted: Admitted | undefined): RequestContext {
    const first = admitted === undefined ? undefined : Admitted.contextFor(admitted, request.credentials);
    if (first?.principal === undefined) return newContext(request);
    return { request, trace: first.trace, timings: first.timings, principal: first.principal };
  }

  function authenticateFirst(request: PromptRequest): Admitted | Promise<Admitted> {
    const ctx = newContext(request);
    const start = performance.now();
    const refuse = (err: unknown): Promise<never> => {
      ctx.timings.authenticate = performance.now() - start;
      ctx.error = toWardenError(err, 'authenticate', logger);
      return finish(ctx, false).then(() => {
        throw ctx.error;
      });
    };
    const admit = (): Admitted => {
      ctx.timings.authenticate = performance.now() - start;
      return new Admitted(request.credentials, ctx);
    };
    let running: void | Promise<void>;
    try {
      // A client that left before it was asked anything is audited as leaving, as in runStages.
      if (request.signal.aborted) throw abortOutcome(ctx);
      running = authenticate.run(ctx);
    } catch (err) {
      return refuse(err);
    }
    // Most answers are at once (dev, a token verified before): no promise.
    return running === undefined ? admit() : running.then(admit, refuse);
  }

  async function run(request: PromptRequest, admitted?: Admitted): Promise<PipelineResponse> {
    const ctx = contextFor(request, admitted);
    const isRender = request.action === 'prompt.render';
    try {
      const fromAuthenticate = ctx.principal === undefined;
      await runStages(ctx, isRender ? (fromAuthenticate ? renderStages : admittedRender) : fromAuthenticate ? ordered : admittedOrdered);
      if (isRender) {
        const decision = ctx.decision;
        const outbound = ctx.outbound;
        if (!decision || !outbound || !ctx.redaction) throw new WardenError('internal', INTERNAL_MESSAGE);
        ctx.response = {
          kind: 'render',
          decision: renderedDecision(decision),
          // What would be sent, except the secret values: the dry run answers the calling app.
          messages: ctx.redaction.maskSecretsForCaller(outbound),
          model: request.model,
          provider: ctx.provider ?? '',
        };
        // The rest of what would go upstream, in the same form.
        if (ctx.outboundTools) ctx.response.tools = ctx.redaction.maskSecretsInJson(ctx.outboundTools) as ToolDefinition[];
        if (ctx.outboundParams) ctx.response.params = ctx.redaction.maskSecretsInJson(ctx.outboundParams) as Record<string, unknown>;
      }
      const response = ctx.response;
      if (!response) throw new WardenError('internal', INTERNAL_MESSAGE);
      if (response.kind === 'stream') {
        // The audit record is written when the stream settles; the wrapper guarantees exactly once.
        metrics?.streamOpened?.();
        return { kind: 'stream', chunks: new AuditedStream(ctx, response.chunks, (c) => settleStream(c)) };
      }
      if (response.kind === 'complete') {
        if (response.result.usage) ctx.usage = response.result.usage;
        request.answerCheck?.(response.result);
        if (request.answerTurn) await request.answerTurn();
      }
    } catch (err) {
      ctx.error = isWardenError(err) ? err : toWardenError(err, 'respond', logger);
      if (ctx.response?.kind === 'stream') releaseStream(ctx.response.chunks);
      await finish(ctx, request.stream);
      throw ctx.error;
    }
    await finish(ctx, false);
    return ctx.response as PipelineResponse;
  }

  async function settleStream(ctx: RequestContext): Promise<WardenError | undefined> {
    metrics?.streamClosed?.();
    const auditError = await writeAudit(ctx);
    if (auditError && !ctx.error) ctx.error = auditError;
    reportSoon(ctx, true);
    return auditError;
  }

  async function listModels(request: PromptRequest, check?: (models: readonly string[]) => WardenError | undefined): Promise<{ models: string[]; decision: Decision }> {
    const ctx = newContext(request);
    try {
      await runStages(ctx, modelStages);
      const decision = ctx.decision;
      if (!decision) throw new WardenError('internal', INTERNAL_MESSAGE);
      const models = decision.allow ? decision.models : [];
      const refused = check?.(models);
      if (refused) {
        ctx.error = refused;
        await finish(ctx, false);
        throw refused;
      }
      if (request.answerTurn) await request.answerTurn();
      await finish(ctx, false);
      return { models, decision };
    } catch (err) {
      if (ctx.error) throw ctx.error; // audit already written and failed
      ctx.error = isWardenError(err) ? err : toWardenError(err, 'decide', logger);
      await finish(ctx, false);
      // A caller the policy refuses may use no model: an empty list, not an error (and no model
      // asked for by name; the record already says policy_denied).
      if (ctx.error.code === 'policy_denied' && ctx.decision) {
        const refused = check?.([]);
        if (refused) throw refused;
        return { models: [], decision: ctx.decision };
      }
      throw ctx.error;
    }
  }

  async function auditRejected(request: PromptRequest, error: WardenError, admitted?: Admitted): Promise<void> {
    // Refused for its body after its credentials passed: the record names who sent it, in the
    // trace span its authenticate stage ran in (and that stage's time is reported with it).
    const first = admitted === undefined ? undefined : Admitted.refusedContext(admitted);
    const ctx: RequestContext = first?.principal === undefined ? newContext(request) : { request, trace: first.trace, timings: first.timings, principal: first.principal };
    ctx.error = error;
    // A failed write is logged and counted by writeAudit; the caller already gets `error`.
    await writeAudit(ctx);
    reportSoon(ctx, undefined);
  }

  return { run, listModels, auditRejected, authenticate: authenticateFirst };
}

/**
 * Wraps the response stream so the audit record is written exactly once: when the stream ends,
 * when it throws, when the consumer stops early (`return()`, e.g. the client went away), or when
 * the request is aborted before anyone started reading.
 */
class AuditedStream implements AsyncIterableIterator<CompletionChunk> {
  private inner: AsyncIterator<CompletionChunk> | undefined;
  private settled: Promise<WardenError | undefined> | undefined;
  private readonly onAbort: () => void;
  private stopListening: () => void = () => {};

  constructor(
    private readonly ctx: RequestContext,
    private readonly source: AsyncIterable<CompletionChunk>,
    private readonly settle: (ctx: RequestContext) => Promise<WardenError | undefined>,
  ) {
    const signal = ctx.request.signal;
    this.onAbort = () => {
      // Nobody is reading: close the source so the upstream call is released, then audit.
      if (!this.inner) void this.finish(abortOutcome(ctx));
    };
    if (signal.aborted) queueMicrotask(this.onAbort);
    else this.stopListening = onAbort(signal, this.onAbort);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private finish(error?: WardenError): Promise<WardenError | undefined> {
    if (!this.settled) {
      this.stopListening();
      if (error && !this.ctx.error) this.ctx.error = error;
      this.settled = this.settle(this.ctx);
    }
    return this.settled;
  }

  async next(): Promise<IteratorResult<CompletionChunk>> {
    if (this.settled) return { done: true, value: undefined };
    this.inner ??= this.source[Symbol.asyncIterator]();
    let step: IteratorResult<CompletionChunk>;
    try {
      step = await this.inner.next();
    } catch (err) {
      const error = isWardenError(err)
        ? err
        : this.ctx.request.signal.aborted
          ? abortOutcome(this.ctx)
          : markUpstream(new WardenError('upstream_error', 'the upstream stream failed', { cause: err }), 'failed');
      await this.finish(error);
      throw error;
    }
    if (step.done) {
      const refused = this.endCheck();
      if (refused) {
        await this.finish(refused);
        throw refused;
      }
      const auditError = await this.finish();
      if (auditError) throw auditError;
      return step;
    }
    const usage = step.value.usage;
    if (usage) this.ctx.usage = usage;
    return step;
  }

  /** The ingress's refusal of how the stream ended (PromptRequest.streamEnd), or undefined. */
  private endCheck(): WardenError | undefined {
    try {
      this.ctx.request.streamEnd?.();
      return undefined;
    } catch (err) {
      return isWardenError(err) ? err : new WardenError('internal', INTERNAL_MESSAGE, { cause: err });
    }
  }

  async return(): Promise<IteratorResult<CompletionChunk>> {
    await this.close(this.ctx.request.signal.aborted ? abortOutcome(this.ctx) : undefined);
    return { done: true, value: undefined };
  }

  /**
   * The consumer failed (e.g. the ingress could not encode a chunk in its protocol): the source
   * is closed and `err` is the request's outcome in its audit record.
   */
  async throw(err?: unknown): Promise<IteratorResult<CompletionChunk>> {
    await this.close(isWardenError(err) ? err : new WardenError('internal', INTERNAL_MESSAGE));
    throw err;
  }

  /** Closes the source (releasing the upstream call), then audits with `error` as the outcome. */
  private async close(error: WardenError | undefined): Promise<void> {
    const inner = this.inner;
    this.inner = inner ?? emptyIterator;
    if (inner?.return) {
      try {
        await inner.return();
      } catch {
        // The source failed while closing; the request is over either way.
      }
    }
    await this.finish(error);
  }
}

/**
 * Why a request whose signal aborted ended, from the abort's reason: the ingress's own word (a
 * WardenError: `shutting_down` when the shutdown deadline cut it, `cancelled` when the client
 * went away), the upstream deadline (`upstream_timeout`: a client that stopped reading is stopped
 * by it too), else the client went away.
 */
function abortOutcome(ctx: RequestContext): WardenError {
  return abortReasonError(ctx.request.signal.reason, ctx.provider ?? 'upstream') ?? new WardenError('cancelled', 'the client closed the request');
}

/**
 * A stage failed after the upstream stream was opened: close it so the upstream call ends now.
 * A generator that never started skips its `finally` on `return()`, so take one step first (the
 * forward stage has already buffered the first chunk, so this does no I/O) and then return.
 */
function releaseStream(chunks: AsyncIterable<CompletionChunk>): void {
  const it = chunks[Symbol.asyncIterator]();
  it.next().then(
    () => it.return?.(),
    () => undefined,
  ).catch(() => undefined);
}

const emptyIterator: AsyncIterator<CompletionChunk> = {
  next: () => Promise.resolve({ done: true, value: undefined }),
};
