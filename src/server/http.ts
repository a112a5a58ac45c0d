/**
 * OpenAI-compatible (and Anthropic-compatible: `/v1/messages`) HTTP ingress on `node:http` (no
 * framework: three routes do not need one).
 * It translates the protocol to the canonical request and back; every decision is the
 * pipeline's. Streams are written as SSE with backpressure, and a client that goes away aborts
 * the upstream call.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Admitted, Pipeline, PipelineLogger } from '../pipeline/pipeline.js';
import { RequestSignal, type CancelSignal } from '../pipeline/cancel.js';
import { BytePieces } from '../pipeline/byte-pieces.js';
import { inCheckPhase } from '../pipeline/check-phase.js';
import { WardenError, failsAgainOnRetry, isWardenError } from '../pipeline/errors.js';
import { MODEL_NAME_RULE, isModelName } from '../pipeline/identifiers.js';
import { grantedModels } from '../pipeline/model-grant.js';
import { checkJsonDepth, DEPTH_SCAN_MIN_BYTES, jsonScanError, scanJson } from '../pipeline/json-depth.js';
import type { CompletionChunk, PromptRequest } from '../pipeline/types.js';
import type { IngressLimits } from './limits.js';
import { AnthropicStreamEncoder, anthropicErrorBody, anthropicErrorEvent, anthropicMessageBody, anthropicPromptRequest, anthropicStatus, isAnthropicPath } from './anthropic.js';
import { DONE_EVENT, chunkEvent, completionBody, errorBody } from './openai.js';
import { Admission, OVERLOADED_RETRY_AFTER_S } from './admission.js';
import { closeUnlessFinishedWithin, whenWritable } from './backpressure.js';
import { ingressHeaders, type IngressHeaders } from './headers.js';
import { RunningRequests, type TrackedSignal } from './running.js';
import { arrivingRequest, authorizationCredentials, cutByShutdown, peerInfo, rejectedRequest, toPromptRequest, withApiKey, type IngressMeta } from './request.js';

export interface HttpIngressOptions {
  pipeline: Pipeline;
  limits: IngressLimits;
  logger: PipelineLogger;
  /** Returns true while the process drains for shutdown: new requests get `shutting_down`. */
  draining?: () => boolean;
  /** Model names configured for routing; `GET /v1/models` lists the ones the policy allows. */
  configuredModels: () => readonly string[];
  /**
   * Counts requests refused before they became a PromptRequest (bad JSON, too large, wrong
   * types): they never reach the pipeline, so its metrics would not see them.
   */
  onRejected?: (code: string, seconds: number, protocol?: 'openai-http' | 'anthropic-http') => void;
  /** The in-flight limit, shared with the other app listeners (default: this server's own). */
  admission?: Admission;
  /** This server listens on a Unix socket: its peers are local (see peerInfo). */
  unixListener?: boolean;
}

const JSON_CONTENT_TYPE = 'application/json';
/** The app routes, as a 404 lists them. */
const SERVED_ROUTES = 'POST /v1/chat/completions, POST /v1/messages, GET /v1/models and GET /v1/models/{id}';
/** The methods the app routes take, as a CONNECT's 405 lists them. */
const APP_METHODS = 'GET, POST';
/** How long a client behind in reading a stream has to take its last event once the deadline passed. */
const BEHIND_CLIENT_GRACE_MS = 1_000;
/** `GET /v1/models/{id}` */
const MODEL_PATH = '/v1/models/';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the body up to the limit; rejects with `payload_too_large` past it, and with
 * `request_timeout` when it has not all arrived `timeoutMs` after the request began (`startedAt`,
 * epoch ms): a client trickling its body must not hold a slot for Node's coarse check (every
 * 30 s) to find it, nor get a bare 408 the audit record calls `cancelled`.
 */
/**
 * Requests whose body Node's parser refused (a broken chunked framing, Node's own request
 * deadline) while their handler had not answered yet: the handler answers the refusal in its
 * route's error shape (onClientError), and a body read started after it fails with it at once.
 */
const refusedFraming = new WeakMap<IncomingMessage, WardenError>();

/** A body being read: what its deadline needs once it is armed (see `armBodyDeadline`). */
interface BodyRead {
  req: IncomingMessage;
  /** Whether the promise is decided (ended, refused, gone, or timed out). */
  settled: boolean;
  /** Epoch ms (as `startedAt`). */
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  expire: () => void;
}

/**
 * Arms a body's deadline in the check phase of the turn its request came in. readBody runs inside
 * the 'request' event (once the credentials passed at once, the usual case; after a token checked
 * off the event loop, in a later turn, the deadline counting from the request's start all the
 * same), before the parser has read the body out of the socket's data; by the check
 * phase, a body that came with its headers (the usual small JSON, written in one go by undici and
 * the SDKs) is complete. It needs no deadline, and a timer set and cleared for every such request
 * was ~2-3 us of CPU. Only a body still arriving gets one (one immediate per turn for all).
 */
const armBodyDeadline = inCheckPhase((read: BodyRead) => {
  if (read.settled || read.req.complete) return;
  read.timer = setTimeout(read.expire, Math.max(0, read.deadline - (performance.timeOrigin + performance.now())));
});

function readBody(req: IncomingMessage, limit: number, declared: string | undefined, startedAt: number, timeoutMs: number): Promise<Buffer> {
  // Its framing was refused while its credentials were checked (onClientError): no body will come.
  const refused = refusedFraming.get(req);
  if (refused !== undefined) return Promise.reject(refused);
  // Gone while its credentials were checked (a token verified off the event loop): no body will come.
  if (req.destroyed) return Promise.reject(new WardenError('cancelled', 'the client closed the request'));
  return new Promise((resolve, reject) => {
    // One buffer however many pieces the body comes in: a piece a byte (chunked coding) once held
    // ~150 bytes of heap per byte of body, before the caller was even authenticated.
    const body = new BytePieces(limit, declared === undefined ? Number.NaN : Number(declared));
    let size = 0;
    let ended = false;
    const read: BodyRead = {
      req,
      settled: false,
      deadline: startedAt + timeoutMs,
      timer: undefined,
      expire: () => {
        if (read.settled) return;
        read.settled = true;
        req.off('data', onData);
        req.resume();
        reject(new WardenError('request_timeout', `the request body did not arrive within ${timeoutMs} ms`, { location: { path: '$' } }));
      },
    };
    const settle = () => {
      read.settled = true;
      clearTimeout(read.timer);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        settle();
        reject(tooLarge(limit));
        return;
      }
      body.add(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      ended = true;
      settle();
      resolve(body.take());
    });
    // A WardenError here is the parser refusing the body's framing (see onClientError).
    const gone = (err?: unknown) => {
      settle();
      if (!ended) reject(isWardenError(err) ? err : new WardenError('cancelled', 'the client closed the request'));
    };
    req.once('error', gone);
    req.once('close', gone);
    armBodyDeadline(read);
  });
}

/**
 * Refuses an encoded body (`content-encoding: gzip`, `br`, `deflate`, ...; or a transfer coding
 * other than `chunked`, `transfer-encoding: gzip, chunked`) before it is read:
 * read as JSON it would be refused as "not valid UTF-8", which says nothing of the cause, and
 * decoding it would open a decompression-bomb path no client needs. `identity` (the header's
 * "no encoding") passes. The value is the caller's text, so it is not named back.
 */
function checkContentEncoding(value: string | undefined, transfer: string | undefined): void {
  if (value !== undefined) {
    for (const coding of value.split(',')) {
      const c = coding.trim().toLowerCase();
      if (c !== '' && c !== 'identity') {
        throw new WardenError('unsupported_media_type', "the request body is encoded (content-encoding); Warden reads only uncompressed bodies: send it without content-encoding, or with 'identity'", {
          location: { path: 'content-encoding' },
        });
      }
    }
  }
  // A transfer coding before `chunked` (`gzip, chunked`): node's parser takes the chunks off and
  // hands over the still-compressed bytes, which read as "not valid UTF-8". Node refuses a
  // request whose last coding is not `chunked` itself.
  if (transfer === undefined) return;
  for (const coding of transfer.split(',')) {
    const c = coding.trim().toLowerCase();
    if (c !== '' && c !== 'chunked' && c !== 'identity') {
      throw new WardenError('unsupported_media_type', "the request body is compressed (transfer-encoding); Warden reads only uncompressed bodies: send it with 'transfer-encoding: chunked' alone, or a content-length", {
        location: { path: 'transfer-encoding' },
      });
    }
  }
}

/** Refusals that leave the body unread (or part read): the connection cannot be reused. */
function closesConnection(code: string): boolean {
  return code === 'payload_too_large' || code === 'request_timeout' || code === 'unsupported_media_type';
}

/**
 * Why a stream ended for a client that was behind in reading it when its request was stopped:
 * Warden's own word (`shutting_down`: the shutdown deadline), else the upstream deadline.
 */
function behindReason(signal: CancelSignal): WardenError {
  if (isWardenError(signal.reason)) return signal.reason;
  return new WardenError('upstream_timeout', 'the request ran out of time (limits.upstream_timeout_ms) before its answer was delivered');
}

/** A pipelined request whose connection closed while its answer waited for the ones before it. */
function answerNeverSent(): WardenError {
  return new WardenError('cancelled', 'the client closed the connection before this answer, pipelined behind others, could go out');
}

/**
 * Refuses a body whose Content-Length is over the limit before anything else is done with it (its
 * credentials included): the header says all there is to know.
 */
function checkDeclaredLength(declared: string | undefined, limit: number): void {
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
}

function tooLarge(limit: number): WardenError {
  return new WardenError('payload_too_large', `request body is larger than ${limit} bytes`, { location: { path: '$' } });
}

/**
 * The byte offset in the body of V8's JSON error position, which counts UTF-16 units of the decoded
 * text: past an `é` or an emoji it is short of the byte, and a leading BOM (which the decoder drops)
 * is three bytes it does not count. Only on the refusal path.
 */
function jsonErrorByte(bytes: Buffer, text: string, position: number): number {
  return bytes.length - Buffer.byteLength(text) + Buffer.byteLength(text.slice(0, position));
}

/**
 * The body as JSON, refused when it is not UTF-8, not JSON, nested deeper than `maxDepth`, or (over
 * DEPTH_SCAN_MIN_BYTES) holding more than `maxValues` values.
 */
function parseJson(bytes: Buffer, maxDepth: number, maxValues: number): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new WardenError('invalid_request', 'request body is not valid UTF-8', { location: { path: '$' } });
  }
  // A large body is scanned before JSON.parse, which takes a deeply nested one 20-30x longer than
  // a flat one, and a flat one of a million tiny values some tenths of a second (see scanJson and
  // DEPTH_SCAN_MIN_BYTES). A smaller one cannot hold more than maxValues (its minimum).
  if (bytes.length > DEPTH_SCAN_MIN_BYTES) {
    const problem = scanJson(bytes, maxDepth, maxValues);
    if (problem !== undefined) throw jsonScanError(problem, 'request body', '$', maxDepth, maxValues);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    // V8's message names a position (never quotes more than a token); keep only the position.
    const m = err instanceof Error ? /position (\d+)/.exec(err.message) : null;
    throw new WardenError('invalid_request', `request body is not valid JSON${m ? ` (at byte ${jsonErrorByte(bytes, text, Number(m[1]))})` : ''}`, {
      location: { path: '$' },
    });
  }
  checkJsonDepth(body, maxDepth);
  return body;
}

export interface HttpIngress {
  readonly server: Server;
  /** Requests being served right now (for a graceful shutdown). */
  inFlight(): number;
  /** Resolves when no request is in flight. */
  idle(): Promise<void>;
  /**
   * The drain has nothing left in flight: closes every connection with no request under way, the
   * idle keep-alive ones (Node's closeIdleConnections) and the ones that have not sent a byte
   * (closeQuiet). Done in the check phase, once the bytes that had arrived are read: a connection
   * whose request is on its way is left to get its `shutting_down`.
   */
  closeIdle(): Promise<void>;
  /**
   * The shutdown deadline passed: ends every request still running as `shutting_down` (not
   * `cancelled`: the client did not go away, Warden stopped), telling its client where the
   * protocol still can (a 503 before any header, an SSE error event in a stream), then closes
   * every connection, after at most `waitMs` for those answers to go out.
   */
  closeAll(waitMs?: number): Promise<void>;
}

/** How long closeAll waits for the `shutting_down` answers before it closes the connections. */
export const CUT_ANSWER_WAIT_MS = 500;

/**
 * What a parser error before any handler means: its HTTP status (Node's own choice, kept) and the
 * Warden error the caller, the metric and the audit record get. Undefined when it is no request.
 */
export function parserRefusal(code: string | undefined, limits: Pick<IngressLimits, 'maxHeaderBytes' | 'requestTimeoutMs'>): { status: number; error: WardenError } | undefined {
  if (code === 'HPE_HEADER_OVERFLOW') {
    const error = new WardenError('payload_too_large', `the request's header block is larger than limits.max_header_bytes (${limits.maxHeaderBytes} bytes)`);
    return { status: 431, error };
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // Node checks once a second, after requestTimeoutMs + 1 s (the server options below).
    return { status: 408, error: new WardenError('request_timeout', `the request's headers did not arrive within limits.client_timeout_ms (${limits.requestTimeoutMs} ms)`) };
  }
  // The connection ended (a FIN) before the request did: the client went away, as with a reset
  // (most clients that give up close normally). Not the caller's malformed input.
  if (code === 'HPE_INVALID_EOF_STATE') return { status: 499, error: new WardenError('cancelled', 'the client closed the connection before its request was complete') };
  if (code?.startsWith('HPE_')) return { status: 400, error: new WardenError('invalid_request', 'the request is not valid HTTP/1.1') };
  return undefined;
}

/** The parser's refusal of a request's body, as its handler reports it: a framing error is located at the body. */
function framingError(error: WardenError): WardenError {
  return error.code === 'invalid_request' ? new WardenError('invalid_request', 'the request body is not valid HTTP/1.1 framing', { location: { path: '$' } }) : error;
}

/** A refusal for a client that is gone: nothing is answered (nobody would read it). */
const clientGone = (refusal: { error: WardenError }): boolean => refusal.error.code === 'cancelled';

/**
 * How long the request Node's parser just refused may have been arriving, in ms: since its
 * connection was last ready for a request (`readySince`: opened, or its previous answer ended).
 * Node 20's parser has its own clock from the request's first byte (`duration()`, which its header
 * deadline reads); Node 22 and later's has none, so the figure counts a kept-alive connection's
 * idle time before the request there (at most the keep-alive timeout). Read only on a refusal:
 * nothing is added to a served request but the one timestamp when its answer ends.
 */
function headerBlockMs(socket: Duplex, readySince: number | undefined): number {
  const parser = (socket as { parser?: { duration?: () => unknown } | null }).parser;
  const clock = typeof parser?.duration === 'function' ? parser.duration() : undefined;
  const ms = typeof clock === 'number' ? clock : readySince === undefined ? 0 : performance.now() - readySince;
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/**
 * node:http's limits for the app listener. Exported for its test: the header block's deadline
 * must follow `client_timeout_ms`, not Node's own default.
 */
export function serverOptions(limits: Pick<IngressLimits, 'maxHeaderBytes' | 'requestTimeoutMs' | 'idleTimeoutMs'>): ServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    // The app talks to us over loopback with keep-alive; idle sockets live a little longer than a
    // typical client pool's idle timeout by default (limits.idle_timeout_ms, 65 s).
    keepAliveTimeout: limits.idleTimeoutMs,
    // readBody answers a late body with `request_timeout` itself; Node's own limit (a bare 408,
    // checked every connectionsCheckingInterval) is the backstop, for headers that never end.
    requestTimeout: limits.requestTimeoutMs + 1_000,
    // The header block gets the same time: Node's default (60 s, or requestTimeout if smaller)
    // would refuse slow headers earlier than client_timeout_ms says, or later than a small one.
    headersTimeout: limits.requestTimeoutMs + 1_000,
    connectionsCheckingInterval: 1_000,
  };
}

export function createHttpIngress(opts: HttpIngressOptions): HttpIngress {
  const { pipeline, limits, logger } = opts;
  /**
   * The request each connection is serving now (a parser error on it belongs to that request), or
   * when it was last ready for one (performance.now(): opened, or its last answer ended), which
   * times a request the parser refuses before any handler ran (headerBlockMs).
   */
  const serving = new WeakMap<Duplex, ServerResponse | number>();
  const admission = opts.admission ?? new Admission(limits.maxInFlight);
  const unixListener = opts.unixListener === true;
  let active = 0;
  /** Set when the shutdown deadline closes the connections (see closeAll). */
  let cut = false;
  /** Each running request's `cancel`: the shutdown deadline ends them all with `shutting_down`. */
  const running = new RunningRequests();

  function sendJson(res: ServerResponse, status: number, body: string, requestId: string): void {
    if (res.headersSent) return;
    // While draining, tell keep-alive clients not to reuse this connection: with its last answer,
    // as the connection closes after it (answers pipelined behind it would be dropped unsent).
    if (opts.draining?.() && !answersBehind(res)) res.setHeader('connection', 'close');
    // A flat header array: node writes it as is, with no header object to build and walk.
    res.writeHead(status, [
      'content-type',
      JSON_CONTENT_TYPE,
      'content-length',
      String(Buffer.byteLength(body)),
      'x-request-id',
      requestId,
    ]);
    res.end(body);
  }

  /**
   * A non-streamed answer (200). Larger than the socket's buffers (a few MB), it is not sent until
   * the client reads, and its response, which holds the request's place under max_in_flight,
   * stays open meanwhile. The client gets a whole upstream deadline (limits.upstream_timeout_ms)
   * from here to take it; one that has not by then has its connection closed. Small answers
   * finish at once: no timer.
   */
  function sendAnswer(res: ServerResponse, body: string, requestId: string): void {
    sendJson(res, 200, body, requestId);
    if (limits.upstreamTimeoutMs !== undefined) closeUnlessFinishedWithin(res, limits.upstreamTimeoutMs);
  }

  /**
   * Ends a streamed answer with `last` (its end, or an error event after a failure mid-stream).
   * The tail may not fit the socket's buffers (a client that stopped reading near the end: every
   * write before returned true, so whenWritable never waited), and the response, which holds the
   * request's place under max_in_flight, stays open until it is taken: as a non-streamed answer
   * (sendAnswer), the client gets a whole upstream deadline from here, then its connection is
   * closed. A tail that fits (the usual case) finishes at once: no timer.
   */
  function endStream(res: ServerResponse, last: string): void {
    res.end(last);
    if (limits.upstreamTimeoutMs !== undefined) closeUnlessFinishedWithin(res, limits.upstreamTimeoutMs);
  }

  /**
   * Ends a stream whose request's deadline passed while the client was behind in reading it
   * (`whenWritable` gave up): the client is told in-band, as one that keeps up is, with `last` (the
   * error event), and the connection is closed if it does not take that within a second. The
   * audit record is already written and the upstream call over (`it.return()`).
   */
  function endBehindClient(res: ServerResponse, last: string): void {
    if (res.destroyed) return;
    res.end(last);
    closeUnlessFinishedWithin(res, BEHIND_CLIENT_GRACE_MS);
  }

  /**
   * An error in the protocol's shape; a rate limit passes the upstream's Retry-After on, and a failure
   * a retry would meet again says so to the SDKs (failsAgainOnRetry).
   */
  function sendErrorBody(res: ServerResponse, err: WardenError, body: object, requestId: string, status = err.httpStatus): void {
    const retryAfter = err.details?.['retry_after_s'];
    if (typeof retryAfter === 'number' && !res.headersSent) res.setHeader('retry-after', String(retryAfter));
    if (failsAgainOnRetry(err) && !res.headersSent) res.setHeader('x-should-retry', 'false');
    sendJson(res, status, JSON.stringify(body), requestId);
  }

  /**
   * An error on `/v1/messages`: Anthropic's shape and status, with the request id where Anthropic's
   * SDKs read it (`request-id`: see anthropicRequestId).
   */
  function sendAnthropicError(res: ServerResponse, err: WardenError, requestId: string): void {
    anthropicRequestId(res, requestId);
    sendErrorBody(res, err, anthropicErrorBody(err, requestId), requestId, anthropicStatus(err));
  }

  /**
   * Anthropic's API names the request in a `request-id` header, which its SDKs expose
   * (`message._request_id`, `stream.request_id`, `err.requestID`); `x-request-id` stays for the rest.
   */
  function anthropicRequestId(res: ServerResponse, requestId: string): void {
    if (!res.headersSent) res.setHeader('request-id', requestId);
  }

  function sendError(res: ServerResponse, err: WardenError, requestId: string): void {
    sendErrorBody(res, err, errorBody(err), requestId);
  }

  let idleWaiters: Array<() => void> = [];

  function onDone(): void {
    active--;
    if (active === 0 && idleWaiters.length > 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Every request on the app listener. `unmet`: its `Expect` header asks for something other than
   * `100-continue` (Node's `checkExpectation`), which no route can meet (see handle).
   */
  function onRequest(req: IncomingMessage, res: ServerResponse, unmet?: true): void {
    active++;
    serving.set(req.socket, res);
    res.once('close', onResponseClose);
    // Pipelined behind an answer still going out: Node queues this response without a socket.
    if (res.socket === null) queueBehind(req.socket, res);
    // handle() maps every error itself; this is a last line of defence.
    const failed = (err: unknown) => {
      logger.error({ error_type: err instanceof Error ? err.constructor.name : typeof err }, 'http handler failed');
      if (!res.headersSent) sendError(res, new WardenError('internal', 'internal error'), '');
      else res.destroy();
    };
    try {
      handle(req, res, unmet)?.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  const server = createServer(serverOptions(limits), onRequest);
  // Without a listener Node answers such a request itself, a bare 417 with no request id that
  // left no audit record; handled here, it is refused as any request at a route is.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, true));
  // `Expect: 100-continue`: without a listener Node sends `100 Continue` before any handler runs,
  // so a client that waits to be asked sent a body that was refused whatever it held: its
  // Content-Length over the limit, its credentials, its route, its encoding, a draining Warden.
  // The `100 Continue` is sent when a route is about to read the body (askForBody), after all
  // those; a request refused before gets its answer instead (Node closes the connection after
  // it, since the body was never asked for).
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    waitingToContinue.add(res);
    onRequest(req, res);
  });

  /** Responses to `Expect: 100-continue` requests whose body was not asked for yet (see checkContinue). */
  const waitingToContinue = new WeakSet<ServerResponse>();

  /** Sends `100 Continue` when the request waits for it: its body is about to be read. */
  function askForBody(res: ServerResponse): void {
    if (waitingToContinue.delete(res) && !res.headersSent) res.writeContinue();
  }

  /**
   * Every open connection, for the drain to close the ones that have not sent a byte (closeQuiet):
   * one entry per connection, none per request.
   */
  const connections = new Set<Socket>();
  server.on('connection', onConnection);

  function onConnection(socket: Socket): void {
    serving.set(socket, performance.now());
    connections.add(socket);
    socket.once('close', onConnectionClose);
  }

  function onConnectionClose(this: Socket): void {
    connections.delete(this);
  }

  /**
   * Closes the connections with no request under way: the idle keep-alive ones (Node's
   * closeIdleConnections), and the ones that have not sent a byte, a client pool's spare
   * connection, opened ahead of a request it may never send (undici, so the global fetch and the
   * openai SDK, opens one after an aborted request). Node's closeIdleConnections keeps such a
   * connection (to Node it is a request whose headers are due), and `server.close()` stops the
   * header deadline that would end it, so it held the drain for the whole of shutdown_grace_ms with
   * nothing in flight. A connection with part of a request is left to finish it (it gets
   * `shutting_down`).
   */
  function closeQuiet(): void {
    server.closeIdleConnections();
    for (const socket of connections) if (socket.bytesRead === 0) socket.destroy();
  }

  server.on('clientError', onClientError);
  server.on('connect', onConnect);
  // No 'upgrade' listener, on purpose: without one Node serves a `Connection: Upgrade` request
  // (a websocket handshake, h2c) as a plain request, which the routes answer and audit.

  /** One function for every response (no closure per request); `this` is the response. */
  function onResponseClose(this: ServerResponse): void {
    const socket = this.req.socket;
    if (serving.get(socket) === this) serving.set(socket, performance.now());
    onDone();
  }

  /**
   * The responses each connection has queued behind the one it is sending (HTTP/1.1 pipelining),
   * oldest first; stale entries (their turn came) are dropped as new ones arrive. Only for
   * pipelined requests: one request at a time on a connection costs nothing here.
   */
  const queued = new WeakMap<Duplex, ServerResponse[]>();

  function queueBehind(socket: Duplex, res: ServerResponse): void {
    const list = queued.get(socket);
    if (list === undefined) {
      queued.set(socket, [res]);
      socket.once('close', onQueueingConnectionClose);
      return;
    }
    while (list.length > 0 && !stillQueued(list[0]!)) list.shift();
    list.push(res);
  }

  /**
   * Whether answers pipelined behind `res` on its connection are still to go out. Only asked while
   * draining: the answer that says `connection: close` must be the connection's last.
   */
  function answersBehind(res: ServerResponse): boolean {
    const list = queued.get(res.req.socket);
    if (list === undefined) return false;
    for (let i = list.length - 1; i >= 0; i--) {
      const other = list[i]!;
      if (other === res) return false;
      if (stillQueued(other)) return true;
    }
    return false;
  }

  /** A response Node has not given the connection to yet (nor will, once it is closed). */
  function stillQueued(res: ServerResponse): boolean {
    return res.socket === null && !res.destroyed && !res.writableFinished;
  }

  /**
   * The connection closed with answers still queued. Node emits `close` on a response only once
   * it has had the socket, so these would never emit it: nothing would give back their places
   * under max_in_flight, their count for the shutdown drain, or cancel the ones still running.
   * Each is closed here as Node closes the one it is sending: its `close` listeners then run
   * (requestSignal: `cancelled`, or `shutting_down` after the deadline).
   */
  function onQueueingConnectionClose(this: Duplex): void {
    const list = queued.get(this);
    queued.delete(this);
    for (const res of list ?? []) {
      if (!stillQueued(res)) continue;
      res.destroy();
      res.emit('close');
    }
  }

  /**
   * The response's answer cannot go out now: it is queued behind others (pipelining), or its
   * connection is already ending (a request Node parsed after an answer that closed it).
   */
  function cannotAnswerYet(res: ServerResponse): boolean {
    return res.socket === null || !res.socket.writable;
  }

  /**
   * Resolves true when a response queued behind others on its connection gets the connection (its
   * turn to answer) and can still write on it, false when the connection closes or ends first.
   */
  function answerTurn(res: ServerResponse): Promise<boolean> {
    if (!stillQueued(res)) return Promise.resolve(!res.destroyed && res.socket?.writable === true);
    return new Promise<boolean>((resolve) => {
      const onSocket = () => {
        res.off('close', onClose);
        resolve(res.socket?.writable === true);
      };
      const onClose = () => {
        res.off('socket', onSocket);
        resolve(false);
      };
      res.once('socket', onSocket);
      res.once('close', onClose);
    });
  }

  /**
   * A stream whose turn to answer never came (answerTurn): its upstream call is closed and it is
   * audited as the client leaving (the abort's own reason when its signal says one).
   */
  async function dropUnsent(res: ServerResponse, it: AsyncIterator<CompletionChunk>, signal: CancelSignal): Promise<void> {
    if (signal.aborted) await it.return?.();
    else await it.throw?.(answerNeverSent()).catch(() => undefined);
    res.destroy();
  }

  /**
   * PromptRequest.answerTurn for a pipelined request (set only for one): its answer, ready,
   * waits for the ones before it to go out before its audit record is written, and one whose
   * connection closed first is audited as the client leaving, not `ok`.
   */
  function pipelinedTurn(res: ServerResponse): () => Promise<void> {
    return () =>
      answerTurn(res).then((turn) => {
        if (!turn) throw cut ? cutByShutdown() : answerNeverSent();
      });
  }

  /**
   * Node's parser refused bytes on a connection (`clientError`). Before any handler ran (a header
   * block over `max_header_bytes`, a bad method, version or request line, headers that never end)
   * it is a request Warden never saw: answered in the error shape with a request id, counted and
   * audited like any refusal at the door. Inside a request a handler already has (a broken chunked
   * body), that handler answers and audits it (its body read fails with `invalid_request`), in its
   * route's shape: a raw `400` from here left the caller no error body nor request id, and one
   * whose credentials failed a 400 its record called `unauthenticated`.
   * Anything else (a reset, a connection that sent nothing) is no request: the socket is closed.
   */
  function onClientError(err: Error & { code?: string }, socket: Duplex): void {
    const refusal = parserRefusal(err.code, limits);
    const entry = serving.get(socket);
    const res = typeof entry === 'number' ? undefined : entry;
    // The bytes after a request already read whole (a bad request pipelined behind it) are the
    // next request's: refused at the door in its own right once the answer before it is out.
    if (res?.req.complete && refusal && !clientGone(refusal)) {
      refuseAfter(res, socket, refusal);
      return;
    }
    if (res) {
      const req = res.req;
      // The parser reports its error again for each piece that still comes: answered once.
      if (refusedFraming.has(req)) return;
      // A handler runs the request and has not answered it: it answers the refusal itself, in
      // its route's error shape with a request id, and audits it once — with the principal when
      // the credentials passed, as `unauthenticated` when they did not (checked first, and
      // answered first: the caller learns nothing of a body it was not asked for). The parser
      // cannot go on, so the socket is read no more and closes after that answer.
      if (refusal && !clientGone(refusal) && socket.writable && !res.headersSent) {
        const framing = framingError(refusal.error);
        refusedFraming.set(req, framing);
        res.setHeader('connection', 'close');
        socket.pause();
        // A body read under way fails with it (readBody's listener); one not started, at its start.
        if (req.listenerCount('error') > 0) req.emit('error', framing);
        return;
      }
      // An answer already under way (a refusal sent before the body ended), or a client that is
      // gone: the connection ends here. A reset is the client going away (`cancelled`, from the
      // body read's `close`); so is a FIN mid-body (`cancelled`, from parserRefusal).
      if (refusal && req.listenerCount('error') > 0) req.destroy(framingError(refusal.error));
      socket.destroy();
      return;
    }
    if (!refusal || !socket.writable) {
      socket.destroy();
      return;
    }
    void refuseHeaderBlock(socket, typeof entry === 'number' ? entry : undefined, refusal);
  }

  /**
   * A request refused in its header block, before any handler ran: counted and audited as a
   * refusal at the door (ids and the code only), then answered on the socket (unless the client
   * is gone) and the connection closed.
   */
  function refuseHeaderBlock(socket: Duplex, readySince: number | undefined, refusal: { status: number; error: WardenError }): Promise<void> {
    const requestId = randomUUID();
    const heldMs = headerBlockMs(socket, readySince);
    const receivedAt = performance.timeOrigin + performance.now() - heldMs;
    opts.onRejected?.(refusal.error.code, heldMs / 1000, 'openai-http');
    const peer = peerInfo((socket as { remoteAddress?: string }).remoteAddress, unixListener);
    const meta = { id: requestId, signal: new RequestSignal(), receivedAt, peer };
    return pipeline
      .auditRejected(rejectedRequest(meta, 'openai-http'), refusal.error)
      .finally(() => (clientGone(refusal) ? socket.destroy() : answerOnSocket(socket, refusal.status, refusal.error, requestId)));
  }

  /**
   * The shutdown deadline passed: requests still in their header block (their connection has sent
   * part of one, and no handler runs it) are refused as Node's parser refusals are, with
   * `shutting_down` (503): `server.close()` stopped Node's own header deadline, so they would
   * otherwise be cut unanswered and unaudited. Connections with nothing under way close first.
   */
  function refuseHeaderBlocks(): Promise<void>[] {
    closeQuiet();
    const refusals: Promise<void>[] = [];
    for (const socket of connections) {
      const entry = serving.get(socket);
      if (socket.destroyed || typeof entry !== 'number') continue;
      // The rest of the request no longer matters, nor may it start a handler now.
      socket.pause();
      refusals.push(refuseHeaderBlock(socket, entry, { status: 503, error: cutByShutdown() }).catch(() => undefined));
    }
    return refusals;
  }

  /**
   * A request the parser refused behind one it read whole (pipelined): counted and audited as a
   * refusal at the door, and answered on the connection once the answer before it has gone out
   * (the parser cannot go on, so the connection then closes). It was charged to the request before
   * it, which was cut unanswered yet audited `ok`, and the bad one left no record.
   */
  function refuseAfter(before: ServerResponse, socket: Duplex, refusal: { status: number; error: WardenError }): void {
    const requestId = randomUUID();
    opts.onRejected?.(refusal.error.code, 0, 'openai-http');
    const peer = peerInfo((socket as { remoteAddress?: string }).remoteAddress, unixListener);
    const meta = { id: requestId, signal: new RequestSignal(), receivedAt: performance.timeOrigin + performance.now(), peer };
    const recorded = pipeline.auditRejected(rejectedRequest(meta, 'openai-http'), refusal.error).catch(() => undefined);
    before.once('close', () => {
      void recorded.then(() => (before.writableFinished && socket.writable ? answerOnSocket(socket, refusal.status, refusal.error, requestId) : socket.destroy()));
    });
  }

  /**
   * A CONNECT request (a proxy tunnel: Warden is no proxy). Node hands it to a `connect` listener,
   * not to the request handler, and with no listener destroys the socket unanswered, so it would
   * leave no record. It is a request like any other on a wrong method: 405 `invalid_request` with
   * `allow`, counted and audited. Its target (`host:port`, or a path) is the caller's text: not
   * named back. Node has given the socket up (its timeouts and error handler included): the
   * connection is closed once answered.
   */
  function onConnect(req: IncomingMessage, socket: Duplex): void {
    // Node removed its own error listener: a reset before the answer must not become an
    // uncaught 'error' (the socket is destroyed, nothing else to do).
    socket.on('error', () => socket.destroy());
    const requestId = randomUUID();
    const err = new WardenError('invalid_request', `method CONNECT is not allowed; Warden is no proxy, it serves ${SERVED_ROUTES}`);
    void recordRefusal(req, requestId, '', err).finally(() => answerOnSocket(socket, 405, err, requestId, `allow: ${APP_METHODS}\r\n`));
  }

  /**
   * Writes an error answer on a socket Node's server no longer handles (a parser refusal, a
   * CONNECT), in the error shape with a request id, and closes the connection.
   */
  function answerOnSocket(socket: Duplex, status: number, err: WardenError, requestId: string, extraHeaders = ''): void {
    if (!socket.writable) return void socket.destroy();
    const body = JSON.stringify(errorBody(err));
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: ${JSON_CONTENT_TYPE}\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n${extraHeaders}connection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  }

  /**
   * Routes one request. Not an async function: it hands back the route's own promise (an async
   * function returning a promise would wrap it in another, for three more microtask turns).
   */
  function handle(req: IncomingMessage, res: ServerResponse, unmet?: true): Promise<void> | void {
    const requestId = randomUUID();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);

    if (opts.draining?.()) {
      return refuseAtDoor(req, res, requestId, path, new WardenError('shutting_down', 'warden is shutting down; retry on another instance'));
    }
    if (!admission.tryEnter()) {
      const err = new WardenError('overloaded', `warden is serving its limit of ${admission.max} requests; retry shortly`, {
        details: { retry_after_s: OVERLOADED_RETRY_AFTER_S },
      });
      return refuseAtDoor(req, res, requestId, path, err);
    }
    res.once('close', () => admission.leave());

    if (unmet === true) {
      // The value is the caller's text: not named back. RFC 9110 §10.1.1: 417 Expectation Failed.
      const err = new WardenError('invalid_request', "the request's Expect header asks for an expectation Warden cannot meet (only 100-continue is understood): send the request without it", { location: { path: 'expect' } });
      return refuseWith(req, res, requestId, path, err, 417);
    }
    if (path === '/v1/chat/completions') {
      if (req.method !== 'POST') return methodNotAllowed(req, res, requestId, path, 'POST');
      return chatCompletions(req, res, requestId);
    }
    if (path === '/v1/messages') {
      if (req.method !== 'POST') return methodNotAllowed(req, res, requestId, path, 'POST');
      return anthropicMessages(req, res, requestId);
    }
    if (path === '/v1/models') {
      if (req.method !== 'GET') return methodNotAllowed(req, res, requestId, path, 'GET');
      return models(req, res, requestId);
    }
    if (path.startsWith(MODEL_PATH)) {
      if (req.method !== 'GET') return methodNotAllowed(req, res, requestId, path, 'GET');
      return models(req, res, requestId, path.slice(MODEL_PATH.length));
    }
    // The path is the caller's text (a route-like one can carry an e-mail address or an id as well
    // as any other): not named back, in the message or the location. The method is one of the
    // fixed set node's parser accepts.
    const err = new WardenError('not_found', `no route for ${req.method ?? 'GET'} at this path; Warden serves ${SERVED_ROUTES}`);
    // A route of Anthropic's API Warden does not serve (the SDK's messages.countTokens, batches,
    // legacy completions): answered in the shape that SDK reads, as its other answers are.
    if (isAnthropicPath(path)) return recordRefusal(req, requestId, path, err).then(() => sendAnthropicError(res, err, requestId));
    return recordRefusal(req, requestId, path, err).then(() => sendError(res, err, requestId));
  }

  /**
   * Refused before it is read — at the in-flight limit (`overloaded`, told to retry in a second)
   * or while draining (`shutting_down`): answered at once, counted and audited like any request
   * refused before it was read (ids and the code only).
   */
  function refuseAtDoor(req: IncomingMessage, res: ServerResponse, requestId: string, path: string, err: WardenError): Promise<void> {
    const anthropic = isAnthropicPath(path);
    return recordRefusal(req, requestId, path, err).then(() => (anthropic ? sendAnthropicError(res, err, requestId) : sendError(res, err, requestId)));
  }

  /**
   * Counts and audits a request refused before a PromptRequest was made of it (ids and the code
   * only): every request to the app listener leaves one record, a wrong route or method too.
   */
  function recordRefusal(req: IncomingMessage, requestId: string, path: string, err: WardenError): Promise<void> {
    req.resume();
    const receivedAt = performance.timeOrigin + performance.now();
    const protocol = isAnthropicPath(path) ? 'anthropic-http' : 'openai-http';
    const action = path === '/v1/models' || path.startsWith(MODEL_PATH) ? 'models.list' : 'prompt.execute';
    opts.onRejected?.(err.code, 0, protocol);
    const headers = ingressHeaders(req.rawHeaders);
    const meta = { id: requestId, signal: new RequestSignal(), receivedAt, traceparent: headers.traceparent, peer: peerInfo(req.socket.remoteAddress, unixListener, headers.relayHeader) };
    return pipeline.auditRejected(rejectedRequest(meta, protocol, action), err);
  }

  function methodNotAllowed(req: IncomingMessage, res: ServerResponse, requestId: string, path: string, allow: string): Promise<void> {
    const err = new WardenError('invalid_request', `method ${req.method ?? ''} is not allowed here; use ${allow}`);
    res.setHeader('allow', allow);
    return refuseWith(req, res, requestId, path, err, 405);
  }

  /** A refusal with its own HTTP status (405, 417), counted and audited as one at the door. */
  function refuseWith(req: IncomingMessage, res: ServerResponse, requestId: string, path: string, err: WardenError, status: number): Promise<void> {
    return recordRefusal(req, requestId, path, err).then(() => {
      // The route's own shape, as every other answer on it (an Anthropic SDK parses this one too).
      if (isAnthropicPath(path)) {
        anthropicRequestId(res, requestId);
        sendJson(res, status, JSON.stringify(anthropicErrorBody(err, requestId)), requestId);
        return;
      }
      sendJson(res, status, JSON.stringify(errorBody(err)), requestId);
    });
  }

  /**
   * Per-request abort: the client went away, or a stage ended the request (`cancel`: the
   * forward stage's upstream deadline). The time a client may take to send its request is
   * node's `requestTimeout` (above); the upstream call has its own deadline. The signal is an
   * emitter, not an AbortController: see pipeline/cancel.ts for what that saves.
   */
  function requestSignal(res: ServerResponse): TrackedSignal {
    return running.track(res, 'close', () =>
      res.writableFinished ? undefined : cut ? cutByShutdown() : new WardenError('cancelled', 'the client closed the request'),
    );
  }


  function baseMeta(req: IncomingMessage, headers: IngressHeaders, requestId: string, signal: CancelSignal, cancel: (reason: unknown) => void): IngressMeta {
    return {
      id: requestId,
      credentials: authorizationCredentials(headers.authorization, headers.authorizationRepeated === true, peerInfo(req.socket.remoteAddress, unixListener, headers.relayHeader), 'http'),
      signal,
      cancel,
      receivedAt: performance.timeOrigin + performance.now(),
      traceparent: headers.traceparent,
    };
  }

  /**
   * Authenticates the request's credentials before its body is read (Pipeline.authenticate):
   * credentials that fail are refused at once, audited by the pipeline, without the body being
   * asked for (`100 Continue`), read or parsed, so a caller without valid credentials cannot make
   * Warden parse a megabyte of JSON to learn it is refused. Resolves undefined once the refusal is
   * answered (closing the connection when the body has not all arrived: it is not read), else
   * the admission `pipeline.run` takes.
   */
  function admit(req: IncomingMessage, res: ServerResponse, meta: IngressMeta, protocol: 'openai-http' | 'anthropic-http'): Admitted | Promise<Admitted | undefined> {
    const refused = (err: unknown): undefined | Promise<undefined> => {
      const wardenErr = isWardenError(err) ? err : new WardenError('internal', 'internal error');
      const send = (): undefined => {
        // A body still on its way is not read: the connection closes after the answer, or it
        // would wait for (and Node would discard) whatever the caller still sends.
        if (!req.complete) res.setHeader('connection', 'close');
        if (protocol === 'anthropic-http') sendAnthropicError(res, wardenErr, meta.id);
        else sendError(res, wardenErr, meta.id);
        return undefined;
      };
      // A body that came with its headers is parsed by the check phase of their turn (see
      // armBodyDeadline): the connection is kept then, for a request pipelined behind it.
      return req.complete ? send() : new Promise<undefined>((resolve) => setImmediate(() => resolve(send())));
    };
    let first: Admitted | Promise<Admitted>;
    try {
      first = pipeline.authenticate(arrivingRequest(meta, protocol));
    } catch (err) {
      return Promise.resolve(refused(err));
    }
    return first instanceof Promise ? first.catch(refused) : first;
  }

  function wantsUsage(request: PromptRequest): boolean {
    const options = request.params['stream_options'];
    return typeof options === 'object' && options !== null && (options as { include_usage?: unknown }).include_usage === true;
  }

  async function chatCompletions(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const { signal, cancel, dispose } = requestSignal(res);
    try {
      // Members added to the object baseMeta built, not spread into a new one: a spread followed
      // by more members takes V8's slow copy (~1.5 us here).
      const headers = ingressHeaders(req.rawHeaders);
      const meta: IngressMeta = baseMeta(req, headers, requestId, signal, cancel);
      meta.templateHeader = headers.template;
      meta.variablesHeader = headers.variables;
      let request: PromptRequest;
      let admitted: Admitted | undefined;
      try {
        checkContentEncoding(headers.contentEncoding, headers.transferEncoding);
        checkDeclaredLength(headers.contentLength, limits.maxBodyBytes);
        // The credentials before the body: refused ones cost no read nor parse (see admit).
        const first = admit(req, res, meta, 'openai-http');
        admitted = first instanceof Promise ? await first : first;
        if (admitted === undefined) return;
        askForBody(res);
        const body = parseJson(await readBody(req, limits.maxBodyBytes, headers.contentLength, meta.receivedAt, limits.requestTimeoutMs), limits.maxJsonDepth, limits.maxJsonValues);
        request = toPromptRequest(body, meta, limits);
        if (cannotAnswerYet(res)) request.answerTurn = pipelinedTurn(res);
      } catch (err) {
        if (!isWardenError(err)) throw err;
        if (closesConnection(err.code)) res.setHeader('connection', 'close');
        opts.onRejected?.(err.code, (performance.timeOrigin + performance.now() - meta.receivedAt) / 1000);
        // Every request leaves one audit record, this one too: ids and the code, nothing of the body.
        await pipeline.auditRejected(rejectedRequest({ ...meta, peer: meta.credentials.peer }, 'openai-http'), err, admitted);
        return sendError(res, err, requestId);
      }
      let response;
      try {
        response = await pipeline.run(request, admitted);
      } catch (err) {
        return sendError(res, isWardenError(err) ? err : new WardenError('internal', 'internal error'), requestId);
      }
      if (response.kind === 'complete') {
        return sendAnswer(res, completionBody(response.result), requestId);
      }
      if (response.kind === 'stream') {
        return await writeStream(res, response.chunks, requestId, wantsUsage(request), signal);
      }
      // A dry run is served by the CLI and gRPC Render, never by this route.
      sendError(res, new WardenError('internal', 'internal error'), requestId);
    } finally {
      dispose();
    }
  }

  /**
   * Anthropic Messages API: the body is translated (server/anthropic.ts), then runs the same
   * pipeline. The Anthropic SDKs send their key as `x-api-key`; it carries the workload token.
   */
  async function anthropicMessages(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const { signal, cancel, dispose } = requestSignal(res);
    const fail = (err: WardenError) => sendAnthropicError(res, err, requestId);
    // Every answer carries it: the message, the stream and any error (set before their writeHead).
    anthropicRequestId(res, requestId);
    try {
      const headers = ingressHeaders(req.rawHeaders);
      const base = baseMeta(req, headers, requestId, signal, cancel);
      base.credentials = withApiKey(base.credentials, headers.apiKey, headers.apiKeyRepeated === true);
      const meta = { ...base, templateHeader: headers.template, variablesHeader: headers.variables };
      let request: PromptRequest;
      let admitted: Admitted | undefined;
      try {
        checkContentEncoding(headers.contentEncoding, headers.transferEncoding);
        checkDeclaredLength(headers.contentLength, limits.maxBodyBytes);
        const first = admit(req, res, meta, 'anthropic-http');
        admitted = first instanceof Promise ? await first : first;
        if (admitted === undefined) return;
        askForBody(res);
        const body = parseJson(await readBody(req, limits.maxBodyBytes, headers.contentLength, meta.receivedAt, limits.requestTimeoutMs), limits.maxJsonDepth, limits.maxJsonValues);
        request = anthropicPromptRequest(body, meta, limits);
        request.protocol = 'anthropic-http';
        if (cannotAnswerYet(res)) request.answerTurn = pipelinedTurn(res);
        // Anthropic's stream has one content block open at a time.
        request.sequentialStream = true;
        // Nor has its stop_reason a value for a generation that failed upstream.
        request.failedFinishIsError = true;
        // It reports the stop sequence that ended the answer, when the upstream says which.
        const stop = request.params['stop'];
        if (Array.isArray(stop)) request.stopSequences = stop as string[];
      } catch (err) {
        if (!isWardenError(err)) throw err;
        if (closesConnection(err.code)) res.setHeader('connection', 'close');
        opts.onRejected?.(err.code, (performance.timeOrigin + performance.now() - meta.receivedAt) / 1000, 'anthropic-http');
        await pipeline.auditRejected(rejectedRequest({ ...meta, peer: meta.credentials.peer }, 'anthropic-http'), err, admitted);
        return fail(err);
      }
      // The answer is encoded before its audit record is written: one Anthropic cannot carry
      // (anthropic.ts anthropicMessageBody, AnthropicStreamEncoder) is refused, and audited so.
      let message: string | undefined;
      request.answerCheck = (result) => {
        message = anthropicMessageBody(result, requestId, request.model);
      };
      const encoder = new AnthropicStreamEncoder(requestId, request.model);
      let model = request.model;
      let closing: string | undefined;
      request.streamEnd = () => {
        closing = encoder.finish(requestId, model);
      };
      let response;
      try {
        response = await pipeline.run(request, admitted);
      } catch (err) {
        return fail(isWardenError(err) ? err : new WardenError('internal', 'internal error'));
      }
      if (response.kind === 'complete') return sendAnswer(res, message ?? anthropicMessageBody(response.result, requestId, request.model), requestId);
      if (response.kind !== 'stream') return fail(new WardenError('internal', 'internal error'));
      const it = response.chunks[Symbol.asyncIterator]();
      let step: IteratorResult<CompletionChunk>;
      try {
        step = await it.next();
      } catch (err) {
        return fail(isWardenError(err) ? err : new WardenError('upstream_error', 'the upstream stream failed'));
      }
      if (cannotAnswerYet(res) && !(await answerTurn(res))) return dropUnsent(res, it, signal);
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', 'x-request-id': requestId });
      try {
        while (!step.done) {
          // The client is gone. (An aborted signal alone may be the upstream deadline: the
          // upstream read then fails, and the client gets the error event below.)
          if (res.destroyed) break;
          model = step.value.model || model;
          const events = encoder.encode(step.value);
          // Not drained: the client is gone, or it stopped reading and the request is over.
          if (events !== '' && !res.write(events) && !(await whenWritable(res, 'close', signal))) break;
          step = await it.next();
        }
        if (step.done && !res.destroyed) return void endStream(res, closing ?? encoder.finish(requestId, model));
      } catch (err) {
        // Mid-stream failure: an `error` event, and no message_stop, tells the client it is incomplete.
        const wardenErr = isWardenError(err) ? err : new WardenError('upstream_error', 'the upstream stream failed');
        // A failure of the encoder (not of the stream) leaves the stream open: close it, so the
        // upstream call is released and the audit record carries the failure. (After a failure
        // of the stream itself this does nothing more: it is already closed and audited.)
        await it.throw?.(wardenErr).catch(() => undefined);
        if (!res.destroyed) endStream(res, anthropicErrorEvent(wardenErr, requestId));
        return;
      }
      // The client went away, or was behind in reading when the request's deadline passed. Stop
      // reading (which aborts the upstream call and writes the audit record with the abort's
      // code); a client still there is told why, and its connection closed if it takes nothing.
      await it.return?.();
      if (res.destroyed || !signal.aborted) return void res.destroy();
      endBehindClient(res, anthropicErrorEvent(behindReason(signal), requestId));
    } finally {
      dispose();
    }
  }

  /**
   * Warden always asks the upstream for usage (the audit record needs it), but like OpenAI it
   * passes usage on only to a caller that asked (`stream_options.include_usage`): the usage
   * chunk has no choices, and client code reading `choices[0]` of every chunk would fail on it.
   */
  async function writeStream(
    res: ServerResponse,
    chunks: AsyncIterable<CompletionChunk>,
    requestId: string,
    includeUsage: boolean,
    signal: CancelSignal,
  ): Promise<void> {
    const it = chunks[Symbol.asyncIterator]();
    // Pull the first chunk before committing to 200: an upstream that is down or refuses the call
    // still gets a proper HTTP status and error body.
    let step: IteratorResult<CompletionChunk>;
    try {
      step = await it.next();
    } catch (err) {
      return sendError(res, isWardenError(err) ? err : new WardenError('upstream_error', 'the upstream stream failed'), requestId);
    }
    // Pipelined behind other answers: nothing is written (nor audited `ok`) before its turn; a
    // connection that closes first ends the stream as the client leaving (the signal says so).
    if (cannotAnswerYet(res) && !(await answerTurn(res))) return dropUnsent(res, it, signal);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      'x-request-id': requestId,
    });
    try {
      while (!step.done) {
        // The client is gone. (An aborted signal alone may be the upstream deadline: the upstream
        // read then fails, and the client gets the error event below.)
        if (res.destroyed) break;
        const chunk = step.value;
        // Not drained: the client is gone, or it stopped reading and the request is over.
        if ((includeUsage || chunk.choices.length > 0) && !res.write(chunkEvent(chunk, includeUsage)) && !(await whenWritable(res, 'close', signal))) break;
        step = await it.next();
      }
      if (step.done && !res.destroyed) {
        endStream(res, DONE_EVENT);
        return;
      }
    } catch (err) {
      // Mid-stream failure: the status is already sent, so the error travels as an event, and
      // the missing [DONE] tells the client the answer is incomplete.
      const wardenErr = isWardenError(err) ? err : new WardenError('upstream_error', 'the upstream stream failed');
      if (!res.destroyed) endStream(res, `data: ${JSON.stringify(errorBody(wardenErr))}\n\n`);
      return;
    }
    // The client went away, or was behind in reading when the request's deadline passed. Stop
    // reading (which aborts the upstream call and writes the audit record with the abort's code);
    // a client still there is told why, and its connection closed if it takes nothing more.
    await it.return?.();
    if (res.destroyed || !signal.aborted) return void res.destroy();
    endBehindClient(res, `data: ${JSON.stringify(errorBody(behindReason(signal)))}\n\n`);
  }

  /**
   * `GET /v1/models`: the models this caller may use. With `id` (`GET /v1/models/{id}`, OpenAI's
   * "retrieve model", URL-encoded as the SDKs send it): that model, or 404 when the caller may not
   * use it (whether it exists or not, as OpenAI answers).
   */
  async function models(req: IncomingMessage, res: ServerResponse, requestId: string, id?: string): Promise<void> {
    req.resume();
    let wanted: string | undefined;
    if (id !== undefined) {
      try {
        wanted = decodeURIComponent(id);
      } catch {
        wanted = '';
      }
    }
    const { signal, cancel, dispose } = requestSignal(res);
    try {
      const headers = ingressHeaders(req.rawHeaders);
      const base = baseMeta(req, headers, requestId, signal, cancel);
      // An Anthropic SDK sending its key as `x-api-key` lists models here too (its models.list()):
      // read as on /v1/messages, else its messages.create() passed and models.list() was a 401.
      base.credentials = withApiKey(base.credentials, headers.apiKey, headers.apiKeyRepeated === true);
      if (wanted !== undefined && !isModelName(wanted)) {
        const err = new WardenError('invalid_request', `the model id in the path (URL-encoded) ${MODEL_NAME_RULE}`, { location: { path: 'model' } });
        return await refuseModelId(req, res, base, err);
      }
      const request: PromptRequest = {
        ...base,
        protocol: 'openai-http',
        action: 'models.list',
        model: '',
        variables: {},
        stream: false,
        params: {},
      };
      if (request.traceparent === undefined) delete request.traceparent;
      if (cannotAnswerYet(res)) request.answerTurn = pipelinedTurn(res);
      // The decision's grant (`*`: any model) over the configured models: one nobody routes is not usable.
      const usable = (allowed: readonly string[]): readonly string[] => grantedModels(allowed, opts.configuredModels());
      // One model asked for: one the caller may not use is the request's outcome (audited), not ok.
      const check =
        wanted === undefined
          ? undefined
          : (allowed: readonly string[]) =>
              usable(allowed).includes(wanted)
                ? undefined
                : // Not named: a name nobody configured is the caller's data, whatever it holds.
                  new WardenError('not_found', 'the model does not exist or this caller may not use it', { location: { path: 'model' } });
      try {
        const { models: allowed } = await pipeline.listModels(request, check);
        const model = (m: string) => ({ id: m, object: 'model', created: 0, owned_by: 'warden' });
        if (wanted === undefined) sendJson(res, 200, JSON.stringify({ object: 'list', data: usable(allowed).map(model) }), requestId);
        else sendJson(res, 200, JSON.stringify(model(wanted)), requestId);
      } catch (err) {
        sendError(res, isWardenError(err) ? err : new WardenError('internal', 'internal error'), requestId);
      }
    } finally {
      dispose();
    }
  }

  /**
   * `GET /v1/models/{id}` with an id no model can have: refused after the credentials, as a body is,
   * so the record names the caller who asked (credentials that fail are refused and recorded
   * `unauthenticated` by the pipeline instead).
   */
  async function refuseModelId(req: IncomingMessage, res: ServerResponse, meta: IngressMeta, err: WardenError): Promise<void> {
    let admitted: Admitted;
    try {
      admitted = await pipeline.authenticate(arrivingRequest(meta, 'openai-http', 'models.list'));
    } catch (refused) {
      return sendError(res, isWardenError(refused) ? refused : new WardenError('internal', 'internal error'), meta.id);
    }
    opts.onRejected?.(err.code, (performance.timeOrigin + performance.now() - meta.receivedAt) / 1000);
    await pipeline.auditRejected(rejectedRequest({ ...meta, peer: meta.credentials.peer }, 'openai-http', 'models.list'), err, admitted);
    sendError(res, err, meta.id);
  }

  return {
    server,
    inFlight: () => active,
    idle: () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    closeIdle: () =>
      new Promise<void>((resolve) =>
        setImmediate(() => {
          closeQuiet();
          resolve();
        }),
      ),
    async closeAll(waitMs = CUT_ANSWER_WAIT_MS) {
      cut = true;
      // Aborted like the upstream deadline aborts: the upstream call stops, the record says
      // shutting_down, and the client is answered (503, or an error event) if it still can be.
      running.cancelAll(cutByShutdown);
      const refusals = refuseHeaderBlocks();
      if (active > 0 || refusals.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([new Promise<void>((resolve) => (active === 0 ? resolve() : idleWaiters.push(resolve))), ...refusals]),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs))),
        ]);
        clearTimeout(timer);
      }
      server.closeAllConnections();
    },
  };
}
