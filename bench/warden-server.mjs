/**
 * The gateway benchmark's Warden process, run from the compiled JavaScript (what `npm start`
 * and the container run), not through tsx: tsx's transform wraps every function expression in
 * a naming helper, which makes closure-heavy code measurably slower than the build.
 *   node bench/warden-server.mjs <build dir> <config file>
 * Prints one JSON line `{"port": N}` when listening, answers `cpu` IPC messages with
 * process.cpuUsage() (`mem` with process.memoryUsage()), and exits when stdin closes (same protocol as gateway-server.ts).
 */
/* global process, URL */
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [build, file] = process.argv.slice(2);
// `mem` (streaming bench): a full GC when run with --expose-gc, then process.memoryUsage().
process.on('message', (m) => {
  if (m !== 'mem') return process.send?.(process.cpuUsage());
  globalThis.gc?.();
  process.send?.(process.memoryUsage());
});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

const load = (rel) => import(pathToFileURL(join(build, rel)).href);
const { loadConfig } = await load('src/config/load.js');
const { createRuntime } = await load('src/runtime/runtime.js');
const { createLogger } = await load('src/telemetry/logger.js');
const config = loadConfig(file, {});
const runtime = await createRuntime(config, { logger: createLogger({ level: 'error' }), watch: false, configDir: dirname(file) });
const addresses = await runtime.start();
process.stdout.write(`${JSON.stringify({ port: Number(new URL(addresses.http).port) })}\n`);
