import { createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { testKeyPair } from '../../../keys.js';
import { call, callError, ctx } from './helpers.js';

const nowS = Number(ctx.nowNs / 1_000_000_000n);

let rsa: { publicKey: KeyObject; privateKey: KeyObject };
let otherRsa: { publicKey: KeyObject; privateKey: KeyObject };
let ec: { publicKey: KeyObject; privateKey: KeyObject };
let rsaPem: string;
let ecPem: string;
let rsaJwks: string;

const sign = (alg: string, key: KeyObject | Uint8Array, claims: Record<string, unknown> = {}) =>
  new SignJWT({ sub: 'system:serviceaccount:payments:api', ...claims }).setProtectedHeader({ alg, kid: 'k1' }).sign(key);

/** Flips one character of the payload, keeping it valid base64url. */
function tamper(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const c = p[5] === 'A' ? 'B' : 'A';
  return [h, p.slice(0, 5) + c + p.slice(6), s].join('.');
}

beforeAll(async () => {
  rsa = testKeyPair('rsa');
  otherRsa = testKeyPair('rsa');
  ec = testKeyPair('ec');
  rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const other = await exportJWK(otherRsa.publicKey);
  const mine = await exportJWK(rsa.publicKey);
  rsaJwks = JSON.stringify({ keys: [{ ...other, kid: 'other' }, { ...mine, kid: 'k1' }] });
});

describe('io.jwt.decode', () => {
  it('returns header, payload and the signature as hex', async () => {
    const t = await sign('HS256', Buffer.from('s3cret'), { n: 1 });
    const [header, payload, sig] = call('io.jwt.decode', t) as [Record<string, unknown>, Record<string, unknown>, string];
    expect(header).toEqual({ alg: 'HS256', kid: 'k1' });
    expect(payload.sub).toBe('system:serviceaccount:payments:api');
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
  });

  it('decodes a nested token (cty: JWT) to the inner token, as OPA does (its jwtbuiltins cases)', () => {
    // OPA's test vectors: the outer payload is the inner token, quoted as jwt.io quotes it.
    const nested =
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImN0eSI6IkpXVCJ9.ImV5SmhiR2NpT2lKSVV6STFOaUlzSW5SNWNDSTZJa3BYVkNKOS5leUp6ZFdJaU9pSXdJaXdpYVhOeklqb2liM0JoSW4wLlhtVm9Mb0hJM3B4TXRNT19XUk9OTVNKekdVRFA5cERqeThKcDBfdGRSWFki.8W0qx4mLxslmZl7wEMUWBxH7tST3XsEuWXxesXqFnRI';
    expect(call('io.jwt.decode', nested)).toEqual([
      { alg: 'HS256', typ: 'JWT' },
      { iss: 'opa', sub: '0' },
      '5e65682e81c8de9c4cb4c3bf59138d3122731940cff690e3cbc269d3fb5d4576',
    ]);
  });

  it('says which section is badly encoded and where, as OPA does (offset, never text)', () => {
    const e = callError('io.jwt.decode', 'eyJhbGciOiJIU^%zI1NiI+sInR5cCI6IkpXVCJ9.eyJzdWIiOiIwIiwiaXNzIjoib3BhIn0.XmVoLoHI3pxMtMO_WRONMSJzGUDP9pDjy8Jp0_tdRXY');
    expect(e.message).toBe('io.jwt.decode: JWT header had invalid encoding: illegal base64 data at input byte 13');
    // The signature is read last: a bad payload is reported before it.
    expect(callError('io.jwt.decode', 'eyJhbGciOiJIUzI1NiJ9.e30(.e30(').message).toBe(
      'io.jwt.decode: JWT payload had invalid encoding: illegal base64 data at input byte 3',
    );
  });

  it('rejects malformed tokens', () => {
    expect(callError('io.jwt.decode', 'a.b').code).toBe('eval_builtin_error');
    expect(callError('io.jwt.decode', 'eyJ!.e30.').code).toBe('eval_builtin_error');
    expect(callError('io.jwt.decode', `${Buffer.from('[1]').toString('base64url')}.e30.`).code).toBe('eval_builtin_error');
  });
});

describe('io.jwt.verify_*', () => {
  it('RS256 with a PEM key and a JWKS: valid, tampered, wrong key', async () => {
    const t = await sign('RS256', rsa.privateKey);
    expect(call('io.jwt.verify_rs256', t, rsaPem)).toBe(true);
    expect(call('io.jwt.verify_rs256', t, rsaJwks)).toBe(true);
    expect(call('io.jwt.verify_rs256', tamper(t), rsaPem)).toBe(false);
    const wrong = await sign('RS256', otherRsa.privateKey);
    expect(call('io.jwt.verify_rs256', wrong, rsaPem)).toBe(false);
    // An RS256 signature is not an RS512 or PS256 one.
    expect(call('io.jwt.verify_rs512', t, rsaPem)).toBe(false);
    expect(call('io.jwt.verify_ps256', t, rsaPem)).toBe(false);
  });

  it('PS256 and ES256', async () => {
    expect(call('io.jwt.verify_ps256', await sign('PS256', rsa.privateKey), rsaPem)).toBe(true);
    const e = await sign('ES256', ec.privateKey);
    expect(call('io.jwt.verify_es256', e, ecPem)).toBe(true);
    expect(call('io.jwt.verify_es256', tamper(e), ecPem)).toBe(false);
    expect(call('io.jwt.verify_es256', e, rsaPem)).toBe(false);
    expect(call('io.jwt.verify_rs256', e, ecPem)).toBe(false);
  });

  it('an algorithm verifies only with a key of its own type (RS/PS: RSA, ES: EC), as OPA', () => {
    // Found in review: node:crypto's verify takes its scheme from the key, not the options, so an
    // RS256 or PS256 header verified an ECDSA signature under an EC key, and an ES256 header an
    // RSA one under an RSA key. No forgery (the key's holder signed it), but not the algorithm
    // the header names; OPA's verifier wants the key type the algorithm names.
    const token = (alg: string, key: KeyObject): string => {
      const input = `${Buffer.from(JSON.stringify({ alg, kid: 'k1' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x' })).toString('base64url')}`;
      return `${input}.${cryptoSign('sha256', Buffer.from(input), key).toString('base64url')}`;
    };
    for (const [alg, key, pem] of [
      ['RS256', ec.privateKey, ecPem],
      ['PS256', ec.privateKey, ecPem],
      ['ES256', rsa.privateKey, rsaPem],
    ] as const) {
      const t = token(alg, key);
      expect(call(`io.jwt.verify_${alg.toLowerCase()}`, t, pem), alg).toBe(false);
      expect(call('io.jwt.decode_verify', t, { cert: pem }), alg).toEqual([false, {}, {}]);
    }
    // A signature of the algorithm's own scheme still verifies (the same helper, RS256 by RSA).
    expect(call('io.jwt.verify_rs256', token('RS256', rsa.privateKey), rsaPem)).toBe(true);
  });

  it('HS256 with the right and wrong secret', async () => {
    const t = await sign('HS256', Buffer.from('s3cret'));
    expect(call('io.jwt.verify_hs256', t, 's3cret')).toBe(true);
    expect(call('io.jwt.verify_hs256', t, 'guess')).toBe(false);
    expect(call('io.jwt.verify_hs256', tamper(t), 's3cret')).toBe(false);
  });

  it('an unparseable key is an error that does not echo the key', async () => {
    const t = await sign('RS256', rsa.privateKey);
    const e = callError('io.jwt.verify_rs256', t, 'CANARY-SECRET-9f8e7d');
    expect(e.code).toBe('eval_builtin_error');
    expect(e.message).not.toContain('CANARY-SECRET-9f8e7d');
  });

  it('a malformed token is an error, as in OPA', () => {
    expect(callError('io.jwt.verify_hs256', 'no-dots', 'k').message).toBe(
      'io.jwt.verify_hs256: encoded JWT had no period separators',
    );
    expect(callError('io.jwt.verify_rs256', 'a.b', rsaPem).message).toBe(
      'io.jwt.verify_rs256: encoded JWT must have 3 sections, found 2',
    );
  });
});

describe('EdDSA (io.jwt.verify_eddsa, decode_verify), as OPA carries it', () => {
  it('verifies Ed25519 tokens with a PEM key or a JWK, and nothing else', async () => {
    const ed = generateKeyPairSync('ed25519');
    const edPem = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const edJwk = JSON.stringify(await exportJWK(ed.publicKey));
    const t = await sign('EdDSA', ed.privateKey, { iss: 'k8s' });
    expect(call('io.jwt.verify_eddsa', t, edPem)).toBe(true);
    expect(call('io.jwt.verify_eddsa', t, edJwk)).toBe(true);
    expect(call('io.jwt.verify_eddsa', tamper(t), edPem)).toBe(false);
    expect(call('io.jwt.verify_eddsa', t, rsaPem)).toBe(false);
    const [ok, header, payload] = call('io.jwt.decode_verify', t, { cert: edPem, iss: 'k8s' }) as [boolean, Record<string, unknown>, Record<string, unknown>];
    expect([ok, header.alg, payload.iss]).toEqual([true, 'EdDSA', 'k8s']);
    expect(call('io.jwt.decode_verify', t, { cert: rsaPem })).toEqual([false, {}, {}]);
    expect(call('io.jwt.decode_verify', t, { secret: 'x' })).toEqual([false, {}, {}]);
  });
});

describe('io.jwt.decode_verify', () => {
  it('checks signature, expiry, not-before, issuer and audience', async () => {
    const good = await sign('RS256', rsa.privateKey, { iss: 'k8s', aud: ['warden'], exp: nowS + 600, nbf: nowS - 60 });
    const [ok, , payload] = call('io.jwt.decode_verify', good, { cert: rsaPem, iss: 'k8s', aud: 'warden' }) as [
      boolean,
      unknown,
      Record<string, unknown>,
    ];
    expect(ok).toBe(true);
    expect(payload.iss).toBe('k8s');

    const invalid = [false, {}, {}];
    const expired = await sign('RS256', rsa.privateKey, { exp: nowS - 1 });
    expect(call('io.jwt.decode_verify', expired, { cert: rsaPem })).toEqual(invalid);
    const early = await sign('RS256', rsa.privateKey, { nbf: nowS + 600 });
    expect(call('io.jwt.decode_verify', early, { cert: rsaPem })).toEqual(invalid);
    expect(call('io.jwt.decode_verify', good, { cert: rsaPem, iss: 'other', aud: 'warden' })).toEqual(invalid);
    expect(call('io.jwt.decode_verify', good, { cert: rsaPem, aud: 'someone-else' })).toEqual(invalid);
    // A token with an audience needs the caller to name one.
    expect(call('io.jwt.decode_verify', good, { cert: rsaPem })).toEqual(invalid);
    expect(call('io.jwt.decode_verify', tamper(good), { cert: rsaPem, aud: 'warden' })).toEqual(invalid);
    expect(call('io.jwt.decode_verify', good, { cert: rsaPem, aud: 'warden', alg: 'ES256' })).toEqual(invalid);
    // An iss constraint needs the token to carry that issuer: one without iss does not verify
    // (OPA issue #5850; it passed before, and here until 2026-11-28).
    const noIss = await sign('RS256', rsa.privateKey, {});
    expect(call('io.jwt.decode_verify', noIss, { cert: rsaPem, iss: 'k8s' })).toEqual(invalid);
    expect((call('io.jwt.decode_verify', noIss, { cert: rsaPem }) as unknown[])[0]).toBe(true);
    expect(callError('io.jwt.decode_verify', noIss, { cert: rsaPem, colour: 'blue' }).message).toBe(
      'io.jwt.decode_verify: unknown token validation constraint (want cert, secret, alg, iss, aud, time)',
    );
    expect(callError('io.jwt.decode_verify', noIss, { cert: rsaPem, secret: 'x' }).message).toBe(
      'io.jwt.decode_verify: duplicate key constraints',
    );
    // Time can be pinned by the caller.
    expect((call('io.jwt.decode_verify', expired, { cert: rsaPem, time: (nowS - 100) * 1e9 }) as unknown[])[0]).toBe(true);
  });

  it('HS tokens need the secret, not a certificate', async () => {
    const t = await sign('HS256', Buffer.from('s3cret'));
    expect((call('io.jwt.decode_verify', t, { secret: 's3cret' }) as unknown[])[0]).toBe(true);
    expect((call('io.jwt.decode_verify', t, { cert: rsaPem }) as unknown[])[0]).toBe(false);
    expect(callError('io.jwt.decode_verify', t, {}).message).toBe('io.jwt.decode_verify: no key constraint');
  });
});

describe('nested tokens (cty), as OPA treats them', () => {
  const key = Buffer.from('nest-key');
  const outer = (inner: string, cty: string) =>
    new SignJWT({}).setProtectedHeader({ alg: 'HS256', cty }).sign(key).then((t) => {
      // The payload is the inner token's text, not a JSON claims set: re-sign it as such.
      const [h] = t.split('.') as [string];
      const p = Buffer.from(inner).toString('base64url');
      const sig = cryptoHmac(`${h}.${p}`);
      return `${h}.${p}.${sig}`;
    });
  const cryptoHmac = (input: string) => createHmac('sha256', key).update(input).digest('base64url');

  it('decode follows cty "JWT" exactly and unquotes the inner token; decode_verify follows any case, unquoted only', async () => {
    const inner = await new SignJWT({ sub: 'inner' }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    const plain = await outer(inner, 'JWT');
    const quoted = await outer(`"${inner}"`, 'JWT');
    const lower = await outer(inner, 'jwt');
    expect((call('io.jwt.decode', plain) as unknown[])[1]).toEqual({ sub: 'inner' });
    expect((call('io.jwt.decode', quoted) as unknown[])[1]).toEqual({ sub: 'inner' });
    // Not exactly "JWT": the payload is no JSON object, an error as in OPA.
    expect(callError('io.jwt.decode', lower).message).toMatch(/JWT payload is not valid JSON/);
    const verified = (t: string) => call('io.jwt.decode_verify', t, { secret: 'nest-key' });
    expect(verified(plain)).toEqual([true, { alg: 'HS256' }, { sub: 'inner' }]);
    expect(verified(lower)).toEqual([true, { alg: 'HS256' }, { sub: 'inner' }]);
    // A quoted inner token is no token to decode_verify (OPA does not unquote there): never verified.
    expect(() => verified(quoted)).toThrow();
    // Every level is verified with the same key: an inner token signed with another does not verify.
    const forged = await outer(await new SignJWT({ sub: 'admin' }).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.from('other')), 'JWT');
    expect(verified(forged)).toEqual([false, {}, {}]);
  });
});
