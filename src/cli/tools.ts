/**
 * Subcommands owned by other modules, loaded only when used so `warden serve` does not pay for
 * them: `policy` (policy/cli.ts), `redact` (redact/cli.ts), `audit` (audit/cli.ts).
 */
import type { CliIO } from './render.js';
import { UsageError } from './args.js';

type ToolCli = (argv: string[], io: CliIO) => Promise<number> | number;

/** Loads a tool module; a build without it says so instead of crashing. */
async function loadTool(specifier: string, exportName: string): Promise<ToolCli> {
  const mod = (await import(specifier)) as Record<string, unknown>;
  const fn = mod[exportName];
  if (typeof fn !== 'function') throw new UsageError(`this build has no ${exportName}`);
  return fn as ToolCli;
}

export async function runPolicyCommand(argv: string[], io: CliIO): Promise<number> {
  return (await loadTool('../policy/cli.js', 'runPolicyCli'))(argv, io);
}

export async function runRedactCommand(argv: string[], io: CliIO): Promise<number> {
  return (await loadTool('../redact/cli.js', 'runRedactCli'))(argv, io);
}

export async function runAuditCommand(argv: string[], io: CliIO): Promise<number> {
  const { runAuditCli } = await import('../audit/cli.js');
  return runAuditCli(argv, { stdout: { write: io.out }, stderr: { write: io.err } });
}
