/**
 * The gRPC message size limit, enforced where Warden can count and audit a refusal.
 *
 * grpc-js refuses a message over its `grpc.max_receive_message_length` inside its own call code,
 * before any handler or interceptor sees it (its base call sends the status itself: no
 * interceptor's `sendStatus` sees it, so the client gets grpc-js's bare RESOURCE_EXHAUSTED, no
 * `warden-code`). So grpc-js cannot be given `limits.max_body_bytes` itself. It is given a ceiling
 * above it, and Warden checks the limit twice below that:
 *
 * - the door reads each message's 5-byte prefix as it arrives (watchMessageSizes): a message that
 *   declares more than the limit is refused there, before the rest of it is read, so what a call
 *   makes the process hold is what had arrived with its prefix (a read or two of the HTTP/2
 *   stream), not the message up to the ceiling;
 * - the gateway's request deserializers check it again (withMessageLimit): a message over the
 *   limit that reached them anyway becomes an `OversizeMessage`, which the handler refuses.
 *
 * Either way it is `payload_too_large` (RESOURCE_EXHAUSTED), counted and audited as any refused
 * request. Only a prefix past the ceiling is still refused by grpc-js alone, before the door sees
 * it: the ceiling stays as the bound should the door's reading ever be missing.
 */
import type * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { WardenError } from '../pipeline/errors.js';

/** How far above the limit grpc-js still delivers a message for Warden to refuse itself. */
export const CEILING_FACTOR = 4;
/** grpc-js takes the limit as a signed 32-bit integer. */
const INT32_MAX = 2 ** 31 - 1;

/** The size grpc-js itself enforces for a Warden message limit of `maxBodyBytes`. */
export function receiveCeiling(maxBodyBytes: number): number {
  return Math.min(maxBodyBytes * CEILING_FACTOR, INT32_MAX);
}

/** The refusal of a request message of `bytes` bytes (as its prefix declares it), over `maxBodyBytes`. */
export function oversizeMessage(bytes: number, maxBodyBytes: number): WardenError {
  return new WardenError('payload_too_large', `request message of ${bytes} bytes is larger than ${maxBodyBytes} bytes`, { location: { path: '$' } });
}

/**
 * Reads the message prefixes of a call's request as its HTTP/2 stream delivers it (each message
 * is a flag byte, a 4-byte big-endian length, then that many bytes) and calls `over` with the
 * declared length of the first message longer than `maxBytes`, once, as soon as its prefix is
 * whole; the stream is paused then (grpc-js, which resumes it only to read a next message, holds
 * what it already had until the call is answered and closed). Add it once grpc-js has paused the
 * stream (its call is made): a 'data' listener added to a paused stream does not resume it.
 * The cost on a call within the limit: a few steps per read of its stream.
 */
export function watchMessageSizes(stream: http2.ServerHttp2Stream, maxBytes: number, over: (bytes: number) => void): void {
  let prefixBytes = 0; // of the current prefix, 0 to 4 (the flag byte, then the length's)
  let length = 0; // the current prefix's length so far
  let rest = 0; // bytes of the current message still to come
  const onData = (chunk: Buffer): void => {
    let i = 0;
    while (i < chunk.length) {
      if (rest > 0) {
        const n = Math.min(rest, chunk.length - i);
        rest -= n;
        i += n;
        continue;
      }
      if (prefixBytes > 0) length = length * 256 + chunk[i]!;
      i++;
      if (++prefixBytes < 5) continue;
      if (length > maxBytes) {
        stream.off('data', onData);
        stream.pause();
        over(length);
        return;
      }
      rest = length;
      prefixBytes = length = 0;
    }
  };
  stream.on('data', onData);
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
