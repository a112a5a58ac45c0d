/**
 * Rego term text, as OPA's `ast.Value.String()` prints values: used by `sprintf` for
 * non-string arguments and in messages. Strings are Go-quoted, objects and sets print in
 * sorted order, the empty set is `set()`.
 */
import { RegoDecimal, RegoSet, sortedEntries, type Value } from '../value.js';
import { MAX_RESULT_STRING, checkStringSize, work } from '../meter.js';

/** Go strconv.Quote: ASCII escapes as Go writes them, printable Unicode kept as is. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    // Charged per character: a long string is quoted one character at a time.
    work(1);
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
    else if ((c >= 0x80 && c < 0xa0) || c === 0xad || c === 0xfeff || (c >= 0x2028 && c <= 0x2029)) {
      out += c > 0xffff ? '\\U' + c.toString(16).padStart(8, '0') : '\\u' + c.toString(16).padStart(4, '0');
    } else out += ch;
  }
  return out + '"';
}

export function numberText(n: number | bigint): string {
  return typeof n === 'bigint' ? n.toString() : String(n);
}

export function termString(v: Value): string {
  switch (typeof v) {
    case 'string':
      return goQuote(v);
    case 'number':
    case 'bigint':
      return numberText(v);
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (v === null) return 'null';
  if (v instanceof RegoDecimal) return v.toString();
  const out: string[] = [];
  writeTerm(v, out, { length: 0 });
  return out.join('');
}

/**
 * Composite values, written part by part: metered and capped as the text grows, since a value
 * may hold one large value many times over (its text is far larger than its memory).
 */
function writeTerm(v: Value, out: string[], n: { length: number }): void {
  const push = (t: string): void => {
    out.push(t);
    work(1 + (t.length >>> 5));
    if ((n.length += t.length) > MAX_RESULT_STRING) checkStringSize(n.length, 'term text');
  };
  if (v === null || typeof v !== 'object' || v instanceof RegoDecimal) {
    push(termString(v));
    return;
  }
  if (Array.isArray(v)) {
    push('[');
    for (let i = 0; i < v.length; i++) {
      if (i > 0) push(', ');
      writeTerm(v[i]!, out, n);
    }
    push(']');
    return;
  }
  if (v instanceof RegoSet) {
    if (v.size === 0) return push('set()');
    push('{');
    v.sorted().forEach((x, i) => {
      if (i > 0) push(', ');
      writeTerm(x, out, n);
    });
    push('}');
    return;
  }
  const entries = sortedEntries(v);
  push('{');
  entries.forEach(([k, x], i) => {
    if (i > 0) push(', ');
    writeTerm(k, out, n);
    push(': ');
    writeTerm(x, out, n);
  });
  push('}');
}

/**
 * The line `print(a, b, ...)` writes, as OPA: strings as they are, other values as Rego terms,
 * an undefined argument as `<undefined>`, separated by spaces. For the evaluator's `print`.
 */
export function printLine(args: ReadonlyArray<Value | undefined>): string {
  return args.map((a) => (a === undefined ? '<undefined>' : typeof a === 'string' ? a : termString(a))).join(' ');
}
