/** Plain-HTTP calls to Warden's OpenAI-compatible listener, for tests that do not use the SDK. */

/**
 * POSTs to `/v1/chat/completions` under `httpBase` with `token` as the bearer. An object body is
 * sent as JSON; a string or Buffer is sent as it is (malformed-input tests).
 */
export function postChat(httpBase: string, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${httpBase}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
}
