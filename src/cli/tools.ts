/**
 * Subcommands owned by other modules, loaded only when used so `warden serve` does not pay for
 * them: `policy` (policy/cli.ts), `redact` (redact/cli.ts), `audit` (audit/cli.ts),
 * `templates` (templates/cli.ts).
 */
import type { CliIO } from './io.js';
import { emptyValue, repeatedOption, UsageError, usageText } from './args.js';
import { processStdin } from './stdin.js';

/**
 * The process's streams when the CLI runs for real (their back-pressure reaches the tool), else a
 * writable-stream face over CliIO (a test's capture, which is never full).
 */
function streams(io: CliIO): { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } {
  if (io.streams) return io.streams;
  const wrap = (write: (t: string) => void) =>
    ({
      write: (chunk: string | Uint8Array, ...rest: unknown[]) => {
        write(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
        const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  return { stdout: wrap(io.out), stderr: wrap(io.err) };
}

export async function runPolicyCommand(argv: string[], io: CliIO): Promise<number> {
  const { runPolicyCli } = await import('../policy/cli.js');
  return runPolicyCli(argv, { ...streams(io), stdin: io.stdin ?? processStdin });
}

/**
 * Takes `--config FILE` (`-c FILE`, `--config=FILE`) out of `argv`, anywhere in it, for a tool
 * whose own parser does not know the option. Undefined when absent; a usage error when given
 * twice or without a FILE.
 */
function takeConfigOption(argv: string[]): string | undefined {
  const isConfig = (a: string) => a === '--config' || a === '-c' || a.startsWith('--config=');
  const at = argv.findIndex(isConfig);
  if (at === -1) return undefined;
  const arg = argv[at] as string;
  let configFile: string | undefined;
  if (arg.startsWith('--config=')) {
    configFile = arg.slice('--config='.length);
    argv.splice(at, 1);
  } else {
    configFile = argv[at + 1];
    if (configFile === undefined) throw new UsageError('--config needs a value');
    // `--config --help`: the next argument is a flag, not the FILE (as the shared parser says).
    if (configFile.startsWith('-')) throw new UsageError('--config needs a value (one that starts with a dash is written --config=-VALUE)');
    argv.splice(at, 2);
  }
  if (argv.some(isConfig)) throw new UsageError(repeatedOption('--config'));
  // An empty FILE (`--config=`, `--config ""`) is a mistake, not "no config": the tool would
  // silently check against the built-in defaults instead of the sidecar's settings.
  if (configFile === '') throw new UsageError(emptyValue('--config'));
  return configFile;
}

/**
 * `warden redact [--config FILE] ...`: with a config, its `redaction` section (profiles, custom
 * entities, allow-lists) is used, so the CLI redacts exactly as the sidecar does.
 */
export async function runRedactCommand(argv: string[], io: CliIO): Promise<number> {
  const { runRedactCli } = await import('../redact/cli.js');
  const rest = argv.slice();
  const configFile = takeConfigOption(rest);
  let redaction = {};
  if (configFile !== undefined) {
    const { loadConfig } = await import('../config/load.js');
    const { redactionConfigFrom, secretResolverFor } = await import('../runtime/components.js');
    const { dirname, resolve } = await import('node:path');
    const { secretRefScheme } = await import('../pipeline/secret-ref.js');
    const config = loadConfig(configFile, process.env);
    // Only the stores redaction.hmac_key needs: a config for a pod (secrets.kubernetes in-cluster,
    // a Vault CA only the pod mounts) still serves the CLI on a laptop when its key is a file.
    const hmacKey = config.redaction.hmac_key;
    const schemes = new Set(hmacKey === undefined ? [] : [secretRefScheme(hmacKey) ?? '']);
    const resolver = secretResolverFor(config, dirname(resolve(configFile)), schemes);
    try {
      redaction = await redactionConfigFrom(config.redaction, async (ref) => (await resolver.resolve([ref])).get(ref) ?? '');
    } finally {
      // The values leave memory, and a secret store's connections (Vault) close.
      resolver.clear();
    }
  }
  const s = streams(io);
  // A directory on stdin fails when read (after the flags are checked), as `cat < dir` does.
  return runRedactCli(rest, { stdin: (io.stdin ?? processStdin)(), stdout: s.stdout, stderr: s.stderr }, redaction);
}

export async function runAuditCommand(argv: string[], io: CliIO): Promise<number> {
  const { runAuditCli } = await import('../audit/cli.js');
  return runAuditCli(argv, { stdout: { write: io.out }, stderr: { write: io.err } });
}

/**
 * `warden templates lint [--config FILE] PATH...`: the template linter, no server needed. With a
 * config, the limits `serve` holds templates to at load (limits.max_variables) apply too, so the
 * lint refuses what a start or reload with that config would.
 */
export async function runTemplatesCommand(argv: string[], io: CliIO): Promise<number> {
  const { runTemplatesCli } = await import('../templates/cli.js');
  const rest = argv.slice();
  let configFile: string | undefined;
  try {
    configFile = takeConfigOption(rest);
  } catch (err) {
    // `--config` is an option of `templates lint`: its mistakes point at that help.
    if (!(err instanceof UsageError) || rest[0] !== 'lint') throw err;
    io.err(usageText(err.message, 'templates lint'));
    return 2;
  }
  let limits = {};
  // Help and usage errors need no config: one that does not load must not hide them.
  const linting = rest[0] === 'lint' && !rest.includes('--help') && !rest.includes('-h');
  if (configFile !== undefined && linting) {
    const { loadConfig } = await import('../config/load.js');
    const { templateLimits } = await import('../runtime/components.js');
    const { dirname, resolve } = await import('node:path');
    limits = templateLimits(loadConfig(configFile, process.env), dirname(resolve(configFile)));
  }
  return runTemplatesCli(rest, { stdout: { write: io.out }, stderr: { write: io.err } }, limits);
}
