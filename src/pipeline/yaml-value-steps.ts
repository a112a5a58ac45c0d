/**
 * parseYamlValue's result (yaml-tags.ts) read a piece at a time (time-slices.ts). The `yaml`
 * library reads about 0.2-0.4 MB/s on a loaded machine: a policy data file of 1.6 MB held the
 * event loop for 6-8 s in one parseDocument call, and a reload's deadline could not stop it.
 *
 * The library's own stages are generators: the lexer and parser are run a few hundred tokens at
 * a time, giving the document's syntax tree (CST). Composing that tree into a document is one
 * call, so a large block mapping or sequence is composed a batch of its items at a time, each
 * batch as a document of its own (the CST keeps the offsets into the whole text), checked as
 * parseYamlValue checks a document, and turned into JS; an item whose value is itself large is
 * composed with a stand-in value, its own value then read the same way. Keys repeated across
 * batches are found by comparing the batches' keys as the one-pass check does.
 *
 * Only clean data gets a value: a syntax error, a repeated key, a tag or key problem, an anchor or
 * alias (an alias may refer to another batch), directives, several documents: `undefined`, and
 * the caller reads the whole text with parseYamlValue, for the error it has always given, at its
 * place (or for the value, where anchors are used).
 */
import { randomUUID } from 'node:crypto';
import { Composer, isAlias, isMap, isNode, isScalar, isSeq, Lexer, LineCounter, Parser, visit, type CST, type Document } from 'yaml';
import type { Steps } from './time-slices.js';
import { addDuplicateKeyErrors, NO_LIBRARY_UNIQUE_KEYS } from './yaml-unique-keys.js';
import { yamlKeyProblems } from './yaml-keys.js';
import { yamlTagProblems, YAML_TAG_OPTIONS } from './yaml-tags.js';

/** Tokens lexed and parsed per step. */
const TOKENS_PER_STEP = 512;

/** Items (of collections, nested ones counted) composed in one batch: about a millisecond's work. */
const BATCH_ITEMS = 256;

const OPTIONS = { ...YAML_TAG_OPTIONS, ...NO_LIBRARY_UNIQUE_KEYS };

/** Stand-ins for large values (see valueOf): random, so that no file holds one. */
const STAND_IN = `warden stand-in ${randomUUID()}`;
let standIns = 0;

/** Why the text was not read here (see the file's comment). */
class NotClean extends Error {}

const notClean = (): never => {
  throw new NotClean();
};

type Block = CST.BlockMap | CST.BlockSequence;
type Item = Block['items'][number];

/** The value of one YAML document, as parseYamlValue gives it; undefined: see the file's comment. */
export function* yamlValueSteps(text: string, batchItems = BATCH_ITEMS): Steps<unknown> {
  const lineCounter = new LineCounter();
  const parser = new Parser(lineCounter.addNewLine);
  lineCounter.addNewLine(0); // as Parser.parse does first
  let doc: CST.Document | undefined;
  const take = (token: CST.Token): void => {
    if (token.type === 'document' && doc === undefined) doc = token;
    else if (token.type !== 'comment' && token.type !== 'newline' && token.type !== 'space') notClean();
  };
  try {
    let tokens = 0;
    for (const lexeme of new Lexer().lex(text)) {
      for (const token of parser.next(lexeme)) take(token);
      if (++tokens % TOKENS_PER_STEP === 0) yield;
    }
    for (const token of parser.end()) take(token);
    yield;
    if (!doc || (doc.end?.length ?? 0) > 0 && doc.end!.some((t) => t.type !== 'comment' && t.type !== 'newline' && t.type !== 'space')) return undefined;
    if (doc.start.some((t) => t.type !== 'doc-start' && t.type !== 'comment' && t.type !== 'newline' && t.type !== 'space')) return undefined;
    return yield* valueOf(doc.value, doc.offset, lineCounter, batchItems);
  } catch {
    // NotClean, or anything the library throws: the one-step read says what it is, where.
    return undefined;
  }
}

/** The JS value of `node` (a document's value, or a large item's), composed in batches when it is a large block collection. */
function* valueOf(node: CST.Token | undefined, offset: number, lineCounter: LineCounter, batchItems: number): Steps<unknown> {
  if (!node || (node.type !== 'block-map' && node.type !== 'block-seq') || size(node, batchItems) <= batchItems) {
    const v = compose(node, offset, lineCounter);
    yield;
    return v.value;
  }
  const map = node.type === 'block-map';
  const out: unknown[] | Record<string, unknown> = map ? {} : [];
  /** A mapping's keys so far (as the library compares them: scalars by value). */
  const seen = new Set<unknown>();
  let batch: Item[] = [];
  let batchSize = 0;
  /** The large values of the batch's items, by the stand-in each was composed with. */
  let large = new Map<string, CST.Token>();
  const flush = function* (): Steps<void> {
    if (batch.length === 0) return;
    const { doc, value } = compose({ ...node, items: batch } as Block, offset, lineCounter);
    if (map) {
      for (const pair of isMap(doc.contents) ? doc.contents.items : notClean()) {
        if (!isScalar(pair.key)) notClean();
        const k = (pair.key as { value: unknown }).value;
        // NaN is not equal to itself, in the library's check either.
        if (typeof k === 'number' && Number.isNaN(k)) continue;
        if (seen.has(k)) notClean();
        seen.add(k);
      }
    }
    // Two keys the library holds apart (`1`, "1") may be one key of a JS object: read whole.
    const entries: Array<readonly [string | undefined, unknown]> = map ? Object.entries(value as Record<string, unknown>) : (value as unknown[]).map((v) => [undefined, v] as const);
    if (entries.length !== batch.length) notClean();
    const pending = large;
    batch = [];
    batchSize = 0;
    large = new Map();
    yield;
    for (const [k, v] of entries) {
      const big = typeof v === 'string' ? pending.get(v) : undefined;
      const got = big ? yield* valueOf(big, offset, lineCounter, batchItems) : v;
      if (map) {
        if (Object.prototype.hasOwnProperty.call(out, k!)) notClean();
        // As the library's own toJS sets a key (an own `__proto__` included).
        Object.defineProperty(out, k!, { value: got, enumerable: true, writable: true, configurable: true });
      } else (out as unknown[]).push(got);
    }
  };
  for (const [i, item] of node.items.entries()) {
    const value = item.value;
    const n = value ? size(value, batchItems) : 0;
    if (value && n > batchItems && (value.type === 'block-map' || value.type === 'block-seq')) {
      // A tag on the value (a mapping item's separator, a sequence item's start) would tag the
      // stand-in: `!!str` fits any scalar, so a mapping tagged `!!str`, which the one-step read
      // refuses, was read as the mapping. The one-step read says what such a value is.
      if ((map ? item.sep : item.start)?.some((t) => t.type === 'tag')) notClean();
      // Composed with a stand-in value (a string no file holds) in its batch; its own value is read
      // afterwards. The stand-in ends where the value does (by the next item's start): the composer
      // measures from a value's end to the next key (an implicit key's `:` is at most 1024
      // characters after where it starts).
      const standIn = `'${STAND_IN} ${standIns++}'`;
      large.set(standIn.slice(1, -1), value);
      const next = node.items[i + 1];
      const end = next ? startOf(next) : undefined;
      const offset = end === undefined ? value.offset : Math.max(value.offset, end - standIn.length);
      batch.push({ ...item, value: { type: 'single-quoted-scalar', offset, indent: value.indent, source: standIn } } as Item);
      batchSize += 1;
    } else {
      batch.push(item);
      batchSize += 1 + n;
    }
    if (batchSize >= batchItems) yield* flush();
  }
  yield* flush();
  return out;
}

/**
 * `node` composed as a document's value and checked as parseYamlValue checks a document (its
 * errors, duplicate keys, tags, collection keys; anchors and aliases are not read here), and its
 * JS value.
 */
function compose(node: CST.Token | undefined, offset: number, lineCounter: LineCounter): { doc: Document; value: unknown } {
  const composer = new Composer(OPTIONS);
  const token: CST.Document = { type: 'document', offset, start: [], ...(node ? { value: node } : {}) };
  const docs = [...composer.next(token), ...composer.end(true, offset)];
  if (docs.length !== 1) notClean();
  const doc = docs[0]! as Document;
  addDuplicateKeyErrors(doc, lineCounter);
  if (doc.errors.length > 0 || yamlTagProblems(doc).length > 0 || yamlKeyProblems(doc).length > 0) notClean();
  visit(doc, {
    Node(_key, n) {
      if (isAlias(n) || (isNode(n) && n.anchor)) notClean();
    },
  });
  // Maps become objects, sequences arrays, as parseYamlValue's toJS makes them.
  const value = doc.toJS();
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !isMap(doc.contents) && !isSeq(doc.contents)) notClean();
  return { doc, value };
}

/** Where an item's first token is (its start's, its key's or its separator's). */
function startOf(item: Item): number | undefined {
  return item.start[0]?.offset ?? item.key?.offset ?? item.sep?.[0]?.offset ?? item.value?.offset;
}

/** Items in `node` (nested ones counted, scalars none), counted up to just past `cap`. */
function size(node: CST.Token, cap: number): number {
  if (node.type !== 'block-map' && node.type !== 'block-seq' && node.type !== 'flow-collection') return 0;
  let n = 0;
  for (const item of node.items) {
    n += 1;
    if (item.key && n <= cap) n += size(item.key, cap - n);
    if (item.value && n <= cap) n += size(item.value, cap - n);
    if (n > cap) return n;
  }
  return n;
}
