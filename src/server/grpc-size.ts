/**
 * The gRPC message size limit, enforced where Warden can count and audit a refusal.
 *
 * grpc-js refuses a message over its `grpc.max_receive_message_length` inside its own call code,
 * before any handler or interceptor sees it (a server interceptor's listener only gets a cancel,
 * the same as for a client that went away), so such a refusal could be neither counted nor
 * audited. Instead grpc-js is given a ceiling above `limits.max_body_bytes`, and the gateway's
 * request deserializers check the limit themselves: a message between the two becomes an
 * `OversizeMessage` that the handler refuses as `payload_too_large` (RESOURCE_EXHAUSTED), through
 * the same counted and audited path as any other refused request. Only messages past the ceiling
 * are still refused by grpc-js alone. The ceiling bounds what one call may make the process
 * buffer, as grpc-js's own limit does.
 */
import type * as grpc from '@grpc/grpc-js';

/** How far above the limit grpc-js still delivers a message for Warden to refuse itself. */
export const CEILING_FACTOR = 4;
/** grpc-js takes the limit as a signed 32-bit integer. */
const INT32_MAX = 2 ** 31 - 1;

/** The size grpc-js itself enforces for a Warden message limit of `maxBodyBytes`. */
export function receiveCeiling(maxBodyBytes: number): number {
  return Math.min(maxBodyBytes * CEILING_FACTOR, INT32_MAX);
}

/** What a gateway handler receives instead of the request when the message is over the limit. */
export class OversizeMessage {
  constructor(readonly bytes: number) {}
}

/**
 * `service` with each method's request deserializer checking the limit first: a message over
 * `maxBodyBytes` is not decoded and arrives as an `OversizeMessage`.
 */
export function withMessageLimit(service: grpc.ServiceDefinition, maxBodyBytes: number): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(service)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => (bytes.length > maxBodyBytes ? new OversizeMessage(bytes.length) : decode(bytes)),
    };
  }
  return out as grpc.ServiceDefinition;
}

/**
 * The size of a call's metadata as it came on the wire: each name and value (binary values in
 * their base64 form), without the HTTP/2 pseudo-headers and the headers grpc-js keeps for itself
 * (content-type, te, grpc-timeout, grpc-encoding), a hundred bytes or so. grpc-js 1.14's server
 * enforces no metadata size (it reads no `grpc.max_metadata_size`), so the handler holds it to
 * `limits.max_header_bytes` with this, as Node's HTTP parser does a header block.
 */
export function metadataBytes(metadata: grpc.Metadata): number {
  let bytes = 0;
  for (const [name, values] of Object.entries(metadata.toHttp2Headers())) {
    // Node hands header values over one char per byte (latin1), so a length is a byte count.
    for (const value of Array.isArray(values) ? values : [values]) bytes += name.length + String(value).length;
  }
  return bytes;
}
