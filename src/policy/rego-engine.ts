/**
 * The built-in Rego engine behind the PolicyEngine port: `.rego` files (tests excluded) compiled
 * once per load; each request evaluates the configured entrypoint.
 */
import { WardenError } from '../pipeline/errors.js';
import type { PolicyEngine } from '../pipeline/ports.js';
import type { PolicyInput } from '../pipeline/types.js';
import { loadPolicy, RegoError, type EvalOptions } from './rego/index.js';

export interface RegoPolicyEngineOptions {
  /** Files or directories of `.rego` (and `data.json`/`.yaml`) files. */
  paths: string[];
  /** `warden/decision` or `data.warden.decision`. */
  entrypoint: string;
  /** Per-evaluation budget (steps, deadline) — a runaway policy becomes `policy_error`, not a hang. */
  maxSteps?: number;
  deadlineMs?: number;
}

const ENTRYPOINT = /^(?:data\.)?[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*$/;

export async function createRegoPolicyEngine(opts: RegoPolicyEngineOptions): Promise<PolicyEngine> {
  if (!ENTRYPOINT.test(opts.entrypoint)) {
    throw new WardenError('policy_error', `invalid policy entrypoint "${opts.entrypoint}" (want warden/decision or data.warden.decision)`, {
      location: { path: 'policy.entrypoint' },
    });
  }
  let policy;
  try {
    policy = await loadPolicy(opts.paths, { excludeTests: true });
  } catch (err) {
    if (err instanceof RegoError) {
      const loc = err.location;
      throw new WardenError('policy_error', `${err.code}: ${err.message}`, {
        ...(loc ? { location: { file: loc.file, line: loc.row, column: loc.col } } : { location: { path: 'policy.paths' } }),
        details: { code: err.code },
      });
    }
    const code = (err as NodeJS.ErrnoException).code;
    throw new WardenError('policy_error', `cannot load policies from ${opts.paths.join(', ')}${code ? ` (${code})` : ''}`, {
      location: { path: 'policy.paths' },
    });
  }
  // One options object, reused: evaluation is synchronous and reads it only at its start, so
  // each call just sets its clock instead of spreading a fresh copy.
  // The policy input comes from buildPolicyInput: metadata only, bounded by the ingress limits
  // (variable count, header and body size) and by config, so the engine's size walk is skipped.
  const options: EvalOptions = { inputBounded: true };
  if (opts.maxSteps !== undefined) options.maxSteps = opts.maxSteps;
  if (opts.deadlineMs !== undefined) options.deadlineMs = opts.deadlineMs;
  const compiled = policy;
  const entrypoint = opts.entrypoint;
  return {
    kind: 'rego',
    revision: compiled.revision,
    evaluate(input: PolicyInput): unknown {
      // time.now_ns() inside the policy agrees with input.time.
      options.nowNs = BigInt(Math.trunc(input.time.now_ns / 1_000_000)) * 1_000_000n;
      return compiled.evaluate(entrypoint, input, options);
    },
  };
}
