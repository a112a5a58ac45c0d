import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import type { Authenticator } from '../../src/pipeline/ports.js';
import type { Credentials, Principal } from '../../src/pipeline/types.js';
import {
  createAuthenticateStage,
  DevAuthenticator,
  KubernetesTokenAuthenticator,
  SpiffeJwtAuthenticator,
} from '../../src/identity/index.js';
import { VerifiedTokenCache } from '../../src/identity/token-cache.js';
import { publicJwk, testKeyPair } from '../keys.js';
import { makeContext } from '../stage-context.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUD = 'warden';
const CLUSTER_TOKEN = 'CANARY-SECRET-cluster-reader-token';

let rsa: { privateKey: KeyObject; jwk: JWK };
let ec: { privateKey: KeyObject; jwk: JWK };
let other: { privateKey: KeyObject };
let server: Server;
let jwksUrl: string;
let jwksHits = 0;
let lastAuthorization: string | undefined;
let dir: string;

async function keyPair(alg: 'RS256' | 'ES256', kid: string) {
  const pair = testKeyPair(alg === 'RS256' ? 'rsa' : 'ec');
  return { privateKey: pair.privateKey, jwk: await publicJwk(pair, { kid, alg, use: 'sig' }) };
}

beforeAll(async () => {
  rsa = await keyPair('RS256', 'rsa-1');
  ec = await keyPair('ES256', 'ec-1');
  other = await keyPair('RS256', 'rsa-1'); // same kid, different key: a forged signature
  server = createServer((req, res) => {
    if (req.url !== '/openid/v1/jwks') {
      res.writeHead(404).end();
      return;
    }
    jwksHits++;
    lastAuthorization = req.headers.authorization;
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/openid/v1/jwks`;
  dir = await mkdtemp(join(tmpdir(), 'warden-identity-'));
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [rsa.jwk] }));
  await writeFile(join(dir, 'token'), `${CLUSTER_TOKEN}\n`);
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

const now = () => Math.floor(Date.now() / 1000);

function k8sClaims(ns = 'payments', sa = 'checkout'): JWTPayload {
  return {
    'kubernetes.io': {
      namespace: ns,
      serviceaccount: { name: sa, uid: 'a5e0b1c2-0000-4000-8000-000000000001' },
      pod: { name: `${sa}-7d9f8c6b5-x2x9q`, uid: 'a5e0b1c2-0000-4000-8000-000000000002' },
    },
    sub: `system:serviceaccount:${ns}:${sa}`,
  };
}

async function sign(
  payload: JWTPayload,
  opts: { key?: KeyObject; alg?: string; kid?: string; iss?: string; aud?: string | string[]; exp?: number; nbf?: number } = {},
): Promise<string> {
  const jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? 'rsa-1' })
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUD)
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? now() + 600);
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(opts.key ?? rsa.privateKey);
}

function creds(bearer?: string, local = true): Credentials {
  return {
    ...(bearer === undefined ? {} : { bearer }),
    peer: local ? { address: '127.0.0.1', local: true, transport: 'tcp' } : { address: '10.0.0.7', local: false, transport: 'tcp' },
  };
}

async function authError(a: Authenticator, c: Credentials): Promise<WardenError> {
  // A method may throw at once or reject later: both count.
  const err = await Promise.resolve()
    .then(() => a.authenticate(c))
    .then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WardenError);
  expect((err as WardenError).code).toBe('unauthenticated');
  const text = JSON.stringify({ m: (err as WardenError).message, d: (err as WardenError).details, c: (err as Error).cause });
  if (c.bearer) expect(text).not.toContain(c.bearer);
  expect(text).not.toContain(CLUSTER_TOKEN);
  return err as WardenError;
}

describe('KubernetesTokenAuthenticator (JWKS URL)', () => {
  let k8s: KubernetesTokenAuthenticator;
  beforeAll(() => {
    k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl, jwksBearerTokenFile: join(dir, 'token') });
  });

  it('accepts a bound token (RSA) and builds the principal', async () => {
    const p = await k8s.authenticate(creds(await sign(k8sClaims(), { aud: [AUD, 'other'] })));
    expect(p).toEqual<Principal>({
      kind: 'kubernetes',
      subject: 'system:serviceaccount:payments:checkout',
      namespace: 'payments',
      service_account: 'checkout',
      pod: 'checkout-7d9f8c6b5-x2x9q',
      issuer: ISSUER,
      audiences: [AUD, 'other'],
    });
    // The JWKS request carried the sidecar's own token, read from its file.
    expect(lastAuthorization).toBe(`Bearer ${CLUSTER_TOKEN}`);
  });

  it('accepts a legacy sub-only token signed with EC', async () => {
    const token = await sign({ sub: 'system:serviceaccount:dev:local' }, { alg: 'ES256', kid: 'ec-1', key: ec.privateKey });
    expect(await k8s.authenticate(creds(token))).toMatchObject({ subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local' });
  });

  it('caches the key set across verifications', async () => {
    const before = jwksHits;
    for (let i = 0; i < 5; i++) await k8s.authenticate(creds(await sign(k8sClaims())));
    expect(jwksHits - before).toBe(0);
  });

  it('tolerates small clock skew only', async () => {
    expect(await k8s.authenticate(creds(await sign(k8sClaims(), { exp: now() - 3 })))).not.toBeNull();
    expect((await authError(k8s, creds(await sign(k8sClaims(), { exp: now() - 120 })))).message).toBe('kubernetes authentication failed: token expired');
    expect((await authError(k8s, creds(await sign(k8sClaims(), { nbf: now() + 300 })))).message).toMatch(/not yet valid/);
  });

  it('rejects wrong audience, bad signature, unknown kid, alg none and malformed tokens', async () => {
    expect((await authError(k8s, creds(await sign(k8sClaims(), { aud: 'vault' })))).message).toMatch(/audience not accepted/);
    expect((await authError(k8s, creds(await sign(k8sClaims(), { key: other.privateKey })))).message).toMatch(/signature verification failed/);
    expect((await authError(k8s, creds(await sign(k8sClaims(), { kid: 'rotated-away' })))).message).toMatch(/unknown kid/);
    const none = new UnsecuredJWT(k8sClaims()).setIssuer(ISSUER).setAudience(AUD).setExpirationTime(now() + 600).encode();
    await authError(k8s, creds(none));
    const hs = await new SignJWT(k8sClaims()).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience(AUD).setExpirationTime(now() + 600).sign(new TextEncoder().encode('x'.repeat(32)));
    expect((await authError(k8s, creds(hs))).message).toMatch(/algorithm not allowed/);
    expect((await authError(k8s, creds('eyJhbGciOi.eyJpc3Mi.c2ln'))).message).toMatch(/malformed/);
  });

  it('requires exp and service-account claims that agree', async () => {
    const noExp = await new SignJWT(k8sClaims()).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(ISSUER).setAudience(AUD).sign(rsa.privateKey);
    await authError(k8s, creds(noExp));
    expect((await authError(k8s, creds(await sign({ sub: 'someone' })))).message).toMatch(/no service account/);
    const mixed = { ...k8sClaims('payments', 'checkout'), sub: 'system:serviceaccount:kube-system:admin' };
    expect((await authError(k8s, creds(await sign(mixed)))).message).toMatch(/disagree/);
    expect((await authError(k8s, creds(await sign(k8sClaims('Bad_NS'))))).message).toMatch(/namespace claim is invalid/);
  });

  it('leaves other issuers and non-JWT bearers to other methods', async () => {
    expect(await k8s.authenticate(creds(await sign(k8sClaims(), { iss: 'https://evil.example' })))).toBeNull();
    expect(await k8s.authenticate(creds('sk-not-a-jwt'))).toBeNull();
    expect(await k8s.authenticate(creds())).toBeNull();
  });
});

describe('verified-token cache', () => {
  it('skips re-verification for a known token but still honours its expiry', async () => {
    let clock = Date.now();
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: join(dir, 'jwks.json'), clockToleranceSec: 5, now: () => clock });
    const exp = Math.floor(clock / 1000) + 30;
    const token = await sign(k8sClaims(), { exp });
    const first = await k8s.authenticate(creds(token));
    // The second time the cache answers at once, without a promise, with the same frozen principal.
    const second = k8s.authenticate(creds(token));
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toEqual(first);
    expect(Object.isFrozen(second) && Object.isFrozen((second as Principal).audiences)).toBe(true);
    clock = (exp + 6) * 1000;
    expect((await authError(k8s, creds(token))).message).toBe('kubernetes authentication failed: token expired');
  });

  it('keeps a frozen copy that no caller can change, and drops an entry once the token expires', () => {
    const cache = new VerifiedTokenCache(60_000);
    const p: Principal = { kind: 'dev', subject: 's', audiences: ['a'] };
    cache.set('tok', p, 1_000, 5, 900_000);
    p.audiences.push('changed by the caller after set');
    const got = cache.get('tok', 1_004_999)!;
    expect(got).toEqual({ kind: 'dev', subject: 's', audiences: ['a'] });
    expect(() => got.audiences.push('mutated')).toThrow(TypeError);
    expect(() => Object.assign(got, { subject: 'someone else' })).toThrow(TypeError);
    expect(cache.get('tok', 1_004_999)!.audiences).toEqual(['a']);
    expect(cache.get('tok', 1_005_001)).toBeUndefined();
    cache.set('old', p, 1_000, 0, 2_000_000); // already expired: not stored
    expect(cache.get('old', 0)).toBeUndefined();
  });

  it('reads a cached token without arming a timer (no 1 ms clock-forgetting timer per request)', async () => {
    const cache = new VerifiedTokenCache(60_000);
    const p: Principal = { kind: 'dev', subject: 's', audiences: ['a'] };
    const now = Date.now();
    cache.set('tok', p, Math.floor(now / 1000) + 600, 5, now);
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      const armed = vi.spyOn(globalThis, 'setTimeout');
      try {
        expect(cache.get('tok', Date.now())?.subject).toBe('s');
        expect(armed).not.toHaveBeenCalled();
      } finally {
        armed.mockRestore();
      }
    }
  });

  it('never caches a token that failed', async () => {
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: join(dir, 'jwks.json') });
    const forged = await sign(k8sClaims(), { key: other.privateKey });
    await authError(k8s, creds(forged));
    await authError(k8s, creds(forged));
  });
});

describe('KubernetesTokenAuthenticator (JWKS file, namespace allow-list)', () => {
  it('verifies against a key file and enforces allowed namespaces', async () => {
    const k8s = new KubernetesTokenAuthenticator({ issuer: [ISSUER], audiences: [AUD], jwksFile: join(dir, 'jwks.json'), allowedNamespaces: ['payments'] });
    expect((await k8s.authenticate(creds(await sign(k8sClaims()))))?.namespace).toBe('payments');
    expect((await authError(k8s, creds(await sign(k8sClaims('billing'))))).message).toMatch(/namespace billing is not allowed/);
  });

  it('refuses unusable configuration at construction', () => {
    expect(() => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [], jwksUrl })).toThrow(/audience/);
    expect(() => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD] })).toThrow(/jwks_url or jwks_file/);
    expect(() => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: join(dir, 'missing.json') })).toThrow(/ENOENT/);
  });

  it('fetches the JWKS over https from a server signed by a private CA (the cluster CA)', async () => {
    const fixtures = join(import.meta.dirname, 'fixtures');
    const [cert, key] = await Promise.all([readFile(join(fixtures, 'server.crt')), readFile(join(fixtures, 'server.key'))]);
    let auth: string | undefined;
    const tls = createHttpsServer({ cert, key }, (req, res) => {
      auth = req.headers.authorization;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [rsa.jwk] }));
    });
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/openid/v1/jwks`;
      const trusted = new KubernetesTokenAuthenticator({
        issuer: ISSUER, audiences: [AUD], jwksUrl: url, jwksCaFile: join(fixtures, 'ca.crt'), jwksBearerTokenFile: join(dir, 'token'),
      });
      expect((await trusted.authenticate(creds(await sign(k8sClaims()))))?.namespace).toBe('payments');
      expect(auth).toBe(`Bearer ${CLUSTER_TOKEN}`);
      // Without the CA the server's certificate is not trusted: fail closed.
      const untrusted = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: url });
      expect((await authError(untrusted, creds(await sign(k8sClaims())))).message).toMatch(/JWKS/);
    } finally {
      await new Promise<void>((r) => tls.close(() => r()));
    }
  });

  it('fails closed when the JWKS endpoint is down', async () => {
    const down = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: 'http://127.0.0.1:1/openid/v1/jwks', jwksTimeoutMs: 2000 });
    expect((await authError(down, creds(await sign(k8sClaims())))).message).toMatch(/JWKS/);
  });
});

describe('SpiffeJwtAuthenticator', () => {
  it('accepts a JWT-SVID from an accepted trust domain and maps the k8s path', async () => {
    const s = new SpiffeJwtAuthenticator({ trustDomains: ['prod.example.com'], audiences: [AUD], jwksUrl });
    const token = await sign({ sub: 'spiffe://prod.example.com/ns/payments/sa/checkout' }, { iss: 'https://spire.example' });
    expect(await s.authenticate(creds(token))).toMatchObject({
      kind: 'spiffe',
      subject: 'spiffe://prod.example.com/ns/payments/sa/checkout',
      spiffe_id: 'spiffe://prod.example.com/ns/payments/sa/checkout',
      namespace: 'payments',
      service_account: 'checkout',
    });
    const foreign = await sign({ sub: 'spiffe://evil.example.com/ns/payments/sa/checkout' });
    expect((await authError(s, creds(foreign))).message).toMatch(/trust domain evil\.example\.com is not accepted/);
    expect(await s.authenticate(creds(await sign(k8sClaims())))).toBeNull();
  });
});

describe('DevAuthenticator', () => {
  it('announces itself loudly once and accepts local peers only', async () => {
    const warnings: Array<[object, string]> = [];
    const dev = new DevAuthenticator({ principal: { namespace: 'dev', service_account: 'local' }, logger: { warn: (o, m) => warnings.push([o, m]) } });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![1]).toMatch(/DEV AUTHENTICATION ENABLED/);
    expect(await dev.authenticate(creds('sk-anything'))).toEqual({ kind: 'dev', subject: 'system:serviceaccount:dev:local', namespace: 'dev', service_account: 'local', audiences: [] });
    expect(await dev.authenticate({ peer: { address: 'unix', local: true, transport: 'unix' } })).not.toBeNull();
    expect((await authError(dev, creds(undefined, false))).message).toMatch(/only from loopback or Unix-socket peers/);
    expect(warnings).toHaveLength(1);
  });
});

describe('authenticate stage', () => {
  it('tries methods in order, lets "not mine" fall through, and fails closed', async () => {
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl });
    const dev = new DevAuthenticator({ principal: { namespace: 'dev', service_account: 'local' } });
    const stage = createAuthenticateStage([k8s, dev]);

    const withToken = makeContext({ credentials: creds(await sign(k8sClaims())) });
    await stage.run(withToken);
    expect(withToken.principal?.kind).toBe('kubernetes');

    const apiKey = makeContext({ credentials: creds('sk-local-test') });
    await stage.run(apiKey);
    expect(apiKey.principal?.kind).toBe('dev');

    // Methods that answer at once leave the stage synchronous: no promise for the pipeline to await.
    const again = makeContext({ credentials: withToken.request.credentials });
    expect(stage.run(again)).toBeUndefined();
    expect(again.principal).toBe(withToken.principal);
    const devOnly = makeContext({ credentials: creds('sk-local-test') });
    expect(createAuthenticateStage([dev]).run(devOnly)).toBeUndefined();
    expect(devOnly.principal).toBe(apiKey.principal);

    // A token for this method that fails does not fall through to dev.
    const expired = makeContext({ credentials: creds(await sign(k8sClaims(), { exp: now() - 600 })) });
    await expect(Promise.resolve().then(() => stage.run(expired))).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(expired.principal).toBeUndefined();

    const k8sOnly = createAuthenticateStage([k8s]);
    const noCreds = makeContext({ credentials: creds() });
    await expect(Promise.resolve().then(() => k8sOnly.run(noCreds))).rejects.toMatchObject({ code: 'unauthenticated', message: 'no credentials for any configured method (kubernetes)' });
    const token = await sign(k8sClaims(), { iss: 'https://elsewhere' });
    const err = await Promise.resolve()
      .then(() => k8sOnly.run(makeContext({ credentials: creds(token) })))
      .catch((e: unknown) => e as WardenError);
    expect(err).toMatchObject({ code: 'unauthenticated', message: 'bearer token not accepted by any configured method (kubernetes)' });
    expect(JSON.stringify(err)).not.toContain(token);
  });
});
