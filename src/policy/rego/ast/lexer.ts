/**
 * Rego lexer: turns source text into a flat token array in one pass.
 *
 * The parser needs to know, for each token, whether whitespace came before it (refs such as
 * `a.b[x]` and calls `f(x)` must be written without spaces, `a [x]` is two terms) and whether
 * a newline came before it (newlines separate body expressions). Both are recorded on the token
 * instead of emitting whitespace tokens, which keeps the token array small and lets the parser
 * backtrack by resetting one index.
 *
 * Lexical errors (an unterminated string, a bad escape, a stray `!`) become an `illegal` token
 * carrying the message, so that the parser reports whichever error comes first in the source.
 * Comments are dropped. Rows and columns are 1-based; columns count code points, as OPA does.
 */

import type { Location } from './nodes.js';
import { runSteps, type Steps } from '../../../pipeline/time-slices.js';

export type TokenKind =
  | 'ident'
  | 'number'
  | 'string'
  // Template strings (`$"…{x}…"`, `$\`…\``): the literal text before the first `{` (tpl-open),
  // between a `}` and the next `{` (tpl-next), after the last `}` (tpl-last), or the whole
  // string when it has no expression (tpl-whole). The expression tokens come in between; the
  // braces that delimit them are not tokens.
  | 'tpl-open'
  | 'tpl-next'
  | 'tpl-last'
  | 'tpl-whole'
  | 'eof'
  | 'illegal'
  | ':='
  | '='
  | '=='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | '+'
  | '-'
  | '*'
  | '/'
  | '%'
  | '&'
  | '|'
  | ','
  | ';'
  | ':'
  | '.'
  | '('
  | ')'
  | '['
  | ']'
  | '{'
  | '}';

export interface Token {
  readonly kind: TokenKind;
  /**
   * ident: the name; number: the literal text; string, tpl-*: the decoded value; illegal: the error
   * message; punctuation: the operator text; eof: ''.
   */
  readonly text: string;
  /** Set on string tokens written with backticks, and on the parts of a `$\`…\`` template. */
  readonly raw: boolean;
  readonly row: number;
  readonly col: number;
  /** `{file, row, col}`, built once here and shared by every node that starts at this token. */
  readonly loc: Location;
  /** Whitespace or a comment separates this token from the previous one. */
  readonly ws: boolean;
  /** A newline separates this token from the previous one. */
  readonly nl: boolean;
}

/** Words the v1 grammar reserves. `contains` is also usable as a name in term position. */
export const KEYWORDS: ReadonlySet<string> = new Set([
  'as',
  'contains',
  'default',
  'else',
  'every',
  'false',
  'if',
  'import',
  'in',
  'not',
  'null',
  'package',
  'some',
  'true',
  'with',
]);

const enum C {
  TAB = 9,
  LF = 10,
  CR = 13,
  SPACE = 32,
  BANG = 33,
  QUOTE = 34,
  HASH = 35,
  DOLLAR = 36,
  PERCENT = 37,
  AMP = 38,
  LPAREN = 40,
  RPAREN = 41,
  STAR = 42,
  PLUS = 43,
  COMMA = 44,
  MINUS = 45,
  DOT = 46,
  SLASH = 47,
  D0 = 48,
  D9 = 57,
  COLON = 58,
  SEMI = 59,
  LT = 60,
  EQ = 61,
  GT = 62,
  UA = 65,
  UZ = 90,
  LBRACK = 91,
  BACKSLASH = 92,
  RBRACK = 93,
  UNDERSCORE = 95,
  BACKTICK = 96,
  LA = 97,
  LE = 101,
  LZ = 122,
  LBRACE = 123,
  PIPE = 124,
  RBRACE = 125,
  BOM = 0xfeff,
}

function isLetter(c: number): boolean {
  return (c >= C.LA && c <= C.LZ) || (c >= C.UA && c <= C.UZ) || c === C.UNDERSCORE;
}

function isDigit(c: number): boolean {
  return c >= C.D0 && c <= C.D9;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

const SIMPLE: Record<number, TokenKind> = {
  [C.LPAREN]: '(',
  [C.RPAREN]: ')',
  [C.LBRACK]: '[',
  [C.RBRACK]: ']',
  [C.LBRACE]: '{',
  [C.RBRACE]: '}',
  [C.COMMA]: ',',
  [C.SEMI]: ';',
  [C.DOT]: '.',
  [C.PLUS]: '+',
  [C.MINUS]: '-',
  [C.STAR]: '*',
  [C.SLASH]: '/',
  [C.PERCENT]: '%',
  [C.AMP]: '&',
  [C.PIPE]: '|',
};

/** Tokens made between two pauses of tokenSteps: a fraction of a millisecond of work. */
const TOKENS_PER_STEP = 2048;

export function tokenize(src: string, file: string): Token[] {
  return runSteps(tokenSteps(src, file));
}

/**
 * tokenize's work, pausing (yield) every TOKENS_PER_STEP tokens: a 1 MiB file is some 200,000
 * tokens, 150-300 ms of work, which a load in a serving process does a slice at a time.
 */
export function* tokenSteps(src: string, file: string): Steps<Token[]> {
  const tokens: Token[] = [];
  let pauseAt = TOKENS_PER_STEP;
  const n = src.length;
  let i = 0;
  let row = 1;
  // Offset of the first code unit of the current line; columns are computed from it, counting
  // code points (a surrogate pair is one column).
  let lineStart = 0;
  let lineHasAstral = false;

  const colAt = (off: number): number => {
    if (!lineHasAstral) return off - lineStart + 1;
    let col = 1;
    for (let k = lineStart; k < off; k++) {
      const c = src.charCodeAt(k);
      if (c >= 0xd800 && c <= 0xdbff && k + 1 < off) {
        const d = src.charCodeAt(k + 1);
        if (d >= 0xdc00 && d <= 0xdfff) k++;
      }
      col++;
    }
    return col;
  };

  if (n > 0 && src.charCodeAt(0) === C.BOM) {
    i = 1;
    lineStart = 1;
  }

  let ws = false;
  let nl = false;
  // One string per distinct name: ref keys (`input.request.model`) and names end up in the
  // compiled policy, and a slice per occurrence was a copy per rule.
  const names = new Map<string, string>();
  // Template strings whose `{expression}` is being lexed, innermost last: the `{`s opened inside
  // the expression (a `}` at depth 0 ends it and resumes the string) and the string's form.
  const templates: Array<{ depth: number; raw: boolean; row: number; col: number }> = [];

  const push = (kind: TokenKind, text: string, startRow: number, startCol: number, raw = false): void => {
    tokens.push({ kind, text, raw, row: startRow, col: startCol, loc: { file, row: startRow, col: startCol }, ws, nl });
    ws = false;
    nl = false;
  };

  while (i < n) {
    if (tokens.length >= pauseAt) {
      pauseAt = tokens.length + TOKENS_PER_STEP;
      yield;
    }
    const c = src.charCodeAt(i);

    // Whitespace and comments.
    if (c === C.SPACE || c === C.TAB || c === C.CR) {
      i++;
      ws = true;
      continue;
    }
    if (c === C.LF) {
      i++;
      row++;
      lineStart = i;
      lineHasAstral = false;
      ws = true;
      nl = true;
      continue;
    }
    if (c === C.HASH) {
      while (i < n && src.charCodeAt(i) !== C.LF) i++;
      ws = true;
      continue;
    }

    const start = i;
    const col = colAt(i);

    if (isLetter(c)) {
      i++;
      while (i < n) {
        const d = src.charCodeAt(i);
        if (isLetter(d) || isDigit(d)) i++;
        else break;
      }
      const text = src.slice(start, i);
      let name = names.get(text);
      if (name === undefined) names.set(text, (name = text));
      push('ident', name, row, col);
      continue;
    }

    if (isDigit(c)) {
      const err = scanNumber();
      if (err) push('illegal', err, row, col);
      else push('number', src.slice(start, i), row, col);
      continue;
    }

    if (c === C.QUOTE) {
      const r = scanString();
      if (r.error !== undefined) push('illegal', r.error, row, r.errorCol ?? col);
      else push('string', r.value, row, col);
      continue;
    }

    if (c === C.BACKTICK) {
      const startRow = row;
      i++;
      let closed = false;
      while (i < n) {
        const d = src.charCodeAt(i);
        if (d === C.BACKTICK) {
          closed = true;
          break;
        }
        if (!rawTextChar(d)) {
          push('illegal', 'illegal null character in raw string', row, colAt(i));
          return finish();
        }
        i++;
      }
      if (!closed) {
        push('illegal', 'unterminated raw string: a `...` string needs a closing backtick', startRow, col);
        return finish();
      }
      const value = src.slice(start + 1, i);
      i++;
      push('string', value, startRow, col, true);
      continue;
    }

    const simple = SIMPLE[c];
    if (simple !== undefined) {
      const tpl = templates.length > 0 ? templates[templates.length - 1]! : undefined;
      if (tpl !== undefined && c === C.RBRACE && tpl.depth === 0) {
        templates.pop();
        i++;
        if (!templatePart(tpl.raw, false, row, col)) return finish();
        continue;
      }
      if (tpl !== undefined && c === C.LBRACE) tpl.depth++;
      else if (tpl !== undefined && c === C.RBRACE) tpl.depth--;
      i++;
      push(simple, simple, row, col);
      continue;
    }

    const next = i + 1 < n ? src.charCodeAt(i + 1) : -1;
    switch (c) {
      case C.COLON:
        if (next === C.EQ) {
          i += 2;
          push(':=', ':=', row, col);
        } else {
          i++;
          push(':', ':', row, col);
        }
        continue;
      case C.EQ:
        if (next === C.EQ) {
          i += 2;
          push('==', '==', row, col);
        } else {
          i++;
          push('=', '=', row, col);
        }
        continue;
      case C.LT:
        if (next === C.EQ) {
          i += 2;
          push('<=', '<=', row, col);
        } else {
          i++;
          push('<', '<', row, col);
        }
        continue;
      case C.GT:
        if (next === C.EQ) {
          i += 2;
          push('>=', '>=', row, col);
        } else {
          i++;
          push('>', '>', row, col);
        }
        continue;
      case C.BANG:
        if (next === C.EQ) {
          i += 2;
          push('!=', '!=', row, col);
        } else {
          i++;
          push('illegal', 'unexpected "!": write "!=" for "not equal", or "not" to negate an expression', row, col);
        }
        continue;
      case C.DOLLAR:
        if (next === C.QUOTE || next === C.BACKTICK) {
          i += 2;
          if (!templatePart(next === C.BACKTICK, true, row, col)) return finish();
          continue;
        }
        i++;
        push('illegal', 'unexpected "$": names may contain only letters, digits and "_"', row, col);
        continue;
      case 0:
        i++;
        push('illegal', 'illegal null character', row, col);
        continue;
      default: {
        // Any other character, including non-ASCII letters, which Rego names may not contain.
        const cp = src.codePointAt(i)!;
        const ch = String.fromCodePoint(cp);
        i += ch.length;
        if (cp > 0xffff) lineHasAstral = true;
        push('illegal', `unexpected character ${JSON.stringify(ch)}`, row, col);
        continue;
      }
    }
  }
  return finish();

  /**
   * Lexes one literal part of a template string, from `i` (just past `$"`, `` $` `` or the `}`
   * that ended an expression) to the `{` that starts the next expression or the closing quote,
   * and pushes its token. As OPA's scanner: `\{` is a literal `{` in both forms; a `$"…"` part
   * takes the JSON escapes of a string and ends at the line's end, a `` $`…` `` part is raw and
   * may span lines. False when the string is unterminated (an illegal token was pushed).
   */
  function templatePart(raw: boolean, first: boolean, startRow: number, startCol: number): boolean {
    const r = raw ? scanRawTemplate() : scanString(true);
    if (r.error !== undefined) {
      push('illegal', r.error, r.errorRow ?? startRow, r.errorCol ?? startCol);
      return false;
    }
    if (r.brace) templates.push({ depth: 0, raw, row: startRow, col: startCol });
    const kind: TokenKind = first ? (r.brace ? 'tpl-open' : 'tpl-whole') : r.brace ? 'tpl-next' : 'tpl-last';
    push(kind, r.value, startRow, startCol, raw);
    return true;
  }

  /**
   * The line bookkeeping for character `d` at `i` of raw text that may span lines (a `` `…` ``
   * string, a `` $`…` `` part): columns after it count from its line. False for a NUL, which no
   * string may hold.
   */
  function rawTextChar(d: number): boolean {
    if (d === C.LF) {
      row++;
      lineStart = i + 1;
      lineHasAstral = false;
    } else if (d >= 0xd800 && d <= 0xdbff) {
      lineHasAstral = true;
    } else if (d === 0) {
      return false;
    }
    return true;
  }

  /** A `` $`…` `` part: raw text up to an unescaped `{` or the closing backtick. */
  function scanRawTemplate(): { value: string; brace: boolean; error?: undefined; errorRow?: undefined; errorCol?: undefined } | { error: string; errorRow?: number; errorCol?: number } {
    let out = '';
    let segment = i;
    while (i < n) {
      const d = src.charCodeAt(i);
      if (d === C.BACKTICK || d === C.LBRACE) {
        out += src.slice(segment, i);
        i++;
        return { value: out, brace: d === C.LBRACE };
      }
      if (d === C.BACKSLASH && i + 1 < n && src.charCodeAt(i + 1) === C.LBRACE) {
        out += src.slice(segment, i) + '{';
        i += 2;
        segment = i;
        continue;
      }
      if (!rawTextChar(d)) return { error: 'illegal null character in template string', errorRow: row, errorCol: colAt(i) };
      i++;
    }
    return { error: 'unterminated template string: a $`...` string needs a closing backtick' };
  }

  function finish(): Token[] {
    // A `{expression}` still open at the end: name the template string, not the end of the file.
    const open = templates.pop();
    if (open !== undefined && tokens[tokens.length - 1]?.kind !== 'illegal') {
      push('illegal', 'unterminated template string: an expression "{" without its "}"', open.row, open.col);
    }
    const col = colAt(Math.min(i, n));
    tokens.push({ kind: 'eof', text: '', raw: false, row, col, loc: { file, row, col }, ws, nl });
    return tokens;
  }

  /** Scans digits [. digits] [e [+-] digits]; returns an error message or undefined. */
  function scanNumber(): string | undefined {
    while (i < n && isDigit(src.charCodeAt(i))) i++;
    if (i < n && src.charCodeAt(i) === C.DOT) {
      i++;
      const f = i;
      while (i < n && isDigit(src.charCodeAt(i))) i++;
      if (i === f) return 'invalid number: expected digits after the decimal point';
    }
    if (i < n && (src.charCodeAt(i) | 0x20) === C.LE) {
      i++;
      if (i < n && (src.charCodeAt(i) === C.PLUS || src.charCodeAt(i) === C.MINUS)) i++;
      const e = i;
      while (i < n && isDigit(src.charCodeAt(i))) i++;
      if (i === e) return 'invalid number: expected digits in the exponent';
    }
    if (i < n && isLetter(src.charCodeAt(i))) {
      while (i < n && (isLetter(src.charCodeAt(i)) || isDigit(src.charCodeAt(i)))) i++;
      return 'invalid number: a number may not be followed directly by letters';
    }
    return undefined;
  }

  /**
   * Scans a "..." string and decodes JSON escapes. For a template part (`tpl`), `i` is already
   * past the opening, the part also ends at an unescaped `{` (brace: true), and `\{` is `{`.
   */
  function scanString(
    tpl = false,
  ): { value: string; brace: boolean; error?: undefined; errorRow?: undefined; errorCol?: undefined } | { value?: undefined; error: string; errorRow?: undefined; errorCol?: number } {
    if (!tpl) i++; // opening quote
    let out = '';
    let hadUnicodeEscape = false;
    let segment = i;
    while (true) {
      if (i >= n || src.charCodeAt(i) === C.LF) {
        return {
          error: tpl
            ? 'unterminated template string: a $"..." string must end on the same line (use $`...` for several lines)'
            : 'unterminated string: a "..." string must end on the same line (use a `raw string` for several lines)',
        };
      }
      const d = src.charCodeAt(i);
      if (d === C.QUOTE || (tpl && d === C.LBRACE)) {
        out += src.slice(segment, i);
        i++;
        return { value: hadUnicodeEscape ? fixSurrogates(out) : out, brace: d === C.LBRACE };
      }
      if (d === 0) return { error: 'illegal null character in string', errorCol: colAt(i) };
      if (d >= 0xd800 && d <= 0xdbff) lineHasAstral = true;
      if (d !== C.BACKSLASH) {
        i++;
        continue;
      }
      out += src.slice(segment, i);
      const escCol = colAt(i);
      const e = i + 1 < n ? src.charCodeAt(i + 1) : -1;
      i += 2;
      switch (e) {
        case C.QUOTE:
          out += '"';
          break;
        case C.BACKSLASH:
          out += '\\';
          break;
        case C.SLASH:
          out += '/';
          break;
        case 98: // b
          out += '\b';
          break;
        case 102: // f
          out += '\f';
          break;
        case 110: // n
          out += '\n';
          break;
        case 114: // r
          out += '\r';
          break;
        case 116: // t
          out += '\t';
          break;
        case 117: {
          // u: four hex digits; surrogate pairs are two escapes, combined as JSON does
          const hex = src.slice(i, i + 4);
          if (hex.length < 4 || !isHex(hex.charCodeAt(0)) || !isHex(hex.charCodeAt(1)) || !isHex(hex.charCodeAt(2)) || !isHex(hex.charCodeAt(3))) {
            // Skip to the end of the string so the error names this string only.
            return { error: 'invalid escape in string: \\u must be followed by four hex digits', errorCol: escCol };
          }
          out += String.fromCharCode(parseInt(hex, 16));
          hadUnicodeEscape = true;
          i += 4;
          break;
        }
        default:
          if (tpl && e === C.LBRACE) {
            out += '{';
            break;
          }
          return {
            error: `invalid escape in string: "\\${e < 0 ? '' : String.fromCharCode(e)}" (allowed: \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)`,
            errorCol: escCol,
          };
      }
      segment = i;
    }
  }
}

/** Replaces unpaired surrogates with U+FFFD, as Go's JSON decoder (and so OPA) does. */
export function fixSurrogates(s: string): string {
  // Fast path: almost every string has no surrogates.
  if (!/[\ud800-\udfff]/.test(s)) return s;
  let out = '';
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = k + 1 < s.length ? s.charCodeAt(k + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[k]! + s[k + 1]!;
        k++;
      } else out += '\ufffd';
    } else if (c >= 0xdc00 && c <= 0xdfff) out += '\ufffd';
    else out += s[k]!;
  }
  return out;
}
