/**
 * Small helpers around `node:util` parseArgs: one place that turns unknown flags and bad values
 * into a usage error (exit code 2) with a clear message.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs in strict mode; its errors become UsageErrors naming the flag. */
export function parse<T extends Options>(
  args: string[],
  options: T,
  allowPositionals = false,
): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals, tokens } = parseArgs({ args, options, strict: true, allowPositionals, tokens: true });
    refuseRepeats(tokens, options);
    refuseEmpty(tokens);
    refuseShortEquals(tokens, options);
    return { values: values as Record<string, string | boolean | string[] | boolean[] | undefined>, positionals };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as { code?: string }).code;
    const msg = err instanceof Error ? err.message : String(err);
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const m = /Unknown option '([^']+)'/.exec(msg);
      throw new UsageError(`unknown option ${m ? m[1] : ''}`.trim());
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const m = /Unexpected argument '([^']+)'/.exec(msg);
      throw new UsageError(`unexpected argument ${m ? `'${m[1]}'` : ''}`.trim());
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(valueProblem(msg, options));
    throw new UsageError(msg);
  }
}

/**
 * parseArgs says a flag's value is wrong in its own words (`Option '-c, --config <value>' argument
 * missing`); every command says it in Warden's, naming the long flag: `--config needs a value`,
 * `--strict takes no value`. Unrecognised wording is passed on (its first line).
 */
function valueProblem(msg: string, options: Options): string {
  const missing = /^Option '(?:-\w, )?(--[^ ']+) <value>' argument missing/.exec(msg);
  if (missing) return `${missing[1]} needs a value`;
  // `--config --help`: the next argument is a flag, not the value.
  const ambiguous = /^Option '(-{1,2}[^ ']+)' argument is ambiguous/.exec(msg);
  if (ambiguous) {
    const flag = longFlag(ambiguous[1]!, options);
    return `${flag} needs a value (one that starts with a dash is written ${flag}=-VALUE)`;
  }
  const unwanted = /^Option '(?:-\w, )?(-{1,2}[^ ',]+)' does not take an argument/.exec(msg);
  if (unwanted) return `${longFlag(unwanted[1]!, options)} takes no value`;
  return msg.split('\n')[0] ?? msg;
}

/** `-c` → `--config` (the long form is the one the help lists first). */
function longFlag(flag: string, options: Options): string {
  if (flag.startsWith('--')) return flag;
  const name = Object.keys(options).find((n) => options[n]?.short === flag.slice(1));
  return name === undefined ? flag : `--${name}`;
}

/**
 * parseArgs keeps the last of a repeated option; an operator who gives `--config` twice by
 * mistake would run with one of them without a word. A string option without `multiple` may be
 * given once (a repeated boolean flag means the same thing twice and is left alone).
 */
function refuseRepeats(tokens: ReadonlyArray<{ kind: string; name?: string }>, options: Options): void {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option' || t.name === undefined) continue;
    const o = options[t.name];
    if (o?.type !== 'string' || o.multiple === true) continue;
    if (seen.has(t.name)) throw new UsageError(repeatedOption(`--${t.name}`));
    seen.add(t.name);
  }
}

/**
 * No option of any command takes an empty value (a file, an id, a query part): `--config=` or
 * `--config ""` is a slip (an unset shell variable), refused by name rather than run with "".
 */
function refuseEmpty(tokens: ReadonlyArray<{ kind: string; name?: string; value?: string | undefined }>): void {
  for (const t of tokens) if (t.kind === 'option' && t.value === '') throw new UsageError(emptyValue(`--${t.name}`));
}

/**
 * `-d=policies`: parseArgs reads a short option's glued value whole (`=policies`, a path that does
 * not exist). opa users write it so; it is refused by name rather than run with a stray `=`.
 */
function refuseShortEquals(tokens: ReadonlyArray<{ kind: string; name?: string; rawName?: string; value?: string | undefined; inlineValue?: boolean | undefined }>, options: Options): void {
  for (const t of tokens) {
    if (t.kind !== 'option' || t.inlineValue !== true || t.rawName?.startsWith('--') !== false || !t.value?.startsWith('=')) continue;
    const long = longFlag(t.rawName, options);
    throw new UsageError(`${t.rawName}=VALUE is not a form ${t.rawName} takes: write ${t.rawName} VALUE or ${long}=VALUE`);
  }
}

/**
 * The one form of a usage error, in every command (README, "Running"): what is wrong, then where
 * the help is. `command` is what follows `warden` (`policy eval`); none for the top level.
 */
export function usageText(message: string, command?: string): string {
  return `warden: ${message}\nRun 'warden ${command ? `${command} ` : ''}--help' for usage.\n`;
}

/**
 * `--version`, `--help` and `help` take nothing after them: a flag or word there is a usage
 * error, not ignored (`warden -v serve` must not print the version and exit 0 instead of serving).
 */
export function refuseAfter(word: string, rest: readonly string[]): void {
  const [next] = rest;
  if (next === undefined) return;
  throw new UsageError(next.startsWith('-') ? `unknown option ${next}` : `unexpected argument '${next}' after ${word}`);
}

/**
 * A command group's `--help`, `-h` or `help` (`warden policy --help`, `warden policy help eval`):
 * the subcommand whose help is asked for (`help eval`), null for the group's own help, or a
 * UsageError for anything else after it, as the top level refuses (README, "Running").
 */
export function groupHelpTopic(word: string, rest: readonly string[], subcommands: readonly string[]): string | null {
  const [next, ...after] = rest;
  if (next === undefined) return null;
  if (word === 'help' && !next.startsWith('-')) {
    if (!subcommands.includes(next)) throw new UsageError(`unknown command '${next}'`);
    refuseAfter(`help ${next}`, after);
    return next;
  }
  refuseAfter(word, rest);
  return null;
}

/** The one wording for a single-valued option given twice, shared by every command's parser. */
export function repeatedOption(flag: string): string {
  return `${flag} is given more than once (it takes one value)`;
}

export function requireString(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (v === '') throw new UsageError(emptyValue(`--${name}`));
  if (typeof v !== 'string') throw new UsageError(`--${name} is required`);
  return v;
}

/** `--config=` or `--config ""`: the flag is there, its value is not (not "missing", which misleads). */
export function emptyValue(flag: string): string {
  return `${flag} is empty: it needs a value`;
}
