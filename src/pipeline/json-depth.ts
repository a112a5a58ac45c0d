/**
 * A nesting limit for JSON that comes from outside: request bodies and the JSON fields of gRPC
 * messages (checked by the ingress adapters), and upstream answers (by the providers).
 * `JSON.parse` takes any depth (V8's parser does not recurse), but Warden's own walks of a request
 * do: the redaction of tool schemas and content parts, the policy input, canonical JSON, and
 * `JSON.stringify` of the body that goes upstream or back to the caller. A body nested some
 * thousands of levels deep fits easily in `max_body_bytes` and would overflow the stack in the
 * middle of the pipeline: a 500 `internal` for what is the sender's mistake. So the depth is
 * checked once, right after parsing, and refused there with the field named; every later walk
 * may then recurse freely.
 */
import { WardenError } from './errors.js';

export const DEFAULT_MAX_JSON_DEPTH = 64;
/**
 * The highest `limits.max_json_depth` the config accepts: deep enough for any real tool schema,
 * and far below what Warden's recursive walks can take (an end-to-end test runs a request this
 * deep through the whole pipeline).
 */
export const MAX_JSON_DEPTH_CEILING = 1000;

/** A path segment that is shown in an error: an index or a plain identifier. */
const SHOWN_KEY = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
/** Segments of the path an error shows at most: enough to find the field. */
const SHOWN_SEGMENTS = 6;

/**
 * The path to the first object or array nested deeper than `max` levels (the value itself is
 * level 1), or undefined when there is none. Recursion is bounded by `max`.
 */
export function tooDeepAt(value: unknown, max: number): Array<string | number> | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const reversed = walk(value, 1, max);
  return reversed?.reverse();
}

function walk(v: object, depth: number, max: number): Array<string | number> | undefined {
  if (depth > max) return [];
  const array = Array.isArray(v);
  // for-in visits an array's indices too (as strings), in order.
  for (const k in v) {
    const e: unknown = (v as Record<string, unknown>)[k];
    if (e === null || typeof e !== 'object') continue;
    const path = walk(e, depth + 1, max);
    if (path) {
      path.push(array ? Number(k) : k);
      return path;
    }
  }
  return undefined;
}

/**
 * The path as an error shows it: up to the first key that is not an index or a plain
 * identifier (member names are the caller's data and could be anything, a canary or an e-mail
 * address included), and at most SHOWN_SEGMENTS segments.
 */
function shownPath(root: string, path: ReadonlyArray<string | number>): string {
  const parts = root === '' ? [] : [root];
  for (const seg of path.slice(0, SHOWN_SEGMENTS)) {
    if (typeof seg === 'string' && !SHOWN_KEY.test(seg)) break;
    parts.push(String(seg));
  }
  return parts.length === 0 ? '$' : parts.join('.');
}

/**
 * Throws `invalid_request` when `value` (parsed JSON found at `root`, '' for a whole body) nests
 * deeper than `max` levels. The location names the field the too-deep value sits in.
 */
export function checkJsonDepth(value: unknown, max: number, root = ''): void {
  const at = tooDeepAt(value, max);
  if (!at) return;
  const path = shownPath(root, at);
  const what = root === '' && path === '$' ? 'request body' : `field '${path}'`;
  throw new WardenError('invalid_request', `${what} is nested deeper than ${max} levels (limits.max_json_depth)`, {
    location: { path },
  });
}

/**
 * Whether JSON `bytes` (UTF-8) nest deeper than `max` levels, read from the bytes without parsing
 * them: brackets outside strings, as JSON.parse would nest them (the text need not be valid JSON).
 * `JSON.parse` builds a deeply nested text far slower than a flat one of its size (a 1 MiB body
 * of `[` takes it ~0.4–0.7 s of the event loop, a flat one ~20 ms), before checkJsonDepth can
 * refuse it and before the caller is authenticated; this lets a large body be refused first.
 */
export function bytesNestDeeperThan(bytes: Uint8Array, max: number): boolean {
  return scanJson(bytes, max, Number.POSITIVE_INFINITY) === 'depth';
}

/** What scanJson found over its bounds: nesting (`depth`), or the count of values (`values`). */
export type JsonScanProblem = 'depth' | 'values';

/**
 * Reads JSON `bytes` (UTF-8) as scanner, without parsing them, for the first bound they pass:
 * nesting deeper than `maxDepth` levels (`depth`, see bytesNestDeeperThan), or more than
 * `maxValues` values (`values`), counted as the arrays and objects plus the commas between
 * entries, outside strings (an array of n numbers counts n: itself and n−1 commas). JSON.parse
 * spends its time on what it builds: a flat 1 MiB of `[],` or `{},` (~350,000 empty arrays or
 * objects) takes it 0.3–0.6 s of the event loop, `0,` ~0.1 s, while 1 MiB of prose in one string
 * takes ~10 ms. A text with few enough brackets and commas in all (a long prompt) cannot pass
 * either bound: that is counted natively (indexOf) and the walk is skipped. The walk jumps over
 * each string to its closing quote (one not after an odd run of backslashes), and stops at the
 * first bound passed. Undefined: within both.
 */
export function scanJson(bytes: Uint8Array, maxDepth: number, maxValues: number): JsonScanProblem | undefined {
  const brackets = countUpTo(bytes, 0x5b, maxDepth + 1) + countUpTo(bytes, 0x7b, maxDepth + 1);
  if (brackets <= maxDepth && (maxValues === Number.POSITIVE_INFINITY || brackets + countUpTo(bytes, 0x2c, maxValues + 1) <= maxValues)) return undefined;
  let depth = 0;
  let values = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x22) {
      // A quote opens a string: go to the one that closes it.
      let end = i;
      for (;;) {
        end = bytes.indexOf(0x22, end + 1);
        if (end === -1) return undefined;
        let k = end - 1;
        while (bytes[k] === 0x5c) k--;
        if ((end - 1 - k) % 2 === 0) break;
      }
      i = end;
    } else if (b === 0x5b || b === 0x7b) {
      // [ {
      if (++depth > maxDepth) return 'depth';
      if (++values > maxValues) return 'values';
    } else if (b === 0x5d || b === 0x7d) depth--; // ] }
    else if (b === 0x2c && ++values > maxValues) return 'values'; // ,
  }
  return undefined;
}

/**
 * Above this size a JSON text (an HTTP body, a gRPC message's JSON field) is scanned for its depth
 * (bytesNestDeeperThan) before JSON.parse. Smaller ones are parsed and walked (checkJsonDepth,
 * which names the path inside): their worst case is a few tens of ms, and the scan would add a few
 * µs to every ordinary call.
 */
export const DEPTH_SCAN_MIN_BYTES = 64 * 1024;

/**
 * bytesNestDeeperThan for a text already decoded (a gRPC string field). UTF-8 keeps the quotes,
 * backslashes and brackets where they were, so the text is read as its bytes; only called for
 * texts over DEPTH_SCAN_MIN_BYTES, where the copy costs far less than the parse it may spare.
 */
export function textNestsDeeperThan(text: string, max: number): boolean {
  return bytesNestDeeperThan(Buffer.from(text, 'utf8'), max);
}

/** scanJson for a text already decoded (a gRPC string field, tool-call arguments), as textNestsDeeperThan. */
export function scanJsonText(text: string, maxDepth: number, maxValues: number): JsonScanProblem | undefined {
  return scanJson(Buffer.from(text, 'utf8'), maxDepth, maxValues);
}

/**
 * The default of `limits.max_json_values`: far above what a request holds (a conversation of
 * 5,000 turns with tool calls is some 60,000), and it keeps what JSON.parse may be made to build
 * from one large text to about a tenth of a second.
 */
export const DEFAULT_MAX_JSON_VALUES = 100_000;

/**
 * The lowest `limits.max_json_values` the config accepts: no text of DEPTH_SCAN_MIN_BYTES or less
 * can hold more values (each counts at least one byte), so the bound holds for the texts that are
 * not scanned too.
 */
export const MIN_MAX_JSON_VALUES = DEPTH_SCAN_MIN_BYTES;

/** How many bytes `byte` `bytes` holds (strings included), counting no further than `cap`. */
function countUpTo(bytes: Uint8Array, byte: number, cap: number): number {
  let count = 0;
  let i = -1;
  while (count < cap && (i = bytes.indexOf(byte, i + 1)) !== -1) count++;
  return count;
}

/**
 * The refusal for a JSON text over a scanJson bound. `what`: the text as the error names it
 * (`request body`, `field 'params_json'`); `path`: its location.
 */
export function jsonScanError(problem: JsonScanProblem, what: string, path: string, maxDepth: number, maxValues: number): WardenError {
  const message =
    problem === 'depth'
      ? `${what} is nested deeper than ${maxDepth} levels (limits.max_json_depth)`
      : `${what} holds more than ${maxValues} JSON values (arrays, objects and the entries between commas; limits.max_json_values)`;
  return new WardenError('invalid_request', message, { location: { path } });
}
