/**
 * The one directory walk of the template and policy loaders (src/pipeline/tree-walk.ts), on real
 * trees in a temporary directory: what it lists and in which order, links, loops, the cap, and
 * that every problem goes to the caller's rule (each loader's own errors are tested with it).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Stats } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { walkTree, type TreeWalkRules, type TreeWalkState } from '../../src/pipeline/tree-walk.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-tree-walk-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

class Refused extends Error {}

/** Rules that read `*.txt` and record every call; `unreadable` and `notRegular` skip unless `strict`. */
function recording(strict = false) {
  const calls: string[] = [];
  const rules: TreeWalkRules = {
    wanted: (name) => name.endsWith('.txt'),
    tooMany: (d, root) => new Refused(`tooMany ${relative(dir, d) || '.'} under ${relative(dir, root) || '.'}`),
    unreadableDir: (d, err) => new Refused(`unreadableDir ${relative(dir, d)} ${(err as NodeJS.ErrnoException).code}`),
    unreadable: (p, err) => {
      calls.push(`unreadable ${relative(dir, p)} ${(err as NodeJS.ErrnoException).code}`);
      if (strict) throw new Refused('unreadable');
    },
    notRegular: (p, st: Stats) => {
      calls.push(`notRegular ${relative(dir, p)} fifo=${st.isFIFO()}`);
      if (strict) throw new Refused('notRegular');
    },
    loop: (d) => void calls.push(`loop ${relative(dir, d)}`),
  };
  return { rules, calls };
}

function state(limit = 100, out: string[] = []): TreeWalkState {
  return { out, limit, read: new Set() };
}

async function listed(root: string, rules: TreeWalkRules, s = state()): Promise<string[]> {
  await walkTree(root, rules, s);
  return s.out.map((p) => relative(dir, p));
}

function touch(...parts: string[]): void {
  mkdirSync(join(dir, ...parts.slice(0, -1)), { recursive: true });
  writeFileSync(join(dir, ...parts), 'x');
}

describe('walkTree', () => {
  it('lists the wanted files depth first, in code-unit order of the names (not the locale\'s), skipping dot-entries and other names', async () => {
    for (const f of [['b.txt'], ['B.txt'], ['a', 'z.txt'], ['a', 'Z.txt'], ['_.txt'], ['é.txt'], ['.hidden.txt'], ['.dot', 'in.txt'], ['notes.md'], ['C', 'x.txt']]) touch(...f);
    const { rules, calls } = recording();
    // 'B' < 'C' < '_' < 'a' < 'b' < 'é' in UTF-16 code units; a locale's collation puts a and A together.
    expect(await listed(dir, rules)).toEqual(['B.txt', 'C/x.txt', '_.txt', 'a/Z.txt', 'a/z.txt', 'b.txt', 'é.txt']);
    expect(calls).toEqual([]);
  });

  it('follows links to files and directories, and reads a directory once however many links lead to it', async () => {
    touch('real', 'one.txt');
    touch('file.txt');
    symlinkSync(join(dir, 'real'), join(dir, 'link1'));
    symlinkSync(join(dir, 'real'), join(dir, 'link2'));
    symlinkSync(join(dir, 'file.txt'), join(dir, 'alias.txt'));
    // A link to a directory is followed whatever its name; a link to a file only with a wanted name.
    symlinkSync(join(dir, 'file.txt'), join(dir, 'alias.md'));
    const { rules, calls } = recording();
    expect(await listed(dir, rules)).toEqual(['alias.txt', 'file.txt', 'link1/one.txt']);
    expect(calls).toEqual([]);
  });

  it('tells a link loop to rules.loop, and without it skips the loop without a word', async () => {
    touch('top', 'a.txt');
    symlinkSync(join(dir, 'top'), join(dir, 'top', 'again'));
    const { rules, calls } = recording();
    expect(await listed(join(dir, 'top'), rules)).toEqual(['top/a.txt']);
    expect(calls).toEqual(['loop top/again']);
    const { loop: _loop, ...silent } = rules;
    const quiet = recording();
    expect(await listed(join(dir, 'top'), { ...silent, unreadable: quiet.rules.unreadable })).toEqual(['top/a.txt']);
    expect(quiet.calls).toEqual([]);
  });

  it('a directory reached twice but not below itself is no loop: read once, and not told', async () => {
    touch('shared', 's.txt');
    mkdirSync(join(dir, 'x'));
    symlinkSync(join(dir, 'shared'), join(dir, 'x', 'via'));
    const { rules, calls } = recording();
    expect(await listed(dir, rules)).toEqual(['shared/s.txt']);
    expect(calls).toEqual([]);
  });

  it('hands a link it cannot follow and a wanted name that is no regular file to the rules, which skip or throw', async () => {
    touch('ok.txt');
    symlinkSync(join(dir, 'gone'), join(dir, 'dangling'));
    execFileSync('mkfifo', [join(dir, 'pipe.txt')]);
    execFileSync('mkfifo', [join(dir, 'pipe.md')]); // not a wanted name: never looked at
    const skipping = recording();
    expect(await listed(dir, skipping.rules)).toEqual(['ok.txt']);
    expect(skipping.calls).toEqual(['unreadable dangling ENOENT', 'notRegular pipe.txt fifo=true']);
    const strict = recording(true);
    await expect(walkTree(dir, strict.rules, state())).rejects.toThrow('unreadable');
    rmSync(join(dir, 'dangling'));
    await expect(walkTree(dir, recording(true).rules, state())).rejects.toThrow('notRegular');
  });

  it('a directory that cannot be resolved or listed is rules.unreadableDir, named by itself', async () => {
    const { rules } = recording();
    await expect(walkTree(join(dir, 'none'), rules, state())).rejects.toThrow('unreadableDir none ENOENT');
  });

  it('holds `out` to the limit, files already in it included; a link with a wanted name counts while listing', async () => {
    for (const n of ['a.txt', 'b.txt', 'c.txt']) touch('d', n);
    const { rules } = recording();
    expect(await listed(join(dir, 'd'), rules, state(3))).toEqual(['d/a.txt', 'd/b.txt', 'd/c.txt']);
    // Two already found elsewhere: the listing of d is refused before it is read to its end.
    await expect(walkTree(join(dir, 'd'), rules, state(4, ['x', 'y']))).rejects.toThrow('tooMany d under d');
    // Spread over directories, each under the cap: refused at the file past it, in its directory.
    touch('e', 'one.txt');
    touch('e', 'sub', 'two.txt');
    await expect(walkTree(join(dir, 'e'), rules, state(1))).rejects.toThrow('tooMany e/sub under e');
    // Links count as they are listed, even before they are followed.
    mkdirSync(join(dir, 'links'));
    for (const n of ['l1.txt', 'l2.txt']) symlinkSync(join(dir, 'd', 'a.txt'), join(dir, 'links', n));
    await expect(walkTree(join(dir, 'links'), rules, state(1))).rejects.toThrow('tooMany links under links');
  });

  it('a `read` set shared by the walks of several roots reads each directory once across them', async () => {
    touch('p', 'q', 'f.txt');
    const { rules } = recording();
    const shared = state();
    await walkTree(join(dir, 'p'), rules, shared);
    await walkTree(join(dir, 'p', 'q'), rules, shared);
    expect(shared.out.map((p) => relative(dir, p))).toEqual(['p/q/f.txt']);
    // Apart, each root reads it.
    expect(await listed(join(dir, 'p', 'q'), rules)).toEqual(['p/q/f.txt']);
  });
});
