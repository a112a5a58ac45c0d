/**
 * The app listener's node:http limits. Node gives the header block its own deadline
 * (`headersTimeout`, by default 60 s or `requestTimeout` if smaller): unless Warden sets it, a
 * client trickling its headers is refused at 60 s whatever `client_timeout_ms` says, with a message
 * naming the configured figure.
 */
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { parserRefusal, serverOptions } from '../../src/server/http.js';

describe('the app listener options', () => {
  for (const requestTimeoutMs of [500, 120_000, 600_000]) {
    it(`give the header block client_timeout_ms (${requestTimeoutMs} ms) as the whole request`, () => {
      const server = createServer(serverOptions({ maxHeaderBytes: 16_384, requestTimeoutMs, idleTimeoutMs: 65_000 }));
      expect(server.headersTimeout).toBe(requestTimeoutMs + 1_000);
      expect(server.requestTimeout).toBe(requestTimeoutMs + 1_000);
    });
  }

  it('name the setting in the refusal of headers that never end', () => {
    const refusal = parserRefusal('ERR_HTTP_REQUEST_TIMEOUT', { maxHeaderBytes: 16_384, requestTimeoutMs: 120_000 });
    expect(refusal?.status).toBe(408);
    expect(refusal?.error.code).toBe('request_timeout');
    expect(refusal?.error.message).toBe("the request's headers did not arrive within limits.client_timeout_ms (120000 ms)");
  });
});
