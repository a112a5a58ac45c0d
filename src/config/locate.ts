/**
 * Maps a key path (as zod reports it) back to a line and column in the YAML source, using the
 * node ranges `yaml` keeps and a LineCounter. A path that does not exist in the file (a missing
 * required key) points at the deepest ancestor that does.
 */
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';
import { escapeInvisible } from '../pipeline/identifiers.js';
import { findSecretLiteral, GENERATED_REASON, looksGenerated } from '../pipeline/secret-literals.js';

export type KeyPath = ReadonlyArray<PropertyKey>;

interface Position {
  line: number;
  column: number;
}

function keyMatches(key: unknown, segment: PropertyKey): boolean {
  const k = isScalar(key) ? key.value : key;
  return String(k) === String(segment);
}

/**
 * Each large mapping's keys by their text (the first of a repeated key, as a search from the top
 * finds): a config with thousands of problems (a data file passed as the config) had each one's
 * position searched from the top of its mapping, minutes of CPU for 90,000 unknown keys.
 */
const keyIndexes = new WeakMap<YAMLMap, Map<string, Pair>>();
const INDEXED_FROM = 32;

function pairFor(map: YAMLMap, segment: PropertyKey): Pair | undefined {
  if (map.items.length < INDEXED_FROM) return map.items.find((p) => keyMatches(p.key, segment));
  let index = keyIndexes.get(map);
  if (!index) {
    index = new Map();
    for (const pair of map.items) {
      const text = String(isScalar(pair.key) ? pair.key.value : pair.key);
      if (!index.has(text)) index.set(text, pair);
    }
    keyIndexes.set(map, index);
  }
  return index.get(String(segment));
}

/**
 * Finds the node for `path`. For a map entry, the key's range is used (that is where a reader
 * looks); for a sequence item, the item's.
 */
export function locate(doc: Document, counter: LineCounter, path: KeyPath): Position | undefined {
  let node: unknown = doc.contents;
  let range: [number, number, number] | undefined | null = (doc.contents as Node | null)?.range;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = pairFor(node, segment);
      if (!pair) break;
      range = (pair.key as Node | null)?.range ?? range;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)] as Node | undefined;
      if (!item) break;
      range = item.range ?? range;
      node = item;
    } else {
      break;
    }
  }
  if (!range) return undefined;
  const pos = counter.linePos(range[0]);
  return { line: pos.line, column: pos.col };
}

/**
 * The key path of the mapping key that starts at `offset` (a duplicate key the YAML check found
 * there), and where the key it repeats starts. Keys compare as the duplicate check compares them:
 * scalars by value. Undefined when no key starts there.
 */
export function duplicateKeyAt(doc: Document, offset: number): { path: PropertyKey[]; firstOffset: number } | undefined {
  const walk = (node: unknown, at: PropertyKey[]): { path: PropertyKey[]; firstOffset: number } | undefined => {
    if (isMap(node)) {
      const seen = new Map<unknown, number>();
      for (const pair of node.items) {
        const key = pair.key;
        if (!isScalar(key)) continue;
        const start = key.range?.[0];
        if (start === offset) {
          const first = seen.get(key.value);
          return first === undefined ? undefined : { path: [...at, String(key.value)], firstOffset: first };
        }
        if (start !== undefined && !seen.has(key.value)) seen.set(key.value, start);
        const found = walk(pair.value, [...at, String(key.value)]);
        if (found) return found;
      }
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) {
        const found = walk(item, [...at, i]);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk(doc.contents, []);
}

/** A key, quoted, with every invisible character written as an escape, so the message shows it. */
function quoteKey(key: string): string {
  // JSON.stringify escapes C0 controls; C1 controls, format characters and separators it leaves.
  return escapeInvisible(JSON.stringify(key));
}

/**
 * A config name (a key, a model's provider) as a message may show it: quoted, or described when it
 * looks like a credential. A secret pasted where a name goes (`{ api_key: env://X, sk-proj-… }`
 * makes the literal a key) must not be repeated on stderr and in the orchestrator's logs.
 */
export function shownName(name: string): string {
  const kind = findSecretLiteral(name);
  if (kind !== undefined) return `(name not shown: it looks like a literal secret (${kind}))`;
  // A secret of no known shape (an Azure key's 32 hex digits, a random password) too: a name
  // has words, not a long run of mixed letters and digits.
  return looksGenerated(name) ? `(name not shown: ${GENERATED_REASON})` : quoteKey(name);
}

/** Renders a key path as `a.b[0].c`; keys that are not plain words are quoted: `models["gpt-4.1"]`. */
export function formatKeyPath(path: KeyPath): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(seg)) && findSecretLiteral(String(seg)) === undefined && !looksGenerated(String(seg))) out += out ? `.${String(seg)}` : String(seg);
    else out += `[${shownName(String(seg))}]`;
  }
  return out;
}
