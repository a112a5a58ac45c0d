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
 * `original` as the body of a JSON string. A value the caller wrote with `\uXXXX` escapes of
 * printable characters (`jane\u0040example.com` in a tool result) is one already, and it is the
 * value the model read decoded: escaped once more, the app would parse the escapes as text
 * (`jane\\u0040…`). Any other escape (`\n`, `\"`, `\\`) is escaped as the rest is: kept, it would
 * decode to a control character, a quote or a backslash inside JSON nested in the arguments.
 */
function jsonStringBody(original: string): string {
  if (original.indexOf('\\') >= 0 && onlyPrintableUnicodeEscapes(original)) return original;
  return JSON.stringify(original).slice(1, -1);
}

/**
 * Whether every backslash of `s` begins a `\uXXXX` escape of a printable character (not a control
 * character, `"` or `\`), and `s` holds no character a JSON string must escape.
 */
function onlyPrintableUnicodeEscapes(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92) {
      const hex = s.slice(i + 2, i + 6);
      if (s.charCodeAt(i + 1) !== 117 || !HEX4.test(hex)) return false;
      const code = parseInt(hex, 16);
      if (code < 0x20 || code === 0x22 || code === 0x5c) return false;
      i += 5;
    } else if (c < 0x20 || c === 0x22) return false;
  }
  return true;
}

const HEX4 = /^[0-9a-fA-F]{4}$/;
