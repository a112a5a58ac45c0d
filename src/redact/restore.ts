/**
 * Re-identification: placeholders `<ENTITY_n>` minted by this request's vault are replaced by
 * their original values in the model's answer, when the decision allows the caller to see them.
 * Unknown placeholders (never minted here, or minted by another request) are left as they are.
 * In JSON contexts (tool-call arguments) the original is JSON-string-escaped so the JSON stays valid.
 */
import type { TokenVault } from './modes.js';

export const PLACEHOLDER = /<[A-Z][A-Z0-9_]*_\d{1,6}>/g;

export function restorePlaceholders(text: string, vault: TokenVault, json: boolean): string {
  if (vault.size === 0 || text.indexOf('<') < 0) return text;
  return text.replace(PLACEHOLDER, (token) => {
    const original = vault.original(token);
    if (original === undefined) return token;
    return json ? jsonStringBody(original) : original;
  });
}

/**
 * `original` as the body of a JSON string. A value the caller wrote with JSON escapes
 * (`jane\u0040example.com` in a tool result) is one already, and it is the value the model read
 * decoded: escaped once more, the app would parse the escapes as text (`jane\\u0040…`). Anything
 * else (a quote, a line break, a lone backslash) is escaped.
 */
function jsonStringBody(original: string): string {
  if (original.indexOf('\\') >= 0) {
    try {
      JSON.parse(`"${original}"`);
      return original;
    } catch {
      // not a JSON string's body: escaped below
    }
  }
  return JSON.stringify(original).slice(1, -1);
}
