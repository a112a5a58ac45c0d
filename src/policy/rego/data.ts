/**
 * Loading policies and data from disk as `opa eval -d` / `opa test` do: `*.rego` files are
 * modules; `*.json`, `*.yaml` and `*.yml` files are data, merged under `data` at the path of
 * their directory relative to the root they were found under (`root/a/b/data.json` → data.a.b;
 * a file given directly merges at `data`).
 */
import { realpath, stat } from 'node:fs/promises';
import { basename, relative, sep } from 'node:path';
import { MAX_JSON_DEPTH_CEILING, tooDeepAt } from '../../pipeline/json-depth.js';
import { MAX_YAML_DEPTH, yamlDepthProblem, yamlTooDeep } from '../../pipeline/yaml-depth.js';
import { yamlValueSteps } from '../../pipeline/yaml-value-steps.js';
import { parseYamlValue, YamlTagError } from '../../pipeline/yaml-tags.js';
import { jsonSyntaxErrorOffset, unmarshalJSON } from './builtins/json.js';
import { firstDuplicateKey, lineColumn } from './json-unique-keys.js';
import { jsonDataSteps } from './json-data.js';
import { runSteps, runStepsYielding, type Steps } from '../../pipeline/time-slices.js';
import { decodeTextSteps, TextDecodeError } from '../../pipeline/text-file.js';
import { FileTooLargeError, NotRegularFileError, openRegularFile, readAtMost } from '../../pipeline/regular-file.js';
import { MIB } from '../../pipeline/sizes.js';
import { walkTree, type TreeWalkRules } from '../../pipeline/tree-walk.js';
import { fileLocation, RegoError } from './errors.js';

export interface LoadedFiles {
  /** `revisionName`: the root's index in `paths` and the file's path under it (see RegoSource). */
  modules: Array<{ path: string; source: string; revisionName: string }>;
  data: Record<string, unknown>;
  /** With `excludeTests`: the `*_test.rego` files left out, unread (see test-files.ts). */
  skippedTests: string[];
  /**
   * What the load has read so far: the left-out test files, read later for their warnings, are
   * charged to it too, so every file under the policy paths counts towards the set's cap.
   */
  budget: ReadBudget;
}

function isPlain(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Deep-merges `value` into `into` at `path`; two non-object values at one path conflict. */
export function mergeData(into: Record<string, unknown>, path: readonly string[], value: unknown, file: string): void {
  let cur = into;
  for (const p of path) {
    const next = Object.prototype.hasOwnProperty.call(cur, p) ? cur[p] : undefined;
    if (next === undefined) {
      const o: Record<string, unknown> = {};
      Object.defineProperty(cur, p, { value: o, enumerable: true, writable: true, configurable: true });
      cur = o;
    } else if (isPlain(next)) cur = next;
    else throw new RegoError('rego_compile_error', `merge error: data.${path.join('.')} conflicts with existing data`, fileLocation(file));
  }
  if (!isPlain(value)) {
    if (path.length === 0) throw new RegoError('rego_compile_error', 'data file at the root must hold an object', fileLocation(file));
    const parent = path.slice(0, -1).reduce<Record<string, unknown>>((o, p) => o[p] as Record<string, unknown>, into);
    const last = path[path.length - 1]!;
    if (Object.keys(cur).length > 0) throw new RegoError('rego_compile_error', `merge error: data.${path.join('.')} conflicts with existing data`, fileLocation(file));
    parent[last] = value;
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const existing = Object.prototype.hasOwnProperty.call(cur, k) ? cur[k] : undefined;
    if (existing === undefined) Object.defineProperty(cur, k, { value: v, enumerable: true, writable: true, configurable: true });
    else if (isPlain(existing) && isPlain(v)) mergeData(cur, [k], v, file);
    else throw new RegoError('rego_compile_error', `merge error: data.${[...path, k].join('.')} is defined twice`, fileLocation(file));
  }
}

/**
 * The largest policy module (`.rego`) read: 1 MiB (a large policy is some tens of KiB). It is
 * parsed and compiled whole, at tens of times its size in memory.
 */
export const MAX_REGO_FILE_BYTES = MIB;
/** The largest data file (`.json`, `.yaml`) read: 8 MiB (JSON is held at about ten times its size). */
export const MAX_DATA_FILE_BYTES = 8 * MIB;
/**
 * The most policy and data files one load reads under all its paths together, and the most
 * bytes they may hold between them (32 MiB). Past either the load fails (a start fails, a
 * reload keeps the last good set): each reload reads and compiles every file again.
 */
export const MAX_POLICY_FILES = 10_000;
export const MAX_POLICY_TOTAL_BYTES = 32 * MIB;
/**
 * The most bytes the policy modules one load compiles may hold together: 2 MiB. A compiled
 * module holds up to about 100 bytes of heap per byte of source (its rules become closures; 150-200
 * before the twenty-third session's planner changes), and a reload holds the old set beside the
 * new one; under the set's 32 MiB alone a generated policy of a few MiB took gigabytes and ended the process (out of memory) at start or on a reload, where it
 * should be refused. 2 MiB is some 40,000 lines of Rego, far past a written policy; generated
 * tables belong in data files, held at a few times their size. Left-out `*_test.rego` files are
 * not compiled and do not count.
 */
export const MAX_REGO_TOTAL_BYTES = 2 * MIB;

/** Bytes one load has read so far (loadFiles): the set as a whole is held to MAX_POLICY_TOTAL_BYTES. */
export interface ReadBudget {
  bytes: number;
}

/** The files read by one load passed MAX_POLICY_TOTAL_BYTES (a RegoError naming the file that did). */
export class PolicySetTooLargeError extends RegoError {}

/** The per-file cap of `file` (MAX_REGO_FILE_BYTES or MAX_DATA_FILE_BYTES). */
function fileCap(file: string): { bytes: number; kind: string } {
  return isRego(file) ? { bytes: MAX_REGO_FILE_BYTES, kind: 'a policy (.rego) file' } : { bytes: MAX_DATA_FILE_BYTES, kind: 'a data file' };
}

/**
 * A file's bytes, refused by its size before it is read when it is larger than its cap (or than
 * what is left of the load's `budget`), and refused when it is not a regular file (a FIFO would
 * block the load for good).
 */
async function readCapped(file: string, budget?: ReadBudget, modules?: ReadBudget): Promise<Uint8Array> {
  const cap = fileCap(file);
  let fh;
  try {
    fh = await openRegularFile(file);
  } catch (err) {
    if (err instanceof NotRegularFileError) throw new RegoError('rego_compile_error', err.reason, fileLocation(file));
    throw new RegoError('rego_compile_error', `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, fileLocation(file));
  }
  try {
    const tooLarge = (size: number): RegoError | undefined => {
      if (size > cap.bytes) return new RegoError('rego_compile_error', `the file is ${size} bytes; ${cap.kind} may be at most ${cap.bytes / MIB} MiB (${cap.bytes} bytes)`, fileLocation(file));
      if (budget && budget.bytes + size > MAX_POLICY_TOTAL_BYTES) {
        return new PolicySetTooLargeError('rego_compile_error', `the policy and data files read up to this one hold more than ${MAX_POLICY_TOTAL_BYTES / MIB} MiB (${MAX_POLICY_TOTAL_BYTES} bytes), the most all of them together may hold`, fileLocation(file));
      }
      if (modules && modules.bytes + size > MAX_REGO_TOTAL_BYTES) {
        return new PolicySetTooLargeError(
          'rego_compile_error',
          `the policy (.rego) files read up to this one hold more than ${MAX_REGO_TOTAL_BYTES / MIB} MiB (${MAX_REGO_TOTAL_BYTES} bytes), the most the modules of a set may hold together (compiled, a module takes up to about 100 times its size in memory): put generated tables in data files`,
          fileLocation(file),
        );
      }
      return undefined;
    };
    const { size } = await fh.stat();
    const before = tooLarge(size);
    if (before) throw before;
    // One that grew after its size was read is read no further than its cap allows, then refused.
    let bytes: Uint8Array;
    try {
      bytes = await readAtMost(fh, Math.min(cap.bytes, MAX_POLICY_TOTAL_BYTES - (budget?.bytes ?? 0), modules ? MAX_REGO_TOTAL_BYTES - modules.bytes : Infinity), size);
    } catch (e) {
      if (e instanceof FileTooLargeError) throw tooLarge(e.size) ?? e;
      throw e;
    }
    if (budget) budget.bytes += bytes.length;
    if (modules) modules.bytes += bytes.length;
    return bytes;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * A policy or data file's text: not UTF-8 text (see pipeline/text-file.ts) is a parse error at
 * the first bad byte; `what` prefixes the message. A file larger than its cap is refused before
 * it is read (see MAX_REGO_FILE_BYTES, MAX_DATA_FILE_BYTES; `budget`: MAX_POLICY_TOTAL_BYTES; `modules`,
 * the bytes of the modules to compile: MAX_REGO_TOTAL_BYTES).
 */
export async function readText(file: string, what = '', budget?: ReadBudget, modules?: ReadBudget): Promise<string> {
  return runSteps(textSteps(file, what, await readCapped(file, budget, modules)));
}

/** A file's bytes decoded as text, a chunk at a time (see readText). */
function* textSteps(file: string, what: string, bytes: Uint8Array): Steps<string> {
  try {
    return yield* decodeTextSteps(bytes);
  } catch (e) {
    if (!(e instanceof TextDecodeError)) throw e;
    throw new RegoError('rego_parse_error', `${what}${e.reason}`, { file, row: e.line, col: e.column });
  }
}

/**
 * A data file's value. Read a piece at a time (`signal`: see LoadFilesOptions): a data file of
 * several MB read in one step held the event loop for seconds on every hot reload.
 */
export async function parseDataFile(file: string, budget?: ReadBudget, signal?: AbortSignal): Promise<unknown> {
  const bytes = await readCapped(file, budget);
  return runStepsYielding(
    (function* () {
      return yield* dataTextSteps(file, yield* textSteps(file, 'cannot parse data file: ', bytes));
    })(),
    signal,
  );
}

/**
 * dataText's work, a piece at a time: JSON by json-data.ts, YAML by pipeline/yaml-value-steps.ts,
 * which read clean data only; any other text is read whole by dataText, for the error it has
 * always given, at its place (YAML with anchors: for its value).
 */
export function* dataTextSteps(file: string, text: string): Steps<unknown> {
  if (file.endsWith('.json')) {
    const data = yield* jsonDataSteps(text, MAX_JSON_DEPTH_CEILING);
    if (data !== undefined) return data;
  } else if (!yamlTooDeep(text)) {
    const data = yield* yamlValueSteps(text);
    if (data !== undefined) return data;
  }
  return dataText(file, text);
}

/** The value of a data file's text, in one step; a RegoError (file, line, column) for what is wrong with it. */
function dataText(file: string, text: string): unknown {
  const json = file.endsWith('.json');
  // The YAML parser cannot survive a few thousand levels (see pipeline/yaml-depth.ts).
  const deep = json ? undefined : yamlDepthProblem(text);
  if (deep) throw new RegoError('rego_parse_error', `data nested deeper than ${MAX_YAML_DEPTH} levels`, { file, row: deep.line, col: deep.column });
  let data: unknown;
  try {
    // unmarshalJSON, as json.unmarshal: an integer past 2^53 stays exact (JSON.parse would round
    // it, and two IDs that round alike would compare equal).
    data = json ? unmarshalJSON(text) : parseYamlValue(text);
  } catch (e) {
    if (e instanceof YamlTagError) throw new RegoError('rego_parse_error', `cannot parse data file: ${e.message}`, { file, row: e.line, col: e.col });
    // The exact parser (taken for long numbers) recurses: valid JSON some thousands of levels
    // deep runs it out of stack, deeper than data may be anyway.
    if (e instanceof RangeError) throw new RegoError('rego_parse_error', `data nested deeper than ${MAX_JSON_DEPTH_CEILING} levels`, fileLocation(file));
    // Where, never what: the parsers' messages quote the text, which may hold a secret.
    const at = json ? jsonErrorAt(e, text) : yamlErrorAt(e);
    const where = at ? { file, row: at.line, col: at.col } : fileLocation(file);
    throw new RegoError('rego_parse_error', `cannot parse data file: not valid ${json ? 'JSON' : 'YAML'}`, where);
  }
  // A parser keeps one of two same-named keys and drops the other without a word; a YAML data
  // file with a repeated key is refused by its parser, a JSON one here (json-unique-keys.ts).
  // Where, never what: the key is data.
  const dup = json ? firstDuplicateKey(text) : undefined;
  if (dup) {
    const at = lineColumn(text, dup.offset);
    const first = lineColumn(text, dup.first);
    throw new RegoError('rego_parse_error', `cannot parse data file: duplicate key: already set at line ${first.line}, column ${first.col} (keys must be unique)`, { file, row: at.line, col: at.col });
  }
  // Data is walked recursively when it is merged and evaluated: refused here, with its file.
  if (tooDeepAt(data, MAX_JSON_DEPTH_CEILING)) {
    throw new RegoError('rego_parse_error', `data nested deeper than ${MAX_JSON_DEPTH_CEILING} levels`, fileLocation(file));
  }
  return data;
}

/**
 * Line and column of a JSON.parse error: from the offset its message gives (V8: "position N"),
 * else from the exact parser's offset.
 */
export function jsonErrorAt(e: unknown, text: string): { line: number; col: number } | undefined {
  const m = e instanceof Error ? /position (\d+)/.exec(e.message) : null;
  const offset = m ? Number(m[1]) : e instanceof SyntaxError && /end of (JSON )?input/i.test(e.message) ? text.length : jsonSyntaxErrorOffset(text);
  if (offset === undefined) return undefined;
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - before.lastIndexOf('\n') };
}

/** Line and column of a `yaml` library error (`linePos`, set with prettyErrors). */
export function yamlErrorAt(e: unknown): { line: number; col: number } | undefined {
  const pos = (e as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
  return pos ? { line: pos.line, col: pos.col } : undefined;
}

const isRego = (f: string): boolean => f.endsWith('.rego');
const isData = (f: string): boolean => f.endsWith('.json') || f.endsWith('.yaml') || f.endsWith('.yml');

/**
 * How the policy and data files under a directory are found (pipeline/tree-walk.ts): links are
 * followed, directories too (a ConfigMap mounts an item in a sub-directory as `sub -> ..data/sub`,
 * and skipping it would drop its rules, its deny rules too), each real directory is read once, and
 * dot-entries are skipped. Anything that goes wrong fails the load, as leaving a file out could drop
 * a rule: a directory that cannot be read (a reload keeps the last good set; the next one reads the
 * tree as it is then), a link that cannot be followed, a policy or data file that is not a regular
 * file (a FIFO would block the load for good), more files than the cap.
 */
const WALK_RULES: TreeWalkRules = {
  wanted: (name) => isRego(name) || isData(name),
  tooMany: (dir) => tooManyFiles(dir),
  unreadableDir: (dir, err) => new RegoError('rego_compile_error', `cannot read directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`, fileLocation(dir), { cause: err }),
  unreadable: (path, err) => {
    throw new RegoError('rego_compile_error', `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, fileLocation(path));
  },
  notRegular: (path) => {
    throw new RegoError('rego_compile_error', 'not a regular file', fileLocation(path));
  },
};

function tooManyFiles(where: string): RegoError {
  return new RegoError('rego_compile_error', `more than ${MAX_POLICY_FILES} policy and data files: Warden reads at most ${MAX_POLICY_FILES} under its policy paths together`, fileLocation(where));
}

export interface LoadFilesOptions {
  /** Leave `*_test.rego` files out (see LoadedFiles.skippedTests). */
  excludeTests?: boolean;
  /**
   * Gives the load up at the data file being read's next turn (rejecting with the signal's
   * reason): data files are read a piece at a time (time-slices.ts), so a deadline can stop them.
   */
  signal?: AbortSignal;
}

export async function loadFiles(paths: string[], opts: LoadFilesOptions = {}): Promise<LoadedFiles> {
  const budget: ReadBudget = { bytes: 0 };
  /** The modules to compile (MAX_REGO_TOTAL_BYTES): left-out test files are not among them. */
  const compiled: ReadBudget = { bytes: 0 };
  /** Files listed so far, under all the paths. */
  let listed = 0;
  const modules: LoadedFiles['modules'] = [];
  const data: Record<string, unknown> = {};
  const skippedTests: string[] = [];
  // Real paths of the files read so far: paths that reach a file twice (a file listed next to its
  // own directory, a directory listed twice) load it once, at its first listing. Twice, its
  // rules would clash with themselves (`multiple default rules`) and its data with itself.
  const loaded = new Set<string>();
  for (const [index, root] of paths.entries()) {
    let st;
    try {
      st = await stat(root);
    } catch {
      throw new RegoError('rego_compile_error', 'no such file or directory', fileLocation(root));
    }
    const files: Array<{ file: string; dataPath: string[] }> = [];
    if (st.isDirectory()) {
      const found: string[] = [];
      await walkTree(root, WALK_RULES, { out: found, limit: MAX_POLICY_FILES - listed, read: new Set() });
      listed += found.length;
      for (const f of found) {
        const rel = relative(root, f);
        const dirs = rel.split(sep).slice(0, -1);
        files.push({ file: f, dataPath: dirs });
      }
    } else if (st.isFile()) {
      if (++listed > MAX_POLICY_FILES) throw tooManyFiles(root);
      files.push({ file: root, dataPath: [] });
    } else throw new RegoError('rego_compile_error', 'not a regular file', fileLocation(root));
    for (const { file, dataPath } of files) {
      let real: string;
      try {
        real = await realpath(file);
      } catch (err) {
        // Removed since it was listed (a reload during a change): this load fails, naming it.
        throw new RegoError('rego_compile_error', `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, fileLocation(file), { cause: err });
      }
      if (loaded.has(real)) continue;
      loaded.add(real);
      if (isRego(file)) {
        if (opts.excludeTests && basename(file).endsWith('_test.rego')) {
          skippedTests.push(file);
          continue;
        }
        // '/'-separated, and the name alone for a file given as a root: the same on every mount.
        const under = file === root ? basename(file) : relative(root, file).split(sep).join('/');
        modules.push({ path: file, source: await readText(file, '', budget, compiled), revisionName: `${index}:${under}` });
      } else if (isData(file)) {
        mergeData(data, dataPath, await parseDataFile(file, budget, opts.signal), file);
      } else {
        throw new RegoError('rego_compile_error', 'not a .rego, .json or .yaml file', fileLocation(file));
      }
    }
  }
  return { modules, data, skippedTests, budget };
}
