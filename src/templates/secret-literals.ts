/**
 * Lint: secrets are referenced, never written into a template (DESIGN.md, "Template"). These
 * patterns catch well-known credential shapes; a finding names the kind and location only,
 * never the matched text.
 */

const PATTERNS: ReadonlyArray<{ kind: string; re: RegExp }> = [
  { kind: 'private key block', re: /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----/ },
  { kind: 'AWS access key id', re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { kind: 'OpenAI/Anthropic-style API key', re: /\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}/ },
  { kind: 'GitHub token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/ },
  { kind: 'Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { kind: 'Google API key', re: /\bAIza[0-9A-Za-z_-]{35}\b/ },
  { kind: 'Stripe key', re: /\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}/ },
  { kind: 'JSON Web Token', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { kind: 'Vault token', re: /\bhv[sbr]\.[A-Za-z0-9_-]{20,}/ },
  {
    kind: 'credential assignment',
    // `password: hunter2hunter2`, `api_key=...`: a keyword followed by a long opaque literal.
    re: /\b(?:pass(?:word|wd)?|secret|api[_-]?key|access[_-]?key|auth[_-]?token|client[_-]?secret|bearer)\b\s*[:=]\s*["']?(?!\{\{)[A-Za-z0-9+/_\-.=]{12,}/i,
  },
];

/** Returns the kind of credential `text` appears to contain, or undefined. */
export function findSecretLiteral(text: string): string | undefined {
  for (const { kind, re } of PATTERNS) if (re.test(text)) return kind;
  return undefined;
}

/** Longest name a load error repeats: longer ones are more likely a pasted value than a name. */
export const MAX_QUOTED_NAME = 64;

/** Identifier-like names (variable names, YAML keys): the only text a load error may repeat. */
const QUOTABLE = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * Whether a load error may repeat `name`: a short identifier that no credential pattern matches.
 * Anything else in a template file (a key, a placeholder) may be a pasted secret, and load errors
 * reach the CLI, the startup error and the reload log line, so it is described instead.
 */
export function isQuotableName(name: string): boolean {
  return name.length <= MAX_QUOTED_NAME && QUOTABLE.test(name) && findSecretLiteral(name) === undefined;
}

/** Why a name is not repeated, for the message that stands in for it. */
export function unquotedReason(name: string): string {
  const kind = findSecretLiteral(name);
  if (kind) return `it looks like a literal secret (${kind})`;
  if (name.length > MAX_QUOTED_NAME) return `${name.length} characters, longer than a name`;
  return 'not an identifier';
}
