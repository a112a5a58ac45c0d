/**
 * Secret refs in the config use the secrets module's grammar: `file:relative/path` is accepted and
 * means "next to the config file" (not the process's working directory), for provider API keys and
 * the audit HMAC key alike. Bad refs are reported with their key path and never repeat the value.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { isConfigError } from '../../src/config/errors.js';
import { createRuntime, type BoundAddresses, type Runtime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { postChat } from './helpers/http.js';
import { startUpstream, type FakeUpstream } from './helpers/upstream.js';
import { CANARY_API_KEY, prepareWardenDir, type PreparedDir } from './helpers/warden.js';

let upstream: FakeUpstream;
let prepared: PreparedDir;
let runtime: Runtime;
let addresses: BoundAddresses;

function rewriteConfig(file: string, edit: (text: string) => string): void {
  const text = readFileSync(file, 'utf8');
  const next = edit(text);
  expect(next).not.toBe(text);
  writeFileSync(file, next);
}

beforeAll(async () => {
  upstream = await startUpstream();
  prepared = await prepareWardenDir({ upstreamUrl: upstream.url, audit: 'audit: { sinks: [{ file: audit.log }], required: true, hmac_key: "file:secrets/audit-key" }' });
  writeFileSync(join(prepared.dir, 'secrets', 'audit-key'), 'audit-hmac-key-for-tests\n');
  rewriteConfig(prepared.configFile, (t) => t.replace(/api_key: "file:\/\/[^"]+"/, 'api_key: "file:secrets/upstream-key"'));
  // The fixture's templates include one with a relative ref (file:secrets/escalation-code): with no
  // configDir given, it resolves next to the config file, as secrets.file_roots does, and loads.
  const config = loadConfig(prepared.configFile, {});
  // No configDir: the relative refs must already be anchored by the config loader.
  runtime = await createRuntime(config, { logger: createLogger({ level: 'silent' }, { write: () => {} }) });
  addresses = await runtime.start();
});

afterAll(async () => {
  await runtime?.shutdown('test finished');
  await upstream?.close();
  if (prepared) rmSync(prepared.dir, { recursive: true, force: true });
});

describe('relative file: secret refs in the config', () => {
  it('are anchored to the config file directory at load', () => {
    const config = loadConfig(prepared.configFile, {});
    const p = config.providers.upstream;
    expect(p?.kind).toBe('openai');
    expect(p?.kind === 'openai' ? p.api_key : undefined).toBe(pathToFileURL(join(prepared.dir, 'secrets', 'upstream-key')).href);
    expect(config.audit.hmac_key).toBe(pathToFileURL(join(prepared.dir, 'secrets', 'audit-key')).href);
    // Non-file refs are left as written.
    writeFileSync(join(prepared.dir, 'env.yaml'), 'providers:\n  up: { kind: openai, base_url: "https://x/v1", api_key: "env://OPENAI_API_KEY" }\nmodels: { m: up }\n');
    const envConfig = loadConfig(join(prepared.dir, 'env.yaml'), {});
    expect(envConfig.providers.up?.kind === 'openai' ? envConfig.providers.up.api_key : undefined).toBe('env://OPENAI_API_KEY');
  });

  it('the relative API key ref is resolved and injected upstream (the process cwd is elsewhere)', async () => {
    expect(process.cwd()).not.toBe(prepared.dir);
    const token = await prepared.signer.token('support', 'ticket-bot');
    const res = await postChat(addresses.http, token, {
      model: 'gpt-4o-mini',
      warden: { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-9', customer_message: 'hi' } },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(upstream.calls.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY_API_KEY}`);
  });

  it('bad refs are reported with file:line:col and key path, without repeating the value', () => {
    const canary = 'CANARY-SECRET-9f8e7d';
    const cases: Array<[string, RegExp]> = [
      [`"${canary}"`, /must be a secret ref such as env:\/\/NAME, file:relative\/path or file:\/\/\/abs\/path, not a literal value/],
      [`"sk-live:${canary}"`, /must use a secret ref scheme: file, env, vault, k8s/],
      [`"file:///etc/x?${canary}"`, /is not a valid secret ref: file ref may not carry a query or fragment/],
      [`"env://${canary}-x"`, /is not a valid secret ref: env ref must be env:\/\/NAME/],
      ['"file:"', /is not a valid secret ref: file ref must be/],
    ];
    for (const [value, message] of cases) {
      const file = join(prepared.dir, 'bad.yaml');
      writeFileSync(file, `providers:\n  up: { kind: openai, base_url: "https://x/v1", api_key: ${value} }\nmodels: { m: up }\n`);
      let text = '';
      try {
        loadConfig(file, {});
      } catch (err) {
        expect(isConfigError(err)).toBe(true);
        text = (err as Error).message;
      }
      expect(text, value).toMatch(new RegExp(`bad\\.yaml:2:\\d+: providers\\.up\\.api_key: ${message.source}`));
      expect(text, value).not.toContain(canary);
    }
  });
});
