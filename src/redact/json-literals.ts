/**
 * The literals of a JSON text, by position: what lets the prompt side redact tool-call
 * arguments in place (only the literals that hold a finding change; everything else, spacing,
 * escapes and numbers JavaScript cannot hold exactly such as `12345678901234567890` or `1.10`,
 * stays byte for byte). And for the answer side, where arguments may arrive in pieces: a lexical
 * reading of JSON text from any point (in a string or not), and where a finding's replacement
 * goes so the arguments stay JSON.
 */
import type { Finding } from './types.js';

export interface JsonLiteral {
  /** `name`: a member name (an object's key), a string too. */
  kind: 'string' | 'number' | 'name';
  /** UTF-16 offsets in the JSON text, end exclusive; a string's include its quotes. */
  start: number;
  end: number;
  /** For a name: which object it belongs to (objects numbered in the order they open, from 1). */
  object: number;
}

const QUOTE = 0x22;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
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
 * String, number and member-name literals of `text`, which must be valid JSON (the caller parsed
 * it first, so this walk only has to tell literals apart, not validate). A name carries its
 * object, so the caller can keep an object's names unique when it rewrites them.
 */
export function jsonLiterals(text: string): JsonLiteral[] {
  const out: JsonLiteral[] = [];
  /** The open objects, innermost last (arrays hold no names, so they need no entry). */
  const objects: number[] = [];
  let opened = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === OPEN_BRACE) {
      objects.push(++opened);
      i++;
    } else if (c === CLOSE_BRACE) {
      objects.pop();
      i++;
    } else if (c === QUOTE) {
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
      // A string followed by ':' is a name.
      if (text.charCodeAt(k) === 0x3a) out.push({ kind: 'name', start: i, end, object: objects[objects.length - 1] ?? 0 });
      else out.push({ kind: 'string', start: i, end, object: 0 });
      i = end;
    } else if (isNumberStart(c)) {
      let j = i + 1;
      while (j < text.length && isNumberChar(text.charCodeAt(j))) j++;
      out.push({ kind: 'number', start: i, end: j, object: 0 });
      i = j;
    } else {
      i++;
    }
  }
  return out;
}

// ---------------------------------------------------------------- answers

/**
 * Where a JSON text read so far stands: inside a string or not, and there right after the
 * backslash of an escape. Streamed tool-call arguments arrive in pieces that are not JSON on
 * their own; this is what a piece needs from the ones before it.
 */
export interface JsonLexState {
  readonly inString: boolean;
  readonly escaped: boolean;
}

export const JSON_TEXT_START: JsonLexState = Object.freeze({ inString: false, escaped: false });

/** The state after reading `text` from `state`: one pass over its units, nothing allocated. */
export function jsonStateAfter(text: string, state: JsonLexState): JsonLexState {
  let inString = state.inString;
  let escaped = state.escaped;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (escaped) escaped = false;
    else if (c === QUOTE) inString = !inString;
    else if (inString && c === BACKSLASH) escaped = true;
  }
  return inString === state.inString && escaped === state.escaped ? state : { inString, escaped };
}

/**
 * A stretch of JSON text a finding can fall in: a string's content (between its quotes), or a
 * bare value, a run outside strings that is neither punctuation nor space (a number, `true`; in
 * text that is not valid JSON, any word).
 */
export interface JsonRegion {
  kind: 'string' | 'bare';
  start: number;
  end: number;
}

export interface JsonLayout {
  /** In text order, disjoint. */
  regions: JsonRegion[];
  /** Start and end of each escape inside a string (`\n`, `\u00e9`), flat: [s0, e0, s1, e1, …]. */
  escapes: number[];
}

/** `{ } [ ] , :` */
function isPunct(c: number): boolean {
  return c === 0x7b || c === 0x7d || c === 0x5b || c === 0x5d || c === 0x2c || c === 0x3a;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/** End of the escape whose backslash is at `i`: `\u` takes up to four hex digits, any other one unit. */
function escapeEnd(text: string, i: number): number {
  let e = Math.min(text.length, i + 2);
  if (text.charCodeAt(i + 1) === 0x75) while (e < i + 6 && e < text.length && isHex(text.charCodeAt(e))) e++;
  return e;
}

/**
 * The regions and escapes of `text` read from `state`. Lexical only, so it also reads a piece of
 * JSON or JSON that is not valid, and agrees with jsonStateAfter on where strings are.
 */
export function jsonLayout(text: string, state: JsonLexState = JSON_TEXT_START): JsonLayout {
  const regions: JsonRegion[] = [];
  const escapes: number[] = [];
  const n = text.length;
  let i = 0;
  /** Start of the open string's content, -1 outside strings. */
  let open = -1;
  if (state.inString) {
    open = 0;
    if (state.escaped) i = 1; // the escape begun in the piece before ends with this unit
  }
  while (i < n) {
    const c = text.charCodeAt(i);
    if (open >= 0) {
      if (c === BACKSLASH) {
        const e = escapeEnd(text, i);
        escapes.push(i, e);
        i = e;
      } else if (c === QUOTE) {
        regions.push({ kind: 'string', start: open, end: i });
        open = -1;
        i++;
      } else i++;
    } else if (c === QUOTE) {
      open = ++i;
    } else if (isSpace(c) || isPunct(c)) {
      i++;
    } else {
      const start = i;
      do i++;
      while (i < n && !isBareEnd(text.charCodeAt(i)));
      regions.push({ kind: 'bare', start, end: i });
    }
  }
  if (open >= 0) regions.push({ kind: 'string', start: open, end: n });
  return { regions, escapes };
}

function isBareEnd(c: number): boolean {
  return c === QUOTE || isSpace(c) || isPunct(c);
}

/** Index in `escapes` of the escape `x` falls strictly inside, or -1 (binary search). */
function escapeAround(escapes: readonly number[], x: number): number {
  let lo = 0;
  let hi = escapes.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = escapes[2 * mid]!;
    if (s >= x) hi = mid - 1;
    else if (escapes[2 * mid + 1]! <= x) lo = mid + 1;
    else return 2 * mid;
  }
  return -1;
}

/** One finding's share of a JSON edit: `start`..`end` clipped to the edit. */
export interface JsonEditPart {
  finding: Finding;
  start: number;
  end: number;
}

/**
 * Where a replacement goes in JSON text. A string edit holds one finding's part of a string's
 * content. A bare edit covers a whole bare value, which is replaced by a JSON string of its
 * redaction (`4111111111111111` → `"[CREDIT_CARD]"`): a mask where a number must be is not JSON.
 */
export interface JsonEdit {
  start: number;
  end: number;
  bare: boolean;
  /** In text order; a bare value can hold several findings. */
  parts: JsonEditPart[];
}

/**
 * The edits that replace `findings` (sorted; one overlapping the one before is skipped, as
 * applyFindings skips it) in JSON `text` read from `state`. A finding is split at string and value
 * boundaries: punctuation, spaces and quotes between its parts stay, so the JSON keeps its shape.
 * A part that begins or ends inside an escape leaves the escape whole and out of it: the detectors
 * read the raw text, where `\nbob@corp.example.com` starts with the letter `n`, and replacing
 * from there would leave a lone backslash.
 */
export function jsonEdits(text: string, findings: readonly Finding[], state: JsonLexState): JsonEdit[] {
  const { regions, escapes } = jsonLayout(text, state);
  const edits: JsonEdit[] = [];
  let r = 0;
  let pos = 0;
  for (const f of findings) {
    if (f.start < pos) continue;
    pos = f.end;
    while (r < regions.length && regions[r]!.end <= f.start) r++;
    for (let k = r; k < regions.length && regions[k]!.start < f.end; k++) {
      const g = regions[k]!;
      let start = Math.max(f.start, g.start);
      let end = Math.min(f.end, g.end);
      if (g.kind === 'bare') {
        const last = edits[edits.length - 1];
        if (last !== undefined && last.bare && last.start === g.start) last.parts.push({ finding: f, start, end });
        else edits.push({ start: g.start, end: g.end, bare: true, parts: [{ finding: f, start, end }] });
        continue;
      }
      const a = escapeAround(escapes, start);
      if (a >= 0) start = escapes[a + 1]!;
      const b = escapeAround(escapes, end);
      if (b >= 0) end = escapes[b]!;
      if (start < end) edits.push({ start, end, bare: false, parts: [{ finding: f, start, end }] });
    }
  }
  return edits;
}

/**
 * `cut` (a place to split `text`, read from `state`, into what is emitted now and what waits)
 * moved back to the start of the bare value or escape it falls inside: a value must be emitted
 * whole to be quoted whole, and a split escape cannot be told from its letters. A cut after a
 * space (the usual one) is inside neither, and costs no look at the text.
 */
export function safeJsonCut(text: string, state: JsonLexState, cut: number): number {
  if (cut <= 0 || cut >= text.length || isSpace(text.charCodeAt(cut - 1))) return cut;
  const { regions, escapes } = jsonLayout(text, state);
  for (const g of regions) {
    if (g.start >= cut) break;
    if (g.kind === 'bare' && g.end > cut) return g.start;
  }
  const k = escapeAround(escapes, cut);
  return k >= 0 ? escapes[k]! : cut;
}
