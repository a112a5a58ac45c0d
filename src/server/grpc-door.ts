/**
 * The door of a gRPC gateway call: from its headers to its handler. grpc-js runs a unary or
 * server-streaming handler only once the request message *and* the client's half-close have
 * arrived, so a call that sends its message and never half-closes would never reach Warden: not
 * counted against `limits.max_in_flight`, never timed out, never audited, and held open (with its
 * buffered message) until the shutdown deadline. A server interceptor sees the call from its
 * headers on, so here each call to a guarded method:
 *
 * - takes its place under `max_in_flight` when it arrives (refused at once with `overloaded` past
 *   it, and with `shutting_down` while draining), and holds it until the call ends or its handler
 *   takes it over (the handler gives it back when it finishes, stream closed or not);
 * - must have sent its whole request (message and half-close) within `client_timeout_ms`, or it
 *   ends with `request_timeout` (DEADLINE_EXCEEDED), as over HTTP;
 * - whose `grpc-encoding` is not `identity` is refused from its headers (`unsupported_media_type`),
 *   before grpc-js inflates a byte of its message (Screened.compressed);
 * - is checked from its headers by `admit` (the gateway's: its credentials), before a byte of its
 *   message is read: grpc-js reads the stream only once the call's metadata has been passed on to
 *   its handler, so a call refused here never has its message buffered (GrpcDoorOptions.admit);
 * - once admitted, has each request message's prefix read as it arrives: a message declaring more
 *   than `max_body_bytes` is refused there (`payload_too_large`), not buffered up to grpc-js's
 *   receive ceiling first (GrpcDoorOptions.maxMessageBytes);
 * - when it ends before its handler ran — the client left, or grpc-js refused it (no message or
 *   two, an invalid `grpc-timeout`, a message over the receive ceiling) — is counted and audited
 *   like any refusal, and its stream closed after its status even if the client has not half-closed;
 * - once its handler has finished, has `upstream_timeout_ms` for its answer to go out, or its
 *   stream is reset (Deliveries).
 */
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { WardenError, isWardenError } from '../pipeline/errors.js';
import type { Admission } from './admission.js';
import { OVERLOADED_RETRY_AFTER_S } from './admission.js';
import { oversizeMessage, watchMessageSizes } from './grpc-size.js';
import { RELAY_HEADERS } from './headers.js';
import { RunningRequests, type RunningEntry } from './running.js';

/** A status as an interceptor passes it on (grpc-js does not export its name for the type). */
type SentStatus = Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0];

/** What the door knows of a call when it refuses it (for the audit record). */
export interface DoorArrival {
  path: string;
  metadata: grpc.Metadata;
  /** grpc-js's name for the peer, read when the call arrived (later the socket may be gone). */
  peer: string;
  /** performance.now() when the call's headers arrived. */
  startedAt: number;
}

export interface GrpcDoorOptions<A = never> {
  admission: Admission;
  draining: () => boolean;
  /** limits.client_timeout_ms: the longest a client may take to send its whole request. */
  requestTimeoutMs: number;
  /**
   * limits.upstream_timeout_ms: the longest an answer may take to reach its client once its handler
   * has finished (then its stream is reset). Unset: unbounded.
   */
  deliveryTimeoutMs?: number;
  /** The methods the door guards (the gateway's); other calls pass untouched. */
  guards: (path: string) => boolean;
  /**
   * Counts and audits a call refused or ended before its handler ran; resolves once written.
   * `admission`: what `admit` found, when the call had passed it (the record names its caller).
   */
  record: (arrival: DoorArrival, err: WardenError, admission: A | undefined) => Promise<void>;
  /**
   * Checks a call admitted under `max_in_flight` from its headers alone, before its message is
   * read (the gateway's credentials): grpc-js resumes the call's stream only when its handler
   * starts, which is once the metadata is passed on, so until this answers the message stays in
   * the client (past the HTTP/2 stream window). What it returns is the handler's (DoorPass.admission).
   * A refusal is a rejected promise whose WardenError has been counted and audited already (the
   * pipeline audits a failed authentication itself): the door only sends its status. Unset: calls
   * go on at once (health calls).
   */
  admit?: (arrival: DoorArrival, screened: Screened | undefined) => A | Promise<A>;
  /** The status a Warden error is sent as (toGrpcError). */
  status: (err: WardenError) => Partial<grpc.StatusObject>;
  /** What the calls it admits are, in its `overloaded` message (default `requests`). */
  calls?: string;
  /**
   * Where screen() keeps what it found in each call's header block (default: a map of the door's
   * own). Doors of one server share one: the gateway's door screens every call on the listener,
   * and the health doors read the same map for a compressed message.
   */
  screened?: WeakMap<http2.Http2Stream, Screened>;
  /**
   * limits.max_header_bytes: a call whose metadata, counted as sent, is larger is marked
   * (Screened.metadataBytes) for its handler to refuse. Unset: none is.
   */
  maxMetadataBytes?: number;
  /**
   * limits.max_body_bytes: a request message that declares more in its prefix is refused
   * (`payload_too_large`) as soon as the prefix arrives, before the rest of it is read
   * (watchMessageSizes). Unset: only grpc-js's receive ceiling bounds a message.
   */
  maxMessageBytes?: number;
}

/** A handler's hold on its call's place, taken with GrpcDoor.pass; `leave` once it has finished. */
export interface DoorPass<A = never> {
  leave(): void;
  /** What GrpcDoorOptions.admit found from the call's headers; undefined without `admit`. */
  readonly admission: A | undefined;
  /**
   * What the call's header block says that its metadata does not (GrpcDoor.screen); undefined
   * when nothing (nearly always).
   */
  readonly screened: Screened | undefined;
}

/**
 * What a call's header block says that grpc-js's metadata of it would not, found by reading the
 * block itself (GrpcDoor.screen). grpc-js turns the block into the call's metadata and drops, with
 * no word to the handler, every entry it cannot carry (a text value that is not printable ASCII:
 * an `é`, a tab); node's HTTP/2 layer keeps only the first of two `authorization` fields. Each
 * member is set only when found, and the object made only then.
 */
export interface Screened {
  /**
   * Why the call's `authorization` header cannot be used (unreadableAuthorization): the handler
   * must refuse the call, not serve it as one that sent no credentials.
   */
  credentials?: string;
  /**
   * The first proxy header (RELAY_HEADERS) in the block, whatever its value. A relaying proxy
   * passes on what its client wrote (`x-forwarded-for: é` becomes `é, 203.0.113.9`): dropped by
   * grpc-js, the call would look unrelayed, and a local proxy's caller would be the `dev` principal.
   */
  relayHeader?: string;
  /**
   * The size of the call's metadata as sent (what metadataBytes counts, with the entries grpc-js
   * dropped), when it is over `maxMetadataBytes`.
   */
  metadataBytes?: number;
  /**
   * `x-warden-template` or `x-warden-variables`, when the block has one: the HTTP routes' headers
   * for a client that cannot add the `warden` object, which a gRPC request has fields for. Ignored,
   * the call would go on as if it named no template (a raw prompt, where the policy allows one):
   * the handler refuses it instead.
   */
  wardenHeader?: string;
  /**
   * Set when the call's `grpc-encoding` is not `identity`: its messages are compressed. grpc-js
   * would inflate each as it arrives, before any handler and so before the credentials, up to its
   * receive ceiling (4 × max_body_bytes, megabytes for a few kilobytes sent); the door refuses the
   * call from its headers instead, before a byte of its message is read (as HTTP refuses a
   * compressed body). The value is not kept: it is the caller's text.
   */
  compressed?: true;
}

/** Header fields that are no metadata: grpc-js keeps them for itself (metadataBytes does not count them). */
const NOT_METADATA: ReadonlySet<string> = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding']);
const RELAY_NAMES: ReadonlySet<string> = new Set(RELAY_HEADERS);

/**
 * Reads a call's header block (`rawHeaders`: names and values in turn, as sent; `headers`: node's
 * dictionary of it) for what its metadata would hide (Screened); undefined when nothing. One pass
 * over the fields, no allocation unless something is found.
 */
export function screenHeaders(headers: http2.IncomingHttpHeaders, rawHeaders: readonly string[] = [], maxMetadataBytes = Infinity): Screened | undefined {
  let relayHeader: string | undefined;
  let wardenHeader: string | undefined;
  let authorizations = 0;
  let bytes = 0;
  const encoding = headers['grpc-encoding'];
  const compressed = encoding !== undefined && encoding !== 'identity';
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.charCodeAt(0) === 0x3a /* ':', a pseudo-header */ || NOT_METADATA.has(name)) continue;
    // Node hands header values over one char per byte (latin1): a length is a byte count.
    bytes += name.length + rawHeaders[i + 1]!.length;
    if (name === 'authorization') authorizations++;
    else if (relayHeader === undefined && RELAY_NAMES.has(name)) relayHeader = name;
    else if (name === 'x-warden-template' || name === 'x-warden-variables') wardenHeader ??= name;
  }
  const credentials = unreadableAuthorization(headers, authorizations);
  if (credentials === undefined && relayHeader === undefined && wardenHeader === undefined && bytes <= maxMetadataBytes && !compressed) return undefined;
  const found: Screened = {};
  if (credentials !== undefined) found.credentials = credentials;
  if (relayHeader !== undefined) found.relayHeader = relayHeader;
  if (bytes > maxMetadataBytes) found.metadataBytes = bytes;
  if (wardenHeader !== undefined) found.wardenHeader = wardenHeader;
  if (compressed) found.compressed = true;
  return found;
}

/**
 * Why the `authorization` header of a call's header block cannot be used, or undefined. grpc-js
 * drops an entry it cannot carry (a text value that is not printable ASCII: a token with an `é` or
 * a tab), and it reads `authorization-bin` as another key. Either way the handler would see no
 * credentials, and a local caller would become the `dev` principal: credentials that were sent
 * but cannot be read are refused instead (as `authorizationCredentials` does for the ones it can
 * see). Node's HTTP/2 layer keeps only the first of two `authorization` fields (`headers`), so
 * `fields` is how many the raw block has: more than one is refused as two Authorization headers
 * are over HTTP, rather than the first one taken. The reasons name the header, never its value.
 */
function unreadableAuthorization(headers: http2.IncomingHttpHeaders, fields: number): string | undefined {
  if (headers['authorization-bin'] !== undefined) return 'the authorization metadata is binary (authorization-bin); send it as text: authorization: Bearer <token>';
  if (fields > 1) return 'more than one authorization metadata value';
  const value = headers.authorization;
  if (value !== undefined && !/^[ -~]*$/.test(value)) return 'the authorization metadata is not a Bearer token';
  return undefined;
}

/** A call whose messages are compressed (Screened.compressed): `param` names the header. */
export function compressedMessage(): WardenError {
  return new WardenError('unsupported_media_type', 'the request message is compressed (grpc-encoding): Warden does not decompress messages; send them uncompressed', {
    location: { path: 'grpc-encoding' },
  });
}

function asWardenError(err: unknown): WardenError {
  return isWardenError(err) ? err : new WardenError('internal', 'internal error');
}

/** How long grpc-js's refusal of a call's messages waits for the client's reset (refuseMessageCount). */
const CANCEL_SETTLE_MS = 20;

class DoorCall<A> {
  /**
   * Whether the call still holds its place. Until its handler runs the door holds it for the call
   * (released when the call ends); the handler takes it over and releases it when it finishes,
   * whether or not the stream has closed by then: a client that stopped reading must not keep
   * its place past the handler's end (the upstream deadline), with the status stuck behind
   * HTTP/2 flow control.
   */
  holding = true;
  /** The call has ended (cancelled, reset or closed) before or after its handler ran. */
  over = false;
  admitted = false;
  /** Its handler has run: what ends the call from then on is the handler's to record. */
  handled = false;
  /** The door has decided the call's status (a refusal, the timeout, the shutdown deadline). */
  answered = false;
  timer: NodeJS.Timeout | undefined;
  entry: RunningEntry | undefined;
  /** performance.now() when its handler finished, for an answer still on its way (Deliveries). */
  leftAt = 0;
  /** What its header block says that its metadata does not (screenHeaders), read as it arrived. */
  screened: Screened | undefined;
  /** `admit` is running: the call's end waits for its answer (see deferred). */
  checking = false;
  /**
   * How the call ended while `admit` ran (the timeout, the shutdown deadline, the client leaving).
   * Recorded once `admit` answers, and only if it admits the call: a refusal of `admit` is the
   * call's one record.
   */
  deferred: WardenError | undefined;
  /** What `admit` found (GrpcDoorOptions.admit). */
  admission: A | undefined;

  /** `base`: grpc-js's call under the door, which holds the HTTP/2 stream. */
  constructor(
    readonly arrival: DoorArrival,
    readonly base: grpc.ServerInterceptingCallInterface,
  ) {}
}

/**
 * Answers whose handler has finished but whose stream has not: a client that does not read keeps
 * its answer (encoded, whole) in memory and its stream open, outside max_in_flight, and holds the
 * graceful shutdown for the whole grace. Each gets `limitMs` from its handler's end, as over HTTP
 * (closeUnlessFinishedWithin), then its stream is reset (RST_STREAM CANCEL).
 *
 * Nearly every answer is out within a millisecond of its handler's end, but no check made then can
 * tell (grpc-js sends the status only once the message's write has completed, asynchronously).
 * So there is no timer per call: one timer, armed at the deadline of the oldest answer on its way,
 * resets those past their time and re-arms for the next. Under load that is one timer per
 * `limitMs`, and a call costs a Set entry.
 */
class Deliveries {
  /** In the order their handlers finished, so oldest (first to expire) first. */
  private readonly calls = new Set<DoorCall<unknown>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly limitMs: number) {}

  add(call: DoorCall<unknown>): void {
    call.leftAt = performance.now();
    this.calls.add(call);
    this.timer ??= this.arm(this.limitMs);
  }

  /** The call's stream has finished (its status went out) or closed. */
  delete(call: DoorCall<unknown>): void {
    this.calls.delete(call);
  }

  private arm(ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.sweep(), ms);
    timer.unref(); // never keeps the process up
    return timer;
  }

  private sweep(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const call of this.calls) {
      const left = call.leftAt + this.limitMs - now;
      if (left > 0) {
        this.timer = this.arm(left);
        return;
      }
      this.calls.delete(call);
      resetStream(call.base);
    }
  }
}

export class GrpcDoor<A = never> {
  private readonly byMetadata = new WeakMap<grpc.Metadata, DoorCall<A>>();
  /** Calls between their headers and their handler: the shutdown deadline ends them. */
  private readonly waiting = new RunningRequests();
  /** Answers on their way to clients, bounded by opts.deliveryTimeoutMs (none when unset). */
  private readonly deliveries: Deliveries | undefined;
  /** What screen() found in a call's header block, by its HTTP/2 stream, until the door reads it. */
  private readonly screened: WeakMap<http2.Http2Stream, Screened>;
  private live = 0;

  constructor(private readonly opts: GrpcDoorOptions<A>) {
    this.screened = opts.screened ?? new WeakMap();
    if (opts.deliveryTimeoutMs !== undefined) this.deliveries = new Deliveries(opts.deliveryTimeoutMs);
  }

  /** Calls that have arrived and not yet ended (or whose handler still runs). */
  get inFlight(): number {
    return this.live;
  }

  /**
   * The handler of a call that came through the door takes its place over, once; undefined for a
   * call the door never saw (the interceptor was not installed: the handler must then fail closed).
   */
  pass(metadata: grpc.Metadata): DoorPass<A> | undefined {
    const call = this.byMetadata.get(metadata);
    if (!call) return undefined;
    // Its handler has it: nothing looks it up again. An entry left for the GC whose value reaches
    // the whole call (`base`) is traced the slow way (an ephemeron): measured, it doubled the
    // door's cost per call. (A call that ends before its handler keeps its entry: rare.)
    this.byMetadata.delete(metadata);
    call.handled = true;
    this.stopWaiting(call);
    return { leave: () => this.left(call), screened: call.screened, admission: call.admission };
  }

  /**
   * Reads each call's header block on `h2` (a listener of the bound grpc-js server, grpcListeners)
   * before grpc-js turns it into metadata, for what its metadata would hide (screenHeaders): an
   * `authorization` grpc-js cannot carry, a proxy header it dropped, entries it dropped that put the
   * metadata over its size limit. Without it such a call is served as one with no credentials,
   * unrelayed, or within the limit.
   */
  screen(h2: http2.Http2Server): void {
    h2.prependListener('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[] | undefined) => {
      const found = screenHeaders(headers, rawHeaders, this.opts.maxMetadataBytes);
      if (found !== undefined) this.screened.set(stream, found);
    });
  }

  /** The handler has finished: its place comes back now, and an answer still on its way has deliveryTimeoutMs to go out. */
  private left(call: DoorCall<A>): void {
    this.release(call);
    if (!call.over) this.deliveries?.add(call);
  }

  /** The shutdown deadline: each call still sending its request ends with `err()` (audited). */
  cutWaiting(err: () => WardenError): void {
    this.waiting.cancelAll(err);
  }

  readonly interceptor: grpc.ServerInterceptor = (method, next) => {
    if (!this.opts.guards(method.path)) return new grpc.ServerInterceptingCall(next);
    let state: DoorCall<A> | undefined;
    const send = (status: Partial<grpc.StatusObject>) => {
      next.sendStatus(status as SentStatus);
      closeUnread(next);
    };
    return new grpc.ServerInterceptingCall(next, {
      start: (startNext) => {
        startNext({
          onReceiveMetadata: (metadata, pass) => {
            const call = (state = new DoorCall<A>({ path: method.path, metadata, peer: next.getPeer(), startedAt: performance.now() }, next));
            const stream = http2StreamOf(next);
            if (stream) call.screened = this.screened.get(stream);
            if (!this.arrive(call, send)) return;
            // Passing the metadata on starts the handler, which starts reading the message: only
            // once the call is admitted (GrpcDoorOptions.admit).
            const go = () => {
              this.byMetadata.set(metadata, call);
              const max = this.opts.maxMessageBytes;
              // Before the message is read (grpc-js reads it once the metadata is passed on), and
              // only for a call admitted: a refused call's message is never read at all.
              if (max !== undefined && stream) watchMessageSizes(stream, max, (bytes) => this.refuse(call, oversizeMessage(bytes, max), send));
              pass(metadata);
            };
            const admit = this.opts.admit;
            if (admit === undefined) return go();
            let found: A | Promise<A>;
            try {
              found = admit(call.arrival, call.screened);
            } catch (err) {
              return this.refuse(call, asWardenError(err), send);
            }
            // Most answers are at once (dev, a token verified before): no promise, no wait.
            if (!(found instanceof Promise)) {
              call.admission = found;
              return go();
            }
            call.checking = true;
            found.then(
              (admission) => this.admitted(call, admission, go, send),
              (err: unknown) => this.notAdmitted(call, err, send),
            );
          },
          onReceiveHalfClose: (pass) => {
            if (state?.answered) return; // the door has ended it already (the timeout raced)
            if (state) this.stopWaiting(state);
            pass();
          },
          onCancel: () => {
            if (state) this.ended(state, next);
          },
        });
      },
      sendStatus: (status, pass) => {
        // A status before the handler ran that is not the door's: grpc-js's own answer to a call
        // with no request message or a second one. Sent as Warden's refusal, counted and audited.
        if (state && !state.handled && status.code !== grpc.status.OK) {
          this.refuseMessageCount(state, (s) => {
            pass(s as SentStatus);
            closeUnread(next);
          });
          return;
        }
        pass(status);
      },
    });
  };

  /**
   * `admit` let the call in: it goes on to its handler, unless it ended meanwhile (then recorded
   * now, with its caller) or the door ended it (the timeout, the shutdown: refused now).
   */
  private admitted(call: DoorCall<A>, admission: A, go: () => void, send: (status: Partial<grpc.StatusObject>) => void): void {
    call.checking = false;
    call.admission = admission;
    const deferred = call.deferred;
    call.deferred = undefined;
    if (call.over) {
      if (!call.answered && deferred !== undefined) {
        call.answered = true;
        void this.opts.record(call.arrival, deferred, admission);
      }
      return;
    }
    if (deferred !== undefined) return this.refuse(call, deferred, send);
    go();
  }

  /**
   * `admit` refused the call: counted and audited already (GrpcDoorOptions.admit), so only its
   * status goes out, and then its stream is closed unread (`send`). How the call may have ended
   * meanwhile is not recorded: this refusal is its record.
   */
  private notAdmitted(call: DoorCall<A>, err: unknown, send: (status: Partial<grpc.StatusObject>) => void): void {
    call.checking = false;
    call.deferred = undefined;
    if (!isWardenError(err)) {
      // Not `admit`'s refusal but a fault in it: nothing recorded it yet.
      return this.refuse(call, asWardenError(err), send);
    }
    if (call.answered) return;
    call.answered = true;
    this.stopWaiting(call);
    if (!call.over) send(this.opts.status(err));
  }

  /** A call's headers arrived: true when it may go on to its handler (the door refused it otherwise). */
  private arrive(call: DoorCall<A>, send: (status: Partial<grpc.StatusObject>) => void): boolean {
    this.live++;
    if (this.opts.draining()) {
      this.refuse(call, new WardenError('shutting_down', 'warden is shutting down; retry on another instance'), send);
      return false;
    }
    if (call.screened?.compressed === true) {
      // Before its place is taken: the refusal reads nothing, and the message is never inflated
      // (its stream stays paused: no handler asks for it).
      this.refuse(call, compressedMessage(), send);
      return false;
    }
    if (!this.opts.admission.tryEnter()) {
      const err = new WardenError('overloaded', `warden is serving its limit of ${this.opts.admission.max} ${this.opts.calls ?? 'requests'}; retry shortly`, {
        details: { retry_after_s: OVERLOADED_RETRY_AFTER_S },
      });
      this.refuse(call, err, send);
      return false;
    }
    call.admitted = true;
    const timeoutMs = this.opts.requestTimeoutMs;
    call.timer = setTimeout(() => {
      this.refuse(call, new WardenError('request_timeout', `the request did not arrive within limits.client_timeout_ms (${timeoutMs} ms)`, { location: { path: '$' } }), send);
    }, timeoutMs);
    call.timer.unref();
    call.entry = this.waiting.add((reason) => {
      if (reason instanceof WardenError) this.refuse(call, reason, send);
    });
    return true;
  }

  /**
   * grpc-js refused a call for its request messages (none, or a second one). A Node client (grpc-js's
   * own included) that cancels before its message is complete looks the same at first: it sends a
   * half-close (END_STREAM), which grpc-js answers "no request message", then RST_STREAM, which
   * arrives in a later read (two event-loop turns later on loopback). The refusal waits for it a
   * little: a call that ended meanwhile was cancelled, and ended() records it so. After the timer,
   * one setImmediate: if the process was busy, the reset may wait in the socket, and the timers run
   * before the poll that would read it. Only calls grpc-js refused wait; their status is the same.
   */
  private refuseMessageCount(call: DoorCall<A>, send: (status: Partial<grpc.StatusObject>) => void): void {
    if (call.answered) return;
    const classify = () => {
      if (call.over) return;
      this.refuse(call, new WardenError('invalid_request', 'a call to this method carries exactly one request message', { location: { path: '$' } }), send);
    };
    setTimeout(() => setImmediate(classify), CANCEL_SETTLE_MS).unref();
  }

  /** Ends a call the handler has not taken with `err`: recorded first, then its status sent. */
  private refuse(call: DoorCall<A>, err: WardenError, send: (status: Partial<grpc.StatusObject>) => void): void {
    if (call.answered || call.handled) return;
    this.stopWaiting(call);
    if (call.checking) {
      // Decided once `admit` answers (admitted, notAdmitted): a call it refuses has that record only.
      call.deferred ??= err;
      return;
    }
    call.answered = true;
    void this.opts.record(call.arrival, err, call.admission).finally(() => send(this.opts.status(err)));
  }

  /** The call ended (its status went out, or its stream closed). */
  private ended(call: DoorCall<A>, next: grpc.ServerInterceptingCallInterface): void {
    if (call.over) return;
    call.over = true;
    this.stopWaiting(call);
    if (!call.handled && !call.answered) {
      // Ended before its handler ran, and not by the door: the client left, or grpc-js answered
      // it by itself (neither passes the interceptor a status). While `admit` runs, recorded once
      // it has answered (admitted).
      if (call.checking) call.deferred ??= endedBeforeHandler(next);
      else {
        call.answered = true;
        void this.opts.record(call.arrival, endedBeforeHandler(next), call.admission);
      }
    }
    if (call.handled) {
      // Its answer is out (or its stream gone). The place is the handler's to give back (pass).
      this.deliveries?.delete(call);
      return;
    }
    this.release(call);
    // grpc-js may have answered it (a grpc-timeout that expired or is invalid, a message over the
    // ceiling) while the client has not half-closed: as after the door's own refusals.
    closeUnread(next);
  }

  private stopWaiting(call: DoorCall<A>): void {
    clearTimeout(call.timer);
    call.timer = undefined;
    if (call.entry) this.waiting.remove(call.entry);
    call.entry = undefined;
  }

  /** Gives the call's place back, once. */
  private release(call: DoorCall<A>): void {
    if (!call.holding) return;
    call.holding = false;
    if (call.admitted) this.opts.admission.leave();
    this.live--;
  }
}

/**
 * Why a call ended before its handler ran, as a Warden code. grpc-js refuses some calls below
 * every interceptor (an invalid `grpc-timeout`, a message over the receive ceiling; a compressed
 * message never reaches it, see Screened.compressed) and tells the interceptor only that the call
 * ended; the status it sent is read back from the call's HTTP/2 stream (a private field of
 * grpc-js's base call: test/server/grpc-door.test.ts checks it against the installed grpc-js).
 * No status sent: the client cancelled or reset the call.
 */
function endedBeforeHandler(next: grpc.ServerInterceptingCallInterface): WardenError {
  const stream = http2StreamOf(next);
  const sent = stream?.sentHeaders?.['grpc-status'];
  const code = sent === undefined ? undefined : Number(sent);
  switch (code) {
    case undefined:
    case grpc.status.CANCELLED:
    case grpc.status.DEADLINE_EXCEEDED: // the client's own deadline, counted as over HTTP: the client gave up
      return new WardenError('cancelled', 'the client cancelled the call before its request arrived');
    case grpc.status.RESOURCE_EXHAUSTED:
      return new WardenError('payload_too_large', 'grpc-js refused the request message: larger than its receive ceiling', { location: { path: '$' } });
    default:
      return new WardenError('invalid_request', 'grpc-js refused the call before Warden read it (its grpc-timeout)', { location: { path: '$' } });
  }
}

/**
 * The HTTP/2 stream under grpc-js's base call (its private `stream`): the door is the first
 * interceptor, so the call it is handed is that base call. test/server/grpc-door.test.ts checks
 * the shape against the installed grpc-js.
 */
export function http2StreamOf(call: grpc.ServerInterceptingCallInterface): http2.ServerHttp2Stream | undefined {
  const stream = (call as unknown as { stream?: Partial<http2.ServerHttp2Stream> }).stream;
  // node:http2 exports no stream class to test against: the members used here stand for it.
  return typeof stream?.close === 'function' && typeof stream.respond === 'function' && 'sentHeaders' in stream ? (stream as http2.ServerHttp2Stream) : undefined;
}

/**
 * After the door's status: a client that has not half-closed would keep the stream open (the
 * status ends only Warden's side), its buffered bytes held and the graceful shutdown waiting for
 * it. RST_STREAM with NO_ERROR after a complete response is how HTTP/2 tells a client to stop
 * sending its request (RFC 9113 §8.1); the status has gone out before it.
 */
function closeUnread(call: grpc.ServerInterceptingCallInterface): void {
  const stream = http2StreamOf(call);
  if (stream && !stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/**
 * The interceptor of a call to a method Warden does not serve (answerUnknownMethods in grpc.ts
 * answers it UNIMPLEMENTED, a status and nothing else): once its status is out, its stream is
 * closed as after the door's own refusals (closeUnread). Such a call is no request under
 * max_in_flight and has no request deadline: left open by a client that never half-closes, it
 * would hold the graceful shutdown for its whole grace, and one connection could keep any number
 * of them open. Only for those calls: a served call's status may wait for its messages to go out,
 * which closing the stream at once would drop.
 */
export const closeAfterStatus: grpc.ServerInterceptor = (_method, next) =>
  new grpc.ServerInterceptingCall(next, {
    sendStatus: (status, pass) => {
      pass(status);
      closeUnread(next);
    },
  });

/** Gives up an answer the client has not taken: RST_STREAM CANCEL, at once, what is unsent dropped. */
function resetStream(call: grpc.ServerInterceptingCallInterface): void {
  const stream = http2StreamOf(call);
  if (stream && !stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
}
