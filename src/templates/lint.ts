/** `warden templates lint`: every problem in every file, without loading anything into a server. */
import { formatIssue, formatWarning, readTemplates, type TemplateIssue, type TemplateLimits, type TemplateWarning } from './loader.js';

export interface TemplateLintResult {
  ok: boolean;
  files: string[];
  templates: Array<{ id: string; version: number; file: string }>;
  issues: TemplateIssue[];
  /** Skipped files and directories: printed, but they do not fail the lint. */
  warnings: TemplateWarning[];
  revision: string;
}

/** `limits`: a config's (see TemplateLimits); without them only the templates' own rules apply. */
export async function lintTemplates(paths: readonly string[], limits: TemplateLimits = {}): Promise<TemplateLintResult> {
  const loaded = await readTemplates(paths, limits);
  return {
    ok: loaded.issues.length === 0,
    files: loaded.files.map((f) => f.file),
    templates: loaded.templates.map((t) => ({ id: t.id, version: t.version, file: t.source?.file ?? '' })),
    issues: loaded.issues,
    warnings: loaded.warnings,
    revision: loaded.revision,
  };
}

/** Human-readable lint output, one issue per line (`file:line:col: key: message`). */
export function formatLintResult(r: TemplateLintResult): string {
  const warned = r.warnings.map((w) => `warning: ${formatWarning(w)}\n`).join('');
  return warned + formatLintBody(r);
}

function formatLintBody(r: TemplateLintResult): string {
  if (r.ok) return `ok: ${r.templates.length} template(s) in ${r.files.length} file(s), revision ${r.revision.slice(0, 12)}\n`;
  return `${r.issues.map(formatIssue).join('\n')}\n${r.issues.length} problem(s)\n`;
}
