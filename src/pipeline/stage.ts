/**
 * The filter-chain contract (modelled on Envoy's HTTP filters): each stage sees the request
 * context, adds what it produces, and may end the request by throwing a WardenError. A stage
 * never knows which stage ran before or after it; it only reads the context fields it needs
 * and fails closed when they are missing. `pipeline.ts` is the only place that knows the order.
 */
import type { OutboundText } from './canonical-json.js';
import type { WardenError } from './errors.js';
import type {
  ChatMessage,
  CompletionResult,
  Decision,
  PipelineResponse,
  PolicyInput,
  Principal,
  PromptRequest,
  Template,
  TextProvenance,
  ToolDefinition,
} from './types.js';
import type { RedactionSession } from './ports.js';

export type StageName =
  | 'authenticate'
  | 'resolve'
  | 'decide'
  | 'fetch'
  | 'render'
  | 'redact'
  | 'forward'
  | 'respond'
  | 'audit';

/** Per-request state. Fields are filled in as stages run; absent means "not produced yet". */
export interface RequestContext {
  readonly request: PromptRequest;
  /** Trace and span ids (hex) for logs and audit; set by the pipeline before any stage runs. */
  readonly trace: { traceId: string; spanId: string };
  principal?: Principal;
  template?: Template;
  /**
   * The template the resolve stage refused, for the audit record (which must say what a caller
   * still asks for): a retired template itself, or the id (always of the id grammar) and the
   * version (null when none was named) of one that does not exist. Never set with `template`.
   */
  refusedTemplate?: { id: string; version: number | null; template?: Template };
  /**
   * The request's variables checked against `template`'s declarations (names → strings to insert),
   * set with it by the resolve stage. The render stage adds the config and secret values to this
   * object; like `secrets`, it lives in memory only and is never logged.
   */
  variableValues?: Record<string, string>;
  policyInput?: PolicyInput;
  /**
   * The revision of the policy set the decide stage asked, set when it asks: the audit records it,
   * since a reload may make another set current before the record is written.
   */
  policyRevision?: string;
  /**
   * The revision of the template set the resolve stage read the template from, set when it reads
   * it: the audit records it, since a reload may make another set current before the record is
   * written (and a template edited in place keeps its id@version).
   */
  templateRevision?: string;
  decision?: Decision;
  /** Provider name the model routes to (from config `models`). */
  provider?: string;
  /** Resolved secret values by ref. In memory only; never logged. */
  secrets?: Map<string, string>;
  /**
   * Names of the values in `secrets`, by ref, when the resolver gave them (SecretResolver.stamps):
   * the render stage names a message made only of fixed text, config and these values without
   * hashing the values.
   */
  secretStamps?: ReadonlyMap<string, string>;
  /** Secret refs whose values the template placed in the prompt on purpose (leak guard exempts them). */
  secretsInPrompt?: Set<string>;
  /** The rendered prompt, before redaction. */
  messages?: ChatMessage[];
  /**
   * JSON string literals of the rendered contents, one per entry of `messages` (undefined where
   * there is none): the render stage builds them from template text escaped once at load, so
   * `outboundJson()` need not escape a long fixed prompt again for each request whose redaction
   * left that message alone. Dies with the request.
   */
  contentJson?: Array<string | undefined>;
  /**
   * What produced each entry of `messages` when a template rendered it (TextProvenance). The
   * redact stage's findings cache keys on it instead of hashing a long text, only for a text equal
   * to its `text`. Dies with the request.
   */
  renderProvenance?: ReadonlyArray<TextProvenance | undefined>;
  /** The outbound prompt, after redaction. */
  outbound?: ChatMessage[];
  /**
   * Canonical JSON of `outbound` (the array in `of`), memoised by `outboundJson()` in
   * canonical-json.ts: the forward stage sends this text and the audit stage HMACs the same text.
   * It may name a prefix of the text (the first message) for work kept across requests.
   */
  outboundJson?: OutboundText;
  /** The request's tool definitions, after redaction (absent when the request has none). */
  outboundTools?: ToolDefinition[];
  /** The request's pass-through parameters, after redaction (absent when it has none). */
  outboundParams?: Record<string, unknown>;
  redaction?: RedactionSession;
  response?: PipelineResponse;
  /** Usage reported by the upstream, for audit. */
  usage?: CompletionResult['usage'];
  /** Per-stage durations in milliseconds, for metrics and audit. */
  readonly timings: Partial<Record<StageName, number>>;
  /** Set when the request ended with an error. */
  error?: WardenError;
}

export interface Stage {
  readonly name: StageName;
  /**
   * Runs once per request in pipeline order. Throw a WardenError to end the request closed.
   * For streaming responses, a stage that must see the answer wraps `ctx.response.chunks`.
   */
  run(ctx: RequestContext): void | Promise<void>;
  /**
   * Optional work done ahead of `run`, off the request's critical path: the pipeline calls it
   * while the forward stage waits for the upstream (the outbound prompt is final by then, and the
   * process would otherwise sit idle). It may only prepare what `run` would compute anyway from
   * context fields no later stage changes (the audit stage drafts its record: everything but the
   * outcome), and `run` must give the same result without it. It must not throw.
   */
  prepare?(ctx: RequestContext): void;
}
