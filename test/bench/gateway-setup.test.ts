/**
 * The gateway benchmark's Warden setup (bench/gateway.ts) loads with the current config and
 * template rules: `npm run bench` is not part of the test suite, and a rule that refuses its
 * setup (the fifteenth session's secrets.file_roots did) would otherwise be found only there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeWardenSetup } from '../../bench/gateway.js';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-setup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the gateway benchmark setup', () => {
  it('loads: its config, its template and the secret ref the template names', async () => {
    const file = writeWardenSetup(dir, 9);
    const config = loadConfig(file, {});
    const runtime = await createRuntime(config, { logger: createLogger({ level: 'error' }, { write: () => undefined }), watch: false, configDir: dirname(file) });
    try {
      const addresses = await runtime.start();
      const res = await fetch(`${addresses.admin}/readyz`);
      expect(res.status).toBe(200);
    } finally {
      await runtime.shutdown('test finished');
    }
  });
});
