/**
 * `warden templates lint PATH...`: checks template files without starting a server. The CLI entry
 * takes `--config FILE` out of the arguments and passes the config's limits in.
 */
import { stat } from 'node:fs/promises';
import { groupHelpTopic, parse, UsageError, usageText, type Options } from '../cli/args.js';
import { formatLocation, isWardenError } from '../pipeline/errors.js';
import { notRegular } from '../pipeline/regular-file.js';
import { formatLintResult, lintTemplates } from './lint.js';
import { TemplatesUnreadableError, type TemplateLimits } from './loader.js';

export interface TemplatesCliIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const USAGE = `Usage: warden templates lint PATH... [--config FILE]

Reads every *.yaml / *.yml template under each PATH (a directory, searched recursively, or a
file) and checks it: the schema, placeholders against declared variables, secret refs, secret-
looking literals, approvals on restricted templates, duplicate id@version. Prints one line per
problem as file:line:col: key: message. Exits 0 when clean, 1 on problems (or a config that
does not load), 2 on usage errors.

Options:
  -c, --config FILE   A Warden config file: also apply the limits serve holds templates to at
                      load, so a template serve would refuse is reported (limits.max_variables:
                      more required request variables than one request may send; secret refs
                      outside secrets.file_roots / secrets.env_allow, or naming the config's own)
  -h, --help          Show this help
`;

/** `templates lint`'s own flags (`--config` is taken out before, by the CLI entry). */
export const LINT_OPTIONS = { help: { type: 'boolean', short: 'h' } } as const satisfies Options;

export async function runTemplatesCli(argv: readonly string[], io: TemplatesCliIO, limits: TemplateLimits = {}): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    io.stderr.write(USAGE);
    return 2;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    // `templates help lint` is `templates lint --help`; anything else after it is a usage error.
    try {
      groupHelpTopic(cmd, rest, ['lint']);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      io.stderr.write(usageText(err.message, 'templates'));
      return 2;
    }
    io.stdout.write(USAGE);
    return 0;
  }
  if (cmd !== 'lint') {
    io.stderr.write(usageText(`unknown command '${cmd}'`, 'templates'));
    return 2;
  }
  // The CLI's one parser (src/cli/args.ts), before `--help` is honoured: an unknown flag next to
  // it is a usage error, as in every command. (`--config` was taken out by the caller.)
  let paths: string[];
  try {
    const { values, positionals } = parse([...rest], LINT_OPTIONS, true);
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length === 0) throw new UsageError('want at least one PATH');
    paths = positionals;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(usageText(err.message, 'templates lint'));
    return 2;
  }
  // A PATH named on the command line that is neither a directory nor a regular file (a FIFO) is
  // refused like a missing one: the loader would only skip it with a warning and report "ok" for
  // a file that was never checked. (Inside a directory such entries stay warnings, as in serve.)
  for (const path of paths) {
    const st = await stat(path).catch(() => undefined);
    if (st && !st.isDirectory() && !st.isFile()) {
      io.stderr.write(`${path}: template_invalid: cannot read templates path (${notRegular(st).reason})\n`);
      return 2;
    }
  }
  try {
    const result = await lintTemplates(paths, limits);
    io.stdout.write(formatLintResult(result));
    return result.ok ? 0 : 1;
  } catch (err) {
    // `path: code: message`, as every file error of the CLI.
    const where = isWardenError(err) ? formatLocation(err.location) : '';
    const code = isWardenError(err) ? err.code : 'internal';
    io.stderr.write(`${where || 'warden'}: ${code}: ${(err as Error).message}\n`);
    return lintFailureExitCode(err);
  }
}

/**
 * The exit code of a lint that failed before it could report problems: 2 for a path that cannot
 * be read, as README's table says; 1 for a set refused whole (more files than Warden reads), a
 * problem of the templates, as `policy check` does, and for anything else. By the error's class,
 * so a reworded message cannot change an exit code.
 */
export function lintFailureExitCode(err: unknown): 1 | 2 {
  return err instanceof TemplatesUnreadableError ? 2 : 1;
}
