/**
 * `input.request.params` end to end: the embedded default (deploy/local, with a file audit sink
 * instead of stdout) refuses a restricted template's call that asks the provider to store it
 * (`store: true`), over HTTP with the official `openai` client and over gRPC, and lets the same
 * call through without it, or on an internal template. A policy that writes the whole of
 * `input.request.params` into its reason shows what the policy sees: the kinds of text values,
 * never the text (a canary in `user` and in `metadata` appears in no answer and no audit record).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createRuntime, type BoundAddresses, type Runtime } from '../../src/runtime/runtime.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { REPO } from './helpers/cli.js';
import { gatewayClient, unaryCall } from './helpers/grpc.js';

const CANARY = 'CANARY-PARAM-USER-4d2c';
const STORE_REASON = 'restricted prompts may not be stored by the provider (store must be false or absent)';
const REFUND = { template: 'billing/refund-review@1', variables: { order_id: 'O-1', amount: 40, reason: 'arrived broken' } };
const TICKET = { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', customer_message: 'hello' } };

/** The embedded default in a temp dir: its policy (or `policy`, replacing it), audit to a file. */
async function startDefault(policy?: string): Promise<{ runtime: Runtime; addresses: BoundAddresses; auditLines: () => string[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-params-e2e-'));
  cpSync(join(REPO, 'deploy', 'local'), dir, { recursive: true });
  if (policy === undefined) cpSync(join(REPO, 'policies'), join(dir, 'policies'), { recursive: true });
  else writeFileSync(join(dir, 'policy.rego'), policy);
  const configPath = join(dir, 'warden.yaml');
  const config = readFileSync(configPath, 'utf8')
    .replace('paths: [../../policies]', `paths: [${policy === undefined ? 'policies' : 'policy.rego'}]`)
    .replace('sinks: [stdout]', 'sinks: [{ file: audit.log }]')
    .replace('watch: true', 'watch: false');
  expect(config).toContain('audit.log');
  writeFileSync(configPath, config);
  const cfg = loadConfig(configPath, { WARDEN_HTTP_LISTEN: '127.0.0.1:0', WARDEN_GRPC_LISTEN: '127.0.0.1:0', WARDEN_ADMIN_LISTEN: '127.0.0.1:0' });
  const runtime = await createRuntime(cfg, { logger: createLogger({ level: 'error' }, { write: () => undefined }), configDir: dir, watch: false });
  const addresses = await runtime.start();
  const auditLines = () => readFileSync(join(dir, 'audit.log'), 'utf8').split('\n').filter((l) => l !== '');
  return { runtime, addresses, auditLines, dir };
}

async function refusal(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err as InstanceType<typeof OpenAI.APIError>;
}

describe('the default policy and store: true', () => {
  let w: Awaited<ReturnType<typeof startDefault>>;
  let client: OpenAI;
  beforeAll(async () => {
    w = await startDefault();
    // The dev authenticator: a loopback caller needs no token.
    client = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 15_000 });
  });
  afterAll(async () => {
    await w.runtime.shutdown('test');
    rmSync(w.dir, { recursive: true, force: true });
  });

  const create = (body: Record<string, unknown>) => client.chat.completions.create({ model: 'echo', messages: [], ...body } as never);

  it('refuses a restricted template called with store: true (or a mistyped 1 or "true"), over HTTP', async () => {
    for (const store of [true, 1, 'true']) {
      const err = await refusal(create({ store, user: CANARY, warden: REFUND }));
      expect(err.status, String(store)).toBe(403);
      expect((err.error as { code?: string }).code).toBe('policy_denied');
      expect(err.message).toContain(STORE_REASON);
      const record = JSON.parse(w.auditLines().at(-1)!) as { decision: { allow: boolean; reasons: string[] }; error_code: string };
      expect(record).toMatchObject({ decision: { allow: false, reasons: [STORE_REASON] }, error_code: 'policy_denied' });
    }
  });

  it('serves the same call without store, with store: false or null, and an internal template with store: true', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ warden: REFUND }, 'Order O-1'],
      [{ store: false, warden: REFUND }, 'Order O-1'],
      [{ store: null, warden: REFUND }, 'Order O-1'],
      [{ store: true, warden: TICKET }, 'T-1'],
    ];
    for (const [body, echoed] of cases) {
      const done = (await create(body)) as OpenAI.ChatCompletion;
      expect(done.choices[0]!.message.content, JSON.stringify(body)).toContain(echoed);
    }
    expect(w.auditLines().map((l) => (JSON.parse(l) as { status: string }).status).slice(-4)).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it('refuses it over gRPC too, with params_json', async () => {
    const request = { model: 'echo', template: { id: 'billing/refund-review', version: 1 }, variables: { order_id: 'O-1', amount: '40', reason: 'arrived broken' } };
    const err = (await unaryCall(gatewayClient(w.addresses.grpc), 'Complete', { ...request, params_json: JSON.stringify({ store: true }) }).then(
      () => undefined,
      (e: unknown) => e,
    )) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.metadata.get('warden-code')[0]).toBe('policy_denied');
    expect(err.details).toContain(STORE_REASON);
    const ok = await unaryCall(gatewayClient(w.addresses.grpc), 'Complete', { ...request, params_json: JSON.stringify({ store: false }) });
    expect(ok.choices[0].message.content).toContain('Order O-1');
  });

  it('writes no parameter text into the audit log', () => {
    expect(w.auditLines().join('\n')).not.toContain(CANARY);
  });
});

describe('what a policy sees of the parameters', () => {
  it('their kinds and safe values, never their text', async () => {
    const w = await startDefault(
      'package warden\n\nimport rego.v1\n\ndecision := {"allow": false, "reasons": [sprintf("params %v", [input.request.params])]}\n',
    );
    try {
      const client = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 15_000 });
      const err = await refusal(
        client.chat.completions.create({
          model: 'echo',
          messages: [{ role: 'user', content: 'hi' }],
          store: true,
          n: 2,
          service_tier: 'flex',
          user: CANARY,
          metadata: { note: CANARY },
          stop: [CANARY],
        } as never),
      );
      expect(err.status).toBe(403);
      const reason = /params (\{.*\})/.exec(err.message)?.[1];
      expect(reason).toBeDefined();
      // Rego's %v prints an object with its keys sorted.
      expect(JSON.parse(reason!)).toEqual({ metadata: 'object', n: 2, service_tier: 'flex', stop: 'array', store: true, user: 'string' });
      expect(err.message).not.toContain(CANARY);
      expect(w.auditLines().join('\n')).not.toContain(CANARY);
    } finally {
      await w.runtime.shutdown('test');
      rmSync(w.dir, { recursive: true, force: true });
    }
  });
});
