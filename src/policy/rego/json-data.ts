/**
 * A JSON policy data file read a slice at a time (time-slices.ts). JSON.parse is native and fast,
 * but one call on a data file of several MB holds the event loop for hundreds of ms, and the
 * checks that followed it (duplicate keys with a Map per object, depth with a walk of the whole
 * value) as long again: a hot reload stalled request serving, and its deadline could not stop it.
 *
 * Here the text is cut where it may be: a value that spans at most BATCH characters, and a run
 * of a large container's members that together do, is handed to the native parser whole (a run
 * wrapped in the container's brackets); only containers larger than that are walked member by
 * member here. Between pieces the work yields. The checks come with the cut: its scan counts the
 * keys written (a `:` outside strings) and the nesting, and a piece's parsed value must hold as
 * many keys as its text wrote (a repeated key is kept once by JSON.parse); a large container's
 * members are added one by one, each refused when already there.
 *
 * Only valid data gets a value. Anything else (a syntax error, a repeated key, nesting past the
 * limit) gives `undefined`: the caller then checks the whole text as before (data.ts), which
 * gives the same error, at the same place, as reading it in one step did.
 */
import { NEEDS_EXACT_PARSE, parseJSONExact } from './builtins/json.js';
import { stringEnd } from './json-unique-keys.js';
import { defineKey, type PlainObject, type Value } from './value.js';
import type { Steps } from '../../pipeline/time-slices.js';

/**
 * Characters parsed natively in one piece: about a tenth of a millisecond of JSON.parse, so a
 * slice (10 ms) holds many, and containers smaller than this (nearly all) are never walked here.
 */
const BATCH = 16 * 1024;

/** Characters the NEEDS_EXACT_PARSE test looks at per step (overlapping by the longest match). */
const EXACT_TEST_CHUNK = 1 << 20;

/** Why the text was not read here: the caller's whole-text check says what is wrong, and where. */
class NotClean extends Error {}

const notClean = (): never => {
  throw new NotClean();
};

/** A container larger than BATCH, its members added as they are read. */
interface Frame {
  value: PlainObject | Value[];
  array: boolean;
  /** The member key this container is the value of, in its parent (an object). */
  key?: string;
  /** After a member: a `,` or the container's end comes next. */
  afterMember: boolean;
  /** Where the run of members not parsed yet starts (-1: none) and ends, and the keys its text writes. */
  runStart: number;
  runEnd: number;
  runKeys: number;
}

/** What a scan of one value found: where it ends, the keys its text writes, how deep it nests. */
interface Scan {
  end: number;
  keys: number;
  depth: number;
}

/**
 * The value of JSON `text` with at most `maxDepth` levels of nesting (the value itself is level
 * 1), read a piece at a time; undefined when the text is not valid JSON, repeats a key in an
 * object, or nests deeper (see the file's comment). `batch`: the characters of a piece (tests
 * make it small, to cut small texts).
 */
export function* jsonDataSteps(text: string, maxDepth: number, batch = BATCH): Steps<Value | undefined> {
  // The exact parser is taken for the whole text or not at all, as unmarshalJSON does: the two
  // read some numbers differently (-0, 1e20), and a file is read one way throughout.
  let exact = false;
  for (let i = 0; i < text.length && !exact; i += EXACT_TEST_CHUNK) {
    exact = NEEDS_EXACT_PARSE.test(text.slice(i, i + EXACT_TEST_CHUNK + 16));
    yield;
  }
  try {
    return yield* read(text, maxDepth, batch, exact ? parseJSONExact : (s: string) => JSON.parse(s) as Value);
  } catch {
    // NotClean, a parser's SyntaxError, the exact parser's RangeError (its recursion, on what is
    // too deep anyway), or anything else: the one-step read says what it is.
    return undefined;
  }
}

function* read(text: string, maxDepth: number, batch: number, parse: (s: string) => Value): Steps<Value> {
  const n = text.length;
  const ws = (i: number): number => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return i;
    }
  };
  /** A piece of text parsed natively: it must hold as many keys as it writes. */
  const piece = (s: string, keys: number): Value => {
    const v = parse(s);
    if (countKeys(v) !== keys) notClean();
    return v;
  };
  const stack: Frame[] = [];
  let root: Value | undefined;
  /** Adds a finished value to the container on top (or makes it the root), refusing a repeated key. */
  const add = (v: Value, key: string | undefined): void => {
    const top = stack.at(-1);
    if (!top) root = v;
    else if (top.array) (top.value as Value[]).push(v);
    else if (Object.prototype.hasOwnProperty.call(top.value, key!)) notClean();
    else defineKey(top.value as PlainObject, key!, v);
    if (top) top.afterMember = true;
  };
  /** Parses the frame's run of members (if any) and adds them to it, in order. */
  const flush = (f: Frame): void => {
    if (f.runStart < 0) return;
    const body = text.slice(f.runStart, f.runEnd);
    f.runStart = -1;
    if (f.array) {
      for (const v of piece(`[${body}]`, f.runKeys) as Value[]) (f.value as Value[]).push(v);
      return;
    }
    const members = piece(`{${body}}`, f.runKeys) as PlainObject;
    for (const k of Object.keys(members)) {
      if (Object.prototype.hasOwnProperty.call(f.value, k)) notClean();
      defineKey(f.value as PlainObject, k, members[k]!);
    }
  };
  /** Opens the container at `at` (too large for a piece) as a frame; where its first member starts. */
  const open = (at: number, key?: string): number => {
    if (stack.length + 1 > maxDepth) notClean();
    const array = text.charCodeAt(at) === 0x5b;
    stack.push({ value: array ? [] : {}, array, ...(key === undefined ? {} : { key }), afterMember: false, runStart: -1, runEnd: -1, runKeys: 0 });
    return ws(at + 1);
  };

  let p = ws(0);
  if (p >= n) notClean();
  // The root: one piece when it is small enough.
  const whole = scan(text, p, batch);
  if (whole) {
    if (whole.depth > maxDepth) notClean();
    root = piece(text.slice(p, whole.end), whole.keys);
    p = ws(whole.end);
  } else p = open(p);
  while (stack.length > 0) {
    const f = stack.at(-1)!;
    const close = f.array ? 0x5d : 0x7d;
    const c = text.charCodeAt(p);
    if (f.afterMember && c === 0x2c) {
      p = ws(p + 1);
      f.afterMember = false;
      // A member must follow (no trailing comma).
      if (text.charCodeAt(p) === close) notClean();
      continue;
    }
    if (c === close) {
      // After a member, or right after the container opened (it is empty).
      flush(f);
      stack.pop();
      add(f.value, f.key);
      p = ws(p + 1);
      yield;
      continue;
    }
    if (f.afterMember) notClean();
    // A member: `"key": value` or a value.
    const m = p;
    let keyEnd = -1;
    if (!f.array) {
      if (c !== 0x22) notClean();
      keyEnd = stringEnd(text, p);
      if (keyEnd >= n) notClean();
      p = ws(keyEnd + 1);
      if (text.charCodeAt(p) !== 0x3a) notClean();
      p = ws(p + 1);
    }
    // It joins the run when the run stays within a piece; else the run is parsed first.
    let s: Scan | undefined;
    if (f.runStart >= 0) {
      s = scan(text, p, batch - (p - f.runStart));
      if (s && s.end - f.runStart > batch) s = undefined;
      if (!s) {
        flush(f);
        yield;
      }
    }
    if (f.runStart < 0) {
      s = scan(text, p, batch - (p - m));
      if (!s) {
        // A container too large for a piece of its own: read member by member.
        p = open(p, keyEnd < 0 ? undefined : keyText(text, m, keyEnd));
        yield;
        continue;
      }
      f.runStart = m;
      f.runKeys = 0;
    }
    if (stack.length + s!.depth > maxDepth) notClean();
    f.runEnd = s!.end;
    f.runKeys += (f.array ? 0 : 1) + s!.keys;
    f.afterMember = true;
    p = ws(s!.end);
  }
  if (p < n) notClean();
  return root!;
}

/** The key whose quotes are at `start` and `end`: JSON.parse checks and decodes one with an escape or a control character. */
function keyText(text: string, start: number, end: number): string {
  const raw = text.slice(start + 1, end);
  // eslint-disable-next-line no-control-regex
  return /[\\\u0000-\u001f]/.test(raw) ? (JSON.parse(text.slice(start, end + 1)) as string) : raw;
}

/**
 * Where the value starting at `at` ends, the keys it writes and how deep it nests; undefined when
 * it is a container that does not end within `limit` characters (a string or other scalar is
 * scanned to its end whatever its length). Only finds the boundaries: the parser checks the rest.
 */
function scan(text: string, at: number, limit: number): Scan | undefined {
  const n = text.length;
  const c0 = text.charCodeAt(at);
  if (c0 === 0x22) return { end: stringEnd(text, at) + 1, keys: 0, depth: 0 };
  if (c0 !== 0x7b && c0 !== 0x5b) {
    let i = at;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x2c || c === 0x5d || c === 0x7d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) break;
    }
    if (i === at) notClean();
    return { end: i, keys: 0, depth: 0 };
  }
  const stop = Math.min(n, at + Math.max(0, limit));
  let depth = 0;
  let deepest = 0;
  let keys = 0;
  for (let i = at; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) i = stringEnd(text, i);
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > deepest) deepest = depth;
    } else if (c === 0x7d || c === 0x5d) {
      if (--depth === 0) return { end: i + 1, keys, depth: deepest };
    } else if (c === 0x3a) keys++;
  }
  if (stop === n && limit >= n - at) notClean(); // the text ends inside it
  return undefined;
}

/** The keys of every object in `v` (parsed JSON, so no cycles; its depth was checked first). */
function countKeys(v: Value): number {
  if (v === null || typeof v !== 'object') return 0;
  let keys = 0;
  if (Array.isArray(v)) {
    for (const e of v) if (e !== null && typeof e === 'object') keys += countKeys(e);
    return keys;
  }
  for (const k in v) {
    keys++;
    const e = (v as PlainObject)[k]!;
    if (e !== null && typeof e === 'object') keys += countKeys(e);
  }
  return keys;
}
