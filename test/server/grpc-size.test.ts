/**
 * The gRPC size check's parts: the ceiling given to grpc-js, and the deserializers that turn an
 * over-limit message into an OversizeMessage instead of decoding it.
 */
import { EventEmitter } from 'node:events';
import type * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CEILING_FACTOR, metadataBytes, OversizeMessage, receiveCeiling, watchMessageSizes, withMessageLimit } from '../../src/server/grpc-size.js';

describe('receiveCeiling', () => {
  it('is a multiple of the limit, capped at what grpc-js accepts (int32)', () => {
    expect(receiveCeiling(65_536)).toBe(65_536 * CEILING_FACTOR);
    expect(receiveCeiling(1024 * 1024 * 1024)).toBe(2 ** 31 - 1);
  });
});

describe('watchMessageSizes', () => {
  /** A framed message declaring `declared` bytes, with `body` bytes of it. */
  const framed = (declared: number, body = declared) => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(declared, 1);
    return Buffer.concat([head, Buffer.alloc(body, 0xff)]);
  };
  /** Feeds `bytes` in pieces of `size` to a watch with limit 8; what it reported, and the pauses. */
  const feed = (bytes: Buffer, size: number) => {
    const stream = Object.assign(new EventEmitter(), { paused: 0, pause: () => stream.paused++ });
    const over: Array<{ bytes: number; at: number }> = [];
    let fed = 0;
    watchMessageSizes(stream as unknown as http2.ServerHttp2Stream, 8, (n) => over.push({ bytes: n, at: fed }));
    for (let i = 0; i < bytes.length; i += size) {
      fed = Math.min(i + size, bytes.length);
      stream.emit('data', bytes.subarray(i, fed));
    }
    return { over, paused: stream.paused, listening: stream.listenerCount('data') };
  };

  it('reports nothing for messages within the limit, however the reads split them (zero-length ones too)', () => {
    const within = Buffer.concat([framed(8), framed(0), framed(3), framed(8)]);
    for (let size = 1; size <= within.length; size++) expect(feed(within, size)).toEqual({ over: [], paused: 0, listening: 1 });
  });

  it('reports the first message over the limit once, as soon as its prefix is whole, pauses the stream and stops reading', () => {
    const bytes = Buffer.concat([framed(3), framed(0x01020304, 20), framed(9)]);
    for (let size = 1; size <= bytes.length; size++) {
      const got = feed(bytes, size);
      expect(got.over).toHaveLength(1);
      expect(got.over[0]!.bytes).toBe(0x01020304);
      // The read that completed the second prefix (bytes 8 to 12), not a later one.
      expect(got.over[0]!.at).toBe(Math.min(Math.ceil(13 / size) * size, bytes.length));
      expect({ paused: got.paused, listening: got.listening }).toEqual({ paused: 1, listening: 0 });
    }
  });

  it('reads the length as unsigned 32 bits (a prefix of 0xffffffff is over any limit)', () => {
    expect(feed(framed(0xffffffff, 0), 5).over).toEqual([{ bytes: 0xffffffff, at: 5 }]);
  });
});

describe('withMessageLimit', () => {
  const decoded: Buffer[] = [];
  const method = {
    path: '/warden.v1.PromptGateway/Complete',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
    requestDeserialize: (b: Buffer) => {
      decoded.push(b);
      return { text: b.toString() };
    },
    responseSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
    responseDeserialize: (b: Buffer) => b,
  } satisfies grpc.MethodDefinition<unknown, unknown>;
  const limited = withMessageLimit({ Complete: method } as grpc.ServiceDefinition, 8);

  it('decodes a message up to the limit as before, and keeps the rest of the definition', () => {
    expect(limited.Complete!.requestDeserialize(Buffer.from('12345678'))).toEqual({ text: '12345678' });
    expect(limited.Complete!.path).toBe(method.path);
    expect(limited.Complete!.responseSerialize).toBe(method.responseSerialize);
  });

  it('does not decode a message over the limit: it arrives as an OversizeMessage with its size', () => {
    const before = decoded.length;
    const out = limited.Complete!.requestDeserialize(Buffer.from('123456789'));
    expect(out).toBeInstanceOf(OversizeMessage);
    expect((out as OversizeMessage).bytes).toBe(9);
    expect(decoded.length).toBe(before);
  });
});

describe('metadataBytes', () => {
  it('counts every name and value as sent, binary values in base64, each value of a repeated name', () => {
    const md = new grpc.Metadata();
    expect(metadataBytes(md)).toBe(0);
    md.set('authorization', 'Bearer abc'); // 13 + 10
    md.add('x-a', 'zz'); // 3 + 2
    md.add('x-a', 'yyy'); // 3 + 3
    md.set('trace-bin', Buffer.from([1, 2, 3, 4])); // 9 + 8 ("AQIDBA==")
    expect(metadataBytes(md)).toBe(23 + 5 + 6 + 17);
  });
});
