/** The pipeline's public door: canonical types, stage ports, errors and the composer. */
export * from './types.js';
export type * from './ports.js';
export type * from './stage.js';
export * from './errors.js';
export { onAbort, RequestSignal, type CancelSignal } from './cancel.js';
export { inCheckPhase } from './check-phase.js';
export { canonicalJson, outboundJson } from './canonical-json.js';
export { checkJsonDepth, tooDeepAt, DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_CEILING } from './json-depth.js';
export {
  createPipeline,
  STAGE_ORDER,
  type Pipeline,
  type PipelineLogger,
  type PipelineMetrics,
  type PipelineOptions,
  type PipelineStages,
  type RequestOutcome,
  type RequestStageName,
} from './pipeline.js';
