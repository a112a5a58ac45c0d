/**
 * Workload identity end to end: the real HTTP server with the SPIFFE JWT-SVID authenticator and the
 * Kubernetes authenticator both reading keys from a loopback HTTPS JWKS server (a private CA, as in
 * a cluster), which demands a bearer token read from a file. Tokens are real JWTs signed with jose.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime, type BoundAddresses, type Runtime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { publicJwk, testKeyPair } from '../keys.js';
import { postChat } from './helpers/http.js';
import { DOWN_URL, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

const TRUST_DOMAIN = 'prod.example.org';
const JWKS_READER_TOKEN = 'jwks-reader-token-1';

let prepared: PreparedDir;
let jwksServer: Server;
let jwksRequests: Array<{ path: string; authorization: string | undefined }>;
let runtime: Runtime;
let addresses: BoundAddresses;
let spiffeKey: KeyObject;
let rogueKey: KeyObject;

async function svid(spiffeId: string, opts: { audience?: string; key?: KeyObject } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'spire-1', typ: 'JWT' })
    .setSubject(spiffeId)
    .setAudience(opts.audience ?? 'warden')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(opts.key ?? spiffeKey);
}

async function chat(token: string) {
  const res = await postChat(addresses.http, token, {
    model: 'echo',
    warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-77', customer_message: 'It broke.' } },
  });
  return { status: res.status, json: (await res.json()) as any };
}

function auditRecords(): Array<Record<string, any>> {
  return readFileSync(prepared.auditFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, any>);
}

beforeAll(async () => {
  prepared = await prepareWardenDir({ upstreamUrl: DOWN_URL });
  const { dir } = prepared;

  // A private CA-signed certificate for 127.0.0.1, as the cluster CA signs the API server's.
  const ca = (name: string) => join(dir, name);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=e2e-ca', '-keyout', ca('ca.key'), '-out', ca('ca.pem'), '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'ignore' });
  execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1',
    '-keyout', ca('server.key'), '-out', ca('server.csr')], { stdio: 'ignore' });
  writeFileSync(ca('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  execFileSync('openssl', ['x509', '-req', '-in', ca('server.csr'), '-CA', ca('ca.pem'), '-CAkey', ca('ca.key'), '-CAcreateserial',
    '-days', '1', '-extfile', ca('san.ext'), '-out', ca('server.pem')], { stdio: 'ignore' });

  const spiffePair = testKeyPair('ec');
  spiffeKey = spiffePair.privateKey;
  rogueKey = testKeyPair('ec').privateKey;
  const spiffeBundle = { keys: [await publicJwk(spiffePair, { kid: 'spire-1', alg: 'ES256', use: 'jwt-svid' })] };
  const k8sJwks = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8')) as object;

  jwksRequests = [];
  jwksServer = createServer({ key: readFileSync(ca('server.key')), cert: readFileSync(ca('server.pem')) }, (req, res) => {
    jwksRequests.push({ path: req.url ?? '', authorization: req.headers.authorization });
    if (req.headers.authorization !== `Bearer ${JWKS_READER_TOKEN}`) {
      res.writeHead(401).end();
      return;
    }
    const body = req.url === '/openid/v1/jwks' ? k8sJwks : req.url === '/spiffe/bundle' ? spiffeBundle : undefined;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const base = `https://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
  writeFileSync(join(dir, 'jwks-token'), `${JWKS_READER_TOKEN}\n`);

  // Replace the fixture's file-based identity section with URL sources over the private CA.
  const text = readFileSync(prepared.configFile, 'utf8');
  const identity = `identity:
  methods: [spiffe, kubernetes]
  kubernetes: { issuer: "https://kubernetes.default.svc.cluster.local", audiences: [warden], jwks_url: "${base}/openid/v1/jwks", jwks_ca_file: ${join(dir, 'ca.pem')}, jwks_bearer_token_file: ${join(dir, 'jwks-token')}, clock_tolerance_s: 0 }
  spiffe: { trust_domains: [${TRUST_DOMAIN}], audiences: [warden], jwks_url: "${base}/spiffe/bundle", jwks_ca_file: ${join(dir, 'ca.pem')}, jwks_bearer_token_file: ${join(dir, 'jwks-token')} }
`;
  const replaced = text.replace(/identity:\n(?: {2}.*\n)+/, identity);
  expect(replaced).not.toBe(text);
  writeFileSync(prepared.configFile, replaced);

  const config = loadConfig(prepared.configFile, {});
  runtime = await createRuntime(config, { logger: createLogger({ level: 'silent' }, { write: () => {} }), configDir: dir });
  addresses = await runtime.start();
});

afterAll(async () => {
  await runtime?.shutdown('test finished');
  await new Promise((r) => jwksServer?.close(r));
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

describe('SPIFFE JWT-SVID through the HTTP server', () => {
  it('a JWT-SVID from an accepted trust domain is served, with the SPIFFE principal in the audit record', async () => {
    const id = `spiffe://${TRUST_DOMAIN}/ns/support/sa/ticket-bot`;
    const r = await chat(await svid(id));
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.choices[0].message.content).toContain('Ticket T-77:');
    const rec = auditRecords().at(-1)!;
    expect(rec.status).toBe('ok');
    expect(rec.principal).toMatchObject({ kind: 'spiffe', subject: id, namespace: 'support', service_account: 'ticket-bot' });
    // The bundle was fetched over the private CA with the bearer token from the file.
    expect(jwksRequests.some((q) => q.path === '/spiffe/bundle' && q.authorization === `Bearer ${JWKS_READER_TOKEN}`)).toBe(true);
  });

  it('a wrong trust domain is unauthenticated, even when signed by the trusted key', async () => {
    const r = await chat(await svid('spiffe://evil.example.net/ns/support/sa/ticket-bot'));
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe('unauthenticated');
    const rec = auditRecords().at(-1)!;
    expect(rec.status).not.toBe('ok');
    expect(rec.error_code ?? rec.error?.code).toBe('unauthenticated');
  });

  it('a wrong audience or an unknown signing key is unauthenticated', async () => {
    const id = `spiffe://${TRUST_DOMAIN}/ns/support/sa/ticket-bot`;
    for (const token of [await svid(id, { audience: 'someone-else' }), await svid(id, { key: rogueKey })]) {
      const r = await chat(token);
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('unauthenticated');
    }
  });

  it('the Kubernetes authenticator reads its JWKS URL through the CA file and bearer-token file', async () => {
    const r = await chat(await prepared.signer.token('support', 'ticket-bot'));
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(auditRecords().at(-1)!.principal).toMatchObject({ kind: 'kubernetes', namespace: 'support', service_account: 'ticket-bot' });
    expect(jwksRequests.some((q) => q.path === '/openid/v1/jwks' && q.authorization === `Bearer ${JWKS_READER_TOKEN}`)).toBe(true);
  });

  it('clock_tolerance_s reaches the Kubernetes authenticator: with 0, a just-expired token is refused', async () => {
    // The token expired 2 s ago: the default tolerance (5 s) would accept it, 0 must not.
    const token = await prepared.signer.token('support', 'ticket-bot', { expiresIn: Math.floor(Date.now() / 1000) - 2 as unknown as string });
    const r = await chat(token);
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe('unauthenticated');
  });
});

describe('Kubernetes service-account claims through the HTTP server', () => {
  it('a malformed pod claim, or a sub that is not the kubernetes.io service account, is unauthenticated and audited without a principal', async () => {
    const bound = { namespace: 'support', serviceaccount: { name: 'ticket-bot', uid: 'u-1' } };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ 'kubernetes.io': { ...bound, pod: 'not-an-object' }, sub: 'system:serviceaccount:support:ticket-bot' }, 'token pod claim is invalid'],
      [{ 'kubernetes.io': bound, sub: 'system:serviceaccount:labs:raw-bot:x' }, 'token sub and kubernetes.io claims disagree'],
      [{ 'kubernetes.io': bound, sub: 'admin' }, 'token sub and kubernetes.io claims disagree'],
    ];
    for (const [claims, message] of cases) {
      const r = await chat(await prepared.signer.claims(claims));
      expect(r.status).toBe(401);
      expect(r.json.error).toMatchObject({ code: 'unauthenticated', message: `kubernetes authentication failed: ${message}` });
      const rec = auditRecords().at(-1)!;
      expect(rec.error_code).toBe('unauthenticated');
      expect(rec.principal).toBeNull();
    }
  });
});

describe('SPIFFE bundle keys', () => {
  it('x509-svid keys in a bundle never verify a JWT-SVID', async () => {
    const { jwtSvidKeys } = await import('../../src/identity/spiffe.js');
    const keys = jwtSvidKeys([
      { kty: 'EC', kid: 'a', use: 'jwt-svid' },
      { kty: 'EC', kid: 'b', use: 'x509-svid' },
      { kty: 'EC', kid: 'c' },
      { kty: 'EC', kid: 'd', use: 'enc' },
    ]);
    expect(keys.map((k) => [k.kid, k.use])).toEqual([['a', 'sig'], ['c', undefined]]);
  });
});
