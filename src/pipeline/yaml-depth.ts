/**
 * A bound on how deeply a YAML text nests, read without parsing it. The `yaml` parser recurses
 * once per level: a few thousand levels (`[[[[…`, `- - - - …`) overflow the stack — which it
 * reports as an ordinary document error, so a policy's `yaml.is_valid` said `false` — and a few
 * thousand more exhaust memory in V8's regexp compiler and abort the process. Every YAML text
 * Warden parses (config, templates, policy data and inputs, `yaml.unmarshal`) is checked first.
 *
 * The bound adds the deepest flow nesting (`[`/`{` not yet closed), the widest indentation and
 * the most levels one line opens (its leading `- `/`? `/`: ` indicators, plus one for a `key: `):
 * the true depth never exceeds it. Brackets inside quoted strings count too; real documents stay
 * far below the limit all the same.
 */

import { isMap, isScalar, isSeq, parseAllDocuments, type Node } from 'yaml';
import { linePosition } from './text-file.js';

/** The deepest YAML Warden parses (a bound as computed here, so a little generous). */
export const MAX_YAML_DEPTH = 256;

export function yamlDepthBound(text: string): number {
  return scanDepth(text, Infinity).bound;
}

/**
 * The bound, and the offset of the first character at which it goes past `limit` (the bound only
 * grows as the text is read, so everything before that offset nests at most `limit` levels).
 * The scan stops there.
 */
function scanDepth(text: string, limit: number): { bound: number; exceededAt?: number } {
  let flow = 0;
  let maxFlow = 0;
  let maxIndent = 0;
  let maxLine = 0;
  let i = 0;
  const n = text.length;
  // The bound as it stands with the current line's indentation and levels counted in.
  const over = (indent: number, line: number): boolean => maxFlow + Math.max(maxIndent, indent) + Math.max(maxLine, line) > limit;
  while (i < n) {
    // A line: its indentation, the block indicators that open it (`- - ? x`), then one more level
    // for a `key: ` anywhere in it (a line holds at most one block mapping level of its own).
    let indent = 0;
    while (i < n && text.charCodeAt(i) === 32) {
      indent++;
      if (over(indent, 0)) return { bound: limit + 1, exceededAt: i };
      i++;
    }
    let levels = 0;
    while (i + 1 < n && isIndicator(text.charCodeAt(i)) && text.charCodeAt(i + 1) === 32) {
      levels++;
      if (over(indent, levels)) return { bound: limit + 1, exceededAt: i };
      i += 2;
      while (i < n && text.charCodeAt(i) === 32) i++;
    }
    let key = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 || c === 13) break;
      if (c === 91 || c === 123) {
        if (++flow > maxFlow) maxFlow = flow;
      } else if (c === 93 || c === 125) {
        if (flow > 0) flow--;
      } else if (c === 58 && key === 0 && (i + 1 === n || text.charCodeAt(i + 1) === 32)) key = 1;
      else continue;
      if (over(indent, levels + key)) return { bound: limit + 1, exceededAt: i };
    }
    i++;
    if (indent > maxIndent) maxIndent = indent;
    if (levels + key > maxLine) maxLine = levels + key;
  }
  return { bound: maxFlow + maxIndent + maxLine };
}

/** `-`, `?` and `:`: the block indicators when a space follows. */
function isIndicator(c: number): boolean {
  return c === 45 || c === 63 || c === 58;
}

/** True when `text` may nest deeper than `limit` levels (see yamlDepthBound). */
export function yamlTooDeep(text: string, limit = MAX_YAML_DEPTH): boolean {
  return scanDepth(text, limit).exceededAt !== undefined;
}

/** Where a text that nests too deep goes past the limit, for an error that says `file:line:col: key.path:`. */
export interface YamlDepthProblem {
  line: number;
  column: number;
  /** The keys (and sequence indexes) down to the last key above that point; empty at the top. */
  path: Array<string | number>;
}

/** Key paths longer than this are cut: the line and column say where, the path says under what. */
const MAX_PATH_SHOWN = 16;

/**
 * Undefined when `text` nests at most `limit` levels (by the bound); else where the bound goes
 * past the limit and the key path there. The path comes from parsing the text before that point,
 * which nests at most `limit` levels, so the parser survives it; the value being parsed is cut
 * short there, which the library reports as errors that are not looked at.
 */
export function yamlDepthProblem(text: string, limit = MAX_YAML_DEPTH): YamlDepthProblem | undefined {
  const { exceededAt } = scanDepth(text, limit);
  if (exceededAt === undefined) return undefined;
  const { line, column } = linePosition(text, exceededAt);
  const docs = parseAllDocuments(text.slice(0, exceededAt), { logLevel: 'silent' });
  const last = Array.isArray(docs) ? docs[docs.length - 1] : undefined;
  return { line, column, path: last ? keysDownTo(last.contents, exceededAt) : [] };
}

/** The keys and indexes down to the last key that starts before `offset`, at most MAX_PATH_SHOWN. */
function keysDownTo(top: unknown, offset: number): Array<string | number> {
  const path: Array<string | number> = [];
  let lastKey = 0;
  let node = top;
  while (path.length < MAX_PATH_SHOWN) {
    if (isMap(node)) {
      const pair = node.items.findLast((p) => (p.key as Node | null)?.range?.[0] !== undefined && (p.key as Node).range![0] < offset);
      if (!pair || !isScalar(pair.key)) break;
      path.push(String(pair.key.value));
      lastKey = path.length;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findLastIndex((item) => ((item as Node | null)?.range?.[0] ?? Infinity) < offset);
      if (index < 0) break;
      path.push(index);
      node = node.items[index];
    } else break;
  }
  // Indexes below the last key are a run of `[0]`s into the value that is too deep: noise.
  return path.slice(0, lastKey);
}
