/**
 * The fetch-time bound on refs (secrets.file_roots, secrets.env_allow), through the resolver the
 * runtime builds from a config: what a template may read, what the config's own refs may read,
 * and the config keys themselves.
 */
import { link, mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { secretResolverFor } from '../../src/runtime/components.js';

const INSIDE = 'CANARY-INSIDE-7c1e';
const OUTSIDE = 'CANARY-OUTSIDE-2b9f';
const KEY = 'CANARY-PROVIDER-KEY-44d0';
const ENV_CRED = 'CANARY-ENV-CRED-0a6b';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-secret-access-'));
  await mkdir(join(dir, 'secrets'));
  await mkdir(join(dir, 'keys'));
  await writeFile(join(dir, 'secrets', 'code'), `${INSIDE}\n`);
  await writeFile(join(dir, 'outside'), `${OUTSIDE}\n`);
  await writeFile(join(dir, 'keys', 'provider'), `${KEY}\n`);
  await symlink(join(dir, 'outside'), join(dir, 'secrets', 'escape'));
  await symlink('code', join(dir, 'secrets', 'alias'));
  process.env.WARDEN_ACCESS_TEST_CLOUD = ENV_CRED;
  process.env.WARDEN_TPL_ACCESS_TEST = INSIDE;
});
afterAll(async () => {
  delete process.env.WARDEN_ACCESS_TEST_CLOUD;
  delete process.env.WARDEN_TPL_ACCESS_TEST;
  await rm(dir, { recursive: true, force: true });
});

function resolverFor(secrets: string) {
  const config = parseConfig(
    `providers:\n  up: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "file:keys/provider" }\n  env: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "env://WARDEN_ACCESS_TEST_CLOUD" }\nmodels: { m: up }\n${secrets}\n`,
    join(dir, 'warden.yaml'),
  );
  return secretResolverFor(config, dir);
}

async function failure(p: string | Promise<string>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('resolved');
}

describe('file refs at fetch', () => {
  const r = () => resolverFor('secrets: { file_roots: [secrets], default_ttl_ms: 0 }');

  it('reads a file under a root, directly or through a symlink that stays inside', async () => {
    const res = r();
    expect(await res.resolveOne('file:secrets/code')).toBe(INSIDE);
    expect(await res.resolveOne('file:secrets/alias')).toBe(INSIDE);
  });

  it('refuses a file outside every root, written plainly, with .. or through a symlink; never the value', async () => {
    for (const [ref, reason] of [
      ['file:outside', /file ref is outside secrets\.file_roots/],
      ['file:secrets/../outside', /file ref is outside secrets\.file_roots/],
      [`file://${join(dir, 'outside')}`, /file ref is outside secrets\.file_roots/],
      ['file:///proc/self/environ', /file ref is outside secrets\.file_roots/],
      ['file:secrets/escape', /resolves \(through a symlink\) to a file outside secrets\.file_roots/],
    ] as const) {
      const err = await failure(r().resolveOne(ref));
      expect(err.code, ref).toBe('secret_unavailable');
      expect(err.message, ref).toMatch(reason);
      expect(JSON.stringify(err) + err.message).not.toContain(OUTSIDE);
      // The caller is not told where the roots are.
      expect(err.message, ref).not.toContain(join(dir, 'secrets'));
    }
  });

  it('reads the config\'s own key outside every root, but only as the config names it', async () => {
    const res = r();
    expect(await res.resolveOne(`file://${join(dir, 'keys', 'provider')}`)).toBe(KEY);
    // Another ref to another file in the same directory is a template's, held to the roots.
    await writeFile(join(dir, 'keys', 'other'), 'CANARY-OTHER-KEY-1\n');
    expect((await failure(res.resolveOne('file:keys/other'))).message).toMatch(/outside secrets\.file_roots/);
  });

  it("never reads the config's credential files (a jwks_bearer_token_file) through a template's ref, whatever the name", async () => {
    // The pod's own token, kept (carelessly) under a root: the identity module reads it, no template may.
    const TOKEN = 'CANARY-JWKS-BEARER-TOKEN-6f3a';
    await mkdir(join(dir, 'secrets', 'sa'), { recursive: true });
    await writeFile(join(dir, 'secrets', 'sa', 'token'), `${TOKEN}\n`);
    await link(join(dir, 'secrets', 'sa', 'token'), join(dir, 'secrets', 'token-hard'));
    await symlink('sa/token', join(dir, 'secrets', 'token-link'));
    const identity = (section: string) =>
      parseConfig(`identity:\n  methods: [kubernetes]\n  ${section}\nsecrets: { file_roots: [secrets], default_ttl_ms: 0 }\n`, join(dir, 'warden.yaml'));
    const configs = [
      identity('kubernetes: { issuer: i, audiences: [warden], jwks_url: "https://127.0.0.1:9/jwks", jwks_bearer_token_file: secrets/sa/token }'),
      identity(
        'spiffe: { audiences: [warden], bundles: { a.example: { jwks_url: "https://127.0.0.1:9/jwks", jwks_bearer_token_file: secrets/sa/token } } }\n  kubernetes: { issuer: i, audiences: [warden], jwks_file: j.json }',
      ),
    ];
    for (const config of configs) {
      const res = secretResolverFor(config, dir);
      for (const ref of ['file:secrets/sa/token', 'file:secrets/token-hard', 'file:secrets/token-link']) {
        const err = await failure(res.resolveOne(ref));
        expect(err.code, ref).toBe('secret_unavailable');
        expect(err.message, ref).toMatch(/names a secret the config itself uses/);
        expect(JSON.stringify(err) + err.message).not.toContain(TOKEN);
      }
      // Another file under the root is still read.
      expect(await res.resolveOne('file:secrets/code')).toBe(INSIDE);
    }
  });

  it('without file_roots, no template file ref is read at all', async () => {
    const err = await failure(resolverFor('secrets: { default_ttl_ms: 0 }').resolveOne('file:secrets/code'));
    expect(err.message).toMatch(/file refs are not allowed in templates: secrets\.file_roots is not set/);
  });
});

describe('env refs at fetch', () => {
  it('reads the config\'s own env ref; refuses any other variable without env_allow (set or not, the same answer)', async () => {
    const res = resolverFor('secrets: {}');
    expect(await res.resolveOne('env://WARDEN_ACCESS_TEST_CLOUD')).toBe(ENV_CRED);
    for (const ref of ['env://WARDEN_TPL_ACCESS_TEST', 'env://WARDEN_NO_SUCH_VARIABLE_Z9']) {
      const err = await failure(res.resolveOne(ref));
      expect(err.message).toMatch(/env refs are not allowed in templates: secrets\.env_allow is not set/);
      expect(err.message).not.toContain(INSIDE);
    }
  });

  it('env_allow: an exact name or a prefix with *', async () => {
    const res = resolverFor('secrets: { env_allow: ["WARDEN_TPL_*", "HOME"] }');
    expect(await res.resolveOne('env://WARDEN_TPL_ACCESS_TEST')).toBe(INSIDE);
    expect((await failure(res.resolveOne('env://HOMEX'))).message).toBe('secret env://HOMEX is unavailable: env ref names a variable secrets.env_allow does not allow');
  });
});

describe('config keys', () => {
  it('resolves relative roots against the config directory, normalized', () => {
    const c = parseConfig('secrets: { file_roots: [secrets/, ./a/../b, /abs/dir/] }\n', join(dir, 'warden.yaml'));
    expect(c.secrets.file_roots).toEqual([join(dir, 'secrets'), join(dir, 'b'), '/abs/dir']);
    expect(parseConfig('', join(dir, 'warden.yaml')).secrets).toMatchObject({ file_roots: [], env_allow: [] });
  });

  it('refuses an env_allow entry that is not a name or a prefix*, with its key path', () => {
    for (const bad of ['"A*B"', '"1X"', '""', '"A-B"']) {
      let err: unknown;
      try {
        parseConfig(`secrets: { env_allow: [${bad}] }\n`, 'w.yaml');
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect(String((err as Error).message)).toMatch(/secrets\.env_allow\[0\]: must be a variable name, or a prefix of one followed by \*/);
    }
  });
});
