/**
 * A small Kubernetes API server on loopback HTTPS, for the `k8s://` secret store: it speaks the
 * API's documented contract for reading a Secret (`GET /api/v1/namespaces/{ns}/secrets/{name}`,
 * `Authorization: Bearer`, a v1 Secret object with base64 `data`, a v1 Status object for every
 * error), with a certificate signed by a CA of its own, as the cluster CA signs the API server's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KubeApiRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  accept: string | undefined;
}

/** How the server answers a request it would otherwise answer by the contract (tests use it for faults). */
export type KubeApiFault =
  | { kind: 'status'; code: number; body?: string; contentType?: string }
  | { kind: 'body'; body: string | Buffer; contentType?: string }
  | { kind: 'hang' }
  /** Headers and the start of a Secret, then nothing more. */
  | { kind: 'stall-body' }
  | { kind: 'reset' };

export interface FakeKubeApi {
  url: string;
  /** PEM of the CA that signed the server's certificate (write it as ca_file). */
  caPem: string;
  /** The token the server accepts now (`Bearer` of it); any other is 401. */
  token: string;
  /** Secrets by `namespace/name`: their data as plain strings or bytes (the server base64-encodes them). */
  secrets: Map<string, Record<string, string | Buffer>>;
  /** Namespaces the token may `get` secrets in (others: 403), as a Role would allow. */
  allowedNamespaces: Set<string>;
  requests: KubeApiRequest[];
  /** Set to answer every request this way until cleared. */
  fault: KubeApiFault | undefined;
  close(): Promise<void>;
}

/** A CA and a server certificate for 127.0.0.1 signed by it (openssl, as test/e2e/identity does). */
export function makeCerts(): { caPem: string; key: string; cert: string; otherCaPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'warden-kube-ca-'));
  const at = (name: string) => join(dir, name);
  try {
    const newCa = (name: string) =>
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
        '-subj', `/CN=${name}`, '-keyout', at(`${name}.key`), '-out', at(`${name}.pem`), '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'ignore' });
    newCa('kube-ca');
    newCa('other-ca');
    execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1',
      '-keyout', at('server.key'), '-out', at('server.csr')], { stdio: 'ignore' });
    writeFileSync(at('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    execFileSync('openssl', ['x509', '-req', '-in', at('server.csr'), '-CA', at('kube-ca.pem'), '-CAkey', at('kube-ca.key'), '-CAcreateserial',
      '-days', '1', '-extfile', at('san.ext'), '-out', at('server.pem')], { stdio: 'ignore' });
    return { caPem: readFileSync(at('kube-ca.pem'), 'utf8'), otherCaPem: readFileSync(at('other-ca.pem'), 'utf8'), key: readFileSync(at('server.key'), 'utf8'), cert: readFileSync(at('server.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A v1 Status object, as the API server answers every failure. */
function status(code: number, reason: string, message: string, details?: Record<string, string>): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });
}

const SECRET_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/?]+)$/;

export async function startKubeApi(opts: { token: string; certs?: ReturnType<typeof makeCerts> }): Promise<FakeKubeApi> {
  const certs = opts.certs ?? makeCerts();
  const sockets = new Set<import('node:stream').Duplex>();
  const api: FakeKubeApi = {
    url: '',
    caPem: certs.caPem,
    token: opts.token,
    secrets: new Map(),
    allowedNamespaces: new Set(),
    requests: [],
    fault: undefined,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer({ key: certs.key, cert: certs.cert }, (req, res) => {
    api.requests.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, accept: req.headers.accept });
    const send = (code: number, body: string | Buffer, type = 'application/json') => {
      res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const fault = api.fault;
    if (fault?.kind === 'hang') return; // never answers
    if (fault?.kind === 'stall-body') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 4096 });
      return void res.write('{"kind":"Secret","apiVersion":"v1","metadata":{');
    }
    if (fault?.kind === 'reset') return req.socket.destroy();
    if (fault?.kind === 'status') return send(fault.code, fault.body ?? status(fault.code, 'InternalError', 'Internal error occurred: etcd is down'), fault.contentType);
    if (fault?.kind === 'body') return send(200, fault.body, fault.contentType);
    if (req.headers.authorization !== `Bearer ${api.token}`) return send(401, status(401, 'Unauthorized', 'Unauthorized'));
    const m = SECRET_PATH.exec(req.url ?? '');
    if (req.method !== 'GET' || !m) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const [namespace, name] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
    if (!api.allowedNamespaces.has(namespace)) {
      return send(403, status(403, 'Forbidden', `secrets "${name}" is forbidden: User "system:serviceaccount:support:warden" cannot get resource "secrets" in API group "" in the namespace "${namespace}"`, { name, kind: 'secrets' }));
    }
    const data = api.secrets.get(`${namespace}/${name}`);
    if (!data) return send(404, status(404, 'NotFound', `secrets "${name}" not found`, { name, kind: 'secrets' }));
    const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
    send(200, JSON.stringify({
      kind: 'Secret',
      apiVersion: 'v1',
      metadata: { name, namespace, uid: '5c1f0e0a-2d0e-4bb5-9a55-3c2b1f6f0a11', resourceVersion: '4242', creationTimestamp: '2026-01-01T00:00:00Z' },
      data: encoded,
      type: 'Opaque',
    }));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  api.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}
