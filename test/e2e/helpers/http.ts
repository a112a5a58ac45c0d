/** Plain-HTTP calls to Warden's OpenAI-compatible listener, for tests that do not use the SDK. */
import type { Socket } from 'node:net';

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

/**
 * Writes `body` to `socket` in chunked transfer coding with one byte (one UTF-16 unit, the tests'
 * bodies are ASCII) per chunk, in blocks of many chunks so it is quick to send, honouring
 * backpressure; then the last chunk, ending the socket's writing side when `end` is true.
 */
export function writeBytewiseChunked(socket: Socket, body: string, end: boolean): void {
  const BLOCK = 8192;
  let at = 0;
  const next = (): void => {
    while (at < body.length) {
      let block = '';
      for (const c of body.slice(at, at + BLOCK)) block += `1\r\n${c}\r\n`;
      at += BLOCK;
      if (!socket.write(block)) return void socket.once('drain', next);
    }
    if (end) socket.end('0\r\n\r\n');
    else socket.write('0\r\n\r\n');
  };
  next();
}
