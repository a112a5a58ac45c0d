/**
 * Preloaded (`node --import`) into a gateway benchmark server by bench/timeline-gateway.ts: a
 * timeline of each request from Node's and undici's diagnostics channels, the same for any server
 * (the bare proxy and Warden alike), with no change to the server's code.
 *
 *   in          the HTTP server has parsed the request's headers (http.server.request.start)
 *   u_create    the upstream request was created (undici:request:create)
 *   u_write     its headers are about to be written to the socket (undici:client:sendHeaders)
 *   u_sent      headers and body handed to the kernel (undici:request:bodySent)
 *   u_headers   the upstream's answer headers parsed (undici:request:headers)
 *   u_end       the answer complete (undici:request:trailers)
 *   finish      the response to the client written (http.server.response.finish)
 *
 * Only requests that ran alone count (no other request started before this one finished): the
 * timeline is meant for the fixed-rate load, one request at a time. The parent asks for the
 * medians with the IPC message `timeline` (and resets them with `timeline-reset`).
 */
/* global process */
import dc from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

const MARKS = ['in', 'u_create', 'u_write', 'u_sent', 'u_headers', 'u_end', 'finish'];
let current;
let overlapped = false;
let samples = MARKS.map(() => []);

function mark(i) {
  if (current && current[i] === undefined) current[i] = performance.now();
}

dc.subscribe('http.server.request.start', () => {
  overlapped = current !== undefined;
  current = new Array(MARKS.length);
  current[0] = performance.now();
});
dc.subscribe('undici:request:create', () => mark(1));
dc.subscribe('undici:client:sendHeaders', () => mark(2));
dc.subscribe('undici:request:bodySent', () => mark(3));
dc.subscribe('undici:request:headers', () => mark(4));
dc.subscribe('undici:request:trailers', () => mark(5));
dc.subscribe('http.server.response.finish', () => {
  mark(6);
  const done = current;
  const alone = !overlapped;
  current = undefined;
  overlapped = false;
  if (!done || !alone || done.includes(undefined)) return;
  for (let i = 0; i < MARKS.length; i++) samples[i].push((done[i] - done[0]) * 1000);
});

process.on('message', (m) => {
  if (m === 'timeline-reset') {
    samples = MARKS.map(() => []);
  } else if (m === 'timeline') {
    const median = (a) => (a.length === 0 ? Number.NaN : a.slice().sort((x, y) => x - y)[a.length >> 1]);
    process.send?.({ timeline: { count: samples[0].length, marks: Object.fromEntries(MARKS.map((k, i) => [k, median(samples[i])])) } });
  }
});
