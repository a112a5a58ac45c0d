/**
 * The canonical types every stage shares. Stages import from here and never from each other
 * (DESIGN.md, "Layout"). Ingress adapters translate their protocol to a PromptRequest and a
 * PipelineResponse back; nothing else crosses stage boundaries.
 */
import type { CancelSignal } from './cancel.js';

// ---------------------------------------------------------------------------------------------
// Messages (OpenAI Chat Completions shape; the Anthropic adapter maps onto it)
// ---------------------------------------------------------------------------------------------

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface TextPart {
  type: 'text';
  text: string;
}

/** Non-text parts (images, audio, files) pass through redaction untouched and are counted in the audit record. */
export interface OtherPart {
  type: string;
  [key: string]: unknown;
}

export type ContentPart = TextPart | OtherPart;

/** The non-text parts of a call's messages by kind (pipeline/attachments.ts; `request.attachments` in the policy input). */
export interface Attachments {
  /** `image_url` parts (an Anthropic image block becomes one). */
  image: number;
  /** `input_audio` parts. */
  audio: number;
  /** `file` parts (`file_data` or `file_id`), and any other part that is not text. */
  file: number;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  content: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  /**
   * The model's refusal text (OpenAI: it declined, e.g. a structured output), on an assistant
   * message: an answer's, or one sent back as history (redacted like content on its way up).
   */
  refusal?: string;
}

/**
 * What produced one rendered message content (templates/provenance.ts): `text` is the content as
 * rendered; `key()` names its producer exactly (compiled template, message index, salted digest
 * of the inserted values) and holds neither text nor values. Valid only for a content equal to
 * `text`.
 */
export interface TextProvenance {
  readonly text: string;
  key(): string;
  /**
   * Where the template placed secret values in `text` (`source: secret` variables), as
   * `[start, end)` UTF-16 offsets in ascending order, not overlapping. Such a value is the
   * credential the decision granted: redaction leaves it as fetched (see redact/session.ts).
   */
  readonly secretSpans?: ReadonlyArray<readonly [number, number]>;
}

export interface ToolDefinition {
  type: 'function';
  /** `strict`: OpenAI's structured outputs for the call's arguments, passed on as sent. */
  function: { name: string; description?: string; parameters?: unknown; strict?: boolean | null };
}

// ---------------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------------

export interface PeerInfo {
  /** Remote address as seen by the listener (`127.0.0.1`, `::1`, or `unix` for a Unix socket). */
  address: string;
  /** True for loopback TCP peers and Unix-domain-socket peers. */
  local: boolean;
  transport: 'tcp' | 'unix';
  /**
   * A header that says the connection relays another client's request (`x-forwarded-for`,
   * `forwarded`, `x-real-ip`, as a reverse proxy adds it): the peer is then the proxy, not the
   * caller, so a local peer does not make a local caller; or `origin`, which a browser adds to a
   * web page's request (the page's site is the caller). Unset when there is none.
   */
  relayHeader?: string;
}

export interface Credentials {
  /** Bearer token from `Authorization: Bearer ...` (HTTP) or `authorization` metadata (gRPC). */
  bearer?: string;
  peer: PeerInfo;
  /** Peer certificate SPIFFE ID when mTLS is in use. */
  spiffeId?: string;
  /**
   * Why the credentials the caller sent cannot be used (an Authorization header that is not
   * `Bearer <token>`, one sent twice, ...): the authenticate stage refuses with it before any
   * method looks. A fixed sentence, never the value. Unset when there was nothing to read.
   */
  malformed?: string;
}

export interface Principal {
  kind: 'kubernetes' | 'spiffe' | 'dev';
  /** Stable identifier used in logs and audit: `system:serviceaccount:<ns>:<sa>` or the SPIFFE ID. */
  subject: string;
  namespace?: string;
  service_account?: string;
  pod?: string;
  spiffe_id?: string;
  issuer?: string;
  audiences: string[];
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

export type Sensitivity = 'public' | 'internal' | 'restricted';

export interface Approval {
  by: string;
  ticket: string;
  at?: string;
}

export interface VariableSpec {
  /** `request`: supplied by the caller; `secret`: resolved from `ref` when the decision grants it; `config`: from `value`. */
  source: 'request' | 'secret' | 'config';
  type: 'string' | 'number' | 'boolean';
  required: boolean;
  pii: boolean;
  max_length?: number;
  /** Secret ref URI for `source: secret`. */
  ref?: string;
  /** Fixed value for `source: config`. */
  value?: string;
  description?: string;
}

export interface TemplateMessage {
  role: Role;
  content: string;
}

export interface Template {
  id: string;
  version: number;
  owner: string;
  sensitivity: Sensitivity;
  description: string;
  approvals: Approval[];
  /** ISO-8601 date or date-time after which the template may not run. */
  retire_after?: string;
  /** Services allowed to run it, as `namespace/service_account` (`*` wildcards allowed). Empty = any (policy decides). */
  allowed_services: string[];
  /** Models the template was written for; the policy may narrow further. */
  models: string[];
  variables: Record<string, VariableSpec>;
  messages: TemplateMessage[];
  /** Where it was loaded from, for error locations. */
  source?: { file: string };
}

// ---------------------------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------------------------

export type Action = 'prompt.execute' | 'prompt.render' | 'models.list';

export interface PromptRequest {
  /** Unique per request; also the audit record's request id. */
  id: string;
  protocol: 'openai-http' | 'anthropic-http' | 'grpc';
  action: Action;
  model: string;
  /** Governed path: a template reference. Absent = raw (untemplated) prompt. */
  template?: { id: string; version?: number };
  /** Request-supplied template variables. Values never reach the policy, logs or audit. */
  variables: Record<string, string>;
  /**
   * Where the caller sent the template or the variables when not in the body's `warden` object
   * (the HTTP headers `x-warden-template`, `x-warden-variables`): the stages' refusals name that
   * field, not a body member the caller never sent. Unset: `warden.template`, `warden.variables`.
   */
  templatePath?: string;
  variablesPath?: string;
  /** Raw messages (untemplated path only). */
  messages?: ChatMessage[];
  tools?: ToolDefinition[];
  /**
   * The non-text parts of `messages`, counted by the ingress on its walk over the parts (absent:
   * the policy input counts them itself, pipeline/attachments.ts). Never set without `messages`.
   */
  attachments?: Readonly<Attachments>;
  stream: boolean;
  /**
   * The caller's stream format carries the answer one block at a time (Anthropic's content
   * blocks): streamed redaction then releases a text or tool call's held-back tail when the
   * answer moves on to the next one, not at the end (see redact/stream.ts).
   */
  sequentialStream?: boolean;
  /**
   * The caller's format cannot say that the upstream's generation failed (Anthropic's stop_reason
   * has no value for it): a non-streamed answer the upstream finished with `error` or `abort` is
   * refused as `upstream_error` (redact/stage.ts) instead of passed on as if complete. (Streamed,
   * the ingress's encoder refuses it at the finish.)
   */
  failedFinishIsError?: boolean;
  /**
   * The caller's stop sequences, when its format reports which one ended the answer (Anthropic's
   * `stop_sequence`): an upstream's report of the matched one (CompletionChoice.stop_sequence) is
   * passed on only when it is one of these. Absent: never passed on.
   */
  stopSequences?: readonly string[];
  /**
   * The ingress's check that its format can carry the (redacted) non-streamed answer, run before
   * the audit record is written: it throws a WardenError (`upstream_error`) to refuse the answer,
   * and the record then says so. /v1/messages encodes the answer here (one choice, tool calls
   * with an id, a name and a JSON object for arguments).
   */
  answerCheck?: (result: CompletionResult) => void;
  /**
   * The same for a stream, called when its last chunk has gone by (the ingress's encoder holds
   * what it needs) and before its audit record is written: /v1/messages closes the answer's last
   * block here, which may be a tool call it cannot carry.
   */
  streamEnd?: () => void;
  /**
   * Set by an ingress whose answers go out in order (HTTP/1.1 pipelining) for a request queued
   * behind others on its connection: waits, before a non-streamed answer's audit record is
   * written, until the answer can go out, and rejects with the WardenError to record instead
   * (`cancelled`) when the connection closed first. Absent: the answer goes out at once.
   */
  answerTurn?: () => Promise<void>;
  max_tokens?: number;
  /**
   * `max_completion_tokens` when the caller gave its limit under that name: the upstream gets it
   * under the same name (OpenAI's reasoning models refuse `max_tokens`). Absent: `max_tokens`.
   */
  max_tokens_param?: 'max_completion_tokens';
  /** Other OpenAI parameters passed through unchanged (temperature, top_p, stop, ...). */
  params: Record<string, unknown>;
  credentials: Credentials;
  /** W3C traceparent header from the caller, if any. */
  traceparent?: string;
  /** Aborted when the client goes away or a deadline passes (see pipeline/cancel.ts). */
  signal: CancelSignal;
  /**
   * Aborts `signal` with `reason`, when the ingress offers it (it owns the controller). A stage
   * ends the request early this way (the forward stage's upstream deadline) instead of deriving a
   * second signal: one AbortController per request is the whole cost of cancellation.
   */
  cancel?: (reason: unknown) => void;
  receivedAt: number;
}

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

/** What Rego sees as `input`. Versioned: `input.version` = POLICY_INPUT_VERSION. */
export interface PolicyInput {
  version: number;
  principal: Principal;
  action: Action;
  template: null | {
    id: string;
    version: number;
    owner: string;
    sensitivity: Sensitivity;
    approval: Approval | null;
    approvals: Approval[];
    retire_after: string | null;
    retired: boolean;
    allowed_services: string[];
    models: string[];
    /** Secret refs the template's variables reference. */
    secret_refs: string[];
    /** Names of the variables the template marks `pii: true` (sorted): the policy may require redaction for them. */
    pii_variables: string[];
  };
  request: {
    protocol: PromptRequest['protocol'];
    provider: string | null;
    model: string;
    max_tokens: number | null;
    stream: boolean;
    /** Names only, never values. */
    variables: string[];
    raw: boolean;
    tools: number;
    /** Non-text parts of the call's messages by kind (tool results included); 0s for a template or `models.list`. */
    attachments: Readonly<Attachments>;
    /**
     * The pass-through parameters by name: booleans, numbers and null as sent, a few enumerations'
     * words, and the kind (`"string"`, `"object"`, `"array"`) of any other value (policy/params-input.ts).
     */
    params: Readonly<Record<string, boolean | number | null | string>>;
  };
  environment: { name: string; cluster: string; [key: string]: unknown };
  /** `now_ns` is a bigint in the input Warden builds (exact past 2^53); a number is accepted from elsewhere (tests, files). */
  time: { now_ns: bigint | number; rfc3339: string };
}

export const POLICY_INPUT_VERSION = 1;

export type RedactionMode = 'mask' | 'hash' | 'tokenize' | 'block' | 'allow';

export interface RedactionDecision {
  profile: string;
  /** Entity types to detect; empty = the profile's set. */
  entities: string[];
  /** Overrides the profile's default mode for every entity. */
  mode?: RedactionMode;
  /** Per-entity modes; win over `mode`. */
  modes: Record<string, RedactionMode>;
  /** In tokenize mode, may the caller see the original values restored in the answer? */
  reidentify: boolean;
  /** Only the policy may relax fail-closed (never the default). */
  fail_open: boolean;
}

export interface Decision {
  allow: boolean;
  reasons: string[];
  /** Secret refs this call may resolve. */
  secrets: string[];
  redaction: RedactionDecision;
  /** Models the caller may use. Empty = none. */
  models: string[];
  max_tokens?: number;
  audit: { log_variables_names: boolean; [key: string]: unknown };
  /** Decision id (for the audit record). */
  id: string;
}

// ---------------------------------------------------------------------------------------------
// Upstream responses
// ---------------------------------------------------------------------------------------------

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface CompletionChoice {
  index: number;
  message: ChatMessage;
  /** One of FINISH_REASONS, or a compatible server's own short identifier (providers/validate.ts). */
  finish_reason: string | null;
  /** See StopSequence. */
  stop_sequence?: StopSequence;
}

/**
 * The stop string the upstream says ended a choice (vLLM's `stop_reason` when it is a string;
 * OpenAI's format does not say). The upstream's text, which redaction does not read: the respond
 * stage keeps it only when it is one of the caller's own stop sequences
 * (PromptRequest.stopSequences), and drops it otherwise; no ingress but Anthropic's reports it.
 */
export type StopSequence = string;

/** The finish reasons OpenAI documents; compatible servers may send others (see CompletionChoice). */
export const FINISH_REASONS = ['stop', 'length', 'tool_calls', 'content_filter', 'function_call'] as const;
const DOCUMENTED_FINISHES: ReadonlySet<string> = new Set(FINISH_REASONS);

/** Whether `finish` is one of the reasons OpenAI documents (else a compatible server's own). */
export function isDocumentedFinishReason(finish: string): boolean {
  return DOCUMENTED_FINISHES.has(finish);
}

/**
 * Longest id, model name, tool call id or function name an answer may carry. OpenAI's are a few
 * dozen characters; a label is passed on whole (the leak guard masks a secret in it, it is not
 * otherwise redacted), so one that is really text is refused rather than carried. The providers
 * refuse a longer one in an answer, and the respond stage a streamed one its pieces make longer.
 */
export const MAX_LABEL_LENGTH = 256;

/**
 * Shortest secret value the leak guard looks for: a shorter one would match ordinary text. The
 * fetch stage refuses a secret the template places in a prompt that is shorter (it would come
 * back in the answer unmasked), so the two agree on it here.
 */
export const MIN_SECRET_LENGTH = 6;

export interface CompletionResult {
  id: string;
  model: string;
  created: number;
  choices: CompletionChoice[];
  usage?: Usage;
}

export interface ChunkDelta {
  role?: Role;
  content?: string | null;
  /** A piece of the answer's refusal text (see ChatMessage.refusal). */
  refusal?: string | null;
  tool_calls?: Array<{
    index: number;
    id?: string;
    type?: 'function';
    function?: { name?: string; arguments?: string };
  }>;
}

/** One streamed event, in OpenAI's `chat.completion.chunk` shape. */
export interface CompletionChunk {
  id: string;
  model: string;
  created: number;
  choices: Array<{ index: number; delta: ChunkDelta; finish_reason: string | null; stop_sequence?: StopSequence }>;
  usage?: Usage | null;
}

/** What a provider is asked to do: the final, redacted, outbound call. */
export interface UpstreamRequest {
  model: string;
  messages: ChatMessage[];
  /**
   * `messages` already serialised as canonical JSON, when the caller has it: a provider may send
   * this text as the `messages` member instead of serialising the prompt again.
   */
  messagesJson?: string;
  tools?: ToolDefinition[];
  stream: boolean;
  /**
   * The caller's stream format carries the answer one block at a time (Anthropic's content
   * blocks): streamed redaction then releases a text or tool call's held-back tail when the
   * answer moves on to the next one, not at the end (see redact/stream.ts).
   */
  sequentialStream?: boolean;
  max_tokens?: number;
  /** The name `max_tokens` goes upstream under (the caller's own; absent: `max_tokens`). */
  max_tokens_param?: 'max_completion_tokens';
  params: Record<string, unknown>;
  signal: CancelSignal;
  /** W3C traceparent for the upstream call (Warden's span as the parent), when tracing. */
  traceparent?: string;
}

export type PipelineResponse =
  | { kind: 'complete'; result: CompletionResult }
  | { kind: 'stream'; chunks: AsyncIterable<CompletionChunk> }
  | {
      kind: 'render';
      decision: Decision;
      messages: ChatMessage[];
      model: string;
      provider: string;
      /** The request's tools as they would go upstream (redacted; secret values masked); absent when it has none. */
      tools?: ToolDefinition[];
      /** Its pass-through parameters as they would go upstream (redacted; secret values masked); absent when it has none. */
      params?: Record<string, unknown>;
    };
