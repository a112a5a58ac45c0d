/**
 * Listing a directory of a tree the loaders walk (templates, policies), read as a stream of
 * entries (`fs.opendir`) rather than whole (`readdir`), so a directory of millions of entries is
 * neither held in memory nor read to its end before the walk's file cap refuses it.
 */
import type { Dirent } from 'node:fs';
import { opendir } from 'node:fs/promises';

export interface DirectoryFilter {
  /** Entries the walk needs (sub-directories, links, files with a name it reads); the rest are dropped as they are read. */
  keep(entry: Dirent): boolean;
  /**
   * Kept entries that count as one more file for the walk's cap: a file it reads, or a link with
   * such a name (a ConfigMap mount shows every item as a link; one to a directory is counted
   * although it is none, which can only refuse a set sooner).
   */
  counts(entry: Dirent): boolean;
}

/**
 * The entries of `dir` that `filter.keep` keeps, in the order read (the caller sorts them), or
 * undefined as soon as more than `budget` of them count (the rest of the directory unread).
 * Errors of opening or reading the directory are thrown as they are (the caller names them).
 */
export async function readDirectoryEntries(dir: string, filter: DirectoryFilter, budget: number): Promise<Dirent[] | undefined> {
  const kept: Dirent[] = [];
  let counted = 0;
  // Leaving the loop early (return or throw) closes the directory.
  for await (const entry of await opendir(dir)) {
    if (!filter.keep(entry)) continue;
    if (filter.counts(entry) && ++counted > budget) return undefined;
    kept.push(entry);
  }
  return kept;
}
