/**
 * Preloaded (`--import`) into a `warden serve` child by tests that need libuv's thread pool held,
 * as a dead network mount or other blocked file calls hold it in production. On the IPC message
 * `{ stall: [fifo paths] }` it opens each FIFO for reading: each open holds one pool thread in
 * open(2) until a writer opens the FIFO (the test does, to release it). It answers
 * `{ stalled: n }` at once, and `{ released: n }` once every open returned and was closed.
 * Nothing of Warden is touched: its own file calls simply queue behind these.
 */
import { open } from 'node:fs/promises';

process.on('message', (msg: { stall?: unknown }) => {
  if (!Array.isArray(msg?.stall)) return;
  const opens = (msg.stall as string[]).map((path) => open(path, 'r').then((h) => h.close()));
  process.send!({ stalled: opens.length });
  void Promise.all(opens).then(() => process.send!({ released: opens.length }));
});
// The IPC channel must not keep the server alive after it was told to stop.
process.channel?.unref();
