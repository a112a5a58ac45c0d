/** Workload identity: authenticators (Kubernetes tokens, SPIFFE JWT-SVIDs, dev) and the authenticate stage. */
export { KubernetesTokenAuthenticator } from './kubernetes.js';
export type { KubernetesTokenAuthenticatorOptions } from './kubernetes.js';
export { SpiffeJwtAuthenticator } from './spiffe.js';
export type { SpiffeJwtAuthenticatorOptions } from './spiffe.js';
export { DevAuthenticator } from './dev.js';
export type { DevAuthenticatorOptions, WarnLogger } from './dev.js';
export { createJwksSource, JwksConfigError } from './jwks.js';
export type { JwksSourceOptions } from './jwks.js';
export { DEFAULT_ALGORITHMS } from './jwt.js';
export { createAuthenticateStage } from './stage.js';
