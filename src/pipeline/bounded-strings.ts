/**
 * A bounded copy of a list of strings a policy wrote (its reasons, the models a decision allows).
 * A policy's words are its own and unbounded: a rule that makes one reason per entry of a large
 * data list makes megabytes of them. The record, the HTTP error body and the gRPC trailers each
 * keep a part: the strings that fit, in order, then one last string counting the rest, so the
 * reader knows the list was cut and by how much.
 */

/** The most reason text (UTF-16 units) a record or an HTTP error keeps: far above what a policy says, far below a line's limit. */
export const MAX_REASONS_CHARS = 64 * 1024;

/**
 * The leading `items` whose lengths add up to at most `maxChars`, then `note(rest)` for the `rest`
 * left out; `items` itself (not a copy) when all fit, so the common short list costs nothing.
 */
export function boundedStrings(items: readonly string[], maxChars: number, note: (rest: number) => string): readonly string[] {
  let chars = 0;
  for (let i = 0; i < items.length; i++) {
    chars += items[i]!.length;
    if (chars > maxChars) {
      const kept = items.slice(0, i);
      kept.push(note(items.length - i));
      return kept;
    }
  }
  return items;
}
