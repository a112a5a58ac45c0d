/**
 * Waiting on shared work with a way out. A read several fetches share (a Secret's, a Vault login,
 * a token file's) cannot be cancelled for one of them; each waiter stops waiting when its own
 * signal aborts, and a deadline signal over the shared work itself (AbortSignal.timeout) ends it
 * for everyone, so a read stuck on a dead mount is dropped and a later fetch starts a new one.
 */
import { SecretFetchError } from './file.js';

/**
 * `work`, or a rejection with `error()` once `signal` aborts, whichever comes first. `work` goes on
 * for whoever else waits on it (its failure then is no one's to hear).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined, error: () => Error = () => new SecretFetchError('read aborted')): Promise<T> {
  if (!signal) return work;
  work.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(error());
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e as Error)),
    );
  });
}
