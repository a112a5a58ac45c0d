/**
 * Secrets: ref parsing, the file and env providers, the caching resolver and the fetch stage.
 * The Vault and Kubernetes Secret stores, each a folder with its settings, have doors of their own
 * (./vault/index.ts, ./k8s/index.ts), which the runtime imports directly.
 */
export { parseSecretRef, secretRefScheme, SecretRefError, SECRET_SCHEMES } from '../pipeline/secret-ref.js';
export type { ParsedSecretRef, SecretScheme, SecretRefErrorCode } from '../pipeline/secret-ref.js';
export { createFileSecretProvider, FILE_SECRET_TTL_MS, SecretFetchError, trimOneTrailingNewline } from './file.js';
export type { FileSecretProviderOptions } from './file.js';
export { createEnvSecretProvider, ENV_SECRET_TTL_MS } from './env.js';
export type { EnvSecretProviderOptions } from './env.js';
export { createSecretResolver, DEFAULT_SECRET_FAILURE_TTL_MS, DEFAULT_SECRET_FETCH_TIMEOUT_MS } from './resolver.js';
export type { CachingSecretResolver, SecretResolverOptions } from './resolver.js';
export { createFetchStage, templateSecretRefs, type Guardable } from './stage.js';
