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

export class ConfigError extends Error {
  readonly code = 'config_invalid' as const;
  readonly problems: readonly ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const head = problems.length === 1 ? 'invalid configuration' : `invalid configuration (${problems.length} problems)`;
    super(`${head}:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}
