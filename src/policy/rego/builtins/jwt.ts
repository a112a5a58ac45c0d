/**
 * JWT built-ins: `io.jwt.decode`, `io.jwt.verify_{rs,ps,es,hs}{256,384,512}`, `io.jwt.verify_eddsa`
 * and `io.jwt.decode_verify`, with node:crypto (synchronous, as built-ins are). Keys are given as
 * OPA takes them: a PEM certificate or public key, or a JWK / JWKS JSON string (any key of a
 * set may verify). Parsed keys are cached (bounded): they are public material.
 */
import { X509Certificate, constants, createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { isNumber, isPlainObject, objectEntries, objectGet, type PlainObject, type Value } from '../value.js';
import type { BuiltinContext, BuiltinDef } from './types.js';
import { builtinErr, def, obj, str } from './util.js';
import { unmarshalJSON } from './json.js';

/** One level of a compact JWS: header parsed, payload still text. */
interface RawJWT {
  header: PlainObject;
  payloadText: string;
  signature: Buffer;
  signingInput: string;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * A section decoded as OPA's base64url.decode does it (padding added, then Go's URLEncoding),
 * failing with Go's reason: the offset of the first byte outside the alphabet (an offset, never
 * the text). `what` names the section as OPA does (`JWT header had invalid encoding: ...`).
 */
function b64(name: string, part: string, what: string): Buffer {
  const body = part.replace(/={1,2}$/, '');
  if (!B64URL.test(body)) {
    const at = /[^A-Za-z0-9_-]/.exec(body)!.index;
    throw builtinErr(name, `JWT ${what} had invalid encoding: illegal base64 data at input byte ${at}`);
  }
  if (part.length % 4 === 1 || (part !== body && part.length % 4 !== 0)) {
    throw builtinErr(name, `JWT ${what} had invalid encoding: illegal base64url string`);
  }
  return Buffer.from(body, 'base64url');
}

function jsonObject(name: string, text: string, what: string): PlainObject {
  let v: Value;
  try {
    v = unmarshalJSON(text);
  } catch {
    throw builtinErr(name, `JWT ${what} is not valid JSON`);
  }
  if (!isPlainObject(v)) throw builtinErr(name, `JWT ${what} is not a JSON object`);
  return v;
}

/** The three sections, still encoded. */
function splitJWT(name: string, token: string): { h: string; p: string; s: string; signingInput: string } {
  if (!token.includes('.')) throw builtinErr(name, 'encoded JWT had no period separators');
  const parts = token.split('.');
  if (parts.length !== 3) throw builtinErr(name, `encoded JWT must have 3 sections, found ${parts.length}`);
  const [h, p, s] = parts as [string, string, string];
  return { h, p, s, signingInput: `${h}.${p}` };
}

/** The header, checked as OPA checks it (an object, not a JWE). */
function decodeHeader(name: string, h: string): PlainObject {
  const header = jsonObject(name, b64(name, h, 'header').toString('utf8'), 'header');
  if (objectGet(header, 'enc') !== undefined) throw builtinErr(name, 'JWT is a JWE object, which is not supported');
  return header;
}

/** One level of a token for decode_verify: header, payload text and signature, in OPA's order. */
function decodeJWTOnce(name: string, token: string): RawJWT {
  const { h, p, s, signingInput } = splitJWT(name, token);
  const header = decodeHeader(name, h);
  const signature = b64(name, s, 'signature');
  return { header, payloadText: b64(name, p, 'payload').toString('utf8'), signature, signingInput };
}

/**
 * `io.jwt.decode`, as OPA's builtinJWTDecode: header, then payload; a payload whose header says
 * `cty: "JWT"` (exactly) is itself a token, quoted as jwt.io quotes it (the quotes are trimmed),
 * and the answer is that inner token's [header, payload, signature]; otherwise the signature is
 * decoded last.
 */
function decodeJWT(name: string, token: string, depth = 0): Value {
  const { h, p, s } = splitJWT(name, token);
  const header = decodeHeader(name, h);
  const payloadText = b64(name, p, 'payload').toString('utf8');
  if (objectGet(header, 'cty') === 'JWT') {
    // Each level is a decoded section of the one above, so the nesting is bounded by the token's
    // length; a depth cap keeps a hostile token from exhausting the stack.
    if (depth >= 32) throw builtinErr(name, 'JWT nested too deeply');
    return decodeJWT(name, payloadText.replace(/^["']+|["']+$/g, ''), depth + 1);
  }
  const payload = jsonObject(name, payloadText, 'payload');
  return [header, payload, b64(name, s, 'signature').toString('hex')];
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

/**
 * The key types each family verifies with. node:crypto's verify takes its scheme from the key, not
 * from the options: without this an RS256 or PS256 header verified an ECDSA signature under an EC
 * key, and an ES256 one an RSA signature under an RSA key (the header's algorithm not the one
 * used; OPA's verifier wants the key type the algorithm names).
 */
const KEY_TYPES: Record<Exclude<Family, 'HS'>, readonly string[]> = { RS: ['rsa'], PS: ['rsa', 'rsa-pss'], ES: ['ec'] };

function verifyAsymmetric(family: Family, bits: string, input: string, sig: Buffer, keys: KeyObject[]): boolean {
  const digest = DIGEST[bits]!;
  if (family === 'HS') return false;
  const types = KEY_TYPES[family];
  for (const key of keys) {
    if (!types.includes(key.asymmetricKeyType ?? '')) continue;
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

/** EdDSA (RFC 8037: Ed25519, Ed448): the key's own curve decides; no digest is named. */
function verifyEdDSA(input: string, sig: Buffer, keys: KeyObject[]): boolean {
  for (const key of keys) {
    if (key.asymmetricKeyType !== 'ed25519' && key.asymmetricKeyType !== 'ed448') continue;
    try {
      if (verify(null, Buffer.from(input), key, sig)) return true;
    } catch {
      // A malformed signature simply does not verify.
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
    // A malformed token or key is an error (as OPA), a wrong signature just does not verify.
    const jwt = splitJWT(name, token);
    if (family === 'HS') return verifyHMAC(bits, jwt.signingInput, b64(name, jwt.s, 'signature'), keyText);
    const keys = keysFor(name, keyText);
    return verifyAsymmetric(family, bits, jwt.signingInput, b64(name, jwt.s, 'signature'), keys);
  });
}

// ---------------------------------------------------------------------------------------------
// decode_verify
// ---------------------------------------------------------------------------------------------

const ALG = /^(RS|PS|ES|HS)(256|384|512)$/;

function decodeVerify(args: Value[], ctx: BuiltinContext): Value {
  const name = 'io.jwt.decode_verify';
  let token = str(name, args, 0);
  const c = obj(name, args, 1);
  let keys: KeyObject[] | undefined;
  let secret = '';
  let alg = '';
  let iss = '';
  let aud = '';
  let time = Number(ctx.nowNs);
  for (const [k, v] of objectEntries(c)) {
    const want = (t: string) => builtinErr(name, `${k as string} constraint: must be ${t}`);
    switch (k) {
      case 'cert':
        if (typeof v !== 'string') throw want('a string');
        keys = keysFor(name, v);
        break;
      case 'secret':
      case 'alg':
      case 'iss':
      case 'aud':
        if (typeof v !== 'string') throw want('a string');
        if (k === 'secret') secret = v;
        else if (k === 'alg') alg = v;
        else if (k === 'iss') iss = v;
        else aud = v;
        break;
      case 'time':
        if (typeof v !== 'number' && typeof v !== 'bigint') throw builtinErr(name, 'token time constraint: must be a number');
        if (v < 0) throw builtinErr(name, 'token time constraint: must not be negative');
        time = Number(v);
        break;
      default:
        throw builtinErr(name, 'unknown token validation constraint (want cert, secret, alg, iss, aud, time)');
    }
  }
  if (keys !== undefined && secret !== '') throw builtinErr(name, 'duplicate key constraints');
  if (keys === undefined && secret === '') throw builtinErr(name, 'no key constraint');

  const unverified: Value = [false, {}, {}];
  let jwt: RawJWT;
  // A nested token (cty: JWT) is verified at every level, as OPA does.
  for (;;) {
    jwt = decodeJWTOnce(name, token);
    const headerAlg = objectGet(jwt.header, 'alg');
    if (typeof headerAlg !== 'string' || headerAlg === '' || !critUnderstood(jwt.header)) return unverified;
    if (alg !== '' && alg !== headerAlg) return unverified;
    let ok: boolean;
    if (headerAlg === 'EdDSA') ok = keys !== undefined && verifyEdDSA(jwt.signingInput, jwt.signature, keys);
    else {
      const m = ALG.exec(headerAlg);
      if (!m) throw builtinErr(name, `unknown JWS algorithm: ${algName(headerAlg)}`);
      const family = m[1] as Family;
      // Asymmetric keys verify only asymmetric algorithms and a secret only HMAC (no alg confusion).
      ok =
        keys !== undefined
          ? family !== 'HS' && verifyAsymmetric(family, m[2]!, jwt.signingInput, jwt.signature, keys)
          : family === 'HS' && verifyHMAC(m[2]!, jwt.signingInput, jwt.signature, secret);
    }
    if (!ok) return unverified;
    const cty = objectGet(jwt.header, 'cty');
    if (typeof cty === 'string' && cty.toUpperCase() === 'JWT') {
      token = jwt.payloadText;
      continue;
    }
    break;
  }
  const payload = jsonObject(name, jwt.payloadText, 'payload');
  // Registered claims. An iss constraint needs the token to carry that issuer: a token without
  // one does not verify (OPA since its issue #5850, 0.52; before, a missing iss passed).
  if (iss !== '' && objectGet(payload, 'iss') !== iss) return unverified;
  const tokAud = objectGet(payload, 'aud');
  if (tokAud !== undefined) {
    // A token meant for an audience is valid only for a caller that names that audience.
    const list = Array.isArray(tokAud) ? tokAud : [tokAud];
    if (aud === '' || !list.includes(aud)) return unverified;
  } else if (aud !== '') return unverified;
  const nowS = time / 1e9;
  const exp = objectGet(payload, 'exp');
  if (exp !== undefined && (!isNumber(exp) || nowS >= Number(exp))) return unverified;
  const nbf = objectGet(payload, 'nbf');
  if (nbf !== undefined && (!isNumber(nbf) || nowS < Number(nbf))) return unverified;
  return [true, jwt.header, payload];
}

/**
 * The header's `alg` for the error message, as OPA names it, but only when it looks like an
 * algorithm name: the header is the caller's text, and a message that repeated it as it is would
 * let any caller write what it likes (a secret it found, a forged log line) into Warden's logs.
 */
function algName(alg: string): string {
  return /^[A-Za-z0-9_+-]{1,16}$/.test(alg) ? alg : `(not shown: ${alg.length > 16 ? 'more than 16 characters' : 'characters other than letters, digits, _ + -'})`;
}

/** RFC 7515 4.1.11: a critical header parameter we do not understand invalidates the token. */
function critUnderstood(header: PlainObject): boolean {
  const crit = objectGet(header, 'crit');
  if (crit === undefined) return true;
  if (!Array.isArray(crit) || crit.length === 0) return false;
  const known = new Set(['alg', 'kid', 'typ', 'cty', 'crit']);
  return crit.every((c) => typeof c !== 'string' || known.has(c) || objectGet(header, c) === undefined);
}

const verifiers: BuiltinDef[] = [];
for (const family of ['RS', 'PS', 'ES', 'HS'] as const) for (const bits of ['256', '384', '512']) verifiers.push(verifier(family, bits));
verifiers.push(
  def('io.jwt.verify_eddsa', 2, (args) => {
    const name = 'io.jwt.verify_eddsa';
    const token = str(name, args, 0);
    const keyText = str(name, args, 1);
    const jwt = splitJWT(name, token);
    const keys = keysFor(name, keyText);
    return verifyEdDSA(jwt.signingInput, b64(name, jwt.s, 'signature'), keys);
  }),
);

export const JWT: BuiltinDef[] = [
  def('io.jwt.decode', 1, (args) => decodeJWT('io.jwt.decode', str('io.jwt.decode', args, 0))),
  ...verifiers,
  // Checks `exp`/`nbf` against the query's clock unless the constraints give `time`: as in OPA,
  // nondeterministic (its result is not a function of its arguments alone).
  def('io.jwt.decode_verify', 2, decodeVerify, true),
];
