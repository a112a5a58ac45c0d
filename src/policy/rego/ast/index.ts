/**
 * The Rego syntax layer (OPA's `ast` parse half): source text → syntax tree. The compiler
 * (`./compile/`) and evaluator (`../topdown/`) consume the types exported here.
 */
export { parseModule, parseModuleSteps, parseQuery, parseTerm, isGround, termKindName, MAX_DEPTH } from './parser.js';
export { packagePath, ruleRef, ruleStaticPath } from './refs.js';
export { termToString, refToString, exprToString, bodyToString, pathElementToString } from './print.js';
export { INFIX_BUILTINS } from './nodes.js';
export type * from './nodes.js';
