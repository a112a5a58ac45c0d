/**
 * Numbers on the gRPC wire as protobufjs would read them. It keeps the low 32 bits of a uint32
 * field's larger varint and, for a varint of 6 to 9 bytes, skips bytes of the fields after it:
 * the caller asked for template version 2^32 + 2 and would be served version 2, and a request
 * could carry text that is not UTF-8 past the check that refuses it. A real grpc-js client sends
 * the bytes (encoded here, as a client of a proto with uint64 fields would encode them) to a real
 * Warden in front of a live upstream: refused, audited, nothing upstream.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import { bearerMetadata, encodePromptRequest, varint } from './helpers/grpc.js';
import { eventually } from './helpers/warden.js';

let g: GatewayWarden;
let raw: grpc.Client;

beforeAll(async () => {
  g = await startGatewayWarden();
  raw = new grpc.Client(g.w.addresses.grpc, grpc.credentials.createInsecure());
});

afterAll(async () => {
  raw?.close();
  await g?.close();
});

const ld = (field: number, payload: Buffer) => Buffer.concat([Buffer.from([(field << 3) | 2]), varint(BigInt(payload.length)), payload]);

/** Calls Complete with `bytes` as the request message; resolves with the error or the answer. */
function complete(bytes: Buffer): Promise<grpc.ServiceError | Buffer> {
  const id = (b: Buffer) => b;
  return new Promise((resolve) =>
    raw.makeUnaryRequest('/warden.v1.PromptGateway/Complete', id, id, bytes, bearerMetadata(g.token), (err, res) => resolve(err ?? res!)),
  );
}

describe('a uint32 field sent a number past 32 bits', () => {
  const VARS = { ticket_id: 'T-7', customer_message: 'The parcel arrived broken.' };

  it('is INVALID_ARGUMENT naming the field, audited, and nothing goes upstream (not version 2, not max_tokens 7)', async () => {
    const cases: Array<[Buffer, string]> = [
      // template { id, version: 2^32 + 2 }
      [ld(2, Buffer.concat([ld(1, Buffer.from('support/ticket-summary')), Buffer.from([0x10]), varint(2n ** 32n + 2n)])), 'template.version'],
      // template { id }, max_tokens: 2^32 + 7
      [Buffer.concat([ld(2, ld(1, Buffer.from('support/ticket-summary'))), Buffer.from([0x28]), varint(2n ** 32n + 7n)]), 'max_tokens'],
    ];
    for (const [fields, param] of cases) {
      const bytes = Buffer.concat([encodePromptRequest({ model: 'gpt-4o-mini', variables: VARS }), fields]);
      const calls = g.upstream.calls.length;
      const audited = g.w.audit().length;
      const err = (await complete(bytes)) as grpc.ServiceError;
      expect(err.code, param).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get('warden-code')).toEqual(['invalid_request']);
      expect(err.metadata.get('warden-param')).toEqual([param]);
      expect(err.details).toBe(`field '${param}' is out of the range of its declared type uint32 (a varint of more than 32 bits; at most 4294967295)`);
      await eventually(() => g.w.audit().length > audited);
      // Refused after its credentials passed (checked from the call's headers): the record names the caller.
      expect(g.w.audit().slice(audited)).toMatchObject([{ status: 'error', error_code: 'invalid_request', principal: { namespace: 'support', service_account: 'ticket-bot' } }]);
      expect(g.upstream.calls.length).toBe(calls);
    }
  });

  it('padded to 6 bytes, cannot hide a message with text that is not UTF-8 from the check', async () => {
    // protobufjs skips 5 bytes after a uint32 varint's fifth: 4 of them open the unknown field 15,
    // which the walk skips whole, and the rest of that field it reads as a `messages` entry.
    const bad = Buffer.concat([Buffer.from('card '), Buffer.from([0xff, 0xfe]), Buffer.from(' end')]);
    const hidden = ld(4, Buffer.concat([ld(1, Buffer.from('user')), ld(2, bad)]));
    const bytes = Buffer.concat([
      ld(1, Buffer.from('gpt-4o-mini')),
      Buffer.from([0x28, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00]),
      Buffer.from([(15 << 3) | 2, hidden.length + 2, 0, 0]),
      hidden,
    ]);
    const calls = g.upstream.calls.length;
    const caller = await g.w.signer.token('labs', 'raw-bot');
    const id = (b: Buffer) => b;
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest('/warden.v1.PromptGateway/Complete', id, id, bytes, bearerMetadata(caller), (e) => resolve(e)),
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.metadata.get('warden-param')).toEqual(['max_tokens']);
    expect(g.upstream.calls.length).toBe(calls);
  });

  it('the largest uint32 is served', async () => {
    const bytes = Buffer.concat([
      encodePromptRequest({ model: 'gpt-4o-mini', variables: VARS, template: { id: 'support/ticket-summary', version: 2 } }),
      Buffer.from([0x28]),
      varint(2n ** 32n - 1n),
    ]);
    const calls = g.upstream.calls.length;
    const res = await complete(bytes);
    expect(Buffer.isBuffer(res)).toBe(true);
    // The decision's cap (512) clamps it: the number was read whole.
    expect(g.upstream.calls.slice(calls).map((c) => c.body.max_tokens)).toEqual([512]);
  });
});
