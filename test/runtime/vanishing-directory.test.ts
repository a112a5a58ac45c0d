/**
 * A sub-directory removed while a load or a reload scan walks the tree (an rsync or blue/green
 * swap, `rm -r` during a reload): the race is made deterministic by removing the directory right
 * after its parent's listing came back, with the real file system, so the walk meets a real
 * ENOENT where it goes down. The load must be a clean rejected change naming that directory (the
 * next reload reads the tree as it is then), the reload scan a clean change; never an unhandled
 * error.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

/** When the listing of `after` comes back (read to its end), `victim` is removed (once). */
const vanish = vi.hoisted(() => ({ after: '', victim: '', listed: [] as string[] }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const { rmSync: rm } = await import('node:fs');
  const readdir = (async (path: string, options?: unknown) => {
    vanish.listed.push(String(path));
    const entries = await (real.readdir as (p: string, o?: unknown) => Promise<unknown>)(path, options);
    if (vanish.victim !== '' && String(path) === vanish.after) {
      rm(vanish.victim, { recursive: true, force: true });
      vanish.victim = '';
    }
    return entries;
  }) as typeof real.readdir;
  // The loaders read a directory as a stream (opendir): `victim` goes once `after` is read to its end.
  const opendir = (async (path: string, options?: unknown) => {
    vanish.listed.push(String(path));
    const dir = await (real.opendir as (p: string, o?: unknown) => Promise<import('node:fs').Dir>)(path, options);
    if (vanish.victim === '' || String(path) !== vanish.after) return dir;
    const victim = vanish.victim;
    vanish.victim = '';
    return {
      path: dir.path,
      close: () => dir.close(),
      async *[Symbol.asyncIterator]() {
        for await (const entry of dir) yield entry;
        rm(victim, { recursive: true, force: true });
      },
    };
  }) as typeof real.opendir;
  return { ...real, default: { ...real, readdir, opendir }, readdir, opendir };
});

const { readTemplates } = await import('../../src/templates/loader.js');
const { loadRegoPolicy, RegoError } = await import('../../src/policy/rego/index.js');
const { createRegoPolicyEngine } = await import('../../src/policy/rego-engine.js');
const { describeLoadError } = await import('../../src/runtime/components.js');
const { treeScanner } = await import('../../src/runtime/reload.js');
const { isWardenError } = await import('../../src/pipeline/errors.js');

let root: string | undefined;
afterEach(() => {
  vanish.victim = '';
  if (root) rmSync(root, { recursive: true, force: true });
});

/** `top/` holding `sub/` (a file in each); `sub` vanishes once `top`'s listing is back. */
function tree(file: (dir: string, name: string) => void): { top: string; sub: string } {
  root = mkdtempSync(join(tmpdir(), 'warden-vanish-'));
  const top = join(root, 'top');
  const sub = join(top, 'sub');
  mkdirSync(sub, { recursive: true });
  file(top, 'a');
  file(sub, 'b');
  return { top, sub };
}

const TEMPLATE = (id: string) => `id: demo/${id}\nversion: 1\nowner: t@example.com\nsensitivity: internal\ndescription: d\nmodels: [echo]\nmessages:\n  - { role: user, content: hi }\n`;

describe('a sub-directory removed while the tree is walked', () => {
  it('templates: the load is rejected, naming the sub-directory that went away (not the configured path)', async () => {
    const { top, sub } = tree((dir, name) => writeFileSync(join(dir, `${name}.yaml`), TEMPLATE(name)));
    expect((await readTemplates([top])).templates.map((t) => t.id)).toEqual(['demo/a', 'demo/b']);
    Object.assign(vanish, { after: top, victim: sub });
    const err: unknown = await readTemplates([top]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isWardenError(err)).toBe(true);
    expect(describeLoadError(err)).toEqual({ kind: 'templates', problems: [`${sub}: cannot read templates directory (ENOENT)`] });
    // The next load reads the tree as it is now.
    expect((await readTemplates([top])).templates.map((t) => t.id)).toEqual(['demo/a']);
  });

  it('policies: the load is a RegoError naming the sub-directory, and a rejected change in serve, never a bare ENOENT', async () => {
    const { top, sub } = tree((dir, name) => writeFileSync(join(dir, `${name}.rego`), `package ${name}\nallow := true\n`));
    Object.assign(vanish, { after: top, victim: sub });
    const err: unknown = await loadRegoPolicy([top]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RegoError);
    expect((err as InstanceType<typeof RegoError>).location?.file).toBe(sub);
    expect((err as Error).message).toBe('cannot read directory (ENOENT)');

    // What serve's start and reload see: a policy error at the directory, not `cannot load policies from top (ENOENT)`.
    mkdirSync(sub);
    writeFileSync(join(sub, 'b.rego'), 'package b\nallow := true\n');
    Object.assign(vanish, { after: top, victim: sub });
    const served: unknown = await createRegoPolicyEngine({ paths: [top], entrypoint: 'a/allow' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(describeLoadError(served)).toEqual({ kind: 'policies', problems: [`${sub}: rego_compile_error: cannot read directory (ENOENT)`] });
  });

  it('the reload scan: a clean change (the fingerprint moves on), never a rejection', async () => {
    const { top, sub } = tree((dir, name) => writeFileSync(join(dir, `${name}.rego`), `package ${name}\n`));
    const scan = treeScanner([top]);
    const before = await scan();
    Object.assign(vanish, { after: top, victim: sub });
    const during = await scan();
    expect(during.fingerprint).not.toBe(before.fingerprint);
    expect([...during.dirs.values()].map((d) => d.path)).toContain(top);
    const after = await scan();
    expect(after.fingerprint).not.toBe(before.fingerprint);
  });
});

/**
 * A directory reached again through another link is not listed again: before, each link listed
 * it whole before the walk saw it had been read (500 links to a 5,000-entry directory: 25× the
 * time of one).
 */
describe('a directory reached through several links', () => {
  for (const [kind, name, load] of [
    ['templates', 'a.yaml', (dir: string) => readTemplates([dir])],
    ['policies', 'a.rego', (dir: string) => loadRegoPolicy([dir])],
  ] as const) {
    it(`${kind}: is listed once`, async () => {
      root = mkdtempSync(join(tmpdir(), 'warden-links-'));
      const shared = join(root, 'top', 'shared');
      mkdirSync(shared, { recursive: true });
      writeFileSync(join(shared, name), name.endsWith('.yaml') ? TEMPLATE('a') : 'package a\nallow := true\n');
      for (const l of ['l1', 'l2', 'l3']) symlinkSync(shared, join(root, 'top', l));
      vanish.listed = [];
      await load(join(root, 'top'));
      expect(vanish.listed.filter((p) => p.startsWith(join(root!, 'top'))).length).toBe(2); // top, then shared once
    });
  }
});

/**
 * In the running sidecar, a reload that meets a sub-directory removed mid-read is no rejected
 * change: it is put off (an info line, no error, no reload error counted) and read again shortly,
 * and that read applies the tree as it is then. Before, a deploy tool's temporary directory made
 * an error line "reload rejected" (and test/e2e/reload.test.ts failed now and then on it).
 */
describe('the running sidecar, when a reload meets a directory removed mid-read', () => {
  it('puts the reload off and reads the tree again, with no error logged', async () => {
    const { startWarden, eventually } = await import('../e2e/helpers/warden.js');
    const { startUpstream } = await import('../e2e/helpers/upstream.js');
    const upstream = await startUpstream();
    const w = await startWarden({ upstreamUrl: upstream.url, watch: false });
    try {
      const templates = join(w.dir, 'templates');
      const staging = join(templates, 'staging');
      mkdirSync(join(staging, 'deeper'), { recursive: true });
      const from = w.logs.length;
      Object.assign(vanish, { after: templates, victim: staging });
      expect(await w.runtime.reload('SIGHUP')).toBe(false);
      const lines = () => w.logs.slice(from).map((l) => JSON.parse(l) as { level: string | number; msg: string; problems?: string[] });
      expect(lines().filter((l) => l.msg.startsWith('reload put off'))).toMatchObject([{ problems: [`${staging}: cannot read templates directory (ENOENT)`] }]);
      await eventually(() => lines().some((l) => l.msg === 'reload applied'));
      expect(lines().filter((l) => l.level === 'error' || l.level === 50 || l.msg.startsWith('reload rejected'))).toEqual([]);
      const metrics = await (await fetch(`${w.addresses.admin}/metrics`)).text();
      expect(metrics).toMatch(/^warden_reload_total\{[^}]*kind="templates"[^}]*outcome="error"[^}]*\} 0$/m);
    } finally {
      await w.close();
      await upstream.close();
    }
  }, 20_000);
});
