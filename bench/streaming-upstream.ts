/**
 * The streaming benchmark's upstream: an OpenAI-compatible `POST /v1/chat/completions` that
 * answers `stream: true` with `chat.completion.chunk` SSE events, the way OpenAI streams them:
 * the first event at once (role and the first words), then EVENTS small content events EVERY_MS
 * apart, then a finish_reason chunk and `data: [DONE]`.
 *
 * Run by gateway-server.ts (role `stream-upstream`), so it is its own process with its own event
 * loop, like the gateway benchmark's upstream. The bench steers it over loopback HTTP:
 *   POST /control/mode/paced      stream as above (default)
 *   POST /control/mode/midword    the same, but the first event ends inside a word
 *   POST /control/mode/hold       send the first events (see HOLD_AHEAD), then wait for release
 *   POST /control/mode/burst      send every event at once (warm-up)
 *   POST /control/release         let every held stream finish (answers how many it released)
 * A request without `stream: true` gets the same content as one `chat.completion`, at once.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Content events after the first one, and their spacing. */
export const EVENTS = 50;
export const EVERY_MS = 5;
/** The first content: it ends at a word boundary, so redaction has nothing to hold back. */
export const FIRST_WORDS = 'Summary of the ticket: ';
/** Content events a held stream (mode `hold`) sends after the first before it waits: past the leak guard's window. */
const HOLD_AHEAD = 5;
/** The mid-word variant: redaction holds "Summ" until the next event shows where the word ends. */
export const FIRST_MIDWORD = 'Summ';
const MIDWORD_REST = 'ary of the ticket: ';

/** Token-sized pieces with a leading space, as model tokenisers cut text. */
const WORDS = ['the', 'customer', 'reports', 'a', 'damaged', 'parcel', 'and', 'asks', 'for', 'a', 'callback'];
export function contentEvent(i: number): string {
  return ` ${WORDS[i % WORDS.length]!}`;
}

/** The whole content a finished stream carries, for the bench to check what arrived. */
export function expectedContent(): string {
  let s = FIRST_WORDS;
  for (let i = 0; i < EVENTS; i++) s += contentEvent(i);
  return s;
}

type Mode = 'paced' | 'midword' | 'hold' | 'burst';

function chunk(delta: Record<string, string>, finish: string | null = null): string {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-stream-bench',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  })}\n\n`;
}

const EVENT_TEXT = Array.from({ length: EVENTS }, (_, i) => chunk({ content: contentEvent(i) }));
const COMPLETION = JSON.stringify({
  id: 'chatcmpl-stream-bench',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: expectedContent() }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1000, completion_tokens: EVENTS + 5, total_tokens: 1005 + EVENTS },
});
const FINISH = `${chunk({}, 'stop')}data: [DONE]\n\n`;

export function startStreamingUpstream(ready: (port: number) => void): void {
  let mode: Mode = 'paced';
  const held = new Set<() => void>();

  function rest(res: ServerResponse, paced: boolean, from: number): void {
    if (res.destroyed) return;
    if (from >= EVENTS) {
      res.end(FINISH);
      return;
    }
    if (!paced) {
      res.write(EVENT_TEXT.slice(from).join(''));
      res.end(FINISH);
      return;
    }
    res.write(EVENT_TEXT[from]);
    setTimeout(rest, EVERY_MS, res, true, from + 1);
  }

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/control/')) {
      req.resume();
      req.on('end', () => {
        if (url === '/control/release') {
          const n = held.size;
          for (const go of held) go();
          held.clear();
          res.end(JSON.stringify({ released: n }));
          return;
        }
        const m = /^\/control\/mode\/(paced|midword|hold|burst)$/.exec(url);
        if (!m) {
          res.writeHead(404).end();
          return;
        }
        mode = m[1] as Mode;
        res.end(JSON.stringify({ mode }));
      });
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (!/"stream"\s*:\s*true/.test(body)) {
        // Without `stream: true`: the same content as one chat.completion, at once, so the bench
        // can tell the pipeline's cost from the streaming path's.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(COMPLETION);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const current = mode;
      if (current === 'midword') {
        res.write(chunk({ role: 'assistant', content: FIRST_MIDWORD }));
        // The rest of the first word comes with the next event.
        setTimeout(() => {
          if (res.destroyed) return;
          res.write(chunk({ content: MIDWORD_REST }));
          setTimeout(rest, EVERY_MS, res, true, 0);
        }, EVERY_MS);
        return;
      }
      res.write(chunk({ role: 'assistant', content: FIRST_WORDS }));
      if (current === 'burst') {
        rest(res, false, 0);
        return;
      }
      if (current === 'hold') {
        // The first HOLD_AHEAD events too: the bench template guards a secret, and a stream that
        // does holds back a window as long as the secret can span (32 units here) whatever the
        // text, so the first event alone would never reach the client and no stream would count
        // as open.
        res.write(EVENT_TEXT.slice(0, HOLD_AHEAD).join(''));
        const go = () => rest(res, false, HOLD_AHEAD);
        held.add(go);
        res.once('close', () => held.delete(go));
        return;
      }
      setTimeout(rest, EVERY_MS, res, true, 0);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.maxConnections = 5_000;
  server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port));
}
