/**
 * gRPC ingress: `warden.v1.PromptGateway` (Render, Complete, StreamComplete) and the standard
 * `grpc.health.v1.Health`, served with @grpc/grpc-js. Like the HTTP adapter it only translates:
 * gRPC messages ↔ canonical request/response, Warden codes → gRPC status codes.
 */
import { randomUUID } from 'node:crypto';
import type { Http2Server, Http2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { countAttachments } from '../pipeline/attachments.js';
import { RequestSignal, onAbort, type CancelSignal } from '../pipeline/cancel.js';
import { WardenError, isWardenError } from '../pipeline/errors.js';
import { MAX_TEMPLATE_VERSION, MODEL_NAME_RULE, isModelName, isTemplateId } from '../pipeline/identifiers.js';
import { checkJsonDepth, DEPTH_SCAN_MIN_BYTES, jsonScanError, scanJsonText } from '../pipeline/json-depth.js';
import type { Admitted, Pipeline, PipelineLogger } from '../pipeline/pipeline.js';
import type {
  Action,
  ChatMessage,
  CompletionChunk,
  ContentPart,
  CompletionResult,
  Credentials,
  PeerInfo,
  PipelineResponse,
  PromptRequest,
  Role,
  ToolDefinition,
} from '../pipeline/types.js';
import { checkAnswerParams } from './answer-params.js';
import { checkExactNumbers, checkParamNumbers, checkParamRange } from './param-numbers.js';
import { Admission } from './admission.js';
import { checkStreamOptions } from './stream-options.js';
import { whenWritable } from './backpressure.js';
import { GrpcDoor, closeAfterStatus, type DoorArrival, type DoorPass, type Screened } from './grpc-door.js';
import { metadataBytes, OversizeMessage, oversizeMessage, receiveCeiling, withMessageLimit } from './grpc-size.js';
import { boundedStatusMessage } from './grpc-error-bounds.js';
import { loadRpcTypes, statusDetailsBin } from './grpc-status.js';
import type { IngressLimits } from './limits.js';
import { InvalidUtf8Message, OutOfRangeMessage, TooManyFieldsMessage, UndecodableMessage, UndecodedMessage, WrongWireTypeMessage, withUtf8Check } from './grpc-utf8.js';
import { checkContentPart, checkPartType } from './parts.js';
import { loadProtos, lookupService, protoDefinition } from './proto.js';
import { RunningRequests, type TrackedSignal } from './running.js';
import { RELAY_HEADERS } from './headers.js';
import { arrivingRequest, authorizationCredentials, checkToolCallArguments, checkVariables, cutByShutdown, rejectedRequest, type JsonLimits } from './request.js';

// --- wire shapes (as proto-loader decodes them with keepCase + defaults) ------------------------

interface WireToolCall {
  id: string;
  type: string;
  function?: { name: string; arguments: string } | null;
}

interface WirePart {
  type: string;
  text: string;
  json: string;
}

interface WireMessage {
  role: string;
  content: string;
  name: string;
  tool_call_id: string;
  tool_calls: WireToolCall[];
  parts: WirePart[];
  /** The model's refusal text: an answer's, or one sent back as history on an assistant message. */
  refusal?: string;
}

interface WireTool {
  type: string;
  function?: { name: string; description: string; parameters_json: string; strict?: boolean | null } | null;
}

export interface WirePromptRequest {
  model: string;
  template?: { id: string; version: number } | null;
  variables: Record<string, string>;
  messages: WireMessage[];
  max_tokens: number;
  temperature?: number;
  top_p?: number;
  stop: string[];
  params_json: string;
  tools: WireTool[];
}

/**
 * What a gateway handler's `call.request` holds: what the request deserializers (grpc-size.ts,
 * grpc-utf8.ts) hand over, the message undecoded or the marker of a refusal. Never the decoded
 * request: translate decodes it once the credentials passed.
 */
type GatewayRequest = UndecodedMessage | OversizeMessage | InvalidUtf8Message | WrongWireTypeMessage | OutOfRangeMessage | TooManyFieldsMessage | UndecodableMessage;

const ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

const STATUS: Record<string, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  NOT_FOUND: grpc.status.NOT_FOUND,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  CANCELLED: grpc.status.CANCELLED,
  INTERNAL: grpc.status.INTERNAL,
};

/**
 * The gRPC request's name for a field: stages name the HTTP body's (`warden.template`,
 * `warden.variables.x`), but a PromptRequest has `template` and `variables` at its top level.
 */
function grpcParam(path: string): string {
  return path.startsWith('warden.') ? path.slice('warden.'.length) : path;
}

/**
 * Warden error → gRPC status object, the stable code in the `warden-code` trailer. A wait to
 * retry after (`overloaded`, an upstream's rate limit) goes in two trailers: `retry-after` in
 * seconds for people and HTTP-minded code, and `grpc-retry-pushback-ms` in milliseconds, which
 * gRPC clients with a retry policy obey (gRFC A6 "pushback") instead of retrying at once. The
 * same again, for clients of Google's error model, in `grpc-status-details-bin` (ErrorInfo, and
 * RetryInfo with the wait: grpc-status.ts). `code` overrides the code's own gRPC status (an
 * unknown method is UNIMPLEMENTED); the details carry the status actually sent.
 */
export function toGrpcError(err: WardenError, code: grpc.status = STATUS[err.grpcStatus] ?? grpc.status.INTERNAL): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set('warden-code', err.code);
  const path = err.location?.path;
  const param = path ? grpcParam(path) : undefined;
  if (param) metadata.set('warden-param', param);
  const retryAfter = err.details?.['retry_after_s'];
  const retryAfterMs = typeof retryAfter === 'number' ? Math.round(retryAfter * 1000) : undefined;
  if (retryAfterMs !== undefined) {
    metadata.set('retry-after', String(retryAfter));
    metadata.set('grpc-retry-pushback-ms', String(retryAfterMs));
  }
  // Bounded: trailers are headers, and clients refuse (or never end) a call with large ones.
  const message = boundedStatusMessage(err.message);
  metadata.set('grpc-status-details-bin', statusDetailsBin({ code, message, reason: err.code, param, retryAfterMs, details: err.details }));
  return { code, details: message, metadata };
}

/**
 * A Warden error as a door sends it (toGrpcError). A compressed message is UNIMPLEMENTED, as gRPC
 * specifies for a compression the server does not take, with `grpc-accept-encoding: identity`
 * naming the one it does (grpc-js's own response headers list deflate and gzip).
 */
function doorStatus(err: WardenError): Partial<grpc.StatusObject> {
  if (err.code !== 'unsupported_media_type') return toGrpcError(err);
  const status = toGrpcError(err, grpc.status.UNIMPLEMENTED);
  status.metadata?.set('grpc-accept-encoding', 'identity');
  return status;
}

/**
 * grpc-js reports the peer as `host:port` (`127.0.0.1:5000`, `::1:5000`, no brackets), and as
 * `unknown` when the connection's socket has no remote address: a Unix-socket connection, but
 * also a TCP connection that is already gone when the call is handled (grpc-js reads the socket
 * then, not when the call arrived). So `unknown` says nothing about the listener: the transport
 * comes from the server instead, which is bound either to the Unix socket alone (`unixListener`,
 * every caller is a Unix peer) or to TCP alone, where a peer it cannot name is never local.
 */
export function grpcPeerInfo(peer: string, unixListener: boolean, metadata?: grpc.Metadata): PeerInfo {
  const info = peerAddress(peer, unixListener);
  // A proxy in front (Envoy adds x-forwarded-for to gRPC calls too): see PeerInfo.relayHeader.
  if (metadata !== undefined) {
    for (const name of RELAY_HEADERS) {
      if (metadata.get(name).length > 0) {
        info.relayHeader = name;
        break;
      }
    }
  }
  return info;
}

function peerAddress(peer: string, unixListener: boolean): PeerInfo {
  if (unixListener) return { address: 'unix', local: true, transport: 'unix' };
  if (peer === 'unknown' || peer === '' || peer.startsWith('unix:')) return { address: 'unknown', local: false, transport: 'tcp' };
  let host = peer.replace(/^ipv[46]:/, '');
  const colon = host.lastIndexOf(':');
  if (colon > 0 && /^\d+$/.test(host.slice(colon + 1))) host = host.slice(0, colon);
  host = host.replace(/^\[|\]$/g, '');
  const local = host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
  return { address: host, local, transport: 'tcp' };
}

/**
 * The `authorization` metadata's credentials. Node's HTTP/2 layer keeps only the first of two
 * `authorization` header fields (and grpc-js clients refuse to send two): a second one, and one
 * grpc-js dropped from the metadata, are found in the raw header block (GrpcDoor.screen) and
 * come here as `unreadable`. A repeated value is refused here too, should one ever arrive.
 */
export function grpcCredentials(metadata: grpc.Metadata, peer: PeerInfo, unreadable?: string): Credentials {
  // An `authorization` grpc-js dropped from the metadata (GrpcDoor.screen): sent, so never "none".
  if (unreadable !== undefined) return { peer, malformed: unreadable };
  const values = metadata.get('authorization');
  const first = values[0];
  return authorizationCredentials(first === undefined ? undefined : String(first), values.length > 1, peer, 'grpc');
}

function invalid(message: string, path: string): WardenError {
  return new WardenError('invalid_request', message, { location: { path } });
}

/** A request message the walk (grpc-utf8.ts) or the decoder could not read. */
function undecodable(m: UndecodableMessage): WardenError {
  return invalid(`the request message is not a valid ${m.type} (malformed protobuf)`, '$');
}

/**
 * A JSON text that must hold an object nested at most `limits.maxJsonDepth` deep (the field's own
 * top is level 1); the error names the field, never the text.
 */
function jsonObject(text: string, path: string, limits: JsonLimits): Record<string, unknown> {
  const maxDepth = limits.maxJsonDepth;
  // A large field is scanned before JSON.parse, as a large HTTP body is (a field of 1 MiB of `[`,
  // or of `[],`, takes JSON.parse some tenths of a second): refused at the field, as the scan
  // builds no path inside it; an unclosed text too. Smaller fields are parsed and walked below.
  if (text.length > DEPTH_SCAN_MIN_BYTES) {
    const problem = scanJsonText(text, maxDepth, limits.maxJsonValues);
    if (problem !== undefined) throw jsonScanError(problem, `field '${path}'`, path, maxDepth, limits.maxJsonValues);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid(`field '${path}' is not valid JSON`, path);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid(`field '${path}' must be a JSON object`, path);
  checkJsonDepth(parsed, maxDepth, path);
  return parsed as Record<string, unknown>;
}

function toPart(p: WirePart, path: string, limits: JsonLimits): ContentPart {
  if (!p.type) throw invalid(`field '${path}.type' is required`, `${path}.type`);
  // Before the JSON is read: the type is the wire field that names it, not a member of `json`.
  checkPartType(p.type, `${path}.type`);
  if (p.type === 'text') {
    if (p.json) throw invalid(`field '${path}.json' is not used by a text part`, `${path}.json`);
    return { type: 'text', text: p.text };
  }
  if (p.text) throw invalid(`field '${path}.text' is only for text parts; put the part in 'json'`, `${path}.text`);
  if (!p.json) throw invalid(`field '${path}.json' is required for a non-text part`, `${path}.json`);
  const obj = jsonObject(p.json, `${path}.json`, limits);
  if (obj.type !== undefined && obj.type !== p.type) throw invalid(`field '${path}.json' has a "type" other than '${path}.type'`, `${path}.json`);
  const part = { ...obj, type: p.type };
  checkContentPart(part, `${path}.json`);
  return part;
}

function toTool(t: WireTool, i: number, limits: JsonLimits): ToolDefinition {
  const path = `tools.${i}`;
  if (t.type !== 'function') throw invalid(`field '${path}.type' must be "function"`, `${path}.type`);
  if (!t.function?.name) throw invalid(`field '${path}.function.name' is required`, `${path}.function.name`);
  const fn: ToolDefinition['function'] = { name: t.function.name };
  if (t.function.description) fn.description = t.function.description;
  if (t.function.parameters_json) {
    fn.parameters = jsonObject(t.function.parameters_json, `${path}.function.parameters_json`, limits);
    checkExactNumbers(fn.parameters, `${path}.function.parameters_json`);
  }
  // proto3 `optional`: unset is absent (undefined, or null from an older proto-loader), as over HTTP.
  if (typeof t.function.strict === 'boolean') fn.strict = t.function.strict;
  return { type: 'function', function: fn };
}

/** A tool call sent back as history: refused where HTTP's schema refuses it, never rewritten. */
function toToolCall(t: WireToolCall, path: string, limits: JsonLimits): NonNullable<ChatMessage['tool_calls']>[number] {
  if (t.type !== 'function') throw invalid(`field '${path}.type' must be "function"`, `${path}.type`);
  if (!t.function) throw invalid(`field '${path}.function' is required`, `${path}.function`);
  checkToolCallArguments(t.function.arguments, `${path}.function.arguments`, limits);
  return { id: t.id, type: 'function', function: { name: t.function.name, arguments: t.function.arguments } };
}

function toMessage(m: WireMessage, i: number, limits: JsonLimits): ChatMessage {
  if (!ROLES.has(m.role)) throw invalid(`field 'messages.${i}.role' has an unsupported value`, `messages.${i}.role`);
  let content: ChatMessage['content'] = m.content;
  if (m.parts.length > 0) {
    if (m.content) throw invalid(`field 'messages.${i}.content' must be empty when 'parts' is set`, `messages.${i}.content`);
    content = m.parts.map((p, j) => toPart(p, `messages.${i}.parts.${j}`, limits));
  } else if (m.content === '' && (m.tool_calls.length > 0 || !!m.refusal)) {
    content = null; // an assistant turn that only calls tools or refuses, as OpenAI writes it
  }
  const out: ChatMessage = { role: m.role as Role, content };
  // proto3 has no null: an empty refusal is none. A refusal is the model's, so on an assistant turn only.
  if (m.refusal) {
    if (m.role !== 'assistant') throw invalid(`field 'messages.${i}.refusal' is only accepted on an assistant message: it is the model's refusal text`, `messages.${i}.refusal`);
    out.refusal = m.refusal;
  }
  if (m.name) out.name = m.name;
  if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
  if (m.tool_calls.length > 0) {
    out.tool_calls = m.tool_calls.map((t, j) => toToolCall(t, `messages.${i}.tool_calls.${j}`, limits));
  }
  return out;
}

/** String.prototype.isWellFormed and toWellFormed: in Node 20+, typed only in lib ES2024 (this build uses ES2023). */
type WellFormed = string & { isWellFormed(): boolean; toWellFormed(): string };

/**
 * A string of an answer as a proto3 `string` field can carry it: valid UTF-8, so a lone surrogate
 * (an upstream's `"\ud800"` escape with no pair: JSON can carry it, UTF-8 cannot) becomes U+FFFD,
 * as Node's own UTF-8 encoder writes it. protobufjs would write such a string of under 40 bytes as
 * the 3 bytes of the surrogate itself (ED A0 80: not UTF-8), which a strict decoder (Go's, C++'s)
 * refuses along with the whole message, and a longer one with U+FFFD. The check is one pass over
 * the string, and no copy when it is well formed (nearly always).
 */
function utf8(s: string): string {
  return (s as WellFormed).isWellFormed() ? s : (s as WellFormed).toWellFormed();
}

function fromPart(p: ContentPart): WirePart {
  if (p.type === 'text' && typeof p.text === 'string') return { type: 'text', text: utf8(p.text), json: '' };
  // JSON text escapes a lone surrogate (\ud800): valid UTF-8 as it is.
  return { type: utf8(p.type), text: '', json: JSON.stringify(p) };
}

function fromMessage(m: ChatMessage): WireMessage {
  const multi = Array.isArray(m.content);
  return {
    role: m.role,
    content: typeof m.content === 'string' ? utf8(m.content) : '',
    name: utf8(m.name ?? ''),
    tool_call_id: utf8(m.tool_call_id ?? ''),
    tool_calls: (m.tool_calls ?? []).map((t) => ({ id: utf8(t.id), type: utf8(t.type), function: { name: utf8(t.function.name), arguments: utf8(t.function.arguments) } })),
    parts: multi ? (m.content as ContentPart[]).map(fromPart) : [],
    refusal: utf8(m.refusal ?? ''),
  };
}

export interface GrpcMeta {
  id: string;
  action: Action;
  stream: boolean;
  /** From the `authorization` metadata (see authorizationCredentials); its `peer` is `peer`. */
  credentials: Credentials;
  peer: PeerInfo;
  traceparent: string | undefined;
  signal: CancelSignal;
  /** Aborts `signal` (see PromptRequest.cancel). */
  cancel?: (reason: unknown) => void;
}

/** A token limit given in `params_json` (`null` is no limit, as on HTTP). */
interface TokenLimit {
  max_tokens?: number;
  max_completion_tokens?: number;
}

function tokenLimit(key: 'max_tokens' | 'max_completion_tokens', v: unknown): number | undefined {
  if (v === null) return undefined;
  checkParamRange(key, v, `params_json.${key}`);
  return v as number;
}

/**
 * The request's token limit, with HTTP's precedence (`max_completion_tokens` over `max_tokens`)
 * and the caller's parameter name kept for the upstream. The message's own `max_tokens` field and
 * a limit in `params_json` together are refused: which one was meant is not Warden's guess.
 */
function setTokenLimit(req: PromptRequest, field: number, limit: TokenLimit): void {
  const fromParams = limit.max_completion_tokens ?? limit.max_tokens;
  if (field > 0 && fromParams !== undefined) {
    const key = limit.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
    throw invalid(`field 'params_json.${key}' repeats the token limit of field 'max_tokens': give it once`, `params_json.${key}`);
  }
  if (field > 0) req.max_tokens = field;
  else if (fromParams !== undefined) req.max_tokens = fromParams;
  if (limit.max_completion_tokens !== undefined) req.max_tokens_param = 'max_completion_tokens';
}

/**
 * An `optional double` field's value, or undefined when unset. NaN and ±Infinity have no JSON
 * form (they would go upstream as null: the provider's default, silently): refused, as HTTP
 * cannot even send them.
 */
function finiteOrUnset(v: number | null | undefined, path: 'temperature' | 'top_p'): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Number.isFinite(v)) throw invalid(`field '${path}' must be a finite number`, path);
  // Its range, from the one table (named by its own field, not as a member of params_json).
  checkParamRange(path, v, path);
  return v;
}

/**
 * Puts a parameter that has its own field into `params`; the same one in `params_json` too is
 * refused, as a token limit given twice is: which one was meant is not Warden's guess.
 */
function setOwnParam(params: Record<string, unknown>, key: 'temperature' | 'top_p' | 'stop', v: unknown): void {
  if (v === undefined) return;
  if (Object.hasOwn(params, key)) throw invalid(`field 'params_json.${key}' repeats field '${key}': give it once`, `params_json.${key}`);
  params[key] = v;
}

/** gRPC request → canonical PromptRequest (shape and limit checks only). */
export function fromWireRequest(w: WirePromptRequest, meta: GrpcMeta, limits: IngressLimits): PromptRequest {
  if (!w.model) throw invalid("field 'model' is required", 'model');
  if (!isModelName(w.model)) throw invalid(`field 'model' ${MODEL_NAME_RULE}`, 'model');
  const variables: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(w.variables ?? {})) variables[k] = v;
  checkVariables(variables, limits, 'variables');

  const params: Record<string, unknown> = {};
  const limit: TokenLimit = {};
  if (w.params_json) {
    const parsed = jsonObject(w.params_json, 'params_json', limits);
    for (const [k, v] of Object.entries(parsed)) {
      // A member JSON.parse made; put into `params` it would set the object's prototype instead,
      // and go nowhere (not upstream, not redacted) without a word. No OpenAI parameter has the name.
      if (k === '__proto__') throw invalid("field 'params_json' has a member named __proto__, which is no parameter Warden can pass on", 'params_json');
      if (k === 'model' || k === 'messages' || k === 'stream' || k === 'warden' || k === 'tools') {
        throw invalid(`field 'params_json.${k}' has its own field`, `params_json.${k}`);
      }
      // A token limit is the request's own, as on HTTP: the policy must see it and the
      // decision's cap applies to it (left in params, the policy saw no limit at all).
      if (k === 'max_tokens' || k === 'max_completion_tokens') limit[k] = tokenLimit(k, v);
      else params[k] = v;
    }
  }
  setOwnParam(params, 'temperature', finiteOrUnset(w.temperature, 'temperature'));
  setOwnParam(params, 'top_p', finiteOrUnset(w.top_p, 'top_p'));
  setOwnParam(params, 'stop', w.stop.length > 0 ? w.stop : undefined);
  checkAnswerParams(params, 'params_json.');
  checkStreamOptions(params, 'params_json.');
  checkParamNumbers(params, 'params_json.');

  const req: PromptRequest = {
    id: meta.id,
    protocol: 'grpc',
    action: meta.action,
    model: w.model,
    variables,
    stream: meta.stream,
    params,
    credentials: meta.credentials,
    signal: meta.signal,
    receivedAt: performance.timeOrigin + performance.now(),
  };
  if (meta.cancel) req.cancel = meta.cancel;
  if (meta.traceparent) req.traceparent = meta.traceparent;
  setTokenLimit(req, w.max_tokens, limit);
  if (w.tools.length > 0) req.tools = w.tools.map((t, i) => toTool(t, i, limits));
  // A template message sent without an id (`{version: 7}`) is no raw prompt: HTTP refuses an empty
  // `warden.template` the same way, rather than serve the messages and drop the version.
  if (w.template && w.template.id === '') throw invalid("field 'template.id' must not be empty (leave 'template' unset for a raw prompt)", 'template.id');
  const hasTemplate = !!w.template;
  if (hasTemplate) {
    const t = w.template as { id: string; version: number };
    if (!isTemplateId(t.id)) throw invalid("field 'template.id' must name a template id: a lower-case path such as 'support/ticket-summary'", 'template.id');
    // The range `id@version` names over HTTP (and the loader allows): both ingresses agree.
    if (t.version > MAX_TEMPLATE_VERSION) throw invalid(`field 'template.version' must be at most ${MAX_TEMPLATE_VERSION} (0 = the highest version)`, 'template.version');
    req.template = t.version > 0 ? { id: t.id, version: t.version } : { id: t.id };
    if (w.messages.length > 0) {
      throw invalid("field 'messages' must be empty when a template is named: the template supplies the prompt", 'messages');
    }
  } else {
    if (w.messages.length === 0) throw invalid("field 'messages' is required (or name a template)", 'messages');
    if (Object.keys(variables).length > 0) throw invalid("field 'variables' needs 'template'", 'variables');
    req.messages = w.messages.map((m, i) => toMessage(m, i, limits));
    // Counted for the policy (request.attachments) over the parts just built: the same count as
    // the other ingresses', and no object for a call that carries none.
    req.attachments = countAttachments(req.messages);
  }
  return req;
}

function usageOf(u: CompletionResult['usage'] | null | undefined) {
  return u ? { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens } : null;
}

function toWireCompletion(r: CompletionResult) {
  return {
    id: utf8(r.id),
    model: utf8(r.model),
    created: r.created,
    choices: r.choices.map((c) => ({ index: c.index, message: fromMessage(c.message), finish_reason: utf8(c.finish_reason ?? '') })),
    usage: usageOf(r.usage),
  };
}

function toWireChunk(c: CompletionChunk) {
  return {
    id: utf8(c.id),
    model: utf8(c.model),
    created: c.created,
    choices: c.choices.map((ch) => ({
      index: ch.index,
      delta: {
        role: utf8(ch.delta.role ?? ''),
        content: utf8(ch.delta.content ?? ''),
        refusal: utf8(ch.delta.refusal ?? ''),
        tool_calls: (ch.delta.tool_calls ?? []).map((t) => ({
          index: t.index,
          id: utf8(t.id ?? ''),
          type: utf8(t.type ?? ''),
          function: { name: utf8(t.function?.name ?? ''), arguments: utf8(t.function?.arguments ?? '') },
        })),
      },
      finish_reason: utf8(ch.finish_reason ?? ''),
    })),
    usage: usageOf(c.usage),
  };
}

/**
 * What a chunk adds to the bytes queued for its client: its text (content, refusal, a tool call's
 * name and arguments, in UTF-16 units: the message's bytes within a factor of 3) and a fixed
 * 64 for the rest of the message, so that many small chunks count too.
 */
function chunkBytes(c: CompletionChunk): number {
  let n = 64;
  for (const ch of c.choices) {
    const d = ch.delta;
    n += (d.content?.length ?? 0) + (d.refusal?.length ?? 0);
    if (d.tool_calls) for (const t of d.tool_calls) n += (t.function?.name?.length ?? 0) + (t.function?.arguments?.length ?? 0);
  }
  return n;
}

/**
 * Most bytes of a StreamComplete answer Warden queues for a client that does not take them, as an
 * HTTP response's high-water mark (Node's default, 16 KiB) does: past it the stream waits. grpc-js
 * has no byte mark of its own: its call is an object-mode stream that says "wait" only at 16 queued
 * messages, 16 MB with 1 MiB upstream events.
 */
const QUEUED_BYTES_MARK = 16 * 1024;

/**
 * The bytes of the chunks written to one StreamComplete call that its HTTP/2 stream has not taken
 * yet (grpc-js calls each write's callback once the stream took it, in order). One `taken`
 * callback per call, not a closure per chunk.
 */
class QueuedBytes {
  bytes = 0;
  private readonly sizes: number[] = [];
  private wake: (() => void) | undefined;

  readonly taken = (): void => {
    this.bytes -= this.sizes.shift() ?? 0;
    if (this.wake && this.bytes <= QUEUED_BYTES_MARK) {
      const wake = this.wake;
      this.wake = undefined;
      wake();
    }
  };

  /** Counts a chunk about to be written; returns the write's callback. */
  add(bytes: number): () => void {
    this.sizes.push(bytes);
    this.bytes += bytes;
    return this.taken;
  }

  /**
   * Resolves once the queue is at or below the mark, the client is gone (`cancelled`: grpc-js then
   * calls no more callbacks) or the request's signal aborts.
   */
  below(call: grpc.ServerWritableStream<GatewayRequest, unknown>, signal: CancelSignal): Promise<void> {
    if (this.bytes <= QUEUED_BYTES_MARK || signal.aborted || call.cancelled) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.wake = undefined;
        call.off('cancelled', done);
        stopListening();
        resolve();
      };
      this.wake = done;
      call.once('cancelled', done);
      const stopListening = onAbort(signal, done);
    });
  }
}

function toWireRender(r: Extract<PipelineResponse, { kind: 'render' }>) {
  return {
    decision: {
      allow: r.decision.allow,
      reasons: r.decision.reasons.map(utf8),
      models: r.decision.models,
      secrets: r.decision.secrets,
      redaction_profile: r.decision.redaction.profile,
      max_tokens: r.decision.max_tokens ?? 0,
      id: r.decision.id,
    },
    messages: r.messages.map(fromMessage),
    model: r.model,
    provider: r.provider,
    tools: (r.tools ?? []).map(fromTool),
    // JSON.stringify writes a lone surrogate as its escape: the text is well-formed.
    params_json: r.params && Object.keys(r.params).length > 0 ? JSON.stringify(r.params) : '',
  };
}

/** A tool definition as RenderResponse shows it: the request's ToolDefinition shape. */
function fromTool(t: ToolDefinition) {
  return {
    type: t.type,
    function: {
      name: utf8(t.function.name),
      description: utf8(t.function.description ?? ''),
      parameters_json: t.function.parameters === undefined ? '' : JSON.stringify(t.function.parameters),
      // Shown as it goes upstream: unset when the request did not set it (HTTP's `null` too).
      ...(typeof t.function.strict === 'boolean' ? { strict: t.function.strict } : {}),
    },
  };
}

// --- health -------------------------------------------------------------------------------------

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/**
 * A Watch listener: told each new status; `final` once the server is shutting down, after which
 * the status never changes again (the Watch stream is then ended).
 */
export type HealthListener = (s: ServingStatus, final: boolean) => void;

/** Serving status the Health service reports; the runtime flips it on readiness and shutdown. */
export class HealthState {
  private status: ServingStatus = 'NOT_SERVING';
  private final = false;
  private readonly listeners = new Set<HealthListener>();

  get(): ServingStatus {
    return this.status;
  }

  /** True once shutDown was called. */
  get shuttingDown(): boolean {
    return this.final;
  }

  set(status: ServingStatus): void {
    if (this.final || status === this.status) return;
    this.status = status;
    for (const l of this.listeners) l(status, false);
  }

  /**
   * The server is draining: NOT_SERVING from now on, and every listener is told so a last time
   * (even when the status already was NOT_SERVING), so that each Watch stream can end.
   */
  shutDown(): void {
    if (this.final) return;
    this.status = 'NOT_SERVING';
    this.final = true;
    for (const l of [...this.listeners]) l(this.status, true);
  }

  subscribe(listener: HealthListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * The health service's methods: the health doors guard them. Only these, as for the gateway:
 * another method of the service is grpc-js's (and answerUnknownMethods') to refuse.
 */
const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
const HEALTH_WATCH = '/grpc.health.v1.Health/Watch';

/** Service names the health service knows: the whole server ('') and the gateway. */
const HEALTH_SERVICES = new Set(['', 'warden.v1.PromptGateway']);

/**
 * The gateway's served methods: the calls the door (grpc-door.ts) guards. Only these: another
 * method of the service is grpc-js's to refuse (UNIMPLEMENTED, `not_found`), message or not.
 */
const GATEWAY_METHODS: ReadonlySet<string> = new Set(['Render', 'Complete', 'StreamComplete'].map((m) => `/warden.v1.PromptGateway/${m}`));

/** Who sent a gateway call, as the door reads it from the call's headers (admitAtDoor). */
interface CallerAtDoor {
  id: string;
  credentials: Credentials;
  peer: PeerInfo;
  traceparent: string | undefined;
}

/** A gateway call whose credentials passed at the door: its handler runs the pipeline with `admitted`. */
interface GatewayAdmission extends CallerAtDoor {
  admitted: Admitted;
}

/**
 * The signal of the request the door authenticates (arrivingRequest): nothing aborts it, and the
 * authenticate stage does not listen to it (the pipeline only reads `aborted`). One for all calls:
 * the handler's own signal (callSignal) is made when it runs, after the door.
 */
const AT_THE_DOOR = new RequestSignal();

// --- server -------------------------------------------------------------------------------------

export interface GrpcIngressOptions {
  pipeline: Pipeline;
  limits: IngressLimits;
  logger: PipelineLogger;
  health: HealthState;
  draining?: () => boolean;
  /**
   * True for a server bound only to a Unix domain socket (its callers are local); false for one
   * bound only to TCP. Never both on one server: its peers could not be told apart (grpcPeerInfo).
   */
  unixListener?: boolean;
  /** Counts calls refused before they became a PromptRequest (they never reach the pipeline). */
  onRejected?: (code: string, seconds: number) => void;
  /** The in-flight limit, shared with the other app listeners (default: this server's own). */
  admission?: Admission;
}

export interface GrpcIngress {
  readonly server: grpc.Server;
  inFlight(): number;
  /**
   * Reads each call's header block on `h2`, one of the bound server's listeners (grpcListeners),
   * for what grpc-js's metadata would hide (GrpcDoor.screen): an `authorization` it drops, a proxy
   * header it drops, the true size of the metadata, the HTTP routes' template headers.
   */
  screen(h2: Http2Server): void;
  /**
   * The shutdown deadline passed: ends every call still running with `shutting_down`
   * (UNAVAILABLE with its `warden-code` trailer, as the call's own error, not a CANCELLED from the
   * transport), then closes every connection after at most `waitMs` for those statuses to go out.
   * `closed`: the graceful close begun with `server.tryShutdown`, which completes once every call
   * has ended and its status was sent (closing the sessions sooner would discard the status).
   */
  forceShutdown(closed: Promise<unknown>, waitMs?: number): Promise<void>;
}

/** How long forceShutdown waits for the `shutting_down` statuses before it closes the connections. */
const CUT_STATUS_WAIT_MS = 500;

export function createGrpcIngress(opts: GrpcIngressOptions): GrpcIngress {
  const { pipeline, limits, health } = opts;
  const admission = opts.admission ?? new Admission(limits.maxInFlight);
  const root = loadProtos();
  const gateway = lookupService(root, 'warden.v1.PromptGateway');
  const healthService = lookupService(root, 'grpc.health.v1.Health');
  loadRpcTypes(); // here, so a missing google/rpc proto fails the start, not an error answer
  /** Set when the shutdown deadline ends the calls (see forceShutdown). */
  let cut = false;
  /** Each running call's `cancel`: the shutdown deadline ends them all with `shutting_down`. */
  const running = new RunningRequests();

  // What the gateway door's screen finds in each call's header block on the listener: the health
  // doors read it too (a compressed message is refused on every method, see Screened.compressed).
  const screened = new WeakMap<Http2Stream, Screened>();

  // Each gateway call is admitted, timed and (when it ends before its handler) audited from its
  // headers on, not from its half-close, where grpc-js first runs a handler (grpc-door.ts).
  const door = new GrpcDoor<GatewayAdmission>({
    admission,
    draining: () => opts.draining?.() === true,
    requestTimeoutMs: limits.requestTimeoutMs,
    deliveryTimeoutMs: limits.upstreamTimeoutMs,
    guards: (path) => GATEWAY_METHODS.has(path),
    record: recordAtDoor,
    admit: admitAtDoor,
    status: doorStatus,
    maxMetadataBytes: limits.maxHeaderBytes,
    maxMessageBytes: limits.maxBodyBytes,
    screened,
  });

  // Health calls are no requests (neither counted in max_in_flight nor audited), but they are
  // bounded all the same: without a door of their own a client could hold any number of Watch
  // streams, or of Check calls that never half-close (grpc-js holds those for ever, and they hold a
  // graceful shutdown for its whole grace). At most limits.max_connections Checks and as many
  // Watches at once on this server, each sent whole within client_timeout_ms. Two budgets: one
  // client's open Watches (HTTP/2 lets one connection open any number) must not leave a probe's
  // Check refused `overloaded`, which a kubelet reads as unhealthy. While draining a Watch is still
  // answered (NOT_SERVING, then OK).
  const healthDoor = (path: string, calls: string) =>
    new GrpcDoor({
      admission: new Admission(limits.maxConnections),
      draining: () => false,
      requestTimeoutMs: limits.requestTimeoutMs,
      deliveryTimeoutMs: limits.upstreamTimeoutMs,
      guards: (p) => p === path,
      record: () => Promise.resolve(),
      status: doorStatus,
      calls,
      maxMessageBytes: limits.maxBodyBytes,
      screened,
    });
  const checkDoor = healthDoor(HEALTH_CHECK, 'health Check calls');
  const watchDoor = healthDoor(HEALTH_WATCH, 'health Watch streams');
  // At shutdown a health call still sending its request ends at once (shutting_down): it would
  // hold the graceful close. (Watch streams end with their last status, see Watch.)
  health.subscribe((_s, final) => {
    if (!final) return;
    checkDoor.cutWaiting(cutByShutdown);
    watchDoor.cutWaiting(cutByShutdown);
  });

  const server = new grpc.Server({
    // A ceiling above the limit: a message over the limit is refused by Warden from its prefix,
    // counted and audited (grpc-size.ts); only a prefix past the ceiling grpc-js refuses alone.
    'grpc.max_receive_message_length': receiveCeiling(limits.maxBodyBytes),
    // grpc-js's default keeps a connection with no call open for ever; HTTP's keep-alive has the
    // same bound. The client gets a GOAWAY and reconnects for its next call.
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    // One interceptor: each door must be handed grpc-js's base call (http2StreamOf). A method
    // Warden does not serve gets its UNIMPLEMENTED (answerUnknownMethods), then its stream closed.
    interceptors: [
      (method, next) =>
        GATEWAY_METHODS.has(method.path)
          ? door.interceptor(method, next)
          : method.path === HEALTH_CHECK
            ? checkDoor.interceptor(method, next)
            : method.path === HEALTH_WATCH
              ? watchDoor.interceptor(method, next)
              : closeAfterStatus(method, next),
    ],
  });

  /**
   * Counts and audits a call the door refused or that ended before its handler ran. `caller`:
   * who the door found had sent it (admitAtDoor), with `admitted` when its credentials had passed
   * (the record names the principal, as HTTP's for a body refused after its headers).
   */
  function recordAtDoor(arrival: DoorArrival, err: WardenError, caller: (CallerAtDoor & { admitted?: Admitted }) | undefined): Promise<void> {
    const action: Action = arrival.path.endsWith('/Render') ? 'prompt.render' : 'prompt.execute';
    const stream = arrival.path.endsWith('/StreamComplete');
    const tp = arrival.metadata.get('traceparent')[0];
    const meta = {
      id: caller?.id ?? randomUUID(),
      signal: new RequestSignal(),
      receivedAt: performance.timeOrigin + arrival.startedAt,
      traceparent: caller !== undefined ? caller.traceparent : typeof tp === 'string' ? tp : undefined,
      peer: caller?.peer ?? grpcPeerInfo(arrival.peer, opts.unixListener === true),
    };
    opts.onRejected?.(err.code, (performance.now() - arrival.startedAt) / 1000);
    return pipeline.auditRejected(rejectedRequest(meta, 'grpc', action, stream), err, caller?.admitted);
  }

  /**
   * A gateway call at the door, from its headers alone (GrpcDoorOptions.admit): what they show
   * (the metadata's size, `x-warden-*` metadata) and then its credentials (Pipeline.authenticate),
   * before a byte of its message is read, as HTTP checks a request's headers before its body. A
   * caller without valid credentials so gets UNAUTHENTICATED at once, whatever message it sends
   * or has yet to send, and Warden never holds it. The credentials are verified here only: the
   * handler runs the pipeline with what this admitted (translate). A refusal has been counted and
   * audited when the promise rejects (the pipeline audits a failed authentication itself).
   */
  function admitAtDoor(arrival: DoorArrival, screened: Screened | undefined): GatewayAdmission | Promise<GatewayAdmission> {
    const metadata = arrival.metadata;
    const path = arrival.path;
    const action: Action = path.endsWith('/Render') ? 'prompt.render' : 'prompt.execute';
    const stream = path.endsWith('/StreamComplete');
    const tp = metadata.get('traceparent')[0];
    // The peer as read when the call arrived: later its connection may be gone, and grpc-js then
    // names no peer at all.
    const peer = grpcPeerInfo(arrival.peer, opts.unixListener === true, metadata);
    // A proxy header grpc-js dropped from the metadata (its value not printable ASCII) relays all the same.
    if (peer.relayHeader === undefined && screened?.relayHeader !== undefined) peer.relayHeader = screened.relayHeader;
    const caller: CallerAtDoor = {
      id: randomUUID(),
      credentials: grpcCredentials(metadata, peer, screened?.credentials),
      peer,
      traceparent: typeof tp === 'string' ? tp : undefined,
    };
    const refusal = headerRefusal(metadata, screened);
    if (refusal !== undefined) {
      return recordAtDoor(arrival, refusal, caller).then(() => {
        throw refusal;
      });
    }
    const arriving = { id: caller.id, credentials: caller.credentials, signal: AT_THE_DOOR, receivedAt: performance.timeOrigin + arrival.startedAt, traceparent: caller.traceparent };
    const first = pipeline.authenticate(arrivingRequest(arriving, 'grpc', action, stream));
    return first instanceof Promise ? first.then((admitted) => withAdmitted(caller, admitted)) : withAdmitted(caller, first);
  }

  function withAdmitted(caller: CallerAtDoor, admitted: Admitted): GatewayAdmission {
    const found = caller as GatewayAdmission;
    found.admitted = admitted;
    return found;
  }

  /** What a call's headers alone refuse it for, before its credentials (admitAtDoor). */
  function headerRefusal(metadata: grpc.Metadata, screened: Screened | undefined): WardenError | undefined {
    // As sent: entries grpc-js dropped (a value that is not printable ASCII) count too (screenHeaders).
    const metadataSize = screened?.metadataBytes ?? metadataBytes(metadata);
    if (metadataSize > limits.maxHeaderBytes) {
      return new WardenError('payload_too_large', `the call's metadata of ${metadataSize} bytes is larger than limits.max_header_bytes (${limits.maxHeaderBytes} bytes)`);
    }
    const wardenHeader = screened?.wardenHeader;
    if (wardenHeader !== undefined) {
      const field = wardenHeader === 'x-warden-template' ? 'template' : 'variables';
      return new WardenError('invalid_request', `metadata '${wardenHeader}' is not read over gRPC: give it in the request's '${field}' field`, { location: { path: wardenHeader } });
    }
    return undefined;
  }

  /**
   * The handler's hold on its call's place; none is a call that bypassed the door, and one without
   * an admission a call the door did not authenticate: both fail closed.
   */
  function passOf(call: AnyCall): DoorPass<GatewayAdmission> & { admission: GatewayAdmission } {
    const pass = door.pass(call.metadata);
    if (pass?.admission === undefined) throw new WardenError('internal', 'internal error');
    return pass as DoorPass<GatewayAdmission> & { admission: GatewayAdmission };
  }

  type AnyCall = grpc.ServerUnaryCall<GatewayRequest, unknown> | grpc.ServerWritableStream<GatewayRequest, unknown>;

  /**
   * Per-call abort: cancelled by the client (which includes the client's own gRPC deadline), or
   * ended by a stage (`cancel`: the forward stage's upstream deadline). As over HTTP, the whole
   * call is not cut at client_timeout_ms: grpc-js has received the request before we see it, and
   * the upstream call has its own deadline.
   */
  function callSignal(call: AnyCall): TrackedSignal {
    return running.track(call, 'cancelled', () => (cut ? cutByShutdown() : new WardenError('cancelled', 'the client cancelled the call')));
  }


  function metaFor(call: AnyCall, action: Action, stream: boolean, signal: CancelSignal, cancel: (reason: unknown) => void, screened?: Screened): GrpcMeta {
    const tp = call.metadata.get('traceparent')[0];
    // Read once, as the handler starts (before any await): later the connection may be gone,
    // and grpc-js then names no peer at all.
    const peer = grpcPeerInfo(call.getPeer(), opts.unixListener === true, call.metadata);
    // A proxy header grpc-js dropped from the metadata (its value not printable ASCII) relays all the same.
    if (peer.relayHeader === undefined && screened?.relayHeader !== undefined) peer.relayHeader = screened.relayHeader;
    return {
      id: randomUUID(),
      action,
      stream,
      credentials: grpcCredentials(call.metadata, peer, screened?.credentials),
      peer,
      traceparent: typeof tp === 'string' ? tp : undefined,
      signal,
      cancel,
    };
  }

  /**
   * Translates the wire request of a call whose credentials passed at the door (admitAtDoor); a
   * refusal here is counted and audited with its principal (no body content), since the pipeline
   * never sees it.
   */
  async function translate(
    call: AnyCall,
    admission: GatewayAdmission,
    action: Action,
    stream: boolean,
    signal: CancelSignal,
    cancel: (reason: unknown) => void,
  ): Promise<{ request: PromptRequest; admitted: Admitted }> {
    const started = performance.now();
    // The credentials object the door verified: `pipeline.run` takes `admitted` only with it.
    const meta: GrpcMeta = { id: admission.id, action, stream, credentials: admission.credentials, peer: admission.peer, traceparent: admission.traceparent, signal, cancel };
    const admitted = admission.admitted;
    try {
      // What the walk of the wire bytes found (grpc-size.ts, grpc-utf8.ts), then the field count
      // (max_json_values, as a body's JSON values), then the decode: each after the credentials,
      // as HTTP reads a body only once they passed.
      const wire = call.request;
      if (wire instanceof OversizeMessage) throw oversizeMessage(wire.bytes, limits.maxBodyBytes);
      if (wire instanceof InvalidUtf8Message) {
        throw new WardenError('invalid_request', `field '${wire.path}' is not valid UTF-8`, { location: { path: wire.path } });
      }
      if (wire instanceof WrongWireTypeMessage) {
        throw new WardenError('invalid_request', `field '${wire.path}' is not encoded as its declared type ${wire.type} (wrong protobuf wire type)`, {
          location: { path: wire.path },
        });
      }
      if (wire instanceof OutOfRangeMessage) {
        throw new WardenError('invalid_request', `field '${wire.path}' is out of the range of its declared type ${wire.type} (a varint of more than 32 bits; at most 4294967295)`, {
          location: { path: wire.path },
        });
      }
      if (wire instanceof UndecodableMessage) throw undecodable(wire);
      if (wire instanceof TooManyFieldsMessage) {
        throw new WardenError('invalid_request', `the request message holds more than ${wire.max} fields (each entry of a repeated field counts; limits.max_json_values)`, { location: { path: '$' } });
      }
      // Nothing else comes through the gateway's deserializers; anything else fails closed.
      if (!(wire instanceof UndecodedMessage)) throw new WardenError('internal', 'internal error');
      const decoded = wire.decode() as WirePromptRequest | UndecodableMessage;
      if (decoded instanceof UndecodableMessage) throw undecodable(decoded);
      return { request: fromWireRequest(decoded, meta, limits), admitted };
    } catch (err) {
      if (isWardenError(err)) {
        opts.onRejected?.(err.code, (performance.now() - started) / 1000);
        const receivedAt = performance.timeOrigin + started;
        await pipeline.auditRejected(rejectedRequest({ ...meta, receivedAt }, 'grpc', action, stream), err, admitted);
      }
      throw err;
    }
  }

  function asWarden(err: unknown): WardenError {
    return isWardenError(err) ? err : new WardenError('internal', 'internal error');
  }

  function unary(action: Action) {
    return (call: grpc.ServerUnaryCall<GatewayRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      // Admitted at the door (grpc-door.ts): refused there while draining, past the in-flight limit
      // or without valid credentials (admitAtDoor), before its message was read.
      const pass = passOf(call);
      const { signal, cancel, dispose } = callSignal(call);
      void (async () => {
        try {
          const { request, admitted } = await translate(call, pass.admission, action, false, signal, cancel);
          const response = await pipeline.run(request, admitted);
          if (action === 'prompt.render' && response.kind === 'render') callback(null, toWireRender(response));
          else if (response.kind === 'complete') callback(null, toWireCompletion(response.result));
          else callback(toGrpcError(new WardenError('internal', 'internal error')));
        } catch (err) {
          callback(toGrpcError(asWarden(err)));
        } finally {
          dispose();
          pass.leave();
        }
      })();
    };
  }

  function streamComplete(call: grpc.ServerWritableStream<GatewayRequest, unknown>): void {
    const pass = passOf(call);
    const { signal, cancel, dispose } = callSignal(call);
    const queued = new QueuedBytes();
    void (async () => {
      let it: AsyncIterator<CompletionChunk> | undefined;
      try {
        const { request, admitted } = await translate(call, pass.admission, 'prompt.execute', true, signal, cancel);
        const response = await pipeline.run(request, admitted);
        if (response.kind !== 'stream') throw new WardenError('internal', 'internal error');
        it = response.chunks[Symbol.asyncIterator]();
        while (true) {
          // The client is gone. (An aborted signal alone may be the upstream deadline: the upstream
          // read then fails, and the client gets its status below.)
          if (call.cancelled) break;
          const step = await it.next();
          if (step.done) {
            it = undefined;
            call.end();
            return;
          }
          // After an abort (the deadline, while the client was behind) the loop reads on: the
          // upstream read fails (`upstream_timeout`), which writes the audit record and ends the
          // call with its status, which grpc-js sends after what the client has not read yet.
          if (!call.write(toWireChunk(step.value), queued.add(chunkBytes(step.value)))) await whenWritable(call, 'cancelled', signal);
          else if (queued.bytes > QUEUED_BYTES_MARK) await queued.below(call, signal);
        }
        // Cancelled by the client: stop reading, which aborts the upstream and writes the audit record.
        await it.return?.();
        it = undefined;
      } catch (err) {
        it = undefined;
        if (!call.cancelled) call.emit('error', toGrpcError(asWarden(err)));
      } finally {
        if (it) await it.return?.();
        dispose();
        pass.leave();
      }
    })();
  }

  // The size limit is checked first (outermost), then the wire walk (UTF-8, wire types, ranges,
  // the field count); the message is decoded by translate, once the credentials passed.
  server.addService(withMessageLimit(withUtf8Check(gateway.service, protoDefinition(), limits.maxJsonValues), limits.maxBodyBytes), {
    Render: unary('prompt.render'),
    Complete: unary('prompt.execute'),
    StreamComplete: streamComplete,
  });


  server.addService(healthService.service, {
    Check(call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      // Its hold on its place (checkDoor); none is a call that bypassed the door.
      const pass = checkDoor.pass(call.metadata);
      if (!pass) return void callback(toGrpcError(new WardenError('internal', 'internal error')));
      const name = call.request.service;
      if (!HEALTH_SERVICES.has(name)) {
        // Not repeated: the name is the caller's text, of any length.
        callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      } else {
        callback(null, { status: health.get() });
      }
      pass.leave();
    },
    /**
     * Sends the status now and on each change. At shutdown the last status (NOT_SERVING) is sent
     * and the stream ends with OK: the graceful close (tryShutdown) waits for every call, so a
     * Watch left open would hold every shutdown for the whole grace period. A Watch on an unknown
     * service stays open until then too (the service might appear; here it never does).
     */
    Watch(call: grpc.ServerWritableStream<{ service: string }, unknown>) {
      const pass = watchDoor.pass(call.metadata);
      if (!pass) return void call.emit('error', toGrpcError(new WardenError('internal', 'internal error')));
      const known = HEALTH_SERVICES.has(call.request.service);
      let sent = known ? health.get() : 'SERVICE_UNKNOWN';
      call.write({ status: sent });
      if (health.shuttingDown) {
        call.end();
        return void pass.leave();
      }
      let over = false;
      const unsubscribe = health.subscribe((s, final) => {
        // Each change once: the final call may repeat the status the watcher has already.
        if (known && s !== sent) call.write({ status: (sent = s) });
        if (!final) return;
        call.end();
        done();
      });
      // Its place comes back once, however the stream ends.
      const done = () => {
        if (over) return;
        over = true;
        unsubscribe();
        pass.leave();
      };
      call.on('cancelled', done);
      call.on('close', done);
    },
  });

  const hooked = answerUnknownMethods(server, (call) => {
    const receivedAt = performance.timeOrigin + performance.now();
    const meta = metaFor(call as unknown as AnyCall, 'prompt.execute', false, new RequestSignal(), () => undefined);
    // Not named back: the path is the caller's text.
    const err = new WardenError('not_found', 'no such method: Warden serves warden.v1.PromptGateway and grpc.health.v1.Health');
    opts.onRejected?.(err.code, 0);
    void pipeline.auditRejected(rejectedRequest({ ...meta, receivedAt }, 'grpc'), err).finally(() => {
      // UNIMPLEMENTED, as gRPC specifies for an unknown method (clients and grpcurl rely on it).
      call.emit('error', toGrpcError(err, grpc.status.UNIMPLEMENTED));
    });
  });
  // Said once at start: otherwise the only sign would be unknown calls missing from the audit log.
  if (!hooked) opts.logger.warn({}, 'grpc: this @grpc/grpc-js has no handler map to hook; unknown methods get its own UNIMPLEMENTED answer, neither counted nor audited');

  return {
    server,
    inFlight: () => door.inFlight,
    screen: (h2) => door.screen(h2),
    async forceShutdown(closed: Promise<unknown>, waitMs = CUT_STATUS_WAIT_MS) {
      cut = true;
      // Aborted like the upstream deadline aborts: the upstream call stops, the record says
      // shutting_down, and the call ends with that status while its connection is still open.
      running.cancelAll(cutByShutdown);
      door.cutWaiting(cutByShutdown);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
      server.forceShutdown();
    },
  };
}

/**
 * grpc-js answers a method nobody registered by itself (UNIMPLEMENTED, the caller's path in the
 * message), before any handler or interceptor runs, so the call would be neither counted nor
 * audited. grpc-js (1.14) has no public hook for it: server interceptors (`interceptors` in the
 * options) run only once a handler was found, `register` takes exact paths, and there is no
 * unknown-service handler. Its handler lookup (the private `handlers` map) is the one place to
 * catch such a call: an unknown path gets a bidi handler (it fits any call type) that runs
 * `answer`. Returns false when the map is not there; grpc-js's own answer then stays.
 * test/server/grpc-unknown-methods.test.ts checks this against the installed grpc-js, so an
 * upgrade that changes the private shape fails there by name.
 */
export function answerUnknownMethods(server: grpc.Server, answer: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => void): boolean {
  const handlers = (server as unknown as { handlers?: unknown }).handlers;
  if (!(handlers instanceof Map)) return false;
  const known = handlers.get.bind(handlers) as (path: string) => unknown;
  const raw = (b: Buffer) => b;
  handlers.get = (path: string) => known(path) ?? { func: answer, serialize: raw, deserialize: raw, type: 'bidi', path };
  return true;
}

/**
 * grpc-js's line for a header it cannot turn into call metadata (a value that is not printable
 * ASCII, a name gRPC does not allow): `Failed to add metadata entry NAME: VALUE. …`. The value is
 * the caller's: a bearer token with one `é` in it, PII in an app's own header. It is never written;
 * the name is, when it is a valid metadata key (then the value was the problem). One line per call
 * would let any caller fill stderr: at most one every DROPPED_ENTRY_EVERY_MS, with how many
 * entries were dropped since the last line. (The call goes on without the entry; an `authorization`
 * so dropped is refused, GrpcDoor.screen.)
 */
const DROPPED_ENTRY = 'Failed to add metadata entry ';
const DROPPED_ENTRY_EVERY_MS = 10_000;
let droppedEntries = 0;
let droppedEntryLoggedAt = -Infinity;

export function droppedEntryLine(message: string, now = performance.now()): string | undefined {
  droppedEntries++;
  if (now - droppedEntryLoggedAt < DROPPED_ENTRY_EVERY_MS) return undefined;
  const name = message.slice(DROPPED_ENTRY.length, message.indexOf(': ', DROPPED_ENTRY.length));
  const what = /^[0-9a-z_.-]{1,64}$/.test(name) ? `the metadata entry ${name} (its value is not printable ASCII)` : 'a metadata entry whose name gRPC does not allow';
  const more = droppedEntries > 1 ? `; ${droppedEntries - 1} more dropped since the last such line` : '';
  droppedEntryLoggedAt = now;
  droppedEntries = 0;
  return `grpc-js dropped ${what} from a call's metadata; the value is not shown${more}`;
}

/**
 * grpc-js's own logger (its default writes `E …` lines to stderr), less the one line a failed bind
 * writes: the rejection carries the same text and the caller reports it, naming the listener.
 */
const quietBindLogger: Partial<Console> = {
  error: (message: unknown, ...rest: unknown[]) => {
    if (typeof message === 'string' && message.startsWith('No address added out of total')) return;
    if (typeof message === 'string' && message.startsWith(DROPPED_ENTRY)) {
      const line = droppedEntryLine(message);
      if (line !== undefined) console.error(`E ${line}`);
      return;
    }
    console.error(`E ${String(message)}`, ...rest);
  },
  info: (message: unknown, ...rest: unknown[]) => console.error(`I ${String(message)}`, ...rest),
  debug: (message: unknown, ...rest: unknown[]) => console.error(`D ${String(message)}`, ...rest),
};
let bindLoggerSet = false;

/** Binds a grpc-js server to `host:port` or `unix:PATH`; resolves to the bound port (0 for unix). */
export function bindGrpc(server: grpc.Server, target: string): Promise<number> {
  if (!bindLoggerSet) {
    grpc.setLogger(quietBindLogger);
    bindLoggerSet = true;
  }
  return new Promise((resolve, reject) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(err);
      else resolve(port);
    });
  });
}
