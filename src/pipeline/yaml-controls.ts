/**
 * Control characters written as YAML escapes (`"\0"`, `"\x00"`, `"\e"`): the file itself is plain
 * text (pipeline/text-file.ts refuses a raw one), but the value is not. Nothing in a config or a
 * template means a NUL or an ESC (an `issuer` holding one fails every token; a prompt holding one
 * goes to the model as is), so such a value is refused as a raw one would be. Tab, line feed and
 * carriage return escapes stay allowed.
 */
import { isPair, isScalar, isSeq, visit, type Document, type Node, type Pair } from 'yaml';
import { controlCharacterMessage, forbiddenControl } from './text-file.js';

export interface YamlControlProblem {
  /** Where the scalar holding it begins: an offset into the text. */
  offset: number;
  /** Keys and sequence indexes down to the scalar (a key holding one: down to that key). */
  path: Array<string | number>;
  message: string;
}

/** Every scalar (key or value) of `doc` that holds a control character, in document order. */
export function yamlControlProblems(doc: Document): YamlControlProblem[] {
  const problems: YamlControlProblem[] = [];
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (typeof node.value !== 'string' || !node.range) return;
      const char = forbiddenControl(node.value);
      if (char === undefined) return;
      const path = keyPath([...ancestors, node]);
      if (key === 'key') path.push(node.value);
      problems.push({ offset: node.range[0], path, message: controlCharacterMessage(char, 'this one is written as an escape') });
    },
  });
  return problems;
}

/** The keys and indexes that lead along `chain` (the document, then nodes and pairs down to one). */
export function keyPath(chain: ReadonlyArray<Document | Node | Pair>): Array<string | number> {
  const path: Array<string | number> = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    const here = chain[i];
    const next = chain[i + 1];
    if (isSeq(here)) path.push(here.items.indexOf(next as Node));
    // Below a pair only its value continues the path (its key is handled by the caller).
    else if (isPair(here) && next === here.value) path.push(isScalar(here.key) ? String(here.key.value) : '?');
  }
  return path;
}
