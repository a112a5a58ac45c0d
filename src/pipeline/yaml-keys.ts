/**
 * Keys that are a list or a mapping (`? [a, b]`, `{ ? {k: v} : x }`). Warden reads YAML into plain
 * objects, whose keys are strings: the `yaml` library would turn such a key into its YAML text
 * (and print a process warning quoting it on stderr, which may hold a pasted secret). Nothing
 * Warden reads has such keys, so they are refused where they stand.
 */
import { isCollection, isPair, visit, type Document } from 'yaml';
import { keyPath } from './yaml-controls.js';

export interface YamlKeyProblem {
  /** Where the key begins: an offset into the text. */
  offset: number;
  /** Keys and sequence indexes down to the mapping that holds the key. */
  path: Array<string | number>;
  message: string;
}

export const COLLECTION_KEY_MESSAGE = 'a key must be a plain value (a word or a quoted string), not a list or a mapping';

/** Every key of `doc` that is a list or a mapping, in document order. */
export function yamlKeyProblems(doc: Document): YamlKeyProblem[] {
  const problems: YamlKeyProblem[] = [];
  visit(doc, {
    Pair(_key, pair, ancestors) {
      if (!isPair(pair) || !isCollection(pair.key) || !pair.key.range) return;
      // The pair's own mapping is the last ancestor: the path leads to it.
      problems.push({ offset: pair.key.range[0], path: keyPath([...ancestors]), message: COLLECTION_KEY_MESSAGE });
      return visit.SKIP; // what is inside the key is not looked at (its text is not repeated either)
    },
  });
  return problems;
}
