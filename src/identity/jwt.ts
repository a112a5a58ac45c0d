/**
 * Bearer JWT verification shared by the token authenticators. jose checks signature, `alg`
 * allow-list, `iss`, `aud`, `exp`/`nbf`; this module turns its errors into `unauthenticated`
 * with messages we write ourselves: the token, its claims and jose's error objects (which carry
 * the payload) never reach a message, a log line or an error cause.
 */
import { decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { WardenError } from '../pipeline/errors.js';

export const DEFAULT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_BYTES = 16 * 1024;

export function unauthenticated(method: string, reason: string): WardenError {
  return new WardenError('unauthenticated', `${method} authentication failed: ${reason}`, { details: { method } });
}

/** Reads the unverified claims only to route a token to the method it is meant for. */
export function peekClaims(method: string, token: string): JWTPayload | null {
  if (!JWT_SHAPE.test(token)) return null; // not a JWT at all (e.g. an API key): not ours
  if (token.length > MAX_TOKEN_BYTES) throw unauthenticated(method, 'bearer token is too large');
  try {
    return decodeJwt(token);
  } catch {
    throw unauthenticated(method, 'malformed bearer token');
  }
}

export interface VerifyOptions {
  issuer?: string[];
  audiences: string[];
  algorithms: string[];
  clockToleranceSec: number;
  /** The verifier's clock (epoch ms). */
  nowMs: number;
}

export async function verifyJwt(method: string, token: string, getKey: JWTVerifyGetKey, o: VerifyOptions): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, getKey, {
      ...(o.issuer ? { issuer: o.issuer } : {}),
      audience: o.audiences,
      algorithms: o.algorithms,
      clockTolerance: o.clockToleranceSec,
      requiredClaims: ['exp'],
      currentDate: new Date(o.nowMs),
    });
    return payload;
  } catch (err) {
    throw unauthenticated(method, describeJoseError(err));
  }
}

function describeJoseError(err: unknown): string {
  const code = (err as { code?: string }).code;
  const claim = (err as { claim?: string }).claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'nbf') return 'token not yet valid';
      if (claim === 'aud') return 'token audience not accepted';
      if (claim === 'iss') return 'token issuer not accepted';
      return `token claim "${claim ?? 'unknown'}" check failed`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature verification failed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no matching key in the JWKS (unknown kid)';
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'several JWKS keys match the token and none verified it';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'token algorithm not allowed';
    case 'ERR_JWKS_TIMEOUT':
      return 'JWKS fetch timed out';
    case 'ERR_JWKS_INVALID':
      return 'JWKS is invalid';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed bearer token';
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'token uses an unsupported algorithm or key type';
    default:
      return err instanceof TypeError || code === undefined ? 'JWKS unavailable' : 'token rejected';
  }
}

export function audiencesOf(payload: JWTPayload): string[] {
  const aud = payload.aud;
  return aud === undefined ? [] : Array.isArray(aud) ? aud.slice() : [aud];
}
