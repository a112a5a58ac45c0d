/**
 * Whether an API key can go in an `Authorization: Bearer` header as it is. undici refuses a header
 * value holding CR, LF or NUL, or a character beyond Latin-1, and the call would then fail as a
 * bare `upstream_error` with nothing sent and nothing logged; other control characters are no
 * part of any key either. Trailing spaces and tabs pass: HTTP drops them (the upstream reads
 * the key without them, as it did before this check); leading ones do not (`Bearer  key`). The usual cause is an env value with a trailing newline (a Kubernetes
 * `secretKeyRef` made from a file): env values are used as they are, file values lose one newline.
 */

/** Why `key` cannot be sent (value-free, to follow "the API key"), or undefined when it can. */
export function apiKeyProblem(key: string): string | undefined {
  if (key === '') return 'is empty';
  let control = false;
  let wide = false;
  let lineBreak = false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    // The common key is visible ASCII only: one comparison pair per character.
    if (c > 0x20 && c < 0x7f) continue;
    // A space, or a tab, is no part of a header value's ends (RFC 9110 §5.5: the upstream reads
    // the key without them) and may stand inside one.
    if (c === 0x20 || c === 0x09) continue;
    if (c === 0x0a || c === 0x0d) lineBreak = true;
    else if (c < 0x20 || c === 0x7f) control = true;
    else if (c > 0xff) wide = true;
  }
  const header = 'cannot be sent in an HTTP header';
  if (lineBreak) return `${header}: it holds a line break (env:// values are not trimmed; file: values lose one trailing newline only)`;
  if (control) return `${header}: it holds a control character`;
  if (wide) return `${header}: it holds a character beyond Latin-1`;
  // After `Bearer ` a leading one would be read as part of the separator, or as an empty token.
  if (key.startsWith(' ') || key.startsWith('\t')) return `${header} as it is: it begins with a space or a tab`;
  return undefined;
}
