/**
 * The ingress reads its few headers from rawHeaders instead of req.headers; what it reads must be
 * exactly what req.headers would have given. Checked against node's own parser: raw requests with
 * odd casing, duplicates and unrelated headers go to a real server on loopback, whose handler
 * compares the two.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingressHeaders } from '../../src/server/headers.js';

const NAMES = {
  authorization: 'authorization',
  contentLength: 'content-length',
  contentEncoding: 'content-encoding',
  transferEncoding: 'transfer-encoding',
  traceparent: 'traceparent',
  template: 'x-warden-template',
  variables: 'x-warden-variables',
  apiKey: 'x-api-key',
} as const;

let seen: IncomingMessage[] = [];
const server = createServer((req, res) => {
  seen.push(req);
  req.resume();
  req.on('end', () => res.end('ok'));
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function send(headerLines: string[], body = '{}'): Promise<IncomingMessage> {
  seen = [];
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      // A transfer coding frames the body in chunks (node refuses it beside a Content-Length).
      const chunked = headerLines.some((l) => l.toLowerCase().startsWith('transfer-encoding:'));
      const framed = chunked ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${headerLines.map((l) => `${l}\r\n`).join('')}${chunked ? '' : `Content-Length: ${body.length}\r\n`}Connection: close\r\n\r\n${framed}`);
    });
    s.on('data', () => {});
    s.on('error', reject);
    s.on('close', () => (seen[0] ? resolve(seen[0]) : reject(new Error('no request'))));
  });
}

describe('ingressHeaders', () => {
  const cases: Array<[string, string[]]> = [
    ['none of ours', ['X-Stainless-Lang: js', 'User-Agent: OpenAI/JS 4.0', 'Accept: application/json']],
    ['all, canonical casing', ['Authorization: Bearer tok', 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'X-Warden-Template: support/ticket@2', 'X-Warden-Variables: {"a":"b"}', 'X-Api-Key: sk-ant', 'Content-Encoding: gzip']],
    ['odd casing', ['aUtHoRiZaTiOn: Bearer odd', 'TRACEPARENT: 00-abc', 'x-WARDEN-template: t@1', 'X-API-KEY: k', 'CONTENT-encoding: br']],
    ['duplicates', ['Authorization: Bearer first', 'Authorization: Bearer second', 'x-warden-template: a@1', 'X-Warden-Template: b@2', 'traceparent: one', 'traceparent: two', 'x-api-key: k1', 'x-api-key: k2', 'content-encoding: identity', 'Content-Encoding: gzip']],
    ['same lengths, other names', ['authorizatioN2: no', 'x-warden-templatE: yes', 'traceparenx: no', 'x-api-kez: no', 'x-warden-variablez: no', 'content-lengtx: no', 'content-language: en', 'content-encodinx: no']],
    ['empty values', ['Authorization:', 'x-warden-variables:', 'traceparent: ']],
    ['a transfer coding, in odd casing, beside x-warden-template (the same length)', ['TRANSFER-encoding: gzip', 'Transfer-Encoding: chunked', 'X-Warden-Template: t@1', 'x-forwarded-prot: no']],
  ];
  for (const [name, lines] of cases) {
    it(`reads what req.headers would: ${name}`, async () => {
      const req = await send(lines);
      const got = ingressHeaders(req.rawHeaders);
      for (const [field, header] of Object.entries(NAMES)) {
        const expected = req.headers[header];
        expect(got[field as keyof typeof NAMES], `${field} (${header})`).toBe(Array.isArray(expected) ? expected.join(', ') : expected);
      }
    });
  }

  it('found the values the cases were written to test', async () => {
    const got = ingressHeaders((await send(['Authorization: Bearer first', 'Authorization: Bearer second', 'x-warden-template: a@1', 'X-Warden-Template: b@2'])).rawHeaders);
    expect(got).toMatchObject({ authorization: 'Bearer first', template: 'a@1, b@2', contentLength: '2' });
  });

  it('marks a credential header sent more than once, which the value alone would hide', async () => {
    const twice = ingressHeaders((await send(['Authorization: Bearer a', 'authorization: Bearer a', 'x-api-key: k', 'X-API-KEY: k'])).rawHeaders);
    expect(twice).toMatchObject({ authorization: 'Bearer a', authorizationRepeated: true, apiKey: 'k, k', apiKeyRepeated: true });
    const once = ingressHeaders((await send(['Authorization: Bearer a', 'x-api-key: k', 'traceparent: one', 'traceparent: two'])).rawHeaders);
    expect(once.authorizationRepeated).toBeUndefined();
    expect(once.apiKeyRepeated).toBeUndefined();
  });

  it("marks a browser's request (Origin, in any casing) as relayed, unless a proxy header came first; accept, of Origin's length, is not it", async () => {
    for (const line of ['Origin: https://evil.example', 'ORIGIN: null', 'oRiGiN: http://127.0.0.1:8700']) {
      expect(ingressHeaders((await send(['Accept: application/json', line])).rawHeaders).relayHeader, line).toBe('origin');
    }
    expect(ingressHeaders((await send(['Via: 1.1 proxy', 'Origin: https://evil.example'])).rawHeaders).relayHeader).toBe('via');
    expect(ingressHeaders((await send(['Accept: application/json', 'Cookie: a=b', 'Originx: no', 'Origi: no'])).rawHeaders).relayHeader).toBeUndefined();
  });
});
