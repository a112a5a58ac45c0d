#!/usr/bin/env node
/**
 * The `warden` command line: `serve`, `render`, and the tools other modules provide (`policy`,
 * `redact`, `audit`, `templates`). Parsing is node:util parseArgs; an unknown flag is a usage error (exit 2).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isConfigError } from './config/errors.js';
import { formatLocation, isWardenError } from './pipeline/errors.js';
import { refuseAfter, UsageError, usageText } from './cli/args.js';
import { MAIN_HELP } from './cli/help.js';
import type { CliIO } from './cli/io.js';
import { runRenderCommand } from './cli/render.js';
import { runServeCommand } from './cli/serve.js';
import { runAuditCommand, runPolicyCommand, runRedactCommand, runTemplatesCommand } from './cli/tools.js';

function version(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'warden' && pkg.version) return pkg.version;
    } catch {
      // try the next location (src/ under tsx, dist/src/ when built)
    }
  }
  return 'unknown';
}

const processIO: CliIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  streams: { stdout: process.stdout, stderr: process.stderr },
};

const COMMANDS = new Set(['serve', 'render', 'policy', 'redact', 'audit', 'templates']);
/** The commands whose first word is a subcommand (`policy eval`, `audit verify`, `templates lint`). */
const WITH_SUBCOMMANDS = new Set(['policy', 'audit', 'templates']);

/** Runs one command line; returns the exit code. `io` is where output goes (tests capture it). */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        // `warden help serve` is `warden serve --help`, as git and npm take it.
        if (command === 'help' && rest.length === 1 && COMMANDS.has(rest[0]!)) return await main([rest[0]!, '--help'], io);
        // `warden help help` is help's own help: the overall one (`help` is not in COMMANDS).
        if (command === 'help' && rest.length === 1 && rest[0] === 'help') return await main(['--help'], io);
        // ... and `warden help policy eval` is `warden policy eval --help` (an unknown subcommand
        // is that command's usage error).
        if (command === 'help' && rest.length === 2 && WITH_SUBCOMMANDS.has(rest[0]!) && !rest[1]!.startsWith('-')) return await main([...rest, '--help'], io);
        if (command === 'help' && rest[0] !== undefined && !rest[0].startsWith('-')) {
          // `warden help nope` says what `warden nope` says.
          if (!COMMANDS.has(rest[0])) throw new UsageError(`unknown command '${rest[0]}'`);
          refuseAfter(`help ${rest[0]}`, rest.slice(1));
        }
        if (command !== undefined) refuseAfter(command, rest);
        // No command is a usage error: its help goes to stderr, as every subcommand's does.
        (command === undefined ? io.err : io.out)(MAIN_HELP);
        return command === undefined ? 2 : 0;
      case '-v':
      case '--version':
        refuseAfter(command, rest);
        io.out(`warden ${version()}\n`);
        return 0;
      case 'serve':
        return await runServeCommand(rest, io);
      case 'render':
        return await runRenderCommand(rest, io);
      case 'policy':
        return await runPolicyCommand(rest, io);
      case 'redact':
        return await runRedactCommand(rest, io);
      case 'audit':
        return await runAuditCommand(rest, io);
      case 'templates':
        return await runTemplatesCommand(rest, io);
      default:
        throw new UsageError(command.startsWith('-') ? `unknown option ${command}` : `unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      // Help for the command when there is one; an unknown command gets the overall help.
      io.err(usageText(err.message, command !== undefined && COMMANDS.has(command) ? command : undefined));
      return 2;
    }
    if (isConfigError(err)) {
      io.err(`warden: ${err.message}\n`);
      return 1;
    }
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    // Where it is (a policy file's line and column, a config key), as `warden policy check` says it.
    const where = isWardenError(err) ? formatLocation(err.location) : '';
    io.err(`warden: ${where ? `${where}: ` : ''}${typeof code === 'string' ? `${code}: ` : ''}${message}\n`);
    return 1;
  }
}

// Run only when executed (directly, through the npm bin symlink, or under tsx), not when imported.
function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  // For the tools, a reader that went away (`warden redact ... | head`) is the end of the output,
  // not a crash with a stack trace. (`serve` handles its own: stdout may be its audit sink, whose
  // failure is audit_unavailable, not an exit.)
  if (process.argv[2] !== 'serve') {
    for (const stream of [process.stdout, process.stderr]) {
      stream.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
        throw err;
      });
    }
  }
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // After `serve` has drained and flushed, nothing we own is left to wait for; an idle pooled
      // socket or a timer from a library must not keep the process up after SIGTERM.
      if (process.argv[2] === 'serve') process.exit(code);
    },
    () => {
      process.exit(1);
    },
  );
}
