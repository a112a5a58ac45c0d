/**
 * A listener that cannot bind stops the start with one line naming its config key, the address
 * and the reason in words: not Node's or grpc-js's bare `listen EADDRINUSE`, and no grpc-js log
 * line of its own next to it. Spawned as the real CLI, since what reaches stderr is the point.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWarden } from './helpers/cli.js';
import { prepareWardenDir, type PreparedDir } from './helpers/warden.js';

let dir: PreparedDir;
let holder: Server;
let port: number;

beforeAll(async () => {
  dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
  holder = createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  port = (holder.address() as { port: number }).port;
});

afterAll(() => {
  holder?.close();
  if (dir) rmSync(dir.dir, { recursive: true, force: true });
});

/** Runs `warden serve` with the fixture's `listen:` line replaced by `listen`. */
async function serveWith(listen: string): Promise<{ code: number | null; stderr: string }> {
  const config = join(dir.dir, `listen-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(config, readFileSync(dir.configFile, 'utf8').replace(/^listen: .*$/m, listen));
  const { code, stderr } = await runWarden(['serve', '--config', config]);
  return { code, stderr };
}

describe('a listener that cannot bind', () => {
  for (const key of ['http', 'grpc', 'admin'] as const) {
    it(`listen.${key} on a port in use: names the key, the address and the reason`, { timeout: 30_000 }, async () => {
      const others = (['http', 'grpc', 'admin'] as const).filter((k) => k !== key).map((k) => `${k}: 127.0.0.1:0`);
      const r = await serveWith(`listen: { ${key}: 127.0.0.1:${port}, ${others.join(', ')} }`);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`warden: listen.${key}: cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE)\n`);
    });
  }

  for (const key of ['http_socket', 'grpc_socket'] as const) {
    it(`listen.${key} in a directory that does not exist: says so`, { timeout: 30_000 }, async () => {
      const missing = join(dir.dir, 'no-such-dir');
      const r = await serveWith(`listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, ${key}: "${join(missing, 'w.sock')}" }`);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`warden: listen.${key}: cannot listen on ${join(missing, 'w.sock')}: the directory ${missing} does not exist\n`);
    });
  }
});
