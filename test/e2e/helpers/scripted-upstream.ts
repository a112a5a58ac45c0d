/**
 * A loopback OpenAI-compatible upstream that answers exactly what a test scripts: the current
 * `completion()` to a call, the current `chunks()` (as SSE events, then `[DONE]`) to a streamed
 * one. For tests of what Warden does with an upstream's answer, whatever its shape.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedUpstream {
  /** The base URL a provider's `base_url` takes (`http://127.0.0.1:PORT/v1`). */
  url: string;
  close(): Promise<void>;
}

export async function startScriptedUpstream(completion: () => unknown, chunks: () => readonly unknown[]): Promise<ScriptedUpstream> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      if ((JSON.parse(body) as { stream?: boolean }).stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const c of chunks()) res.write(`data: ${JSON.stringify(c)}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(completion()));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
