/**
 * Duplicate mapping keys, found in one pass. The `yaml` library's own check (`uniqueKeys: true`,
 * its default) compares each new key with every earlier key of its mapping, so a file with one
 * mapping of 40 000 keys took ~20 s to read. Every YAML text Warden reads whole (config,
 * templates, policy data and `policy eval` inputs) is parsed with `uniqueKeys: false` and
 * checked here instead, with a Set per mapping; the errors are the library's own (code
 * DUPLICATE_KEY, "Map keys must be unique", at the repeated key), so callers report them as before.
 * (`yaml.unmarshal` keeps OPA's behaviour, the last key wins, and is not checked.)
 */
import { isMap, isScalar, visit, type LineCounter, YAMLParseError, type Document } from 'yaml';

/** Where the key a DUPLICATE_KEY error repeats stands: set by addDuplicateKeyErrors given a line counter. */
export interface DuplicateKeyFirst {
  firstLinePos?: { line: number; col: number };
}

/** Line and column of the key that `e` (a DUPLICATE_KEY error of addDuplicateKeyErrors) repeats, if known. */
export function duplicateKeyFirst(e: unknown): { line: number; col: number } | undefined {
  return e instanceof YAMLParseError && e.code === 'DUPLICATE_KEY' ? (e as YAMLParseError & DuplicateKeyFirst).firstLinePos : undefined;
}

/** Options for parsing with this check in place of the library's. */
export const NO_LIBRARY_UNIQUE_KEYS = { uniqueKeys: false } as const;

/**
 * Adds a DUPLICATE_KEY error to `doc.errors` for each key that repeats an earlier key of its
 * mapping, keeping the errors in document order. Keys are equal as the library compares them:
 * scalars by value (`1` and `0x1` are equal, `1` and `"1"` are not), other keys only to
 * themselves. With `lineCounter`, each error gets its line and column as `prettyErrors` gives them.
 */
export function addDuplicateKeyErrors(doc: Document.Parsed | Document, lineCounter?: LineCounter): void {
  const found: YAMLParseError[] = [];
  visit(doc, {
    Map(_key, map) {
      if (!isMap(map)) return;
      /** Each key's value → where it first stands. */
      const seen = new Map<unknown, number>();
      for (const pair of map.items) {
        const key = pair.key;
        if (!isScalar(key)) continue;
        const value = key.value;
        // NaN is not equal to itself, in the library's check either.
        if (typeof value === 'number' && Number.isNaN(value)) continue;
        const offset = key.range?.[0] ?? 0;
        const first = seen.get(value);
        if (first === undefined) {
          seen.set(value, offset);
          continue;
        }
        const err = new YAMLParseError([offset, offset + 1], 'DUPLICATE_KEY', 'Map keys must be unique') as YAMLParseError & DuplicateKeyFirst;
        if (lineCounter) {
          const pos = lineCounter.linePos(offset);
          err.linePos = [pos, lineCounter.linePos(offset + 1)];
          err.firstLinePos = lineCounter.linePos(first);
          // Only the place: the library's pretty form also quotes the line, which may hold a secret.
          err.message += ` at line ${pos.line}, column ${pos.col}`;
        }
        found.push(err);
      }
    },
  });
  if (found.length === 0) return;
  doc.errors.push(...found);
  doc.errors.sort((a, b) => a.pos[0] - b.pos[0]);
}
