/**
 * Character counts for the limits a caller meets (the ingress's `max_variable_length`, a
 * template's `max_length`): one counter, so the two limits agree on what a character is.
 */

/**
 * Whether `s` has more than `max` characters, counted as code points: a surrogate pair (an emoji)
 * is one character, and so is a lone surrogate (a high one not followed by a low one counts alone,
 * never swallowing the next unit). Counted only when the UTF-16 length cannot decide.
 */
export function longerThanCodePoints(s: string, max: number): boolean {
  if (s.length <= max) return false;
  if (s.length > 2 * max) return true;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++; // a surrogate pair is one character
    }
    if (++n > max) return true;
  }
  return false;
}
