/**
 * Bearer JWT verification shared by the token authenticators. jose checks signature, `alg`
 * allow-list, `iss`, `aud`, `exp`/`nbf`; this module turns its errors into `unauthenticated`
 * with messages we write ourselves: the token, its claims and jose's error objects (which carry
 * the payload) never reach a message, a log line or an error cause.
 */
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
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

/**
 * The key source failed (fetch, file, key import): the token was never checked. Kept apart from
 * token failures so the caller is told `JWKS unavailable` and the operator gets a log line.
 */
export class KeySetUnavailable extends Error {
  /** `reported`: the key source logged it itself (a JWKS file look that missed its deadline, once per episode). */
  constructor(
    readonly reason: string,
    readonly reported = false,
  ) {
    super(`key set unavailable: ${reason}`);
    this.name = 'KeySetUnavailable';
  }
}

/** What went wrong with the key source, in words of our own (never a token or key). */
function keySourceReason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_JWKS_TIMEOUT') return 'fetch timed out';
  if (code === 'ERR_JWKS_FILE_TIMEOUT') return 'jwks_file look timed out';
  if (code === 'ERR_JWKS_INVALID') return 'not a valid JSON Web Key Set';
  if (code === 'ERR_JWKS_PRIVATE') return 'the key set holds private or symmetric key material (anyone who fetched it can sign tokens): it must hold public keys only';
  if (code === 'ERR_JWKS_TOO_LARGE') return 'key set response too large';
  if (code === 'ERR_JOSE_GENERIC') return 'unexpected HTTP response (not 200 with a key set)';
  if (code === 'ERR_JWKS_TOKEN_FILE') return 'jwks_bearer_token_file does not hold one token (empty, or a space or line break inside)';
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return `file or network error ${code}`;
  if (err instanceof TypeError) {
    // fetch's own TypeError ("fetch failed") says why in its cause: ECONNREFUSED, ENOTFOUND, a TLS
    // error. Its message is not used: undici's may quote a header or the URL.
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    if (typeof cause?.code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(cause.code)) return `unreachable (${cause.code})`;
    // The fetch standard's blocked ports (1, 6000, 10080, ...): never tried, whatever listens there.
    if (cause?.message === 'bad port') return 'unreachable (a port fetch refuses to use)';
    return 'unreachable';
  }
  return 'a key could not be used';
}

/** Failures that are about the token, not the key source: jose must see them unchanged. */
const TOKEN_KEY_ERRORS = new Set(['ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'ERR_JOSE_ALG_NOT_ALLOWED', 'ERR_JWS_INVALID', 'ERR_JWT_INVALID']);

/** `getKey` with its own failures (fetch, file, key import) turned into KeySetUnavailable. */
export function guardKeySource(getKey: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (TOKEN_KEY_ERRORS.has(code)) throw err;
      throw new KeySetUnavailable(keySourceReason(err), code === 'ERR_JWKS_FILE_TIMEOUT');
    }
  };
}

/**
 * How long a signature check may take once the key is in hand. jose 6 checks signatures with
 * WebCrypto, whose jobs run on libuv's thread pool (4 threads): held by file calls that do not
 * return (a dead mount under a secret file root, a jwks_file, an audit file), `crypto.subtle.verify`
 * waits with them and the request would hang until its client gave up. A check takes well under
 * a millisecond; 2 s is the same bound a jwks_file look has (jwks.ts), under any client's timeout.
 */
export const SIGNATURE_CHECK_DEADLINE_MS = 2_000;

/** A signature check that did not return within SIGNATURE_CHECK_DEADLINE_MS: the token was not checked. */
export class SignatureCheckTimeout extends Error {
  constructor() {
    super(`the signature check did not return within ${SIGNATURE_CHECK_DEADLINE_MS} ms`);
    this.name = 'SignatureCheckTimeout';
  }
}

/** Told when a signature check missed its deadline, and when such a check returned at last. */
export interface SignatureCheckWatch {
  late(): void;
  returned(): void;
}

export interface VerifyOptions {
  issuer?: string[];
  audiences: string[];
  algorithms: string[];
  clockToleranceSec: number;
  /** The verifier's clock (epoch ms). */
  nowMs: number;
  /** Told why, when the key source failed (see guardKeySource). */
  onKeySetUnavailable?: (reason: string) => void;
  /** Asked to fetch the key set again when the token's key could not be used or did not verify it (see JwksSource). */
  refetchAfterKeyFailure?: (kid: string | undefined) => Promise<boolean>;
  /** Told when a signature check misses SIGNATURE_CHECK_DEADLINE_MS, and when it returns after all. */
  signatureWatch?: SignatureCheckWatch;
}

export async function verifyJwt(method: string, token: string, getKey: JWTVerifyGetKey, o: VerifyOptions): Promise<JWTPayload> {
  let failure: unknown;
  try {
    return await verifyWithKeySet(method, token, getKey, o);
  } catch (err) {
    failure = err;
  }
  // The key set may have been fixed, or the key rotated behind the same `kid`, since it was
  // fetched: verify once more, when the source agrees to refetch (it rate-limits that).
  if (keyFailed(failure) && o.refetchAfterKeyFailure && (await o.refetchAfterKeyFailure(kidOf(token)))) {
    try {
      return await verifyWithKeySet(method, token, getKey, o);
    } catch (err) {
      failure = err;
    }
  }
  if (failure instanceof WardenError) throw failure;
  if (failure instanceof SignatureCheckTimeout) throw unauthenticated(method, 'signature check unavailable');
  if (failure instanceof KeySetUnavailable) {
    if (!failure.reported) o.onKeySetUnavailable?.(failure.reason);
    throw unauthenticated(method, 'JWKS unavailable');
  }
  throw unauthenticated(method, describeJoseError(failure));
}

/**
 * The most keys tried for one token when several in the set fit it (no `kid`, or a `kid` two keys
 * share): each is a signature check, and a forged token must not cost one per key of a large set.
 * A cluster's set holds a few keys (the current one and those being rotated out).
 */
export const MAX_CANDIDATE_KEYS = 8;

/**
 * verifyOnce, and when several keys of the set fit the token (jose stops there: it verifies with
 * one key only), verifyOnce with each of them (MAX_CANDIDATE_KEYS at most) until one verifies the
 * signature, as Kubernetes' own validator tries every key. A claim check that fails after a key
 * verified the signature is the answer; none verifying is a signature failure, as with one key.
 */
async function verifyWithKeySet(method: string, token: string, getKey: JWTVerifyGetKey, o: VerifyOptions): Promise<JWTPayload> {
  try {
    return await verifyOnce(method, token, getKey, o);
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' || !isAsyncIterable(err)) throw err;
    return verifyWithEach(method, token, err, o);
  }
}

async function verifyWithEach(method: string, token: string, candidates: AsyncIterable<CandidateKey>, o: VerifyOptions): Promise<JWTPayload> {
  let signatureFailure: unknown;
  let keyFailure: unknown;
  let tried = 0;
  // jose's iterator imports each fitting key in turn, skipping one that cannot be imported.
  for await (const key of candidates) {
    if (tried++ === MAX_CANDIDATE_KEYS) break;
    try {
      return await verifyOnce(method, token, () => key, o);
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') signatureFailure = err;
      else if (err instanceof KeySetUnavailable) keyFailure = err;
      else throw err;
    }
  }
  throw signatureFailure ?? keyFailure ?? new KeySetUnavailable('a key could not be used');
}

type CandidateKey = Awaited<ReturnType<JWTVerifyGetKey>>;

function isAsyncIterable(v: unknown): v is AsyncIterable<CandidateKey> {
  return typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/** The token's key could not be used, or did not verify the signature: a newer key set may help. */
function keyFailed(err: unknown): boolean {
  return err instanceof KeySetUnavailable || (err as { code?: unknown } | null)?.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED';
}

async function verifyOnce(method: string, token: string, getKey: JWTVerifyGetKey, o: VerifyOptions): Promise<JWTPayload> {
  let payload: JWTPayload;
  // The deadline runs from the moment the key is in hand: the key source bounds its own wait (a
  // jwks_url fetch its timeout, a jwks_file look its deadline); what follows is the signature
  // check on the thread pool.
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  let expire: (err: Error) => void = () => undefined;
  const overdue = new Promise<never>((_, reject) => (expire = reject));
  const keyed: JWTVerifyGetKey = async (header, t) => {
    const key = await getKey(header, t);
    timer = setTimeout(() => {
      late = true;
      o.signatureWatch?.late();
      expire(new SignatureCheckTimeout());
    }, SIGNATURE_CHECK_DEADLINE_MS);
    return key;
  };
  const check = jwtVerify(token, keyed, {
    ...(o.issuer ? { issuer: o.issuer } : {}),
    audience: o.audiences,
    algorithms: o.algorithms,
    clockTolerance: o.clockToleranceSec,
    requiredClaims: ['exp'],
    currentDate: new Date(o.nowMs),
  });
  // A check that missed its deadline settles some day (or never, with the pool held for good):
  // its outcome is dropped, and the watch is told it returned.
  void check.then(
    () => settled(timer, late, o),
    () => settled(timer, late, o),
  );
  try {
    ({ payload } = await Promise.race([check, overdue]));
  } catch (err) {
    // Key lookup failures arrive as KeySetUnavailable (guardKeySource); a TypeError jose throws
    // itself is about the key it was given (e.g. an RSA modulus under 2048 bits): the key set's
    // fault, not the token's.
    throw err instanceof TypeError ? new KeySetUnavailable('a key could not be used') : err;
  }
  // jose accepts an `aud` array when one member matches, whatever the others are; a member that
  // is not a string would reach the principal's audiences (and the policy) as it is.
  if (Array.isArray(payload.aud) && payload.aud.some((a) => typeof a !== 'string')) {
    throw unauthenticated(method, 'token claim "aud" is malformed');
  }
  // jose checks `iat` only against a maximum age; a token issued in the future is refused here,
  // as Kubernetes' own validator does.
  if (typeof payload.iat === 'number' && payload.iat > o.nowMs / 1000 + o.clockToleranceSec) {
    throw unauthenticated(method, 'token issued in the future');
  }
  return payload;
}

function settled(timer: NodeJS.Timeout | undefined, late: boolean, o: VerifyOptions): void {
  clearTimeout(timer);
  if (late) o.signatureWatch?.returned();
}

/** The token's `kid`; jose parsed the header before asking for a key, so it is well-formed here. */
function kidOf(token: string): string | undefined {
  try {
    const kid = decodeProtectedHeader(token).kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

function describeJoseError(err: unknown): string {
  const code = (err as { code?: string }).code;
  const claim = (err as { claim?: string }).claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if ((err as { reason?: string }).reason === 'invalid') return `token claim "${claim ?? 'unknown'}" is malformed`;
      if ((err as { reason?: string }).reason === 'missing') return `token claim "${claim ?? 'unknown'}" is missing`;
      if (claim === 'nbf') return 'token not yet valid';
      if (claim === 'aud') return 'token audience not accepted';
      if (claim === 'iss') return 'token issuer not accepted';
      return `token claim "${claim ?? 'unknown'}" check failed`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature verification failed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no matching key in the JWKS (unknown kid, or not for the token\'s algorithm)';
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'several JWKS keys match the token';
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
