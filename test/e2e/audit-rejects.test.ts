/**
 * Requests refused before they could be read (malformed JSON, oversize body, invalid UTF-8, wrong
 * types; a gRPC call missing its model or with a string that is not UTF-8) still leave exactly one trace-linked audit record saying
 * why — status error, the error code — and nothing of the body reaches it. The principal is the
 * authenticated caller's when the body was refused after the credentials passed (they are checked
 * before the body is read), and null when the request was refused before they were checked (a
 * declared Content-Length over the limit, a gRPC message over it or not UTF-8).
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/index.js';
import { REPO } from './helpers/cli.js';
import { bearerMetadata, gatewayClient } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { DOWN_URL, eventually, startWarden, type WardenFixture } from './helpers/warden.js';

const CANARY = 'CANARY-SECRET-9f8e7d';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

let w: WardenFixture;
let token: string;
/** The caller `token` names: a gRPC call's credentials are checked from its headers, before its
 * message (README, Logs and audit), so a message refused after them is recorded with its caller. */
const CALLER = { kind: 'kubernetes', namespace: 'support', service_account: 'ticket-bot' };

beforeAll(async () => {
  w = await startWarden({ upstreamUrl: DOWN_URL });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
});

async function post(body: Buffer | string): Promise<{ status: number; code: string; requestId: string }> {
  const res = await postChat(w.addresses.http, token, body, { traceparent: TRACEPARENT });
  const json = (await res.json()) as { error: { code: string } };
  return { status: res.status, code: json.error.code, requestId: res.headers.get('x-request-id') ?? '' };
}

function recordFor(requestId: string): Record<string, any> {
  const matches = w.audit().filter((r) => r.request_id === requestId);
  expect(matches, requestId).toHaveLength(1);
  return matches[0]!;
}

/** The principal of `token` (the fixture's signer: a Kubernetes service account). */
const PRINCIPAL = { kind: 'kubernetes', namespace: 'support', service_account: 'ticket-bot' };

describe('audit records for requests refused before parsing', () => {
  // The last member: whether the body was refused after the credentials passed.
  const cases: Array<[string, () => Buffer | string, number, string, boolean]> = [
    ['malformed JSON', () => `{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "${CANARY}"`, 400, 'invalid_request', true],
    ['invalid UTF-8', () => Buffer.concat([Buffer.from(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${CANARY} `), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]), 400, 'invalid_request', true],
    ['wrong types', () => JSON.stringify({ model: 7, messages: [{ role: 'user', content: CANARY }] }), 400, 'invalid_request', true],
    // Its Content-Length is refused before the credentials are read.
    ['oversize body', () => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `${CANARY} ${'x'.repeat(70_000)}` }] }), 413, 'payload_too_large', false],
  ];

  for (const [name, body, status, code, authenticated] of cases) {
    it(`${name}: ${status} ${code}, one record with ${authenticated ? 'the caller' : 'principal null'} and the code`, async () => {
      const r = await post(body());
      expect(r.status).toBe(status);
      expect(r.code).toBe(code);
      expect(r.requestId).not.toBe('');
      const rec = recordFor(r.requestId);
      expect(rec.principal).toEqual(authenticated ? expect.objectContaining(PRINCIPAL) : null);
      expect(rec).toMatchObject({
        status: 'error',
        error_code: code,
        action: 'prompt.execute',
        trace_id: TRACE_ID,
        template: null,
        decision: null,
        prompt_hmac: null,
        model: null,
        environment: 'test',
      });
    });
  }

  it('the records keep the hash chain intact and hold nothing of the bodies or the token', async () => {
    const records = w.audit();
    expect(records.length).toBeGreaterThanOrEqual(4);
    const text = JSON.stringify(records);
    expect(text).not.toContain(CANARY);
    expect(text).not.toContain(token);
    expect(text).not.toContain('xxxxxxxx');
    expect(verifyChain(records).ok).toBe(true);
    // Nor do the logs.
    expect(w.logs.join('\n')).not.toContain(CANARY);
  });

  it('gRPC: a message over max_body_bytes is refused by Warden, counted and audited; past the ceiling grpc-js refuses it', async () => {
    const gateway = gatewayClient(w.addresses.grpc);
    const metric = async () => {
      const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('warden_requests_total{') && l.includes('protocol="grpc"') && l.includes('code="payload_too_large"'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    const complete = (message: string) =>
      new Promise<grpc.ServiceError>((resolve, reject) =>
        gateway.Complete(
          { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: message } },
          bearerMetadata(token, { traceparent: TRACEPARENT }),
          (e: grpc.ServiceError | null) => (e ? resolve(e) : reject(new Error('expected an error'))),
        ),
      );
    try {
      // The fixture's max_body_bytes is 65,536; grpc-js delivers up to four times that (grpc-size.ts).
      const counted = await metric();
      const before = w.audit().length;
      const over = await complete(`${CANARY} ${'x'.repeat(100_000)}`);
      expect(over.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(over.metadata.get('warden-code')[0]).toBe('payload_too_large');
      expect(over.details).toMatch(/^request message of \d+ bytes is larger than 65536 bytes$/);
      await eventually(() => w.audit().length > before);
      const rec = w.audit().at(-1)!;
      expect(rec).toMatchObject({ principal: CALLER, status: 'error', error_code: 'payload_too_large', trace_id: TRACE_ID, action: 'prompt.execute' });
      expect(JSON.stringify(rec)).not.toContain(CANARY);
      expect(await metric()).toBe(counted + 1);

      // Past the ceiling: refused inside grpc-js with its own status (no warden-code); the door
      // (grpc-door.ts) still counts and audits it, and the server goes on serving.
      const audited = w.audit().length;
      const huge = await complete('y'.repeat(300_000));
      expect(huge.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(huge.metadata.get('warden-code')).toEqual([]);
      await eventually(() => w.audit().length === audited + 1);
      expect(w.audit().at(-1)).toMatchObject({ principal: CALLER, status: 'error', error_code: 'payload_too_large', trace_id: TRACE_ID });
      expect(await metric()).toBe(counted + 2);
      const after = await complete(`${'z'.repeat(70_000)}`);
      expect(after.metadata.get('warden-code')[0]).toBe('payload_too_large');
      await eventually(() => w.audit().length === audited + 2);
    } finally {
      gateway.close();
    }
  });

  it('gRPC: metadata over limits.max_header_bytes is payload_too_large, counted and audited, as an HTTP header block is', async () => {
    const gateway = gatewayClient(w.addresses.grpc);
    const metric = async () => {
      const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('warden_requests_total{') && l.includes('protocol="grpc"') && l.includes('code="payload_too_large"'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    /** A call with `kb` extra metadata entries of 1000 bytes each (the fixture's limit is the default 16 KiB). */
    const complete = (kb: number) => {
      const md = bearerMetadata(token, { traceparent: TRACEPARENT });
      for (let i = 0; i < kb; i++) md.set(`x-pad-${i}`, `${CANARY}${'a'.repeat(1000 - CANARY.length)}`);
      return new Promise<grpc.ServiceError>((resolve, reject) =>
        gateway.Complete({ model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: 'm' } }, md, (e: grpc.ServiceError | null) =>
          e ? resolve(e) : reject(new Error('expected an error')),
        ),
      );
    };
    try {
      // Under the limit: served (the upstream is down, so upstream_error, not a size refusal).
      const under = await complete(14);
      expect(under.metadata.get('warden-code')[0]).toBe('upstream_error');
      for (const kb of [17, 40]) {
        const counted = await metric();
        const before = w.audit().length;
        const over = await complete(kb);
        expect(over.code, `${kb} KB`).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect(over.metadata.get('warden-code')[0]).toBe('payload_too_large');
        expect(over.details).toMatch(/^the call's metadata of \d+ bytes is larger than limits\.max_header_bytes \(16384 bytes\)$/);
        await eventually(() => w.audit().length > before);
        const rec = w.audit().at(-1)!;
        expect(rec).toMatchObject({ principal: null, status: 'error', error_code: 'payload_too_large', trace_id: TRACE_ID, action: 'prompt.execute' });
        expect(JSON.stringify(rec)).not.toContain(CANARY);
        expect(await metric()).toBe(counted + 1);
      }
      expect(w.logs.join('\n')).not.toContain(CANARY);
    } finally {
      gateway.close();
    }
  });

  it('gRPC: a string field that is not UTF-8 is refused (as over HTTP), not decoded into U+FFFD', async () => {
    // A client that sends raw bytes: the message is encoded as any client would, then the
    // customer message's bytes are made invalid UTF-8 (protobufjs would decode them to U+FFFD).
    const def = protoLoader.loadSync('warden/v1/gateway.proto', { includeDirs: [join(REPO, 'proto')], keepCase: true });
    const method = (def['warden.v1.PromptGateway'] as protoLoader.ServiceDefinition).Complete!;
    const bytes = Buffer.from(
      method.requestSerialize({ model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: `${CANARY} ZZZZ` } }),
    );
    bytes.set([0xff, 0xfe, 0xc3, 0x28], bytes.indexOf('ZZZZ'));
    const identity = (b: Buffer) => b;
    const Raw = grpc.makeGenericClientConstructor(
      { Complete: { path: method.path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
      'RawGateway',
    );
    const client = new Raw(w.addresses.grpc, grpc.credentials.createInsecure()) as unknown as {
      Complete(b: Buffer, md: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void): void;
      close(): void;
    };
    try {
      const before = w.audit().length;
      const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
        client.Complete(bytes, bearerMetadata(token, { traceparent: TRACEPARENT }), (e) => (e ? resolve(e) : reject(new Error('expected an error')))),
      );
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get('warden-code')[0]).toBe('invalid_request');
      expect(err.metadata.get('warden-param')[0]).toBe('variables');
      expect(err.details).toBe("field 'variables' is not valid UTF-8");
      await eventually(() => w.audit().length > before);
      const rec = w.audit().at(-1)!;
      expect(rec).toMatchObject({ principal: CALLER, status: 'error', error_code: 'invalid_request', trace_id: TRACE_ID });
      expect(JSON.stringify(rec)).not.toContain(CANARY);
    } finally {
      client.close();
    }
  });

  it('gRPC: a message that does not decode (truncated) is invalid_request, counted and audited, not a bare INTERNAL', async () => {
    // protobufjs throws on it; left to grpc-js that is INTERNAL "Error deserializing request",
    // with no Warden code and no audit record.
    const def = protoLoader.loadSync('warden/v1/gateway.proto', { includeDirs: [join(REPO, 'proto')], keepCase: true });
    const service = def['warden.v1.PromptGateway'] as protoLoader.ServiceDefinition;
    const whole = Buffer.from(
      service.Complete!.requestSerialize({ model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: CANARY } }),
    );
    const truncated = whole.subarray(0, whole.length - 1);
    const identity = (b: Buffer) => b;
    const raw = (path: string, responseStream: boolean) => ({ path, requestStream: false, responseStream, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity });
    const Raw = grpc.makeGenericClientConstructor(
      { Complete: raw(service.Complete!.path, false), StreamComplete: raw(service.StreamComplete!.path, true) },
      'RawGateway',
    );
    const client = new Raw(w.addresses.grpc, grpc.credentials.createInsecure()) as unknown as {
      Complete(b: Buffer, md: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void): void;
      StreamComplete(b: Buffer, md: grpc.Metadata): grpc.ClientReadableStream<Buffer>;
      close(): void;
    };
    const metric = async () => {
      const text = await (await fetch(`${w.addresses.admin}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('warden_requests_total{') && l.includes('protocol="grpc"') && l.includes('code="invalid_request"'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    const expectRefusal = async (err: grpc.ServiceError, before: number) => {
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get('warden-code')[0]).toBe('invalid_request');
      expect(err.metadata.get('warden-param')[0]).toBe('$');
      expect(err.metadata.get('grpc-status-details-bin')).toHaveLength(1);
      expect(err.details).toBe('the request message is not a valid warden.v1.PromptRequest (malformed protobuf)');
      await eventually(() => w.audit().length > before);
      const rec = w.audit().at(-1)!;
      expect(rec).toMatchObject({ principal: CALLER, status: 'error', error_code: 'invalid_request', trace_id: TRACE_ID, action: 'prompt.execute' });
      expect(JSON.stringify(rec)).not.toContain(CANARY);
    };
    try {
      const counted = await metric();
      let before = w.audit().length;
      const unary = await new Promise<grpc.ServiceError>((resolve, reject) =>
        client.Complete(truncated, bearerMetadata(token, { traceparent: TRACEPARENT }), (e) => (e ? resolve(e) : reject(new Error('expected an error')))),
      );
      await expectRefusal(unary, before);
      expect(await metric()).toBe(counted + 1);

      before = w.audit().length;
      const stream = client.StreamComplete(truncated, bearerMetadata(token, { traceparent: TRACEPARENT }));
      const streamed = await new Promise<grpc.ServiceError>((resolve, reject) => {
        stream.on('data', () => reject(new Error('expected no data')));
        stream.on('error', resolve);
        stream.on('end', () => reject(new Error('expected an error')));
      });
      await expectRefusal(streamed, before);
      expect(w.logs.join('\n')).not.toContain(CANARY);
    } finally {
      client.close();
    }
  });

  it('gRPC: a group before the message or a string sent with another wire type cannot carry invalid UTF-8 past the check', async () => {
    // protobufjs skips a group unread and reads a known string field whatever its wire type; the
    // UTF-8 walk used to stop at the group, or skip 8 bytes for a fixed64, and give no verdict.
    const ld = (field: number, payload: Buffer) => Buffer.concat([Buffer.from([(field << 3) | 2, payload.length]), payload]);
    const bad = Buffer.concat([Buffer.from('card '), Buffer.from([0xff, 0xfe]), Buffer.from(' end')]);
    const model = ld(1, Buffer.from('gpt-4o-mini'));
    const message = ld(4, Buffer.concat([ld(1, Buffer.from('user')), ld(2, bad)]));
    const group = Buffer.from([(15 << 3) | 3, (15 << 3) | 4]); // unknown field 15: start group, end group
    const eight = Buffer.concat([Buffer.from([7]), Buffer.from('ab'), Buffer.from([0xff, 0xfe]), Buffer.from('cde')]);
    const asFixed64 = ld(4, Buffer.concat([ld(1, Buffer.from('user')), Buffer.from([(2 << 3) | 1]), eight]));
    const identity = (b: Buffer) => b;
    const path = '/warden.v1.PromptGateway/Complete';
    const Raw = grpc.makeGenericClientConstructor(
      { Complete: { path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
      'RawGateway',
    );
    const client = new Raw(w.addresses.grpc, grpc.credentials.createInsecure()) as unknown as {
      Complete(b: Buffer, md: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void): void;
      close(): void;
    };
    const refusal = (bytes: Buffer) =>
      new Promise<grpc.ServiceError>((resolve, reject) =>
        client.Complete(bytes, bearerMetadata(token, { traceparent: TRACEPARENT }), (e) => (e ? resolve(e) : reject(new Error('expected an error')))),
      );
    try {
      const cases: Array<[Buffer, string, string]> = [
        [Buffer.concat([group, model, message]), '$', 'the request message is not a valid warden.v1.PromptRequest (malformed protobuf)'],
        [Buffer.concat([model, asFixed64]), 'messages.0.content', "field 'messages.0.content' is not encoded as its declared type string (wrong protobuf wire type)"],
      ];
      for (const [bytes, param, details] of cases) {
        const before = w.audit().length;
        const err = await refusal(bytes);
        // Not upstream_error: nothing was decoded and sent on to the (down) upstream.
        expect(err.metadata.get('warden-code')[0], param).toBe('invalid_request');
        expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(err.metadata.get('warden-param')[0]).toBe(param);
        expect(err.details).toBe(details);
        await eventually(() => w.audit().length > before);
        expect(w.audit().at(-1)).toMatchObject({ principal: CALLER, status: 'error', error_code: 'invalid_request', trace_id: TRACE_ID });
      }
    } finally {
      client.close();
    }
  });

  it('gRPC: a call refused by the translation (no model) is audited the same way', async () => {
    const gateway = gatewayClient(w.addresses.grpc);
    try {
      const md = bearerMetadata(token, { traceparent: TRACEPARENT });
      const before = w.audit().length;
      const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
        gateway.Complete({ template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: CANARY } }, md, (e: grpc.ServiceError | null) =>
          e ? resolve(e) : reject(new Error('expected an error')),
        ),
      );
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      await eventually(() => w.audit().length > before);
      const rec = w.audit().at(-1)!;
      // Refused after its credentials passed: the caller is named.
      expect(rec).toMatchObject({ principal: PRINCIPAL, status: 'error', error_code: 'invalid_request', trace_id: TRACE_ID, action: 'prompt.execute' });
      expect(JSON.stringify(rec)).not.toContain(CANARY);
    } finally {
      gateway.close();
    }
  });
});
