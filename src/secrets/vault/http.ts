/**
 * One request to Vault: a keep-alive undici Pool to the configured address (with its CA), a
 * deadline per request, and a body read to at most `maxResponseBytes` then parsed as JSON.
 * Redirects are not followed (a standby node's 307 would send the token elsewhere). Every
 * failure is a SecretFetchError whose message is ours: never Vault's body, never a header.
 */
import { Pool } from 'undici';
import { SecretFetchError } from '../file.js';

export interface VaultHttpOptions {
  /** `https://vault.example:8200` (an origin: no path, no credentials). */
  address: string;
  /** PEM CA bundle for a Vault certificate signed by a private CA. */
  ca?: string;
  /** Deadline for one request, headers and body (ms). */
  timeoutMs: number;
  /** Largest response body read; a larger one is refused. */
  maxResponseBytes: number;
}

export interface VaultResponse {
  status: number;
  /** The body parsed as JSON; undefined when it was empty or not JSON. */
  body: unknown;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** How long an idle connection to Vault is kept (Vault's own idle timeout is far longer). */
const KEEP_ALIVE_MS = 4_000;

export interface VaultHttp {
  request(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body: string | undefined, signal?: AbortSignal): Promise<VaultResponse>;
  close(): Promise<void>;
}

export function createVaultHttp(opts: VaultHttpOptions): VaultHttp {
  let pool: Pool | undefined;
  const poolNow = (): Pool =>
    (pool ??= new Pool(opts.address, {
      connections: 16,
      keepAliveTimeout: KEEP_ALIVE_MS,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: { timeout: opts.timeoutMs, ...(opts.ca === undefined ? {} : { ca: opts.ca }) },
    }));

  async function request(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body: string | undefined, signal?: AbortSignal): Promise<VaultResponse> {
    if (signal?.aborted) throw new SecretFetchError('the read was given up');
    // One deadline for the whole exchange (connect, headers, body): undici's own timeouts are per
    // phase, and a body trickled a byte at a time would pass them.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), opts.timeoutMs);
    timer.unref();
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      let res;
      try {
        res = await poolNow().request({
          method,
          path,
          headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }), accept: 'application/json', 'x-vault-request': 'true' },
          ...(body === undefined ? {} : { body }),
          signal: controller.signal,
        });
      } catch (err) {
        throw transportError(err, controller.signal.aborted, signal?.aborted === true, opts.timeoutMs);
      }
      const length = Number(res.headers['content-length']);
      if (Number.isFinite(length) && length > opts.maxResponseBytes) {
        res.body.destroy();
        throw new SecretFetchError(`Vault's answer (HTTP ${res.statusCode}) is larger than ${opts.maxResponseBytes} bytes`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > opts.maxResponseBytes) {
            res.body.destroy();
            throw new SecretFetchError(`Vault's answer (HTTP ${res.statusCode}) is larger than ${opts.maxResponseBytes} bytes`);
          }
          chunks.push(chunk);
        }
      } catch (err) {
        if (err instanceof SecretFetchError) throw err;
        throw transportError(err, controller.signal.aborted, signal?.aborted === true, opts.timeoutMs);
      }
      let parsed: unknown;
      if (size > 0) {
        try {
          // fatal: a byte that is not UTF-8 is refused, never replaced by U+FFFD (a value quietly
          // changed would go upstream as a different credential).
          parsed = JSON.parse(utf8.decode(Buffer.concat(chunks, size)));
        } catch {
          parsed = undefined; // the caller says what it expected; the text is never repeated
        }
      }
      return { status: res.statusCode, body: parsed };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  return {
    request,
    async close() {
      const p = pool;
      pool = undefined;
      await p?.destroy().catch(() => undefined);
    },
  };
}

/** A failed exchange in our words: the deadline, the caller leaving, or the error's code (ECONNREFUSED, a TLS code). */
function transportError(err: unknown, aborted: boolean, callerLeft: boolean, timeoutMs: number): SecretFetchError {
  if (callerLeft) return new SecretFetchError('the read was given up');
  if (aborted) return new SecretFetchError(`Vault did not answer within ${timeoutMs} ms`);
  const code = (err as { code?: unknown }).code;
  const shown = typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code) ? code : 'connection error';
  return new SecretFetchError(`cannot reach Vault (${shown})`);
}
