/**
 * Paths as the JSON built-ins (`json.patch`, `json.filter`, `json.remove`) accept them: a JSON
 * pointer string (`"/a/0/b"`, leading `/` optional, `~1` for `/` and `~0` for `~`) or an array
 * of segments used as given. The empty string is the empty path.
 */
import type { Value } from '../value.js';

/** The segments of `p`, or undefined when `p` is neither a string nor an array. */
export function pathSegments(p: Value | undefined): Value[] | undefined {
  if (typeof p === 'string') {
    if (p === '') return [];
    return p
      .replace(/^\/+/, '')
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  }
  if (Array.isArray(p)) return p;
  return undefined;
}
