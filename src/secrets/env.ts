/** `env://NAME` secret provider: the process environment, read at fetch time. */
import type { SecretProvider } from '../pipeline/ports.js';
import { envNameAllowed, envNotAllowedReason } from '../pipeline/secret-access.js';
import { SecretFetchError } from './file.js';

export interface EnvSecretProviderOptions {
  /** The environment to read (default `process.env`); injectable for tests and embedding. */
  env?: NodeJS.ProcessEnv;
  /** Lease in ms. The environment does not change under a running process, so this is long. Default 10 min. */
  ttlMs?: number;
  /**
   * Which variables may be read (secrets.env_allow): names, or prefixes ending in `*`. Names in
   * `exempt` (the config's own refs, e.g. a provider's key) are read whatever `allow` says.
   * Unset: any variable (a provider built without a config, as in tests and embedding).
   */
  access?: { allow: readonly string[]; exempt: ReadonlySet<string> };
}

/** Default lease of an env secret: the environment does not change under a running process. */
export const ENV_SECRET_TTL_MS = 600_000;

export function createEnvSecretProvider(opts: EnvSecretProviderOptions = {}): SecretProvider {
  const env = opts.env ?? process.env;
  const ttlMs = opts.ttlMs ?? ENV_SECRET_TTL_MS;
  const access = opts.access;
  return {
    scheme: 'env',
    async fetch(ref: URL) {
      // Checked before the variable is read: whether it is set says something too.
      if (access !== undefined && !access.exempt.has(ref.host) && !envNameAllowed(ref.host, access.allow)) {
        throw new SecretFetchError(envNotAllowedReason(access.allow, false));
      }
      const value = env[ref.host];
      if (value === undefined) throw new SecretFetchError('environment variable is not set');
      if (value === '') throw new SecretFetchError('environment variable is empty');
      return { value, ttlMs };
    },
  };
}
