/** The PolicyEngine port (pipeline/ports.ts), re-exported where policy code looks for it. */
export type { PolicyEngine } from '../pipeline/ports.js';
