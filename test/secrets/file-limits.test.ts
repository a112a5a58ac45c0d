/**
 * A secret file is a small regular file read within a deadline: anything else fails as
 * secret_unavailable with a reason, never by eating memory or hanging the request.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/index.js';
import type { SecretProvider } from '../../src/pipeline/ports.js';
import { secretResolverFor } from '../../src/runtime/components.js';
import { createFileSecretProvider, createSecretResolver, FILE_SECRET_TTL_MS } from '../../src/secrets/index.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-secret-limits-'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await writeFile(join(dir, 'big'), '');
  await truncate(join(dir, 'big'), 50 * 1024 * 1024); // sparse: costs no disk
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'newline-only'), '\n');
  await writeFile(join(dir, 'latin1'), Buffer.from([0x73, 0x65, 0x63, 0xe9, 0x74])); // "sec\xe9t"
  await writeFile(join(dir, 'ok'), 'v@lue-ü\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// What these tests guard against is a fetch that never settles (a FIFO opened waiting for a
// writer, a read of /dev/zero, a provider with no deadline): the awaits below are plain, and such
// a fetch fails the test at its timeout.

async function reason(file: string): Promise<string> {
  const provider = createFileSecretProvider();
  const err = await provider.fetch(pathToFileURL(join(dir, file))).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  return (err as Error).message;
}

describe('file secret provider', () => {
  it('refuses a FIFO at once instead of waiting for a writer', async () => {
    expect(await reason('fifo')).toBe('secret path is not a regular file');
  });

  it('refuses a device such as /dev/zero without reading it', async () => {
    const provider = createFileSecretProvider();
    const before = process.memoryUsage().rss;
    const err = await provider.fetch(new URL('file:///dev/zero')).then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).toBe('secret path is not a regular file');
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * 1024 * 1024);
  });

  it('refuses a file over the limit from its size, without reading it', async () => {
    const before = process.memoryUsage().rss;
    expect(await reason('big')).toBe('secret file is larger than 65536 bytes');
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * 1024 * 1024);
  });

  it('refuses an empty file (a bare "Bearer" upstream) as env:// refuses an empty variable', async () => {
    expect(await reason('empty')).toBe('secret file is empty');
    expect(await reason('newline-only')).toBe('secret file is empty');
  });

  it('refuses bytes that are not UTF-8 instead of replacing them', async () => {
    expect(await reason('latin1')).toBe('secret file is not valid UTF-8');
  });

  it('reads a valid file, with a 30 s lease by default', async () => {
    const got = await createFileSecretProvider().fetch(pathToFileURL(join(dir, 'ok')));
    expect(got).toEqual({ value: 'v@lue-ü', ttlMs: 30_000 });
    expect(FILE_SECRET_TTL_MS).toBe(30_000);
  });

  it('through the resolver a FIFO ends as secret_unavailable, not a hang', async () => {
    const r = createSecretResolver({ providers: [createFileSecretProvider()], baseDir: dir });
    await expect(r.resolve(['file:fifo'])).rejects.toMatchObject({ code: 'secret_unavailable' });
  });
});

describe('resolver deadline and failure memory', () => {
  it('ends a fetch that never settles as secret_unavailable, and aborts the provider', async () => {
    let signal: AbortSignal | undefined;
    const never: SecretProvider = {
      scheme: 'env',
      fetch: (_ref, s) => {
        signal = s;
        return new Promise(() => {});
      },
    };
    const r = createSecretResolver({ providers: [never], fetchTimeoutMs: 50, failureTtlMs: 0 });
    const err = (await r.resolve(['env://A']).catch((e: unknown) => e)) as { code: string; message: string };
    expect(err.code).toBe('secret_unavailable');
    expect(err.message).toMatch(/timed out after 50 ms/);
    expect(signal?.aborted).toBe(true);
    // The single-flight entry is gone: the next request fetches again (and times out again).
    await expect(r.resolveOne('env://A') as Promise<string>).rejects.toMatchObject({ code: 'secret_unavailable' });
  });

  it('remembers a failure briefly, so a burst of requests costs one read', async () => {
    let calls = 0;
    const failing: SecretProvider = {
      scheme: 'env',
      fetch: async () => {
        calls++;
        throw new Error('nope');
      },
    };
    const r = createSecretResolver({ providers: [failing], failureTtlMs: 60_000 });
    for (let i = 0; i < 5; i++) await expect(r.resolve(['env://A'])).rejects.toMatchObject({ code: 'secret_unavailable' });
    expect(calls).toBe(1);
    r.clear();
    await expect(r.resolve(['env://A'])).rejects.toMatchObject({ code: 'secret_unavailable' });
    expect(calls).toBe(2);
    const r0 = createSecretResolver({ providers: [failing], failureTtlMs: 0 });
    await expect(r0.resolve(['env://A'])).rejects.toThrow();
    await expect(r0.resolve(['env://A'])).rejects.toThrow();
    expect(calls).toBe(4);
  });

  it('with the default config, a file secret is re-read after 30 s (the README lease), not 5 min', async () => {
    const defaults = defaultConfig();
    expect(defaults.secrets.default_ttl_ms).toBeUndefined();
    // A template's file ref: readable under secrets.file_roots only.
    const config = { ...defaults, secrets: { ...defaults.secrets, file_roots: [dir] } };
    const r = secretResolverFor(config, dir);
    expect(await r.resolveOne('file:ok')).toBe('v@lue-ü');
    await writeFile(join(dir, 'ok'), 'rotated\n');
    const realNow = performance.now.bind(performance);
    // lru-cache reads performance.now for leases: move it forward 31 s. Nothing real is waited
    // for, so no clock bound: a 5 min lease, or a lease read from another clock, keeps the old value.
    performance.now = () => realNow() + 31_000;
    try {
      expect(r.resolveOne('file:ok')).toBeInstanceOf(Promise);
      expect(await r.resolveOne('file:ok')).toBe('rotated');
    } finally {
      performance.now = realNow;
    }
  });
});
