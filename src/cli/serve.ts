/**
 * `warden serve`: load the config, build the runtime, bind the listeners, and run until SIGTERM or
 * SIGINT (graceful drain, exit 0). SIGHUP reloads templates and policies and reopens audit files.
 */
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../telemetry/logger.js';
import { createRuntime } from '../runtime/runtime.js';
import { parse, requireString } from './args.js';
import { SERVE_HELP } from './help.js';
import type { CliIO } from './io.js';

const OPTIONS = {
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
  // Announced loudly: a dev identity or an exposed listener must never be a surprise.
  for (const w of warnings) logger.warn({ config: file }, w);

  const runtime = await createRuntime(config, { logger, configDir: dirname(resolve(file)) });
  await runtime.start();

  return await new Promise<number>((resolve) => {
    let stopping = false;
    // The handlers stay installed through the drain: without them a second signal (an impatient
    // second Ctrl-C, a SIGHUP from a config sync) would take Node's default action and kill the
    // process mid-drain, cutting in-flight streams and their audit records. The shutdown
    // deadline (limits.shutdown_grace_ms) bounds the drain; SIGKILL remains for the impatient.
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'already shutting down; the drain continues');
        return;
      }
      stopping = true;
      runtime.shutdown(signal).then(
        () => finish(0),
        (err: unknown) => {
          logger.error({ error_type: err instanceof Error ? err.constructor.name : typeof err }, 'shutdown failed');
          finish(1);
        },
      );
    };
    const hup = () => {
      if (stopping) {
        logger.warn({ signal: 'SIGHUP' }, 'reload skipped: shutting down');
        return;
      }
      void runtime.reload('SIGHUP');
      // After a rotation (logrotate renames the file, then sends SIGHUP) the next record goes to
      // a new file at the path, continuing the chain.
      void runtime.reopenAudit('SIGHUP');
    };
    const finish = (code: number) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.off('SIGHUP', hup);
      resolve(code);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', hup);
  });
}
