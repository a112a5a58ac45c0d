/**
 * A request refused for its body is answered in its route's error shape and audited once, and its
 * record names the caller when its credentials passed (they are checked before the body is read).
 * A body whose chunked framing is broken is the handler's refusal too: it used to get a raw
 * `HTTP/1.1 400` with no error body nor request id, also when its credentials had failed (a 400
 * whose record said `unauthenticated`), and its record said `principal: null` (or `cancelled`)
 * when they had passed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOWN_URL, eventually, startWarden, type WardenFixture } from './helpers/warden.js';
import { sendRaw, rawHeader, rawError } from './helpers/http.js';

const CANARY = 'CANARY-BODY-7d1e0c';
const PRINCIPAL = { kind: 'kubernetes', namespace: 'support', service_account: 'ticket-bot' };

let w: WardenFixture;
let token: string;

beforeAll(async () => {
  w = await startWarden({ upstreamUrl: DOWN_URL });
  token = await w.signer.token('support', 'ticket-bot');
});

afterAll(async () => {
  await w?.close();
});

/** The one record of `requestId`, once written. */
async function recordOf(requestId: string | undefined): Promise<Record<string, any>> {
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  await eventually(() => w.audit().some((r) => r.request_id === requestId));
  const records = w.audit().filter((r) => r.request_id === requestId);
  expect(records).toHaveLength(1);
  return records[0]!;
}

const ROUTES = ['/v1/chat/completions', '/v1/messages'] as const;

function chunkedHead(path: string, auth: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n${auth}\r\n`;
}

// A chunk of the body, then a chunk size that is not hex: the parser cannot go on.
const BROKEN = `${(CANARY.length + 14).toString(16)}\r\n{"content":"${CANARY}"\r\nzz\r\n`;

describe('a body refused after the credentials passed is recorded with the caller', () => {
  for (const path of ROUTES) {
    it(`${path}: malformed JSON is 400 invalid_request, recorded with the principal`, async () => {
      const res = await fetch(`${w.addresses.http}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'x-api-key': token, 'content-type': 'application/json' },
        body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${CANARY}"`,
      });
      expect(res.status).toBe(400);
      const rec = await recordOf(res.headers.get('x-request-id') ?? undefined);
      expect(rec).toMatchObject({ principal: PRINCIPAL, status: 'error', error_code: 'invalid_request', decision: null, prompt_hmac: null });
      expect(JSON.stringify(rec)).not.toContain(CANARY);
    });

    it(`${path}: a chunked body over max_body_bytes is 413, recorded with the principal`, async () => {
      // No Content-Length: the size is only known as the body arrives, after the credentials.
      const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${CANARY}${'x'.repeat(70_000)}"}]}`;
      const answer = await sendRaw(w.addresses.http, `${chunkedHead(path, `Authorization: Bearer ${token}\r\n`)}${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
      expect(answer.startsWith('HTTP/1.1 413 '), answer.slice(0, 80)).toBe(true);
      expect(rawError(answer)).toMatchObject({ code: 'payload_too_large' });
      const rec = await recordOf(rawHeader(answer, 'x-request-id'));
      expect(rec).toMatchObject({ principal: PRINCIPAL, status: 'error', error_code: 'payload_too_large' });
    });
  }
});

describe('GET /v1/models/{id} with an id no model can have', () => {
  // Refused before the pipeline, it was recorded with `principal: null` whoever asked.
  const BAD_ID = encodeURIComponent(`bad id ${CANARY}\n`);

  it('is 400 invalid_request at model, recorded once with the authenticated caller', async () => {
    const res = await fetch(`${w.addresses.http}/v1/models/${BAD_ID}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_request', param: 'model' });
    const rec = await recordOf(res.headers.get('x-request-id') ?? undefined);
    expect(rec).toMatchObject({ principal: PRINCIPAL, action: 'models.list', status: 'error', error_code: 'invalid_request', model: null });
    expect(JSON.stringify(rec)).not.toContain(CANARY);
  });

  it('with credentials that fail, is 401 unauthenticated (credentials first, as for a body), recorded once so', async () => {
    const records = w.audit().length;
    const res = await fetch(`${w.addresses.http}/v1/models/${BAD_ID}`, { headers: { authorization: 'Bearer not-a-token' } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    const rec = await recordOf(res.headers.get('x-request-id') ?? undefined);
    expect(rec).toMatchObject({ principal: null, action: 'models.list', error_code: 'unauthenticated' });
    expect(w.audit().length).toBe(records + 1);
  });
});

describe('a broken chunked framing is answered by its route, in its shape, and audited once', () => {
  for (const path of ROUTES) {
    for (const [name, auth] of [
      ['an invalid token', 'Authorization: Bearer not-a-token\r\n'],
      ['no credentials', ''],
    ] as const) {
      it(`${path}: with ${name}, 401 unauthenticated with a request id (not a raw 400), recorded so`, async () => {
        const records = w.audit().length;
        const answer = await sendRaw(w.addresses.http, `${chunkedHead(path, auth)}${BROKEN}`);
        expect(answer.startsWith('HTTP/1.1 401 '), answer.slice(0, 80)).toBe(true);
        expect(rawHeader(answer, 'connection')).toBe('close');
        expect(rawError(answer)).toMatchObject({ code: 'unauthenticated' });
        const rec = await recordOf(rawHeader(answer, 'x-request-id'));
        expect(rec).toMatchObject({ principal: null, status: 'error', error_code: 'unauthenticated' });
        expect(w.audit().length).toBe(records + 1);
      });
    }

    it(`${path}: with valid credentials, 400 invalid_request at $ with a request id, recorded with the principal`, async () => {
      const records = w.audit().length;
      const answer = await sendRaw(w.addresses.http, `${chunkedHead(path, `Authorization: Bearer ${token}\r\n`)}${BROKEN}`);
      expect(answer.startsWith('HTTP/1.1 400 '), answer.slice(0, 80)).toBe(true);
      expect(rawHeader(answer, 'connection')).toBe('close');
      expect(rawError(answer)).toMatchObject({ code: 'invalid_request', message: 'the request body is not valid HTTP/1.1 framing' });
      const rec = await recordOf(rawHeader(answer, 'x-request-id'));
      expect(rec).toMatchObject({ principal: PRINCIPAL, status: 'error', error_code: 'invalid_request' });
      expect(w.audit().length).toBe(records + 1);
      expect(JSON.stringify(rec)).not.toContain(CANARY);
    });
  }

  it('nothing of the bodies nor the token is in a record or a log line', () => {
    const text = JSON.stringify(w.audit());
    expect(text).not.toContain(CANARY);
    expect(text).not.toContain(token);
    const logs = w.logs.join('\n');
    expect(logs).not.toContain(CANARY);
    expect(logs).not.toContain(token);
  });
});
