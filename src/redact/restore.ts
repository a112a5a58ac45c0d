/**
 * Re-identification: placeholders `<ENTITY_n>` minted by this request's vault are replaced by
 * their original values in the model's answer, when the decision allows the caller to see them.
 * Unknown placeholders (never minted here, or minted by another request) are left as they are.
 * In JSON contexts (tool-call arguments) the original is JSON-string-escaped so the JSON stays valid.
 */
import type { TokenVault } from './modes.js';

export const PLACEHOLDER = /<[A-Z][A-Z0-9_]*_\d{1,6}>/g;

/**
 * A placeholder in JSON text (tool-call arguments), its brackets written as they are or as JSON
 * escapes: Go's encoding/json writes '<' and '>' as `\u003c` and `\u003e` (an OpenAI-compatible
 * server written in Go, Ollama's among them, re-encodes the model's arguments so), and the app's
 * JSON.parse reads the placeholder all the same.
 */
const JSON_PLACEHOLDER = /(?:<|\\u003[cC])([A-Z][A-Z0-9_]*_\d{1,6})(?:>|\\u003[eE])/g;

/** Whether the JSON text may hold a placeholder (see JSON_PLACEHOLDER): a '<', as written or escaped. */
export function mayHoldJsonPlaceholder(text: string): boolean {
  return text.indexOf('<') >= 0 || text.indexOf('\\u003') >= 0;
}

export function restorePlaceholders(text: string, vault: TokenVault, json: boolean): string {
  if (vault.size === 0) return text;
  if (json) {
    if (!mayHoldJsonPlaceholder(text)) return text;
    return text.replace(JSON_PLACEHOLDER, (whole: string, name: string, at: number) => {
      // `\\u003c` is an escaped backslash and the text `u003c`: no '<' to the app.
      if (whole.charCodeAt(0) === 92 && backslashesBefore(text, at) % 2 === 1) return whole;
      const original = vault.original(`<${name}>`);
      return original === undefined ? whole : jsonStringBody(original);
    });
  }
  if (text.indexOf('<') < 0) return text;
  return text.replace(PLACEHOLDER, (token) => vault.original(token) ?? token);
}

/** How many backslashes stand right before `at`. */
function backslashesBefore(text: string, at: number): number {
  let n = 0;
  while (at - n > 0 && text.charCodeAt(at - n - 1) === 92) n++;
  return n;
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
