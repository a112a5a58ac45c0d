/**
 * Paths of packages and rules below `data`, as the compiler needs them to build the rule tree:
 * `package a.b` + rule `c.d[x]` → `data.a.b.c.d[x]`.
 */
import type { Module, Rule, StringTerm, Term } from './nodes.js';

/** `package a.b["c-d"]` → ['a', 'b', 'c-d']. */
export function packagePath(m: Module): string[] {
  return [...m.package.path];
}

/**
 * The rule's full ref below `data`: the package path and the rule's first name as string
 * terms, then the rest of the head ref as written. `package a` + `b.c[x] := 1` →
 * [string a, string b, string c, var x]. For `contains` rules the element is not included.
 */
export function ruleRef(m: Module, rule: Rule): Term[] {
  const out: Term[] = m.package.path.map((s) => ({ type: 'string', value: s, loc: m.package.loc }) satisfies StringTerm);
  const [first, ...rest] = rule.head.ref;
  out.push({ type: 'string', value: rule.head.name, loc: first!.loc });
  out.push(...rest);
  return out;
}

/**
 * The leading part of `ruleRef` that is plain names, as strings: where the rule's values are
 * rooted. `package a` + `b.c[x].d := 1` → ['a', 'b', 'c'].
 */
export function ruleStaticPath(m: Module, rule: Rule): string[] {
  const out: string[] = [];
  for (const t of ruleRef(m, rule)) {
    if (t.type !== 'string') break;
    out.push(t.value);
  }
  return out;
}
