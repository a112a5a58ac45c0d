/**
 * `warden serve`: load the config, build the runtime, bind the listeners, and run until SIGTERM or
 * SIGINT (graceful drain, exit 0; 1 when audit records could not be written before the exit). SIGHUP reloads templates and policies and reopens audit files.
 * A second SIGTERM/SIGINT while the start is still under way gives up on it (exit 128 + signal).
 */
import { fstatSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../telemetry/logger.js';
import { createRuntime, type Runtime } from '../runtime/runtime.js';
import { parse, requireString } from './args.js';
import { SERVE_HELP } from './help.js';
import type { CliIO } from './io.js';

export const OPTIONS = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runServeCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parse(argv, OPTIONS);
  if (values.help) {
    io.out(SERVE_HELP);
    return 0;
  }
  const file = requireString(values, 'config');
  const warnings: string[] = [];
  const config = loadConfig(file, process.env, { onWarning: (w) => warnings.push(w) });
  const logger = createLogger({ level: config.log.level, format: config.log.format, base: { service: 'warden' } });
  // Installed before anything is loaded or bound: a signal during the start (a config sync's
  // SIGHUP, a rollout's SIGTERM) would otherwise take Node's default action and kill the process.
  const signals = handleSignals(logger);
  // Announced loudly: a dev identity or an exposed listener must never be a surprise.
  for (const w of warnings) logger.warn({ config: file }, w);
  if (config.audit.sinks.includes('stdout') && stdoutIsDevNull()) {
    // Said on stderr: the log lines go to stdout too, where nobody would read this one.
    const message = `audit.sinks: stdout is /dev/null: the audit records written there are discarded, and so are the logs; send stdout to a collector or add a file sink${config.audit.required ? ' (audit.required does not see this: a write to /dev/null succeeds)' : ''}`;
    logger.warn({ config: file }, message);
    io.err(`warden: warning: ${message}\n`);
  }

  let runtime: Runtime;
  try {
    const starting = (async () => {
      const r = await createRuntime(config, { logger, configDir: dirname(resolve(file)) });
      await r.start();
      return r;
    })();
    const outcome = await Promise.race([starting, signals.abandoned]);
    if (typeof outcome === 'number') {
      // The caller exits the process with this code; whatever the start still does ends with it.
      starting.catch(() => undefined);
      return outcome;
    }
    runtime = outcome;
  } catch (err) {
    signals.release();
    throw err;
  }
  return signals.serving(runtime);
}

type Logger = ReturnType<typeof createLogger>;

/**
 * Whether the process's stdout is /dev/null: `> /dev/null`, systemd's `StandardOutput=null`, a
 * supervisor's discarded output, or a closed stdout (Node opens /dev/null in its place at start).
 * An audit sink `stdout` then writes every record successfully into nothing.
 */
function stdoutIsDevNull(): boolean {
  try {
    const out = fstatSync(1);
    return out.isCharacterDevice() && out.rdev === statSync('/dev/null').rdev;
  } catch {
    return false;
  }
}

/** The exit status of a shutdown that could not write every audit record (README "Shutdown"). */
export const EXIT_AUDIT_RECORDS_LOST = 1;

/** The exit status of a process ended by `signal`, as a shell reports it (128 + its number). */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/**
 * The signal handling of `serve`, from before the start to the end of the drain. During the start
 * a SIGHUP is remembered and its reload done once started (the files may have changed after they
 * were read), and SIGTERM/SIGINT stop the server as soon as it has started (a start cannot be cut
 * halfway: its listeners and audit sinks would be left open), with the usual drain and exit 0. A
 * second SIGTERM/SIGINT before the start is done resolves `abandoned` with 128 + its number: the
 * operator does not want to wait for a start that may be stalled (a slow mount, a load up to its
 * deadline). The listeners are bound last, in the start's final moment, so there is nothing (or,
 * in that moment, next to nothing) in flight that a drain would have finished.
 */
function handleSignals(logger: Logger): { serving(runtime: Runtime): Promise<number>; release(): void; abandoned: Promise<number> } {
  let runtime: Runtime | undefined;
  let abandon: (code: number) => void = () => {};
  const abandoned = new Promise<number>((r) => (abandon = r));
  let stopping = false;
  let stopAfterStart: NodeJS.Signals | undefined;
  let reloadAfterStart = false;
  let exit: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => (exit = r));

  // The handlers stay installed through the drain: without them a second signal (an impatient
  // second Ctrl-C, a SIGHUP from a config sync) would take Node's default action and kill the
  // process mid-drain, cutting in-flight streams and their audit records. The shutdown
  // deadline (limits.shutdown_grace_ms) bounds the drain; SIGKILL remains for the impatient.
  const shutdown = (r: Runtime, signal: NodeJS.Signals) => {
    stopping = true;
    r.shutdown(signal).then(
      // Records lost at exit (logged with their count) are an exit the orchestrator should see.
      (result) => finish(result.lostRecords > 0 ? EXIT_AUDIT_RECORDS_LOST : 0),
      (err: unknown) => {
        logger.error({ error_type: err instanceof Error ? err.constructor.name : typeof err }, 'shutdown failed');
        finish(1);
      },
    );
  };
  const reload = (r: Runtime) => {
    void r.reload('SIGHUP');
    // After a rotation (logrotate renames the file, then sends SIGHUP) the next record goes to
    // a new file at the path, continuing the chain.
    void r.reopenAudit('SIGHUP');
  };
  const stop = (signal: NodeJS.Signals) => {
    if (stopAfterStart && !runtime) {
      logger.warn({ signal, first_signal: stopAfterStart }, 'second signal during the start: exiting now without waiting for it');
      abandon(signalExitCode(signal));
      return;
    }
    if (stopping || stopAfterStart) {
      logger.warn({ signal }, 'already shutting down; the drain continues');
      return;
    }
    if (!runtime) {
      stopAfterStart = signal;
      logger.info({ signal }, 'shutdown requested during the start; stopping once started');
      return;
    }
    shutdown(runtime, signal);
  };
  const hup = () => {
    if (stopping || stopAfterStart) {
      logger.warn({ signal: 'SIGHUP' }, 'reload skipped: shutting down');
      return;
    }
    if (!runtime) {
      reloadAfterStart = true;
      logger.info({ signal: 'SIGHUP' }, 'reload requested during the start; done once started');
      return;
    }
    reload(runtime);
  };
  const release = () => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    process.off('SIGHUP', hup);
  };
  const finish = (code: number) => {
    release();
    exit(code);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', hup);

  return {
    release,
    abandoned,
    serving(started: Runtime): Promise<number> {
      runtime = started;
      if (stopAfterStart) shutdown(started, stopAfterStart);
      else if (reloadAfterStart) reload(started);
      return exited;
    },
  };
}
