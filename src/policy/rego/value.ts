/**
 * Rego values in JavaScript, chosen so that JSON input and data need no conversion on the hot
 * path:
 *
 *   null, boolean, string  → themselves
 *   number                 → `number`, or `bigint` for integers outside ±2^53 (no silent precision loss),
 *                            or, rarely, `RegoDecimal` (decimal.ts): a policy literal whose digits
 *                            a double cannot hold, compared exactly (built-ins never see one)
 *   array                  → a JS array (never mutated once built)
 *   object, string keys    → a plain JS object (prototype Object.prototype or null)
 *   object, any other key  → `RegoObject` (only when at least one key is not a string)
 *   set                    → `RegoSet`
 *
 * Always read objects through `objectGet` / `objectEntries` / `objectKeys`: a plain object may
 * carry own keys like `__proto__` or `constructor`, which direct property access gets wrong.
 * Values are immutable: builtins and the evaluator build new values, never edit old ones.
 */

import { RegoDecimal } from './decimal.js';
import { MAX_RESULT_STRING, checkStringSize, work } from './meter.js';

export { RegoDecimal } from './decimal.js';

export type Value = null | boolean | number | bigint | string | Value[] | PlainObject | RegoObject | RegoSet | RegoDecimal;

export interface PlainObject {
  [key: string]: Value;
}

export type TypeName = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object' | 'set';

const hasOwn = Object.prototype.hasOwnProperty;

/** An object with at least one non-string key, keyed internally by `keyOf(key)`. */
export class RegoObject {
  readonly map = new Map<string, [Value, Value]>();

  static from(entries: Iterable<readonly [Value, Value]>): RegoObject {
    const o = new RegoObject();
    for (const [k, v] of entries) o.map.set(keyOf(k), [k, v]);
    return o;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: Value): Value | undefined {
    return this.map.get(keyOf(key))?.[1];
  }
}

/** A set of values, keyed internally by `keyOf(value)`. */
export class RegoSet {
  readonly map = new Map<string, Value>();

  static from(values: Iterable<Value>): RegoSet {
    const s = new RegoSet();
    for (const v of values) {
      work(1);
      s.map.set(keyOf(v), v);
    }
    return s;
  }

  get size(): number {
    return this.map.size;
  }

  has(v: Value): boolean {
    return this.map.has(keyOf(v));
  }

  /** Mutates: only while building a new set. */
  add(v: Value): void {
    this.map.set(keyOf(v), v);
  }

  values(): IterableIterator<Value> {
    return this.map.values();
  }

  /** Elements in Rego's sort order. */
  sorted(): Value[] {
    work(this.map.size);
    return [...this.map.values()].sort(this.map.size > 64 ? meteredCompare : compare);
  }
}

// ---------------------------------------------------------------------------------------------
// Type tests
// ---------------------------------------------------------------------------------------------

export function isPlainObject(v: unknown): v is PlainObject {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function isObject(v: Value | undefined): v is PlainObject | RegoObject {
  return v instanceof RegoObject || isPlainObject(v);
}

export function isNumber(v: Value | undefined): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

export function typeName(v: Value): TypeName {
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'number':
    case 'bigint':
      return 'number';
    case 'string':
      return 'string';
    default:
      if (v === null) return 'null';
      if (Array.isArray(v)) return 'array';
      if (v instanceof RegoSet) return 'set';
      if (v instanceof RegoDecimal) return 'number';
      return 'object';
  }
}

const TYPE_ORDER: Record<TypeName, number> = {
  null: 0,
  boolean: 1,
  number: 2,
  string: 3,
  array: 4,
  object: 5,
  set: 6,
};

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/** Integers within ±2^53 are `number`; larger integers stay `bigint`. */
export function normalizeInt(n: bigint): number | bigint {
  return n >= -9007199254740991n && n <= 9007199254740991n ? Number(n) : n;
}

/**
 * Code-point order, as Go compares strings (byte order of UTF-8 is code-point order), where JS
 * `<` compares UTF-16 units: a surrogate (U+D800–DFFF, the start of anything past U+FFFF) then
 * sorts before U+E000–FFFF. Only the first differing unit matters, and only when both are at
 * least 0xD800: surrogates move above U+FFFF, U+E000–FFFF move down into the gap they leave.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  // A JS loop where `<` was native: long shared prefixes are charged (meter.ts).
  if (i > 1024) work(i >>> 5);
  if (i === n) return a.length < b.length ? -1 : 1;
  let x = a.charCodeAt(i);
  let y = b.charCodeAt(i);
  if (x >= 0xd800 && y >= 0xd800) {
    x += x >= 0xe000 ? -0x800 : 0x2000;
    y += y >= 0xe000 ? -0x800 : 0x2000;
  }
  return x < y ? -1 : 1;
}

export function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  // Mixed or both bigint: compare exactly where possible.
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  const [x, y] = [a, b];
  // Not Rego numbers (built-ins and decoders reject them), but never recurse on one: ±Infinity
  // and NaN are not integers and their floor is themselves.
  if (typeof x === 'number' && !Number.isFinite(x)) return x > 0 ? 1 : -1;
  if (typeof y === 'number' && !Number.isFinite(y)) return y > 0 ? -1 : 1;
  if (typeof x === 'number' && !Number.isInteger(x)) {
    const fx = Math.floor(x);
    const c = compareNumbers(fx, y);
    return c === 0 ? 1 : c;
  }
  if (typeof y === 'number' && !Number.isInteger(y)) return -compareNumbers(y, x);
  const bx = typeof x === 'bigint' ? x : BigInt(x);
  const by = typeof y === 'bigint' ? y : BigInt(y);
  return bx < by ? -1 : bx > by ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

export function objectGet(o: PlainObject | RegoObject, key: Value): Value | undefined {
  if (o instanceof RegoObject) return o.get(key);
  if (typeof key !== 'string') return undefined;
  return hasOwn.call(o, key) ? o[key] : undefined;
}

/**
 * A plain object's keys: the sorted list kept for it (sortedKeys) when there is one, else
 * `Object.keys`. Object.keys and Object.entries are single native calls that no deadline can
 * stop, and slow on a large object (a 200,000-key object takes them tens to hundreds of ms, the
 * entries three to four times the keys): an object a policy reads often (a data table) is
 * listed once and then only read from the kept list, in loops that charge the meter as they go.
 */
function ownKeys(o: PlainObject): readonly string[] {
  const kept = SORTED_KEYS.get(o);
  if (kept !== undefined) return kept;
  const keys = Object.keys(o);
  work(keys.length);
  // A large object is listed once: its sorted keys are kept (the sort is metered).
  return keys.length > KEEP_LISTED_MIN_KEYS ? sortAndKeep(o, keys) : keys;
}

/** Objects with more keys than this have their key list kept the first time it is taken. */
const KEEP_LISTED_MIN_KEYS = 1024;

/** `[key, value]` pairs of `o` for `keys`, charged as they are built (see ownKeys). */
function entriesOf(o: PlainObject, keys: readonly string[]): Array<[Value, Value]> {
  const out: Array<[Value, Value]> = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    if ((i & 1023) === 1023) work(1024);
    const k = keys[i]!;
    out[i] = [k, o[k]!];
  }
  return out;
}

export function objectSize(o: PlainObject | RegoObject): number {
  return o instanceof RegoObject ? o.size : ownKeys(o).length;
}

/** The keys of `o`; callers must not change the array returned (it may be kept: sortedKeys). */
export function objectKeys(o: PlainObject | RegoObject): readonly Value[] {
  if (o instanceof RegoObject) return [...o.map.values()].map((e) => e[0]);
  return ownKeys(o);
}

export function objectEntries(o: PlainObject | RegoObject): Array<[Value, Value]> {
  if (o instanceof RegoObject) {
    const entries = [...o.map.values()];
    work(entries.length);
    return entries;
  }
  return entriesOf(o, ownKeys(o));
}

/**
 * A plain object's keys in Rego's key order (code-point order), the order OPA iterates objects
 * in (`ast.object` enumerates its sorted keys). JavaScript's own order is insertion order with
 * integer-like keys first, so an object iterated as it is gave arrays (`[k | some k, _ in o]`,
 * `walk`) in another order than OPA's. Objects are never changed once built, so the order of one
 * with more than a few keys is kept (a policy's data tables are iterated on every evaluation:
 * sorted once, not each time); keys that are already in order (the usual JSON, or one key) cost
 * a single pass. Callers must not change the array returned.
 */
export function sortedKeys(o: PlainObject): readonly string[] {
  const kept = o === null ? undefined : SORTED_KEYS.get(o);
  if (kept !== undefined) return kept;
  const keys = Object.keys(o);
  work(keys.length);
  return sortAndKeep(o, keys);
}

/** `keys` (o's, in JavaScript's order) in Rego's order, kept for `o` when there are more than a few. */
function sortAndKeep(o: PlainObject, keys: string[]): readonly string[] {
  let sorted = keys;
  for (let i = 1; i < keys.length; i++) {
    if ((i & 1023) === 0) work(1024);
    if (compareStrings(keys[i - 1]!, keys[i]!) > 0) {
      sorted = keys.sort(keys.length > 64 ? meteredCompareStrings : compareStrings);
      break;
    }
  }
  if (sorted.length > KEEP_ORDER_MIN_KEYS) SORTED_KEYS.set(o, sorted);
  return sorted;
}

/** An object's entries in Rego's key order (see `sortedKeys`). Callers must not change the array returned. */
export function sortedEntries(o: PlainObject | RegoObject): ReadonlyArray<readonly [Value, Value]> {
  if (!(o instanceof RegoObject)) return entriesOf(o, sortedKeys(o));
  const kept = SORTED_ENTRIES.get(o);
  if (kept !== undefined) return kept;
  const entries = [...o.map.values()];
  work(entries.length);
  entries.sort(entries.length > 64 ? (a, b) => meteredCompare(a[0], b[0]) : (a, b) => compare(a[0], b[0]));
  if (entries.length > KEEP_ORDER_MIN_KEYS) SORTED_ENTRIES.set(o, entries);
  return entries;
}

/** Objects with more keys than this keep their key order (see sortedKeys); smaller ones sort again, which costs less than the lookup. */
const KEEP_ORDER_MIN_KEYS = 8;
const SORTED_KEYS = new WeakMap<object, readonly string[]>();
const SORTED_ENTRIES = new WeakMap<RegoObject, ReadonlyArray<readonly [Value, Value]>>();

/** Builds an object from entries, choosing the plain representation when every key is a string. */
export function makeObject(entries: Iterable<readonly [Value, Value]>): PlainObject | RegoObject {
  const list = [...entries];
  work(list.length);
  if (list.every(([k]) => typeof k === 'string')) {
    const o: PlainObject = {};
    // Charged as it goes too: adding keys to a large object is the slow part (dictionary mode).
    for (let i = 0; i < list.length; i++) {
      if ((i & 1023) === 1023) work(1024);
      const [k, v] = list[i]!;
      defineKey(o, k as string, v);
    }
    return o;
  }
  return RegoObject.from(list);
}

/** Sets an own key, safe for `__proto__`. Only while building a new object. */
export function defineKey(o: PlainObject, key: string, v: Value): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
  else o[key] = v;
}

// ---------------------------------------------------------------------------------------------
// Ordering, equality, keys
// ---------------------------------------------------------------------------------------------

/** Rego's total order (OPA ast.Compare): null < boolean < number < string < array < object < set. */
export function compare(a: Value, b: Value): number {
  // Identity first: a value holding the same large value many times compares in O(1) per copy.
  if (a === b) return 0;
  const ta = typeName(a);
  const tb = typeName(b);
  if (ta !== tb) return TYPE_ORDER[ta] - TYPE_ORDER[tb];
  switch (ta) {
    case 'null':
      return 0;
    case 'boolean':
      return a === b ? 0 : a ? 1 : -1;
    case 'number':
      if (a instanceof RegoDecimal) return a.compareTo(b as number | bigint | RegoDecimal);
      if (b instanceof RegoDecimal) return -b.compareTo(a as number | bigint);
      return compareNumbers(a as number | bigint, b as number | bigint);
    case 'string':
      return compareStrings(a as string, b as string);
    case 'array': {
      const x = a as Value[];
      const y = b as Value[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        work(1);
        const c = compare(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case 'object': {
      const ea = sortedEntries(a as PlainObject | RegoObject);
      const eb = sortedEntries(b as PlainObject | RegoObject);
      const n = Math.min(ea.length, eb.length);
      for (let i = 0; i < n; i++) {
        work(1);
        const ck = compare(ea[i]![0], eb[i]![0]);
        if (ck !== 0) return ck;
        const cv = compare(ea[i]![1], eb[i]![1]);
        if (cv !== 0) return cv;
      }
      return ea.length - eb.length;
    }
    case 'set': {
      const x = (a as RegoSet).sorted();
      const y = (b as RegoSet).sorted();
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compare(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
  }
}

function meteredCompare(a: Value, b: Value): number {
  work(1);
  return compare(a, b);
}

function meteredCompareStrings(a: string, b: string): number {
  work(1);
  return compareStrings(a, b);
}

export function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  const ta = typeof a;
  if (ta !== 'object' || typeof b !== 'object' || a === null || b === null) {
    // number vs bigint of the same integer value
    if (isNumber(a) && isNumber(b)) return compareNumbers(a, b) === 0;
    return false;
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      work(1);
      if (!equal(a[i]!, b[i]!)) return false;
    }
    return true;
  }
  if (a instanceof RegoSet) {
    if (!(b instanceof RegoSet) || a.size !== b.size) return false;
    work(a.size);
    for (const k of a.map.keys()) if (!b.map.has(k)) return false;
    return true;
  }
  if (b instanceof RegoSet || Array.isArray(b)) return false;
  // A decimal never equals a number (it would have been kept as that number: decimal.ts).
  if (a instanceof RegoDecimal || b instanceof RegoDecimal) return a instanceof RegoDecimal && b instanceof RegoDecimal && a.key === b.key;
  const oa = a as PlainObject | RegoObject;
  const ob = b as PlainObject | RegoObject;
  if (objectSize(oa) !== objectSize(ob)) return false;
  if (oa instanceof RegoObject) {
    for (const [k, v] of objectEntries(oa)) {
      const w = objectGet(ob, k);
      if (w === undefined || !equal(v, w)) return false;
    }
    return true;
  }
  // Read by key from the (kept) key list, charged per key: no copy of the entries.
  const keys = ownKeys(oa);
  for (let i = 0; i < keys.length; i++) {
    work(1);
    const k = keys[i]!;
    const w = objectGet(ob, k);
    if (w === undefined || !equal(oa[k]!, w)) return false;
  }
  return true;
}

/**
 * A canonical string for a value, equal for equal values (used as Map keys for sets and
 * non-string-keyed objects). Numbers are canonicalised so that 1 and 1.0 and 1n share a key.
 */
export function keyOf(v: Value): string {
  switch (typeof v) {
    case 'string':
      return 's' + v;
    case 'number':
      return 'n' + numberKey(v);
    case 'bigint':
      return 'n' + v.toString();
    case 'boolean':
      return v ? 't' : 'f';
    default:
      if (v === null) return 'z';
      if (Array.isArray(v)) return arrayKey(v);
      if (v instanceof RegoSet) {
        work(v.size);
        return keyText('{' + [...v.map.keys()].sort().join(',') + '}');
      }
      if (v instanceof RegoDecimal) return 'n~' + v.key;
      return objectKey(v);
  }
}

/**
 * A double's key: its exact integer digits when it is an integer past 2^53, as the bigint it
 * equals (compareNumbers) prints; String() would give `1e+21`, or round digits away
 * (123456789012345677877 prints as 123456789012345680000), and equal values must share a key.
 */
function numberKey(v: number): string {
  if (Number.isSafeInteger(v)) return Object.is(v, -0) ? '0' : String(v);
  return Number.isInteger(v) ? BigInt(v).toString() : String(v);
}

function arrayKey(v: Value[]): string {
  const parts: string[] = new Array(v.length);
  let length = 2;
  for (let i = 0; i < v.length; i++) {
    // Charged per element as it goes, so that the clock is read during one large key too.
    work(1);
    const p = keyOf(v[i]!);
    // Capped as it grows: an array may hold one large value many times over.
    if ((length += p.length + 1) > MAX_RESULT_STRING) checkStringSize(length, 'value key');
    parts[i] = p;
  }
  return keyText('[' + parts.join(',') + ']');
}

function objectKey(v: PlainObject | RegoObject): string {
  const entries = objectEntries(v);
  const parts: string[] = new Array(entries.length);
  let length = 2;
  for (let i = 0; i < entries.length; i++) {
    work(1);
    const p = keyOf(entries[i]![0]) + ':' + keyOf(entries[i]![1]);
    if ((length += p.length + 1) > MAX_RESULT_STRING) checkStringSize(length, 'value key');
    parts[i] = p;
  }
  return keyText('<' + parts.sort().join(',') + '>');
}

/** Composite keys are charged by length too (copying them is the work), and capped. */
function keyText(k: string): string {
  work(k.length >>> 5);
  if (k.length > MAX_RESULT_STRING) checkStringSize(k.length, 'value key');
  return k;
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/**
 * Converts a Rego value to plain JSON (as `opa eval --format json` prints it): sets become
 * sorted arrays, non-string object keys become their JSON text, bigints become numbers only
 * when exact (otherwise they stay bigint; use `stringifyJSON` to print them exactly).
 */
export function toJSON(v: Value): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    work(v.length);
    return v.map(toJSON);
  }
  if (v instanceof RegoSet) return v.sorted().map(toJSON);
  if (v instanceof RegoDecimal) return v.num;
  if (v instanceof RegoObject) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of sortedEntries(v)) {
      const key = typeof k === 'string' ? k : stringifyJSON(k);
      Object.defineProperty(o, key, { value: toJSON(x), enumerable: true, writable: true, configurable: true });
    }
    return o;
  }
  let plainOnly = true;
  work(1);
  for (const k in v) {
    const x = v[k]!;
    if (x !== null && typeof x === 'object') {
      plainOnly = false;
      break;
    }
  }
  if (plainOnly) return v;
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    Object.defineProperty(o, k, { value: toJSON(x), enumerable: true, writable: true, configurable: true });
  }
  return o;
}

/**
 * JSON text with exact bigints and OPA's key order (sorted), formatted as JSON.stringify
 * formats (compact, or indented by `indent` spaces). Written out by hand rather than through a
 * replacer marker so that no string value can be mistaken for a number.
 */
export function stringifyJSON(v: Value, indent?: number): string {
  const pad = indent && indent > 0 ? ' '.repeat(Math.min(indent, 10)) : '';
  const out: string[] = [];
  // The text is capped as it grows (a value may hold one large value many times over).
  let length = 0;
  const push = (t: string): void => {
    out.push(t);
    length += t.length;
    work(1 + (t.length >>> 5));
    if (length > MAX_RESULT_STRING) checkStringSize(length, 'JSON text');
  };
  const write = (x: Value, depth: number): void => {
    if (x === null) push('null');
    else if (typeof x === 'boolean') push(x ? 'true' : 'false');
    else if (typeof x === 'number') push(Number.isFinite(x) ? JSON.stringify(x) : 'null');
    else if (typeof x === 'bigint') push(x.toString());
    else if (typeof x === 'string') push(JSON.stringify(x));
    else if (x instanceof RegoDecimal) push(x.toString());
    else {
      // Elements are read in place (no per-element copy ahead of the charged writes).
      const isList = Array.isArray(x) || x instanceof RegoSet;
      const values: Value[] = Array.isArray(x) ? x : x instanceof RegoSet ? x.sorted() : [];
      const entries = isList ? undefined : sortedEntries(x as PlainObject | RegoObject);
      const n = entries === undefined ? values.length : entries.length;
      const [open, close] = isList ? ['[', ']'] : ['{', '}'];
      if (n === 0) {
        push(open + close);
        return;
      }
      push(open);
      const inner = pad ? '\n' + pad.repeat(depth + 1) : '';
      for (let i = 0; i < n; i++) {
        if (i > 0) push(',');
        if (inner) push(inner);
        if (entries === undefined) write(values[i]!, depth + 1);
        else {
          const [k, e] = entries[i]!;
          push(JSON.stringify(typeof k === 'string' ? k : stringifyJSON(k)) + (pad ? ': ' : ':'));
          write(e, depth + 1);
        }
      }
      push(pad ? '\n' + pad.repeat(depth) + close : close);
    }
  };
  write(v, 0);
  return out.join('');
}

/** Values (scalars, array items, object members) written between two pauses of jsonTextSteps. */
const VALUES_PER_STEP = 2048;

/**
 * stringifyJSON(v)'s compact text, handed to `write` a piece at a time and pausing (yield) every
 * VALUES_PER_STEP values, for what only needs the text as a stream: the policy revision hashes the
 * base data so. Built whole, the text of a set's data files was capped as an evaluation's string
 * (MAX_RESULT_STRING, 16 Mi characters): data of 17 MB, within the set's caps, failed to load as
 * `eval_budget_exceeded`, and a few MB took seconds in one synchronous step on every reload.
 * Arrays, plain objects and strings are written here as stringifyJSON writes them; anything
 * else by stringifyJSON itself.
 */
export function* jsonTextSteps(v: Value, write: (text: string) => void): Generator<void, void, void> {
  let left = VALUES_PER_STEP;
  function* walk(x: Value): Generator<void, void, void> {
    if (Array.isArray(x)) {
      write('[');
      for (let i = 0; i < x.length; i++) {
        if (i > 0) write(',');
        yield* walk(x[i]!);
      }
      write(']');
    } else if (isPlainObject(x)) {
      // stringifyJSON's order: keys compared as Rego strings (compare on string keys).
      const keys = Object.keys(x).sort(compareStrings);
      write('{');
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        write((i > 0 ? ',' : '') + JSON.stringify(k) + ':');
        yield* walk(x[k]!);
      }
      write('}');
    } else write(typeof x === 'string' ? JSON.stringify(x) : stringifyJSON(x));
    if (--left <= 0) {
      left = VALUES_PER_STEP;
      yield;
    }
  }
  yield* walk(v);
}

/**
 * Accepts parsed JSON (or YAML) as a Rego value. JSON needs no conversion; this only checks
 * for values JSON cannot hold (undefined, functions, non-finite numbers) and returns the input.
 */
export function fromJSON(x: unknown): Value {
  return x as Value;
}
