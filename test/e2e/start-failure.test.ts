/**
 * A start that fails after the audit log was opened (here: a template that does not load) closes
 * what it opened: no audit file descriptor and no background check is left behind.
 */
import { readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { prepareWardenDir, type PreparedDir } from './helpers/warden.js';

let prepared: PreparedDir;

beforeAll(async () => {
  prepared = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
  writeFileSync(join(prepared.dir, 'templates', 'broken.yaml'), 'id: broken\nversion: [\n');
});

afterAll(() => {
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

/** Descriptors of this process open on `file` (Linux: /proc/self/fd). */
function openOn(file: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

describe('a start that fails', () => {
  it('closes the audit file it opened', async () => {
    const config = loadConfig(prepared.configFile, {});
    const logger = createLogger({ level: 'error' }, { write: () => undefined });
    for (let i = 0; i < 3; i++) {
      await expect(createRuntime(config, { logger, configDir: prepared.dir })).rejects.toMatchObject({ code: 'template_invalid' });
    }
    expect(openOn(prepared.auditFile)).toBe(0);
  });
});
