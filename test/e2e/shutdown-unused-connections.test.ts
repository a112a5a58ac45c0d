/**
 * A connection with nothing under way must not hold the drain. After an aborted request, undici
 * (the global fetch, and the openai SDK on it) opens a spare connection that sends nothing until
 * its next request; Node's closeIdleConnections keeps such a connection (to Node it is a request
 * whose headers are due) and `server.close()` stops the header deadline, so `warden serve` waited
 * out the whole of shutdown_grace_ms with nothing in flight. Here the grace period is 20 s and the
 * test's own timeout (the drain only: the start and the clients are set up before it) is well
 * below it: the drain must end because nothing is left to drain. The same holds for a gRPC
 * connection that never sent its HTTP/2 preface (grpc-js waits for its session to end).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMain, spawnWarden, watchServe } from './helpers/cli.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

const CLIENT = fileURLToPath(new URL('./fixtures/clients/aborting-client.ts', import.meta.url));

let upstream: FakeUpstream;
let prepared: PreparedDir;
let warden: ChildProcess;
let serve: ReturnType<typeof watchServe>;
const clients: ChildProcess[] = [];
let spare: Socket;
let grpcSpare: Socket;

/** Starts an aborting client (fixtures/clients/aborting-client.ts) in a process of its own. */
function abortingClient(http: string, token: string, kind: string): { child: ChildProcess; aborted: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CLIENT, http, token, kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  clients.push(child);
  const aborted = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'aborted' && resolve());
    child.once('exit', (code) => reject(new Error(`client ${kind} exited (${String(code)}) before aborting`)));
  });
  return { child, aborted };
}

// The start and four clients in processes of their own take a while on a busy machine: they are
// set up here, so that the test's timeout bounds the drain alone.
beforeAll(async () => {
  upstream = await startUpstream();
  prepared = await prepareWardenDir({
    upstreamUrl: upstream.url,
    limits: 'limits: { client_timeout_ms: 10000, upstream_timeout_ms: 60000, shutdown_grace_ms: 20000 }',
  });
  warden = spawnWarden(['serve', '--config', prepared.configFile]);
  serve = watchServe(warden);
  const addr = await serve.listening;
  const token = await prepared.signer.token('support', 'ticket-bot');
  // Calls that are not streamed, aborted while the upstream holds them.
  upstream.mode = 'slow';
  const callers = ['fetch-call', 'openai-call'].map((kind) => abortingClient(addr.http, token, kind));
  await eventually(() => upstream.calls.length === 2, 5);
  for (const c of callers) c.child.stdin!.write('abort\n');
  await Promise.all(callers.map((c) => c.aborted));
  // Streams, aborted after two chunks.
  upstream.mode = 'stream-slow';
  await Promise.all(['fetch-stream', 'openai-stream'].map((kind) => abortingClient(addr.http, token, kind).aborted));
  // A connection that has not sent a byte (a pool's spare, a preconnect): the same case, without
  // depending on what a client library does after an abort.
  const url = new URL(addr.http);
  spare = connect({ host: url.hostname, port: Number(url.port) });
  spare.on('error', () => undefined);
  await new Promise<void>((resolve) => spare.once('connect', () => resolve()));
  // The same on the gRPC port: a connection that never sent its HTTP/2 preface, and does not read
  // what Warden sends (its SETTINGS, then the GOAWAY). Node's session then never ends, and grpc-js's
  // graceful close waited for it until the preface deadline (client_timeout_ms, 10 s here).
  const g = addr.grpc.lastIndexOf(':');
  grpcSpare = connect({ host: addr.grpc.slice(0, g), port: Number(addr.grpc.slice(g + 1)) });
  grpcSpare.on('error', () => undefined);
  await new Promise<void>((resolve) => grpcSpare.once('connect', () => resolve()));
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.kill();
  warden?.kill('SIGKILL');
  spare?.destroy();
  grpcSpare?.destroy();
  await upstream?.close();
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

describe('the drain with connections that carry nothing', () => {
  it('ends at once after fetch and openai clients in other processes aborted streams and calls, and with connections that sent nothing to the HTTP and gRPC ports', { timeout: 10_000 }, async () => {
    const spareClosed = new Promise<void>((resolve) => spare.once('close', () => resolve()));
    warden.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    await spareClosed;
    const complete = serve.lines.find((l) => l.includes('"shutdown complete"'));
    expect(complete && JSON.parse(complete)).toMatchObject({ outcome: 'drained', lost_records: 0 });
    expect(serve.lines.some((l) => l.includes('grace period over'))).toBe(false);
    // The four requests were audited as the clients leaving, and the chain verifies.
    const records = readFileSync(prepared.auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => [r['stream'], r['error_code']])).toEqual([
      [false, 'cancelled'],
      [false, 'cancelled'],
      [true, 'cancelled'],
      [true, 'cancelled'],
    ]);
    expect((await runMain(['audit', 'verify', prepared.auditFile])).code).toBe(0);
  });
});
