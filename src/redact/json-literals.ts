/**
 * The value literals of a JSON text, by position: what lets the prompt side redact tool-call
 * arguments in place (only the literals that hold a finding change; everything else, spacing,
 * escapes and numbers JavaScript cannot hold exactly such as `12345678901234567890` or `1.10`,
 * stays byte for byte).
 */

export interface JsonLiteral {
  kind: 'string' | 'number';
  /** UTF-16 offsets in the JSON text, end exclusive; a string's include its quotes. */
  start: number;
  end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isNumberStart(c: number): boolean {
  return c === 0x2d || (c >= 0x30 && c <= 0x39); // '-' or a digit
}

function isNumberChar(c: number): boolean {
  // digits, '.', 'e', 'E', '+', '-'
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * String and number literals of `text`, which must be valid JSON (the caller parsed it first, so
 * this walk only has to tell literals apart, not validate). Member names are left out: they are
 * keys the tool's schema fixed, and the prompt side has never rewritten them.
 */
export function jsonValueLiterals(text: string): JsonLiteral[] {
  const out: JsonLiteral[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let j = i + 1;
      while (j < text.length) {
        const d = text.charCodeAt(j);
        if (d === BACKSLASH) j += 2;
        else if (d === QUOTE) break;
        else j++;
      }
      const end = j + 1;
      let k = end;
      while (k < text.length && isSpace(text.charCodeAt(k))) k++;
      if (text.charCodeAt(k) !== 0x3a) out.push({ kind: 'string', start: i, end }); // not followed by ':'
      i = end;
    } else if (isNumberStart(c)) {
      let j = i + 1;
      while (j < text.length && isNumberChar(text.charCodeAt(j))) j++;
      out.push({ kind: 'number', start: i, end: j });
      i = j;
    } else {
      i++;
    }
  }
  return out;
}
