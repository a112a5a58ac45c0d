/** Plain-HTTP calls to Warden's OpenAI-compatible listener, for tests that do not use the SDK. */
import { connect, type Socket } from 'node:net';

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

/**
 * Sends raw bytes to the HTTP listener at `httpBase` and resolves with the whole answer (as
 * latin1) once the server closes the connection: a server that waits for bytes never sent (a
 * body a head announces) leaves it pending, and the test's timeout fails it. `halfClose`: end
 * the sending side after the bytes, as a client that has nothing more to send.
 */
export function sendRaw(httpBase: string, text: string, halfClose = false): Promise<string> {
  const { hostname, port } = new URL(httpBase);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => (halfClose ? socket.end(text) : socket.write(text)));
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.once('error', reject);
    socket.once('close', () => resolve(out));
  });
}

/** A header's value in a raw HTTP answer (sendRaw's), by its lower-case name. */
export function rawHeader(answer: string, name: string): string | undefined {
  const head = answer.slice(0, answer.indexOf('\r\n\r\n'));
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name}:`));
  return line?.slice(name.length + 1).trim();
}

/** The error object of a raw HTTP answer's JSON body, in either route's shape (OpenAI's `error`, Anthropic's `error` under `type: error`). */
export function rawError(answer: string): Record<string, unknown> {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error;
}
