/**
 * The Rego syntax tree, as the parser (parser.ts) produces it and the compiler (compile/)
 * consumes it. Modelled on OPA's `ast` package, flattened into plain discriminated unions so
 * that the compiler can switch on `type` / `kind` and build closures without class hierarchies.
 *
 * Conventions
 * - Every node has `loc` (1-based row and column of its first character, and the file name).
 * - Nodes are plain data: never mutated after parsing. The compiler builds its own structures.
 * - Syntactic sugar is removed by the parser where OPA removes it:
 *     `a + b`        → call `plus(a, b)` (every infix operator; see INFIX_BUILTINS)
 *     `-1` → the number literal -1 (`-x` for a non-literal is a parse error, as in OPA)
 *     `_`            → a var with a unique generated name (`$0`, `$1`, … per module/query) and
 *                      `wildcard: true`
 *     rule without a value (`p if …`, `f(x) if …`) → value `true` (a generated boolean term)
 *     rule without a body (`p := 1`) → an empty body, which is always true
 *   but `x in xs` stays its own term kind (`member`), and `some … in …` / `every` stay their
 *   own expression kinds, because the evaluator handles them directly.
 */

/** Where a node starts in its source. `row` and `col` are 1-based; `col` counts code points, as OPA does. */
export interface Location {
  readonly file: string;
  readonly row: number;
  readonly col: number;
}

// ---------------------------------------------------------------------------------------------
// Terms
// ---------------------------------------------------------------------------------------------

export interface NullTerm {
  readonly type: 'null';
  readonly loc: Location;
}

export interface BooleanTerm {
  readonly type: 'boolean';
  readonly value: boolean;
  readonly loc: Location;
}

/**
 * A number literal. Integers within ±2^53-1 are `number`; larger integers are `bigint` (exact).
 * Non-integers (a `.` or an exponent) are `number` (IEEE double), except that an exponent form
 * whose value is an exact integer beyond 2^53 (e.g. `1e30`) is also a bigint. `raw` is the
 * literal text as written (with the leading `-` for negative literals), for exact printing.
 */
export interface NumberTerm {
  readonly type: 'number';
  readonly value: number | bigint;
  readonly raw: string;
  readonly loc: Location;
}

/** A string literal, `"…"` with escapes decoded, or a raw string `` `…` `` (raw: true). */
export interface StringTerm {
  readonly type: 'string';
  readonly value: string;
  readonly raw?: boolean;
  readonly loc: Location;
}

/**
 * A variable. `_` becomes a var with a fresh name (`$0`, `$1`, …) and `wildcard: true`, so two
 * `_` never unify with each other. Names starting with `$` never come from user source.
 * `input` and `data` are vars too (the heads of input/data refs), as in OPA.
 */
export interface VarTerm {
  readonly type: 'var';
  readonly name: string;
  readonly wildcard?: boolean;
  readonly loc: Location;
}

/**
 * A reference: `head` followed by path elements. `a.b[x]["c"]` → head var `a`, path
 * [string `b`, var `x`, string `c`]. The head is usually a var (`input`, `data`, a rule name, a
 * local), but OPA also allows a composite or call head: `[1, 2][i]`, `f(x).y`, `{"a": 1}.a`.
 * `path` is never empty (a bare name is a VarTerm, not a RefTerm).
 */
export interface RefTerm {
  readonly type: 'ref';
  readonly head: Term;
  readonly path: readonly Term[];
  readonly loc: Location;
}

export interface ArrayTerm {
  readonly type: 'array';
  readonly items: readonly Term[];
  readonly loc: Location;
}

export interface ObjectTerm {
  readonly type: 'object';
  readonly entries: ReadonlyArray<readonly [key: Term, value: Term]>;
  readonly loc: Location;
}

/** `{1, 2}`; the empty set is written `set()` and parses to a SetTerm with no items. */
export interface SetTerm {
  readonly type: 'set';
  readonly items: readonly Term[];
  readonly loc: Location;
}

/**
 * A function call: a built-in (`count`, `strings.replace_n`), a user function (`f`,
 * `data.lib.f`, `lib.f` via an import), or a desugared infix operator (`plus`, `equal`, …).
 * `op` is the operator's dotted name as written (`data.lib.f`, `strings.replace_n`);
 * `opPath` is the same split into segments (a bracketed segment `data.x["y-z"].f` keeps its
 * string). `infix` is the operator symbol when the call was written infix (`+`, `==`), for
 * messages only.
 */
export interface CallTerm {
  readonly type: 'call';
  readonly op: string;
  readonly opPath: readonly string[];
  readonly args: readonly Term[];
  readonly infix?: string;
  readonly loc: Location;
}

/**
 * Membership `value in collection` or `key, value in collection` (OPA's `internal.member_2`
 * and `internal.member_3`), as a term: true or false, never undefined for a defined collection.
 */
export interface MemberTerm {
  readonly type: 'member';
  readonly key?: Term;
  readonly value: Term;
  readonly collection: Term;
  readonly loc: Location;
}

/** `[term | body]` */
export interface ArrayComprehension {
  readonly type: 'arraycomp';
  readonly term: Term;
  readonly body: Body;
  readonly loc: Location;
}

/** `{term | body}` */
export interface SetComprehension {
  readonly type: 'setcomp';
  readonly term: Term;
  readonly body: Body;
  readonly loc: Location;
}

/** `{key: value | body}` */
export interface ObjectComprehension {
  readonly type: 'objectcomp';
  readonly key: Term;
  readonly value: Term;
  readonly body: Body;
  readonly loc: Location;
}

export type ScalarTerm = NullTerm | BooleanTerm | NumberTerm | StringTerm;
export type ComprehensionTerm = ArrayComprehension | SetComprehension | ObjectComprehension;

export type Term =
  | ScalarTerm
  | VarTerm
  | RefTerm
  | ArrayTerm
  | ObjectTerm
  | SetTerm
  | CallTerm
  | MemberTerm
  | ComprehensionTerm;

export type TermType = Term['type'];

/** Infix operators and the OPA built-in each one calls. `in` is not here: see MemberTerm. */
export const INFIX_BUILTINS = {
  '|': 'or',
  '&': 'and',
  '==': 'equal',
  '!=': 'neq',
  '<': 'lt',
  '<=': 'lte',
  '>': 'gt',
  '>=': 'gte',
  '+': 'plus',
  '-': 'minus',
  '*': 'mul',
  '/': 'div',
  '%': 'rem',
} as const;

// ---------------------------------------------------------------------------------------------
// Expressions (body literals)
// ---------------------------------------------------------------------------------------------

/** `with target as value`. `target` is a var (`input`, `count`) or a ref (`input.x`, `data.a.b`, `http.send`). */
export interface WithModifier {
  readonly target: VarTerm | RefTerm;
  readonly value: Term;
  readonly loc: Location;
}

interface ExprBase {
  /** `not …`: the expression succeeds when its inner form is undefined or false. */
  readonly negated: boolean;
  /** `with` modifiers, in source order; empty when there are none. */
  readonly with: readonly WithModifier[];
  readonly loc: Location;
}

/** A term on its own: `count(x) > 2` (a call), `input.allowed` (a ref), `x in xs` (a member). */
export interface TermExpr extends ExprBase {
  readonly kind: 'term';
  readonly term: Term;
}

/** `left := right` — declares the vars in `left` (a var or an array/object pattern of vars). */
export interface AssignExpr extends ExprBase {
  readonly kind: 'assign';
  readonly left: Term;
  readonly right: Term;
}

/** `left = right` — unification. */
export interface UnifyExpr extends ExprBase {
  readonly kind: 'unify';
  readonly left: Term;
  readonly right: Term;
}

/** `some x, y` — declares local vars (never negated, never `with`). */
export interface SomeDeclExpr extends ExprBase {
  readonly kind: 'some';
  readonly vars: readonly VarTerm[];
}

/**
 * `some value in collection` / `some key, value in collection`: declares the vars in `key`
 * and `value` (which may be patterns, e.g. `some [a, b] in pairs`) and iterates.
 */
export interface SomeInExpr extends ExprBase {
  readonly kind: 'somein';
  readonly key?: Term;
  readonly value: Term;
  readonly collection: Term;
}

/** `every value in domain { body }` / `every key, value in domain { body }`. */
export interface EveryExpr extends ExprBase {
  readonly kind: 'every';
  readonly key?: Term;
  readonly value: Term;
  readonly domain: Term;
  readonly body: Body;
}

/**
 * `not { a; b }`: succeeds when the body has no solution (OPA's newer "not body" syntax, enabled
 * by `import rego.v2` or `import future.keywords.not`). `negated` is always true, so analyses
 * that treat negated expressions as non-binding handle it without a special case.
 */
export interface NotBodyExpr extends ExprBase {
  readonly kind: 'notbody';
  readonly body: Body;
}

export type Expr = TermExpr | AssignExpr | UnifyExpr | SomeDeclExpr | SomeInExpr | EveryExpr | NotBodyExpr;

export type ExprKind = Expr['kind'];

/** A query or rule body: expressions joined by newlines or `;`, all of which must hold. */
export type Body = readonly Expr[];

// ---------------------------------------------------------------------------------------------
// Rules and modules
// ---------------------------------------------------------------------------------------------

/**
 * What a rule defines.
 * - `complete`:   `p := v`, `p = v`, `a.b.c := v`, `p if …` (value true) — one value at a
 *                 ground ref.
 * - `object`:     `p[k] := v`, `a.b[x].c := v` — a single-value rule whose head ref holds a
 *                 var (any non-string path term); generates the entries of an object.
 * - `set`:        `p contains x`, `a.b contains x` — a multi-value rule (partial set).
 * - `function`:   `f(x, y) := v`, `f(x) if …`.
 */
export type RuleKind = 'complete' | 'object' | 'set' | 'function';

export interface RuleHead {
  readonly kind: RuleKind;
  /**
   * The head ref relative to the package: `ref[0]` is the rule's first name (a VarTerm
   * written as a name), the rest are path terms. `a.b[x] := 1` → [var a, string b, var x].
   * For a `set` rule this excludes the element (`key`).
   */
  readonly ref: readonly Term[];
  /** `ref[0]`'s name: OPA's rule `Name` (`a` for `a.b.c`). */
  readonly name: string;
  /** Function arguments (patterns allowed: `f([x, y])`), only when kind is `function`. */
  readonly args?: readonly Term[];
  /** The element of a `set` rule (`contains key`). */
  readonly key?: Term;
  /** The value of `complete`, `object` and `function` rules (generated `true` when omitted). */
  readonly value?: Term;
  /** `:=` (true) or `=` / omitted (false). Matters for compile checks only. */
  readonly assign: boolean;
  readonly loc: Location;
}

export interface Rule {
  readonly head: RuleHead;
  /** Empty when the rule had no body (`p := 1`): always true. */
  readonly body: Body;
  /** `default p := v`: body empty, used when no other definition of `p` is defined. */
  readonly default: boolean;
  /**
   * The `else` chain: tried in order when this rule's body is undefined. An else's head is
   * this rule's head with its own `value` (true when omitted), so `else.head.ref` equals ours.
   */
  readonly else?: Rule;
  readonly loc: Location;
}

export interface Package {
  /** The path below `data`: `package a.b["c-d"]` → ['a', 'b', 'c-d']. */
  readonly path: readonly string[];
  readonly loc: Location;
}

/**
 * `import data.x.y`, `import data.x.y as z`, `import input.foo`, `import rego.v1`,
 * `import future.keywords.if`. `path` is the imported ref; `alias` is the `as` name if one was
 * written; `name` is the name the import binds in the module (the alias, else the last path
 * segment: `y` for `import data.x.y`, `input` for `import input`). Keyword imports (`rego.v1`,
 * `future.keywords…`) have `keyword: true` and `name` ''.
 */
export interface Import {
  readonly path: RefTerm | VarTerm;
  readonly alias?: string;
  readonly name: string;
  readonly keyword: boolean;
  readonly loc: Location;
}

export interface Module {
  readonly file: string;
  readonly package: Package;
  readonly imports: readonly Import[];
  readonly rules: readonly Rule[];
}
