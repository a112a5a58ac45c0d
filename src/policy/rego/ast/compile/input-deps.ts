/**
 * Which parts of `input` a compiled policy can read, and whether its result depends on anything
 * else (the clock, randomness, the network). The decision cache (src/policy/decision-cache.ts)
 * keys on the values at these paths, so this analysis must over-approximate: every rule of every
 * module is walked, reachable from the entrypoint or not, and whatever it cannot bound makes the
 * policy depend on the whole input (no cache).
 *
 * Why the walk over resolved rules is enough:
 * - `input` is a name only at the head of a term (IR `input`, or a `ref` with an `input` head;
 *   `import input.x as y` is already resolved into such a ref). A ref contributes its longest
 *   constant string prefix: whatever the rest of the ref (variables, other refs) picks out lies
 *   below that prefix. Locals bound from input are covered by the term that bound them.
 * - `input` anywhere else as a value (assigned, compared, passed to a function or a built-in,
 *   `walk(input)`, iterated) reads all of it.
 * - `with input[.p] as v` replaces (part of) the input inside one expression: the rules it calls
 *   then read `v`, whose own terms are walked like any other; the replaced paths are still
 *   collected where they are read, which only widens the key. `with data.x as input.y` is a
 *   read of input.y, found in the with value. `data` never aliases input.
 * - The evaluator reads input nowhere else; the clock (`time.now_ns`, JWT expiry) and the
 *   outside world reach a result only through built-ins marked `nondeterministic`, called
 *   directly or installed as a replacement (`with count as time.now_ns`).
 */
import type { Location } from '../nodes.js';
import type { ResolvedRule } from './index.js';
import type { IExpr, ITerm, IWith } from './ir.js';
import { runSteps, type Steps } from '../../../../pipeline/time-slices.js';

export interface InputDeps {
  /** True when a decision depends only on the values at `paths` (and the loaded policy and data). */
  cacheable: boolean;
  /** Why not, in one sentence naming the construct and its location. Set iff `cacheable` is false. */
  reason?: string;
  /**
   * The input paths the policy can read, each the longest constant prefix of a ref: no path is a
   * prefix of another, sorted. Empty when not cacheable.
   */
  paths: string[][];
}

function where(loc: Location): string {
  return `${loc.file}:${loc.row}:${loc.col}`;
}

class Walker {
  readonly paths = new Map<string, string[]>();
  /** The first read of the whole input, and the first nondeterministic call, in rule order. */
  whole: string | undefined;
  nondeterministic: string | undefined;

  private readsWhole(what: string, loc: Location): void {
    this.whole ??= `reads ${what} at ${where(loc)}`;
  }

  private usesBuiltin(name: string, nondeterministic: boolean | undefined, loc: Location): void {
    if (nondeterministic === true) this.nondeterministic ??= `calls ${name} at ${where(loc)}`;
  }

  private inputRef(path: readonly ITerm[], loc: Location): void {
    const prefix: string[] = [];
    for (const p of path) {
      if (p.t !== 'const' || typeof p.v !== 'string') break;
      prefix.push(p.v);
    }
    if (prefix.length === 0) this.readsWhole('the whole input (input with a computed key)', loc);
    else this.paths.set(JSON.stringify(prefix), prefix);
    for (const p of path) this.term(p);
  }

  term(t: ITerm): void {
    switch (t.t) {
      case 'const':
      case 'local':
        return;
      case 'input':
        this.readsWhole('the whole input', t.loc);
        return;
      case 'ref':
        if (t.head.t === 'input') return this.inputRef(t.path, t.loc);
        this.term(t.head);
        for (const p of t.path) this.term(p);
        return;
      case 'data':
        for (const p of t.path) this.term(p);
        return;
      case 'array':
      case 'set':
        for (const x of t.items) this.term(x);
        return;
      case 'object':
        for (const [k, v] of t.entries) {
          this.term(k);
          this.term(v);
        }
        return;
      case 'call':
        if (t.fn.kind === 'builtin') this.usesBuiltin(t.fn.name, t.fn.def.nondeterministic, t.loc);
        for (const a of t.args) this.term(a);
        return;
      case 'member':
        if (t.key) this.term(t.key);
        this.term(t.value);
        this.term(t.coll);
        return;
      case 'arraycomp':
      case 'setcomp':
        this.term(t.term);
        this.body(t.body);
        return;
      case 'objectcomp':
        this.term(t.key);
        this.term(t.value);
        this.body(t.body);
        return;
      default:
        return this.unknown(t, (t as { loc: Location }).loc);
    }
  }

  private with(w: IWith): void {
    if (w.fnValue?.kind === 'builtin') this.usesBuiltin(w.fnValue.name, w.fnValue.def.nondeterministic, w.loc);
    this.term(w.value);
  }

  body(body: readonly IExpr[]): void {
    for (const e of body) this.expr(e);
  }

  private expr(e: IExpr): void {
    for (const w of e.with) this.with(w);
    switch (e.k) {
      case 'term':
        return this.term(e.term);
      case 'unify':
        this.term(e.left);
        return this.term(e.right);
      case 'somein':
        if (e.key) this.term(e.key);
        this.term(e.value);
        return this.term(e.coll);
      case 'every':
        if (e.key) this.term(e.key);
        this.term(e.value);
        this.term(e.domain);
        return this.body(e.body);
      case 'print':
        for (const a of e.args) this.term(a);
        return;
      case 'body':
        return this.body(e.body);
      default:
        return this.unknown(e, (e as { loc: Location }).loc);
    }
  }

  /** A construct this walk does not know (a newer IR kind): assume it reads everything. */
  private unknown(_node: never, loc: Location): void {
    this.readsWhole('input through a construct the cache analysis does not know', loc);
  }
}

/** Keeps the shortest of nested paths (reading `a` covers `a.b`), sorted. */
function minimal(paths: Iterable<string[]>): string[][] {
  const byLength = [...paths].sort((a, b) => a.length - b.length);
  const out: string[][] = [];
  for (const p of byLength) {
    if (out.some((q) => q.every((x, i) => p[i] === x))) continue;
    out.push(p);
  }
  return out.sort((a, b) => {
    const x = JSON.stringify(a);
    const y = JSON.stringify(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

export function analyzeInputDeps(rules: readonly ResolvedRule[]): InputDeps {
  return runSteps(inputDepsSteps(rules));
}

/** analyzeInputDeps' work, pausing (yield) after each rule (see time-slices.ts). */
export function* inputDepsSteps(rules: readonly ResolvedRule[]): Steps<InputDeps> {
  const w = new Walker();
  for (const r of rules) {
    for (const t of r.head) w.term(t);
    w.body(r.body);
    yield;
  }
  const problems = [w.nondeterministic, w.whole].filter((x): x is string => x !== undefined);
  if (problems.length > 0) return { cacheable: false, reason: problems.join('; '), paths: [] };
  return { cacheable: true, paths: minimal(w.paths.values()) };
}

/** `input.a.b` for messages (`input["x-y"]` for keys that are not identifiers). */
export function formatInputPath(path: readonly string[]): string {
  let out = 'input';
  for (const p of path) out += /^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
  return out;
}
