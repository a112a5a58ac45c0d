/**
 * One server of the gateway benchmark, run as its own process so it has its own event loop (and
 * does not share one with the load generator):
 *
 *   upstream            an OpenAI-compatible upstream that answers at once
 *   proxy <port>        a bare pass-through proxy to the upstream (undici Pool, keep-alive)
 *   warden <config>     Warden itself, built from the config file
 *   stream-upstream     an upstream that streams SSE chunks (bench/streaming-upstream.ts)
 *
 * Prints one JSON line `{"port": N}` when listening, then runs until stdin closes.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { Pool } from 'undici';

const role = process.argv[2];
const arg = process.argv[3];

function ready(port: number): void {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

// The parent asks for our CPU time over IPC: CPU per request is the overhead measure that a
// shared, noisy host distorts least.
process.on('message', () => process.send?.(process.cpuUsage()));

// The parent closes our stdin when the run is over.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

const UPSTREAM_BODY = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Three bullet points.' }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1000, completion_tokens: 5, total_tokens: 1005 },
});

if (role === 'upstream') {
  const server = createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(UPSTREAM_BODY) });
      res.end(UPSTREAM_BODY);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port));
} else if (role === 'proxy') {
  const pool = new Pool(`http://127.0.0.1:${arg}`, { connections: 64, pipelining: 1 });
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      pool
        .request({
          path: req.url ?? '/',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
          body,
        })
        .then(async (up) => {
          const out = Buffer.from(await up.body.arrayBuffer());
          res.writeHead(up.statusCode, { 'content-type': 'application/json', 'content-length': out.length });
          res.end(out);
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port));
} else if (role === 'warden') {
  const { loadConfig } = await import('../src/config/load.js');
  const { createRuntime } = await import('../src/runtime/runtime.js');
  const { createLogger } = await import('../src/telemetry/logger.js');
  const file = arg as string;
  const config = loadConfig(file, {});
  const logger = createLogger({ level: 'error' });
  const runtime = await createRuntime(config, { logger, watch: false, configDir: dirname(file) });
  const addresses = await runtime.start();
  ready(Number(new URL(addresses.http).port));
} else if (role === 'stream-upstream') {
  // The streaming benchmark's SSE upstream (bench/streaming.ts).
  const { startStreamingUpstream } = await import('./streaming-upstream.js');
  startStreamingUpstream(ready);
} else {
  process.stderr.write(`unknown role ${String(role)}\n`);
  process.exit(2);
}
