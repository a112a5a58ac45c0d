/**
 * A small Vault on loopback that speaks the documented HTTP API Warden uses, for tests: KV v2
 * (`GET /v1/<mount>/data/<path>`: `data.data` and `data.metadata`, 404 with the metadata for a
 * deleted or destroyed version, 404 `{"errors":[]}` for no secret), KV v1 (`GET /v1/<mount>/<path>`),
 * the Kubernetes auth login (`POST /v1/auth/<mount>/login` {role, jwt} → `auth.client_token`,
 * `lease_duration`, `renewable`; 400 for an unknown role, 403 for a JWT it does not accept),
 * `X-Vault-Token` checked on every read (403 `{"errors":["permission denied"]}`), an optional
 * `X-Vault-Namespace`, and a sealed Vault (503 `{"errors":["Vault is sealed"]}`). Over https with
 * the test CA (test/identity/fixtures) or plain http.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const TLS_FIXTURES = join(import.meta.dirname, '..', 'identity', 'fixtures');
export const TEST_CA_FILE = join(TLS_FIXTURES, 'ca.crt');

export interface KvVersion {
  data: Record<string, unknown> | null;
  deletion_time?: string;
  destroyed?: boolean;
}

export interface VaultServerOptions {
  tls?: boolean;
  kvVersion?: 1 | 2;
  /** Tokens accepted on reads (a token_file's), besides those logins hand out. */
  staticTokens?: string[];
  /** The Kubernetes login: the role and the service-account JWT it accepts, and the lease it grants (s). */
  kubernetes?: { mount?: string; role: string; jwt: string; leaseSeconds?: number };
  /** When set, every request must carry this X-Vault-Namespace. */
  namespace?: string;
}

export interface VaultServer {
  address: string;
  /** Secrets by `mount/path` (decoded), each its versions, latest last. */
  secrets: Map<string, KvVersion[]>;
  put(secret: string, data: Record<string, unknown>): void;
  sealed: boolean;
  /** A read never answered (the socket stays open) while true. */
  stall: boolean;
  /** A body of this many bytes answers every read when set. */
  oversize?: number;
  /** A body that is not JSON answers every read when true. */
  garbage: boolean;
  /** Raw bytes that answer every read (status 200) when set. */
  raw?: Buffer;
  /** The JWT the login accepts now (a rotated service-account token). */
  jwt: string;
  logins: number;
  reads: number;
  /** Tokens handed out by logins, in order. */
  issued: string[];
  /** Makes `token` unknown (revoked or expired): reads with it get 403. */
  revoke(token: string): void;
  /** Headers of the last request. */
  lastHeaders?: IncomingMessage['headers'];
  /** Paths requested, as sent (still encoded). */
  paths: string[];
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const errors = (res: ServerResponse, status: number, messages: string[]) => send(res, status, { errors: messages });

function envelope(data: unknown, extra: Record<string, unknown> = {}) {
  return { request_id: randomBytes(8).toString('hex'), lease_id: '', renewable: false, lease_duration: 0, data, wrap_info: null, warnings: null, auth: null, ...extra };
}

export async function startVaultServer(opts: VaultServerOptions = {}): Promise<VaultServer> {
  const kv = opts.kvVersion ?? 2;
  const tokens = new Set(opts.staticTokens ?? []);
  const loginMount = opts.kubernetes?.mount ?? 'kubernetes';
  const sockets = new Set<Socket>();
  const state: VaultServer = {
    address: '',
    secrets: new Map(),
    put(secret, data) {
      const versions = state.secrets.get(secret) ?? [];
      versions.push({ data });
      state.secrets.set(secret, versions);
    },
    sealed: false,
    stall: false,
    garbage: false,
    jwt: opts.kubernetes?.jwt ?? '',
    logins: 0,
    reads: 0,
    issued: [],
    revoke: (token) => void tokens.delete(token),
    paths: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    state.lastHeaders = req.headers;
    const url = req.url ?? '/';
    state.paths.push(url);
    if (state.sealed) return errors(res, 503, ['Vault is sealed']);
    if (opts.namespace !== undefined && req.headers['x-vault-namespace'] !== opts.namespace) return errors(res, 403, ['permission denied']);
    // Vault (Go's net/http) routes the decoded path.
    let path: string;
    try {
      path = decodeURIComponent(url.split('?')[0]!);
    } catch {
      return errors(res, 400, ['invalid path']);
    }
    if (opts.kubernetes && req.method === 'POST' && path === `/v1/auth/${loginMount}/login`) {
      state.logins++;
      let login: { role?: unknown; jwt?: unknown };
      try {
        login = JSON.parse(body) as typeof login;
      } catch {
        return errors(res, 400, ['failed to parse JSON input']);
      }
      if (login.role !== opts.kubernetes.role) return errors(res, 400, [`invalid role name "${String(login.role)}"`]);
      if (login.jwt !== state.jwt) return errors(res, 403, ['permission denied']);
      const token = `hvs.${randomBytes(18).toString('base64url')}`;
      tokens.add(token);
      state.issued.push(token);
      return send(res, 200, envelope(null, {
        auth: {
          client_token: token,
          accessor: randomBytes(8).toString('hex'),
          policies: ['default', 'warden'],
          token_policies: ['default', 'warden'],
          metadata: { role: opts.kubernetes.role, service_account_name: 'warden', service_account_namespace: 'warden' },
          lease_duration: opts.kubernetes.leaseSeconds ?? 3600,
          renewable: true,
          entity_id: randomBytes(8).toString('hex'),
          token_type: 'service',
          orphan: true,
        },
      }));
    }
    if (req.method !== 'GET' || !path.startsWith('/v1/')) return errors(res, 405, ['unsupported operation']);
    const token = req.headers['x-vault-token'];
    if (typeof token !== 'string' || !tokens.has(token)) return errors(res, 403, ['permission denied']);
    state.reads++;
    if (state.stall) return; // never answered
    if (state.oversize !== undefined) return send(res, 200, envelope({ data: { pad: 'x'.repeat(state.oversize) }, metadata: {} }));
    if (state.raw !== undefined) return void res.writeHead(200, { 'content-type': 'application/json' }).end(state.raw);
    if (state.garbage) return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Vault UI</html>');
    const rest = path.slice('/v1/'.length).split('/');
    const mount = rest[0]!;
    let secret: string;
    if (kv === 2) {
      if (rest[1] !== 'data') return errors(res, 404, []);
      secret = [mount, ...rest.slice(2)].join('/');
    } else {
      secret = rest.join('/');
    }
    const versions = state.secrets.get(secret);
    const latest = versions?.[versions.length - 1];
    if (!latest) return errors(res, 404, []);
    if (kv === 1) return send(res, 200, envelope(latest.data, { lease_duration: 2764800 }));
    const metadata = { created_time: '2026-01-01T00:00:00.000000000Z', custom_metadata: null, deletion_time: latest.deletion_time ?? '', destroyed: latest.destroyed ?? false, version: versions!.length };
    if (latest.destroyed || (latest.deletion_time && Date.parse(latest.deletion_time) <= Date.now())) {
      return send(res, 404, envelope({ data: null, metadata }));
    }
    return send(res, 200, envelope({ data: latest.data, metadata }));
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  };
  const server: Server = opts.tls
    ? createHttpsServer({ cert: readFileSync(join(TLS_FIXTURES, 'server.crt')), key: readFileSync(join(TLS_FIXTURES, 'server.key')) }, listener)
    : createHttpServer(listener);
  server.on('connection', (s: Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  server.on('secureConnection', (s: Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.address = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
