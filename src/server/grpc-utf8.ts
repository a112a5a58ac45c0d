/**
 * UTF-8 in gRPC requests. A proto3 `string` field must hold valid UTF-8, but the decoder behind
 * @grpc/proto-loader (protobufjs) does not check: it turns invalid bytes into U+FFFD, so a
 * request that the HTTP ingress refuses (`request body is not valid UTF-8`) would pass over gRPC
 * with its text silently changed. The gateway's request deserializers therefore walk the wire
 * bytes first, guided by the message descriptors, and check each string field's bytes; a message
 * with an invalid one arrives as an `InvalidUtf8Message` that the handler refuses as
 * `invalid_request`, through the same counted and audited path as any other refused request.
 *
 * The same walk refuses a message the decoder cannot read at all (truncated, a length past its
 * end): left to grpc-js, the decoder's throw is a bare INTERNAL "Error deserializing request", with
 * no Warden code and no audit record. It arrives as an `UndecodableMessage`, refused the same way
 * (and so would a throw of the decoder itself, which runs later: see UndecodedMessage).
 *
 * The walk is only a check if it reads the same fields the decoder does, so it refuses whatever
 * the two could read differently. protobufjs's generated decoder does not look at a known
 * field's wire type (a `string` sent as fixed64 is still read as length-prefixed, where a walk
 * by wire type would skip 8 bytes), so a declared field with a wire type its type does not have
 * arrives as a `WrongWireTypeMessage`. Groups (wire types 3 and 4) do not exist in proto3 and
 * protobufjs skips them without looking inside: a message holding one is an `UndecodableMessage`.
 *
 * Nor does protobufjs read a varint of a 32-bit field (uint32, int32, enum, bool) to its end: it
 * takes 5 bytes and then skips exactly 5 more, as if every longer varint were a 10-byte negative
 * int32. A varint of 6 to 9 bytes (a uint64 value, or a small one padded) makes it skip bytes of
 * the fields that follow, which the walk checked as fields and the decoder does not, and read as
 * fields bytes the walk skipped unchecked (a whole message with text that is not UTF-8, inside an
 * unknown field); a varint of 11 bytes or more makes it read its tail as a tag. And it keeps the
 * low 32 bits of a larger number without a word (`template.version` 2^32 + 2 is version 2). So a
 * uint32 field whose varint does not fit 32 bits arrives as an `OutOfRangeMessage`, and a varint
 * of another 32-bit field that is neither 1 to 5 bytes nor 10 (the negative int32 form protobufjs
 * reads rightly), or of any declared field longer than 10 bytes, as an `UndecodableMessage`.
 */
import { isUtf8 } from 'node:buffer';
import type * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';

/** What a gateway handler receives instead of the request when a string field is not UTF-8. */
export class InvalidUtf8Message {
  /** `path`: the field, as `messages.0.parts.1.text` (map entries: the map field's name). */
  constructor(readonly path: string) {}
}

/** What a gateway handler receives instead of the request when a declared field has the wrong wire type. */
export class WrongWireTypeMessage {
  /** `path`: the field, as for `InvalidUtf8Message`; `type`: its declared type (`string`, `uint32`, `message`). */
  constructor(
    readonly path: string,
    readonly type: string,
  ) {}
}

/** What a gateway handler receives instead of the request when a uint32 field holds a larger number. */
export class OutOfRangeMessage {
  /** `path`: the field, as for `InvalidUtf8Message`; `type`: its declared type (`uint32`). */
  constructor(
    readonly path: string,
    readonly type: string,
  ) {}
}

/**
 * What a gateway handler receives instead of the request when it holds more fields than the
 * bound (withUtf8Check's `maxFields`): never decoded, since decoding builds an object for each.
 * Not a fault of the wire data, so the handler refuses it once the call's credentials passed, as
 * HTTP counts a body's JSON values only after reading it, which it does after the credentials.
 */
export class TooManyFieldsMessage {
  constructor(readonly max: number) {}
}

/**
 * What a gateway handler receives for a request that passed the walk: its bytes, not decoded yet.
 * grpc-js runs the deserializer as the message arrives, before the handler can check the call's
 * credentials, and decoding builds an object with every member of its type for each message entry
 * (100,000 empty `messages` entries, ~200 KB, took 0.3 s and more): the handler decodes once the
 * credentials passed, so a caller without them costs only the walk. One object per call, where the
 * decoded request was; the decode costs what it did, later.
 */
export class UndecodedMessage {
  constructor(
    private readonly bytes: Buffer,
    private readonly decoder: (bytes: Buffer) => unknown,
    /** The request message's full name, for the UndecodableMessage of a refusal. */
    private readonly type: string,
  ) {}

  /** The decoded request, or an UndecodableMessage when the decoder refused the bytes. */
  decode(): unknown {
    try {
      return this.decoder(this.bytes);
    } catch {
      return new UndecodableMessage(this.type);
    }
  }
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
  /** The declared type as the proto writes it (`string`, `uint32`, `message`), for the refusal. */
  type: string;
  /** The wire type its values are encoded with; a repeated scalar number may also come packed (2). */
  wireType: number;
  packable: boolean;
  /**
   * How protobufjs reads the field's varints when it reads them as 32 bits (see VARINT32): `uint32`
   * must fit 32 bits; `int32` (int32, sint32, enum, bool) must be 1 to 5 bytes or 10. Undefined:
   * not a 32-bit varint field.
   */
  varint32?: 'uint32' | 'int32';
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

/** The wire type of each proto3 field type (descriptor names); groups and anything unknown: none. */
const WIRE_TYPES: Record<string, number> = {
  TYPE_INT32: 0, TYPE_INT64: 0, TYPE_UINT32: 0, TYPE_UINT64: 0, TYPE_SINT32: 0, TYPE_SINT64: 0, TYPE_BOOL: 0, TYPE_ENUM: 0,
  TYPE_FIXED64: 1, TYPE_SFIXED64: 1, TYPE_DOUBLE: 1,
  TYPE_STRING: 2, TYPE_BYTES: 2, TYPE_MESSAGE: 2,
  TYPE_FIXED32: 5, TYPE_SFIXED32: 5, TYPE_FLOAT: 5,
};

/** The field types protobufjs reads with its 32-bit varint reader (see the file's comment). */
const VARINT32: Record<string, 'uint32' | 'int32'> = { TYPE_UINT32: 'uint32', TYPE_INT32: 'int32', TYPE_SINT32: 'int32', TYPE_ENUM: 'int32', TYPE_BOOL: 'int32' };

/** The most bytes a varint has (a 64-bit value); protobufjs reads no longer one rightly. */
const MAX_VARINT_BYTES = 10;

/**
 * Whether the varint in `buf[start, end)` (its bytes, the last one without the continuation bit)
 * is read by protobufjs as the walk reads it, and for a uint32 whether its value fits 32 bits.
 */
function varintFits(buf: Buffer, start: number, end: number, kind: 'uint32' | 'int32' | undefined): boolean {
  const bytes = end - start;
  if (kind === undefined) return bytes <= MAX_VARINT_BYTES;
  // Five bytes carry 35 bits: the fifth may hold only bits 28 to 31.
  if (kind === 'uint32') return bytes < 5 || (bytes === 5 && buf[start + 4]! <= 0x0f);
  return bytes <= 5 || bytes === MAX_VARINT_BYTES;
}

/** Shapes of a package definition's messages, built once per message type. */
function shapeResolver(definition: protoLoader.PackageDefinition): (fullName: string) => MessageShape | undefined {
  const shapes = new Map<string, MessageShape | undefined>();

  function build(fullName: string, d: Descriptor): MessageShape {
    const shape: MessageShape = { fields: new Map(), mapEntry: d.options?.mapEntry === true };
    shapes.set(fullName, shape);
    const pkg = fullName.slice(0, fullName.lastIndexOf('.'));
    for (const f of d.field) {
      const repeated = f.label === 'LABEL_REPEATED';
      const wireType = WIRE_TYPES[f.type] ?? -1;
      const field: FieldShape = {
        name: f.name,
        repeated,
        string: f.type === 'TYPE_STRING',
        type: f.type.slice('TYPE_'.length).toLowerCase(),
        wireType,
        packable: repeated && wireType !== 2 && wireType !== -1,
      };
      const varint32 = VARINT32[f.type];
      if (varint32) field.varint32 = varint32;
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

/** Fields the walk under way may still read before the message holds too many (see withUtf8Check). */
let fieldsLeft = Number.POSITIVE_INFINITY;

/** The walk's verdict on a message of more fields than the bound. */
const TOO_MANY_FIELDS = Symbol('too many fields');

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

/** The walk's finding on one field: its path, and what is wrong with it. */
type Finding = InvalidUtf8Message | WrongWireTypeMessage | OutOfRangeMessage;

/**
 * The values of a packed repeated number field in `buf[start, end)`, as protobufjs reads them (one
 * after another until the end, which a value it reads past moves it beyond): OUT_OF_RANGE for the
 * first value of a uint32 field that does not fit, MALFORMED for another the walk would read
 * otherwise than protobufjs or for values that do not end at the end, or undefined.
 */
function packedInvalid(buf: Buffer, start: number, end: number, field: FieldShape): typeof OUT_OF_RANGE | typeof MALFORMED | undefined {
  if (field.wireType === 1) return (end - start) % 8 === 0 ? undefined : MALFORMED;
  if (field.wireType === 5) return (end - start) % 4 === 0 ? undefined : MALFORMED;
  let i = start;
  while (i < end) {
    const v = i;
    while (i < end && buf[i++]! & 0x80);
    if (buf[i - 1]! & 0x80) return MALFORMED;
    if (!varintFits(buf, v, i, field.varint32)) return field.varint32 === 'uint32' ? OUT_OF_RANGE : MALFORMED;
  }
  return undefined;
}

/** The walk's verdict on a uint32 value past 32 bits, before its path is known (see fieldPath). */
const OUT_OF_RANGE = Symbol('out of range');

/**
 * The path of the field whose tag starts at `at`, in the message that starts at `start`, relative
 * to that message: its name, and for a repeated field the entry's index (as `messages.3`), found
 * by counting the field's earlier tags. Built only for a finding: building a path for every field
 * as the walk went took most of its time (100,000 empty entries: 26 ms, 3.5 ms without), which a
 * caller without credentials may make Warden spend. A map entry's own fields have the empty path:
 * they are reported as the map field.
 */
function fieldPath(buf: Buffer, start: number, at: number, shape: MessageShape, field: FieldShape, number: number): string {
  if (shape.mapEntry) return '';
  if (!field.repeated) return field.name;
  // The walk has read these bytes already: every tag and value in them is whole.
  let n = 0;
  let i = start;
  while (i < at) {
    const tag = readVarint(buf, i, at);
    i = varintEnd;
    if (Math.floor(tag / 8) === number) n++;
    const wireType = tag & 7;
    if (wireType === 0) while (buf[i++]! & 0x80);
    else if (wireType === 1) i += 8;
    else if (wireType === 5) i += 4;
    else {
      const len = readVarint(buf, i, at);
      i = varintEnd + len;
    }
  }
  return `${field.name}.${n}`;
}

/** `finding` found in a nested message, with the path of the field that holds it in front. */
function under(prefix: string, finding: Finding): Finding {
  // In a map entry (whose path is the map field's, given by the message holding the map).
  if (prefix === '') return finding;
  const path = finding.path === '' ? prefix : `${prefix}.${finding.path}`;
  if (finding instanceof InvalidUtf8Message) return new InvalidUtf8Message(path);
  return finding instanceof WrongWireTypeMessage ? new WrongWireTypeMessage(path, finding.type) : new OutOfRangeMessage(path, finding.type);
}

/**
 * The first string field in `buf[start, end)` whose bytes are not UTF-8 or declared field with
 * the wrong wire type (its path relative to this message), MALFORMED (groups included), or
 * undefined. Nesting past MAX_NESTING ends the walk without a verdict: the decoder has the last
 * word on it.
 */
function firstInvalid(buf: Buffer, start: number, end: number, shape: MessageShape, depth: number): Finding | typeof MALFORMED | typeof TOO_MANY_FIELDS | undefined {
  if (depth > MAX_NESTING) return undefined;
  let i = start;
  while (i < end) {
    if (--fieldsLeft < 0) return TOO_MANY_FIELDS;
    const tagAt = i;
    const tag = readVarint(buf, i, end);
    // protobufjs reads a tag as 32 bits: the field number of a larger one would not be the walk's.
    if (tag < 0 || tag > 0xffffffff) return MALFORMED;
    i = varintEnd;
    const wireType = tag & 7;
    const number = Math.floor(tag / 8);
    const field = shape.fields.get(number);
    if (field && wireType !== field.wireType && !(wireType === 2 && field.packable)) {
      // In a map entry the path is the map field itself (see below), so the type named is the map's.
      return new WrongWireTypeMessage(fieldPath(buf, start, tagAt, shape, field, number), shape.mapEntry ? 'map' : field.type);
    }
    if (wireType === 0) {
      const v = i;
      while (i < end && buf[i++]! & 0x80);
      // No byte of the value, or its last byte says more follow: cut short.
      if (i === v || buf[i - 1]! & 0x80) return MALFORMED;
      // A declared field's varint as protobufjs reads it: to its end, and in its type's range.
      if (field && !varintFits(buf, v, i, field.varint32)) {
        return field.varint32 === 'uint32' ? new OutOfRangeMessage(fieldPath(buf, start, tagAt, shape, field, number), shape.mapEntry ? 'map' : field.type) : MALFORMED;
      }
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
      if (!field) continue;
      if (field.packable) {
        const inner = packedInvalid(buf, s, i, field);
        if (inner === OUT_OF_RANGE) return new OutOfRangeMessage(fieldPath(buf, start, tagAt, shape, field, number), field.type);
        if (inner !== undefined) return inner;
      } else if (field.string) {
        if (!isUtf8(buf.subarray(s, i))) return new InvalidUtf8Message(fieldPath(buf, start, tagAt, shape, field, number));
      } else if (field.message) {
        const nested = field.message();
        if (nested) {
          const inner = firstInvalid(buf, s, i, nested, depth + 1);
          if (inner === undefined) continue;
          if (inner === MALFORMED || inner === TOO_MANY_FIELDS) return inner;
          // A map field's entries are reported as the map itself: their keys are the caller's data.
          return under(nested.mapEntry ? field.name : fieldPath(buf, start, tagAt, shape, field, number), inner);
        }
      }
    } else if (wireType === 3 || wireType === 4) {
      // Groups (not in proto3): protobufjs skips an unknown one unread, so nothing inside or
      // after it would be checked the way it is decoded.
      return MALFORMED;
    } else {
      return MALFORMED; // wire types 6 and 7 do not exist
    }
  }
  return undefined;
}

/**
 * `service` with each method's request deserializer checking the request's fields, and not
 * decoding it: a message that passes arrives as an `UndecodedMessage`, which the handler decodes
 * once the call's credentials passed. A message with a string that is not UTF-8 arrives as an
 * `InvalidUtf8Message`, one with a field of the wrong wire type as a `WrongWireTypeMessage`, one
 * with a uint32 field holding a larger number as an `OutOfRangeMessage`, one the decoder could not
 * read (or holding a group) as an `UndecodableMessage`. One of more than `maxFields` fields (each
 * field as it comes on the wire, nested messages' included: a repeated field's every entry)
 * arrives as a `TooManyFieldsMessage`, the walk stopped there: decoding builds an object with
 * every member for each message entry (some microseconds each), and 1 MiB holds half a million
 * empty ones.
 */
export function withUtf8Check(service: grpc.ServiceDefinition, definition: protoLoader.PackageDefinition, maxFields = Number.POSITIVE_INFINITY): grpc.ServiceDefinition {
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
        fieldsLeft = maxFields;
        const invalid = firstInvalid(bytes, 0, bytes.length, shape, 0);
        if (invalid === TOO_MANY_FIELDS) return new TooManyFieldsMessage(maxFields);
        if (invalid === MALFORMED) return new UndecodableMessage(fullName);
        if (invalid !== undefined) return invalid;
        return new UndecodedMessage(bytes, decode, fullName);
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
