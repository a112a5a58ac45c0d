/**
 * `{{name}}` placeholders. A message's content is split once into literal and variable segments;
 * rendering then only concatenates, so a value is inserted as data and never re-scanned (a value
 * containing `{{x}}` stays literal). There is no escaping and no expression language on purpose.
 */

export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A literal string, or the index of a variable in the compiled template's variable list. */
export type Segment = string | { readonly variable: string };

export interface PlaceholderProblem {
  /** Offset of the offending `{{` within the content. */
  offset: number;
  message: string;
}

export interface ParsedContent {
  segments: Segment[];
  variables: string[];
  problems: PlaceholderProblem[];
}

/** What is wrong inside `{{ }}`, without repeating it (a load error must not echo a pasted secret). */
function malformedWhy(inner: string): string {
  if (inner === '') return 'it is empty';
  if (inner.includes('{')) return 'it contains "{" (there is no escape syntax)';
  if (/\s/.test(inner)) return 'it contains white space';
  if (/^[0-9]/.test(inner)) return 'it starts with a digit';
  return 'it contains characters other than letters, digits and _';
}

/** Splits `content` into segments. Malformed placeholders are reported, never guessed at. */
export function parsePlaceholders(content: string): ParsedContent {
  const segments: Segment[] = [];
  const variables: string[] = [];
  const problems: PlaceholderProblem[] = [];
  let pos = 0;
  let literal = '';
  while (pos < content.length) {
    const open = content.indexOf('{{', pos);
    if (open < 0) break;
    const close = content.indexOf('}}', open + 2);
    if (close < 0) {
      problems.push({ offset: open, message: 'unclosed placeholder "{{" (no matching "}}")' });
      break;
    }
    const name = content.slice(open + 2, close).trim();
    if (!VARIABLE_NAME.test(name)) {
      problems.push({ offset: open, message: `malformed placeholder at character ${open} of the content: ${malformedWhy(name)} (expected {{name}}; its text is not repeated)` });
      literal += content.slice(pos, close + 2);
      pos = close + 2;
      continue;
    }
    literal += content.slice(pos, open);
    if (literal !== '') segments.push(literal);
    literal = '';
    segments.push({ variable: name });
    if (!variables.includes(name)) variables.push(name);
    pos = close + 2;
  }
  literal += content.slice(pos);
  if (literal !== '') segments.push(literal);
  return { segments, variables, problems };
}
