/**
 * Lint: secrets are referenced, never written into a template (DESIGN.md, "Template"). These
 * patterns catch well-known credential shapes; a finding names the kind and location only,
 * never the matched text.
 */

/**
 * Each pattern must run in time linear in the text: every string of every template file is
 * scanned, synchronously, at load and on every hot reload, so one quadratic pattern lets a file
 * stall the server (a reload timeout cannot pre-empt synchronous code). A repeated class followed
 * by more required text is the danger: each start re-reads the rest of the run, and backtracks
 * through it. The ones below end at their class (nothing to backtrack into), are bounded, or are
 * scanned by hand (the JSON Web Token). test/pipeline/secret-literals.test.ts holds large
 * adversarial inputs for each.
 */
const PATTERNS: ReadonlyArray<{ kind: string; re: { test(text: string): boolean } }> = [
  { kind: 'private key block', re: /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----/ },
  { kind: 'AWS access key id', re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { kind: 'OpenAI/Anthropic-style API key', re: /\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}/ },
  { kind: 'GitHub token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/ },
  { kind: 'Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { kind: 'Google API key', re: /\bAIza[0-9A-Za-z_-]{35}\b/ },
  { kind: 'Stripe key', re: /\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}/ },
  { kind: 'JSON Web Token', re: { test: hasJsonWebToken } },
  { kind: 'Vault token', re: /\bhv[sbr]\.[A-Za-z0-9_-]{20,}/ },
  {
    kind: 'credential assignment',
    // `password: hunter2hunter2`, `api_key=...`: a keyword followed by a long opaque literal.
    re: /\b(?:pass(?:word|wd)?|secret|api[_-]?key|access[_-]?key|auth[_-]?token|client[_-]?secret|bearer)\b\s*[:=]\s*["']?(?!\{\{)[A-Za-z0-9+/_\-.=]{12,}/i,
  },
];

/** The JSON Web Token's start: `eyJ` (base64url of `{"`) at a word boundary. */
const JWT_START = /\beyJ/g;
/** A base64url run; `.` (the segment separator) is outside it. */
const BASE64URL_RUN = /[A-Za-z0-9_-]*/y;

/** Where the base64url run that begins at `from` ends. */
function runEnd(text: string, from: number): number {
  BASE64URL_RUN.lastIndex = from;
  BASE64URL_RUN.exec(text);
  return BASE64URL_RUN.lastIndex;
}

/**
 * `\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`, in linear time. The regex
 * itself is quadratic on `eyJ-eyJ-…`: a start after every `-`, each reading to the end of the run.
 * As `.` is outside the class, a segment is always the whole run (backtracking into it cannot
 * help), and a start inside a failed start's first segment shares that segment's end, hence the
 * same failure: the search resumes at the end of the run.
 */
function hasJsonWebToken(text: string): boolean {
  let from = 0;
  for (;;) {
    JWT_START.lastIndex = from;
    const start = JWT_START.exec(text);
    if (!start) return false;
    const first = start.index + 3;
    const firstEnd = runEnd(text, first);
    if (firstEnd - first >= 8 && text.startsWith('.eyJ', firstEnd)) {
      const second = firstEnd + 4;
      const secondEnd = runEnd(text, second);
      if (secondEnd - second >= 8 && text.charCodeAt(secondEnd) === 0x2e /* . */ && runEnd(text, secondEnd + 1) - (secondEnd + 1) >= 8) return true;
    }
    from = firstEnd;
  }
}

/** Returns the kind of credential `text` appears to contain, or undefined. */
export function findSecretLiteral(text: string): string | undefined {
  for (const { kind, re } of PATTERNS) if (re.test(text)) return kind;
  return undefined;
}

/** Longest name a load error repeats: longer ones are more likely a pasted value than a name. */
export const MAX_QUOTED_NAME = 64;

/** Identifier-like names (variable names, YAML keys): the only text a load error may repeat. */
const QUOTABLE = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Why a name that looksGenerated is not repeated. */
export const GENERATED_REASON = 'it looks like a generated value (a key, token or password), not a name';

/** Runs of letters and digits long enough to be a generated value (see looksGenerated). */
const ALNUM_RUN = /[A-Za-z0-9]{12,}/g;

/**
 * Whether `name` holds a run of letters and digits that reads as a generated value (a token, a
 * key, a password) rather than a word: 12 digits or more (an account, card or phone number), 24
 * characters or more, 16 or more mixing letters and digits, or 12 or more mixing upper case, lower
 * case and digits. Names split such runs (`gpt-4o-mini-2024-07-18`, `claude-3-5-sonnet-20241022`,
 * `max_tokens`); a pasted Azure key (32 hex digits) or random password has none to split it, and
 * no credential pattern (findSecretLiteral) knows its shape.
 */
export function looksGenerated(name: string): boolean {
  for (const [run] of name.matchAll(ALNUM_RUN)) {
    const digits = /[0-9]/.test(run);
    const letters = /[A-Za-z]/.test(run);
    if (!letters || run.length >= 24 || (digits && run.length >= 16)) return true;
    if (digits && /[a-z]/.test(run) && /[A-Z]/.test(run)) return true;
  }
  return false;
}

/**
 * Whether a load error may repeat `name`: a short identifier that no credential pattern matches.
 * Anything else in a template file (a key, a placeholder) may be a pasted secret, and load errors
 * reach the CLI, the startup error and the reload log line, so it is described instead.
 */
export function isQuotableName(name: string): boolean {
  return name.length <= MAX_QUOTED_NAME && QUOTABLE.test(name) && findSecretLiteral(name) === undefined && !looksGenerated(name);
}

/** Why a name is not repeated, for the message that stands in for it. */
export function unquotedReason(name: string): string {
  const kind = findSecretLiteral(name);
  if (kind) return `it looks like a literal secret (${kind})`;
  if (name.length > MAX_QUOTED_NAME) return `${name.length} characters, longer than a name`;
  if (looksGenerated(name)) return GENERATED_REASON;
  return 'not an identifier';
}
