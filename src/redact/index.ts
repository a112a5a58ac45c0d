/**
 * redact/: PII redaction and leak guard (DESIGN.md step 6 and 8). The pipeline uses
 * `createRedactor(config)` and the Redactor / RedactionSession ports.
 */
export { createRedactor, WardenRedactor, DEFAULT_PHONE_REGIONS, DEFAULT_MAX_HOLD_BACK, type RedactorOptions } from './redactor.js';
export { Session } from './session.js';
export { FindingsCache, type FindingsCacheOptions, type FindingsCacheStats } from './findings-cache.js';
export { BUILTIN_PROFILES, GROUPS } from './profiles.js';
export { BUILTIN_ENTITIES, STRUCTURED_ENTITIES, SECRET_ENTITIES } from './entities/index.js';
export { LEAK_ENTITY, guardable } from './leak-guard.js';
export { jsonLiterals } from './json-literals.js';
export { fold, toOriginalSpan } from './normalize.js';
export { runRedactCli } from './cli.js';
export { createRedactStage, createRespondStage } from './stage.js';
export type {
  AllowListConfig,
  CustomEntityConfig,
  Detector,
  EntitySettings,
  Finding,
  ProfileConfig,
  RedactionConfig,
  StreamSecretHold,
  ValidatorName,
} from './types.js';
