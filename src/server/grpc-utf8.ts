/**
 * UTF-8 in gRPC requests. A proto3 `string` field must hold valid UTF-8, but the decoder behind
 * @grpc/proto-loader (protobufjs) does not check: it turns invalid bytes into U+FFFD, so a
 * request that the HTTP ingress refuses (`request body is not valid UTF-8`) would pass over gRPC
 * with its text silently changed. The gateway's request deserializers therefore walk the wire
 * bytes first, guided by the message descriptors, and check each string field's bytes; a message
 * with an invalid one arrives as an `InvalidUtf8Message` that the handler refuses as
 * `invalid_request`, through the same counted and audited path as any other refused request.
 *
 * The same deserializers catch a message the decoder cannot read at all (truncated, a length past
 * its end): left to grpc-js, that throw is a bare INTERNAL "Error deserializing request", with no
 * Warden code and no audit record. It arrives as an `UndecodableMessage`, refused the same way.
 */
import { isUtf8 } from 'node:buffer';
import type * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';

/** What a gateway handler receives instead of the request when a string field is not UTF-8. */
export class InvalidUtf8Message {
  /** `path`: the field, as `messages.0.parts.1.text` (map entries: the map field's name). */
  constructor(readonly path: string) {}
}

/**
 * What a gateway handler receives instead of the request when the decoder refused the bytes.
 * It keeps nothing of them, nor the decoder's message (offsets of the caller's bytes, no help).
 */
export class UndecodableMessage {
  /** `type`: the request message's full name, as `warden.v1.PromptRequest`. */
  constructor(readonly type: string) {}
}

interface FieldShape {
  name: string;
  repeated: boolean;
  string: boolean;
  /** For message fields: the nested message's shape (resolved lazily: types may refer to themselves). */
  message?: () => MessageShape | undefined;
}

interface MessageShape {
  fields: Map<number, FieldShape>;
  /** A map entry: its key and value are reported as the map field itself. */
  mapEntry: boolean;
}

/** The parts of a DescriptorProto (as proto-loader hands them out) that the walk reads. */
interface Descriptor {
  name: string;
  field: Array<{ name: string; number: number; type: string; typeName: string; label: string }>;
  nestedType: Descriptor[];
  options?: { mapEntry?: boolean } | null;
}

/** Shapes of a package definition's messages, built once per message type. */
function shapeResolver(definition: protoLoader.PackageDefinition): (fullName: string) => MessageShape | undefined {
  const shapes = new Map<string, MessageShape | undefined>();

  function build(fullName: string, d: Descriptor): MessageShape {
    const shape: MessageShape = { fields: new Map(), mapEntry: d.options?.mapEntry === true };
    shapes.set(fullName, shape);
    const pkg = fullName.slice(0, fullName.lastIndexOf('.'));
    for (const f of d.field) {
      const field: FieldShape = { name: f.name, repeated: f.label === 'LABEL_REPEATED', string: f.type === 'TYPE_STRING' };
      if (f.type === 'TYPE_MESSAGE') {
        const nested = d.nestedType.find((n) => n.name === f.typeName);
        const target = nested ? `${fullName}.${nested.name}` : f.typeName.startsWith('.') ? f.typeName.slice(1) : `${pkg}.${f.typeName}`;
        field.message = () => (nested ? (shapes.get(target) ?? build(target, nested)) : resolve(target));
      }
      shape.fields.set(f.number, field);
    }
    return shape;
  }

  function resolve(fullName: string): MessageShape | undefined {
    if (shapes.has(fullName)) return shapes.get(fullName);
    const entry = definition[fullName] as { type?: unknown } | undefined;
    const d = entry?.type as Descriptor | undefined;
    if (!d) {
      shapes.set(fullName, undefined);
      return undefined;
    }
    return build(fullName, d);
  }

  return resolve;
}

/** Deeper nesting than this is left to the decoder (Warden's protos nest a few levels). */
const MAX_NESTING = 32;

/** Where `readVarint` stopped (the index after the varint it read). */
let varintEnd = 0;

/** The varint at `buf[i]` (at most 35 bits), or -1 when it runs past `end`; sets `varintEnd`. */
function readVarint(buf: Buffer, i: number, end: number): number {
  let value = 0;
  let shift = 0;
  let b: number;
  do {
    if (i >= end || shift > 28) return -1;
    b = buf[i++]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  varintEnd = i;
  return value;
}

/**
 * The walk's verdict on wire data that is not a message: a varint or a length that runs past the
 * end of its message, or a wire type protobuf does not have. protobufjs reads some of these
 * leniently (a top-level string whose length runs past the end is cut at the end, its bytes
 * decoded with U+FFFD for what is not UTF-8), which would pass both this check and the decoder.
 */
const MALFORMED = Symbol('malformed');

/**
 * The path of the first string field in `buf[start, end)` whose bytes are not UTF-8, MALFORMED,
 * or undefined. Groups (not in proto3) and nesting past MAX_NESTING end the walk without a
 * verdict: the decoder has the last word on them.
 */
function firstInvalid(buf: Buffer, start: number, end: number, shape: MessageShape, path: string, depth: number): string | typeof MALFORMED | undefined {
  if (depth > MAX_NESTING) return undefined;
  let counts: Map<number, number> | undefined;
  let i = start;
  while (i < end) {
    const tag = readVarint(buf, i, end);
    if (tag < 0) return MALFORMED;
    i = varintEnd;
    const wireType = tag & 7;
    const number = Math.floor(tag / 8);
    if (wireType === 0) {
      const v = i;
      while (i < end && buf[i++]! & 0x80);
      // No byte of the value, or its last byte says more follow: cut short.
      if (i === v || buf[i - 1]! & 0x80) return MALFORMED;
    } else if (wireType === 1) {
      i += 8;
      if (i > end) return MALFORMED;
    } else if (wireType === 5) {
      i += 4;
      if (i > end) return MALFORMED;
    } else if (wireType === 2) {
      const len = readVarint(buf, i, end);
      if (len < 0) return MALFORMED;
      const s = varintEnd;
      i = s + len;
      if (i > end) return MALFORMED;
      const field = shape.fields.get(number);
      if (!field) continue;
      let at = path;
      if (!shape.mapEntry) {
        at = path === '' ? field.name : `${path}.${field.name}`;
        if (field.repeated) {
          counts ??= new Map();
          const n = counts.get(number) ?? 0;
          counts.set(number, n + 1);
          at = `${at}.${n}`;
        }
      }
      if (field.string) {
        if (!isUtf8(buf.subarray(s, i))) return at;
      } else if (field.message) {
        const nested = field.message();
        if (nested) {
          // A map field's entries are reported as the map itself: their keys are the caller's data.
          const inner = firstInvalid(buf, s, i, nested, nested.mapEntry ? at.slice(0, at.lastIndexOf('.')) : at, depth + 1);
          if (inner !== undefined) return inner;
        }
      }
    } else if (wireType === 3 || wireType === 4) {
      return undefined; // groups (not in proto3): the decoder skips or refuses them
    } else {
      return MALFORMED; // wire types 6 and 7 do not exist
    }
  }
  return undefined;
}

/**
 * `service` with each method's request deserializer checking the request's string fields first:
 * a message with one that is not UTF-8 is not decoded and arrives as an `InvalidUtf8Message`,
 * and one the decoder refuses arrives as an `UndecodableMessage`.
 */
export function withUtf8Check(service: grpc.ServiceDefinition, definition: protoLoader.PackageDefinition): grpc.ServiceDefinition {
  const resolve = shapeResolver(definition);
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(service)) {
    const decode = method.requestDeserialize;
    const typeName = (method as unknown as { requestType?: { type?: { name?: string } } }).requestType?.type?.name;
    // '/warden.v1.PromptGateway/Complete' → the package 'warden.v1'.
    const pkg = method.path.slice(1, method.path.indexOf('/', 1)).split('.').slice(0, -1).join('.');
    const shape = typeName ? resolve(`${pkg}.${typeName}`) : undefined;
    if (!shape) throw new Error(`gRPC method ${name}: request type not found in the proto definitions`);
    const fullName = `${pkg}.${typeName}`;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const invalid = firstInvalid(bytes, 0, bytes.length, shape, '', 0);
        if (invalid === MALFORMED) return new UndecodableMessage(fullName);
        if (invalid !== undefined) return new InvalidUtf8Message(invalid);
        try {
          return decode(bytes);
        } catch {
          return new UndecodableMessage(fullName);
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
