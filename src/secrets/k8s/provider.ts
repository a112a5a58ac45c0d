/**
 * `k8s://namespace/name#key` secret provider: reads a Secret from the Kubernetes API
 * (`GET /api/v1/namespaces/{namespace}/secrets/{name}`) with Warden's service-account token, and
 * answers the base64-decoded `data[key]`.
 *
 * Fails closed with a reason written here: the status (401, 403, 404, 5xx), a timeout, an answer
 * that is not a Secret, too large, a missing key, a value that is not UTF-8 text. Never the API's
 * body (a Status message may quote names, a proxy's page anything), never a value, never the token.
 */
import { Pool } from 'undici';
import type { SecretProvider } from '../../pipeline/ports.js';
import { FileTooLargeError, readFailure, readRegularFile } from '../../pipeline/regular-file.js';
import { SecretFetchError, trimOneTrailingNewline } from '../file.js';
import { untilAborted } from '../until-aborted.js';
import { k8sNamespaceNotAllowedReason, k8sRefId, type K8sNamespaces } from '../../pipeline/secret-access.js';
import { MAX_TOKEN_FILE_BYTES, tokenOf } from './settings.js';

export interface K8sSecretProviderOptions {
  /** The API server's base URL (https; a path prefix is kept, for an API behind a proxy). */
  apiUrl: URL;
  /** PEM CA bundle the server's certificate must chain to (replaces the system's roots). */
  ca: string;
  /** The service-account token file, read before every request: projected tokens rotate. */
  tokenFile: string;
  /** The namespaces refs may name; refs in `exempt` (the config's own, `ns/name#key`) may name any. */
  namespaces: K8sNamespaces;
  exempt?: ReadonlySet<string>;
  /** Deadline for one request to the API, connect to last body byte (ms). */
  requestTimeoutMs: number;
  /** The largest answer read (bytes). */
  maxResponseBytes: number;
  /** Lease of a value (ms). */
  ttlMs: number;
}

export interface K8sSecretProvider extends SecretProvider {
  /** Closes the connections to the API server (the runtime's end). */
  close(): Promise<void>;
}

const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const K8S_KEY = /^[-._a-zA-Z0-9]+$/;
/** The base64 alphabet with padding, as the API server writes `data` values (RFC 4648, not URL-safe). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** An error code safe to repeat (ECONNREFUSED, UND_ERR_SOCKET, CERT_HAS_EXPIRED): nothing else of a transport error is. */
const ERROR_CODE = /^[A-Z][A-Z0-9_]{1,63}$/;
/** TLS verification failures: the certificate, not the network, is what is wrong. */
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** How much of an error answer is read (and dropped) so its connection can be reused; past it the connection is closed. */
const ERROR_BODY_DUMP_BYTES = 64 * 1024;

/** What was asked for, from a ref the resolver has parsed (checked again here: a URL built elsewhere is no less refused). */
function partsOf(ref: URL): { namespace: string; name: string; key: string } {
  const namespace = ref.host;
  const name = ref.pathname.slice(1);
  const key = ref.hash.slice(1);
  if (
    ref.protocol !== 'k8s:' || ref.search !== '' || ref.username !== '' || ref.password !== '' || ref.port !== '' ||
    namespace.length > 63 || !DNS1123_LABEL.test(namespace) || name.length > 253 || !K8S_NAME.test(name) || key.length > 253 || !K8S_KEY.test(key)
  ) {
    throw new SecretFetchError('secret ref is not k8s://namespace/name#key');
  }
  return { namespace, name, key };
}

/** Why a request did not get an answer, in our words: a timeout, an untrusted certificate, or the transport's error code. */
function transportFailure(err: unknown, timeoutMs: number): SecretFetchError {
  const e = err as { name?: unknown; code?: unknown };
  const code = typeof e?.code === 'string' && ERROR_CODE.test(e.code) ? e.code : undefined;
  if (e?.name === 'TimeoutError' || (code !== undefined && TIMEOUT_CODES.has(code))) {
    return new SecretFetchError(`the Kubernetes API did not answer within ${timeoutMs} ms`);
  }
  if (code !== undefined && TLS_CODES.has(code)) {
    return new SecretFetchError(`the Kubernetes API's certificate is not trusted (${code}): check secrets.kubernetes.ca_file`);
  }
  return new SecretFetchError(`cannot reach the Kubernetes API (${code ?? 'connection failed'})`);
}

/** The reason for a status other than 200, with what to check. */
function statusFailure(status: number): SecretFetchError {
  switch (status) {
    case 401:
      return new SecretFetchError("the Kubernetes API refused Warden's token (401 Unauthorized): check secrets.kubernetes.token_file");
    case 403:
      return new SecretFetchError("Warden's service account may not get this Secret (403 Forbidden): grant get on it with a Role");
    case 404:
      return new SecretFetchError('no such Secret (404 Not Found)');
    case 429:
      return new SecretFetchError('the Kubernetes API is rate-limiting Warden (429 Too Many Requests)');
    default:
      if (status >= 300 && status < 400) return new SecretFetchError(`the Kubernetes API answered ${status} (redirects are not followed)`);
      return new SecretFetchError(`the Kubernetes API answered ${status}`);
  }
}

export function createK8sSecretProvider(opts: K8sSecretProviderOptions): K8sSecretProvider {
  const { requestTimeoutMs, maxResponseBytes, ttlMs } = opts;
  const basePath = opts.apiUrl.pathname.replace(/\/+$/, '');
  // Keep-alive: a lease ends per ref, so several reads a minute go to the same server. Only the
  // configured CA is trusted (connect.ca replaces the system's roots), as kubectl does in-cluster.
  const pool = new Pool(opts.apiUrl.origin, {
    connections: 4,
    pipelining: 1,
    keepAliveTimeout: 4_000,
    headersTimeout: requestTimeoutMs,
    bodyTimeout: requestTimeoutMs,
    connect: { ca: opts.ca, rejectUnauthorized: true, timeout: requestTimeoutMs },
  });
  // utf8 fatal: bad bytes are refused, never replaced (a different credential would go upstream).
  // ignoreBOM false: a leading byte order mark is dropped, as the file provider drops it from the
  // same key mounted as a file.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  /** One request per Secret at a time: the keys of one Secret asked for together share it. */
  const inflight = new Map<string, Promise<Record<string, unknown>>>();

  async function token(): Promise<string> {
    let text: string;
    try {
      text = await readRegularFile(opts.tokenFile, MAX_TOKEN_FILE_BYTES);
    } catch (err) {
      const why = err instanceof FileTooLargeError ? `larger than ${MAX_TOKEN_FILE_BYTES} bytes` : readFailure(err);
      throw new SecretFetchError(`cannot read secrets.kubernetes.token_file (${why})`);
    }
    const t = tokenOf(text);
    if (t === undefined) throw new SecretFetchError('secrets.kubernetes.token_file does not hold one token');
    return t;
  }

  /** The Secret's `data` (base64 values by key), read from the API. */
  async function readSecret(namespace: string, name: string): Promise<Record<string, unknown>> {
    // One deadline for the whole read, the token file's included: a read stuck on a dead mount
    // would otherwise hold this Secret's shared read (and every later fetch of it) for good.
    const signal = AbortSignal.timeout(requestTimeoutMs);
    const authorization = `Bearer ${await untilAborted(token(), signal, () => transportFailure(signal.reason, requestTimeoutMs))}`;
    let res;
    try {
      res = await pool.request({
        method: 'GET',
        path: `${basePath}/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`,
        headers: { authorization, accept: 'application/json' },
        signal,
      });
    } catch (err) {
      // Our deadline, whatever error undici reports it with (its own abort error, or the reason).
      throw transportFailure(signal.aborted ? signal.reason : err, requestTimeoutMs);
    }
    const { statusCode, headers, body } = res;
    if (statusCode !== 200) {
      // Read (to a bound) and dropped: a Status object's message is the API's text, not ours.
      await body.dump({ limit: ERROR_BODY_DUMP_BYTES }).catch(() => undefined);
      throw statusFailure(statusCode);
    }
    const tooLarge = () => new SecretFetchError(`the Kubernetes API's answer is larger than ${maxResponseBytes} bytes (secrets.kubernetes.max_response_bytes)`);
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > maxResponseBytes) {
      body.destroy();
      throw tooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxResponseBytes) {
          body.destroy();
          throw tooLarge();
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof SecretFetchError) throw err;
      throw transportFailure(signal.aborted ? signal.reason : err, requestTimeoutMs);
    }
    let secret: unknown;
    try {
      secret = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
    } catch {
      throw new SecretFetchError('the Kubernetes API answered with something that is not JSON');
    }
    const s = secret as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; data?: unknown } | null;
    if (typeof s !== 'object' || s === null || Array.isArray(s) || s.kind !== 'Secret') {
      throw new SecretFetchError('the Kubernetes API answered with something that is not a Secret');
    }
    // Another object than the one asked for (a proxy that rewrites paths): not this ref's value.
    // The API server always names the object it returns.
    if (typeof s.metadata !== 'object' || s.metadata === null || s.metadata.name !== name || (s.metadata.namespace !== undefined && s.metadata.namespace !== namespace)) {
      throw new SecretFetchError('the Kubernetes API answered with another Secret than the one asked for');
    }
    // A Secret without data (all keys removed) has no `data` member at all.
    if (s.data === undefined || s.data === null) return {};
    if (typeof s.data !== 'object' || Array.isArray(s.data)) throw new SecretFetchError('the Secret\'s data is not an object');
    return s.data as Record<string, unknown>;
  }

  function sharedRead(namespace: string, name: string): Promise<Record<string, unknown>> {
    const id = `${namespace}/${name}`;
    let pending = inflight.get(id);
    if (!pending) {
      pending = readSecret(namespace, name).finally(() => inflight.delete(id));
      // Every caller may stop waiting (its deadline): the failure is then no one's to hear.
      pending.catch(() => undefined);
      inflight.set(id, pending);
    }
    return pending;
  }

  return {
    scheme: 'k8s',
    async fetch(ref: URL, signal?: AbortSignal) {
      const { namespace, name, key } = partsOf(ref);
      // Checked before anything is read: whether a Secret exists elsewhere says something too.
      if (!opts.exempt?.has(k8sRefId(ref)) && !opts.namespaces.namespaces.includes(namespace)) {
        throw new SecretFetchError(k8sNamespaceNotAllowedReason(opts.namespaces, false));
      }
      const data = await untilAborted(sharedRead(namespace, name), signal);
      const encoded = Object.hasOwn(data, key) ? data[key] : undefined;
      if (encoded === undefined) throw new SecretFetchError(`the Secret has no key ${key}`);
      if (typeof encoded !== 'string' || !BASE64.test(encoded)) throw new SecretFetchError(`the Secret's key ${key} is not base64`);
      let text: string;
      try {
        text = utf8.decode(Buffer.from(encoded, 'base64'));
      } catch {
        // A binary value (a keystore, a DER key) is not a text a prompt or a header can carry.
        throw new SecretFetchError(`the Secret's key ${key} is not UTF-8 text`);
      }
      // As the file provider reads the same key mounted as a file: one trailing newline dropped
      // (`kubectl create secret --from-file` keeps the file's).
      const value = trimOneTrailingNewline(text);
      if (value === '') throw new SecretFetchError(`the Secret's key ${key} is empty`);
      return { value, ttlMs };
    },
    // Destroy, not close: at the runtime's end no request waits on a secret any more, and a
    // request stuck on a dead API server must not hold the shutdown for its timeout.
    close: () => pool.destroy(),
  };
}
