/**
 * Mapping keys of the config file that would not name what they say. The config is read into
 * plain objects, whose keys are strings: a key YAML reads as a number, true/false or null becomes
 * that value's text, so a model written `1.10:` is configured as "1.1" (`2.0` as "2", `0x10` as
 * "16", `~` as ""), and requests for the name as written find nothing. And a number key and a
 * quoted one that read alike (`1:` and `"1":`) are different YAML keys, so the duplicate check
 * lets them through, yet they end as one property, the last one winning without a word. Both are
 * refused where they stand, the key's text not repeated (it may be a pasted value).
 */
import { isMap, isPair, isScalar, Scalar, visit, type Document, type LineCounter } from 'yaml';
import { keyPath } from '../pipeline/yaml-controls.js';

export interface KeyNameProblem {
  /** Where the key begins: an offset into the text. */
  offset: number;
  /** Keys and sequence indexes down to the key itself (its name as the config reads it last). */
  path: Array<string | number>;
  message: string;
}

export const NOT_AS_WRITTEN_MESSAGE =
  'a key written as a number, true/false or null is read as other text (1.10 as "1.1", 0x10 as "16", ~ as ""): quote it to keep it as written';

/** The property name the yaml library gives a scalar key's value in a plain object. */
function propertyName(value: unknown): string {
  return value === null ? '' : String(value);
}

/** Every such key of `doc` (the config's text `text`), in document order. */
export function configKeyNameProblems(doc: Document, text: string, counter: LineCounter): KeyNameProblem[] {
  const problems: KeyNameProblem[] = [];
  visit(doc, {
    Map(_key, map, ancestors) {
      if (!isMap(map)) return;
      /** Each property name → the value of the key that first gave it, and where that key starts. */
      const names = new Map<string, { value: unknown; offset: number }>();
      const at = keyPath([...ancestors, map]);
      for (const pair of map.items) {
        if (!isPair(pair) || !isScalar(pair.key) || !pair.key.range) continue;
        const { value, range, type } = pair.key;
        const name = propertyName(value);
        const offset = range[0];
        // A plain key only: a quoted one is a string, unless a tag says otherwise on purpose.
        if (typeof value !== 'string' && type === Scalar.PLAIN && text.slice(range[0], range[1]) !== name) {
          problems.push({ offset, path: [...at, name], message: NOT_AS_WRITTEN_MESSAGE });
          continue;
        }
        const first = names.get(name);
        if (first === undefined) {
          names.set(name, { value, offset });
          continue;
        }
        // Keys equal as values are the YAML duplicate check's (load.ts): reported there.
        if (first.value === value) continue;
        const pos = counter.linePos(first.offset);
        problems.push({
          offset,
          path: [...at, name],
          message: `duplicate key: already set at line ${pos.line}, column ${pos.col}, written another way (1 and "1" name one key; keys must be unique)`,
        });
      }
    },
  });
  return problems;
}
