import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createHmac, createPublicKey, createSign, type KeyObject } from 'node:crypto';
import { base64url, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from 'jose';
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
import { MAX_CANDIDATE_KEYS } from '../../src/identity/jwt.js';
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
  opts: { key?: KeyObject; alg?: string; /** null: no kid */ kid?: string | null; iss?: string; aud?: string | string[]; exp?: number; nbf?: number } = {},
): Promise<string> {
  const jwt = new SignJWT(payload)
    .setProtectedHeader(opts.kid === null ? { alg: opts.alg ?? 'RS256' } : { alg: opts.alg ?? 'RS256', kid: opts.kid ?? 'rsa-1' })
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

  it('refuses algorithm confusion and header tricks: HMAC keyed with the public key, an alg or key type the kid does not fit, crit, an embedded key', async () => {
    const payload = { ...k8sClaims(), iss: ISSUER, aud: AUD, exp: now() + 600 };
    const signed = (header: object, sign: (input: string) => Buffer) => {
      const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}`;
      return `${input}.${base64url.encode(sign(input))}`;
    };
    const rsaSign = (input: string) => createSign('RSA-SHA256').update(input).sign(rsa.privateKey);
    expect(await k8s.authenticate(creds(signed({ alg: 'RS256', kid: 'rsa-1' }, rsaSign)))).toMatchObject({ namespace: 'payments' }); // the control
    // The classic confusion: HS256 with the RSA public key (as PEM, and as the JWK's n) for the secret.
    const pem = createPublicKey(rsa.privateKey).export({ type: 'spki', format: 'pem' }) as string;
    for (const secret of [pem, rsa.jwk.n!]) {
      const hs = signed({ alg: 'HS256', kid: 'rsa-1' }, (input) => createHmac('sha256', secret).update(input).digest());
      expect((await authError(k8s, creds(hs))).message).toMatch(/algorithm not allowed/);
    }
    // The kid's key says RS256: a PS256 token under it finds no key, and an RS256 token under the EC key's kid neither.
    expect((await authError(k8s, creds(await sign(k8sClaims(), { alg: 'PS256' })))).message).toMatch(/no matching key/);
    expect((await authError(k8s, creds(signed({ alg: 'RS256', kid: 'ec-1' }, rsaSign)))).message).toMatch(/no matching key/);
    // An extension the verifier does not know must not be ignored.
    expect((await authError(k8s, creds(signed({ alg: 'RS256', kid: 'rsa-1', crit: ['exp-ext'], 'exp-ext': 1 }, rsaSign)))).message).toMatch(/unsupported/);
    // A key the token carries itself (jwk, jku) is never trusted: only the JWKS is.
    const attacker = testKeyPair('rsa');
    const attackerSign = (input: string) => createSign('RSA-SHA256').update(input).sign(attacker.privateKey);
    const attackerJwk = await publicJwk(attacker, { kid: 'evil' });
    expect((await authError(k8s, creds(signed({ alg: 'RS256', kid: 'evil', jwk: attackerJwk }, attackerSign)))).message).toMatch(/no matching key/);
    expect((await authError(k8s, creds(signed({ alg: 'RS256', kid: 'evil', jku: `${jwksUrl}?evil` }, attackerSign)))).message).toMatch(/no matching key/);
  });

  it('requires exp and service-account claims that agree', async () => {
    const noExp = await new SignJWT(k8sClaims()).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(ISSUER).setAudience(AUD).sign(rsa.privateKey);
    expect((await authError(k8s, creds(noExp))).message).toBe('kubernetes authentication failed: token claim "exp" is missing');
    expect((await authError(k8s, creds(await sign({ sub: 'someone' })))).message).toMatch(/no service account/);
    const mixed = { ...k8sClaims('payments', 'checkout'), sub: 'system:serviceaccount:kube-system:admin' };
    expect((await authError(k8s, creds(await sign(mixed)))).message).toMatch(/disagree/);
    expect((await authError(k8s, creds(await sign(k8sClaims('Bad_NS'))))).message).toMatch(/namespace claim is invalid/);
    // A malformed kubernetes.io claim is refused, not passed over for the legacy sub.
    for (const bad of ['payments', ['payments'], null]) {
      const token = await sign({ 'kubernetes.io': bad, sub: 'system:serviceaccount:payments:checkout' });
      expect((await authError(k8s, creds(token))).message).toMatch(/kubernetes\.io claim is not an object/);
    }
  });

  it('refuses a sub that is not exactly the kubernetes.io service account, whatever its shape', async () => {
    // Only a sub of the service-account shape used to be compared: any other sub passed unchecked.
    for (const sub of ['system:serviceaccount:payments:checkout:x', 'admin', 'system:serviceaccount:payments', '']) {
      const err = await authError(k8s, creds(await sign({ ...k8sClaims(), sub })));
      expect(err.message).toBe('kubernetes authentication failed: token sub and kubernetes.io claims disagree');
      if (sub.length > 0) expect(err.message).not.toContain(sub);
    }
    // Agreeing, or no sub at all: accepted.
    expect(await k8s.authenticate(creds(await sign(k8sClaims())))).toMatchObject({ namespace: 'payments', service_account: 'checkout' });
    const { sub: _sub, ...noSub } = k8sClaims();
    expect(await k8s.authenticate(creds(await sign(noSub)))).toMatchObject({ namespace: 'payments', service_account: 'checkout' });
  });

  it('refuses malformed kubernetes.io members instead of leaving them out', async () => {
    const base = k8sClaims()['kubernetes.io'] as Record<string, unknown>;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...base, pod: 'not-an-object' }, 'token pod claim is invalid'],
      [{ ...base, pod: null }, 'token pod claim is invalid'],
      [{ ...base, pod: ['checkout-1'] }, 'token pod claim is invalid'],
      [{ ...base, pod: { uid: 'a5e0b1c2' } }, 'token pod claim is invalid'],
      [{ ...base, pod: { name: 'Not_A_Pod' } }, 'token pod claim is invalid'],
      [{ ...base, serviceaccount: 'checkout' }, 'token service account claim is invalid'],
      [{ ...base, serviceaccount: null }, 'token service account claim is invalid'],
    ];
    for (const [claim, message] of cases) {
      const err = await authError(k8s, creds(await sign({ 'kubernetes.io': claim, sub: 'system:serviceaccount:payments:checkout' })));
      expect(err.message).toBe(`kubernetes authentication failed: ${message}`);
      expect(err.message).not.toMatch(/not-an-object|Not_A_Pod/);
    }
    // A token bound to no pod (no pod member) is fine.
    const { pod: _pod, ...noPod } = base;
    const p = await k8s.authenticate(creds(await sign({ 'kubernetes.io': noPod, sub: 'system:serviceaccount:payments:checkout' })));
    expect(p).toMatchObject({ namespace: 'payments', service_account: 'checkout' });
    expect(p).not.toHaveProperty('pod');
  });

  it('refuses an aud array holding anything but strings', async () => {
    // In the payload itself: jose's setAudience refuses to write such a claim.
    const token = await new SignJWT({ ...k8sClaims(), aud: [5, AUD] as unknown as string[] })
      .setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' })
      .setIssuer(ISSUER)
      .setExpirationTime(now() + 600)
      .sign(rsa.privateKey);
    const err = await authError(k8s, creds(token));
    expect(err.message).toBe('kubernetes authentication failed: token claim "aud" is malformed');
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

  it('answers for a token exactly as long as a verification would accept it, not a millisecond more', async () => {
    let clock = Date.now();
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: join(dir, 'jwks.json'), clockToleranceSec: 5, now: () => clock });
    const exp = Math.floor(clock / 1000) + 30;
    const token = await sign(k8sClaims(), { exp });
    await k8s.authenticate(creds(token));
    clock = (exp + 5) * 1000 - 1; // jose: floor(now) = exp + 4, within the tolerance
    expect(k8s.authenticate(creds(token))).toMatchObject({ namespace: 'payments' });
    clock = (exp + 5) * 1000; // jose: exp <= now - tolerance, expired
    expect((await authError(k8s, creds(token))).message).toBe('kubernetes authentication failed: token expired');
    // The uncached path agrees: a fresh authenticator at the same instant.
    const uncached = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: join(dir, 'jwks.json'), clockToleranceSec: 5, now: () => clock });
    expect((await authError(uncached, creds(token))).message).toBe('kubernetes authentication failed: token expired');
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
    expect(cache.get('tok', 1_005_000)).toBeUndefined();
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

  it('fails closed when the JWKS endpoint is down, and the log says why in words of its own', async () => {
    const warnings: object[] = [];
    const logger = { warn: (o: object) => warnings.push(o) };
    // A port nothing listens on (a server's, closed).
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: `http://127.0.0.1:${port}/openid/v1/jwks`, jwksTimeoutMs: 2000, logger });
    expect((await authError(down, creds(await sign(k8sClaims())))).message).toMatch(/JWKS/);
    expect(warnings).toEqual([{ method: 'kubernetes', reason: 'unreachable (ECONNREFUSED)' }]);
    // Port 1 is one of fetch's blocked ports: never tried, and the log says so.
    warnings.length = 0;
    const blocked = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: 'http://127.0.0.1:1/openid/v1/jwks', logger });
    await authError(blocked, creds(await sign(k8sClaims())));
    expect(warnings).toEqual([{ method: 'kubernetes', reason: 'unreachable (a port fetch refuses to use)' }]);

    // A token file holding two tokens (or one broken over lines): fetch would refuse the header
    // with a message quoting it; the reason is said, the token never.
    await writeFile(join(dir, 'two-tokens'), `${CLUSTER_TOKEN}\n${CLUSTER_TOKEN}-2\n`);
    warnings.length = 0;
    const twoTokens = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: `${jwksUrl}?two`, jwksBearerTokenFile: join(dir, 'two-tokens'), logger });
    expect((await authError(twoTokens, creds(await sign(k8sClaims())))).message).toMatch(/JWKS unavailable/);
    expect(warnings).toEqual([{ method: 'kubernetes', reason: 'jwks_bearer_token_file does not hold one token (empty, or a space or line break inside)' }]);
    expect(JSON.stringify(warnings)).not.toContain(CLUSTER_TOKEN);

    // A user and password in the URL: fetch refuses every such request, so the start does.
    const withUser = () => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: 'https://reader:CANARY-pw@127.0.0.1:1/jwks' });
    expect(withUser).toThrow(/^kubernetes: jwks_url must not carry a user or password \(user:password@host\); send a token with jwks_bearer_token_file$/);
  });
});

describe('key sources that fail', () => {
  it('a key set endpoint answering 500 is "JWKS unavailable", logged once per interval without token data', async () => {
    const failing = createServer((_req, res) => res.writeHead(500).end('boom'));
    await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
    try {
      const warnings: Array<[object, string | undefined]> = [];
      const k8s = new KubernetesTokenAuthenticator({
        issuer: ISSUER,
        audiences: [AUD],
        jwksUrl: `http://127.0.0.1:${(failing.address() as AddressInfo).port}/keys`,
        logger: { warn: (o, m) => warnings.push([o, m]) },
      });
      const token = await sign(k8sClaims());
      expect((await authError(k8s, creds(token))).message).toBe('kubernetes authentication failed: JWKS unavailable');
      expect((await authError(k8s, creds(await sign(k8sClaims('other'))))).message).toMatch(/JWKS unavailable/);
      expect(warnings).toEqual([[{ method: 'kubernetes', reason: 'unexpected HTTP response (not 200 with a key set)' }, 'identity key set unavailable: tokens cannot be verified']]);
      expect(JSON.stringify(warnings)).not.toContain(token.slice(0, 20));
    } finally {
      await new Promise<void>((r) => failing.close(() => r()));
    }
  });

  it('a key set URL that serves private key material is refused as such, logged without the key', async () => {
    const d = 'CANARY-private-exponent';
    const leaking = createServer((_req, res) => res.writeHead(200).end(JSON.stringify({ keys: [{ ...rsa.jwk, d }] })));
    await new Promise<void>((r) => leaking.listen(0, '127.0.0.1', r));
    try {
      const warnings: object[] = [];
      const k8s = new KubernetesTokenAuthenticator({
        issuer: ISSUER,
        audiences: [AUD],
        jwksUrl: `http://127.0.0.1:${(leaking.address() as AddressInfo).port}/keys`,
        logger: { warn: (o) => warnings.push(o) },
      });
      expect((await authError(k8s, creds(await sign(k8sClaims())))).message).toBe('kubernetes authentication failed: JWKS unavailable');
      expect(warnings).toEqual([
        { method: 'kubernetes', reason: 'the key set holds private or symmetric key material (anyone who fetched it can sign tokens): it must hold public keys only' },
      ]);
      expect(JSON.stringify(warnings)).not.toContain(d);
    } finally {
      await new Promise<void>((r) => leaking.close(() => r()));
    }
  });

  it('refuses at start a key file that is not JSON (without quoting it), empty, or holding private keys', async () => {
    const make = (file: string) => () => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: join(dir, file) });
    await writeFile(join(dir, 'not-json'), 'CANARY-SECRET-7f3a\n');
    expect(make('not-json')).toThrow(/jwks_file .*not-json is not valid JSON$/);
    try {
      make('not-json')();
    } catch (err) {
      expect((err as Error).message).not.toContain('CANARY');
    }
    await writeFile(join(dir, 'empty.json'), '{"keys":[]}');
    expect(make('empty.json')).toThrow(/has no keys/);
    await writeFile(join(dir, 'private.json'), JSON.stringify({ keys: [{ ...rsa.jwk, d: 'AQAB' }] }));
    expect(make('private.json')).toThrow(/private or symmetric key material/);
    await writeFile(join(dir, 'junk.json'), '{"keys":[1,"x",{"kty":"RSA"}]}');
    expect(make('junk.json')).toThrow(/junk\.json holds a key that is not a JSON object/);
    expect(make('missing.json')).toThrow(/cannot read jwks_file .*missing\.json \(ENOENT\)/);
    // A kid with a byte that is not UTF-8 would otherwise be read as U+FFFD and match no token.
    const [head, tail] = JSON.stringify({ keys: [{ ...rsa.jwk, kid: 'k@' }] }).split('@') as [string, string];
    await writeFile(join(dir, 'latin1.json'), Buffer.concat([Buffer.from(head), Buffer.from([0xe9]), Buffer.from(tail)]));
    expect(make('latin1.json')).toThrow(new RegExp(`cannot read jwks_file .*latin1\\.json \\(not valid UTF-8 at line 1, column ${head.length + 1}\\)$`));
  });

  it('refuses at start a key file, CA file or token file larger than its cap, by its size, without reading it whole', async () => {
    const MIB = 1024 * 1024;
    // Valid content padded with spaces: only the size is wrong.
    const padded = (text: string, bytes: number) => text + ' '.repeat(bytes - Buffer.byteLength(text));
    await writeFile(join(dir, 'big-jwks.json'), padded(JSON.stringify({ keys: [rsa.jwk] }), MIB + 1));
    expect(() => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: join(dir, 'big-jwks.json') })).toThrow(
      /cannot read jwks_file .*big-jwks\.json \(the file is 1048577 bytes, more than the 1048576 it may have\)$/,
    );
    await writeFile(join(dir, 'big-ca.pem'), padded(await readFile(join(import.meta.dirname, 'fixtures', 'ca.crt'), 'utf8'), MIB + 1));
    expect(() => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl, jwksCaFile: join(dir, 'big-ca.pem') })).toThrow(
      /cannot read jwks_ca_file .*big-ca\.pem \(the file is 1048577 bytes, more than the 1048576 it may have\)$/,
    );
    await writeFile(join(dir, 'big-token'), padded(CLUSTER_TOKEN, 64 * 1024 + 1));
    const tooLarge = () => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl, jwksBearerTokenFile: join(dir, 'big-token') });
    expect(tooLarge).toThrow(/cannot read jwks_bearer_token_file .*big-token \(the file is 65537 bytes, more than the 65536 it may have\)$/);
    try {
      tooLarge();
    } catch (err) {
      expect((err as Error).message).not.toContain(CLUSTER_TOKEN);
    }
    // At the cap exactly, each is read.
    await writeFile(join(dir, 'cap-jwks.json'), padded(JSON.stringify({ keys: [rsa.jwk] }), MIB));
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: join(dir, 'cap-jwks.json') });
    expect(await k8s.authenticate(creds(await sign(k8sClaims())))).toMatchObject({ kind: 'kubernetes' });
  });

  it('refuses at start a CA file that is missing or not PEM, and a missing token file', async () => {
    const make = (o: object) => () => new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl, ...o });
    expect(make({ jwksCaFile: join(dir, 'no-ca.pem') })).toThrow(/cannot read jwks_ca_file .*no-ca\.pem \(ENOENT\)$/);
    expect(make({ jwksCaFile: join(dir, 'token') })).toThrow(/jwks_ca_file .* holds no PEM certificate/);
    expect(make({ jwksBearerTokenFile: join(dir, 'no-token') })).toThrow(/cannot read jwks_bearer_token_file/);
  });

  it('refuses a token issued in the future, and says which claim is malformed', async () => {
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl, clockToleranceSec: 5 });
    const issuedAt = (iat: number) =>
      new SignJWT(k8sClaims()).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(ISSUER).setAudience(AUD).setIssuedAt(iat).setExpirationTime(now() + 7200).sign(rsa.privateKey);
    expect((await authError(k8s, creds(await issuedAt(now() + 3600)))).message).toMatch(/token issued in the future/);
    expect(await k8s.authenticate(creds(await issuedAt(now() + 3)))).not.toBeNull(); // within the tolerance
    expect((await authError(k8s, creds(await sign({ ...k8sClaims(), nbf: 'x' as unknown as number })))).message).toMatch(/claim "nbf" is malformed/);
  });
});

// A key server whose answer the test changes; it counts its fetches.
async function mutableJwks(): Promise<{ url: string; serve(keys: JWK[], status?: number): void; hits(): number; close(): Promise<void> }> {
  let keys: JWK[] = [];
  let status = 200;
  let hits = 0;
  const srv = createServer((_req, res) => {
    hits++;
    res.writeHead(status, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/keys`,
    serve: (k, st = 200) => {
      keys = k;
      status = st;
    },
    hits: () => hits,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

describe('a key removed from the key set', () => {
  it('JWKS URL: once the set is fetched without it, a token verified with it is refused, not answered from the verified-token cache', async () => {
    const jwks = await mutableJwks();
    try {
      jwks.serve([rsa.jwk, ec.jwk]);
      // The key set is trusted 200 ms here (10 minutes by default), a verified token 60 s.
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, jwksCacheMaxAgeMs: 200 });
      const old = await sign(k8sClaims());
      expect((await k8s.authenticate(creds(old)))?.namespace).toBe('payments');
      // Cached: answered at once, no promise.
      expect(k8s.authenticate(creds(old))).not.toBeInstanceOf(Promise);
      // The RSA key is withdrawn. Once the set is stale, the next verification fetches it again.
      jwks.serve([ec.jwk]);
      const fetched = jwks.hits();
      await new Promise((r) => setTimeout(r, 300));
      const fresh = await sign(k8sClaims('payments', 'refunds'));
      expect((await authError(k8s, creds(fresh))).message).toMatch(/no matching key/);
      expect(jwks.hits()).toBeGreaterThan(fetched);
      // The token verified with the withdrawn key is verified again, and refused.
      expect((await authError(k8s, creds(old))).message).toMatch(/no matching key/);
      // A token of a key still in the set works, and is remembered again.
      const kept = await sign(k8sClaims(), { key: ec.privateKey, alg: 'ES256', kid: 'ec-1' });
      expect((await k8s.authenticate(creds(kept)))?.namespace).toBe('payments');
      expect(k8s.authenticate(creds(kept))).not.toBeInstanceOf(Promise);
    } finally {
      await jwks.close();
    }
  });

  it('JWKS file: after a quiet spell, the first tokens are checked against the file as it is now, not as it was', async () => {
    const root = await mkdtemp(join(tmpdir(), 'warden-jwks-quiet-'));
    const file = join(root, 'jwks.json');
    await writeFile(file, JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
    // Only Date is faked: the look at the file is real I/O.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: file });
      const old = await sign(k8sClaims());
      expect((await k8s.authenticate(creds(old)))?.namespace).toBe('payments');
      // The RSA key is withdrawn (the file replaced by rename, as a ConfigMap update does), and
      // nobody calls for an hour.
      await writeFile(join(root, 'next.json'), JSON.stringify({ keys: [ec.jwk] }));
      await rename(join(root, 'next.json'), file);
      vi.setSystemTime(Date.now() + 3_600_000);
      // A burst signed with the withdrawn key: new tokens and the one verified before. Every one
      // is refused, the first included (it used to start the look and be verified without it).
      const burst = [await sign(k8sClaims('payments', 'a')), await sign(k8sClaims('payments', 'b')), old];
      const refusals = await Promise.all(burst.map((t) => authError(k8s, creds(t))));
      for (const err of refusals) expect(err.code).toBe('unauthenticated');
      // The key still in the file works.
      const kept = await sign(k8sClaims(), { key: ec.privateKey, alg: 'ES256', kid: 'ec-1' });
      expect((await k8s.authenticate(creds(kept)))?.namespace).toBe('payments');
    } finally {
      vi.useRealTimers();
      await rm(root, { recursive: true, force: true });
    }
  });

  it('JWKS URL: a remembered token is answered without copying the key set (jose clones it on every jwks() call)', async () => {
    const jwks = await mutableJwks();
    const clones = vi.spyOn(globalThis, 'structuredClone');
    try {
      jwks.serve([rsa.jwk, ec.jwk]);
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url });
      const token = await sign(k8sClaims());
      await k8s.authenticate(creds(token));
      clones.mockClear();
      for (let i = 0; i < 100; i++) expect((k8s.authenticate(creds(token)) as Principal).namespace).toBe('payments');
      // The key set generation is read for every token: by the identity of jose's cached set, not
      // by a copy of it (a structuredClone and a JSON.stringify of every key, ~20 µs a call).
      expect(clones).not.toHaveBeenCalled();
    } finally {
      clones.mockRestore();
      await jwks.close();
    }
  });

  it('JWKS URL: a refetch that brings the same keys keeps the verified tokens', async () => {
    const jwks = await mutableJwks();
    try {
      jwks.serve([rsa.jwk]);
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, jwksCacheMaxAgeMs: 200 });
      const first = await sign(k8sClaims());
      await k8s.authenticate(creds(first));
      await new Promise((r) => setTimeout(r, 300));
      const fetched = jwks.hits();
      await k8s.authenticate(creds(await sign(k8sClaims('payments', 'refunds'))));
      expect(jwks.hits()).toBeGreaterThan(fetched);
      expect(k8s.authenticate(creds(first))).not.toBeInstanceOf(Promise);
    } finally {
      await jwks.close();
    }
  });
});

describe('a key set that served an unusable key', () => {
  // Only Date is faked (jose's cache and cooldown read Date.now); sockets and timeouts stay real.
  beforeAll(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterAll(() => vi.useRealTimers());

  const unusable: Array<[string, () => JWK]> = [
    ['cannot be imported (no exponent)', () => ({ ...rsa.jwk, e: undefined } as unknown as JWK)],
    ['imports but is unusable (a 24-bit modulus)', () => ({ ...rsa.jwk, n: 'AAAA' })],
  ];
  for (const [what, badKey] of unusable) {
    it(`refetches, at most once per cooldown, when the token's key ${what}, and accepts once a good key is served`, async () => {
      const jwks = await mutableJwks();
      try {
        vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
        const warnings: object[] = [];
        const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, logger: { warn: (o) => warnings.push(o) } });
        const token = await sign(k8sClaims());
        jwks.serve([badKey()]);
        expect((await authError(k8s, creds(token))).message).toBe('kubernetes authentication failed: JWKS unavailable');
        expect(jwks.hits()).toBe(1);
        expect(warnings).toEqual([{ method: 'kubernetes', reason: 'a key could not be used' }]);

        // Within the cooldown nothing is fetched, however often a token is presented.
        vi.setSystemTime(new Date('2030-01-01T00:00:20Z'));
        for (let i = 0; i < 3; i++) await authError(k8s, creds(token));
        expect(jwks.hits()).toBe(1);

        // After it, one refetch; the endpoint still serves the bad key: refused, and the next
        // tries within the new cooldown fetch nothing.
        vi.setSystemTime(new Date('2030-01-01T00:00:31Z'));
        await authError(k8s, creds(token));
        expect(jwks.hits()).toBe(2);
        vi.setSystemTime(new Date('2030-01-01T00:00:45Z'));
        await authError(k8s, creds(token));
        expect(jwks.hits()).toBe(2);

        // The issuer fixes its key set: the first request after the cooldown is accepted.
        jwks.serve([rsa.jwk]);
        vi.setSystemTime(new Date('2030-01-01T00:01:02Z'));
        expect(await k8s.authenticate(creds(token))).toMatchObject({ kind: 'kubernetes', namespace: 'payments' });
        expect(jwks.hits()).toBe(3);
      } finally {
        await jwks.close();
      }
    });
  }

  it('a SPIFFE bundle recovers the same way, and a refetch that fails waits out the cooldown too', async () => {
    const jwks = await mutableJwks();
    try {
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
      const s = new SpiffeJwtAuthenticator({ trustDomains: ['prod.example'], audiences: [AUD], jwksUrl: jwks.url });
      const token = await sign({ sub: 'spiffe://prod.example/ns/payments/sa/checkout' });
      jwks.serve([{ ...rsa.jwk, use: 'jwt-svid', e: undefined } as unknown as JWK]);
      await authError(s, creds(token));
      expect(jwks.hits()).toBe(1);
      // The refetch finds the endpoint failing: refused, and not tried again for 30 s although
      // the last key set that was had is older than that.
      jwks.serve([], 500);
      vi.setSystemTime(new Date('2030-01-01T00:00:31Z'));
      await authError(s, creds(token));
      expect(jwks.hits()).toBe(2);
      jwks.serve([{ ...rsa.jwk, use: 'jwt-svid' }]);
      vi.setSystemTime(new Date('2030-01-01T00:00:50Z'));
      await authError(s, creds(token));
      expect(jwks.hits()).toBe(2);
      vi.setSystemTime(new Date('2030-01-01T00:01:02Z'));
      expect(await s.authenticate(creds(token))).toMatchObject({ spiffe_id: 'spiffe://prod.example/ns/payments/sa/checkout' });
      expect(jwks.hits()).toBe(3);
    } finally {
      await jwks.close();
    }
  });

  it('an endpoint that fails from the start is not fetched twice per request', async () => {
    const jwks = await mutableJwks();
    try {
      jwks.serve([], 500);
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url });
      await authError(k8s, creds(await sign(k8sClaims())));
      expect(jwks.hits()).toBe(1);
    } finally {
      await jwks.close();
    }
  });
});

describe('a key rotated behind the same kid', () => {
  // Only Date is faked (jose's cache and cooldown read Date.now); sockets and timeouts stay real.
  beforeAll(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterAll(() => vi.useRealTimers());

  it('a signature failure refetches the key set once and accepts the new key; a flood of bad signatures fetches at most once per cooldown', async () => {
    const jwks = await mutableJwks();
    try {
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, verifiedCacheMs: 0 });
      jwks.serve([rsa.jwk]);
      expect(await k8s.authenticate(creds(await sign(k8sClaims())))).toMatchObject({ namespace: 'payments' });
      expect(jwks.hits()).toBe(1);

      // The issuer replaces its key but keeps the kid; the cached set (10 min) still holds the old one.
      const rotated = await keyPair('RS256', 'rsa-1');
      jwks.serve([rotated.jwk]);
      vi.setSystemTime(new Date('2030-01-01T00:00:40Z'));
      const fresh = await sign(k8sClaims('payments', 'rotated'), { key: rotated.privateKey });
      expect(await k8s.authenticate(creds(fresh))).toMatchObject({ service_account: 'rotated' });
      expect(jwks.hits()).toBe(2);
      // The new key is cached now: no fetch for the next token it signed.
      expect(await k8s.authenticate(creds(fresh))).toMatchObject({ service_account: 'rotated' });
      expect(jwks.hits()).toBe(2);

      // Forged tokens under the same kid: refused for their signature, and within the cooldown
      // of the last fetch nothing is fetched however many arrive.
      const forged = await sign(k8sClaims(), { key: other.privateKey });
      vi.setSystemTime(new Date('2030-01-01T00:00:50Z'));
      const refused = await Promise.all(Array.from({ length: 20 }, () => authError(k8s, creds(forged))));
      expect(new Set(refused.map((e) => e.message))).toEqual(new Set(['kubernetes authentication failed: signature verification failed']));
      expect(jwks.hits()).toBe(2);
      // After the cooldown a flood shares one fetch, and the next cooldown holds again.
      vi.setSystemTime(new Date('2030-01-01T00:01:11Z'));
      await Promise.all(Array.from({ length: 20 }, () => authError(k8s, creds(forged))));
      expect(jwks.hits()).toBe(3);
      vi.setSystemTime(new Date('2030-01-01T00:01:30Z'));
      for (let i = 0; i < 5; i++) await authError(k8s, creds(forged));
      expect(jwks.hits()).toBe(3);
    } finally {
      await jwks.close();
    }
  });

  it(`several keys fitting one token (no kid, or a kid two keys share) are each tried, ${MAX_CANDIDATE_KEYS} at most; none verifying is a bad signature, and refetches once per cooldown`, async () => {
    const jwks = await mutableJwks();
    try {
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, verifiedCacheMs: 0 });
      const pairs = await Promise.all(Array.from({ length: MAX_CANDIDATE_KEYS + 1 }, () => keyPair('ES256', 'same')));
      jwks.serve(pairs.map((p) => p.jwk));
      const byKey = (i: number, kid: string | null) => sign(k8sClaims('payments', `key-${i}`), { key: pairs[i]!.privateKey, alg: 'ES256', kid });
      // The last key that may be tried, under the shared kid and under none.
      const last = MAX_CANDIDATE_KEYS - 1;
      expect(await k8s.authenticate(creds(await byKey(last, 'same')))).toMatchObject({ service_account: `key-${last}` });
      expect(await k8s.authenticate(creds(await byKey(last, null)))).toMatchObject({ service_account: `key-${last}` });
      expect(await k8s.authenticate(creds(await byKey(0, null)))).toMatchObject({ service_account: 'key-0' });
      // A claim that fails once a key verified the signature is the answer, not "bad signature".
      const expired = await sign(k8sClaims(), { key: pairs[3]!.privateKey, alg: 'ES256', kid: 'same', exp: now() - 600 });
      expect((await authError(k8s, creds(expired))).message).toBe('kubernetes authentication failed: token expired');
      expect(jwks.hits()).toBe(1);
      // Past the bound a forged token costs no more checks; a key that far is not tried either.
      vi.setSystemTime(new Date('2030-01-01T00:00:40Z'));
      const refused = await Promise.all([byKey(MAX_CANDIDATE_KEYS, 'same'), sign(k8sClaims(), { key: other.privateKey, alg: 'RS256', kid: 'same' }), sign(k8sClaims(), { key: ec.privateKey, alg: 'ES256', kid: null })].map(async (t) => (await authError(k8s, creds(await t))).message));
      expect(refused[0]).toBe('kubernetes authentication failed: signature verification failed');
      expect(refused[1]).toMatch(/no matching key/);
      expect(refused[2]).toBe('kubernetes authentication failed: signature verification failed');
      // The failures shared one refetch (a rotation may have brought the key).
      expect(jwks.hits()).toBe(2);
    } finally {
      await jwks.close();
    }
  });

  it('a flood of forged signatures never copies the key set (jose clones it on every jwks() call)', async () => {
    const jwks = await mutableJwks();
    const clones = vi.spyOn(globalThis, 'structuredClone');
    try {
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
      // A large set (a federation bundle): a copy per refused token would cost more than its check.
      const filler = await Promise.all(Array.from({ length: 20 }, (_, i) => keyPair('ES256', `filler-${i}`)));
      jwks.serve([rsa.jwk, ...filler.map((p) => p.jwk)]);
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, verifiedCacheMs: 0 });
      expect(await k8s.authenticate(creds(await sign(k8sClaims())))).toMatchObject({ namespace: 'payments' });
      const forged = await sign(k8sClaims(), { key: other.privateKey });
      clones.mockClear();
      // Within the cooldown of the fetch, and then past it (one refetch, shared).
      vi.setSystemTime(new Date('2030-01-01T00:00:05Z'));
      for (let i = 0; i < 20; i++) await authError(k8s, creds(forged));
      vi.setSystemTime(new Date('2030-01-01T00:00:40Z'));
      await Promise.all(Array.from({ length: 20 }, () => authError(k8s, creds(forged))));
      expect(jwks.hits()).toBe(2);
      // The refetch builds jose's new set (one copy); no refused token copies it.
      expect(clones.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      clones.mockRestore();
      await jwks.close();
    }
  });

  it('a JWKS file that swaps the key behind a kid is read again on the signature failure', async () => {
    const root = await mkdtemp(join(tmpdir(), 'warden-jwks-kid-'));
    const file = join(root, 'jwks.json');
    await writeFile(file, JSON.stringify({ keys: [rsa.jwk] }));
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: file });
    const rotated = await keyPair('RS256', 'rsa-1');
    // Replaced, not rewritten in place: a new inode, so the change is seen even within one mtime tick.
    await writeFile(join(root, 'next.json'), JSON.stringify({ keys: [rotated.jwk] }));
    await rename(join(root, 'next.json'), file);
    vi.setSystemTime(new Date('2030-01-01T00:00:10Z'));
    try {
      expect(await k8s.authenticate(creds(await sign(k8sClaims('payments', 'rotated'), { key: rotated.privateKey })))).toMatchObject({ service_account: 'rotated' });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('a JWKS endpoint that fails or misbehaves', () => {
  // Only Date is faked (the retry wait and jose's cache read Date.now); sockets stay real.
  beforeAll(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterAll(() => vi.useRealTimers());

  /** A key server whose answer is whatever `answer` does now; it records each path asked for. */
  async function scriptedJwks(): Promise<{ url: string; answer: (res: import('node:http').ServerResponse) => void; paths: string[]; close(): Promise<void> }> {
    const state = {
      answer: (res: import('node:http').ServerResponse) => void res.writeHead(500).end(),
      paths: [] as string[],
    };
    const srv = createServer((req, res) => {
      state.paths.push(req.url ?? '');
      state.answer(res);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return Object.assign(state, {
      url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/keys`,
      close: () => new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
    });
  }

  it('an endpoint that is down is asked again at most once per 5 s, not once per request, and trusted again once it answers', async () => {
    const jwks = await scriptedJwks();
    try {
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
      const warnings: object[] = [];
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, logger: { warn: (o) => warnings.push(o) } });
      const token = await sign(k8sClaims());
      // Any JWT naming the issuer, signed or not, reaches the key lookup: a flood of them while
      // the API server is down must not become a flood of requests to it.
      for (let i = 0; i < 20; i++) expect((await authError(k8s, creds(token))).message).toBe('kubernetes authentication failed: JWKS unavailable');
      expect(jwks.paths).toHaveLength(1);
      expect(warnings).toEqual([{ method: 'kubernetes', reason: 'unexpected HTTP response (not 200 with a key set)' }]);
      jwks.answer = (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('not json at all');
      vi.setSystemTime(new Date('2030-01-01T00:00:04Z'));
      await authError(k8s, creds(token));
      expect(jwks.paths).toHaveLength(1);
      vi.setSystemTime(new Date('2030-01-01T00:00:06Z'));
      for (let i = 0; i < 5; i++) await authError(k8s, creds(token));
      expect(jwks.paths).toHaveLength(2);
      jwks.answer = (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [rsa.jwk] }));
      vi.setSystemTime(new Date('2030-01-01T00:00:12Z'));
      expect(await k8s.authenticate(creds(token))).toMatchObject({ kind: 'kubernetes', namespace: 'payments' });
      expect(jwks.paths).toHaveLength(3);
    } finally {
      await jwks.close();
    }
  });

  it('a key set body over 1 MiB is refused, whether or not it says its length, however valid its keys', async () => {
    const jwks = await scriptedJwks();
    try {
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
      // A valid key set: the token's key, then padding keys of other kids, 2 MiB in all.
      const filler = { ...ec.jwk, kid: 'x'.repeat(1000) };
      const body = JSON.stringify({ keys: [rsa.jwk, ...Array.from({ length: 2048 }, () => filler)] });
      for (const withLength of [true, false]) {
        jwks.answer = (res) => {
          res.writeHead(200, { 'content-type': 'application/json', ...(withLength ? { 'content-length': String(Buffer.byteLength(body)) } : {}) });
          res.end(body);
        };
        const warnings: object[] = [];
        const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, logger: { warn: (o) => warnings.push(o) } });
        expect((await authError(k8s, creds(await sign(k8sClaims())))).message).toBe('kubernetes authentication failed: JWKS unavailable');
        expect(warnings).toEqual([{ method: 'kubernetes', reason: 'key set response too large' }]);
      }
      // The same keys without the padding are accepted: the size is what was refused.
      jwks.answer = (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [rsa.jwk] }));
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url });
      expect(await k8s.authenticate(creds(await sign(k8sClaims())))).toMatchObject({ namespace: 'payments' });
    } finally {
      await jwks.close();
    }
  });

  it('a new kid is fetched on demand, but a flood of made-up kids fetches at most once per 30 s', async () => {
    const jwks = await scriptedJwks();
    try {
      let keys = [rsa.jwk];
      jwks.answer = (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url });
      expect(await k8s.authenticate(creds(await sign(k8sClaims())))).toMatchObject({ namespace: 'payments' });
      expect(jwks.paths).toHaveLength(1);
      vi.setSystemTime(new Date('2030-01-01T00:00:10Z'));
      for (let i = 0; i < 30; i++) expect((await authError(k8s, creds(await sign(k8sClaims(), { kid: `made-up-${i}` })))).message).toMatch(/unknown kid/);
      expect(jwks.paths).toHaveLength(1);
      // The issuer rotates in a new key: the first token under it after the cooldown fetches it.
      const rotated = await keyPair('RS256', 'rsa-2');
      keys = [rsa.jwk, rotated.jwk];
      vi.setSystemTime(new Date('2030-01-01T00:00:31Z'));
      expect(await k8s.authenticate(creds(await sign(k8sClaims('payments', 'new'), { key: rotated.privateKey, kid: 'rsa-2' })))).toMatchObject({ service_account: 'new' });
      expect(jwks.paths).toHaveLength(2);
      vi.setSystemTime(new Date('2030-01-01T00:00:50Z'));
      for (let i = 0; i < 30; i++) await authError(k8s, creds(await sign(k8sClaims(), { kid: `made-up-again-${i}` })));
      expect(jwks.paths).toHaveLength(2);
    } finally {
      await jwks.close();
    }
  });

  it('a redirect is not followed: the key set must come from the configured URL', async () => {
    const jwks = await scriptedJwks();
    try {
      jwks.answer = (res) => void res.writeHead(302, { location: '/elsewhere' }).end();
      const warnings: object[] = [];
      const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl: jwks.url, logger: { warn: (o) => warnings.push(o) } });
      expect((await authError(k8s, creds(await sign(k8sClaims())))).message).toBe('kubernetes authentication failed: JWKS unavailable');
      expect(jwks.paths).toEqual(['/keys']);
      expect(warnings).toEqual([{ method: 'kubernetes', reason: 'unexpected HTTP response (not 200 with a key set)' }]);
    } finally {
      await jwks.close();
    }
  });
});

describe('a JWKS file that rotates', () => {
  /**
   * A ConfigMap volume as the kubelet writes it: the file is `jwks.json -> ..data/jwks.json`, and an
   * update writes a new timestamped directory, then renames a new `..data` link over the old one.
   */
  async function configMapDir(): Promise<{ file: string; update(text: string): Promise<void> }> {
    const root = await mkdtemp(join(tmpdir(), 'warden-jwks-cm-'));
    let n = 0;
    const update = async (text: string) => {
      const version = `..2030_01_01_00_00_0${++n}`;
      await mkdir(join(root, version));
      await writeFile(join(root, version, 'jwks.json'), text);
      await symlink(version, join(root, '..data_tmp'));
      await rename(join(root, '..data_tmp'), join(root, '..data'));
    };
    return { file: join(root, 'jwks.json'), update };
  }

  beforeAll(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterAll(() => vi.useRealTimers());

  it('follows a ConfigMap update on a new kid (checked at most once per cooldown); an invalid update keeps the keys it had', async () => {
    const cm = await configMapDir();
    await cm.update(JSON.stringify({ keys: [rsa.jwk] }));
    await symlink('..data/jwks.json', cm.file);
    const next = await keyPair('ES256', 'rotated-2');
    const warnings: object[] = [];
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: cm.file, logger: { warn: (o) => warnings.push(o) } });
    const signNew = () => sign(k8sClaims(), { key: next.privateKey, alg: 'ES256', kid: 'rotated-2' });

    // Before the rotation the new key is unknown.
    expect((await authError(k8s, creds(await signNew()))).message).toContain('no matching key');

    // The platform team publishes both keys; within the cooldown of that check the file is not
    // looked at again, after it the new key is accepted, and the old one still is.
    await cm.update(JSON.stringify({ keys: [rsa.jwk, next.jwk] }));
    vi.setSystemTime(new Date('2030-01-01T00:00:01Z'));
    await authError(k8s, creds(await signNew()));
    vi.setSystemTime(new Date('2030-01-01T00:00:10Z'));
    expect(await k8s.authenticate(creds(await signNew()))).toMatchObject({ kind: 'kubernetes', namespace: 'payments' });
    expect(await k8s.authenticate(creds(await sign(k8sClaims('payments', 'old-key'))))).toMatchObject({ service_account: 'old-key' });
    expect(warnings).toEqual([]);

    // A broken update (here: not JSON, holding a canary) is reported once, naming the file and
    // never its content; the keys read before stay in use.
    const third = await keyPair('ES256', 'rotated-3');
    await cm.update(`{"keys": [${JSON.stringify(third.jwk)}], CANARY-SECRET-jwks-content`);
    vi.setSystemTime(new Date('2030-01-01T00:00:20Z'));
    await authError(k8s, creds(await sign(k8sClaims(), { key: third.privateKey, alg: 'ES256', kid: 'rotated-3' })));
    vi.setSystemTime(new Date('2030-01-01T00:00:30Z'));
    await authError(k8s, creds(await sign(k8sClaims(), { key: third.privateKey, alg: 'ES256', kid: 'rotated-3' })));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ method: 'kubernetes', file: cm.file });
    expect(JSON.stringify(warnings)).not.toContain('CANARY');
    expect(await k8s.authenticate(creds(await sign(k8sClaims('payments', 'still-old'))))).toMatchObject({ service_account: 'still-old' });
    expect(await k8s.authenticate(creds(await sign(k8sClaims('payments', 'still-new'), { key: next.privateKey, alg: 'ES256', kid: 'rotated-2' })))).toMatchObject({
      service_account: 'still-new',
    });

    // Fixed: the next check after the cooldown picks it up.
    await cm.update(JSON.stringify({ keys: [next.jwk, third.jwk] }));
    vi.setSystemTime(new Date('2030-01-01T00:00:40Z'));
    expect(await k8s.authenticate(creds(await sign(k8sClaims('payments', 'third'), { key: third.privateKey, alg: 'ES256', kid: 'rotated-3' })))).toMatchObject({
      service_account: 'third',
    });
  });

  it('a key file replaced by one over 1 MiB is not read: reported once by its size, the keys read before stay in use', async () => {
    const file = join(dir, 'grows.json');
    await writeFile(file, JSON.stringify({ keys: [rsa.jwk] }));
    const warnings: object[] = [];
    vi.setSystemTime(new Date('2032-01-01T00:00:00Z'));
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksFile: file, logger: { warn: (o) => warnings.push(o) } });
    // A valid set, padded past the cap, that would add a new key: it must not be used.
    const text = JSON.stringify({ keys: [rsa.jwk, ec.jwk] });
    await writeFile(file, text + ' '.repeat(1024 * 1024 + 1 - Buffer.byteLength(text)));
    vi.setSystemTime(new Date(Date.now() + 10_000));
    expect((await authError(k8s, creds(await sign(k8sClaims(), { key: ec.privateKey, alg: 'ES256', kid: 'ec-1' })))).message).toMatch(/no matching key/);
    expect(warnings).toEqual([{ method: 'kubernetes', file, code: 'the file is 1048577 bytes, more than the 1048576 it may have' }]);
    expect(await k8s.authenticate(creds(await sign(k8sClaims('payments', 'still-rsa'))))).toMatchObject({ service_account: 'still-rsa' });
  });

  it('a SPIFFE bundle file whose JWT authorities are all withdrawn (x509-svid keys only, or none) refuses every SVID, the remembered one included', async () => {
    const file = join(dir, 'withdrawn-bundle.json');
    await writeFile(file, JSON.stringify({ keys: [{ ...ec.jwk, use: 'jwt-svid' }] }));
    const warnings: object[] = [];
    vi.setSystemTime(new Date('2031-01-01T00:00:00Z'));
    const s = new SpiffeJwtAuthenticator({ trustDomains: ['prod.example'], audiences: [AUD], jwksFile: file, logger: { warn: (o) => warnings.push(o) } });
    const svid = () => sign({ sub: 'spiffe://prod.example/ns/payments/sa/checkout', jti: `j-${Math.random()}` }, { key: ec.privateKey, alg: 'ES256', kid: 'ec-1' });
    const remembered = await svid();
    expect(await s.authenticate(creds(remembered))).toMatchObject({ kind: 'spiffe', namespace: 'payments' });

    for (const keys of [[{ ...ec.jwk, use: 'x509-svid' }], []]) {
      // The trust domain's JWT authority is gone: the bundle holds its CA certificate only, then nothing.
      await writeFile(file, JSON.stringify({ keys }));
      vi.setSystemTime(new Date(Date.now() + 10_000));
      expect((await authError(s, creds(await svid()))).message).toMatch(/no matching key/);
      expect((await authError(s, creds(remembered))).message).toMatch(/no matching key/);
    }
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatchObject({ method: 'spiffe', file });

    // Keys come back: SVIDs are accepted again.
    await writeFile(file, JSON.stringify({ keys: [{ ...ec.jwk, use: 'jwt-svid' }] }));
    vi.setSystemTime(new Date(Date.now() + 10_000));
    expect(await s.authenticate(creds(await svid()))).toMatchObject({ kind: 'spiffe' });
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

describe('Kubernetes names in a principal', () => {
  it('a kubernetes token naming a service account or pod Kubernetes cannot hold is refused', async () => {
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl });
    for (const sa of ['a..b', 'a.-b', 'a-.b', '.a']) {
      expect((await authError(k8s, creds(await sign({ sub: `system:serviceaccount:payments:${sa}` })))).message, sa).toMatch(/service account claim is invalid/);
      const claims = k8sClaims();
      (claims['kubernetes.io'] as { pod: { name: string } }).pod.name = sa;
      expect((await authError(k8s, creds(await sign(claims)))).message, sa).toMatch(/pod claim is invalid/);
    }
    expect(await k8s.authenticate(creds(await sign({ sub: 'system:serviceaccount:payments:a.b-c' })))).toMatchObject({ service_account: 'a.b-c' });
  });

  it('a SPIFFE /ns/<ns>/sa/<sa> path fills namespace and service account only with names Kubernetes allows', async () => {
    const s = new SpiffeJwtAuthenticator({ trustDomains: ['prod.example'], audiences: [AUD], jwksUrl });
    const unmapped = ['/ns/-x/sa/y', `/ns/${'a'.repeat(64)}/sa/y`, '/ns/a/sa/.y', '/ns/a/sa/y..z', '/ns/a/sa/y.-z', '/ns/a_b/sa/y', '/ns/a/sa/Y'];
    for (const path of unmapped) {
      const p = await s.authenticate(creds(await sign({ sub: `spiffe://prod.example${path}` })));
      expect(p, path).toMatchObject({ kind: 'spiffe', spiffe_id: `spiffe://prod.example${path}` });
      expect(p, path).not.toHaveProperty('namespace');
      expect(p, path).not.toHaveProperty('service_account');
    }
    expect(await s.authenticate(creds(await sign({ sub: `spiffe://prod.example/ns/${'a'.repeat(63)}/sa/y.z` })))).toMatchObject({ namespace: 'a'.repeat(63), service_account: 'y.z' });
  });
});

describe('SpiffeJwtAuthenticator: several trust domains', () => {
  it("verifies each domain's SVIDs with that domain's bundle only: a partner's key cannot sign for prod", async () => {
    await writeFile(join(dir, 'prod-bundle.json'), JSON.stringify({ keys: [rsa.jwk] }));
    await writeFile(join(dir, 'partner-bundle.json'), JSON.stringify({ keys: [{ ...ec.jwk, use: 'jwt-svid' }] }));
    const s = new SpiffeJwtAuthenticator({
      audiences: [AUD],
      bundles: { 'prod.example': { jwksFile: join(dir, 'prod-bundle.json') }, 'partner.example': { jwksFile: join(dir, 'partner-bundle.json') } },
      kubernetesTrustDomains: ['prod.example'],
    });
    const prodId = 'spiffe://prod.example/ns/payments/sa/checkout';
    expect(await s.authenticate(creds(await sign({ sub: prodId })))).toMatchObject({ spiffe_id: prodId, namespace: 'payments' });
    const partnerId = 'spiffe://partner.example/ns/labs/sa/bot';
    expect(await s.authenticate(creds(await sign({ sub: partnerId }, { key: ec.privateKey, alg: 'ES256', kid: 'ec-1' })))).toMatchObject({ spiffe_id: partnerId });
    // The partner's key, claiming to be prod: prod's bundle does not hold it.
    const forged = await sign({ sub: prodId }, { key: ec.privateKey, alg: 'ES256', kid: 'ec-1' });
    expect((await authError(s, creds(forged))).message).toMatch(/no matching key/);
    const evil = await sign({ sub: 'spiffe://evil.example/ns/a/sa/b' });
    expect((await authError(s, creds(evil))).message).toMatch(/trust domain evil\.example is not accepted/);
    expect(await s.authenticate(creds(await sign(k8sClaims())))).toBeNull();
  });

  it("maps /ns/<ns>/sa/<sa> only in the trust domains named as this cluster's: a partner's path is not prod's service account", async () => {
    await writeFile(join(dir, 'prod-bundle.json'), JSON.stringify({ keys: [rsa.jwk] }));
    await writeFile(join(dir, 'partner-bundle.json'), JSON.stringify({ keys: [{ ...ec.jwk, use: 'jwt-svid' }] }));
    const bundles = { 'prod.example': { jwksFile: join(dir, 'prod-bundle.json') }, 'partner.example': { jwksFile: join(dir, 'partner-bundle.json') } };
    // The partner signs, in its own domain, the path of prod's payments service account.
    const partnerToken = await sign({ sub: 'spiffe://partner.example/ns/prod/sa/payments' }, { key: ec.privateKey, alg: 'ES256', kid: 'ec-1' });
    const prodToken = await sign({ sub: 'spiffe://prod.example/ns/prod/sa/payments' });
    const unmapped = new SpiffeJwtAuthenticator({ audiences: [AUD], bundles });
    const none = await unmapped.authenticate(creds(partnerToken));
    expect(none).toMatchObject({ spiffe_id: 'spiffe://partner.example/ns/prod/sa/payments' });
    expect(none).not.toHaveProperty('namespace');
    expect(none).not.toHaveProperty('service_account');
    expect(await unmapped.authenticate(creds(prodToken))).not.toHaveProperty('namespace');

    const mapped = new SpiffeJwtAuthenticator({ audiences: [AUD], bundles, kubernetesTrustDomains: ['prod.example'] });
    expect(await mapped.authenticate(creds(prodToken))).toMatchObject({ namespace: 'prod', service_account: 'payments' });
    expect(await mapped.authenticate(creds(partnerToken))).not.toHaveProperty('namespace');
    expect(() => new SpiffeJwtAuthenticator({ audiences: [AUD], bundles, kubernetesTrustDomains: ['evil.example'] })).toThrow(/evil\.example, which is not an accepted trust domain/);
  });

  it('refuses one key set for several trust domains', () => {
    expect(() => new SpiffeJwtAuthenticator({ trustDomains: ['prod.example', 'partner.example'], audiences: [AUD], jwksUrl })).toThrow(
      /one key set cannot serve several trust domains/,
    );
  });

  it('refuses SPIFFE IDs the spec forbids: dot segments, empty segments, a trailing slash, percent-encoding', async () => {
    const s = new SpiffeJwtAuthenticator({ trustDomains: ['prod.example'], audiences: [AUD], jwksUrl });
    for (const id of ['spiffe://prod.example/ns/../sa/x', 'spiffe://prod.example/ns/./sa', 'spiffe://prod.example/ns//sa/x', 'spiffe://prod.example/ns/a/', 'spiffe://prod.example/', 'spiffe://prod.example/ns/%41']) {
      expect((await authError(s, creds(await sign({ sub: id })))).message, id).toMatch(/not a valid SPIFFE ID/);
    }
    expect(await s.authenticate(creds(await sign({ sub: 'spiffe://prod.example' })))).toMatchObject({ spiffe_id: 'spiffe://prod.example' });
  });

  it('refuses a trust domain over 255 characters as no SPIFFE ID, without repeating it', async () => {
    await writeFile(join(dir, 'prod-bundle.json'), JSON.stringify({ keys: [rsa.jwk] }));
    const single = new SpiffeJwtAuthenticator({ trustDomains: ['prod.example'], audiences: [AUD], jwksUrl });
    const several = new SpiffeJwtAuthenticator({ audiences: [AUD], bundles: { 'prod.example': { jwksFile: join(dir, 'prod-bundle.json') }, 'b.example': { jwksFile: join(dir, 'prod-bundle.json') } } });
    const canary = `canary-${'z'.repeat(249)}`; // 256 characters
    for (const s of [single, several]) {
      const err = await authError(s, creds(await sign({ sub: `spiffe://${canary}/x` })));
      expect(err.message).toBe('spiffe authentication failed: sub is not a valid SPIFFE ID');
      expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain('canary');
      // One character less is a trust domain, just not an accepted one.
      expect((await authError(s, creds(await sign({ sub: `spiffe://${canary.slice(1)}/x` })))).message).toMatch(/trust domain .* is not accepted/);
    }
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
    // What the method takes is said (an issuer that is not quite the configured one is the usual
    // mistake), never what the token holds.
    expect(err).toMatchObject({ code: 'unauthenticated', message: 'bearer token not accepted by any configured method (kubernetes takes a JWT whose iss is one of identity.kubernetes.issuer)' });
    expect(JSON.stringify(err)).not.toContain(token);
    expect(JSON.stringify(err)).not.toContain('elsewhere');
    const spiffe = new SpiffeJwtAuthenticator({ trustDomains: ['prod.example'], audiences: [AUD], jwksUrl });
    const both = await Promise.resolve()
      .then(() => createAuthenticateStage([k8s, spiffe]).run(makeContext({ credentials: creds('sk-not-a-jwt') })))
      .catch((e: unknown) => e as WardenError);
    expect(both).toMatchObject({
      message: 'bearer token not accepted by any configured method (kubernetes takes a JWT whose iss is one of identity.kubernetes.issuer; spiffe takes a JWT whose sub is a spiffe:// ID)',
      details: { methods: ['kubernetes', 'spiffe'] },
    });
  });
});

describe('authenticate stage: credentials sent but unreadable', () => {
  it('a malformed or repeated credential is refused with its reason before any method, dev included, sees it', () => {
    const k8s = new KubernetesTokenAuthenticator({ issuer: ISSUER, audiences: [AUD], jwksUrl });
    const dev = new DevAuthenticator({ principal: { namespace: 'dev', service_account: 'local' } });
    const stage = createAuthenticateStage([k8s, dev]);
    const ctx = makeContext({ credentials: { ...creds(), malformed: 'the Authorization header is not a Bearer token' } });
    // Thrown at once (no method was asked, so no promise to wait for).
    expect(() => stage.run(ctx)).toThrow(expect.objectContaining({ code: 'unauthenticated', message: 'the Authorization header is not a Bearer token' }));
    expect(ctx.principal).toBeUndefined();
    // The same caller without credentials is dev: the refusal above is not the peer's doing.
    const none = makeContext({ credentials: creds() });
    stage.run(none);
    expect(none.principal?.kind).toBe('dev');
  });
});
