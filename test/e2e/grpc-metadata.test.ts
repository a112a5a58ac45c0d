/**
 * Call metadata grpc-js cannot carry. grpc-js turns a call's HTTP/2 header block into metadata and
 * drops an entry whose text value is not printable ASCII (a token with an `é` or a tab), writing
 * the value to its log; `authorization-bin` it reads as another key. `warden serve` runs as a real
 * child process (its stderr is where grpc-js writes), with `dev` after `kubernetes`, so that
 * credentials the handler would not see would make a local caller the dev principal. Raw HTTP/2
 * sends what a grpc-js client refuses to, and HTTP/2 frames on a plain socket what node's client
 * refuses to (a header twice).
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import { readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { spawnWarden, watchServe } from './helpers/cli.js';
import { encodePromptRequest } from './helpers/grpc.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { eventually, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

const CANARY_TOKEN = 'CANARY-TOKEN-71c2d9';
const CANARY_PII = 'CANARY-PII-5e0a44';

let upstream: FakeUpstream;
let prepared: PreparedDir;

beforeAll(async () => {
  upstream = await startUpstream();
  prepared = await prepareWardenDir({ upstreamUrl: upstream.url, methods: '[kubernetes, dev]' });
});

afterAll(async () => {
  await upstream?.close();
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

function frame(body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** One Render call with `headers`; resolves with its status and Warden's trailers. */
function render(session: http2.ClientHttp2Session, headers: Record<string, string>): Promise<{ status: number; code: string | undefined; message: string }> {
  const request = encodePromptRequest({ model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: 'hello' } });
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/warden.v1.PromptGateway/Render', 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let fields: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (fields = { ...fields, ...h }));
    stream.on('trailers', (t) => (fields = { ...fields, ...t }));
    stream.on('error', reject);
    stream.resume();
    stream.end(frame(request));
    stream.on('close', () =>
      resolve({ status: Number(fields['grpc-status']), code: fields['warden-code'] as string | undefined, message: decodeURIComponent(String(fields['grpc-message'])) }),
    );
  });
}

/** An HPACK integer with a 7-bit prefix (RFC 7541 §5.1). */
function hpackInt(v: number): number[] {
  if (v < 127) return [v];
  const out = [127];
  for (v -= 127; v >= 128; v >>= 7) out.push((v & 127) | 128);
  out.push(v);
  return out;
}

/** A header field as an HPACK literal without indexing, new name, no Huffman coding. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, ...hpackInt(name.length)]), Buffer.from(name), Buffer.from(hpackInt(Buffer.byteLength(value))), Buffer.from(value)]);
}

function h2Frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/**
 * A Render call whose header block carries `authorization` once per value, written as HTTP/2
 * frames on a plain socket: node's and grpc-js's clients refuse to send a header twice. Resolves
 * once Warden has closed the connection or `untilRecords` audit records exist.
 */
async function renderWithAuthorizations(address: string, values: string[], untilRecords: number): Promise<void> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const request = encodePromptRequest({ model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: { ticket_id: 'T-1', customer_message: 'hello' } });
  const block = Buffer.concat([
    literal(':method', 'POST'),
    literal(':scheme', 'http'),
    literal(':path', '/warden.v1.PromptGateway/Render'),
    literal(':authority', address),
    literal('content-type', 'application/grpc'),
    literal('te', 'trailers'),
    ...values.map((v) => literal('authorization', v)),
  ]);
  const socket = createConnection(port, host);
  socket.on('error', () => undefined);
  socket.resume();
  try {
    await once(socket, 'connect');
    // The preface, empty SETTINGS, HEADERS (END_HEADERS) and DATA (END_STREAM) on stream 1.
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(4, 0, 0, Buffer.alloc(0)), h2Frame(1, 4, 1, block), h2Frame(0, 1, 1, frame(request))]));
    await eventually(() => audit().length >= untilRecords);
  } finally {
    socket.destroy();
  }
}

function audit(): Array<Record<string, any>> {
  let text = '';
  try {
    text = readFileSync(prepared.auditFile, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, any>);
}

/**
 * `warden serve` on the prepared config as a child process (grpc-js writes to its stderr), with a
 * raw HTTP/2 session to its gRPC port; `stop` sends SIGTERM, checks the exit code and returns
 * what the child wrote. Called inside a test.
 */
async function serveOverHttp2(): Promise<{ addr: { grpc: string }; session: http2.ClientHttp2Session; stop(): Promise<{ stderr: string; lines: string[] }> }> {
  const child = spawnWarden(['serve', '--config', prepared.configFile]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const { lines, listening, exited } = watchServe(child);
  const addr = await listening;
  const session = http2.connect(`http://${addr.grpc}`);
  session.on('error', () => undefined);
  // A test that fails before `stop` leaves no child behind.
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    addr,
    session,
    async stop() {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      return { stderr, lines };
    },
  };
}

describe('authorization metadata grpc-js would drop, or node would keep only the first of', () => {
  it('is refused UNAUTHENTICATED, never served as the dev principal or as the first of two; no header value reaches stderr or the log', { timeout: 60_000 }, async () => {
    const served = await serveOverHttp2();
    const { session, addr } = served;
    try {
      const token = await prepared.signer.token('support', 'ticket-bot');

      // The same call with no credentials: the dev principal (dev/local), whom the policy denies.
      const none = await render(session, {});
      expect(none).toMatchObject({ status: grpc.status.PERMISSION_DENIED, code: 'policy_denied' });
      await eventually(() => audit().length === 1);
      expect(audit()[0]!.principal).toMatchObject({ kind: 'dev' });

      const notAscii = await render(session, { authorization: `Bearer ${CANARY_TOKEN}\u00e9` });
      expect(notAscii).toEqual({ status: grpc.status.UNAUTHENTICATED, code: 'unauthenticated', message: 'the authorization metadata is not a Bearer token' });
      const tab = await render(session, { authorization: `Bearer\t${token}` });
      expect(tab).toMatchObject({ status: grpc.status.UNAUTHENTICATED, code: 'unauthenticated' });
      const binary = await render(session, { 'authorization-bin': Buffer.from(`Bearer ${CANARY_TOKEN}`).toString('base64') });
      expect(binary).toMatchObject({ status: grpc.status.UNAUTHENTICATED, code: 'unauthenticated' });
      expect(binary.message).toContain('authorization-bin');

      // Another header grpc-js drops: the call goes on without it, and its value is not written.
      const other = await render(session, { authorization: `Bearer ${token}`, 'x-note': `${CANARY_PII} \u00e9` });
      expect(other.status).toBe(grpc.status.OK);

      await eventually(() => audit().length === 5);
      const records = audit().slice(1);
      expect(records.slice(0, 3).map((r) => [r.principal, r.error_code])).toEqual([
        [null, 'unauthenticated'],
        [null, 'unauthenticated'],
        [null, 'unauthenticated'],
      ]);
      expect(records[3]).toMatchObject({ status: 'ok', principal: { kind: 'kubernetes', service_account: 'ticket-bot' } });

      // Two authorization fields: node's HTTP/2 layer would hand over only the first, so a bad
      // token before a good one would make the caller dev, and a good one before a bad one pass.
      await renderWithAuthorizations(addr.grpc, [`Bearer ${CANARY_TOKEN}`, `Bearer ${token}`], 6);
      await renderWithAuthorizations(addr.grpc, [`Bearer ${token}`, `Bearer ${CANARY_TOKEN}`], 7);
      expect(audit().slice(5).map((r) => [r.principal, r.error_code])).toEqual([
        [null, 'unauthenticated'],
        [null, 'unauthenticated'],
      ]);
    } finally {
      session.close();
    }
    const { stderr, lines } = await served.stop();
    // grpc-js said what it dropped, by name only, once for the burst.
    expect(stderr).toContain("grpc-js dropped the metadata entry authorization (its value is not printable ASCII) from a call's metadata; the value is not shown");
    for (const text of [stderr, lines.join('\n'), readFileSync(prepared.auditFile, 'utf8')]) {
      expect(text).not.toContain(CANARY_TOKEN);
      expect(text).not.toContain(CANARY_PII);
    }
  });
});

describe('metadata grpc-js drops still counts', () => {
  it('a proxy header with a value that is not printable ASCII still relays (dev refuses the call), and such values count toward limits.max_header_bytes', { timeout: 60_000 }, async () => {
    const served = await serveOverHttp2();
    const { session } = served;
    const before = audit().length;
    try {
      // A proxy passes on what its client wrote, its own address after it: grpc-js drops such a
      // value, and the call, looking unrelayed, would be the dev principal (dev/local, whom the
      // policy denies), as it is with no proxy header at all.
      const relayed: Array<[string, string]> = [
        ['x-forwarded-for', `${CANARY_PII}\u00e9, 203.0.113.9`],
        ['via', `1.1 pr\u00f6xy-${CANARY_PII}`],
        ['forwarded', `for=203.0.113.9;\tby=${CANARY_PII}`],
      ];
      for (const [name, value] of relayed) {
        expect(await render(session, { [name]: value })).toEqual({
          status: grpc.status.UNAUTHENTICATED,
          code: 'unauthenticated',
          message: `dev authentication is not accepted for a request relayed by a proxy (it carries ${name}): the caller is not the local peer`,
        });
      }

      // 20 000 bytes of metadata over the 16 KiB limit, as ASCII or not: both refused, as a header
      // block over the limit is over HTTP (431), not only the one grpc-js keeps.
      const token = await prepared.signer.token('support', 'ticket-bot');
      for (const filler of ['a', '\u00e9']) {
        const over = await render(session, { authorization: `Bearer ${token}`, 'x-note': `${CANARY_PII}${filler.repeat(20_000)}` });
        expect(over.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect(over.code).toBe('payload_too_large');
        expect(over.message).toMatch(/^the call's metadata of 2\d{4} bytes is larger than limits\.max_header_bytes \(16384 bytes\)$/);
      }
      // Under the limit, such an entry is dropped and the call served.
      expect((await render(session, { authorization: `Bearer ${token}`, 'x-note': `${CANARY_PII}\u00e9` })).status).toBe(grpc.status.OK);

      await eventually(() => audit().length - before === 6);
      expect(audit().slice(before).map((r) => [r.principal?.kind ?? null, r.error_code])).toEqual([
        [null, 'unauthenticated'],
        [null, 'unauthenticated'],
        [null, 'unauthenticated'],
        [null, 'payload_too_large'],
        [null, 'payload_too_large'],
        ['kubernetes', null],
      ]);
    } finally {
      session.close();
    }
    const { stderr, lines } = await served.stop();
    for (const text of [stderr, lines.join('\n'), readFileSync(prepared.auditFile, 'utf8')]) {
      expect(text).not.toContain(CANARY_PII);
      expect(text).not.toContain('203.0.113.9');
    }
  });
});
