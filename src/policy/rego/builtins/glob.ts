/**
 * `glob.match(pattern, delimiters, match)` with the semantics of gobwas/glob as OPA uses it:
 * `*` any run of non-delimiter characters, `**` any run at all, `?` one non-delimiter
 * character, `[abc]` / `[a-z]` / `[!abc]` classes, `{a,b}` alternatives (which may hold
 * patterns), `\` escapes. Delimiters `[]` mean `["."]`; `null` means none. The pattern is
 * compiled to an anchored RE2 expression once and cached.
 */
import RE2 from 're2';
import type { Value } from '../value.js';
import type { BuiltinDef } from './types.js';
import { builtinErr, def, elemErr, str, typeErr } from './util.js';

const META = /[\\^$.|?*+()[\]{}]/g;
const escapeRe = (s: string): string => s.replace(META, '\\$&');

/** Escape one code point for use inside an RE2 character class. */
const escapeClass = (c: string): string => (/[\\\]^[-]/.test(c) ? '\\' + c : c);

class GlobSyntaxError extends Error {}

/** Compiles a glob to RE2 source (without anchors). */
export function globToRegex(pattern: string, delimiters: readonly string[]): string {
  const chars = Array.from(pattern);
  const notDelim = delimiters.length ? '[^' + delimiters.map(escapeClass).join('') + ']' : '.';
  let i = 0;

  // Parses until `stop` (one of the given terminators at brace depth of this call) or the end.
  const parse = (inBraces: boolean): string => {
    let out = '';
    while (i < chars.length) {
      const c = chars[i]!;
      if (inBraces && (c === ',' || c === '}')) return out;
      i++;
      switch (c) {
        case '\\': {
          if (i >= chars.length) throw new GlobSyntaxError('unexpected end of input after escape');
          out += escapeRe(chars[i++]!);
          break;
        }
        case '*':
          if (chars[i] === '*') {
            while (chars[i] === '*') i++;
            out += '.*';
          } else out += notDelim + '*';
          break;
        case '?':
          out += notDelim;
          break;
        case '[': {
          let negate = false;
          if (chars[i] === '!') {
            negate = true;
            i++;
          }
          let cls = '';
          let closed = false;
          while (i < chars.length) {
            const d = chars[i++]!;
            if (d === ']') {
              closed = true;
              break;
            }
            if (chars[i] === '-' && i + 1 < chars.length && chars[i + 1] !== ']') {
              const hi = chars[i + 1]!;
              if (hi < d) throw new GlobSyntaxError(`invalid range ${d}-${hi}`);
              cls += escapeClass(d) + '-' + escapeClass(hi);
              i += 2;
            } else cls += escapeClass(d);
          }
          if (!closed) throw new GlobSyntaxError('unclosed character class');
          if (cls === '') throw new GlobSyntaxError('empty character class');
          out += (negate ? '[^' : '[') + cls + ']';
          break;
        }
        case '{': {
          const alts: string[] = [];
          for (;;) {
            alts.push(parse(true));
            if (i >= chars.length) throw new GlobSyntaxError('unclosed alternatives');
            const t = chars[i++]!;
            if (t === '}') break;
          }
          out += '(?:' + alts.join('|') + ')';
          break;
        }
        default:
          out += escapeRe(c);
      }
    }
    return out;
  };
  const body = parse(false);
  if (i < chars.length) throw new GlobSyntaxError(`unexpected ${chars[i]}`);
  return body;
}

function delimitersOf(args: Value[]): string[] {
  const d = args[1]!;
  if (d === null) return [];
  if (!Array.isArray(d)) throw typeErr('glob.match', 2, d, 'array', 'null');
  const out: string[] = [];
  for (const x of d) {
    if (typeof x !== 'string') throw elemErr('glob.match', 2, d, x, 'string');
    const cps = Array.from(x);
    // Each delimiter is one character, as OPA requires.
    if (cps.length !== 1) throw elemErr('glob.match', 2, d, x, 'rune');
    out.push(cps[0]!);
  }
  return out.length === 0 ? ['.'] : out;
}

/**
 * A compiled glob. Most policy globs are a literal (`payments/checkout`) or a literal and one
 * trailing `*` (`billing/*`): those match with string operations, skipping the regex engine.
 */
type Matcher =
  | { kind: 'exact'; text: string }
  | { kind: 'prefix'; prefix: string; delims: readonly string[] }
  | { kind: 're'; re: RE2 }
  | { kind: 'error'; message: string };

const GLOB_META = /[\\*?[\]{}]/;
const MAX_CACHED = 1000;
/** Per delimiter set (joined), compiled patterns. Cleared when it grows past MAX_CACHED. */
const matchers = new Map<string, Map<string, Matcher>>();
let cachedCount = 0;

function compileGlob(pattern: string, delims: readonly string[]): Matcher {
  if (!GLOB_META.test(pattern)) return { kind: 'exact', text: pattern };
  const star = pattern.indexOf('*');
  if (star === pattern.length - 1 && !GLOB_META.test(pattern.slice(0, -1))) {
    return { kind: 'prefix', prefix: pattern.slice(0, -1), delims };
  }
  try {
    return { kind: 're', re: new RE2('^(?s:' + globToRegex(pattern, delims) + ')$') };
  } catch (e) {
    return { kind: 'error', message: e instanceof Error ? e.message : String(e) };
  }
}

function matcherFor(pattern: string, delims: readonly string[]): Matcher {
  const dkey = delims.length === 1 ? delims[0]! : delims.join('');
  let byPattern = matchers.get(dkey);
  if (byPattern === undefined) {
    byPattern = new Map();
    matchers.set(dkey, byPattern);
  }
  let m = byPattern.get(pattern);
  if (m === undefined) {
    if (cachedCount >= MAX_CACHED) {
      // Patterns built from input must not grow memory without bound.
      matchers.clear();
      cachedCount = 0;
      byPattern = new Map();
      matchers.set(dkey, byPattern);
    }
    m = compileGlob(pattern, delims);
    byPattern.set(pattern, m);
    cachedCount++;
  }
  return m;
}

function globMatch(m: Matcher, subject: string): boolean {
  switch (m.kind) {
    case 'exact':
      return subject === m.text;
    case 'prefix': {
      if (!subject.startsWith(m.prefix)) return false;
      for (let i = m.prefix.length; i < subject.length; i++) if (m.delims.includes(subject[i]!)) return false;
      return true;
    }
    case 're':
      return m.re.test(subject);
    case 'error':
      throw builtinErr('glob.match', m.message);
  }
}

/** `[]` means `["."]` and `null` none, as OPA; computed once for the two common literals. */
const DEFAULT_DELIMS: readonly string[] = ['.'];
const NO_DELIMS: readonly string[] = [];

/** The common one-delimiter case (`["/"]`, `["."]`) without allocating per call. */
const singles = new Map<string, readonly string[]>();
function singleDelim(c: string): readonly string[] {
  let a = singles.get(c);
  if (a === undefined) {
    a = [c];
    if (singles.size < 256) singles.set(c, a);
  }
  return a;
}

export const GLOB: BuiltinDef[] = [
  def('glob.match', 3, (args) => {
    const pattern = str('glob.match', args, 0);
    const d = args[1]!;
    const delims =
      d === null
        ? NO_DELIMS
        : Array.isArray(d) && d.length === 0
          ? DEFAULT_DELIMS
          : Array.isArray(d) && d.length === 1 && typeof d[0] === 'string' && d[0].length === 1
            ? singleDelim(d[0])
            : delimitersOf(args);
    return globMatch(matcherFor(pattern, delims), str('glob.match', args, 2));
  }),
  def('glob.quote_meta', 1, (args) => str('glob.quote_meta', args, 0).replace(/[*?\\[\]{}]/g, '\\$&')),
];
