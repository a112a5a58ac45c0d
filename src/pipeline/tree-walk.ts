/**
 * The walk of a directory tree the loaders read (templates, policies and data): the files with the
 * names a loader reads, in a stable order, with what Kubernetes mounts need and what a hostile or
 * broken tree must not do. Each loader keeps its own errors, messages and limits (TreeWalkRules).
 *
 * - Symlinks are followed, to directories too: a ConfigMap whose items have paths in a
 *   sub-directory is mounted as `sub -> ..data/sub`, and skipping it would drop its files.
 * - Each real directory is read once, however many links lead to it: links in a chain would
 *   otherwise make the walk exponential, and a link loop endless.
 * - Dot-entries are skipped (editor swap files, a ConfigMap's `..data` and timestamped
 *   directories, which the links above lead into).
 * - Directories are listed as streams (dir-entries.ts), and the files found count towards the
 *   walk's cap as they are listed: a directory of a great many is refused before it is read to
 *   its end.
 * - Entries are visited in UTF-16 code-unit order of their names: the same order on every machine
 *   and in every locale.
 */
import type { Dirent, Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readDirectoryEntries, type DirectoryFilter } from './dir-entries.js';

/** What one loader reads, and what it says when something is wrong. */
export interface TreeWalkRules {
  /** Whether a file (or a link) with this name is one the loader reads. */
  wanted(name: string): boolean;
  /** The error for a walk that found more files than its limit: in `dir`, under the walk's `root`. */
  tooMany(dir: string, root: string): Error;
  /** The error for a directory that cannot be resolved or listed (one removed while the tree was read). */
  unreadableDir(dir: string, err: unknown): Error;
  /** A link that cannot be followed, or an entry that cannot be stat'ed: throw to fail the walk, return to skip it. */
  unreadable(path: string, err: unknown): void;
  /** A wanted name that is not a regular file once followed (a FIFO, a socket, a device): throw, or return to skip it. */
  notRegular(path: string, st: Stats): void;
  /** A directory reached again below itself (a link loop), told before it is skipped; unset: skipped without a word. */
  loop?(dir: string): void;
}

/** What the walk fills and is held to; a caller may share it between the walks of several roots. */
export interface TreeWalkState {
  /** The files found, in walk order; the walk appends to it. */
  readonly out: string[];
  /** The most entries `out` may hold: one more fails the walk (rules.tooMany). */
  readonly limit: number;
  /** Real paths of the directories read so far: each is read once. */
  readonly read: Set<string>;
}

/** Appends to `state.out` the wanted files under the directory `root` (see the file's comment). */
export async function walkTree(root: string, rules: TreeWalkRules, state: TreeWalkState): Promise<void> {
  const filter: DirectoryFilter = {
    keep: (e) => !e.name.startsWith('.') && (e.isDirectory() || e.isSymbolicLink() || rules.wanted(e.name)),
    // A link with a wanted name counts too: a ConfigMap mount shows every item as one.
    counts: (e) => (e.isFile() || e.isSymbolicLink()) && rules.wanted(e.name),
  };
  /** Real paths of the directories on the way down from `root`: one reached again is a loop. */
  const ancestors = new Set<string>();
  const push = (file: string, dir: string): void => {
    state.out.push(file);
    if (state.out.length > state.limit) throw rules.tooMany(dir, root);
  };

  async function walkDir(dir: string): Promise<void> {
    // Named by itself, not by the path it is under: a sub-directory removed or replaced while the
    // tree was read fails the walk there.
    let real: string;
    try {
      real = await realpath(dir);
    } catch (err) {
      throw rules.unreadableDir(dir, err);
    }
    if (ancestors.has(real) && rules.loop) {
      rules.loop(dir);
      return;
    }
    // Reached again through another link: already read, and not listed again.
    if (state.read.has(real)) return;
    state.read.add(real);
    let entries: Dirent[] | undefined;
    try {
      entries = await readDirectoryEntries(dir, filter, state.limit - state.out.length);
    } catch (err) {
      throw rules.unreadableDir(dir, err);
    }
    if (entries === undefined) throw rules.tooMany(dir, root);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    ancestors.add(real);
    try {
      for (const e of entries) await visit(dir, e);
    } finally {
      ancestors.delete(real);
    }
  }

  async function visit(dir: string, e: Dirent): Promise<void> {
    const path = join(dir, e.name);
    if (e.isDirectory()) return walkDir(path);
    const wanted = rules.wanted(e.name);
    if (e.isFile()) {
      if (wanted) push(path, dir);
      return;
    }
    if (!e.isSymbolicLink() && !wanted) return;
    let st: Stats;
    try {
      st = await stat(path); // follows a symlink
    } catch (err) {
      rules.unreadable(path, err);
      return;
    }
    if (st.isDirectory()) await walkDir(path);
    else if (!wanted) return;
    else if (st.isFile()) push(path, dir);
    else rules.notRegular(path, st);
  }

  await walkDir(root);
}
