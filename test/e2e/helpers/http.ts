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

/**
 * POSTs a JSON body to one of Warden's routes (`/v1/chat/completions`, `/v1/messages`) with
 * `token` as the bearer; resolves with the status and the raw body text.
 */
export async function postRoute(httpBase: string, path: string, body: Record<string, unknown>, token: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${httpBase}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

/** An Anthropic SSE body's events, in order (`event:` name and parsed `data:`). */
export function anthropicEvents(text: string): Array<{ event: string; data: any }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => ({ event: /^event: (.+)$/m.exec(block)?.[1] ?? '', data: JSON.parse(/^data: (.+)$/m.exec(block)?.[1] ?? 'null') }));
}
