/**
 * The text of a file a user writes (the config, templates, policies and their data files, `warden
 * policy` inputs, a JWKS file). Node's `utf8` decoding never fails: a byte that is not UTF-8
 * becomes U+FFFD and a NUL is kept, so a value would change silently (a template's prompt, an
 * `issuer` no token then matches). Such a file is refused instead, with the line and column of
 * its first bad byte. Control characters other than tab, LF and CR (C0, DEL and C1, as the
 * model-name rule counts them) are refused too: YAML 1.2 does not allow them in a stream (nor, but
 * for NEL, DEL and C1), in JSON they can only be a mistake, and a C1 CSI starts a terminal escape.
 */

import type { Steps } from './time-slices.js';

/** Raised for a file that is not UTF-8 text; `reason` never quotes the file. */
export class TextDecodeError extends Error {
  readonly code = 'ENOTTEXT';
  constructor(
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super(`${reason} at line ${line}, column ${column}`);
    this.name = 'TextDecodeError';
  }
}

// ignoreBOM keeps a leading BOM in the text, as Node's `utf8` decoding does: the YAML parser's
// offsets (and so every other error's column) count it.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** C0 controls but tab (09), LF (0A) and CR (0D); DEL (7F); C1 (80-9F). */
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/; // eslint-disable-line no-control-regex

/** Decodes a file's bytes as UTF-8 text; throws TextDecodeError at the first bad byte. */
export function decodeText(bytes: Uint8Array): string {
  let text: string;
  try {
    text = STRICT_UTF8.decode(bytes);
  } catch {
    // TextDecoder says only that the bytes are bad, not where: find the first bad sequence.
    const offset = firstInvalidUtf8(bytes);
    const { line, column } = positionAfter(STRICT_UTF8.decode(bytes.subarray(0, offset)));
    throw new TextDecodeError(line, column, 'not valid UTF-8');
  }
  const control = FORBIDDEN_CONTROL.exec(text);
  if (control) {
    const { line, column } = positionAfter(text.slice(0, control.index));
    throw new TextDecodeError(line, column, controlCharacterMessage(control[0]));
  }
  return text;
}

/** Bytes decodeTextSteps decodes per step: about a millisecond's work. */
const DECODE_CHUNK = 1 << 18;

/**
 * decodeText's work a chunk at a time, yielding between chunks (time-slices.ts): a data file of
 * several MB took tens of ms to decode and check on a loaded machine, in one step. Bytes that are
 * not clean text are handed to decodeText whole, for its error and its place.
 */
export function* decodeTextSteps(bytes: Uint8Array): Steps<string> {
  if (bytes.length <= DECODE_CHUNK) return decodeText(bytes);
  // Streaming keeps a sequence cut between two chunks whole; a fresh decoder starts clean.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const parts: string[] = [];
  try {
    for (let at = 0; at < bytes.length; at += DECODE_CHUNK) {
      const end = Math.min(bytes.length, at + DECODE_CHUNK);
      const part = decoder.decode(bytes.subarray(at, end), { stream: end < bytes.length });
      if (FORBIDDEN_CONTROL.test(part)) return decodeText(bytes);
      parts.push(part);
      yield;
    }
  } catch {
    return decodeText(bytes);
  }
  return parts.join('');
}

/** The first control character `text` holds that YAML does not allow (see FORBIDDEN_CONTROL), if any. */
export function forbiddenControl(text: string): string | undefined {
  return FORBIDDEN_CONTROL.exec(text)?.[0];
}

/** Why `char` (a control character, see forbiddenControl) is refused; `note` adds to the parenthesis. */
export function controlCharacterMessage(char: string, note?: string): string {
  const code = char.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return `control character U+${code} is not allowed (of the control characters only tab, line feed and carriage return are${note ? `; ${note}` : ''})`;
}

/** Line and column (1-based) of `text[offset]`, counted as positionAfter does. */
export function linePosition(text: string, offset: number): { line: number; column: number } {
  return positionAfter(text.slice(0, offset));
}

/**
 * Line and column (1-based) of the character that follows `before`. Lines end at LF and columns
 * count UTF-16 units, as the `yaml` library's LineCounter does for every other error.
 */
function positionAfter(before: string): { line: number; column: number } {
  let line = 1;
  for (let i = before.indexOf('\n'); i !== -1; i = before.indexOf('\n', i + 1)) line++;
  return { line, column: before.length - (before.lastIndexOf('\n') + 1) + 1 };
}

/**
 * Offset of the first byte of the first sequence that is not well-formed UTF-8 (Unicode table
 * 3-7: no overlong forms, no surrogates, nothing past U+10FFFF), or `bytes.length` when none is.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let more: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) more = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      if (c === 0xf4) hi = 0x8f; // past U+10FFFF
    } else return i;
    for (let k = 1; k <= more; k++) {
      const b = i + k < n ? bytes[i + k]! : -1;
      if (b < (k === 1 ? lo : 0x80) || b > (k === 1 ? hi : 0xbf)) return i;
    }
    i += more + 1;
  }
  return n;
}
