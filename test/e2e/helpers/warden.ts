/**
 * Starts a real Warden in-process through the runtime factory, on loopback port 0, with its own
 * temp directory: config, templates and policies copied from test/e2e/fixtures, file secrets
 * holding canary values, an audit file sink, and the Kubernetes authenticator checking tokens
 * signed with a freshly generated key (JWKS file). Logs are collected for canary assertions.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { publicJwk, testKeyPair, type TestKeyPair } from '../../keys.js';
import { loadConfig } from '../../../src/config/load.js';
import { createRuntime, type BoundAddresses, type Runtime } from '../../../src/runtime/runtime.js';
import { createLogger } from '../../../src/telemetry/logger.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** A labs/raw-bot token signed with `pair` under `kid`, unique (its own `jti`), so never answered from a cache it was not put in. */
export function rawBotToken(pair: TestKeyPair, kid: string): Promise<string> {
  return new SignJWT({ 'kubernetes.io': { namespace: 'labs', serviceaccount: { name: 'raw-bot', uid: 'u-1' } } })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuer(ISSUER)
    .setAudience('warden')
    .setSubject('system:serviceaccount:labs:raw-bot')
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(pair.privateKey);
}

export const CANARY_SECRET = 'CANARY-SECRET-9f8e7d';
export const CANARY_API_KEY = 'sk-CANARY-APIKEY-5c4b3a';

export interface Signer {
  /** A projected service-account token for `namespace/serviceAccount`. */
  token(namespace: string, serviceAccount: string, opts?: { audience?: string; expiresIn?: string; issuer?: string }): Promise<string>;
  /** A token of the cluster's issuer for `warden`, valid 10 minutes, with exactly these other claims. */
  claims(payload: Record<string, unknown>): Promise<string>;
  jwks: object;
}

export async function createSigner(): Promise<Signer> {
  const pair = testKeyPair('ec');
  const jwk = await publicJwk(pair, { kid: 'e2e-key', alg: 'ES256', use: 'sig' });
  return {
    jwks: { keys: [jwk] },
    token: (namespace, serviceAccount, opts = {}) =>
      new SignJWT({ 'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: 'u-1' }, pod: { name: `${serviceAccount}-pod-1`, uid: 'p-1' } } })
        .setProtectedHeader({ alg: 'ES256', kid: 'e2e-key' })
        .setIssuer(opts.issuer ?? ISSUER)
        .setAudience(opts.audience ?? 'warden')
        .setSubject(`system:serviceaccount:${namespace}:${serviceAccount}`)
        .setIssuedAt()
        .setExpirationTime(opts.expiresIn ?? '10m')
        .sign(pair.privateKey),
    claims: (payload) =>
      new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', kid: 'e2e-key' })
        .setIssuer(ISSUER)
        .setAudience('warden')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(pair.privateKey),
  };
}

export interface WardenFixture {
  runtime: Runtime;
  addresses: BoundAddresses;
  dir: string;
  auditFile: string;
  logs: string[];
  signer: Signer;
  /** Audit records written so far (parsed JSON lines). */
  audit(): Array<Record<string, any>>;
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** Base URL of the OpenAI-compatible upstream (`http://127.0.0.1:PORT/v1`). */
  upstreamUrl: string;
  /** Extra YAML appended to the config (e.g. `limits:` overrides). */
  extraConfig?: string;
  limits?: string;
  watch?: boolean;
  methods?: string;
  listen?: string;
  /** Replaces the `policy:` line (default: the fixture's policies, entrypoint warden/decision). */
  policy?: string;
  /** Replaces the `secrets:` line (default: templates may read files under `secrets/`). */
  secrets?: string;
  /** Replaces the `audit:` line (default: a file sink in the temp dir, required). */
  audit?: string;
  /** Extra files (templates, secrets) written under the temp dir, by relative path. */
  files?: Record<string, string>;
  /** Replaces the `models:` line (default: gpt-4o-mini, echo and down-model, each routed). */
  models?: string;
  /** Extra keys of the `upstream` provider, as one YAML line (e.g. `pool: { connections: 2 }`). */
  upstreamKeys?: string;
  /** Extra keys of `reload:`, as a YAML flow fragment (e.g. `timeout_ms: 300`). */
  reloadKeys?: string;
  /** Replaces the `upstream` provider's timeouts (default `{ connect_ms: 1000, headers_ms: 1500, body_ms: 3000 }`). */
  upstreamTimeouts?: string;
}

/** An address nothing listens on: for the "upstream down" cases. */
export const DOWN_URL = 'http://127.0.0.1:9/v1';

export interface PreparedDir {
  dir: string;
  configFile: string;
  auditFile: string;
  signer: Signer;
}

/** Writes a complete Warden setup (config, templates, policies, secrets, JWKS) to a temp dir. */
export async function prepareWardenDir(opts: FixtureOptions): Promise<PreparedDir> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-e2e-'));
  cpSync(join(FIXTURES, 'templates'), join(dir, 'templates'), { recursive: true });
  cpSync(join(FIXTURES, 'policies'), join(dir, 'policies'), { recursive: true });
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'escalation-code'), `${CANARY_SECRET}\n`);
  writeFileSync(join(dir, 'secrets', 'upstream-key'), `${CANARY_API_KEY}\n`);
  for (const [path, text] of Object.entries(opts.files ?? {})) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const signer = await createSigner();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(signer.jwks));
  const auditFile = join(dir, 'audit.log');
  const configFile = join(dir, 'warden.yaml');
  writeFileSync(
    configFile,
    `${opts.listen ?? 'listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }'}
environment: { name: test, cluster: e2e }
identity:
  methods: ${opts.methods ?? '[kubernetes]'}
  kubernetes: { issuer: "${ISSUER}", audiences: [warden], jwks_file: jwks.json }
${opts.policy ?? 'policy: { engine: rego, paths: [policies], entrypoint: warden/decision }'}
templates: { paths: [templates] }
providers:
  upstream:
    kind: openai
    base_url: "${opts.upstreamUrl}"
    api_key: "file://${join(dir, 'secrets', 'upstream-key')}"
    timeouts: ${opts.upstreamTimeouts ?? '{ connect_ms: 1000, headers_ms: 1500, body_ms: 3000 }'}
${opts.upstreamKeys === undefined ? '' : `    ${opts.upstreamKeys}\n`}  down: { kind: openai, base_url: "${DOWN_URL}", timeouts: { connect_ms: 500 } }
  echo: { kind: echo }
${opts.models ?? 'models: { gpt-4o-mini: upstream, echo: echo, down-model: down }'}
${opts.secrets ?? 'secrets: { file_roots: [secrets] }'}
${opts.audit ?? 'audit: { sinks: [{ file: audit.log }], required: true }'}
${opts.limits ?? 'limits: { max_body_bytes: 65536, max_variables: 8, max_variable_length: 4096, client_timeout_ms: 10000, upstream_timeout_ms: 5000, shutdown_grace_ms: 2000 }'}
log: { level: debug }
reload: { watch: ${opts.watch === true ? 'true' : 'false'}, debounce_ms: 50${opts.reloadKeys === undefined ? '' : `, ${opts.reloadKeys}`} }
${opts.extraConfig ?? ''}
`,
  );
  return { dir, configFile, auditFile, signer };
}

export async function startWarden(opts: FixtureOptions): Promise<WardenFixture> {
  const { dir, configFile, auditFile, signer } = await prepareWardenDir(opts);
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
  const config = loadConfig(configFile, {});
  const runtime = await createRuntime(config, { logger, configDir: dir });
  const addresses = await runtime.start();
  return {
    runtime,
    addresses,
    dir,
    auditFile,
    logs,
    signer,
    // No file yet (no request audited so far): no records.
    audit: () =>
      (existsSync(auditFile) ? readFileSync(auditFile, 'utf8') : '')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, any>),
    close: async () => {
      await runtime.shutdown('test finished');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns true (no timed assertions: the test timeout is the bound). */
export async function eventually(check: () => boolean | Promise<boolean>, stepMs = 20): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, stepMs));
}

/**
 * A template (YAML text) whose message uses `count` required request variables v0..v(count-1):
 * more than the fixture config's limits.max_variables (8) makes one no request could call.
 */
export function templateNeedingVariables(count: number, id = 'team/wide'): string {
  const names = Array.from({ length: count }, (_, i) => `v${i}`);
  return [
    `id: ${id}`,
    'version: 1',
    'owner: team@example.com',
    'sensitivity: internal',
    `description: Needs ${count} variables.`,
    'variables:',
    ...names.map((n) => `  ${n}: { type: string }`),
    'messages:',
    `  - { role: user, content: "${names.map((n) => `{{${n}}}`).join(' ')}" }`,
    '',
  ].join('\n');
}
