/** Templates: YAML loader and lint, the registry (TemplateStore), strict renderer, resolve and render stages. */
export {
  readTemplates,
  parseTemplateFile,
  parseTemplateFiles,
  findTemplateFiles,
  scanTemplateFiles,
  templatesRevision,
  formatIssue,
  formatWarning,
  TemplateLoadError,
  MAX_YAML_ALIAS_COUNT,
} from './loader.js';
export type { TemplateIssue, TemplateWarning, TemplateFile, LoadedTemplates, TemplateLimits } from './loader.js';
export { TemplateRegistry, loadTemplateStore, parseTemplateRef } from './registry.js';
export { compileTemplate, renderTemplate, checkVariableValue, checkRequestVariables, checkRenderedSize } from './renderer.js';
export type { CompiledTemplate } from './renderer.js';
export { parsePlaceholders, VARIABLE_NAME } from './placeholders.js';
export type { Segment } from './placeholders.js';
export { findSecretLiteral } from '../pipeline/secret-literals.js';
export { isRetired, retireInstant } from './retire.js';
export { TemplateSchema, TEMPLATE_ID } from './schema.js';
export { createResolveStage, createRenderStage } from './stages.js';
export { lintTemplates, formatLintResult } from './lint.js';
export type { TemplateLintResult } from './lint.js';
export { runTemplatesCli } from './cli.js';
export type { TemplatesCliIO } from './cli.js';
