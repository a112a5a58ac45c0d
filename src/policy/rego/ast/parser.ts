/**
 * Rego v1 parser: tokens (lexer.ts) → syntax tree (nodes.ts).
 *
 * A recursive-descent parser that follows OPA's grammar decisions (v1/ast/parser.go) so that
 * every module OPA accepts parses here to the same shape, and v0-only forms (`p { … }` without
 * `if`, `p[x] { … }` without `contains`) fail as they do in OPA 1.x:
 *
 * - precedence, loosest first: `in`, comparisons (`==` `!=` `<` `<=` `>` `>=`), `|`, `&`,
 *   `+ -`, `* / %`; all left-associative;
 * - refs and calls bind only without whitespace (`a.b[x]`, `f(x)`; `a [x]` is two terms);
 * - `{a | b}` and `[a | b]` are comprehensions, not `or` calls;
 * - `p if { … }` is tried first as a single expression (`p if {1, 2} == x`) and, when that is
 *   not one or is a bare set literal, as a braced body.
 *
 * Where OPA backtracks, this parser resets a token index. Failures inside the parser are
 * thrown as a lightweight `ParseFailure` (no stack capture, cheap to throw while
 * backtracking) and turned into a `RegoError` at the public entry points. Terms are memoised
 * by start position so backtracking stays linear, and nesting is capped (MAX_DEPTH) so that
 * hostile input ends in an error instead of a stack overflow.
 */
import { normalizeInt } from '../value.js';
import { RegoError } from '../errors.js';
import { KEYWORDS, tokenSteps, tokenize, type Token, type TokenKind } from './lexer.js';
import { runSteps, type Steps } from '../../../pipeline/time-slices.js';
import type {
  ArrayTerm,
  Body,
  BooleanTerm,
  CallTerm,
  Expr,
  Import,
  Location,
  MemberTerm,
  Module,
  NumberTerm,
  Package,
  RefTerm,
  Rule,
  RuleHead,
  RuleKind,
  SetComprehension,
  SetTerm,
  StringTerm,
  Term,
  VarTerm,
  WithModifier,
} from './nodes.js';
import { INFIX_BUILTINS } from './nodes.js';
import { pathElementToString, refToString, termToString } from './print.js';

/** Deepest nesting of terms and bodies accepted (arrays in arrays, calls in calls, …). */
export const MAX_DEPTH = 1000;

/**
 * Most expressions in one body. Evaluation is continuation-passing: each expression of a body
 * runs inside the previous one's continuation, so a body's length is stack depth, as nesting
 * is. A longer body used to pass `check` and then overflow the stack on every evaluation.
 */
export const MAX_BODY_EXPRESSIONS = 1000;

/** Largest decimal exponent accepted in a number literal (OPA rejects larger as "number too big"). */
const MAX_EXPONENT = 30000;

class ParseFailure {
  constructor(
    readonly message: string,
    readonly pos: number,
    readonly loc: Location,
    /** Not recoverable by backtracking (nesting limit). */
    readonly fatal = false,
  ) {}
}

const EMPTY: readonly never[] = Object.freeze([]);

/** The built-in a template string becomes (OPA's name for it). */
export const TEMPLATE_STRING = 'internal.template_string';
const TEMPLATE_STRING_PATH: readonly string[] = Object.freeze(['internal', 'template_string']);

/** Binding strength of binary operators (higher binds tighter); `in` is handled separately. */
const BINARY_PREC: Partial<Record<TokenKind, number>> = {
  '==': 1,
  '!=': 1,
  '<': 1,
  '<=': 1,
  '>': 1,
  '>=': 1,
  '|': 2,
  '&': 3,
  '+': 4,
  '-': 4,
  '*': 5,
  '/': 5,
  '%': 5,
};

interface HeadParts {
  readonly name: VarTerm;
  readonly ref: readonly Term[];
  readonly args: readonly Term[] | undefined;
  readonly loc: Location;
}

interface CacheEntry {
  readonly wildcards: number;
  readonly term?: Term;
  readonly failure?: ParseFailure;
  readonly endPos: number;
  readonly endWildcards: number;
}

class Parser {
  private pos = 0;
  private wildcards = 0;
  private depth = 0;
  /** `not { … }` bodies: enabled by `import rego.v2` or `import future.keywords.not`. */
  private notBody = false;
  private readonly termCache = new Map<number, CacheEntry>();

  constructor(
    private readonly toks: Token[],
    private readonly file: string,
  ) {}

  // -------------------------------------------------------------------------------------------
  // Token helpers
  // -------------------------------------------------------------------------------------------

  private tok(): Token {
    const t = this.toks[this.pos]!;
    if (t.kind === 'illegal') throw new ParseFailure(t.text, this.pos, this.locOf(t));
    return t;
  }

  private peek(offset: number): Token {
    return this.toks[Math.min(this.pos + offset, this.toks.length - 1)]!;
  }

  private locOf(t: Token): Location {
    return t.loc;
  }

  private loc(): Location {
    return this.locOf(this.tok());
  }

  private isKw(t: Token, word: string): boolean {
    return t.kind === 'ident' && t.text === word;
  }

  /** A keyword written directly before `.` or `[` is a name (`input.in`, `contains.x`), as in OPA. */
  private refFollows(offset = 0): boolean {
    const next = this.peek(offset + 1);
    return (next.kind === '.' || next.kind === '[') && !next.ws;
  }

  private atKeyword(word: string): boolean {
    const t = this.tok();
    return t.kind === 'ident' && t.text === word && !this.refFollows();
  }

  private fail(expected: string, t: Token = this.tok(), pos = this.pos): never {
    throw new ParseFailure(`expected ${expected}, found ${describe(t)}`, pos, this.locOf(t));
  }

  private failAt(message: string, loc: Location): never {
    throw new ParseFailure(message, this.pos, loc);
  }

  private expect(kind: TokenKind, what: string): Token {
    const t = this.tok();
    if (t.kind !== kind) this.fail(what, t);
    this.pos++;
    return t;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) {
      throw new ParseFailure(
        `nesting too deep: more than ${MAX_DEPTH} levels of nested terms or bodies`,
        this.pos,
        this.locOf(this.toks[this.pos]!),
        true,
      );
    }
  }

  private leave(): void {
    this.depth--;
  }

  /** Runs `fn`; on a recoverable failure, rewinds and returns undefined (the failure is passed to `onFail`). */
  private attempt<T>(fn: () => T, onFail?: (f: ParseFailure) => void): T | undefined {
    const pos = this.pos;
    const wildcards = this.wildcards;
    const depth = this.depth;
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof ParseFailure) || e.fatal) throw e;
      this.pos = pos;
      this.wildcards = wildcards;
      this.depth = depth;
      onFail?.(e);
      return undefined;
    }
  }

  private rewind(pos: number, wildcards: number): void {
    this.pos = pos;
    this.wildcards = wildcards;
  }

  // -------------------------------------------------------------------------------------------
  // Modules
  // -------------------------------------------------------------------------------------------

  /** Parses the module, pausing (yield) after each statement (package, import, rule). */
  *moduleSteps(): Steps<Module> {
    let pkg: Package | undefined;
    const imports: Import[] = [];
    const rules: Rule[] = [];
    while (this.tok().kind !== 'eof') {
      if (this.atKeyword('package')) {
        if (pkg) this.failAt('unexpected second "package" declaration: a file holds exactly one package', this.loc());
        pkg = this.parsePackage();
        continue;
      }
      if (!pkg) this.fail('"package" declaration at the start of the module');
      if (this.atKeyword('import')) {
        imports.push(this.parseImport());
        continue;
      }
      for (const r of this.parseRuleStatement()) rules.push(r);
      yield;
    }
    if (!pkg) this.fail('"package" declaration at the start of the module');
    return { file: this.file, package: pkg, imports, rules };
  }

  private parsePackage(): Package {
    const loc = this.loc();
    this.pos++;
    const t = this.tok();
    if (t.kind !== 'ident' || t.text === '_') this.fail('a package name after "package", such as "package authz"');
    const head = this.makeVar(t);
    this.pos++;
    const path = this.parsePath(false);
    const names = [head.name];
    for (const el of path) {
      if (el.type !== 'string') this.failAt(`package path elements must be names or strings, found ${termKindName(el)}`, el.loc);
      names.push(el.value);
    }
    return { path: names, loc };
  }

  private parseImport(): Import {
    const loc = this.loc();
    this.pos++;
    const t = this.tok();
    if (t.kind !== 'ident') this.fail('an import path after "import", such as "import data.lib" or "import rego.v1"');
    const head: VarTerm = { type: 'var', name: t.text, loc: this.locOf(t) };
    this.pos++;
    const path = this.parsePath(false);
    const names: string[] = [];
    for (const el of path) {
      if (el.type !== 'string') this.failAt(`import path elements must be names or strings, found ${termKindName(el)}`, el.loc);
      names.push(el.value);
    }
    const root = head.name;
    if (root !== 'data' && root !== 'input' && root !== 'future' && root !== 'rego') {
      this.failAt(`import path must start with "data", "input", "future" or "rego", found "${root}"`, head.loc);
    }
    const keyword = root === 'future' || root === 'rego';
    if (root === 'rego') {
      if (names.length !== 1 || (names[0] !== 'v1' && names[0] !== 'v2')) {
        this.failAt(`unsupported import "${['rego', ...names].join('.')}": use "import rego.v1"`, head.loc);
      }
      if (names[0] === 'v2') this.notBody = true;
    }
    if (root === 'future') {
      const ok =
        names[0] === 'keywords' &&
        (names.length === 1 || (names.length === 2 && ['in', 'every', 'if', 'contains', 'not'].includes(names[1]!)));
      if (!ok) {
        this.failAt(
          `unsupported import "${['future', ...names].join('.')}": use "future.keywords" or "future.keywords.<in|every|if|contains|not>"`,
          head.loc,
        );
      }
      if (names[1] === 'not') this.notBody = true;
    }
    const pathTerm: RefTerm | VarTerm = path.length ? { type: 'ref', head, path, loc: head.loc } : head;
    let alias: string | undefined;
    if (this.atKeyword('as')) {
      this.pos++;
      const a = this.tok();
      if (a.kind !== 'ident' || KEYWORDS.has(a.text) || a.text === '_') this.fail('a name after "as"', a);
      if (keyword) this.failAt('keyword imports (future.*, rego.v1) cannot have an alias', this.locOf(a));
      alias = a.text;
      this.pos++;
    }
    const name = keyword ? '' : (alias ?? (names.length ? names[names.length - 1]! : root));
    if (!keyword && alias === undefined && KEYWORDS.has(name)) {
      this.failAt(`import path must not end with the keyword "${name}": add an alias, e.g. "import ... as ${name}_"`, loc);
    }
    return alias === undefined ? { path: pathTerm, name, keyword, loc } : { path: pathTerm, alias, name, keyword, loc };
  }

  // -------------------------------------------------------------------------------------------
  // Rules
  // -------------------------------------------------------------------------------------------

  private parseRuleStatement(): Rule[] {
    const ruleLoc = this.loc();
    let isDefault = false;
    if (this.atKeyword('default')) {
      this.pos++;
      isDefault = true;
    }
    const head = this.parseRuleHead(isDefault);
    const display = headDisplay(head);

    let key: Term | undefined;
    let value: Term | undefined;
    let assign = false;
    let contains = false;
    const t = this.tok();
    if (this.atKeyword('contains')) {
      if (head.args) this.failAt(`"contains" cannot be used with a function head: write "${display}(...) := <value> if { ... }"`, this.loc());
      this.pos++;
      key = this.parseInfix(true);
      contains = true;
    } else if (t.kind === ':=' || t.kind === '=') {
      assign = t.kind === ':=';
      this.pos++;
      value = this.parseInfix(true);
    }

    if (isDefault) {
      if (contains || value === undefined) {
        this.failAt(`a default rule must have a value: "default ${display} := <value>"`, ruleLoc);
      }
      checkDefaultValue(value, ruleLoc, (m, l) => this.failAt(m, l));
      if (head.args) checkDefaultArgs(head.args, ruleLoc, (m, l) => this.failAt(m, l));
      if (this.atKeyword('if') || this.tok().kind === '{') {
        this.failAt(`a default rule has no body: "default ${display} := <value>" applies when no other definition of ${display} does`, this.loc());
      }
      return [this.makeRule(head, { key, value, assign, contains }, EMPTY, true, ruleLoc, undefined)];
    }

    let body: Body;
    const hasIf = this.atKeyword('if');
    if (hasIf) {
      this.pos++;
      if (value === undefined && !contains) value = trueTerm(head.loc);
      body = this.parseIfBody();
    } else if (this.tok().kind === '{' && head.ref.length === 2 && !head.args && value === undefined && !contains) {
      this.failAt(
        `"contains" and "if" keywords are required for partial set rules (Rego v1): write "${display.slice(0, display.length - pathElementToString(head.ref[1]!).length)} contains ${termToString(head.ref[1]!)} if { ... }"`,
        ruleLoc,
      );
    } else if (this.tok().kind === '{') {
      const what = head.args ? 'function' : 'rule';
      this.failAt(`"if" keyword is required before ${what} body (Rego v1): write "${display}${head.args ? '(...)' : ''} if { ... }"`, this.loc());
    } else if (contains || value !== undefined) {
      body = EMPTY;
      if (this.atKeyword('with')) this.failAt('"with" cannot be used in a rule head; put the expression in the rule body', this.loc());
    } else if (head.args) {
      this.fail(`":=", "=" or "if" after function head ${display}(...)`);
    } else if (head.ref.length === 2 && (this.atKeyword('if') || this.tok().kind === '{' || this.tok().kind === 'eof' || this.tok().nl)) {
      this.failAt(`"contains" keyword is required for partial set rules (Rego v1): write "${head.name.name} contains <value> if { ... }"`, ruleLoc);
    } else {
      this.fail(`":=", "=", "if" or "contains" after rule head ${display}`);
    }

    const parts = { key, value, assign, contains };
    let elseRule: Rule | undefined;
    if (this.atKeyword('else')) {
      if (head.ref.length > 1 && !head.ref.slice(1).every(isGround)) {
        this.failAt('"else" cannot be used on rules with variables in the head', this.loc());
      }
      if (contains) this.failAt('"else" cannot be used on multi-value ("contains") rules', this.loc());
      elseRule = this.parseElse(head);
    }
    const rules = [this.makeRule(head, parts, body, false, ruleLoc, elseRule)];

    // `p if { a } { b }`: further bodies define the same rule again (OPA's chained bodies).
    while (this.tok().kind === '{') {
      if (elseRule) this.fail('"else" or a new rule');
      const loc = this.loc();
      this.pos++;
      const more = this.parseBody('}');
      this.expect('}', '"}" to close the rule body');
      rules.push(this.makeRule(this.freshHead(head), parts, more, false, loc, undefined));
    }
    return rules;
  }

  /** The body after `if`: one expression, or `{ … }`. */
  private parseIfBody(): Body {
    if (this.tok().kind === '{') {
      // `p if {1, 2} == x` is one expression; `p if { x }` is a body (a set literal never is).
      const single = this.attempt(() => {
        const e = this.parseLiteral();
        if (e.kind === 'term' && e.term.type === 'set') this.fail('a body');
        return e;
      });
      if (single) return [single];
      this.pos++;
      const body = this.parseBody('}');
      this.expect('}', '"}" to close the rule body');
      return body;
    }
    if (this.tok().kind === 'eof') this.fail('a rule body after "if"');
    return [this.parseLiteral()];
  }

  private parseElse(head: HeadParts): Rule {
    const loc = this.loc();
    this.enter(); // else chains nest: each `else` is the previous one's child
    this.pos++;
    let value: Term;
    let assign = false;
    const t = this.tok();
    if (t.kind === '{' || this.atKeyword('if')) {
      value = trueTerm(loc);
    } else if (t.kind === ':=' || t.kind === '=') {
      assign = t.kind === ':=';
      this.pos++;
      value = this.parseInfix(true);
    } else {
      this.fail('":= <value>", "if" or "{" after "else"');
    }
    let body: Body = EMPTY;
    if (this.atKeyword('if')) {
      this.pos++;
      if (this.tok().kind === '{') {
        this.pos++;
        body = this.parseBody('}');
        this.expect('}', '"}" to close the else body');
      } else if (this.tok().kind === 'eof') {
        this.fail('a rule body after "if"');
      } else {
        body = [this.parseLiteral()];
      }
    } else if (this.tok().kind === '{') {
      this.failAt('"if" keyword is required before an else body (Rego v1): write "else := <value> if { ... }"', this.loc());
    }
    const next = this.atKeyword('else') ? this.parseElse(head) : undefined;
    this.leave();
    return this.makeRule(this.freshHead(head), { key: undefined, value, assign, contains: false }, body, false, loc, next);
  }

  /** The rule name, its ref (`a.b[x]`) and function arguments. */
  private parseRuleHead(isDefault: boolean): HeadParts {
    const t = this.tok();
    if (t.kind !== 'ident') this.fail(isDefault ? 'a rule name after "default"' : 'a rule, "import" or "package"');
    if (KEYWORDS.has(t.text) && !this.refFollows()) {
      const next = this.peek(1);
      if (['(', ':=', '=', '{'].includes(next.kind) || (next.kind === 'ident' && (next.text === 'if' || next.text === 'contains'))) {
        this.failAt(`"${t.text}" is a keyword and cannot be used as a rule name`, this.locOf(t));
      }
      this.fail(isDefault ? 'a rule name after "default"' : 'a rule, "import" or "package"');
    }
    if (t.text === '_') this.failAt('"_" cannot be used as a rule name', this.locOf(t));
    const name: VarTerm = { type: 'var', name: t.text, loc: this.locOf(t) };
    this.pos++;
    const next = this.tok();
    if (BINARY_PREC[next.kind] !== undefined) {
      this.failAt(
        `unexpected "${next.text}" after rule name ${t.text}: conditions go in the rule body, e.g. "${t.text} if { ... }"`,
        this.locOf(next),
      );
    }
    // OPA allows whitespace between the rule name and its first `.`, `[` or `(`.
    const path = this.parsePath(true);
    let args: Term[] | undefined;
    const open = this.tok();
    if (open.kind === '(' && (path.length === 0 || !open.ws)) {
      this.enter();
      this.pos++;
      args = this.tok().kind === ')' ? (this.pos++, []) : this.parseTermList(')');
      this.leave();
      if (args.length === 0) this.failAt(`function ${t.text}() must take at least one argument`, this.locOf(open));
      const after = this.tok();
      if ((after.kind === '.' || after.kind === '[' || after.kind === '(') && !after.ws) {
        this.failAt('invalid rule head: a function head cannot be followed by "." , "[" or "("', this.locOf(after));
      }
    }
    return { name, ref: [name, ...path], args, loc: name.loc };
  }

  /** A copy of a head whose `_` arguments get new wildcard names (each definition its own). */
  private freshHead(head: HeadParts): HeadParts {
    if (!head.args || !head.args.some((a) => a.type === 'var' && a.wildcard)) return head;
    return {
      ...head,
      args: head.args.map((a) => (a.type === 'var' && a.wildcard ? this.wildcard(a.loc) : a)),
    };
  }

  private makeRule(
    head: HeadParts,
    parts: { key: Term | undefined; value: Term | undefined; assign: boolean; contains: boolean },
    body: Body,
    isDefault: boolean,
    loc: Location,
    elseRule: Rule | undefined,
  ): Rule {
    let kind: RuleKind;
    if (head.args) kind = 'function';
    else if (parts.contains) kind = 'set';
    else if (head.ref.slice(1).every(isGround)) kind = 'complete';
    else kind = 'object';
    const h: RuleHead = {
      kind,
      ref: head.ref,
      name: head.name.name,
      ...(head.args ? { args: head.args } : {}),
      ...(parts.key ? { key: parts.key } : {}),
      ...(parts.value ? { value: parts.value } : {}),
      assign: parts.assign,
      loc: head.loc,
    };
    return elseRule ? { head: h, body, default: isDefault, else: elseRule, loc } : { head: h, body, default: isDefault, loc };
  }

  // -------------------------------------------------------------------------------------------
  // Bodies and expressions
  // -------------------------------------------------------------------------------------------

  /** Expressions up to (not including) `end`, separated by newlines or `;`. */
  parseBody(end: '}' | ']' | 'eof'): Body {
    this.enter();
    const body: Expr[] = [];
    if (this.tok().kind === end) {
      this.fail(end === 'eof' ? 'an expression' : `an expression (a body may not be empty)`);
    }
    for (;;) {
      if (body.length === MAX_BODY_EXPRESSIONS) {
        throw new ParseFailure(
          `body too long: more than ${MAX_BODY_EXPRESSIONS} expressions (split it into helper rules)`,
          this.pos,
          this.locOf(this.toks[this.pos]!),
          true,
        );
      }
      body.push(this.parseLiteral());
      const t = this.tok();
      if (t.kind === ';') {
        this.pos++;
        continue;
      }
      if (t.kind === end) break;
      if (!t.nl) this.fail(end === 'eof' ? 'a newline or ";" between expressions' : `a newline, ";" or "${end}" after the expression`);
    }
    this.leave();
    return body;
  }

  parseLiteral(): Expr {
    const loc = this.loc();
    let negated = false;
    if (this.atKeyword('not')) {
      this.pos++;
      negated = true;
      if (this.notBody && this.tok().kind === '{') {
        const body = this.attempt(() => {
          this.pos++;
          const b = this.parseBody('}');
          this.pos++;
          return b;
        });
        if (body) return { kind: 'notbody', body, negated: true, with: this.parseWith(), loc };
      }
    }
    if (this.atKeyword('some')) {
      if (negated) this.failAt('"not" cannot be applied to "some"', loc);
      return this.parseSome();
    }
    if (this.atKeyword('every')) {
      if (negated) this.failAt('"not" cannot be applied to "every"; write the negated condition inside a helper rule', loc);
      return this.parseEvery();
    }
    const lhs = this.parseInfix(true);
    const t = this.tok();
    let expr: Expr;
    if (t.kind === ':=' || t.kind === '=') {
      this.pos++;
      const right = this.parseInfix(true);
      expr = { kind: t.kind === ':=' ? 'assign' : 'unify', left: lhs, right, negated, with: this.parseWith(), loc };
    } else {
      expr = { kind: 'term', term: lhs, negated, with: this.parseWith(), loc };
    }
    return expr;
  }

  private parseWith(): readonly WithModifier[] {
    if (!this.atKeyword('with')) return EMPTY;
    const mods: WithModifier[] = [];
    while (this.atKeyword('with')) {
      const loc = this.loc();
      this.pos++;
      const t = this.tok();
      if (t.kind !== 'ident' || (KEYWORDS.has(t.text) && !this.refFollows())) {
        this.fail('a target after "with", such as "input", "input.user" or "data.roles"');
      }
      const target = this.parseTerm();
      if (target.type !== 'var' && target.type !== 'ref') {
        this.failAt('the target of "with" must be a name or reference, such as "input.user" or "count"', target.loc);
      }
      if (!this.atKeyword('as')) this.fail('"as" after the "with" target');
      this.pos++;
      const value = this.parseInfix(true);
      mods.push({ target, value, loc });
    }
    return mods;
  }

  private parseSome(): Expr {
    const loc = this.loc();
    this.pos++;
    const start = this.pos;
    const startWc = this.wildcards;
    let failure: ParseFailure | undefined;
    const term = this.attempt(
      () => this.parseInfix(true),
      (f) => (failure = f),
    );
    if (term && term.type === 'member') {
      const base = { negated: false, loc };
      const e: Expr = term.key
        ? { kind: 'somein', key: term.key, value: term.value, collection: term.collection, ...base, with: EMPTY }
        : { kind: 'somein', value: term.value, collection: term.collection, ...base, with: EMPTY };
      return { ...e, with: this.parseWith() };
    }
    if (term && term.type === 'call') this.failAt('expected "x in xs" or "k, v in xs" after "some"', term.loc);
    this.rewind(start, startWc);
    const vars: VarTerm[] = [];
    for (;;) {
      const t = this.tok();
      if (t.kind !== 'ident' || KEYWORDS.has(t.text)) this.fail('a variable name after "some"');
      vars.push(this.makeVar(t));
      this.pos++;
      if (this.tok().kind !== ',') break;
      this.pos++;
    }
    // `some x in <bad>`: report the real problem inside the collection, not a stray "in".
    if (failure && this.atKeyword('in')) throw failure;
    return { kind: 'some', vars, negated: false, with: EMPTY, loc };
  }

  private parseEvery(): Expr {
    const loc = this.loc();
    this.pos++;
    const term = this.parseInfix(true);
    if (term.type !== 'member') this.failAt('expected "x in xs" or "k, v in xs" after "every"', term.loc);
    if (term.key && term.key.type !== 'var') this.failAt('the key in "every k, v in xs" must be a variable', term.key.loc);
    if (term.value.type !== 'var') this.failAt('the value in "every x in xs" must be a variable', term.value.loc);
    if (this.tok().kind !== '{') this.fail('"{" to start the body of "every"');
    this.pos++;
    const body = this.parseBody('}');
    this.expect('}', '"}" to close the body of "every"');
    const base = { negated: false, loc, body, value: term.value, domain: term.collection };
    const e: Expr = term.key ? { kind: 'every', key: term.key, ...base, with: EMPTY } : { kind: 'every', ...base, with: EMPTY };
    return { ...e, with: this.parseWith() };
  }

  // -------------------------------------------------------------------------------------------
  // Terms
  // -------------------------------------------------------------------------------------------

  /**
   * A full term with infix operators and membership. `keyVal` allows `k, v in xs` (not inside
   * lists, where the comma separates elements).
   */
  parseInfix(keyVal: boolean): Term {
    let lhs = this.parseBinary();
    for (;;) {
      if (keyVal && this.tok().kind === ',') {
        const save = this.pos;
        const saveWc = this.wildcards;
        this.pos++;
        const mid = this.attempt(() => this.parseBinary());
        if (mid && this.atKeyword('in')) {
          this.pos++;
          const collection = this.parseBinary();
          lhs = { type: 'member', key: lhs, value: mid, collection, loc: lhs.loc } satisfies MemberTerm;
          continue;
        }
        this.rewind(save, saveWc);
      }
      if (this.atKeyword('in')) {
        this.pos++;
        const collection = this.parseBinary();
        lhs = { type: 'member', value: lhs, collection, loc: lhs.loc } satisfies MemberTerm;
        continue;
      }
      return lhs;
    }
  }

  /** Binary operators by precedence climbing with explicit stacks (no recursion per level). */
  private parseBinary(): Term {
    const first = this.parseTerm();
    let prec = BINARY_PREC[this.toks[this.pos]!.kind];
    if (prec === undefined) return first;
    const operands: Term[] = [first];
    const ops: Token[] = [];
    const reduce = (): void => {
      const op = ops.pop()!;
      const right = operands.pop()!;
      const left = operands.pop()!;
      const symbol = op.kind as keyof typeof INFIX_BUILTINS;
      const name = INFIX_BUILTINS[symbol];
      operands.push({ type: 'call', op: name, opPath: [name], args: [left, right], infix: symbol, loc: left.loc } satisfies CallTerm);
    };
    // Each operator nests the expression tree one level (`1 + 1 + 1` is `(1 + 1) + 1`), and the
    // compiler and evaluator recurse over that tree: a chain counts toward MAX_DEPTH as nesting does.
    const depth = this.depth;
    while (prec !== undefined) {
      const opTok = this.toks[this.pos]!;
      // >=: the operand parsed next takes one more level.
      if (++this.depth >= MAX_DEPTH) {
        throw new ParseFailure(`expression too long: more than ${MAX_DEPTH} levels of operators and nested terms`, this.pos, this.locOf(opTok), true);
      }
      this.pos++;
      while (ops.length && BINARY_PREC[ops[ops.length - 1]!.kind]! >= prec) reduce();
      ops.push(opTok);
      operands.push(this.parseTerm());
      prec = BINARY_PREC[this.tok().kind];
    }
    this.depth = depth;
    while (ops.length) reduce();
    return operands[0]!;
  }

  /** One operand: a scalar, var, composite, comprehension or parenthesised term, then any ref/call suffix. */
  parseTerm(): Term {
    const start = this.pos;
    const hit = this.termCache.get(start);
    if (hit && hit.wildcards === this.wildcards) {
      if (hit.failure) throw hit.failure;
      this.pos = hit.endPos;
      this.wildcards = hit.endWildcards;
      return hit.term!;
    }
    const wc = this.wildcards;
    this.enter();
    let term: Term;
    try {
      term = this.parseTermFinish(this.parsePrimary());
    } catch (e) {
      if (e instanceof ParseFailure && !e.fatal) {
        this.termCache.set(start, { wildcards: wc, failure: e, endPos: start, endWildcards: wc });
      }
      throw e;
    } finally {
      this.leave();
    }
    // Single tokens are cheaper to re-parse than to look up.
    if (this.pos - start > 1) this.termCache.set(start, { wildcards: wc, term, endPos: this.pos, endWildcards: this.wildcards });
    return term;
  }

  private parsePrimary(): Term {
    const t = this.tok();
    const loc = this.locOf(t);
    switch (t.kind) {
      case 'ident': {
        if (!this.refFollows()) {
          switch (t.text) {
            case 'null':
              this.pos++;
              return { type: 'null', loc };
            case 'true':
            case 'false':
              this.pos++;
              return { type: 'boolean', value: t.text === 'true', loc };
            case 'contains':
              // `contains` is a keyword only in rule heads; elsewhere it is the built-in's name.
              break;
            default:
              if (KEYWORDS.has(t.text)) this.fail('a term (a value, variable, reference or call)');
          }
        }
        this.pos++;
        return this.makeVar(t);
      }
      case 'number':
        this.pos++;
        return this.makeNumber(t.text, false, loc, t);
      case '-': {
        this.pos++;
        const n = this.tok();
        if (n.kind === 'number') {
          this.pos++;
          return this.makeNumber(n.text, true, loc, n);
        }
        if (n.kind === '.' && this.peek(1).kind === 'number') {
          this.pos += 2;
          return this.makeNumber('.' + this.toks[this.pos - 1]!.text, true, loc, n);
        }
        return this.fail('a number after "-" (to negate an expression, write "0 - x")', n);
      }
      case '.': {
        const n = this.peek(1);
        if (n.kind === 'number') {
          this.pos += 2;
          return this.makeNumber('.' + n.text, false, loc, n);
        }
        return this.fail('a term (a value, variable, reference or call)');
      }
      case 'string':
        this.pos++;
        return t.raw ? { type: 'string', value: t.text, raw: true, loc } : { type: 'string', value: t.text, loc };
      case 'tpl-open':
      case 'tpl-whole':
        return this.parseTemplate();
      case '[':
        return this.parseArray();
      case '{':
        return this.parseSetOrObject();
      case '(': {
        this.pos++;
        const inner = this.parseInfix(true);
        if (this.tok().kind !== ')') this.fail('")" to close "("');
        this.pos++;
        return inner;
      }
      default:
        return this.fail('a term (a value, variable, reference or call)');
    }
  }

  /**
   * A template string, `$"Hello, {input.user}!"`, as OPA (1.12+) has it: the literal parts and
   * the value of each `{expression}`, concatenated by `internal.template_string`. Each
   * expression is evaluated as the set of its values (`{v | v = expr}`), so an undefined one
   * renders as `<undefined>` instead of making the string undefined, and one with several
   * values is an `eval_conflict_error` at evaluation; a constant is passed as it is. Strings
   * render as they are, other values as Rego terms (as `print`). As in OPA's parser, an
   * expression may not be negated, an assignment or unification, `some` or `every`; it may
   * carry `with` modifiers (`{data.p with input as x}`), which apply to it alone.
   */
  private parseTemplate(): Term {
    const loc = this.loc();
    const parts: Term[] = [];
    for (;;) {
      const t = this.tok();
      this.pos++;
      if (t.text.length > 0) parts.push({ type: 'string', value: t.text, loc: this.locOf(t) } satisfies StringTerm);
      if (t.kind === 'tpl-whole' || t.kind === 'tpl-last') break;
      if (this.tok().kind === 'tpl-next' || this.tok().kind === 'tpl-last') this.fail('an expression inside "{…}" (write "\\{" for a literal "{")');
      const e = this.parseLiteral();
      if (e.negated) this.failAt('unexpected negation ("not") in template-string expression', e.loc);
      if (e.kind === 'assign') this.failAt('unexpected assignment (":=") in template-string expression', e.loc);
      if (e.kind === 'unify') this.failAt('unexpected unification ("=") in template-string expression', e.loc);
      if (e.kind === 'some' || e.kind === 'somein') this.failAt('unexpected "some" in template-string expression', e.loc);
      if (e.kind !== 'term') this.failAt(`unexpected "${e.kind === 'every' ? 'every' : 'not'}" in template-string expression`, e.loc);
      const term = e.term;
      switch (term.type) {
        case 'string':
        case 'number':
        case 'boolean':
        case 'null':
          parts.push(term);
          break;
        default: {
          const v: VarTerm = { type: 'var', name: `$${this.wildcards++}`, loc: term.loc };
          // `{x with input as y}`: the modifiers apply to this expression alone, as OPA carries
          // the whole expression (modifiers included) into the part's comprehension.
          const body: Body = [{ kind: 'unify', left: v, right: term, negated: false, with: e.with, loc: term.loc }];
          parts.push({ type: 'setcomp', term: v, body, loc: term.loc } satisfies SetComprehension);
        }
      }
      const next = this.tok().kind;
      if (next !== 'tpl-next' && next !== 'tpl-last') this.fail('"}" to end the template-string expression');
    }
    // Only literal text (`$"plain"`, `$"a{"b"}"`): the string itself, so it is a constant (a
    // `default` value, an object key) as the value it is.
    if (parts.every((p) => p.type === 'string')) {
      return { type: 'string', value: parts.map((p) => (p as StringTerm).value).join(''), loc } satisfies StringTerm;
    }
    return {
      type: 'call',
      op: TEMPLATE_STRING,
      opPath: TEMPLATE_STRING_PATH,
      args: [{ type: 'array', items: parts, loc } satisfies ArrayTerm],
      loc,
    } satisfies CallTerm;
  }

  /** Ref and call suffixes written directly after a term: `.name`, `[term]`, `(args)`. */
  private parseTermFinish(head: Term): Term {
    let term = head;
    for (;;) {
      const t = this.toks[this.pos]!;
      if (t.ws || (t.kind !== '.' && t.kind !== '[' && t.kind !== '(')) return term;
      if (t.kind === '(') {
        term = this.parseCall(term, t);
        continue;
      }
      switch (term.type) {
        case 'var':
        case 'array':
        case 'object':
        case 'set':
        case 'arraycomp':
        case 'setcomp':
        case 'objectcomp':
        case 'call':
          break;
        case 'ref':
          // Unreachable: parsePath consumes every adjacent suffix.
          break;
        default:
          this.failAt(`a ${termKindName(term)} cannot be followed by "${t.kind}": only variables, collections and calls can be indexed`, this.locOf(t));
      }
      const path = this.parsePath(false);
      term = term.type === 'ref' ? { ...term, path: [...term.path, ...path] } : ({ type: 'ref', head: term, path, loc: term.loc } satisfies RefTerm);
    }
  }

  /** `.name` and `[term]` elements; the first may follow whitespace only in rule heads. */
  private parsePath(allowSpaceFirst: boolean): Term[] {
    const path: Term[] = [];
    for (;;) {
      const t = this.toks[this.pos]!;
      if (t.ws && !(allowSpaceFirst && path.length === 0)) return path;
      if (t.kind === '.') {
        this.pos++;
        const n = this.tok();
        if (n.kind !== 'ident' || n.ws) this.fail('a name directly after "."', n);
        this.pos++;
        path.push({ type: 'string', value: n.text, loc: this.locOf(n) } satisfies StringTerm);
      } else if (t.kind === '[') {
        this.enter();
        this.pos++;
        const el = this.parseInfix(true);
        if (this.tok().kind !== ']') this.fail('"]" to close "["');
        this.pos++;
        this.leave();
        path.push(el);
      } else {
        return path;
      }
    }
  }

  private parseCall(op: Term, open: Token): Term {
    let opPath: string[];
    if (op.type === 'var' && !op.wildcard) opPath = [op.name];
    else if (op.type === 'ref' && op.head.type === 'var' && !op.head.wildcard && op.path.every((p) => p.type === 'string')) {
      opPath = [op.head.name, ...op.path.map((p) => (p as StringTerm).value)];
    } else {
      return this.failAt('only a function name (such as f, lib.f or data.lib.f) can be called', this.locOf(open));
    }
    this.enter();
    this.pos++;
    const args = this.tok().kind === ')' ? (this.pos++, []) : this.parseTermList(')');
    this.leave();
    if (opPath.length === 1 && opPath[0] === 'set' && args.length === 0) {
      return { type: 'set', items: EMPTY, loc: op.loc } satisfies SetTerm;
    }
    return { type: 'call', op: opPath.join('.'), opPath, args, loc: op.loc } satisfies CallTerm;
  }

  /** Comma-separated terms up to `end` (consumed); a trailing comma is allowed. */
  private parseTermList(end: ')' | ']' | '}', items: Term[] = []): Term[] {
    if (this.tok().kind === end) {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.parseInfix(false));
      const t = this.tok();
      if (t.kind === end) {
        this.pos++;
        return items;
      }
      if (t.kind !== ',') this.fail(`"," or "${end}"`);
      this.pos++;
      if (this.tok().kind === end) {
        this.pos++;
        return items;
      }
    }
  }

  private parseArray(): Term {
    const loc = this.loc();
    this.pos++;
    if (this.tok().kind === ']') {
      this.pos++;
      return { type: 'array', items: EMPTY, loc } satisfies ArrayTerm;
    }
    let maybeComprehension = true;
    if (this.tok().kind === ',') {
      maybeComprehension = false;
      this.pos++;
    }
    const save = this.pos;
    const saveWc = this.wildcards;
    // `[a | b]` is a comprehension, not `or`: try the head as a plain term first, as OPA does.
    const head = this.parseTerm();
    const t = this.tok();
    if (t.kind === ']') {
      this.pos++;
      return { type: 'array', items: [head], loc };
    }
    if (t.kind === ',') {
      this.pos++;
      return { type: 'array', items: this.parseTermList(']', [head]), loc };
    }
    if (t.kind === '|' && maybeComprehension) {
      this.pos++;
      const comp = this.attemptComprehensionBody(']');
      if (comp) return { type: 'arraycomp', term: head, body: comp, loc };
    }
    this.rewind(save, saveWc);
    return { type: 'array', items: this.parseTermList(']'), loc };
  }

  /**
   * After `[head |` or `{head |`: the comprehension body up to `close`, or undefined (rewound by
   * the caller) when the text was a collection whose element is an `|` expression — which OPA
   * tells apart by a failure at a `,`.
   */
  private attemptComprehensionBody(close: ']' | '}'): Body | undefined {
    return this.attempt(
      () => {
        const body = this.parseBody(close);
        this.pos++;
        return body;
      },
      (f) => {
        if (this.toks[f.pos]!.kind !== ',') throw f;
      },
    );
  }

  private parseSetOrObject(): Term {
    const loc = this.loc();
    this.pos++;
    if (this.tok().kind === '}') {
      this.pos++;
      return { type: 'object', entries: EMPTY, loc };
    }
    let maybeComprehension = true;
    if (this.tok().kind === ',') {
      maybeComprehension = false;
      this.pos++;
    }
    const save = this.pos;
    const saveWc = this.wildcards;
    let head = this.parseTerm();
    let t = this.tok();
    if ((t.kind === '|' && maybeComprehension) || t.kind === '}' || t.kind === ',') {
      return this.parseSetRest(save, saveWc, head, maybeComprehension, loc);
    }
    if (t.kind === ':') return this.parseObjectRest(head, maybeComprehension, loc);
    this.rewind(save, saveWc);
    head = this.parseInfix(false);
    t = this.tok();
    if (t.kind === '}' || t.kind === ',') return this.parseSetRest(save, saveWc, head, false, loc);
    if (t.kind === ':') return this.parseObjectRest(head, maybeComprehension, loc);
    return this.fail('",", ":" or "}" in the set or object');
  }

  private parseSetRest(save: number, saveWc: number, head: Term, maybeComprehension: boolean, loc: Location): Term {
    const t = this.tok();
    if (t.kind === '}') {
      this.pos++;
      return { type: 'set', items: [head], loc };
    }
    if (t.kind === ',') {
      this.pos++;
      return { type: 'set', items: this.parseTermList('}', [head]), loc };
    }
    // '|'
    if (maybeComprehension) {
      this.pos++;
      const comp = this.attemptComprehensionBody('}');
      if (comp) return { type: 'setcomp', term: head, body: comp, loc };
    }
    this.rewind(save, saveWc);
    return { type: 'set', items: this.parseTermList('}'), loc };
  }

  private parseObjectRest(key: Term, maybeComprehension: boolean, loc: Location): Term {
    this.pos++; // ':'
    const save = this.pos;
    const saveWc = this.wildcards;
    if (maybeComprehension) {
      const value = this.parseTerm();
      const t = this.tok();
      if (t.kind === '}' || t.kind === ',') return this.parseObjectFinish(key, value, loc, true);
      if (t.kind === '|') {
        const comp = this.attempt(() => this.parseObjectFinish(key, value, loc, true));
        if (comp) return comp;
      }
      this.rewind(save, saveWc);
    }
    const value = this.parseInfix(false);
    const t = this.tok();
    if (t.kind === '}' || t.kind === ',') return this.parseObjectFinish(key, value, loc, false);
    return this.fail('"," or "}" in the object');
  }

  private parseObjectFinish(key: Term, value: Term, loc: Location, maybeComprehension: boolean): Term {
    const t = this.tok();
    if (t.kind === '}') {
      this.pos++;
      return { type: 'object', entries: [[key, value]], loc };
    }
    if (t.kind === '|' && maybeComprehension) {
      this.pos++;
      const body = this.parseBody('}');
      this.pos++;
      return { type: 'objectcomp', key, value, body, loc };
    }
    if (t.kind !== ',') return this.fail('"," or "}" in the object');
    this.pos++;
    const entries: Array<readonly [Term, Term]> = [[key, value]];
    if (this.tok().kind === '}') {
      this.pos++;
      return { type: 'object', entries, loc };
    }
    for (;;) {
      const k = this.parseInfix(false);
      if (this.tok().kind !== ':') this.fail('":" after the object key');
      this.pos++;
      const v = this.parseInfix(false);
      entries.push([k, v]);
      const n = this.tok();
      if (n.kind === '}') {
        this.pos++;
        return { type: 'object', entries, loc };
      }
      if (n.kind !== ',') this.fail('"," or "}" in the object');
      this.pos++;
      if (this.tok().kind === '}') {
        this.pos++;
        return { type: 'object', entries, loc };
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Leaves
  // -------------------------------------------------------------------------------------------

  private makeVar(t: Token): VarTerm {
    const loc = this.locOf(t);
    if (t.text === '_') return this.wildcard(loc);
    return { type: 'var', name: t.text, loc };
  }

  private wildcard(loc: Location): VarTerm {
    return { type: 'var', name: `$${this.wildcards++}`, wildcard: true, loc };
  }

  private makeNumber(text: string, negative: boolean, loc: Location, t: Token): NumberTerm {
    const raw = negative ? '-' + text : text;
    const value = numberValue(text, (m) => this.failAt(m, this.locOf(t)));
    let v: number | bigint;
    if (typeof value === 'bigint') v = normalizeInt(negative ? -value : value);
    else v = negative ? -value : value;
    if (Object.is(v, -0)) v = 0;
    return { type: 'number', value: v, raw, loc };
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/**
 * The exact value of an unsigned number literal: a bigint when it is an integer (including
 * `1e30` and `2.50e1`), otherwise the nearest double.
 */
function numberValue(text: string, fail: (message: string) => never): bigint | number {
  if (/^[0-9]+$/.test(text)) {
    if (text.length > 1 && text.charCodeAt(0) === 48) fail(`invalid number "${text}": numbers may not start with 0`);
    return BigInt(text);
  }
  const m = /^([0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text);
  if (!m) fail(`invalid number "${text}"`);
  const intPart = m[1] ?? '';
  const fracPart = m[2] ?? '';
  if (intPart.length > 1 && intPart.charCodeAt(0) === 48) fail(`invalid number "${text}": numbers may not start with 0`);
  const exp = m[3] === undefined ? 0 : Number(m[3]);
  let digits = (intPart + fracPart).replace(/^0+/, '');
  if (digits === '') return 0n;
  let e10 = exp - fracPart.length;
  const magnitude = e10 + digits.length;
  if (!Number.isFinite(exp) || magnitude > MAX_EXPONENT || magnitude < -MAX_EXPONENT) fail(`number too big: "${text}"`);
  while (e10 < 0 && digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    e10++;
  }
  if (e10 >= 0) return BigInt(digits) * 10n ** BigInt(e10);
  return Number(text);
}

function trueTerm(loc: Location): BooleanTerm {
  return { type: 'boolean', value: true, loc };
}

/** No variables, references, calls or comprehensions anywhere in the term (OPA's IsGround, refs counted as non-ground). */
export function isGround(t: Term): boolean {
  switch (t.type) {
    case 'null':
    case 'boolean':
    case 'number':
    case 'string':
      return true;
    case 'array':
    case 'set':
      return t.items.every(isGround);
    case 'object':
      return t.entries.every(([k, v]) => isGround(k) && isGround(v));
    default:
      return false;
  }
}

function checkDefaultValue(value: Term, loc: Location, fail: (m: string, l: Location) => never): void {
  const visit = (t: Term): void => {
    switch (t.type) {
      case 'var':
        fail('a default rule value cannot contain a variable', loc);
        break;
      case 'ref':
        fail('a default rule value cannot contain a reference', loc);
        break;
      case 'call':
        fail('a default rule value cannot contain a function call', loc);
        break;
      case 'member':
        fail('a default rule value cannot contain a membership test', loc);
        break;
      case 'array':
      case 'set':
        t.items.forEach(visit);
        break;
      case 'object':
        for (const [k, v] of t.entries) {
          visit(k);
          visit(v);
        }
        break;
      default:
        // scalars; comprehensions are closures and allowed
        break;
    }
  };
  visit(value);
}

function checkDefaultArgs(args: readonly Term[], loc: Location, fail: (m: string, l: Location) => never): void {
  const seen = new Set<string>();
  for (const a of args) {
    if (a.type !== 'var') fail(`default function arguments must be variables, found ${termKindName(a)}`, loc);
    if (seen.has(a.name)) fail(`default function arguments cannot be repeated: ${a.name}`, loc);
    seen.add(a.name);
  }
}

function headDisplay(head: { ref: readonly Term[] }): string {
  return refToString(head.ref);
}

/** How a term kind reads in an error message. */
export function termKindName(t: Term): string {
  switch (t.type) {
    case 'null':
      return 'null';
    case 'boolean':
      return 'boolean';
    case 'number':
      return 'number';
    case 'string':
      return 'string';
    case 'var':
      return 'variable';
    case 'ref':
      return 'reference';
    case 'array':
      return 'array';
    case 'object':
      return 'object';
    case 'set':
      return 'set';
    case 'call':
      return 'function call';
    case 'member':
      return '"in" expression';
    case 'arraycomp':
      return 'array comprehension';
    case 'setcomp':
      return 'set comprehension';
    case 'objectcomp':
      return 'object comprehension';
  }
}

/** How a token reads in an error message: `"foo"`, `keyword "if"`, `end of file`. */
function describe(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of file';
    case 'ident':
      return KEYWORDS.has(t.text) ? `keyword "${t.text}"` : `"${t.text}"`;
    case 'number':
      return `number ${t.text}`;
    // Never the text: a string literal in a policy may be a key or a token (`io.jwt.verify_hs256`),
    // and errors reach logs. The location says which one.
    case 'string':
      return 'a string';
    case 'tpl-open':
    case 'tpl-whole':
      return 'a template string';
    case 'tpl-next':
    case 'tpl-last':
      return '"}"';
    case 'illegal':
      return t.text;
    default:
      return `"${t.kind}"`;
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/** A parse failure (or the JS stack running out) as the RegoError the entry points throw. */
function parseError(e: unknown, file: string): unknown {
  if (e instanceof ParseFailure) return new RegoError('rego_parse_error', e.message, e.loc);
  if (e instanceof RangeError) {
    // The JS stack ran out before MAX_DEPTH did (a smaller stack than usual): same outcome.
    return new RegoError('rego_parse_error', `nesting too deep: the policy nests terms or bodies too deeply`, { file, row: 1, col: 1 });
  }
  return e;
}

function checkSource(source: string, file: string): void {
  if (typeof source !== 'string') throw new RegoError('rego_parse_error', 'policy source must be text', { file, row: 1, col: 1 });
}

function run<T>(source: string, file: string, fn: (p: Parser) => T): T {
  checkSource(source, file);
  try {
    return fn(new Parser(tokenize(source, file), file));
  } catch (e) {
    throw parseError(e, file);
  }
}

/** Parses a Rego v1 module. Throws RegoError (`rego_parse_error`) with the location of the first problem. */
export function parseModule(source: string, file: string): Module {
  return runSteps(parseModuleSteps(source, file));
}

/**
 * parseModule's work, pausing (yield) every few thousand tokens while it tokenizes and after each
 * statement while it parses: a load in a serving process runs it a slice at a time.
 */
export function* parseModuleSteps(source: string, file: string): Steps<Module> {
  checkSource(source, file);
  try {
    const p = new Parser(yield* tokenSteps(source, file), file);
    return yield* p.moduleSteps();
  } catch (e) {
    throw parseError(e, file);
  }
}

/** Parses a query such as `data.authz.allow == true; x := 1` (expressions separated by newlines or `;`). */
export function parseQuery(text: string, file = 'query'): Body {
  return run(text, file, (p) => {
    const body = p.parseBody('eof');
    return body;
  });
}

/** Parses a single term, such as a compliance case's `input_term` (`{"a", "b"}`). */
export function parseTerm(text: string, file = 'term'): Term {
  return run(text, file, (p) => {
    const body = p.parseBody('eof');
    const e = body[0]!;
    if (body.length !== 1 || e.kind !== 'term' || e.negated || e.with.length) {
      throw new ParseFailure('expected exactly one term', 0, e.loc);
    }
    return e.term;
  });
}
