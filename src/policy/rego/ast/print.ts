/**
 * Renders syntax back as Rego text, for error messages and debugging (`a.b[x]`, `count(xs)`,
 * `{1, 2}`). Not a formatter: layout, comments and parentheses are not preserved.
 */
import type { Body, Expr, Term } from './nodes.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function termToString(t: Term): string {
  switch (t.type) {
    case 'null':
      return 'null';
    case 'boolean':
      return String(t.value);
    case 'number':
      return t.raw;
    case 'string':
      return JSON.stringify(t.value);
    case 'var':
      return t.wildcard ? '_' : t.name;
    case 'ref':
      return termToString(t.head) + t.path.map(pathElementToString).join('');
    case 'array':
      return `[${t.items.map(termToString).join(', ')}]`;
    case 'set':
      return t.items.length ? `{${t.items.map(termToString).join(', ')}}` : 'set()';
    case 'object':
      return `{${t.entries.map(([k, v]) => `${termToString(k)}: ${termToString(v)}`).join(', ')}}`;
    case 'call': {
      if (t.infix) return `${termToString(t.args[0]!)} ${t.infix} ${termToString(t.args[1]!)}`;
      return `${t.op}(${t.args.map(termToString).join(', ')})`;
    }
    case 'member':
      return `${t.key ? termToString(t.key) + ', ' : ''}${termToString(t.value)} in ${termToString(t.collection)}`;
    case 'arraycomp':
      return `[${termToString(t.term)} | ${bodyToString(t.body)}]`;
    case 'setcomp':
      return `{${termToString(t.term)} | ${bodyToString(t.body)}}`;
    case 'objectcomp':
      return `{${termToString(t.key)}: ${termToString(t.value)} | ${bodyToString(t.body)}}`;
  }
}

/** `.name` for a plain string element, `[term]` otherwise. */
export function pathElementToString(t: Term): string {
  return t.type === 'string' && NAME.test(t.value) ? '.' + t.value : `[${termToString(t)}]`;
}

/** A rule head ref (`[var a, string b, var x]`) as `a.b[x]`. */
export function refToString(ref: readonly Term[]): string {
  if (ref.length === 0) return '';
  const [head, ...path] = ref;
  const first = head!.type === 'string' ? head!.value : termToString(head!);
  return first + path.map(pathElementToString).join('');
}

export function exprToString(e: Expr): string {
  let s: string;
  switch (e.kind) {
    case 'term':
      s = termToString(e.term);
      break;
    case 'assign':
      s = `${termToString(e.left)} := ${termToString(e.right)}`;
      break;
    case 'unify':
      s = `${termToString(e.left)} = ${termToString(e.right)}`;
      break;
    case 'some':
      s = `some ${e.vars.map(termToString).join(', ')}`;
      break;
    case 'somein':
      s = `some ${e.key ? termToString(e.key) + ', ' : ''}${termToString(e.value)} in ${termToString(e.collection)}`;
      break;
    case 'every':
      s = `every ${e.key ? termToString(e.key) + ', ' : ''}${termToString(e.value)} in ${termToString(e.domain)} { ${bodyToString(e.body)} }`;
      break;
    case 'notbody':
      return `not { ${bodyToString(e.body)} }`;
  }
  if (e.negated) s = 'not ' + s;
  for (const w of e.with) s += ` with ${termToString(w.target)} as ${termToString(w.value)}`;
  return s;
}

export function bodyToString(b: Body): string {
  return b.map(exprToString).join('; ');
}
