/**
 * Duplicate object keys in JSON text. A JSON parser keeps one of them (JSON.parse and Go's
 * encoding/json the last) and drops the other without a word: in a policy data file, the list a
 * reviewer read first (`"blocked": [...]`) can be replaced by a second one further down. Warden
 * refuses a YAML data file with a repeated key, and a key two data files both define; a JSON data
 * file is held to the same rule.
 *
 * Runs on text JSON.parse (or the exact parser) has already accepted, so it only tracks where
 * keys are: one pass, strings skipped with indexOf, a key decoded only when it has an escape.
 * Load time only (policy data files), never the request path.
 */

export interface DuplicateKey {
  /** Offset of the repeated key's opening quote. */
  offset: number;
  /** Offset of the first key of that name in the same object. */
  first: number;
}

/** The end (offset of the closing quote; text.length: none) of the string whose opening quote is at `start`. */
export function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return text.length;
    let slashes = 0;
    for (let k = q - 1; text.charCodeAt(k) === 0x5c; k--) slashes++;
    if (slashes % 2 === 0) return q;
    from = q + 1;
  }
}

/** The first key repeated within one object of valid JSON `text`, or undefined. */
export function firstDuplicateKey(text: string): DuplicateKey | undefined {
  // Per open container: the keys of an object (name → offset), or null for an array.
  const stack: Array<Map<string, number> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const keys = stack.at(-1);
      if (expectKey && keys) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const first = keys.get(key);
        if (first !== undefined) return { offset: i, first };
        keys.set(key, i);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push(new Map());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack.at(-1) !== null && stack.length > 0;
    }
  }
  return undefined;
}

/** 1-based line and column (in UTF-16 units, as the JSON errors count) of `offset` in `text`. */
export function lineColumn(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, col: offset - lineStart + 1 };
}
