/**
 * The `grpc-status-details-bin` trailer: a serialized `google.rpc.Status` (code, message and
 * typed details), the richer error model gRPC clients built on Google's API design read. Warden
 * puts two details in it:
 *
 * - `google.rpc.ErrorInfo` on every error: `reason` is Warden's stable code (the `warden-code`
 *   trailer's), `domain` is `warden`, and `metadata.param` the request field when one is named
 *   (the `warden-param` trailer's). The rest of `metadata` is the error's `details`, the object an
 *   HTTP error body carries (`reason: pii_in_id`, `status: 400`), so a gRPC caller can tell what
 *   HTTP's can without parsing the message. The map holds strings: each member that is not one
 *   is its JSON text (`["EMAIL_ADDRESS"]`, `400`). Not trailers of their own: a policy's
 *   `reasons` may hold any text, which metadata values (printable ASCII) cannot;
 * - `google.rpc.RetryInfo` when Warden knows how long to wait (`overloaded`, an upstream rate
 *   limit with a Retry-After): the same wait as `grpc-retry-pushback-ms`, for clients that read
 *   the delay from the status details instead (Google's client libraries, `errdetails` in Go).
 *
 * The messages come from proto/google/rpc/, loaded with protobufjs (the library under
 * @grpc/proto-loader, which decodes but does not hand out encoders for plain messages).
 */
import protobuf from 'protobufjs';
import { boundedErrorMetadata } from './grpc-error-bounds.js';
import { protoDir } from './proto.js';

export const STATUS_PROTO = 'google/rpc/status.proto';
export const ERROR_DETAILS_PROTO = 'google/rpc/error_details.proto';

/** `ErrorInfo.domain`: the namespace Warden's `reason` codes are unique in. */
export const ERROR_DOMAIN = 'warden';

interface RpcTypes {
  status: protobuf.Type;
  errorInfo: protobuf.Type;
  retryInfo: protobuf.Type;
}

let types: RpcTypes | undefined;

/**
 * Loads the google.rpc messages once. Called when the gRPC server is created, so a missing
 * proto file fails Warden's start rather than the first error answer.
 */
export function loadRpcTypes(): RpcTypes {
  if (types) return types;
  const dir = protoDir();
  const root = new protobuf.Root();
  // google/protobuf/{any,duration}.proto come bundled with protobufjs; only ours are files.
  root.resolvePath = (_origin, target) => dir + target;
  root.loadSync([STATUS_PROTO, ERROR_DETAILS_PROTO], { keepCase: true });
  types = {
    status: root.lookupType('google.rpc.Status'),
    errorInfo: root.lookupType('google.rpc.ErrorInfo'),
    retryInfo: root.lookupType('google.rpc.RetryInfo'),
  };
  return types;
}

/** What the details say about one error. */
export interface StatusDetails {
  /** The gRPC status code the call ends with (the Status must carry the same). */
  code: number;
  /** The call's status message. */
  message: string;
  /** Warden's stable code. */
  reason: string;
  /** The request field the error is about, as `warden-param` names it. */
  param?: string | undefined;
  /** The wait before retrying, when known. */
  retryAfterMs?: number | undefined;
  /** The error's details, as HTTP's error body carries them. */
  details?: Record<string, unknown> | undefined;
}

/**
 * ErrorInfo.metadata: the details member by member (strings as they are, the rest as JSON, within
 * the trailers' bound: grpc-error-bounds.ts), then `param`.
 */
function errorInfoMetadata(d: StatusDetails): Record<string, string> {
  const metadata = boundedErrorMetadata(d.details);
  if (d.param) metadata.param = d.param;
  return metadata;
}

/** `value` packed as a `google.protobuf.Any` of message type `type`. */
function packAny(type: protobuf.Type, value: Record<string, unknown>): { type_url: string; value: Uint8Array } {
  const name = type.fullName.replace(/^\./, '');
  return { type_url: `type.googleapis.com/${name}`, value: type.encode(type.fromObject(value)).finish() };
}

/** A millisecond wait as a `google.protobuf.Duration` (whole seconds plus nanoseconds). */
function duration(ms: number): { seconds: number; nanos: number } {
  const whole = Math.max(0, Math.round(ms));
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1_000_000 };
}

/** The serialized `google.rpc.Status` for the `grpc-status-details-bin` trailer. */
export function statusDetailsBin(d: StatusDetails): Buffer {
  const t = loadRpcTypes();
  const errorInfo: Record<string, unknown> = { reason: d.reason, domain: ERROR_DOMAIN, metadata: errorInfoMetadata(d) };
  const details = [packAny(t.errorInfo, errorInfo)];
  if (d.retryAfterMs !== undefined) details.push(packAny(t.retryInfo, { retry_delay: duration(d.retryAfterMs) }));
  const bytes = t.status.encode(t.status.fromObject({ code: d.code, message: d.message, details })).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
