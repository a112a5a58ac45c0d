/**
 * A child process that starts a real Warden runtime each time its parent says `start`, so that two
 * of them can race on one Unix socket path (sockets-race.test.ts). Run as
 * `node --import tsx socket-racer.ts`; it answers each message over the IPC channel:
 * `{ start: CONFIG_FILE }` → `{ started: true }` or `{ started: false, error }` (the start-up
 * error's message); `stop` → `{ stopped: true }` once a started runtime has shut down. Nothing is
 * logged.
 */
import { dirname } from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import { createRuntime, type Runtime } from '../../../src/runtime/runtime.js';
import { createLogger } from '../../../src/telemetry/logger.js';

const logger = createLogger({ level: 'silent' }, { write: () => undefined });
let runtime: Runtime | undefined;

process.on('message', (msg: 'stop' | { start: string }) => {
  void (async () => {
    if (msg !== 'stop') {
      try {
        // Inside the try: a config the runtime refuses is an answer too, not a test left waiting.
        const r = await createRuntime(loadConfig(msg.start, {}), { logger, configDir: dirname(msg.start) });
        await r.start();
        runtime = r;
        process.send!({ started: true });
      } catch (err) {
        process.send!({ started: false, error: (err as Error).message });
      }
    } else if (msg === 'stop') {
      await runtime?.shutdown('round over');
      runtime = undefined;
      process.send!({ stopped: true });
    }
  })();
});
// The test's worker went away (killed, crashed): a started runtime must not outlive it.
process.on('disconnect', () => process.exit(1));
process.send!({ ready: true });
