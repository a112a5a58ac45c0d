/**
 * Where Warden's Vault token comes from.
 *
 * - `token_file`: a file holding a token (written by Vault Agent, a CSI driver, an operator).
 *   Its identity (device, inode, size, mtime) is looked at before each use and the file read again
 *   when it changed, so a rotated token is used from the next fetch on; a 403 reads it again too.
 * - `kubernetes`: the pod's service-account token is sent to `POST /v1/auth/<mount>/login`
 *   ({role, jwt}); the client token it answers is used until two thirds of its lease have passed,
 *   then a new login starts in the background while the old token still serves (a login that
 *   fails then leaves the old token in use until its lease ends). A 403 on a read drops the
 *   token and logs in again. One login at a time: every fetch that needs a token meanwhile waits
 *   for the same one (single flight).
 *
 * A read of either file is given up after `timeout_ms` (as the Kubernetes store bounds its token
 * read): the read is shared, so one stuck on a dead mount would otherwise hold every later fetch.
 *
 * Tokens and the service-account JWT never appear in a message: errors say what failed in our words.
 */
import { stat } from 'node:fs/promises';
import { FileTooLargeError, readFailure, readRegularFile } from '../../pipeline/regular-file.js';
import { SecretFetchError } from '../file.js';
import { untilAborted } from '../../pipeline/cancel.js';
import type { VaultHttp } from './http.js';

/** The largest token file read: a Vault token is ~100 bytes, a service-account JWT ~1 KB. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/** A token as an HTTP header value may carry it: printable ASCII, no space, nothing else. */
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;

/** Part of a token's lease after which a new login starts (the old token serves meanwhile). */
const RENEW_AT = 2 / 3;

export interface VaultTokenSource {
  /** A token to send, and a handle to pass to `rejected` when Vault refuses it (403). */
  token(signal?: AbortSignal): Promise<string>;
  /** Vault refused `token` (403): forget it. Resolves true when another token is worth a retry. */
  rejected(token: string, signal?: AbortSignal): Promise<boolean>;
}

/** The error a fetch that stops waiting (its own signal) ends with. */
const givenUp = () => new SecretFetchError('the read was given up');

/**
 * `work` (a token file's read, shared by every fetch waiting for it) ended after `timeoutMs`: a
 * read stuck on a dead mount would otherwise keep the shared read, and so every later fetch,
 * waiting for good. Dropped at the deadline, the next fetch starts a new read.
 */
function readWithin<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return untilAborted(work, AbortSignal.timeout(timeoutMs), () => new SecretFetchError(`cannot read ${what} (no answer within ${timeoutMs} ms)`));
}

/** A token file's text, trimmed and checked; `what` names the config key in errors. */
async function readTokenFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readRegularFile(path, MAX_TOKEN_FILE_BYTES);
  } catch (err) {
    const why = err instanceof FileTooLargeError ? `larger than ${MAX_TOKEN_FILE_BYTES} bytes` : readFailure(err);
    throw new SecretFetchError(`cannot read ${what} (${why})`);
  }
  const token = text.trim();
  if (token === '') throw new SecretFetchError(`${what} is empty`);
  if (!TOKEN_SHAPE.test(token)) throw new SecretFetchError(`${what} does not hold one token (printable characters, no spaces or line breaks)`);
  return token;
}

/** `timeoutMs`: the deadline of one read of the file (secrets.vault.timeout_ms). */
export function tokenFileSource(path: string, timeoutMs: number): VaultTokenSource {
  const what = 'secrets.vault.auth.token_file';
  let current: { id: string; token: string } | undefined;
  let reading: Promise<string> | undefined;

  const read = (force: boolean): Promise<string> => {
    if (reading) return reading;
    const work = (async () => {
      let id: string;
      try {
        const st = await stat(path);
        id = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch (err) {
        throw new SecretFetchError(`cannot read ${what} (${readFailure(err)})`);
      }
      if (!force && current?.id === id) return current.token;
      const token = await readTokenFile(path, what);
      current = { id, token };
      return token;
    })();
    reading = readWithin(work, timeoutMs, what).finally(() => (reading = undefined));
    return reading;
  };

  return {
    token: (signal) => untilAborted(read(false), signal, givenUp),
    async rejected(token, signal) {
      // Read again whatever its identity says (a copy in place may keep size and mtime): only a
      // different token is worth another try.
      const next = await untilAborted(read(true), signal, givenUp);
      return next !== token;
    },
  };
}

export interface KubernetesLoginOptions {
  http: VaultHttp;
  role: string;
  /** The auth method's mount (`kubernetes`). */
  mount: string;
  /** The service-account token file (re-read at each login: projected tokens rotate). */
  jwtFile: string;
  /** Deadline of one read of `jwtFile` (ms; secrets.vault.timeout_ms, as the login request's). */
  timeoutMs: number;
  headers: Record<string, string>;
  now?: () => number;
}

interface Held {
  token: string;
  /** When a new login starts (ms, `now`'s clock). */
  renewAt: number;
  /** When the token's lease ends: past it the token is not used. */
  expiresAt: number;
}

export function kubernetesLoginSource(opts: KubernetesLoginOptions): VaultTokenSource {
  // A monotonic clock: a wall-clock step (NTP) must neither keep an expired token nor drop a good one.
  const now = opts.now ?? (() => performance.now());
  const loginPath = `/v1/auth/${opts.mount.split('/').map(encodeURIComponent).join('/')}/login`;
  let held: Held | undefined;
  let pending: Promise<Held> | undefined;

  async function loginOnce(): Promise<Held> {
    const what = 'secrets.vault.auth.kubernetes.token_file';
    const jwt = await readWithin(readTokenFile(opts.jwtFile, what), opts.timeoutMs, what);
    const started = now();
    const res = await opts.http.request('POST', loginPath, opts.headers, JSON.stringify({ role: opts.role, jwt }));
    if (res.status !== 200) throw new SecretFetchError(loginFailure(res.status));
    const auth = (res.body as { auth?: unknown } | undefined)?.auth as { client_token?: unknown; lease_duration?: unknown } | null | undefined;
    const token = auth?.client_token;
    const lease = auth?.lease_duration;
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token) || typeof lease !== 'number' || !Number.isFinite(lease) || lease < 0) {
      throw new SecretFetchError('the Vault kubernetes login answered without a usable auth.client_token and auth.lease_duration');
    }
    // lease_duration 0: a token without expiry (a root or periodic-less token); used until refused.
    const leaseMs = lease * 1000;
    return lease === 0
      ? { token, renewAt: Infinity, expiresAt: Infinity }
      : { token, renewAt: started + leaseMs * RENEW_AT, expiresAt: started + leaseMs };
  }

  const login = (): Promise<Held> => {
    if (pending) return pending;
    pending = loginOnce()
      .then((h) => (held = h))
      .finally(() => (pending = undefined));
    return pending;
  };

  return {
    async token(signal) {
      const h = held;
      const t = now();
      if (h !== undefined && t < h.expiresAt) {
        // Renew ahead of the end: the old token still serves this fetch. A failed early login
        // is no one's to report; the next fetch past the lease logs in and reports its own.
        if (t >= h.renewAt && !pending) login().catch(() => undefined);
        return h.token;
      }
      return (await untilAborted(login(), signal, givenUp)).token;
    },
    async rejected(token, signal) {
      if (held?.token === token) held = undefined;
      // A login under way may have been started before the refusal: a newer token is worth a try.
      const next = held ?? (await untilAborted(login(), signal, givenUp));
      return next.token !== token;
    },
  };
}

/** The login's failure in our words (Vault's `errors` may quote the role; never the JWT, but still not ours). */
function loginFailure(status: number): string {
  if (status === 400 || status === 403) {
    return `Vault refused the kubernetes login (HTTP ${status}): check secrets.vault.auth.kubernetes.role and that the role binds this service account`;
  }
  return `the Vault kubernetes login failed (${statusWords(status)})`;
}

/** Vault's status codes in words (sys/health and the API's documented codes). */
export function statusWords(status: number): string {
  if (status === 429) return 'HTTP 429: rate-limited';
  if (status === 503) return 'HTTP 503: Vault is sealed or in maintenance';
  if (status >= 300 && status < 400) return `HTTP ${status}: a redirect, not followed (point secrets.vault.address at the active node or its load balancer)`;
  if (status >= 500) return `HTTP ${status}: a Vault server error`;
  return `HTTP ${status}`;
}
