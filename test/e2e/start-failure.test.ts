/**
 * A start that fails after the audit log was opened (here: a template that does not load) closes
 * what it opened: no audit file descriptor and no background check is left behind.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { main } from '../../src/main.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { runServe, type ServeOutcome } from './helpers/cli.js';
import { CANARY_API_KEY, prepareWardenDir, templateNeedingVariables, type PreparedDir } from './helpers/warden.js';

let prepared: PreparedDir;

/** Starts a runtime on `dir`'s config with the provider's api_key set to `ref`: why the start failed (undefined: it did not). */
async function startWithApiKey(dir: PreparedDir, ref: string): Promise<unknown> {
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
  return failure;
}

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
        const failure = await startWithApiKey(dir, ref);
        expect(failure).toMatchObject({ code: 'secret_unavailable' });
        expect(failure).toMatchObject({ location: { path: 'providers.upstream.api_key' } });
        expect(openOn(dir.auditFile)).toBe(0);
      } finally {
        rmSync(dir.dir, { recursive: true, force: true });
      }
    });
  }

  it('the CLI names the key once, where the error says where', { timeout: 30_000 }, async () => {
    const dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
    try {
      writeFileSync(dir.configFile, readFileSync(dir.configFile, 'utf8').replace(/api_key: "[^"]*"/, 'api_key: "file:secrets/no-such-key"'));
      const r = await runServe(['serve', '--config', dir.configFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^warden: providers\.upstream\.api_key: secret_unavailable: secret file:\/\/\S+\/secrets\/no-such-key is unavailable: cannot read secret file \(ENOENT\)\n$/);
      expect(r.stderr.split('providers.upstream.api_key')).toHaveLength(2);
    } finally {
      rmSync(dir.dir, { recursive: true, force: true });
    }
  });

  it('an unreadable redaction.hmac_key stops the start naming its key', { timeout: 30_000 }, async () => {
    const dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1', extraConfig: 'redaction: { hmac_key: "file:secrets/no-such-hmac-key" }' });
    try {
      const r = await runServe(['serve', '--config', dir.configFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^warden: redaction\.hmac_key: secret_unavailable: secret file:\/\/\S+\/secrets\/no-such-hmac-key is unavailable: cannot read secret file \(ENOENT\)\n$/);
    } finally {
      rmSync(dir.dir, { recursive: true, force: true });
    }
  });

  // Read fine, but no call could carry it: undici refuses the header, and every call failed as a
  // bare upstream_error with nothing logged. Refused at start, naming the key path, never the key.
  for (const [what, ref, value] of [
    ['an env value with a trailing newline', 'env://WARDEN_TEST_NL_PROVIDER_KEY', `${CANARY_API_KEY}\n`],
    ['a file with two trailing newlines', 'file:secrets/two-newlines', `${CANARY_API_KEY}\n\n`],
    ['a file with a CR inside', 'file:secrets/cr-inside', `${CANARY_API_KEY}\rX-Evil: 1\n`],
    ['a file with a character beyond Latin-1', 'file:secrets/wide', `${CANARY_API_KEY}€\n`],
  ] as const) {
    it(`stops the start: ${what}`, async () => {
      const dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1', files: { [ref.slice(5)]: value } });
      process.env.WARDEN_TEST_NL_PROVIDER_KEY = value;
      try {
        const failure = await startWithApiKey(dir, ref);
        expect(failure).toMatchObject({ code: 'secret_unavailable', location: { path: 'providers.upstream.api_key' } });
        expect((failure as Error).message).toMatch(/^the API key cannot be sent in an HTTP header/);
        expect((failure as Error).message).not.toContain(CANARY_API_KEY);
      } finally {
        delete process.env.WARDEN_TEST_NL_PROVIDER_KEY;
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

/**
 * `audit.hmac_key` names a secret; its value must be at least 16 bytes of UTF-8. Too short is a
 * start-up error naming the key and the code, never the value; counted in bytes, so 8 two-byte
 * characters are enough.
 */
describe('an audit hmac_key that is too short', () => {
  let dir: PreparedDir;
  beforeAll(async () => {
    dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
    writeFileSync(dir.configFile, readFileSync(dir.configFile, 'utf8').replace('sinks: [{ file: audit.log }]', 'sinks: [{ file: audit.log }], hmac_key: "env://WARDEN_TEST_AUDIT_KEY"'));
  });
  afterAll(() => {
    if (dir) rmSync(dir.dir, { recursive: true, force: true });
  });

  it('stops the start with the key path and the code, without the value', { timeout: 30_000 }, async () => {
    const r = await runServe(['serve', '--config', dir.configFile], { WARDEN_TEST_AUDIT_KEY: 'CANARY-short' });
    expect(r.started).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('warden: audit.hmac_key: secret_unavailable: the secret env://WARDEN_TEST_AUDIT_KEY is shorter than 16 bytes (UTF-8), too short for an HMAC key\n');
  });

  it('counts bytes, not characters: 8 two-byte characters are a 16-byte key', { timeout: 30_000 }, async () => {
    const r = await runServe(['serve', '--config', dir.configFile], { WARDEN_TEST_AUDIT_KEY: 'é'.repeat(8) });
    expect(r.stderr).not.toContain('hmac');
    expect(r.started).toBe(true);
  });
});

/**
 * `redaction.hmac_key` keys the `hash` mode's HMAC, whose outputs go upstream: a short key could be
 * found from one known value and its hash, and then every hashed value of a small space (a phone
 * number) read back. Held to the audit key's minimum, at `serve` and at `warden redact --config`.
 */
describe('a redaction hmac_key that is too short', () => {
  let dir: PreparedDir;
  const expected = 'redaction.hmac_key: secret_unavailable: the secret env://WARDEN_TEST_REDACTION_KEY is shorter than 16 bytes (UTF-8), too short for an HMAC key';
  beforeAll(async () => {
    dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1', extraConfig: 'redaction: { hmac_key: "env://WARDEN_TEST_REDACTION_KEY" }' });
  });
  afterAll(() => {
    if (dir) rmSync(dir.dir, { recursive: true, force: true });
  });

  it('stops the start with the key path and the code, without the value', { timeout: 30_000 }, async () => {
    const r = await runServe(['serve', '--config', dir.configFile], { WARDEN_TEST_REDACTION_KEY: 'CANARY-short' });
    expect(r.started).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`warden: ${expected}\n`);
  });

  it('stops `warden redact --config` the same way; 16 bytes are enough', { timeout: 30_000 }, async () => {
    const run = async (value: string) => {
      process.env.WARDEN_TEST_REDACTION_KEY = value;
      let err = '';
      try {
        const code = await main(['redact', '--config', dir.configFile, '--help'], { out: () => undefined, err: (t) => void (err += t), streams: { stdout: process.stdout, stderr: process.stderr } });
        return { code, err };
      } finally {
        delete process.env.WARDEN_TEST_REDACTION_KEY;
      }
    };
    const short = await run('CANARY-short');
    expect(short).toEqual({ code: 1, err: `warden: ${expected}\n` });
    expect((await run('CANARY-sixteen-b')).err).not.toContain('hmac');
  });
});

/**
 * A file named in the config that is a FIFO (or a device) must be refused, never waited on: a
 * blocking read or open at start would stall the event loop before `serve`'s signal handlers could
 * ever run, so even SIGTERM would be ignored. Spawned as the real CLI: a hang in this process would
 * hang the test run itself.
 */
describe('a start-up file that is a FIFO', () => {
  let dir: PreparedDir;
  let fifo: string;

  beforeAll(async () => {
    dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
    fifo = join(dir.dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
  });

  afterAll(() => {
    if (dir) rmSync(dir.dir, { recursive: true, force: true });
  });

  /** Runs `warden serve` on the config with `edit` applied (runServe). */
  function serveWith(edit: (config: string) => string): Promise<ServeOutcome> {
    const config = join(dir.dir, `fifo-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(config, edit(readFileSync(dir.configFile, 'utf8')));
    return runServe(['serve', '--config', config]);
  }

  const jwksUrl = 'jwks_url: "https://127.0.0.1:9/openid/v1/jwks"';
  for (const [key, edit] of [
    ['jwks_file', (c: string) => c.replace('jwks_file: jwks.json', 'jwks_file: pipe')],
    ['jwks_ca_file', (c: string) => c.replace('jwks_file: jwks.json', `${jwksUrl}, jwks_ca_file: pipe`)],
    ['jwks_bearer_token_file', (c: string) => c.replace('jwks_file: jwks.json', `${jwksUrl}, jwks_bearer_token_file: pipe`)],
  ] as const) {
    it(`${key}: the start stops at once, naming the key`, { timeout: 30_000 }, async () => {
      const { code, signal, stderr, started } = await serveWith(edit);
      expect(started).toBe(false);
      expect(signal).toBeNull(); // it ended by itself
      expect(code).not.toBe(0);
      expect(stderr).toContain(`cannot read ${key} ${fifo} (not a regular file: a FIFO)`);
    });
  }

  it('an audit file sink: the start stops at once with audit_unavailable, naming the sink', { timeout: 30_000 }, async () => {
    const { code, signal, stderr, started } = await serveWith((c) => c.replace('sinks: [{ file: audit.log }]', 'sinks: [{ file: pipe }]'));
    expect(started).toBe(false);
    expect(signal).toBeNull();
    expect(code).not.toBe(0);
    expect(stderr).toContain('audit.sinks[0].file');
    expect(stderr).toContain('audit_unavailable');
    expect(stderr).toContain(`cannot open the audit file ${fifo} for appending: not a regular file: a FIFO`);
  });
});

describe('a config file that is not plain UTF-8 YAML', () => {
  // The fuzz probe's cases: each one used to start (the value changed silently) or to print a
  // process warning quoting the file.
  const cases: Array<[string, Buffer, string]> = [
    ['a byte that is not UTF-8', Buffer.concat([Buffer.from('log: { level: info }\nenvironment: { name: "t'), Buffer.from([0xff, 0xfe]), Buffer.from('" }\n')]), ':2:24: (root): not valid UTF-8'],
    ['a NUL', Buffer.from('environment: { name: t, cluster: "c\u0000x" }\n'), ':1:36: (root): control character U+0000 is not allowed'],
    ['a key that is a list', Buffer.from('? [CANARY-7f3a]\n: x\n'), ':1:3: (root): a key must be a plain value'],
  ];
  for (const [what, bytes, error] of cases) {
    it(`stops serve with file:line:col: ${what}`, { timeout: 30_000 }, async () => {
      const config = join(prepared.dir, 'odd.yaml');
      writeFileSync(config, bytes);
      const { code, signal, stderr, started } = await runServe(['serve', '--config', config]);
      expect(started).toBe(false);
      expect(signal).toBeNull();
      expect(code).not.toBe(0);
      expect(stderr).toContain(`${config}${error}`);
      expect(stderr).not.toContain('Warning');
      expect(stderr).not.toContain('CANARY');
    });
  }
});

describe('a template that needs more variables than limits.max_variables', () => {
  // Sending all nine would be "too many template variables", sending eight variable_missing: a
  // template no request could call is refused at load, with its position, not served silently.
  it('stops the start with file:line:col (the fixture config allows 8 variables)', async () => {
    const template = templateNeedingVariables(9);
    const wide = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1', files: { 'templates/wide.yaml': template } });
    try {
      const config = loadConfig(wide.configFile, {});
      const logger = createLogger({ level: 'error' }, { write: () => undefined });
      const err = await createRuntime(config, { logger, configDir: wide.dir }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'template_invalid' });
      expect((err as Error).message).toContain(
        `${join(wide.dir, 'templates', 'wide.yaml')}:7:3: variables: 9 required request variables, more than one request may send (limits.max_variables: 8): no request could call this template`,
      );
      // Eight required ones fit.
      writeFileSync(join(wide.dir, 'templates', 'wide.yaml'), template.replace('  v8: { type: string }', '  v8: { type: string, required: false }'));
      const runtime = await createRuntime(config, { logger, configDir: wide.dir });
      try {
        // ... and a reload back to nine required is rejected (the last good set keeps serving).
        writeFileSync(join(wide.dir, 'templates', 'wide.yaml'), template);
        expect(await runtime.reload('test')).toBe(false);
      } finally {
        await runtime.shutdown('test');
      }
    } finally {
      rmSync(wide.dir, { recursive: true, force: true });
    }
  });
});

describe('a policy entrypoint that names no rule', () => {
  // Used to start and deny every call as "entrypoint undefined", with a warning at the first
  // request only: `warden serve` stops instead, naming the key, the data path and what is there.
  for (const [what, entrypoint, hint] of [
    ['a typo', 'warden/decison', 'data.warden.decison is not defined by the loaded policies; data.warden holds decision, models, service, service_listed'],
    ["OPA's data/ prefix", 'data/warden/decision', 'data.data.warden.decision is not defined by the loaded policies; the path is relative to data: write warden/decision'],
  ] as const) {
    it(`stops serve, naming policy.entrypoint: ${what}`, { timeout: 30_000 }, async () => {
      // A directory of its own: the shared one holds a broken template, whose error would race
      // the policy's (templates and policies load together).
      const dir = await prepareWardenDir({ upstreamUrl: 'http://127.0.0.1:9/v1' });
      try {
        writeFileSync(dir.configFile, readFileSync(dir.configFile, 'utf8').replace('entrypoint: warden/decision', `entrypoint: ${entrypoint}`));
        const { code, signal, stderr, started } = await runServe(['serve', '--config', dir.configFile]);
        expect(started).toBe(false);
        expect(signal).toBeNull();
        expect(code).not.toBe(0);
        expect(stderr).toContain(`warden: policy.entrypoint: policy_error: "${entrypoint}" names no rule: ${hint}`);
      } finally {
        rmSync(dir.dir, { recursive: true, force: true });
      }
    });
  }
});
