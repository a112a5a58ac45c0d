/**
 * ConfigError lists every problem in a config file at once, each as
 * `file:line:col: key.path: what is wrong`, so a user fixes the file in one pass. Messages name
 * keys and expectations only, never the value found (it may be a pasted secret).
 */

export interface ConfigProblem {
  file: string;
  /** 1-based; absent when the problem has no place in the file (e.g. an environment override). */
  line?: number;
  column?: number;
  /** Dotted key path, e.g. `providers.openai.base_url`; `(root)` for the whole document. */
  path: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
  return `${where}: ${p.path}: ${p.message}`;
}

/** How many problems a ConfigError's message lists (all of them stay in `problems`). */
export const MAX_LISTED = 100;

export class ConfigError extends Error {
  readonly code = 'config_invalid' as const;
  readonly problems: readonly ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const head = problems.length === 1 ? 'invalid configuration' : `invalid configuration (${problems.length} problems)`;
    // The first MAX_LISTED: a file with thousands of problems (a data file passed as the config)
    // is not a config with a few typos, and a message of megabytes helps nobody read it.
    const listed = problems.slice(0, MAX_LISTED).map((p) => `  ${formatProblem(p)}`);
    if (problems.length > MAX_LISTED) listed.push(`  ... and ${problems.length - MAX_LISTED} more problems`);
    super(`${head}:\n${listed.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}
