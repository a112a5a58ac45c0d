/**
 * A governed call whose variables are wrong must fail before any secret is read: secrets are
 * fetched only for a call that can run. The secret here is an `env://` ref, read by the real env
 * provider from `process.env`, which this file replaces (for its own duration) with a copy that
 * counts the reads of that one variable: the test sees every read the secret store gets, over
 * HTTP, gRPC Render and Complete, and the `warden render` CLI.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMain } from './helpers/cli.js';
import { bearerMetadata, unaryCall } from './helpers/grpc.js';
import { postChat } from './helpers/http.js';
import { startGatewayWarden, type GatewayWarden } from './helpers/gateway-warden.js';
import { eventually, type WardenFixture } from './helpers/warden.js';

const SECRET_NAME = 'WARDEN_E2E_VARS_FIRST_CODE';
const SECRET_VALUE = 'VARSFIRST-CODE-q7w3';

const TEMPLATE_YAML = `id: ops/vars-first
version: 1
owner: sre@example.com
sensitivity: internal
description: A note signed with a code the environment holds.
approvals:
  - { by: lee.chen@example.com, ticket: SEC-1311 }
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini, echo]
variables:
  service: { type: string, max_length: 16 }
  attempts: { type: number }
  code: { source: secret, ref: "env://${SECRET_NAME}" }
messages:
  - role: system
    content: "Sign the note with {{code}}."
  - role: user
    content: "Service {{service}} failed {{attempts}} times."
`;

const GOOD = { service: 'checkout', attempts: '3' };

/** Each wrong call with the error code and location the caller gets for it. */
const BAD: Array<{ what: string; variables: Record<string, string>; code: string; path: string }> = [
  { what: 'wrong type', variables: { service: 'checkout', attempts: 'three' }, code: 'variable_invalid', path: 'warden.variables.attempts' },
  { what: 'over max_length', variables: { service: 'x'.repeat(17), attempts: '3' }, code: 'variable_invalid', path: 'warden.variables.service' },
  { what: 'missing', variables: { service: 'checkout' }, code: 'variable_missing', path: 'warden.variables.attempts' },
  { what: 'undeclared', variables: { ...GOOD, colour: 'blue' }, code: 'variable_missing', path: 'warden.variables.colour' },
  { what: 'a secret variable set by the caller', variables: { ...GOOD, code: 'mine' }, code: 'variable_invalid', path: 'warden.variables.code' },
];

let reads = 0;
let savedEnv: NodeJS.ProcessEnv;
let g: GatewayWarden;
let w: WardenFixture;
let gateway: any;
let token: string;

beforeAll(async () => {
  // The env provider keeps the `process.env` it was built with: install the counting one first.
  savedEnv = process.env;
  const copy: NodeJS.ProcessEnv = { ...savedEnv, [SECRET_NAME]: SECRET_VALUE };
  process.env = new Proxy(copy, {
    get(target, key, receiver) {
      if (key === SECRET_NAME) reads++;
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  g = await startGatewayWarden({
    files: { 'templates/ops/vars-first.yaml': TEMPLATE_YAML },
    // A template's env: ref must be allowed by name (secrets.env_allow).
    secrets: `secrets: { file_roots: [secrets], env_allow: [${SECRET_NAME}] }`,
  });
  ({ w, token, gateway } = g);
});

afterAll(async () => {
  await g?.close();
  if (savedEnv) process.env = savedEnv;
});

function grpcCall(method: 'Render' | 'Complete', variables: Record<string, string>): Promise<any> {
  return unaryCall(gateway, method, { model: 'echo', template: { id: 'ops/vars-first', version: 1 }, variables }, bearerMetadata(token));
}

describe('variables are checked before any secret is read', () => {
  it('over HTTP and gRPC (Render and Complete), a call with wrong variables reads no secret; a good one reads it once', async () => {
    for (const bad of BAD) {
      const res = await postChat(w.addresses.http, token, { model: 'echo', warden: { template: 'ops/vars-first@1', variables: bad.variables } });
      const body = (await res.json()) as any;
      expect(res.status, bad.what).toBe(400);
      expect(body.error.code, bad.what).toBe(bad.code);
      expect(body.error.param, bad.what).toBe(bad.path);
      for (const method of ['Render', 'Complete'] as const) {
        const err = (await grpcCall(method, bad.variables).catch((e: unknown) => e)) as grpc.ServiceError;
        expect(err.code, `${method}: ${bad.what}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect(err.metadata.get('warden-code')[0], `${method}: ${bad.what}`).toBe(bad.code);
        expect(err.metadata.get('warden-param')[0], `${method}: ${bad.what}`).toBe(bad.path.replace(/^warden\./, ''));
      }
      expect(reads, bad.what).toBe(0);
    }
    // Each refusal is audited with its code, as before.
    await eventually(() => w.audit().length >= BAD.length * 3);
    const refused = w.audit();
    expect(refused.map((r) => r.error_code)).toEqual(BAD.flatMap((b) => [b.code, b.code, b.code]));
    // ...naming the template asked for, and no secret ref (none was used).
    for (const r of refused) {
      expect(r.template).toEqual({ id: 'ops/vars-first', version: 1, sensitivity: 'internal' });
      expect(r.secret_refs).toEqual([]);
    }

    const ok = await postChat(w.addresses.http, token, { model: 'echo', warden: { template: 'ops/vars-first@1', variables: GOOD } });
    expect(ok.status).toBe(200);
    expect(reads).toBe(1);
    // Cached within its lease: the next good calls read nothing more.
    const rendered = await grpcCall('Render', GOOD);
    expect(rendered.messages[0].content).toBe('Sign the note with [SECRET_VALUE].');
    await grpcCall('Complete', GOOD);
    expect(reads).toBe(1);
  });

  it('`warden render` with wrong variables reads no secret; with good ones it reads it once', async () => {
    // The CLI builds its own runtime, so its own secret cache: a fresh count.
    reads = 0;
    const args = (vars: Record<string, string>) => [
      'render',
      '--config',
      `${w.dir}/warden.yaml`,
      '--template',
      'ops/vars-first@1',
      '--principal',
      'support/ticket-bot',
      '--model',
      'echo',
      '--json',
      ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}=${v}`]),
    ];
    for (const bad of BAD) {
      const r = await runMain(args(bad.variables));
      expect(r.code, bad.what).toBe(1);
      expect((JSON.parse(r.stdout) as any).error.code, bad.what).toBe(bad.code);
      expect(reads, bad.what).toBe(0);
    }
    const good = await runMain(args(GOOD));
    expect(good.code, good.stderr).toBe(0);
    expect(reads).toBe(1);
    expect(good.stdout + good.stderr).not.toContain(SECRET_VALUE);
  });
});
