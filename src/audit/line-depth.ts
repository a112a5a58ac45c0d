/**
 * A nesting check on a record's line before it is parsed. `JSON.parse` takes any depth without
 * recursing, and builds every level: a 16 MiB line of `[[[[…]]]]` (8 million arrays) took
 * `warden audit verify` (and a resume from such a last line) past a gigabyte of memory before it
 * could call the line broken. No record Warden writes nests more than a few levels.
 */

/** The deepest nesting a record's line may have (Warden's records have 3). */
export const MAX_RECORD_DEPTH = 32;

/** Whether the JSON text `line` opens more than `max` objects or arrays at once (strings skipped). */
export function nestsDeeperThan(line: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash: the next unit is escaped (a quote included)
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
