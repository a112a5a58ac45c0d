/**
 * A model name is the caller's data until it matches a configured model: one that does not is
 * never repeated back (HTTP error bodies, `/v1/models/{id}`, gRPC status) nor written to the audit
 * record, and a name holding control characters is refused at the door on every ingress.
 * Configured names are named.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARD_LEAK } from './helpers/canaries.js';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import type { WardenFixture } from './helpers/warden.js';

const PII_MODEL = 'Customer CANARY-PII-jane.doe@example.com card 4111 1111 1111 1111';
const CONTROL_MODELS = ['gpt-4o-mini\n', 'echo\u001b[31mred', 'a\u0000b', 'x\u0085y', 'echo\u2028', 'rtl\u202egpt'];
const GOVERNED = { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hi' } };

let g: GatewayWarden;
let w: WardenFixture;
let gateway: any;
let token: string;

beforeAll(async () => {
  g = await startGatewayWarden();
  ({ w, token, gateway } = g);
});

afterAll(async () => {
  await g?.close();
});

function recordFor(requestId: string | null): Record<string, any> {
  const matches = w.audit().filter((r) => r.request_id === requestId);
  expect(matches, String(requestId)).toHaveLength(1);
  return matches[0]!;
}

function grpcError(method: string, request: object): Promise<grpc.ServiceError> {
  return unaryCall(gateway, method, request, bearerMetadata(token)).then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: grpc.ServiceError) => err,
  );
}

describe('a model name that is not configured', () => {
  it('HTTP: refused without repeating it, audited with model null', async () => {
    const res = await postChat(w.addresses.http, token, { model: PII_MODEL, warden: GOVERNED });
    const text = await res.text();
    expect(res.status).toBe(403);
    expect(JSON.parse(text).error).toMatchObject({ code: 'model_not_allowed', param: 'model' });
    expect(text).not.toContain('CANARY');
    expect(text).not.toMatch(CARD_LEAK);
    const rec = recordFor(res.headers.get('x-request-id'));
    expect(rec).toMatchObject({ status: 'error', error_code: 'model_not_allowed', model: null });
    expect(JSON.stringify(rec)).not.toContain('CANARY');
  });

  it('GET /v1/models/{id}: 404 without repeating it', async () => {
    const res = await fetch(`${w.addresses.http}/v1/models/${encodeURIComponent(PII_MODEL)}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    expect(res.status).toBe(404);
    expect(JSON.parse(text).error.code).toBe('not_found');
    expect(text).not.toContain('CANARY');
    expect(JSON.stringify(recordFor(res.headers.get('x-request-id')))).not.toContain('CANARY');
  });

  it('gRPC: PERMISSION_DENIED without repeating it, audited with model null', async () => {
    const before = w.audit().length;
    const err = await grpcError('Complete', { model: PII_MODEL, template: { id: 'support/ticket-summary', version: 2 }, variables: GOVERNED.variables });
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.metadata.get('warden-code')).toEqual(['model_not_allowed']);
    expect(err.details).not.toContain('CANARY');
    const records = w.audit().slice(before);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ error_code: 'model_not_allowed', model: null });
  });

  it('a configured model is still named in the audit record', async () => {
    const res = await postChat(w.addresses.http, token, { model: 'echo', warden: GOVERNED });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(recordFor(res.headers.get('x-request-id')).model).toBe('echo');
  });
});

describe('a model name holding control characters', () => {
  for (const model of CONTROL_MODELS) {
    const label = model.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    it(`${label}: invalid_request on chat, messages, models and gRPC, never repeated`, async () => {
      const chat = await postChat(w.addresses.http, token, { model, warden: GOVERNED });
      const chatText = await chat.text();
      expect(chat.status).toBe(400);
      expect(JSON.parse(chatText).error).toMatchObject({ code: 'invalid_request', param: 'model' });
      expect(recordFor(chat.headers.get('x-request-id'))).toMatchObject({ error_code: 'invalid_request', model: null });

      const messages = await fetch(`${w.addresses.http}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', authorization: `Bearer ${token}` },
        body: JSON.stringify({ model, max_tokens: 16, messages: [], warden: GOVERNED }),
      });
      const messagesText = await messages.text();
      expect(messages.status).toBe(400);
      expect(JSON.parse(messagesText).error).toMatchObject({ code: 'invalid_request', param: 'model' });

      const retrieve = await fetch(`${w.addresses.http}/v1/models/${encodeURIComponent(model)}`, { headers: { authorization: `Bearer ${token}` } });
      const retrieveText = await retrieve.text();
      expect(retrieve.status).toBe(400);
      expect(JSON.parse(retrieveText).error.code).toBe('invalid_request');

      const err = await grpcError('Complete', { model, template: { id: 'support/ticket-summary', version: 2 }, variables: GOVERNED.variables });
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get('warden-code')).toEqual(['invalid_request']);
      expect(err.metadata.get('warden-param')).toEqual(['model']);

      for (const text of [chatText, messagesText, retrieveText, err.details]) {
        expect(text).not.toMatch(/[\p{Cc}\u2028\u202e]/u);
        expect(text).not.toContain('red');
      }
    });
  }
});
