/**
 * Unix domain socket listeners (HTTP and gRPC) with the `dev` identity, which accepts only local
 * peers; and the header-size limit enforced by the HTTP parser.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayClient, unaryCall } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, startWarden, type WardenFixture } from './helpers/warden.js';

let upstream: FakeUpstream;
let w: WardenFixture;

function overSocket(socketPath: string, body: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  upstream = await startUpstream();
  // The socket paths go in the fixture's temp dir; `dev` acts as support/ticket-bot for local peers.
  w = await startWarden({
    upstreamUrl: upstream.url,
    methods: '[kubernetes, dev]\n  dev: { principal: { namespace: support, service_account: ticket-bot } }',
    listen: 'listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http_socket: warden-http.sock, grpc_socket: warden-grpc.sock }',
    limits: 'limits: { max_header_bytes: 4096, shutdown_grace_ms: 1000 }',
  });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

const BODY = JSON.stringify({ model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-88', customer_message: 'hello' } } });

describe('Unix domain sockets', () => {
  it('serves HTTP on the socket; the caller is a local peer, so dev identity applies', async () => {
    expect(w.addresses.httpSocket).toBe(join(w.dir, 'warden-http.sock'));
    const r = await overSocket(w.addresses.httpSocket!, BODY);
    expect(r.status).toBe(200);
    expect(r.json.choices[0].message.content).toBe('upstream saw: Ticket T-88:\nhello');
    const rec = w.audit().at(-1)!;
    expect(rec.principal).toEqual({ kind: 'dev', subject: 'system:serviceaccount:support:ticket-bot', namespace: 'support', service_account: 'ticket-bot' });
  });

  it('a TCP peer whose connection is reset before its request is read is not taken for a Unix socket peer', async () => {
    // Node reports no remote address for such a socket, as for a Unix peer; the dev identity must
    // not accept it (from a remote host, that was a way in).
    const before = w.audit().length;
    const url = new URL(w.addresses.http);
    const raw = `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(BODY)}\r\n\r\n${BODY}`;
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: Number(url.port) }, () => s.write(raw, () => (s.resetAndDestroy(), resolve())));
        s.on('error', () => resolve());
      });
    }
    await eventually(() => w.audit().length >= before + 5);
    // A loopback peer the server still saw before the reset may pass as local (and is then
    // cancelled); one it saw only after is refused, never taken for the Unix socket.
    const records = w.audit().slice(before);
    const refused = records.filter((r) => r.error_code === 'unauthenticated');
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.principal).toBeNull();
    for (const r of records) expect(['unauthenticated', 'cancelled']).toContain(r.error_code);
  });

  it('serves gRPC on the socket', async () => {
    // No metadata: the dev identity accepts the local peer on the socket.
    expect(await completeOverSocket(w.addresses.grpcSocket!, 'T-89', 'hi')).toBe('upstream saw: Ticket T-89:\nhi');
  });
});

/** A templated gRPC `Complete` over the Unix socket at `path` (no metadata: dev on the socket); the answer's text. */
async function completeOverSocket(path: string, ticket: string, message: string): Promise<string> {
  const client = gatewayClient(`unix:${path}`);
  try {
    const res = await unaryCall(client, 'Complete', {
      model: 'gpt-4o-mini',
      template: { id: 'support/ticket-summary', version: 2 },
      variables: { ticket_id: ticket, customer_message: message },
    });
    return res.choices[0].message.content;
  } finally {
    client.close();
  }
}

describe('socket paths that cannot work', () => {
  it('a path longer than a Unix socket address holds, or one held by a directory, stops the start naming the key', async () => {
    const long = `${'s'.repeat(120)}.sock`;
    await expect(
      startWarden({ upstreamUrl: upstream.url, listen: `listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http_socket: ${long} }` }),
    ).rejects.toThrow(/^listen\.http_socket: .* bytes long; a Unix socket path can have at most 107$/);
    await expect(
      startWarden({ upstreamUrl: upstream.url, listen: 'listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, grpc_socket: templates }' }),
    ).rejects.toThrow(/^listen\.grpc_socket: .*templates exists and is not a socket but a directory/);
  });
});

describe('a socket path already in use', () => {
  it('a socket another process listens on stops the start and is left to that process (HTTP and gRPC)', async () => {
    // A second Warden on the same paths used to remove the live sockets and bind its own: the
    // first went on serving sockets no client could reach, and lost them for good at the
    // second's shutdown.
    const listen = (key: 'http_socket' | 'grpc_socket', path: string) =>
      `listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, ${key}: "${path}" }`;
    await expect(startWarden({ upstreamUrl: upstream.url, listen: listen('http_socket', w.addresses.httpSocket!) })).rejects.toThrow(
      `listen.http_socket: cannot listen on ${w.addresses.httpSocket}: another process is listening on it; stop that process or choose another path`,
    );
    await expect(startWarden({ upstreamUrl: upstream.url, listen: listen('grpc_socket', w.addresses.grpcSocket!) })).rejects.toThrow(
      `listen.grpc_socket: cannot listen on ${w.addresses.grpcSocket}: another process is listening on it; stop that process or choose another path`,
    );
    // The first one still serves both.
    expect((await overSocket(w.addresses.httpSocket!, BODY)).status).toBe(200);
    expect(await completeOverSocket(w.addresses.grpcSocket!, 'T-90', 'still here')).toBe('upstream saw: Ticket T-90:\nstill here');
  });

  it('a socket left by a killed process is removed and bound again; a regular file at the path is kept', async () => {
    const stale = join(w.dir, 'stale.sock');
    // A process that binds the socket and is killed before it can remove it.
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((resolve) => child.once('exit', resolve));
    expect(lstatSync(stale).isSocket()).toBe(true);
    const second = await startWarden({ upstreamUrl: upstream.url, methods: '[dev]\n  dev: { principal: { namespace: support, service_account: ticket-bot } }', listen: `listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http_socket: "${stale}" }` });
    try {
      expect((await overSocket(stale, BODY)).status).toBe(200);
    } finally {
      await second.close();
    }
    // Gone with the listener that bound it.
    expect(existsSync(stale)).toBe(false);

    const file = join(w.dir, 'not-a-socket.sock');
    writeFileSync(file, 'keep me');
    await expect(
      startWarden({ upstreamUrl: upstream.url, listen: `listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http_socket: "${file}" }` }),
    ).rejects.toThrow(`listen.http_socket: ${file} exists and is not a socket but a file; remove it or choose another path`);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    // A symbolic link (here to the file) is named as one, and neither it nor its target is touched.
    const link = join(w.dir, 'link.sock');
    symlinkSync(file, link);
    await expect(
      startWarden({ upstreamUrl: upstream.url, listen: `listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0, grpc_socket: "${link}" }` }),
    ).rejects.toThrow(`listen.grpc_socket: ${link} exists and is not a socket but a symbolic link; remove it or choose another path`);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });
});

describe('a start that fails after the sockets are bound', () => {
  it('removes the socket files it made (a port taken by another listener stops the start)', async () => {
    const admin = w.addresses.admin.replace('http://', '');
    const httpSocket = join(w.dir, 'failed-start-http.sock');
    const grpcSocket = join(w.dir, 'failed-start-grpc.sock');
    await expect(
      startWarden({ upstreamUrl: upstream.url, listen: `listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: "${admin}", http_socket: "${httpSocket}", grpc_socket: "${grpcSocket}" }` }),
    ).rejects.toThrow(`listen.admin: cannot listen on ${admin}: the address is already in use (EADDRINUSE)`);
    // Closed with their listeners, not left as sockets no process listens on.
    expect(existsSync(httpSocket)).toBe(false);
    expect(existsSync(grpcSocket)).toBe(false);
  });
});

describe('header size limit', () => {
  it('a header block over limits.max_header_bytes is refused with 431', async () => {
    const res = await fetch(`${w.addresses.http}/v1/models`, { headers: { 'x-padding': 'p'.repeat(8000) } });
    expect(res.status).toBe(431);
  });
});
