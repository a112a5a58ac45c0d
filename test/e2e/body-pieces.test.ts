/**
 * A request body sent in one-byte pieces (chunked transfer coding with one byte per chunk) is held
 * about once, as one sent in a few large pieces is: `limits.max_body_bytes` bounds what a request
 * holds, whatever the pieces. Each piece was kept as a Buffer of its own, ~150 bytes of heap per
 * byte of body (two 1 MB bodies took 314 MB), so a few connections ran `warden serve` out of
 * memory. Here it runs with a small V8 heap and reads four such bodies at once.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnWarden, watchServe } from './helpers/cli.js';
import { writeBytewiseChunked } from './helpers/http.js';
import { DOWN_URL, prepareWardenDir, type PreparedDir } from './helpers/warden.js';
import type { ChildProcess } from 'node:child_process';

let prepared: PreparedDir;
let child: ChildProcess;
let http: URL;
let exited: Promise<number | null>;

beforeAll(async () => {
  prepared = await prepareWardenDir({
    upstreamUrl: DOWN_URL,
    limits: 'limits: { max_body_bytes: 1048576, client_timeout_ms: 60000, upstream_timeout_ms: 5000, shutdown_grace_ms: 500 }',
  });
  child = spawnWarden(['serve', '--config', prepared.configFile], { NODE_OPTIONS: '--max-old-space-size=160' });
  const serve = watchServe(child);
  exited = serve.exited;
  http = new URL((await serve.listening).http);
}, 60_000);

afterAll(async () => {
  child?.kill('SIGTERM');
  await exited;
});

/** Sends `body` in one-byte chunks; resolves with the status line of the answer. */
function postInPieces(token: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(Number(http.port), http.hostname);
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => resolve(answer.split('\r\n')[0]!));
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: warden\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n`);
    writeBytewiseChunked(s, body, false);
  });
}

describe('a request body in one-byte pieces', () => {
  it('is held about once: four bodies of 1,000,000 bytes at once are read and answered within a 160 MB heap', { timeout: 120_000 }, async () => {
    const token = await prepared.signer.token('labs', 'raw-bot');
    // A small request padded with whitespace to 1,000,000 bytes: only the reading is big.
    const head = JSON.stringify({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] }).slice(0, -1);
    const body = `${head}${' '.repeat(1_000_000 - head.length - 1)}}`;
    const answers = await Promise.all(Array.from({ length: 4 }, () => postInPieces(token, body)));
    expect(answers).toEqual(Array(4).fill('HTTP/1.1 200 OK'));
  });
});
