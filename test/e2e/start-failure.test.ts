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

describe('a provider key that cannot be read', () => {
  // The probe's case: a Kubernetes Secret mounted without read access for Warden's user. Every
  // call would be 503 secret_unavailable while /readyz said 200; `start` refuses instead.
  for (const [what, ref] of [
    ['a file that is not there', 'file:secrets/no-such-key'],
    ['an unset environment variable', 'env://WARDEN_TEST_UNSET_PROVIDER_KEY'],
  ] as const) {
    it(`stops the start: ${what}`, async () => {
      const dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
      try {
        const config = loadConfig(dir.configFile, {});
        const upstream = config.providers.upstream;
        if (upstream?.kind !== 'openai') throw new Error('fixture: upstream is an openai provider');
        upstream.api_key = ref;
        const logger = createLogger({ level: 'error' }, { write: () => undefined });
        const runtime = await createRuntime(config, { logger, configDir: dir.dir });
        const failure = await runtime.start().then(
          () => undefined,
          (err: unknown) => err,
        );
        await runtime.shutdown('test');
        expect(failure).toMatchObject({ code: 'secret_unavailable' });
        expect((failure as Error).message).toContain('providers.upstream.api_key');
        expect(openOn(dir.auditFile)).toBe(0);
      } finally {
        rmSync(dir.dir, { recursive: true, force: true });
      }
    });
  }

  it('a readable key starts as before', async () => {
    const dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
    try {
      const logger = createLogger({ level: 'error' }, { write: () => undefined });
      const runtime = await createRuntime(loadConfig(dir.configFile, {}), { logger, configDir: dir.dir });
      const addresses = await runtime.start();
      await runtime.shutdown('test');
      expect(addresses.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      rmSync(dir.dir, { recursive: true, force: true });
    }
  });
});
