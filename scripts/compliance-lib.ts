/**
 * Runs OPA's own Rego compliance cases (../shared/opa-compliance, YAML) against Warden's
 * built-in engine, matching results the way OPA's test-case runner does: `want_result` is a
 * set of binding objects (array-valued bindings sorted when `sort_bindings`), `want_error_code`
 * must equal the error's code and `want_error` must be a substring of its text (`code: message`).
 * Shared by `npm run compliance` (scripts/compliance.ts) and the vitest gate.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { compilePolicy, RegoError } from '../src/policy/rego/index.js';
import { inputTermToValue } from '../src/policy/rego/ast/compile/index.js';
import { compare, equal, fromJSON, toJSON, type Value } from '../src/policy/rego/value.js';

/** The cases live beside the repository checkout, in the shared folder. */
export const DEFAULT_CASES_DIR = fileURLToPath(new URL('../../shared/opa-compliance/v1', import.meta.url));

export interface ComplianceCase {
  note: string;
  file: string;
  category: string;
  query: string;
  modules?: string[];
  data?: unknown;
  input?: unknown;
  input_term?: string;
  want_result?: Array<Record<string, unknown>>;
  want_error_code?: string;
  want_error?: string;
  strict_error?: boolean;
  sort_bindings?: boolean;
}

export interface CaseOutcome {
  note: string;
  file: string;
  category: string;
  passed: boolean;
  detail?: string;
}

export interface ComplianceSummary {
  total: number;
  passed: number;
  failed: number;
  categories: Record<string, { passed: number; failed: number; failures: string[] }>;
  outcomes: CaseOutcome[];
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.yaml') || name.endsWith('.yml')) out.push(p);
  }
}

export function loadCases(dir: string = DEFAULT_CASES_DIR): ComplianceCase[] {
  const files: string[] = [];
  walk(dir, files);
  const cases: ComplianceCase[] = [];
  for (const file of files) {
    const rel = relative(dir, file);
    const doc = parseYaml(readFileSync(file, 'utf8')) as { cases?: Array<Omit<ComplianceCase, 'file' | 'category'>> };
    for (const c of doc.cases ?? []) cases.push({ ...c, file: rel, category: rel.split(/[\\/]/)[0]! });
  }
  return cases;
}

/** Normalises a value for comparison: sets → sorted arrays, as OPA's JSON output does. */
function normalize(v: unknown, sortArrays: boolean): Value {
  const j = fromJSON(toJSON(v as Value));
  if (!sortArrays || !Array.isArray(j)) return j;
  return [...j].sort(compare);
}

function bindingsMatch(want: Record<string, unknown>, got: Record<string, unknown>, sort: boolean): boolean {
  const wk = Object.keys(want);
  if (wk.length !== Object.keys(got).length) return false;
  for (const k of wk) {
    if (!(k in got)) return false;
    if (!equal(normalize(want[k], sort), normalize(got[k], sort))) return false;
  }
  return true;
}

function sameResultSets(want: Array<Record<string, unknown>>, got: Array<Record<string, unknown>>, sort: boolean): boolean {
  // Set semantics, as OPA's harness: every wanted binding appears and nothing else does.
  const unmatched = [...got];
  for (const w of want) {
    const i = unmatched.findIndex((g) => bindingsMatch(w, g, sort));
    if (i < 0) {
      // Allow duplicates in got collapsing onto one wanted row.
      if (!got.some((g) => bindingsMatch(w, g, sort))) return false;
      continue;
    }
    unmatched.splice(i, 1);
  }
  return unmatched.every((g) => want.some((w) => bindingsMatch(w, g, sort)));
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  } catch {
    return String(v);
  }
}

export function runCase(c: ComplianceCase, index = 0): CaseOutcome {
  const base = { note: c.note, file: c.file, category: c.category };
  const wantsError = c.want_error_code !== undefined || c.want_error !== undefined;
  let got: Array<Record<string, unknown>>;
  try {
    const modules = (c.modules ?? []).map((source, i) => ({ path: `${c.file}#${index}/module-${i}.rego`, source }));
    const policy = compilePolicy(modules, c.data ?? {});
    const input = c.input_term !== undefined ? inputTermToValue(c.input_term) : c.input;
    got = policy.query(c.query, input, { strictBuiltinErrors: c.strict_error === true, maxSteps: 5_000_000, deadlineMs: 5_000 });
  } catch (e) {
    if (!wantsError) return { ...base, passed: false, detail: `unexpected error: ${e instanceof Error ? e.message : String(e)}` };
    const code = e instanceof RegoError ? e.code : 'internal_error';
    const msg = e instanceof Error ? e.message : String(e);
    if (c.want_error_code !== undefined && code !== c.want_error_code) {
      return { ...base, passed: false, detail: `want code ${c.want_error_code}, got ${code}: ${msg}` };
    }
    // OPA's runner matches want_error against the error's text, which is `code: message`.
    if (c.want_error !== undefined && !`${code}: ${msg}`.includes(c.want_error)) {
      return { ...base, passed: false, detail: `want error containing "${c.want_error}", got ${code}: ${msg}` };
    }
    return { ...base, passed: true };
  }
  if (wantsError) return { ...base, passed: false, detail: `want error ${c.want_error_code ?? ''} ${c.want_error ?? ''}, got ${show(got)}` };
  const want = c.want_result ?? [];
  if (!sameResultSets(want, got, c.sort_bindings === true)) {
    return { ...base, passed: false, detail: `want ${show(want)}, got ${show(got.map((g) => normalize(g, false)))}` };
  }
  return { ...base, passed: true };
}

export function runCompliance(dir: string = DEFAULT_CASES_DIR): ComplianceSummary | undefined {
  if (!existsSync(dir)) return undefined;
  const cases = loadCases(dir);
  const summary: ComplianceSummary = { total: 0, passed: 0, failed: 0, categories: {}, outcomes: [] };
  cases.forEach((c, i) => {
    const o = runCase(c, i);
    summary.outcomes.push(o);
    summary.total++;
    const cat = (summary.categories[c.category] ??= { passed: 0, failed: 0, failures: [] });
    if (o.passed) {
      summary.passed++;
      cat.passed++;
    } else {
      summary.failed++;
      cat.failed++;
      cat.failures.push(`${c.file}: ${c.note}`);
    }
  });
  return summary;
}
