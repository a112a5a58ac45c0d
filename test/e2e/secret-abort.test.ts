/**
 * A client that leaves while its request waits (here: authentication, on a JWKS that has not
 * answered yet), for a template whose granted secret cannot be read, must cost that request
 * only: it is audited `cancelled`, and the process keeps serving. It once ended the whole
 * process with an unhandled rejection from the secret fetch nobody waited for any more.
 * `warden serve` runs as a real child process, so an unhandled rejection would end it. Today the
 * pipeline stops such a request before its fetch stage starts (it checks the request's signal
 * before each stage), so this guards the whole path end to end; the resolver's own handling of a
 * request that leaves during a fetch is test/secrets/abort.test.ts's.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnWarden, watchServe } from './helpers/cli.js';
import { bearerMetadata, gatewayClient } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { eventually, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

let prepared: PreparedDir;
let jwks: Server;
/** JWKS requests held until `release` answers them (later ones are answered at once). */
const held: ServerResponse[] = [];
let released = false;

function release(): void {
  released = true;
  for (const res of held.splice(0)) answerJwks(res);
}

function answerJwks(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(prepared.signer.jwks));
}

beforeAll(async () => {
  jwks = createServer((_req, res) => (released ? answerJwks(res) : void held.push(res)));
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
  // Every model goes to the echo provider: the request never needs an upstream.
  prepared = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1', models: 'models: { gpt-4o-mini: echo, echo: echo, down-model: echo }' });
  const config = readFileSync(prepared.configFile, 'utf8').replace('jwks_file: jwks.json', `jwks_url: "${jwksUrl}"`);
  writeFileSync(prepared.configFile, config);
  // The secret ops/incident-brief needs is missing: its fetch fails.
  rmSync(join(prepared.dir, 'secrets', 'escalation-code'));
});

afterAll(async () => {
  release();
  await new Promise((r) => jwks?.close(r));
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

const BRIEF = { model: 'gpt-4o-mini', warden: { template: 'ops/incident-brief@1', variables: { service: 'db' } } };

function auditRecords(): Array<Record<string, any>> {
  let text = '';
  try {
    text = readFileSync(prepared.auditFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, any>);
}

describe('a client that leaves while its secret is failing', () => {
  it('is audited cancelled (HTTP reset, gRPC deadline) and the process answers the next request', { timeout: 60_000 }, async () => {
    const child = spawnWarden(['serve', '--config', prepared.configFile]);
    const { lines, listening, exited } = watchServe(child);
    let exitCode: number | null | undefined;
    void exited.then((code) => (exitCode = code));
    try {
      const addr = await listening;
      const token = await prepared.signer.token('support', 'ticket-bot');
      // The gRPC channel is connected before either request is sent: on a loaded machine the call's
      // 300 ms deadline could otherwise pass while it connects, the call never reaching Warden (no
      // record, and the wait below for two records never ends).
      const client = gatewayClient(addr.grpc);
      await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 30_000, (err?: Error) => (err ? reject(err) : resolve())));

      // HTTP: send the request, then reset the connection while authentication waits.
      const url = new URL(addr.http);
      const body = JSON.stringify(BRIEF);
      const socket = connect({ host: url.hostname, port: Number(url.port) }, () => {
        socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      });
      socket.on('error', () => undefined);
      // gRPC: the same request with a deadline that passes while authentication waits.
      const grpcFailed = new Promise<grpc.ServiceError | null>((resolve) =>
        client.Complete(
          { template: { id: 'ops/incident-brief', version: 1 }, model: 'gpt-4o-mini', variables: { service: 'db' } },
          bearerMetadata(token),
          { deadline: Date.now() + 300 },
          (err: grpc.ServiceError | null) => resolve(err),
        ),
      );
      await eventually(() => held.length >= 1);
      socket.resetAndDestroy();
      expect((await grpcFailed)?.code).toBe(grpc.status.DEADLINE_EXCEEDED);

      // Authentication goes on, then the secret fetch fails for callers who are gone.
      release();
      await eventually(() => auditRecords().length >= 2 || exitCode !== undefined);
      // The failed fetch settles just after those records: give an unhandled rejection its time.
      await new Promise((r) => setTimeout(r, 200));
      expect(exitCode).toBeUndefined();

      // Still serving: the next request gets its own answer (the secret is still missing).
      const next = await postChat(addr.http, token, BRIEF);
      expect(next.status).toBe(503);
      expect(((await next.json()) as { error: { code: string } }).error.code).toBe('secret_unavailable');
      expect(exitCode).toBeUndefined();
      expect(auditRecords().map((r) => r.error_code)).toEqual(['cancelled', 'cancelled', 'secret_unavailable']);
      expect(lines.join('\n')).not.toMatch(/unhandled/i);
    } finally {
      if (exitCode === undefined) {
        child.kill('SIGTERM');
        await exited;
      }
    }
  });
});
