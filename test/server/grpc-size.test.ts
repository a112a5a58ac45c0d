/**
 * The gRPC size check's parts: the ceiling given to grpc-js, and the deserializers that turn an
 * over-limit message into an OversizeMessage instead of decoding it.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CEILING_FACTOR, metadataBytes, OversizeMessage, receiveCeiling, withMessageLimit } from '../../src/server/grpc-size.js';

describe('receiveCeiling', () => {
  it('is a multiple of the limit, capped at what grpc-js accepts (int32)', () => {
    expect(receiveCeiling(65_536)).toBe(65_536 * CEILING_FACTOR);
    expect(receiveCeiling(1024 * 1024 * 1024)).toBe(2 ** 31 - 1);
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
