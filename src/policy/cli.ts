/**
 * `warden policy …`: evaluate queries, run policy unit tests and check policies with the
 * built-in Rego engine, printing what `opa eval --format json` / `opa test` / `opa check` print,
 * so that platform teams need no `opa` binary. `argv` is what follows `warden policy`.
 * Errors are one line each (`file:line:col: code: message`), never a stack trace.
 */
import { randomBytes } from 'node:crypto';
import { groupHelpTopic, parse, UsageError, usageText, type Options } from '../cli/args.js';
import { MAX_YAML_DEPTH, yamlDepthProblem } from '../pipeline/yaml-depth.js';
import { tooDeepAt } from '../pipeline/json-depth.js';
import { parseYamlValue, YamlTagError } from '../pipeline/yaml-tags.js';
import { duplicateKeyFirst } from '../pipeline/yaml-unique-keys.js';
import { FileTooLargeError, readFailure, readRegularFile } from '../pipeline/regular-file.js';
import { decodeText, TextDecodeError } from '../pipeline/text-file.js';
import { isWardenError } from '../pipeline/errors.js';
import { readAllCappedBytes, stdinReadFailure } from '../cli/stdin.js';
import { MAX_INPUT_DEPTH, compileRegoPolicy, formatInputPath, loadRegoPolicy, type InputDeps, type QueryResult, type RegoPolicy } from './rego/index.js';
import { stringifyJSON, type Value } from './rego/value.js';
import { parseModule } from './rego/ast/parser.js';
import { jsonErrorAt, loadFiles, MAX_DATA_FILE_BYTES, yamlErrorAt } from './rego/data.js';
import { MIB } from '../pipeline/sizes.js';
import { unmarshalJSON } from './rego/builtins/json.js';
import { errorLine, runTestRules } from './test-runner.js';

/**
 * Where `warden policy` writes, and where `eval -i -` reads its input: the CLI's streams (see
 * cli/io.ts; cli/tools.ts passes the process's), or a test's.
 */
export interface PolicyCliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** stdin, called only when `-i -` reads it. */
  stdin: () => NodeJS.ReadableStream;
}

const HELP: Record<string, string> = {
  main: `Usage: warden policy <command> [options]

Commands:
  eval   Evaluate a Rego query against policies, data and an input
  test   Run the test_ rules of Rego policies
  check  Parse and compile policies, reporting errors

Run 'warden policy <command> --help' for a command's options.
`,
  eval: `Usage: warden policy eval -d PATH... [-i INPUT] QUERY

Evaluates QUERY (e.g. data.warden.decision) and prints the result as
'opa eval --format json' does: {"result":[{"expressions":[…],"bindings":{…}}]},
or {} when the query is undefined. A query of one expression that does not
iterate reports its value even when it is false (data.warden.allow, 1 == 2);
1 = 2 is undefined. Lines from print() go to stderr.

Options:
  -d, --data PATH    A .rego, .json or .yaml file or a directory (repeatable)
  -i, --input FILE   The input document (JSON or YAML, at most 8 MiB);
                     - reads it from stdin
  -f, --format json  The output format: json, the only one (as in opa eval)
      --strict       Raise built-in errors instead of treating them as undefined
                     (also --strict-builtin-errors, opa's name)
  -h, --help         Show this help
`,
  test: `Usage: warden policy test PATH... [-v] [--lenient]

Runs every rule whose name starts with test_ in the given files and directories,
as 'opa test' does. Exits 1 when a test fails or a policy does not compile.
What a test print()s is shown, indented, under its result line (failing tests,
or every test with -v). A built-in that fails (1 / 0, to_number("x")) is an
ERROR, as the sidecar's policy_error is (policy.strict_builtin_errors: true).

Options:
  -v, --verbose      Print a line per test
      --lenient      Treat built-in errors as undefined, as opa test does and as
                     the sidecar does with policy.strict_builtin_errors: false
  -h, --help         Show this help
`,
  check: `Usage: warden policy check PATH...

Parses and compiles the given policies and prints each error as
file:line:col: code: message. Exits 1 when there is an error. Otherwise
prints whether Warden's decision cache applies to them (the files
without _test.rego) and, if not, which rule construct prevents it.

Options:
  -h, --help         Show this help
`,
};

/**
 * Each command's flags, parsed by the CLI's one parser (src/cli/args.ts) before anything else,
 * `--help` included: an unknown flag is a usage error even next to `--help`, as in every command.
 * -d is repeatable (as in opa); -i and -f take one value: a second one is a mistake to report,
 * not a value to prefer.
 */
export const OPTIONS: Record<string, Options> = {
  eval: {
    data: { type: 'string', short: 'd', multiple: true },
    input: { type: 'string', short: 'i' },
    format: { type: 'string', short: 'f' },
    strict: { type: 'boolean' },
    'strict-builtin-errors': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  test: { verbose: { type: 'boolean', short: 'v' }, lenient: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  check: { help: { type: 'boolean', short: 'h' } },
};

type Parsed = ReturnType<typeof parse>;

/**
 * `opa eval --format json` text: the result wrapper in OPA's field order, Rego values with
 * sorted keys and exact big integers (stringifyJSON), indented by two spaces.
 */
function evalJson(results: QueryResult[]): string {
  const nonce = randomBytes(6).toString('hex');
  const values: Value[] = [];
  const hold = (v: unknown): string => {
    values.push(v as Value);
    return `${nonce}:${values.length - 1}`;
  };
  const wrapper = {
    result: results.map((r) => ({
      expressions: r.expressions.map((e) => ({ value: hold(e.value), text: e.text, location: e.location })),
      ...(Object.keys(r.bindings).length > 0 ? { bindings: hold(r.bindings) } : {}),
    })),
  };
  const text = JSON.stringify(wrapper, null, 2);
  const re = new RegExp(`^( *)(.*)"${nonce}:(\\d+)"`, 'gm');
  return text.replace(re, (_m, lead: string, before: string, idx: string) => {
    const json = stringifyJSON(values[Number(idx)]!, 2).split('\n').join('\n' + lead);
    return lead + before + json;
  });
}

/**
 * An input document that cannot be read (`file_unreadable`) or parsed (`input_invalid`), as
 * `file[:line:col]: code: message`.
 */
class InputError extends Error {
  constructor(file: string, at: { line: number; col: number } | undefined, message: string, code = 'input_invalid') {
    super(`${file}${at ? `:${at.line}:${at.col}` : ''}: ${code}: ${message}`);
  }
}

/** The largest `-i` input read: a data file's cap (a request's input is far smaller). */
const MAX_INPUT_BYTES = MAX_DATA_FILE_BYTES;

/**
 * A bad input document is an error (exit 1), not a usage mistake; its message gives where the
 * document breaks, never its text (it may hold secrets).
 */
async function readInput(file: string, io: PolicyCliIo): Promise<unknown> {
  let text: string;
  if (file === '-') {
    // `-i -`: stdin, JSON or YAML (a JSON document is YAML too), up to the same cap.
    try {
      text = decodeText(await readAllCappedBytes(io.stdin(), MAX_INPUT_BYTES));
    } catch (e) {
      if (e instanceof TextDecodeError) throw new InputError('stdin', { line: e.line, col: e.column }, `cannot parse input: ${e.reason}`);
      if (isWardenError(e) && e.code === 'payload_too_large') throw new InputError('stdin', undefined, `the input is larger than ${MAX_INPUT_BYTES / MIB} MiB (${MAX_INPUT_BYTES} bytes)`, 'payload_too_large');
      const reason = stdinReadFailure(e);
      if (reason === undefined) throw e;
      throw new InputError('stdin', undefined, `cannot read stdin (${reason})`, 'file_unreadable');
    }
    return parseInput('stdin', text, 'either');
  }
  try {
    // A regular file only: a FIFO would make eval wait for a writer for good.
    text = await readRegularFile(file, MAX_INPUT_BYTES);
  } catch (e) {
    if (e instanceof FileTooLargeError) throw new InputError(file, undefined, `the input is ${e.size} bytes; an input document may be at most ${MAX_INPUT_BYTES / MIB} MiB (${MAX_INPUT_BYTES} bytes)`, 'payload_too_large');
    if (e instanceof TextDecodeError) throw new InputError(file, { line: e.line, col: e.column }, `cannot parse input: ${e.reason}`);
    throw new InputError(file, undefined, `cannot read input file (${readFailure(e)})`, 'file_unreadable');
  }
  return parseInput(file, text, inputFormat(file));
}

/**
 * How the input's text is read: by its file name (`.json`; `.yaml`, `.yml`), else, as for stdin,
 * which has none, as JSON when it parses as JSON and else as YAML (`"user": alice` is YAML whose
 * first key is quoted, not broken JSON).
 */
type InputFormat = 'json' | 'yaml' | 'either';

function inputFormat(file: string): InputFormat {
  if (file.endsWith('.json')) return 'json';
  return file.endsWith('.yaml') || file.endsWith('.yml') ? 'yaml' : 'either';
}

/** Why the text is not the document a format reads: where (when known) and what, never the text. */
interface ParseFailure {
  at: { line: number; col: number } | undefined;
  message: string;
  /** Broken syntax (rather than a rule broken by text that is JSON or YAML: a repeated key, a tag, its depth). */
  syntax: boolean;
}

/** The text as JSON (`yaml` false) or YAML, with exact integers past 2^53, as in data files and json.unmarshal. */
function parseAs(text: string, yaml: boolean): { value: unknown } | { failure: ParseFailure } {
  const deep = yaml ? yamlDepthProblem(text) : undefined;
  if (deep) return { failure: { at: { line: deep.line, col: deep.column }, message: `nested deeper than ${MAX_YAML_DEPTH} levels`, syntax: false } };
  const tooDeep: ParseFailure = { at: undefined, message: `nested deeper than ${MAX_INPUT_DEPTH} levels`, syntax: false };
  try {
    const value = yaml ? parseYamlValue(text) : unmarshalJSON(text);
    // Deeper than evaluation takes (MAX_INPUT_DEPTH): refused here, naming the input file, as a
    // data file is, rather than by the evaluation's budget.
    return tooDeepAt(value, MAX_INPUT_DEPTH) ? { failure: tooDeep } : { value };
  } catch (e) {
    if (e instanceof YamlTagError) return { failure: { at: { line: e.line, col: e.col }, message: e.message, syntax: false } };
    // A value too deep for the engine's own recursion elsewhere, should one reach it.
    if (e instanceof RangeError) return { failure: tooDeep };
    if (!yaml) return { failure: { at: jsonErrorAt(e, text), message: 'not valid JSON', syntax: true } };
    // A repeated key is said as such, with where the key it repeats stands (never the key: it may be a secret).
    const first = duplicateKeyFirst(e);
    if (first) return { failure: { at: yamlErrorAt(e), message: `not valid YAML (duplicate key: already set at line ${first.line}, column ${first.col}; keys must be unique)`, syntax: false } };
    return { failure: { at: yamlErrorAt(e), message: 'not valid YAML', syntax: true } };
  }
}

/**
 * The input's text as `format` reads it; errors say where, never what. Read as either, a text that
 * is neither is reported in the format it is: YAML when it is YAML but for a rule (a repeated key,
 * a tag), else the format it looks like (JSON when it starts as a JSON object or array does); the
 * other attempt is named after it, with where that one breaks.
 */
function parseInput(file: string, text: string, format: InputFormat): unknown {
  const json = format === 'yaml' ? undefined : parseAs(text, false);
  if (json && 'value' in json) return json.value;
  // JSON too deep for the exact parser is JSON: said as such.
  if (format === 'json' || (json && !json.failure.syntax)) throw parseError(file, json!.failure);
  const yaml = parseAs(text, true);
  if ('value' in yaml) return yaml.value;
  if (format === 'yaml' || !json) throw parseError(file, yaml.failure);
  const yamlFirst = !yaml.failure.syntax || !/^\s*[[{]/.test(text);
  const [first, other, otherName] = yamlFirst ? [yaml.failure, json.failure, 'JSON'] : [json.failure, yaml.failure, 'YAML'];
  const where = other.at ? ` (it breaks at line ${other.at.line}, column ${other.at.col})` : '';
  throw parseError(file, { ...first, message: `${first.message}; not ${otherName} either${where}` });
}

function parseError(file: string, f: ParseFailure): InputError {
  return new InputError(file, f.at, `cannot parse input: ${f.message}`);
}

async function cmdEval({ values, positionals: rest }: Parsed, io: PolicyCliIo): Promise<number> {
  const data = (values.data as string[] | undefined) ?? [];
  const input = values.input as string | undefined;
  const format = values.format as string | undefined;
  const strict = values.strict === true || values['strict-builtin-errors'] === true;
  if (format !== undefined && format !== 'json') throw new UsageError(`unsupported format ${format}: only json`);
  if (rest.length !== 1) throw new UsageError('want exactly one QUERY');
  const policy = await loadRegoPolicy(data);
  const inputDoc = input === undefined ? undefined : await readInput(input, io);
  // print(…) lines go to stderr as opa eval writes them, keeping stdout the JSON result.
  const print = (line: string): void => void io.stderr.write(line + '\n');
  const results = policy.queryResults(rest[0]!, inputDoc, { strictBuiltinErrors: strict, print });
  if (results.length === 0) {
    io.stdout.write('{}\n');
    return 0;
  }
  io.stdout.write(evalJson(results) + '\n');
  return 0;
}

function fmtDuration(ns: bigint): string {
  const us = Number(ns) / 1000;
  if (us < 1000) return `${us.toFixed(0)}µs`;
  return `${(us / 1000).toFixed(1)}ms`;
}

async function cmdTest({ values, positionals: paths }: Parsed, io: PolicyCliIo): Promise<number> {
  const verbose = values.verbose === true;
  // As the sidecar evaluates by default: a test must not pass where a served call is policy_error.
  const strictBuiltinErrors = values.lenient !== true;
  if (paths.length === 0) throw new UsageError('want at least one PATH');
  let policy: RegoPolicy;
  try {
    policy = await loadRegoPolicy(paths);
  } catch (e) {
    io.stderr.write(errorLine(e) + '\n');
    io.stdout.write('0 passed, 0 failed\n');
    return 1;
  }
  // The runner `policy.require_tests` runs at each load too: what passes here passes there.
  const outcomes = (await runTestRules(policy, { strictBuiltinErrors, keepPrinted: true })).map((o) => ({ ...o, file: o.location?.file ?? '' }));
  type Outcome = (typeof outcomes)[number];
  const failed = outcomes.filter((o) => o.status !== 'PASS');
  const line = '-'.repeat(80);
  if (failed.length > 0 && !verbose) {
    io.stdout.write(`FAILURES\n${line}\n`);
    for (const o of failed) io.stdout.write(`${o.name}: ${o.status}${o.error ? `\n  ${o.error}` : ''}\n`);
    io.stdout.write(`\nSUMMARY\n${line}\n`);
  }
  if (verbose || failed.length > 0) {
    const byFile = new Map<string, Outcome[]>();
    for (const o of outcomes) byFile.set(o.file, [...(byFile.get(o.file) ?? []), o]);
    for (const [file, list] of byFile) {
      io.stdout.write(`${file}:\n`);
      for (const o of list) {
        if (!verbose && o.status === 'PASS') continue;
        io.stdout.write(`${o.name}: ${o.status} (${fmtDuration(o.ns)})${o.error && verbose ? `\n  ${o.error}` : ''}\n`);
        const printed = o.output.join('\n').trim();
        if (printed !== '') io.stdout.write(`\n${printed.replace(/^/gm, '  ')}\n\n`);
      }
    }
    io.stdout.write(`${line}\n`);
  }
  const passed = outcomes.length - failed.length;
  if (outcomes.length > 0) {
    if (passed > 0) io.stdout.write(`PASS: ${passed}/${outcomes.length}\n`);
    const fails = outcomes.filter((o) => o.status === 'FAIL').length;
    const errs = outcomes.filter((o) => o.status === 'ERROR').length;
    if (fails > 0) io.stdout.write(`FAIL: ${fails}/${outcomes.length}\n`);
    if (errs > 0) io.stdout.write(`ERROR: ${errs}/${outcomes.length}\n`);
  }
  io.stdout.write(`${passed} passed, ${failed.length} failed\n`);
  return failed.length > 0 ? 1 : 0;
}

async function cmdCheck({ positionals: paths }: Parsed, io: PolicyCliIo): Promise<number> {
  if (paths.length === 0) throw new UsageError('want at least one PATH');
  // Parse every file on its own first, so that each file's syntax error is reported, as
  // `opa check` does; then compile the whole set.
  let loaded;
  try {
    loaded = await loadFiles(paths);
  } catch (e) {
    io.stderr.write(errorLine(e) + '\n');
    return 1;
  }
  const errors: string[] = [];
  for (const m of loaded.modules) {
    try {
      parseModule(m.source, m.path);
    } catch (e) {
      errors.push(errorLine(e));
    }
  }
  if (errors.length === 0) {
    try {
      compileRegoPolicy(loaded.modules, loaded.data);
    } catch (e) {
      errors.push(errorLine(e));
    }
  }
  for (const line of errors) io.stderr.write(line + '\n');
  if (errors.length > 0) return 1;
  // The sidecar loads the same files without tests: say whether it can cache their decisions.
  io.stdout.write(decisionCacheLine(compileRegoPolicy(loaded.modules, loaded.data, { excludeTests: true }).inputDeps()) + '\n');
  return 0;
}

function decisionCacheLine(deps: InputDeps): string {
  if (!deps.cacheable) return `decision cache: does not apply: ${deps.reason ?? 'no reason given'}`;
  return `decision cache: applies, keyed on ${deps.paths.length === 0 ? 'nothing in the input' : deps.paths.map(formatInputPath).join(', ')}`;
}

export async function runPolicyCli(argv: string[], io: PolicyCliIo): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) {
    // No subcommand is a usage error: the help goes to stderr (asked for, to stdout).
    io.stderr.write(HELP.main!);
    return 2;
  }
  if (cmd === '-h' || cmd === '--help' || cmd === 'help') {
    // `policy help eval` is `policy eval --help`; anything else after it is a usage error.
    let topic: string | null;
    try {
      topic = groupHelpTopic(cmd, args, Object.keys(HELP).filter((k) => k !== 'main'));
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      io.stderr.write(usageText(err.message, 'policy'));
      return 2;
    }
    io.stdout.write(HELP[topic ?? 'main']!);
    return 0;
  }
  // Own members only: `warden policy toString` is an unknown command, not Object's.
  if (!Object.hasOwn(HELP, cmd) || cmd === 'main') {
    io.stderr.write(usageText(`unknown command '${cmd}'`, 'policy'));
    return 2;
  }
  try {
    const parsed = parse(args, OPTIONS[cmd]!, true);
    if (parsed.values.help) {
      io.stdout.write(HELP[cmd]!);
      return 0;
    }
    if (cmd === 'eval') return await cmdEval(parsed, io);
    if (cmd === 'test') return await cmdTest(parsed, io);
    return await cmdCheck(parsed, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(usageText(e.message, `policy ${cmd}`));
      return 2;
    }
    io.stderr.write(errorLine(e) + '\n');
    return 1;
  }
}
