/**
 * The gRPC UTF-8 check against the real gateway proto: messages are encoded by proto-loader's own
 * serializer, then one string's bytes are replaced by invalid UTF-8 in place.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { InvalidUtf8Message, OutOfRangeMessage, TooManyFieldsMessage, UndecodableMessage, UndecodedMessage, WrongWireTypeMessage, withUtf8Check } from '../../src/server/grpc-utf8.js';
import { loadProtos, lookupService, protoDefinition } from '../../src/server/proto.js';
import { varint } from '../e2e/helpers/grpc.js';

const service = lookupService(loadProtos(), 'warden.v1.PromptGateway').service;
const checked = withUtf8Check(service, protoDefinition());
const complete = checked.Complete!;
const encode = (request: object): Buffer => service.Complete!.requestSerialize(request);

/** Encodes `request`, then overwrites the 4-byte marker `ZZZZ` with bytes that are not UTF-8. */
function corrupt(request: object): Buffer {
  const bytes = Buffer.from(encode(request));
  const at = bytes.indexOf('ZZZZ');
  expect(at).toBeGreaterThanOrEqual(0);
  bytes.set([0xff, 0xfe, 0xc3, 0x28], at);
  return bytes;
}

/** What a deserializer hands over for a message that passed the walk, decoded (as the handler does once the credentials passed). */
function decoded(out: unknown): any {
  expect(out).toBeInstanceOf(UndecodedMessage);
  return (out as UndecodedMessage).decode();
}

const BASE = { model: 'gpt-4o-mini', temperature: 0.7310585786300049, max_tokens: 300_000 };

describe('withUtf8Check', () => {
  it('names the field of the first string that is not UTF-8, wherever it sits', () => {
    const cases: Array<[object, string]> = [
      [{ ...BASE, model: 'ZZZZ' }, 'model'],
      [{ ...BASE, params_json: '{"user":"ZZZZ"}' }, 'params_json'],
      [{ ...BASE, stop: ['a', 'b', 'ZZZZ'] }, 'stop.2'],
      [{ ...BASE, template: { id: 'support/ZZZZ', version: 2 } }, 'template.id'],
      // A map's entries are reported as the map: their keys are the caller's data.
      [{ ...BASE, variables: { ticket: 'T-1', message: 'hello ZZZZ' } }, 'variables'],
      [{ ...BASE, variables: { ZZZZ: 'x' } }, 'variables'],
      [{ ...BASE, messages: [{ role: 'user', content: 'fine' }, { role: 'user', content: 'ZZZZ' }] }, 'messages.1.content'],
      [{ ...BASE, messages: [{ role: 'user', parts: [{ type: 'text', text: 'ok' }, { type: 'text', text: 'x ZZZZ' }] }] }, 'messages.0.parts.1.text'],
      [{ ...BASE, messages: [{ role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":"ZZZZ"}' } }] }] }, 'messages.0.tool_calls.0.function.arguments'],
      [{ ...BASE, tools: [{ type: 'function', function: { name: 'f', description: 'looks ZZZZ up' } }] }, 'tools.0.function.description'],
    ];
    for (const [request, path] of cases) {
      const out = complete.requestDeserialize(corrupt(request));
      expect(out, path).toBeInstanceOf(InvalidUtf8Message);
      expect((out as InvalidUtf8Message).path).toBe(path);
    }
  });

  it('counts the index of a repeated entry among other fields, unknown ones and entries of other repeated fields between, at each level', () => {
    const part = (request: object) => encode(request);
    const bad = corrupt({ messages: [{ role: 'assistant', tool_calls: [{ id: 'c0' }, { id: 'c1', function: { name: 'f', arguments: 'ZZZZ' } }] }] });
    // Concatenated messages merge: repeated fields append, whatever lies between their entries.
    const bytes = Buffer.concat([
      part({ model: 'm', messages: [{ role: 'user', content: 'a' }] }),
      part({ stop: ['x', 'y'] }),
      Buffer.from([(14 << 3) | 2, 0x02, 0x08, 0x01, (15 << 3) | 0, 0x05]), // unknown fields 14 (bytes) and 15 (varint)
      part({ messages: [{ role: 'user', content: 'b' }], stop: ['z'] }),
      bad,
    ]);
    expect(complete.requestDeserialize(bytes)).toEqual(new InvalidUtf8Message('messages.2.tool_calls.1.function.arguments'));
    const dir = mkdtempSync(join(tmpdir(), 'warden-nested-'));
    writeFileSync(join(dir, 'p.proto'), 'syntax = "proto3"; package t; message V { string s = 1; repeated string r = 2; } message R { repeated V v = 1; } service S { rpc M(R) returns (R); }');
    const def = protoLoader.loadSync('p.proto', { includeDirs: [dir], keepCase: true });
    const svc = (grpc.loadPackageDefinition(def).t as grpc.GrpcObject).S as grpc.ServiceClientConstructor;
    const m = withUtf8Check(svc.service, def).M!;
    const nested = Buffer.from(svc.service.M!.requestSerialize({ v: [{ s: 'ok' }, { s: 'ok', r: ['ok', 'ZZZZ'] }] }));
    nested.set([0xff, 0xfe, 0xc3, 0x28], nested.indexOf('ZZZZ'));
    expect(m.requestDeserialize(nested)).toEqual(new InvalidUtf8Message('v.1.r.1'));
  });

  it('decodes valid messages as before: non-ASCII text, a literal U+FFFD, numbers whose bytes are not text', () => {
    const request = {
      ...BASE,
      variables: { name: 'Zoë 😀 \uFFFD' },
      messages: [],
      stop: ['—', '終'],
      template: { id: 'support/ticket-summary', version: 2 },
    };
    const bytes = encode(request);
    const out = decoded(complete.requestDeserialize(bytes));
    expect(out).toEqual(service.Complete!.requestDeserialize(bytes));
    expect((out as any).variables).toEqual({ name: 'Zoë 😀 \uFFFD' });
  });

  it('does not decode: a message that passes the walk is decoded only by decode(), where a throw of the decoder becomes an UndecodableMessage', () => {
    // The handler decodes once the call's credentials passed (grpc.ts translate): the
    // deserializer, which grpc-js runs as the message arrives, must not have decoded it.
    let decodes = 0;
    const counting = { Complete: { ...service.Complete!, requestDeserialize: (b: Buffer) => (decodes++, service.Complete!.requestDeserialize(b)) } } as grpc.ServiceDefinition;
    const lazy = withUtf8Check(counting, protoDefinition(), 100).Complete!;
    const bytes = encode({ ...BASE, messages: [{ role: 'user', content: 'hi' }] });
    const out = lazy.requestDeserialize(bytes);
    expect(out).toBeInstanceOf(UndecodedMessage);
    expect(decodes).toBe(0);
    expect((out as UndecodedMessage).decode()).toEqual(service.Complete!.requestDeserialize(bytes));
    expect(decodes).toBe(1);
    // Nor is a message past the field bound, nor one the walk refuses.
    expect(lazy.requestDeserialize(encode({ model: 'm', messages: Array.from({ length: 100 }, () => ({})) }))).toBeInstanceOf(TooManyFieldsMessage);
    expect(lazy.requestDeserialize(bytes.subarray(0, bytes.length - 1))).toBeInstanceOf(UndecodableMessage);
    expect(decodes).toBe(1);
    const throwing = { Complete: { ...service.Complete!, requestDeserialize: () => { throw new Error('at offset 17 of the caller\'s bytes'); } } } as grpc.ServiceDefinition;
    const refused = (withUtf8Check(throwing, protoDefinition()).Complete!.requestDeserialize(bytes) as UndecodedMessage).decode();
    expect(refused).toEqual(new UndecodableMessage('warden.v1.PromptRequest'));
  });

  it('leaves malformed wire data to the decoder, and a refusal of it arrives as an UndecodableMessage (not a throw)', () => {
    const bytes = encode({ ...BASE, model: 'truncated here' });
    const truncated = bytes.subarray(0, bytes.length - 3);
    expect(() => service.Complete!.requestDeserialize(truncated)).toThrow();
    const out = complete.requestDeserialize(truncated);
    expect(out).toBeInstanceOf(UndecodableMessage);
    expect(out).toEqual(new UndecodableMessage('warden.v1.PromptRequest'));
  });

  it('refuses wire data the decoder would read leniently: a length or varint past the end, a wire type that does not exist', () => {
    const malformed = [
      // model (field 1) declares 127 bytes and has 1: the decoder alone gives model "a".
      Buffer.from([0x0a, 0x7f, 0x61]),
      // stop (field 8, last) declares 127 bytes of which some are not UTF-8: the
      // decoder alone cuts it at the end and turns them into U+FFFD, past the UTF-8 check.
      Buffer.concat([encode(BASE), Buffer.from([0x42, 0x7f, 0x45, 0x4e, 0x44, 0xff, 0xfe])]),
      // a varint field whose value is cut short, and one with no value at all
      Buffer.concat([encode(BASE), Buffer.from([0x78, 0xff])]),
      Buffer.concat([encode(BASE), Buffer.from([0x78])]),
      // fixed64 and fixed32 fields with too few bytes
      Buffer.concat([encode(BASE), Buffer.from([0x79, 1, 2, 3])]),
      Buffer.concat([encode(BASE), Buffer.from([0x7d, 1])]),
      // wire type 7
      Buffer.concat([encode(BASE), Buffer.from([0x7f, 0x00])]),
    ];
    for (const bytes of malformed) expect(complete.requestDeserialize(bytes), bytes.toString('hex')).toEqual(new UndecodableMessage('warden.v1.PromptRequest'));
    // Whole unknown fields of every wire type are skipped, as proto3 does.
    const unknown = Buffer.concat([encode(BASE), Buffer.from([0xf8, 0x07, 0x01, 0xf9, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 0xfd, 0x07, 1, 2, 3, 4, 0xfa, 0x07, 0x01, 0x41])]);
    expect(decoded(complete.requestDeserialize(unknown))).toEqual(service.Complete!.requestDeserialize(unknown));
  });

  it('refuses a declared field sent with a wire type its type does not have, naming the field (the walk and the decoder must read the same fields)', () => {
    const ld = (field: number, payload: Buffer) => Buffer.concat([Buffer.from([(field << 3) | 2, payload.length]), payload]);
    const model = ld(1, Buffer.from('gpt-4o-mini'));
    // content (a string) as fixed64: the walk would skip 8 bytes, protobufjs reads a length-prefixed string
    const eight = Buffer.concat([Buffer.from([7]), Buffer.from('ab'), Buffer.from([0xff, 0xfe]), Buffer.from('cde')]);
    const cases: Array<[Buffer, string, string]> = [
      [Buffer.concat([model, ld(4, Buffer.concat([ld(1, Buffer.from('user')), Buffer.from([(2 << 3) | 1]), eight]))]), 'messages.0.content', 'string'],
      // a string as a varint, a message as fixed32, a uint32 as a length-delimited field
      [Buffer.from([0x08, 0x01]), 'model', 'string'],
      [Buffer.concat([model, Buffer.from([(2 << 3) | 5, 0x00, 0x08, 0x01, 0x00])]), 'template', 'message'],
      [Buffer.concat([model, Buffer.from([(5 << 3) | 2, 0x00])]), 'max_tokens', 'uint32'],
      // a double as a varint; a repeated string's second entry as fixed32
      [Buffer.concat([model, Buffer.from([(6 << 3) | 0, 0x01, 0, 0, 0, 0, 0, 0, 0])]), 'temperature', 'double'],
      [Buffer.concat([model, ld(8, Buffer.from('a')), Buffer.from([(8 << 3) | 5, 0x01, 0x41, 0x08, 0x00])]), 'stop.1', 'string'],
      // a map entry's value as a varint: reported as the map
      [Buffer.concat([model, ld(3, Buffer.concat([ld(1, Buffer.from('k')), Buffer.from([0x10, 0x01])]))]), 'variables', 'map'],
    ];
    for (const [bytes, path, type] of cases) {
      expect(service.Complete!.requestDeserialize.bind(null, bytes), path).not.toThrow(); // protobufjs alone reads them
      expect(complete.requestDeserialize(bytes), path).toEqual(new WrongWireTypeMessage(path, type));
    }
    // a declared field sent as a group
    expect(complete.requestDeserialize(Buffer.concat([model, Buffer.from([(4 << 3) | 3, (4 << 3) | 4])]))).toEqual(new WrongWireTypeMessage('messages.0', 'message'));
  });

  it('takes a repeated number packed (proto3 encodes them so) or not, and a number of another wire type as wrong', () => {
    // Warden's request has no repeated numbers yet: a proto with one, so the rule is tested before it is needed.
    const dir = mkdtempSync(join(tmpdir(), 'warden-packed-'));
    writeFileSync(join(dir, 'p.proto'), 'syntax = "proto3"; package t; message R { repeated uint32 n = 1; string s = 2; } service S { rpc M(R) returns (R); }');
    const def = protoLoader.loadSync('p.proto', { includeDirs: [dir], keepCase: true });
    const svc = (grpc.loadPackageDefinition(def).t as grpc.GrpcObject).S as grpc.ServiceClientConstructor;
    const m = withUtf8Check(svc.service, def).M!;
    const packed = svc.service.M!.requestSerialize({ n: [1, 300, 2] });
    expect(packed[0]).toBe(0x0a); // field 1, wire type 2: packed
    expect(decoded(m.requestDeserialize(packed))).toEqual({ n: [1, 300, 2] });
    expect(decoded(m.requestDeserialize(Buffer.from([0x08, 0x01, 0x08, 0x02])))).toEqual({ n: [1, 2] }); // unpacked
    expect(m.requestDeserialize(Buffer.from([0x08, 0x01, 0x0d, 1, 0, 0, 0]))).toEqual(new WrongWireTypeMessage('n.1', 'uint32'));
  });

  it('refuses a uint32 varint past 32 bits, which protobufjs cuts to its low 32 bits or reads past its end into the next fields', () => {
    const ld = (field: number, payload: Buffer) => Buffer.concat([Buffer.from([(field << 3) | 2, payload.length]), payload]);
    const model = ld(1, Buffer.from('gpt-4o-mini'));
    const template = (version: Buffer) => ld(2, Buffer.concat([ld(1, Buffer.from('support/ticket-summary')), Buffer.from([0x10]), version]));
    const maxTokens = (v: Buffer) => Buffer.concat([Buffer.from([0x28]), v]);
    // Text that is not UTF-8 in a message protobufjs reads and the walk does not (see below).
    const bad = Buffer.concat([Buffer.from('card '), Buffer.from([0xff, 0xfe]), Buffer.from(' end')]);
    const hidden = ld(4, Buffer.concat([ld(1, Buffer.from('user')), ld(2, bad)]));
    const smuggled = ld(15, Buffer.concat([Buffer.from([0, 0]), hidden]));
    const cases: Array<[Buffer, string, (decode: () => any) => void]> = [
      // 2^32 + 2 as a uint64 field would send it: protobufjs alone serves version 2.
      [Buffer.concat([model, template(varint(2n ** 32n + 2n))]), 'template.version', (d) => expect(d().template.version).toBe(2)],
      [Buffer.concat([model, maxTokens(varint(2n ** 32n + 7n))]), 'max_tokens', (d) => expect(d().max_tokens).toBe(7)],
      // The 10-byte form of -1 (an int32 field's): protobufjs alone reads 4294967295.
      [Buffer.concat([model, maxTokens(varint(2n ** 64n - 1n))]), 'max_tokens', (d) => expect(d().max_tokens).toBe(4294967295)],
      // 1 padded to 6 bytes: protobufjs skips 5 bytes past its fifth, 4 of them the unknown field
      // 15 that the walk skipped whole, and reads the rest of that field as a message whose text
      // is not UTF-8.
      [
        Buffer.concat([model, maxTokens(Buffer.from([0x81, 0x80, 0x80, 0x80, 0x80, 0x00])), smuggled]),
        'max_tokens',
        (d) => expect(d().messages[0].content).toBe('card \uFFFD\uFFFD end'),
      ],
      // 11 bytes: protobufjs reads its last byte as the next tag (here field 0, a varint with no bytes).
      [Buffer.concat([model, maxTokens(Buffer.from([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))]), 'max_tokens', (d) => expect(d).toThrow()],
    ];
    for (const [bytes, path, alone] of cases) {
      alone(() => service.Complete!.requestDeserialize(bytes));
      expect(complete.requestDeserialize(bytes), bytes.toString('hex')).toEqual(new OutOfRangeMessage(path, 'uint32'));
    }
    // The largest uint32 and a short varint pass.
    for (const v of [2n ** 32n - 1n, 300n]) {
      const bytes = Buffer.concat([model, maxTokens(varint(v)), template(varint(v))]);
      expect(decoded(complete.requestDeserialize(bytes))).toEqual(service.Complete!.requestDeserialize(bytes));
      expect(decoded(complete.requestDeserialize(bytes)).max_tokens).toBe(Number(v));
    }
    // A tag past 32 bits: the walk would skip an unknown field, protobufjs reads field 4 (messages).
    const tag = Buffer.concat([varint(2n ** 32n + BigInt((4 << 3) | 2)), Buffer.from([hidden.length - 2]), hidden.subarray(2)]);
    expect(service.Complete!.requestDeserialize(Buffer.concat([model, tag])).messages[0].content).toBe('card \uFFFD\uFFFD end');
    expect(complete.requestDeserialize(Buffer.concat([model, tag]))).toEqual(new UndecodableMessage('warden.v1.PromptRequest'));
  });

  it('holds packed numbers and the other 32-bit varint types to what protobufjs reads', () => {
    // Warden's request has none of these yet: a proto with them, so the rule is tested before it is needed.
    const dir = mkdtempSync(join(tmpdir(), 'warden-varint-'));
    writeFileSync(join(dir, 'p.proto'), 'syntax = "proto3"; package t; message R { repeated uint32 n = 1; int32 i = 2; repeated double d = 3; string s = 4; } service S { rpc M(R) returns (R); }');
    const def = protoLoader.loadSync('p.proto', { includeDirs: [dir], keepCase: true });
    const svc = (grpc.loadPackageDefinition(def).t as grpc.GrpcObject).S as grpc.ServiceClientConstructor;
    const m = withUtf8Check(svc.service, def).M!;
    const ok = svc.service.M!.requestSerialize({ n: [1, 4294967295], i: -5, d: [0.5, 2] });
    expect(decoded(m.requestDeserialize(ok))).toEqual({ n: [1, 4294967295], i: -5, d: [0.5, 2] });
    const undecodable = new UndecodableMessage('t.R');
    // packed uint32 with a 6-byte value; int32 as 7 bytes (neither 1 to 5 nor the 10 of a negative one)
    expect(m.requestDeserialize(Buffer.from([0x0a, 0x07, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]))).toEqual(new OutOfRangeMessage('n.0', 'uint32'));
    expect(m.requestDeserialize(Buffer.from([0x10, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))).toEqual(undecodable);
    // packed doubles whose bytes are no multiple of 8: protobufjs reads the last one past the end
    expect(m.requestDeserialize(Buffer.from([0x1a, 0x05, 0, 0, 0, 0, 0]))).toEqual(undecodable);
  });

  it('refuses groups (proto3 has none) and stray group ends: protobufjs would skip them and decode what follows unchecked', () => {
    const bad = Buffer.from(encode({ ...BASE, messages: [{ role: 'user', content: 'card ZZZZ end' }] }));
    bad.set([0xff, 0xfe, 0xc3, 0x28], bad.indexOf('ZZZZ'));
    const group = Buffer.from([(15 << 3) | 3, (15 << 3) | 4]); // unknown field 15: start group, end group
    const malformed = [
      Buffer.concat([group, bad]),
      Buffer.concat([encode(BASE), group]),
      Buffer.concat([Buffer.from([(15 << 3) | 4]), encode(BASE)]),
      // a group inside a nested message (the template)
      Buffer.concat([Buffer.from([0x12, 0x04, 0x10, 0x02]), group, bad]),
    ];
    for (const bytes of malformed) expect(complete.requestDeserialize(bytes), bytes.toString('hex')).toEqual(new UndecodableMessage('warden.v1.PromptRequest'));
  });

  it('checks every method of the service and keeps the rest of its definition', () => {
    for (const name of ['Render', 'Complete', 'StreamComplete']) {
      const m = checked[name]!;
      expect(m.path).toBe(service[name]!.path);
      expect(m.responseSerialize).toBe(service[name]!.responseSerialize);
      expect(m.requestDeserialize(corrupt({ model: 'ZZZZ' }))).toBeInstanceOf(InvalidUtf8Message);
    }
  });

  it('refuses a service whose request type it cannot find', () => {
    const bogus = { X: { ...service.Complete!, requestType: { type: { name: 'NoSuchMessage' } } } } as unknown as grpc.ServiceDefinition;
    expect(() => withUtf8Check(bogus, protoDefinition())).toThrow(/request type not found/);
  });
});

describe('withUtf8Check: the fields a message may hold', () => {
  const bounded = withUtf8Check(service, protoDefinition(), 100).Complete!;

  it('counts every field on the wire, nested and repeated entries included, and refuses past the bound without decoding', () => {
    // model (1) + 33 messages × (the entry, role, content) = 100 fields: decoded.
    const within = { model: 'm', messages: Array.from({ length: 33 }, () => ({ role: 'user', content: 'x' })) };
    expect(decoded(bounded.requestDeserialize(encode(within)))).toMatchObject({ model: 'm' });
    // One more field (a name on the last message): refused.
    const over = { model: 'm', messages: [...within.messages.slice(0, 32), { role: 'user', content: 'x', name: 'n' }] };
    const refused = bounded.requestDeserialize(encode(over));
    expect(refused).toBeInstanceOf(TooManyFieldsMessage);
    expect((refused as TooManyFieldsMessage).max).toBe(100);
    // Empty entries count too: they are what a flood of objects is made of.
    expect(bounded.requestDeserialize(encode({ model: 'm', messages: Array.from({ length: 100 }, () => ({})) }))).toBeInstanceOf(TooManyFieldsMessage);
  });

  it('each message is counted from zero', () => {
    const within = encode({ model: 'm', messages: Array.from({ length: 33 }, () => ({ role: 'user', content: 'x' })) });
    for (let i = 0; i < 3; i++) expect(decoded(bounded.requestDeserialize(within))).toMatchObject({ model: 'm' });
  });
});
