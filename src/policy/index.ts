/** Policy: the PolicyEngine port, the built-in Rego engine adapter (with its decision cache and the load's required tests), policy input, decision normalization and the decide stage. */
export type { PolicyEngine } from '../pipeline/ports.js';
export { createRegoPolicyEngine } from './rego-engine.js';
export { requirePassingTests } from './load-tests.js';
export type { RegoPolicyEngineOptions, RegoPolicyEngine, DecisionCacheStatus } from './rego-engine.js';
export type { DecisionCacheOutcome } from './decision-cache.js';
export { buildPolicyInput } from './input.js';
export type { PolicyEnvironment } from './input.js';
export { normalizeDecision, defaultRedaction } from './decision.js';
export { createDecideStage } from './stage.js';
export { formatInputPath } from './rego/index.js';
export type { DecideStageOptions } from './stage.js';
