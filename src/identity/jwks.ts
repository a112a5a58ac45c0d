/**
 * Where verification keys come from: a JWKS URL (fetched by jose, cached, refetched on an
 * unknown `kid`, a key that cannot be used or a key that does not verify the token's signature,
 * at most once per cooldown) or a JWKS file (read at start, and read again when one of those, or
 * a look every few seconds while tokens come, finds it changed: a ConfigMap update or a rotated
 * SPIFFE bundle). The Kubernetes API serves
 * its keys at `/openid/v1/jwks`; reaching it from a pod needs the pod's own token and the
 * cluster CA, hence the optional bearer-token file and CA file.
 */
import { statSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, jwksCache, type ExportedJWKSCache, type FetchImplementation, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { FileTooLargeError, readFailure, readRegularFile, readRegularFileSync } from '../pipeline/regular-file.js';
import { MIB } from '../pipeline/sizes.js';
import { untilAborted } from '../pipeline/cancel.js';

export interface JwksSourceOptions {
  /** JWKS URL, e.g. `https://kubernetes.default.svc/openid/v1/jwks`. */
  jwksUrl?: string;
  /** JWKS file (a JSON Web Key Set); read again when it changed, as a token's unknown or unusable key or a periodic look finds. */
  jwksFile?: string;
  /** Extra request headers for the JWKS URL. */
  jwksHeaders?: Record<string, string>;
  /** File holding a bearer token sent to the JWKS URL (re-read on each fetch: projected tokens rotate). */
  jwksBearerTokenFile?: string;
  /** PEM CA bundle for an https JWKS URL signed by a private CA (the cluster CA). */
  jwksCaFile?: string;
  /** How long fetched keys are trusted before a refetch (ms). Default 10 min. */
  jwksCacheMaxAgeMs?: number;
  /** Fetch timeout (ms). Default 5 s. */
  jwksTimeoutMs?: number;
  /**
   * Rewrites the key set before jose sees it (file and URL alike): a SPIFFE bundle marks its
   * JWT-SVID keys `use: "jwt-svid"`, which jose would otherwise skip as not `sig`.
   */
  mapKeys?: (keys: JWK[]) => JWK[];
  /**
   * Where a changed JWKS file that cannot be used is reported (its name, never its content), and
   * a look at the file that missed its deadline (warn) and the first one on time after it (info).
   */
  logger?: { warn(obj: object, msg?: string): void; info?(obj: object, msg?: string): void };
}

/** A key source: the key lookup jose verifies with, and a way to fetch the key set again. */
export interface JwksSource {
  getKey: JWTVerifyGetKey;
  /**
   * Called when the key a token names (by `kid`) was found but failed: it could not be used
   * (malformed, not importable, too weak), or it did not verify the token's signature (the issuer
   * may have rotated the key behind the same `kid`). Resolves true when a new key set was fetched
   * (or a changed key file read), so verifying once more is worth it.
   */
  refetchAfterKeyFailure(kid: string | undefined): Promise<boolean>;
  /**
   * Changes whenever another key set comes into use (a changed file read, the URL fetched again):
   * a token verified under an earlier one may have been verified with a key since removed.
   */
  readonly generation: number;
  /**
   * Looks for a changed key set when it is due (a file: its metadata, at most once per
   * JWKS_FILE_POLL_MS; a URL: never, jose refetches a set older than its max age when it next
   * verifies), and returns that look, which the verifier waits for: a look started by the first
   * token after a quiet spell must end before that token (and any that come meanwhile) is
   * answered, or a burst of tokens signed with a key withdrawn an hour ago would all be accepted.
   * Undefined when no look is due or under way: called for every token the verifier is asked about.
   * Rejects (JwksFileLookTimeout) when the look missed its deadline, and at once for every token
   * that comes while that look has still not returned: the key set cannot be checked.
   */
  poll(): Promise<unknown> | undefined;
}

/** The least time between two fetches of a JWKS URL caused by an unknown key or a key that failed. */
const JWKS_COOLDOWN_MS = 30_000;

/**
 * The least time between two looks at a JWKS file caused by an unknown key or a key that failed: a
 * stat is cheap, but a flood of tokens with a made-up `kid` or a forged signature must not become
 * a flood of file system calls.
 */
const JWKS_FILE_COOLDOWN_MS = 5_000;

/**
 * How often a JWKS file is looked at while tokens keep coming, whatever they are: a key removed
 * from the file (a rotation, a compromised key withdrawn) must stop verifying tokens even when
 * every token still names it, which no failure would ever reveal. A stat, off the request's way.
 */
const JWKS_FILE_POLL_MS = 5_000;

/**
 * How long the tokens waiting for a look at a JWKS file (a stat, and a read when it changed) wait
 * before they are refused. A stat of a ConfigMap or a local file takes microseconds, one on a
 * healthy network mount milliseconds, and a read of a key set (1 MiB at most) little more: a look
 * still running after 2 s is a dead mount, or libuv's thread pool (4 threads) held by other file
 * calls that do not return, and every authenticated request is held with it. Well under the 5 s
 * between looks and under any client's timeout, so callers get `JWKS unavailable` instead of
 * their own timeout; well over a look that merely queued behind a few slow writes.
 */
export const JWKS_FILE_LOOK_DEADLINE_MS = 2_000;

/**
 * A look at the JWKS file did not return within JWKS_FILE_LOOK_DEADLINE_MS (or has still not
 * returned): whether a key was withdrawn from the file cannot be known, so no token is accepted.
 */
export class JwksFileLookTimeout extends Error {
  readonly code = 'ERR_JWKS_FILE_TIMEOUT';
  constructor() {
    super(`the look at the jwks_file did not return within ${JWKS_FILE_LOOK_DEADLINE_MS} ms`);
    this.name = 'JwksFileLookTimeout';
  }
}

export class JwksConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksConfigError';
  }
}

/** JWK members that only private or symmetric keys have: a key set must never hold them. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** Why a key set is unusable, or undefined: no keys, or secret key material in it. */
function keySetProblem(keys: JWK[]): string | undefined {
  if (keys.length === 0) return 'has no keys';
  for (const k of keys) {
    if (typeof k !== 'object' || k === null) return 'holds a key that is not a JSON object';
    if (PRIVATE_MEMBERS.some((m) => m in k)) return 'holds private or symmetric key material; it must hold public keys only';
  }
  return undefined;
}

/**
 * The largest key set read, from a JWKS URL or a jwks_file; a cluster's is a few KB, a SPIRE
 * bundle not much more. A file over it is refused by its size before it is read: read whole, a
 * file swapped for a large one (a log, an image) would be held and parsed on every change.
 */
const MAX_JWKS_BYTES = MIB;

/** The largest jwks_ca_file read: a CA bundle, the system's whole included, is a few hundred KB. */
const MAX_CA_FILE_BYTES = MIB;

/** The largest jwks_bearer_token_file read (before every fetch): a projected token is about 1 KB. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/**
 * Why a file could not be read, in words of our own: the error code, what the path is instead of
 * a regular file, or its size past the cap (never the contents).
 */
function fileFailure(err: unknown): string {
  if (err instanceof FileTooLargeError) return `the file is ${err.size} bytes, more than the ${err.limit} it may have`;
  return readFailure(err);
}

/**
 * Reads a file named by a config key, failing with the key and the error code, what the path is
 * instead of a regular file, or its size past `maxBytes` (never the contents). Read at start,
 * before the event loop runs: a blocking read of a FIFO would wait for a writer with SIGTERM
 * unheard, so only a regular file is read.
 */
function readConfigFile(what: string, key: string, path: string, maxBytes: number): string {
  try {
    return readRegularFileSync(path, maxBytes);
  } catch (err) {
    throw new JwksConfigError(`${what}: cannot read ${key} ${path} (${fileFailure(err)})`);
  }
}

/**
 * The key lookup for a JWKS file's text; throws JwksConfigError naming the file (never quoting it).
 * `keys` is how many keys it holds for this method (0 only when `allowEmpty`).
 */
function keyFileSet(
  what: string,
  file: string,
  text: string,
  mapKeys: JwksSourceOptions['mapKeys'],
  allowEmpty = false,
): { getKey: JWTVerifyGetKey; keys: number } {
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(text) as JSONWebKeySet;
  } catch {
    // Not the parser's message: it quotes the file, which may be a token or a key by mistake.
    throw new JwksConfigError(`${what}: jwks_file ${file} is not valid JSON`);
  }
  if (!jwks || !Array.isArray(jwks.keys)) throw new JwksConfigError(`${what}: jwks_file ${file} has no "keys" array`);
  const keys = mapKeys ? mapKeys(jwks.keys) : jwks.keys;
  const problem = keys.length === 0 && allowEmpty ? undefined : keySetProblem(keys);
  if (problem) throw new JwksConfigError(`${what}: jwks_file ${file} ${problem}`);
  try {
    return { getKey: createLocalJWKSet({ keys }), keys: keys.length };
  } catch {
    throw new JwksConfigError(`${what}: jwks_file ${file} is not a valid JSON Web Key Set`);
  }
}

/**
 * Which file a path holds now, following symlinks: a ConfigMap update swaps the `..data` link to a
 * new directory (new inode), an in-place edit changes mtime or size.
 */
function fileIdentity(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.mtimeMs}:${st.size}`;
}

/** The identity of a file that could not be looked at (reported once until it can be again). */
const UNREADABLE = 'unreadable';

/**
 * A JWKS file's keys, following the file: when a token's `kid` is unknown (or its key unusable)
 * the file is looked at again, at most once per cooldown, and read again if it is another file
 * than the one read; so it is every JWKS_FILE_POLL_MS while tokens come (`poll`), since a key
 * removed from the file fails no token that still names it. A new file that cannot be used is reported once and the keys read before stay
 * in use: a bad update must not refuse every token, and a restart would not do better.
 */
function fileKeySource(opts: JwksSourceOptions & { jwksFile: string }, what: string): JwksSource {
  const file = opts.jwksFile;
  // The identity is taken before the read: a change in between only means one more read later.
  let identity: string | undefined;
  try {
    identity = fileIdentity(statSync(file));
  } catch {
    identity = undefined; // readConfigFile reports it
  }
  let currentText = readConfigFile(what, 'jwks_file', file, MAX_JWKS_BYTES);
  let current = keyFileSet(what, file, currentText, opts.mapKeys).getKey;
  let generation = 0;
  let lastLook = Number.NEGATIVE_INFINITY;
  let lastPoll = Date.now();
  /**
   * The look under way, as tokens wait for it: it resolves when the look returns, or rejects at
   * its deadline; in that case it stays set, rejected, until the look itself returns (however
   * late), so every token meanwhile is refused at once and no second look is started: one more
   * stat on a dead mount would hold one more of libuv's threads.
   */
  let pending: Promise<boolean> | undefined;
  /** A look missed its deadline, and none has returned on time since: one warning per such episode. */
  let stalled = false;

  /**
   * The file (its identity, when it could be had) and why it could not be read, at the last look
   * that failed: the same failure again is not reported again. Such a file is tried at every look
   * (a permission fixed changes none of what its identity is made of); one over the cap is
   * refused by its size, unread.
   */
  let unreadable: string | undefined;

  /** Resolves true when a new key set was read from the file. */
  async function readIfChanged(): Promise<boolean> {
    let text: string;
    let seen: string | undefined;
    try {
      seen = fileIdentity(await stat(file));
      if (seen === identity) return false;
      identity = seen; // a bad file is reported once, not at every look
      // A FIFO swapped in would hold a thread-pool thread until a writer came.
      text = await readRegularFile(file, MAX_JWKS_BYTES);
    } catch (err) {
      identity = UNREADABLE;
      const why = fileFailure(err);
      const failure = `${seen ?? UNREADABLE}\u0000${why}`;
      if (failure === unreadable) return false;
      unreadable = failure;
      opts.logger?.warn({ method: what, file, code: why }, 'jwks_file cannot be read; the keys read before stay in use');
      return false;
    }
    unreadable = undefined;
    try {
      // A set with no keys (for this method: a SPIFFE bundle whose JWT authorities are all gone
      // holds only x509-svid keys) is the issuer withdrawing every key, not a broken update: it
      // is used, and every token is refused, as the same set served from a jwks_url would be.
      // Kept out, it would leave the withdrawn keys trusted until a restart.
      const next = keyFileSet(what, file, text, opts.mapKeys, true);
      current = next.getKey;
      // The same keys in another file (a ConfigMap swap that changed something else): the same set.
      if (text !== currentText) generation++;
      currentText = text;
      if (next.keys === 0) opts.logger?.warn({ method: what, file }, 'jwks_file holds no keys for this method: every token is refused until keys are added');
      return true;
    } catch (err) {
      opts.logger?.warn({ method: what, file, problem: (err as Error).message }, 'jwks_file changed but cannot be used; the keys read before stay in use');
      return false;
    }
  }

  /**
   * One look at a time: requests failing together, and the poll, share it; they wait for it
   * JWKS_FILE_LOOK_DEADLINE_MS at most. A look that returns after its deadline still counts (it
   * read the file; no other look ran meanwhile), but the next token looks again: it may have
   * described the file as it was when it began.
   */
  const look = (): Promise<boolean> => {
    if (pending) return pending;
    let late = false;
    let timer: NodeJS.Timeout | undefined;
    const run = readIfChanged().finally(() => {
      clearTimeout(timer);
      pending = undefined;
      if (late) {
        lastPoll = Number.NEGATIVE_INFINITY;
        lastLook = Number.NEGATIVE_INFINITY;
      } else if (stalled) {
        stalled = false;
        opts.logger?.info?.({ method: what, file }, 'jwks_file look returned on time again; tokens are verified again');
      }
    });
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        if (!stalled) {
          stalled = true;
          opts.logger?.warn(
            { method: what, file, deadline_ms: JWKS_FILE_LOOK_DEADLINE_MS },
            'jwks_file look did not return in time (a dead mount, or the thread pool held by blocked file calls): tokens are refused (JWKS unavailable) until a look returns',
          );
        }
        reject(new JwksFileLookTimeout());
      }, JWKS_FILE_LOOK_DEADLINE_MS);
      timer.unref();
    });
    const bounded = Promise.race([run, deadline]);
    // Tokens that come after the deadline are handed this rejected promise; none may leave it unhandled.
    bounded.catch(() => undefined);
    return (pending = bounded);
  };

  // Its own cooldown, not the poll's: a token naming a new key is not kept waiting by a poll
  // that looked just before the file changed.
  const lookAgain = (): Promise<boolean> => {
    if (pending) return pending;
    if (Date.now() - lastLook < JWKS_FILE_COOLDOWN_MS) return Promise.resolve(false);
    lastLook = Date.now();
    return look();
  };

  return {
    getKey: async (header, token) => {
      try {
        return await current(header, token);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !(await lookAgain())) throw err;
        return current(header, token);
      }
    },
    // A look that missed its deadline: nothing new was read (getKey or poll reports the timeout).
    refetchAfterKeyFailure: () => lookAgain().catch(() => false),
    get generation() {
      return generation;
    },
    poll() {
      if (pending !== undefined) return pending;
      const now = Date.now();
      if (now - lastPoll < JWKS_FILE_POLL_MS) return undefined;
      lastPoll = now;
      return look();
    },
  };
}

export function createJwksSource(opts: JwksSourceOptions, what: string): JwksSource {
  if (opts.jwksUrl && opts.jwksFile) throw new JwksConfigError(`${what}: set jwks_url or jwks_file, not both`);
  if (opts.jwksFile) return fileKeySource({ ...opts, jwksFile: opts.jwksFile }, what);
  if (!opts.jwksUrl) throw new JwksConfigError(`${what}: jwks_url or jwks_file is required`);
  let url: URL;
  try {
    url = new URL(opts.jwksUrl);
  } catch {
    throw new JwksConfigError(`${what}: jwks_url is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new JwksConfigError(`${what}: jwks_url must be http(s)`);
  // fetch refuses such a URL on every request: every token would be refused, `JWKS unavailable`.
  if (url.username !== '' || url.password !== '') {
    throw new JwksConfigError(`${what}: jwks_url must not carry a user or password (user:password@host); send a token with jwks_bearer_token_file`);
  }
  const ca = opts.jwksCaFile === undefined ? undefined : readConfigFile(what, 'jwks_ca_file', opts.jwksCaFile, MAX_CA_FILE_BYTES);
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new JwksConfigError(`${what}: jwks_ca_file ${opts.jwksCaFile} holds no PEM certificate`);
  }
  // Re-read on every fetch (projected tokens rotate), but it must be there from the start.
  if (opts.jwksBearerTokenFile !== undefined) readConfigFile(what, 'jwks_bearer_token_file', opts.jwksBearerTokenFile, MAX_TOKEN_FILE_BYTES);

  const remote: Parameters<typeof createRemoteJWKSet>[1] = {
    cacheMaxAge: opts.jwksCacheMaxAgeMs ?? 600_000,
    timeoutDuration: opts.jwksTimeoutMs ?? 5_000,
    cooldownDuration: JWKS_COOLDOWN_MS,
  };
  if (opts.jwksHeaders) remote.headers = { ...opts.jwksHeaders };
  remote[customFetch] = keySetFetch(opts, ca);
  // Filled by jose with each set it fetches (see refetchingOnKeyFailure's generation).
  const cache: Partial<ExportedJWKSCache> = {};
  remote[jwksCache] = cache as Record<string, never>;
  return refetchingOnKeyFailure(createRemoteJWKSet(url, remote), cache);
}

/**
 * After a fetch of the JWKS URL failed, the next one waits this long (ms). jose fetches again on
 * every token while it has no fresh key set: with the endpoint down, each request (any JWT with
 * the right issuer, no valid signature needed) would become a request to the API server.
 */
const JWKS_RETRY_MS = 5_000;

/** A jwks_bearer_token_file that does not hold one token (printable ASCII, nothing between). */
class JwksTokenFileInvalid extends Error {
  readonly code = 'ERR_JWKS_TOKEN_FILE';
  constructor() {
    super('the jwks_bearer_token_file does not hold one token');
    this.name = 'JwksTokenFileInvalid';
  }
}

/** A key set that holds private or symmetric key material (see PRIVATE_MEMBERS). */
class JwksPrivateKeys extends Error {
  readonly code = 'ERR_JWKS_PRIVATE';
  constructor() {
    super('the JSON Web Key Set holds private or symmetric key material');
    this.name = 'JwksPrivateKeys';
  }
}

/** A key set body over MAX_JWKS_BYTES. */
class JwksTooLarge extends Error {
  readonly code = 'ERR_JWKS_TOO_LARGE';
  constructor() {
    super(`the JSON Web Key Set response is larger than ${MAX_JWKS_BYTES} bytes`);
    this.name = 'JwksTooLarge';
  }
}

/**
 * How the key set is fetched from its URL (jose's `customFetch`): with the bearer-token file and
 * CA file when configured, reading at most MAX_JWKS_BYTES of body (jose would read any size, and
 * hold it whole), checking the body is a key set, rewriting it with `mapKeys`, and after a failure
 * answering the same failure without a fetch for JWKS_RETRY_MS. Redirects are not followed (jose
 * asks for `manual`): a 3xx is not a key set.
 */
function keySetFetch(opts: JwksSourceOptions, ca: string | undefined): FetchImplementation {
  const mapKeys = opts.mapKeys;
  const dispatcher = ca !== undefined ? new Agent({ connect: { ca } }) : undefined;
  const tokenFile = opts.jwksBearerTokenFile;
  let failedAt = Number.NEGATIVE_INFINITY;
  let failure: unknown;

  const fetchOnce = async (href: string, init: Parameters<FetchImplementation>[1]): Promise<Response> => {
    const headers: Record<string, string> = {};
    init.headers.forEach((v, k) => (headers[k] = v));
    // The read waits on libuv's thread pool: held by blocked file calls (a dead mount), it would
    // never return, and jose, which bounds a fetch only through this signal, would wait with it
    // (and every token after, on the same pending fetch). So the read ends with the fetch's timeout.
    if (tokenFile) {
      const token = (await untilAborted(readRegularFile(tokenFile, MAX_TOKEN_FILE_BYTES), init.signal)).trim();
      // Two tokens, or one broken over lines: fetch would refuse the header with a message quoting it.
      if (!/^[\x21-\x7e]+$/.test(token)) throw new JwksTokenFileInvalid();
      headers.authorization = `Bearer ${token}`;
    }
    const res = await undiciFetch(href, {
      method: init.method,
      redirect: init.redirect,
      signal: init.signal,
      headers,
      ...(dispatcher ? { dispatcher } : {}),
    });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw new errors.JOSEError('Expected 200 OK from the JSON Web Key Set HTTP response');
    }
    const text = await boundedText(res.body);
    let body: { keys?: unknown };
    try {
      body = JSON.parse(text) as { keys?: unknown };
    } catch {
      throw new errors.JOSEError('Failed to parse the JSON Web Key Set HTTP response as JSON');
    }
    if (!isKeySet(body)) throw new errors.JWKSInvalid();
    // jose refuses such a set too, as merely invalid: the operator must hear that the endpoint
    // publishes keys anyone who fetched them can sign tokens with.
    if (body.keys.some((k) => PRIVATE_MEMBERS.some((m) => m in (k as object)))) throw new JwksPrivateKeys();
    const out = mapKeys ? { ...body, keys: mapKeys(body.keys as JWK[]) } : body;
    return new Response(JSON.stringify(out), { status: 200, headers: { 'content-type': 'application/json' } });
  };

  return async (href, init) => {
    if (Date.now() - failedAt < JWKS_RETRY_MS) throw failure;
    try {
      const res = await fetchOnce(href, init);
      failedAt = Number.NEGATIVE_INFINITY;
      return res;
    } catch (err) {
      // jose turns a TimeoutError into JWKSTimeout itself, but only one thrown by this function.
      failure = (err as { name?: unknown }).name === 'TimeoutError' ? new errors.JWKSTimeout() : err;
      failedAt = Date.now();
      throw failure;
    }
  };
}

/** The body as text, refusing one over MAX_JWKS_BYTES (by its content-length or as it streams). */
async function boundedText(body: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_JWKS_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw new JwksTooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** jose's own check: an object whose `keys` is an array of objects. */
function isKeySet(v: unknown): v is { keys: unknown[] } {
  const keys = (v as { keys?: unknown } | null)?.keys;
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Array.isArray(keys) && keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k));
}


/**
 * jose refetches a JWKS URL only for an unknown `kid`: a key set that served one malformed key,
 * or a key since rotated behind the same `kid`, would be trusted, and the tokens refused, until
 * the cache age ends (10 min). Here a key that is in the current set but cannot be used or does
 * not verify the signature makes the set be fetched again, once per cooldown counted from the
 * last fetch or try (a failed fetch too), so neither a bad issuer nor a flood of forged
 * signatures can make Warden hammer the endpoint.
 */
function refetchingOnKeyFailure(remote: ReturnType<typeof createRemoteJWKSet>, cache: Partial<ExportedJWKSCache>): JwksSource {
  let lastTry = Number.NEGATIVE_INFINITY;
  let pending: Promise<boolean> | undefined;
  // jose puts each set it fetches in `cache` (its jwksCache export), as a new object; one whose
  // keys differ from the last is another generation (the first fetch is not: nothing was
  // verified before it). Compared by identity first: `remote.jwks()` would clone the set on
  // every call, and this is read for every token.
  let seen: unknown;
  let seenText: string | undefined;
  let generation = 0;
  const refetch = async (): Promise<boolean> => {
    try {
      await remote.reload();
      return true;
    } catch {
      return false; // the caller keeps its own error: the key it had could not be used
    } finally {
      pending = undefined;
    }
  };
  return {
    getKey: remote,
    refetchAfterKeyFailure(kid) {
      if (pending) return pending; // requests failing together share one fetch
      // The cooldown first: it settles a flood of forged signatures at no cost.
      if (remote.coolingDown || Date.now() - lastTry < JWKS_COOLDOWN_MS) return Promise.resolve(false);
      // Only when the failure was the key's: a set that could not be fetched is jose's to retry.
      // The set jose verifies with, as it put it in `cache`: `remote.jwks()` would copy it whole
      // (1 MiB at most) for every token that failed.
      if (!remote.fresh || !holdsKey(cache.jwks?.keys, kid)) return Promise.resolve(false);
      lastTry = Date.now();
      return (pending = refetch());
    },
    get generation() {
      const jwks = cache.jwks;
      if (jwks !== seen) {
        // Once per fetch (every jwksCacheMaxAgeMs, or a refetch), not per token.
        seen = jwks;
        const text = JSON.stringify(jwks?.keys);
        if (seenText !== undefined && text !== seenText) generation++;
        seenText = text;
      }
      return generation;
    },
    poll() {
      return undefined;
    },
  };
}

/** Whether a key set has the key a token names (any key, for a token without `kid`). */
function holdsKey(keys: JWK[] | undefined, kid: string | undefined): boolean {
  if (!keys) return false;
  return kid === undefined ? keys.length > 0 : keys.some((k) => k.kid === kid);
}
