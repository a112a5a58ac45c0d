/**
 * `warden serve`: load the config, build the runtime, bind the listeners, and run until SIGTERM or
 * SIGINT (graceful drain, exit 0). SIGHUP reloads templates and policies.
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
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.off('SIGHUP', hup);
      runtime.shutdown(signal).then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ error_type: err instanceof Error ? err.constructor.name : typeof err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    const hup = () => void runtime.reload('SIGHUP');
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', hup);
  });
}
