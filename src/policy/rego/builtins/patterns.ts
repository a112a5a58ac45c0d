/**
 * Compiled-pattern cache for `regex.*`. Patterns compile with RE2 (the
 * syntax OPA's Go regexp accepts, and linear-time, so no pattern can hang a request). The cache
 * is bounded: policies that build patterns from input cannot grow memory without limit.
 */
import RE2 from 're2';
import { LRUCache } from 'lru-cache';
import { builtinErr } from './util.js';
import { MAX_RESULT_ELEMENTS, checkElements, work } from '../meter.js';

const MAX_PATTERNS = 1000;
/** RE2 would accept much larger programs; a policy never needs them and they cost memory. */
const MAX_PATTERN_LENGTH = 64 * 1024;

type Compiled = RE2 | Error;

const cache = new LRUCache<string, Compiled>({ max: MAX_PATTERNS });

function compileRaw(source: string): Compiled {
  if (source.length > MAX_PATTERN_LENGTH) return new Error(`pattern longer than ${MAX_PATTERN_LENGTH} characters`);
  try {
    // 'g' so exec() can walk successive matches; callers reset lastIndex before each use.
    return new RE2(source, 'g');
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** A compiled regex, or an `eval_builtin_error` naming the built-in and RE2's reason. */
export function compileRegex(name: string, source: string, prefix = 'error parsing regexp: '): RE2 {
  const key = 'r' + source;
  let c = cache.get(key);
  if (c === undefined) {
    c = compileRaw(source);
    cache.set(key, c);
  }
  if (c instanceof Error) throw builtinErr(name, prefix + reason(c));
  c.lastIndex = 0;
  return c;
}

/**
 * RE2's reason without the pattern: its messages are `reason` or `reason: fragment`, and the
 * fragment is the pattern's text (which may come from input and hold a secret). No RE2 reason
 * itself contains ": ".
 */
function reason(e: Error): string {
  const first = e.message.split('\n', 1)[0]!;
  const cut = first.indexOf(': ');
  return cut < 0 ? first : first.slice(0, cut);
}

export function isValidRegex(source: string): boolean {
  const key = 'r' + source;
  let c = cache.get(key);
  if (c === undefined) {
    c = compileRaw(source);
    cache.set(key, c);
  }
  return !(c instanceof Error);
}

export interface Match {
  index: number;
  end: number;
  groups: Array<string | undefined>;
  named: Record<string, string | undefined> | undefined;
}

/**
 * Go's FindAll: successive non-overlapping matches, skipping an empty match that abuts the
 * previous match, and stepping one code point past empty matches. `n < 0` means all.
 */
export function findAll(re: RE2, s: string, n: number): Match[] {
  const out: Match[] = [];
  if (n === 0) return out;
  re.lastIndex = 0;
  let prevEnd = -1;
  while (re.lastIndex <= s.length) {
    const m = re.exec(s);
    if (m === null) break;
    const end = m.index + m[0].length;
    if (m[0].length === 0) {
      // Advance by a whole code point so the next search never starts inside a surrogate pair.
      const cp = s.codePointAt(m.index);
      re.lastIndex = m.index + (cp !== undefined && cp > 0xffff ? 2 : 1);
      if (m.index === prevEnd) continue;
    }
    out.push({ index: m.index, end, groups: [...m] as Array<string | undefined>, named: m.groups });
    // An exec costs far more than a value visited: at one unit per group, 16,384 matches (tens of
    // milliseconds) ran between two reads of the clock.
    work(32 + m.length);
    if (out.length > MAX_RESULT_ELEMENTS) checkElements(out.length, 'regex matches');
    prevEnd = end;
    if (n > 0 && out.length >= n) break;
  }
  re.lastIndex = 0;
  return out;
}
