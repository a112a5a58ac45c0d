/** Secrets: ref parsing, providers (file, env), the caching resolver and the fetch stage. */
export { parseSecretRef, secretRefScheme, SecretRefError, SECRET_SCHEMES } from './ref.js';
export type { ParsedSecretRef, SecretScheme, SecretRefErrorCode } from './ref.js';
export { createFileSecretProvider, SecretFetchError, trimOneTrailingNewline } from './file.js';
export type { FileSecretProviderOptions } from './file.js';
export { createEnvSecretProvider } from './env.js';
export type { EnvSecretProviderOptions } from './env.js';
export { createSecretResolver } from './resolver.js';
export type { CachingSecretResolver, SecretResolverOptions } from './resolver.js';
export { createFetchStage, templateSecretRefs } from './stage.js';
