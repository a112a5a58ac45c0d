/** `env://NAME` secret provider: the process environment, read at fetch time. */
import type { SecretProvider } from '../pipeline/ports.js';
import { SecretFetchError } from './file.js';

export interface EnvSecretProviderOptions {
  /** The environment to read (default `process.env`); injectable for tests and embedding. */
  env?: NodeJS.ProcessEnv;
  /** Lease in ms. The environment does not change under a running process, so this is long. Default 10 min. */
  ttlMs?: number;
}

/** Default lease of an env secret: the environment does not change under a running process. */
export const ENV_SECRET_TTL_MS = 600_000;

export function createEnvSecretProvider(opts: EnvSecretProviderOptions = {}): SecretProvider {
  const env = opts.env ?? process.env;
  const ttlMs = opts.ttlMs ?? ENV_SECRET_TTL_MS;
  return {
    scheme: 'env',
    async fetch(ref: URL) {
      const value = env[ref.host];
      if (value === undefined) throw new SecretFetchError('environment variable is not set');
      if (value === '') throw new SecretFetchError('environment variable is empty');
      return { value, ttlMs };
    },
  };
}
