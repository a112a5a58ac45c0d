import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardable } from '../../src/redact/index.js';
import { WardenError } from '../../src/pipeline/errors.js';
import type { SecretProvider } from '../../src/pipeline/ports.js';
import type { Template } from '../../src/pipeline/types.js';
import {
  createEnvSecretProvider,
  createFetchStage,
  createFileSecretProvider,
  createSecretResolver,
  parseSecretRef,
  SecretRefError,
} from '../../src/secrets/index.js';
import { allowDecision, makeContext, makeTemplate } from '../stage-context.js';

const CANARY = 'CANARY-SECRET-9f8e7d';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-secrets-'));
  await writeFile(join(dir, 'api-key'), `${CANARY}\n`);
  await writeFile(join(dir, 'crlf'), `${CANARY}\r\n\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function refCode(ref: string): string | undefined {
  try {
    parseSecretRef(ref, { baseDir: '/base' });
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(SecretRefError);
    return (err as SecretRefError).code;
  }
}

describe('parseSecretRef', () => {
  it('accepts each scheme and normalizes file refs', () => {
    expect(fileURLToPath(parseSecretRef('file:///etc/warden/key').url)).toBe('/etc/warden/key');
    expect(fileURLToPath(parseSecretRef('file:secrets/key', { baseDir: '/srv/warden' }).url)).toBe('/srv/warden/secrets/key');
    expect(fileURLToPath(parseSecretRef('file:../s/key', { baseDir: '/srv/warden' }).url)).toBe('/srv/s/key');
    expect(parseSecretRef('env://OPENAI_API_KEY').url.host).toBe('OPENAI_API_KEY');
    expect(parseSecretRef('vault://secret/data/app#token').scheme).toBe('vault');
    expect(parseSecretRef('k8s://payments/api-creds#token').scheme).toBe('k8s');
  });

  it('rejects bad refs with stable codes', () => {
    expect(refCode('')).toBe('ref_empty');
    expect(refCode('just-a-name')).toBe('ref_not_uri');
    expect(refCode('s3://bucket/key')).toBe('ref_unknown_scheme');
    expect(refCode('file://server/share/key')).toBe('ref_invalid_file');
    expect(refCode('file:')).toBe('ref_invalid_file');
    expect(refCode('file:///a/b#frag')).toBe('ref_invalid_file');
    expect(refCode('env://1BAD')).toBe('ref_invalid_env');
    expect(refCode('env://A/B')).toBe('ref_invalid_env');
    expect(refCode('vault://secret/path')).toBe('ref_invalid_vault');
    expect(refCode('vault://secret#key')).toBe('ref_invalid_vault');
    expect(refCode('k8s://Bad_NS/name#key')).toBe('ref_invalid_k8s');
    expect(refCode('k8s://ns/name')).toBe('ref_invalid_k8s');
  });

  it('refuses credentials in vault:/k8s: refs, without repeating them', () => {
    for (const [ref, code] of [
      ['vault://admin:CANARYPASSxq93@secret/app#key', 'ref_invalid_vault'],
      ['vault://admin@secret/app#key', 'ref_invalid_vault'],
      ['vault://:CANARYPASSxq93@secret/app#key', 'ref_invalid_vault'],
      ['k8s://admin:CANARYPASSk8s77@ns/name#key', 'ref_invalid_k8s'],
      ['k8s://@ns/name#key', 'ref_invalid_k8s'],
    ] as const) {
      expect(refCode(ref)).toBe(code);
      try {
        parseSecretRef(ref);
      } catch (err) {
        expect((err as SecretRefError).reason).toMatch(/user:password@/);
        expect((err as SecretRefError).reason).not.toContain('CANARYPASS');
      }
    }
  });

  it('holds k8s refs to Kubernetes names and vault refs to a plain mount/path#key', () => {
    // A namespace is a DNS-1123 label: no dots, at most 63 characters.
    expect(refCode('k8s://my.ns/name#key')).toBe('ref_invalid_k8s');
    expect(refCode(`k8s://${'n'.repeat(64)}/name#key`)).toBe('ref_invalid_k8s');
    expect(refCode(`k8s://${'n'.repeat(63)}/name#key`)).toBeUndefined();
    // A Secret name is a DNS-1123 subdomain: dots allowed, at most 253 characters.
    expect(refCode('k8s://ns/my.secret#key')).toBeUndefined();
    expect(refCode(`k8s://ns/${'a'.repeat(254)}#key`)).toBe('ref_invalid_k8s');
    expect(refCode('k8s://ns:443/name#key')).toBe('ref_invalid_k8s');
    expect(refCode('vault://secret:8200/app#key')).toBe('ref_invalid_vault');
    expect(refCode('vault://secret/a/../../b#key')).toBe('ref_invalid_vault');
    expect(refCode('vault://secret/./app#key')).toBe('ref_invalid_vault');
    expect(refCode('vault://secret/app#a#b')).toBe('ref_invalid_vault');
    // Dot segments, plain or percent-encoded: the URL parser would drop them, and the store be
    // asked for another path than the one granted by name.
    for (const ref of ['vault://kv/a/%2e%2e/b#k', 'vault://kv/a/%2E/b#k']) expect(refCode(ref)).toBe('ref_invalid_vault');
    for (const ref of ['k8s://ns/x/../name#key', 'k8s://ns/./name#key', 'k8s://ns/%2e%2e/name#key']) expect(refCode(ref)).toBe('ref_invalid_k8s');
  });

  it('refuses at load the file refs whose path could not be read at request time', () => {
    for (const ref of ['file:///tmp/a%2Fb', 'file:///tmp/a%00b', 'file:a%00b', 'file:///tmp/%E0%A4%A', 'file:%E0%A4%A']) {
      expect(refCode(ref)).toBe('ref_invalid_file');
    }
    // Percent-encoding that decodes to a plain path is fine, in both forms.
    expect(fileURLToPath(parseSecretRef('file:///tmp/a%20b').url)).toBe('/tmp/a b');
    expect(fileURLToPath(parseSecretRef('file:a%20b', { baseDir: '/base' }).url)).toBe('/base/a b');
  });

  it('refuses a ref the URL parser would read as another: a tab or line break inside, whitespace at the end', () => {
    // Without the check, 'file:///tmp/se\tcret' read /tmp/secret and 'file:///tmp/x ' read /tmp/x.
    for (const [ref, code] of [
      ['file:///tmp/se\tcret', 'ref_invalid_file'],
      ['file:///tmp/se\ncret', 'ref_invalid_file'],
      ['file:///tmp/x ', 'ref_invalid_file'],
      ['file:///tmp/x\r', 'ref_invalid_file'],
      ['vault://kv/a\tb#k', 'ref_invalid_vault'],
      ['k8s://ns/name#key ', 'ref_invalid_k8s'],
      ['env://A\u007f', 'ref_invalid_env'],
    ] as const) {
      expect(refCode(ref), JSON.stringify(ref)).toBe(code);
    }
    // A space inside a path is a file name, read as written.
    expect(fileURLToPath(parseSecretRef('file:///tmp/a b').url)).toBe('/tmp/a b');
  });

  it('refuses a ref longer than 4096 characters, without repeating it whole', () => {
    expect(parseSecretRef(`file:${'a/'.repeat(2045)}b`, { baseDir: '/base' }).scheme).toBe('file');
    for (const ref of [`file:${'a'.repeat(5000)}`, `env://${'A'.repeat(5000)}`]) {
      let err: unknown;
      try {
        parseSecretRef(ref);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SecretRefError);
      expect((err as SecretRefError).code).toBe('ref_too_long');
      expect((err as Error).message.length).toBeLessThan(200);
    }
  });
});

describe('providers and resolver', () => {
  it('reads files trimming exactly one trailing newline', async () => {
    const r = createSecretResolver({ providers: [createFileSecretProvider()], baseDir: dir });
    const got = await r.resolve(['file:api-key', 'file:crlf']);
    expect(got.get('file:api-key')).toBe(CANARY);
    expect(got.get('file:crlf')).toBe(`${CANARY}\r\n`);
  });

  it('drops a leading UTF-8 byte order mark (what Windows editors write), which is no part of a key', async () => {
    await writeFile(join(dir, 'bom'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${CANARY}\n`)]));
    await writeFile(join(dir, 'bom-only'), Buffer.from([0xef, 0xbb, 0xbf, 0x0a]));
    const r = createSecretResolver({ providers: [createFileSecretProvider()], baseDir: dir });
    expect((await r.resolve(['file:bom'])).get('file:bom')).toBe(CANARY);
    await expect(r.resolve(['file:bom-only'])).rejects.toMatchObject({ code: 'secret_unavailable', message: 'secret file:bom-only is unavailable: secret file is empty' });
  });

  it('reads env vars from the injected environment', async () => {
    const r = createSecretResolver({ providers: [createEnvSecretProvider({ env: { TOKEN: CANARY } })] });
    expect((await r.resolve(['env://TOKEN'])).get('env://TOKEN')).toBe(CANARY);
    await expect(r.resolve(['env://MISSING'])).rejects.toMatchObject({ code: 'secret_unavailable' });
  });

  it('fails with secret_unavailable naming the ref, never the value', async () => {
    const r = createSecretResolver({ providers: [createFileSecretProvider(), createEnvSecretProvider({ env: {} })], baseDir: dir });
    const cases: Array<[string, RegExp]> = [
      ['file:does-not-exist', /ENOENT/],
      ['vault://secret/data/app#token', /vault secret store is not configured/],
      ['k8s://ns/name#key', /k8s secret store is not configured/],
      ['s3://bucket/key', /ref_unknown_scheme/],
    ];
    for (const [ref, reason] of cases) {
      const err = await r.resolve([ref]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WardenError);
      expect((err as WardenError).code).toBe('secret_unavailable');
      expect((err as WardenError).message).toContain(ref);
      expect((err as WardenError).message).toMatch(reason);
    }
    // A provider that throws with the value in its message: the message must not leak.
    const leaky: SecretProvider = {
      scheme: 'env',
      fetch: async () => {
        throw new Error(`boom ${CANARY}`);
      },
    };
    const r2 = createSecretResolver({ providers: [leaky] });
    const err = (await r2.resolve(['env://X']).catch((e: unknown) => e)) as WardenError;
    expect(err.code).toBe('secret_unavailable');
    expect(JSON.stringify({ m: err.message, d: err.details, s: err.stack })).not.toContain(CANARY);
  });

  it('caches within the lease and collapses concurrent misses into one fetch', async () => {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: SecretProvider = {
      scheme: 'env',
      async fetch(ref) {
        calls++;
        await gate;
        return { value: `v-${ref.host}`, ttlMs: 60_000 };
      },
    };
    const r = createSecretResolver({ providers: [slow] });
    const all = Promise.all(Array.from({ length: 20 }, () => r.resolve(['env://A'])));
    release();
    const maps = await all;
    expect(calls).toBe(1);
    expect(maps.every((m) => m.get('env://A') === 'v-A')).toBe(true);
    await r.resolve(['env://A']);
    expect(calls).toBe(1);
    r.clear();
    await r.resolve(['env://A']);
    expect(calls).toBe(2);
  });

  it('does not cache a value whose lease is zero', async () => {
    let calls = 0;
    const p: SecretProvider = { scheme: 'env', fetch: async () => ({ value: String(++calls), ttlMs: 0 }) };
    const r = createSecretResolver({ providers: [p] });
    expect((await r.resolve(['env://A'])).get('env://A')).toBe('1');
    expect((await r.resolve(['env://A'])).get('env://A')).toBe('2');
  });

  it('stops waiting when the request is aborted', async () => {
    const never: SecretProvider = { scheme: 'env', fetch: () => new Promise(() => {}) };
    const r = createSecretResolver({ providers: [never] });
    const ac = new AbortController();
    const p = r.resolve(['env://A'], ac.signal);
    ac.abort();
    // The client left: the request is cancelled, not a secret store fault.
    await expect(p).rejects.toMatchObject({ code: 'cancelled' });
  });
});

function templateWith(refs: string[]): Template {
  const variables: Template['variables'] = { q: { source: 'request', type: 'string', required: true, pii: false } };
  refs.forEach((ref, i) => (variables[`s${i}`] = { source: 'secret', type: 'string', required: true, pii: false, ref }));
  return makeTemplate({ id: 't', variables, messages: [{ role: 'user', content: '{{q}}' }] });
}

describe('fetch stage', () => {
  const resolver = () => createSecretResolver({ providers: [createFileSecretProvider()], baseDir: dir });

  it('resolves exactly the granted refs the template needs', async () => {
    const r = resolver();
    const stage = createFetchStage(() => r, guardable);
    const ctx = makeContext({}, { template: templateWith(['file:api-key']), decision: allowDecision({ secrets: ['file:api-key', 'file:crlf'] }) });
    await stage.run(ctx);
    expect([...ctx.secrets!.keys()]).toEqual(['file:api-key']);
    expect(ctx.secrets!.get('file:api-key')).toBe(CANARY);
  });

  it('denies a needed ref the decision does not grant, before reading anything', async () => {
    let fetched = 0;
    const counting: SecretProvider = { scheme: 'file', fetch: async () => (fetched++, { value: 'x', ttlMs: 0 }) };
    const stage = createFetchStage(() => createSecretResolver({ providers: [counting], baseDir: dir }), guardable);
    const ctx = makeContext({}, { template: templateWith(['file:api-key', 'file:crlf']), decision: allowDecision({ secrets: ['file:api-key'] }) });
    // The stage refuses synchronously (as any stage may): run throws, the pipeline catches it.
    let err: WardenError | undefined;
    try {
      await stage.run(ctx);
    } catch (e) {
      err = e as WardenError;
    }
    if (!err) throw new Error('expected the stage to refuse');
    expect(err.code).toBe('policy_denied');
    expect(err.message).toBe('secret not granted: file:crlf');
    expect(err.details).toEqual({ reasons: ['secret not granted: file:crlf'] });
    expect(fetched).toBe(0);
    expect(ctx.secrets).toBeUndefined();
  });

  it('sets an empty map when nothing is needed and fails closed without a decision', async () => {
    const stage = createFetchStage(resolver, guardable);
    const raw = makeContext();
    await stage.run(raw);
    expect(raw.secrets!.size).toBe(0);
    const noDecision = makeContext({}, { template: templateWith(['file:api-key']) });
    expect(() => stage.run(noDecision)).toThrow(expect.objectContaining({ code: 'policy_denied' }));
  });
});
