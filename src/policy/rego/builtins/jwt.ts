/**
 * JWT built-ins: `io.jwt.decode`, `io.jwt.verify_{rs,ps,es,hs}{256,384,512}` and
 * `io.jwt.decode_verify`, with node:crypto (synchronous, as built-ins are). Keys are given as
 * OPA takes them: a PEM certificate or public key, or a JWK / JWKS JSON string (any key of a
 * set may verify). Parsed keys are cached (bounded): they are public material.
 */
import { X509Certificate, constants, createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { isPlainObject, objectEntries, objectGet, type PlainObject, type Value } from '../value.js';
import type { BuiltinContext, BuiltinDef } from './types.js';
import { builtinErr, def, obj, str } from './util.js';
import { unmarshalJSON } from './json.js';

interface DecodedJWT {
  header: PlainObject;
  payload: PlainObject;
  signature: Buffer;
  signingInput: string;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function b64(name: string, part: string, what: string): Buffer {
  if (!B64URL.test(part) || part.length % 4 === 1) throw builtinErr(name, `JWT ${what} is not valid base64url`);
  return Buffer.from(part, 'base64url');
}

function jsonPart(name: string, part: string, what: string): PlainObject {
  let v: Value;
  try {
    v = unmarshalJSON(b64(name, part, what).toString('utf8'));
  } catch (e) {
    if (e instanceof Error && e.name === 'BuiltinError') throw e;
    throw builtinErr(name, `JWT ${what} is not valid JSON`);
  }
  if (!isPlainObject(v)) throw builtinErr(name, `JWT ${what} is not a JSON object`);
  return v;
}

export function decodeJWT(name: string, token: string): DecodedJWT {
  const parts = token.split('.');
  if (parts.length !== 3) throw builtinErr(name, 'encoded JWT had no period separators or too many');
  const [h, p, s] = parts as [string, string, string];
  const header = jsonPart(name, h, 'header');
  let payload: PlainObject;
  // A nested JWT (cty: JWT) carries another token as its payload; OPA decodes through it.
  if (objectGet(header, 'cty') === 'JWT') {
    const inner = b64(name, p, 'payload').toString('utf8');
    payload = decodeJWT(name, inner).payload;
  } else payload = jsonPart(name, p, 'payload');
  return { header, payload, signature: b64(name, s, 'signature'), signingInput: `${h}.${p}` };
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

const keyCache = new LRUCache<string, KeyObject[] | Error>({ max: 256 });

function parseKeys(material: string): KeyObject[] {
  const text = material.trim();
  if (text.startsWith('-----BEGIN')) {
    if (text.includes('CERTIFICATE-----')) return [new X509Certificate(text).publicKey];
    return [createPublicKey(text)];
  }
  const jwk = JSON.parse(text) as unknown;
  const list = (jwk as { keys?: unknown }).keys;
  const jwks = Array.isArray(list) ? list : [jwk];
  return jwks.map((k) => createPublicKey({ key: k as import('node:crypto').JsonWebKey, format: 'jwk' }));
}

function keysFor(name: string, material: string): KeyObject[] {
  let k = keyCache.get(material);
  if (k === undefined) {
    try {
      k = parseKeys(material);
    } catch {
      k = new Error('failed to parse a PEM certificate, public key or JWKS');
    }
    keyCache.set(material, k);
  }
  if (k instanceof Error) throw builtinErr(name, k.message);
  return k;
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

type Family = 'RS' | 'PS' | 'ES' | 'HS';
const DIGEST: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

function verifyAsymmetric(family: Family, bits: string, input: string, sig: Buffer, keys: KeyObject[]): boolean {
  const digest = DIGEST[bits]!;
  for (const key of keys) {
    try {
      const ok =
        family === 'ES'
          ? verify(digest, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }, sig)
          : family === 'PS'
            ? verify(digest, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig)
            : verify(digest, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PADDING }, sig);
      if (ok) return true;
    } catch {
      // A key of the wrong type for this algorithm simply does not verify.
    }
  }
  return false;
}

function verifyHMAC(bits: string, input: string, sig: Buffer, secret: string): boolean {
  const mac = createHmac(DIGEST[bits]!, Buffer.from(secret, 'utf8')).update(input).digest();
  return mac.length === sig.length && timingSafeEqual(mac, sig);
}

function verifier(family: Family, bits: string): BuiltinDef {
  const name = `io.jwt.verify_${family.toLowerCase()}${bits}`;
  return def(name, 2, (args) => {
    const token = str(name, args, 0);
    const keyText = str(name, args, 1);
    // A bad key is the policy's mistake and is reported; a bad token just does not verify.
    const keys = family === 'HS' ? [] : keysFor(name, keyText);
    let jwt: DecodedJWT;
    try {
      jwt = decodeJWT(name, token);
    } catch {
      return false;
    }
    if (family === 'HS') return verifyHMAC(bits, jwt.signingInput, jwt.signature, keyText);
    return verifyAsymmetric(family, bits, jwt.signingInput, jwt.signature, keys);
  });
}

// ---------------------------------------------------------------------------------------------
// decode_verify
// ---------------------------------------------------------------------------------------------

const ALG = /^(RS|PS|ES|HS)(256|384|512)$/;

function decodeVerify(args: Value[], ctx: BuiltinContext): Value {
  const name = 'io.jwt.decode_verify';
  const token = str(name, args, 0);
  const c = obj(name, args, 1);
  let cert: string | undefined;
  let secret: string | undefined;
  let alg: string | undefined;
  let iss: string | undefined;
  let aud: string | undefined;
  let time: bigint = ctx.nowNs;
  for (const [k, v] of objectEntries(c)) {
    if (k === 'cert' && typeof v === 'string') cert = v;
    else if (k === 'secret' && typeof v === 'string') secret = v;
    else if (k === 'alg' && typeof v === 'string') alg = v;
    else if (k === 'iss' && typeof v === 'string') iss = v;
    else if (k === 'aud' && typeof v === 'string') aud = v;
    else if (k === 'time' && (typeof v === 'number' || typeof v === 'bigint')) time = typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
    else throw builtinErr(name, `unknown or ill-typed constraint ${typeof k === 'string' ? k : '(non-string key)'}`);
  }
  if ((cert === undefined) === (secret === undefined)) throw builtinErr(name, 'constraints must name exactly one of cert or secret');
  const invalid: Value = [false, {}, {}];
  let jwt: DecodedJWT;
  try {
    jwt = decodeJWT(name, token);
  } catch {
    return invalid;
  }
  const headerAlg = objectGet(jwt.header, 'alg');
  if (typeof headerAlg !== 'string') return invalid;
  if (alg !== undefined && alg !== headerAlg) return invalid;
  const m = ALG.exec(headerAlg);
  if (!m) return invalid;
  const family = m[1] as Family;
  const ok =
    secret !== undefined
      ? family === 'HS' && verifyHMAC(m[2]!, jwt.signingInput, jwt.signature, secret)
      : family !== 'HS' && verifyAsymmetric(family, m[2]!, jwt.signingInput, jwt.signature, keysFor(name, cert!));
  if (!ok) return invalid;
  // Registered claims: exp and nbf in seconds (may be fractional), compared with ns time.
  const nowS = Number(time) / 1e9;
  const exp = objectGet(jwt.payload, 'exp');
  if (exp !== undefined) {
    if (typeof exp !== 'number' && typeof exp !== 'bigint') return invalid;
    if (nowS >= Number(exp)) return invalid;
  }
  const nbf = objectGet(jwt.payload, 'nbf');
  if (nbf !== undefined) {
    if (typeof nbf !== 'number' && typeof nbf !== 'bigint') return invalid;
    if (nowS < Number(nbf)) return invalid;
  }
  if (iss !== undefined && objectGet(jwt.payload, 'iss') !== iss) return invalid;
  const tokAud = objectGet(jwt.payload, 'aud');
  if (tokAud !== undefined) {
    // A token meant for an audience is only valid for a caller that says which audience it is.
    if (aud === undefined) return invalid;
    const list = Array.isArray(tokAud) ? tokAud : [tokAud];
    if (!list.includes(aud)) return invalid;
  } else if (aud !== undefined) return invalid;
  return [true, jwt.header, jwt.payload];
}

const verifiers: BuiltinDef[] = [];
for (const family of ['RS', 'PS', 'ES', 'HS'] as const) for (const bits of ['256', '384', '512']) verifiers.push(verifier(family, bits));

export const JWT: BuiltinDef[] = [
  def('io.jwt.decode', 1, (args) => {
    const jwt = decodeJWT('io.jwt.decode', str('io.jwt.decode', args, 0));
    return [jwt.header, jwt.payload, jwt.signature.toString('hex')];
  }),
  ...verifiers,
  def('io.jwt.decode_verify', 2, decodeVerify),
];
