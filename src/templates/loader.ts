/**
 * Reads a directory tree of YAML templates, validates every document, and reports every problem
 * with `file:line:col` and the key path, so a bad change can be fixed from the error alone.
 */
import { createHash } from 'node:crypto';
import { constants, realpathSync, statSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Composer, isAlias, isMap, isPair, isScalar, LineCounter, Parser, visit, type Document, type Node, type YAMLError } from 'yaml';
import { MAX_YAML_DEPTH, yamlDepthProblem } from '../pipeline/yaml-depth.js';
import { unresolvedAlias } from '../pipeline/yaml-aliases.js';
import { YAML_TAG_OPTIONS, yamlErrorLine, yamlTagProblems } from '../pipeline/yaml-tags.js';
import { describeIssue } from '../config/issue-messages.js';
import { yamlControlProblems } from '../pipeline/yaml-controls.js';
import { yamlKeyProblems } from '../pipeline/yaml-keys.js';
import { addDuplicateKeyErrors, NO_LIBRARY_UNIQUE_KEYS } from '../pipeline/yaml-unique-keys.js';
import { WardenError } from '../pipeline/errors.js';
import { FileTooLargeError, kindOf, readAtMost, sameFile } from '../pipeline/regular-file.js';
import { decodeText, TextDecodeError } from '../pipeline/text-file.js';
import { MIB } from '../pipeline/sizes.js';
import { runSteps, runStepsYielding } from '../pipeline/time-slices.js';
import { walkTree, type TreeWalkRules } from '../pipeline/tree-walk.js';
import type { Template, VariableSpec } from '../pipeline/types.js';
// The one ref grammar (the resolver parses refs with it at request time): a ref that passes here
// cannot fail there for its syntax.
import { parseSecretRef, SecretRefError } from '../pipeline/secret-ref.js';
import { envNameAllowed, envNotAllowedReason, isUnder, k8sNamespaceNotAllowedReason, k8sRefId, outsideRootsReason, realRootSync, RESERVED_REF_REASON, vaultNotAllowedReason, type SecretRefAccess } from '../pipeline/secret-access.js';
import { vaultSecretName } from '../pipeline/vault-ref.js';
import { parsePlaceholders } from './placeholders.js';
import { TemplateSchema, type TemplateDocument } from './schema.js';
import { findSecretLiteral, isQuotableName, unquotedReason } from '../pipeline/secret-literals.js';

export interface TemplateIssue {
  file: string;
  line: number;
  column: number;
  /** Dotted key path inside the document, e.g. `variables.ticket_id.max_length`. */
  path: string;
  message: string;
}

export function formatIssue(i: TemplateIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

export class TemplateLoadError extends WardenError {
  readonly issues: TemplateIssue[];
  constructor(issues: TemplateIssue[]) {
    const first = issues[0];
    super('template_invalid', `invalid templates:\n${issues.map(formatIssue).join('\n')}`, {
      ...(first ? { location: { file: first.file, line: first.line, column: first.column, path: first.path } } : {}),
      details: { issues: issues.length },
    });
    this.name = 'TemplateLoadError';
    this.issues = issues;
  }
}

/**
 * A templates path, directory or file that cannot be read (`ENOENT`, `EACCES`, one removed while
 * the tree was walked): a failure of I/O, not a problem of the templates. `warden templates lint`
 * exits 2 for it and 1 for the rest (README's exit-code table), told apart by this class, never by
 * the message's words.
 */
export class TemplatesUnreadableError extends WardenError {
  constructor(message: string, file: string, cause?: unknown) {
    super('template_invalid', message, { location: { file }, ...(cause === undefined ? {} : { cause }) });
    this.name = 'TemplatesUnreadableError';
  }
}

/** Something skipped while reading (not an error: the load goes on), e.g. a FIFO named `*.yaml`. */
/**
 * Limits the templates are held to besides their own rules: config values, known where a server
 * loads them (start and reload), and to `warden templates lint` when it is given `--config`.
 */
export interface TemplateLimits {
  /** `limits.max_variables`: how many variables one request may send. */
  maxVariables?: number;
  /**
   * `secrets.file_roots` and `secrets.env_allow`, and the config file's directory (relative
   * `file:` refs resolve against it): where a template's secret refs may point. Unset (`warden
   * templates lint` without `--config`): only the refs' syntax is checked.
   */
  secretAccess?: SecretRefAccess & { baseDir: string };
}

export interface TemplateWarning {
  file: string;
  message: string;
}

export function formatWarning(w: TemplateWarning): string {
  return `${w.file}: ${w.message}`;
}

export interface TemplateFile {
  /** Path as given/discovered (used in messages). */
  file: string;
  text: string;
}

export interface LoadedTemplates {
  templates: Template[];
  files: TemplateFile[];
  issues: TemplateIssue[];
  /** Files and directories skipped on the way (logged by the caller; they do not fail the load). */
  warnings: TemplateWarning[];
  /** sha256 over the files' paths and contents. */
  revision: string;
}

/**
 * Most alias expansions one YAML document may make (the yaml library's `maxAliasCount`, which
 * weighs each use of an anchor by the aliases nested inside it). Generous for DRY documents
 * (an anchor used a few hundred times), small enough that an alias bomb (nested anchors, each
 * used many times) is refused after a few levels.
 */
export const MAX_YAML_ALIAS_COUNT = 1000;

const YAML_NAME = /\.ya?ml$/i;

/**
 * The largest template file read (1 MiB: a template is a few KiB, a file of many documents some
 * tens). A file is read and parsed whole, at tens of times its size in memory; a larger one is
 * refused by its size, before it is read, as a problem of that file.
 */
export const MAX_TEMPLATE_FILE_BYTES = MIB;
/**
 * The most template files read under all the template paths together, and the most bytes they
 * may hold between them (32 MiB). Past either, the set is refused (a start fails, a reload keeps
 * the last good set): each reload reads and parses every file again, and a set this large would
 * take seconds and much memory to load.
 */
export const MAX_TEMPLATE_FILES = 10_000;
export const MAX_TEMPLATE_TOTAL_BYTES = 32 * MIB;

/**
 * Lists `*.yaml|*.yml` files under each path (a directory, recursively, or a single file), sorted,
 * with what was skipped. Symlinks are followed, to directories too: a Kubernetes ConfigMap whose
 * items have paths in a sub-directory is mounted as `sub -> ..data/sub`. A directory already on
 * the way down (a symlink loop) is skipped with a warning. Dot-entries are skipped (editor swap
 * files, the `..data` and timestamped directories of a ConfigMap mount, which the symlinks above
 * lead into). Anything that is not a regular file (a FIFO, a socket, a device) is skipped with a
 * warning: reading one could block the load for good.
 */
export async function scanTemplateFiles(paths: readonly string[]): Promise<{ files: string[]; warnings: TemplateWarning[] }> {
  const out: string[] = [];
  const warnings: TemplateWarning[] = [];
  const notRegular = (file: string, st: Stats) => warnings.push({ file, message: `skipped: not a regular file (${kindOf(st)})` });
  /** Real directories already read: each is read once, however many links lead to it. */
  const read = new Set<string>();
  const tooMany = (root: string) =>
    new WardenError('template_invalid', `more than ${MAX_TEMPLATE_FILES} template files: Warden reads at most ${MAX_TEMPLATE_FILES} under templates.paths together`, {
      location: { file: root },
    });
  const pushFile = (file: string, root: string): void => {
    out.push(file);
    if (out.length > MAX_TEMPLATE_FILES) throw tooMany(root);
  };
  /** The walk of a directory (pipeline/tree-walk.ts): what cannot be read in it is skipped with a warning. */
  const rules: TreeWalkRules = {
    wanted: (name) => YAML_NAME.test(name),
    tooMany: (_dir, root) => tooMany(root),
    // Named by itself, not by the path it is under: a sub-directory removed or replaced while the
    // tree was read (the next reload reads it as it is then).
    unreadableDir: (dir, err) => new TemplatesUnreadableError(`cannot read templates directory (${(err as NodeJS.ErrnoException).code ?? 'error'})`, dir, err),
    unreadable: (file, err) => void warnings.push({ file, message: `skipped: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})` }),
    notRegular,
    loop: (dir) => void warnings.push({ file: dir, message: 'skipped: symlink loop (this directory contains itself)' }),
  };
  for (const p of paths) {
    let st: Stats;
    try {
      st = await stat(p);
    } catch (err) {
      throw new TemplatesUnreadableError(`cannot read templates path (${(err as NodeJS.ErrnoException).code ?? 'error'})`, p);
    }
    if (st.isDirectory()) {
      const before = out.length;
      const dirsRead = read.size;
      await walkTree(p, rules, { out, limit: MAX_TEMPLATE_FILES, read });
      // A path whose directory was read already, through another path (`templates` and
      // `./templates/`, or a link to it), is not empty: its files are in the set.
      if (out.length === before && read.size > dirsRead) warnings.push({ file: p, message: 'no *.yaml or *.yml template files found' });
    } else if (st.isFile()) pushFile(p, p);
    else notRegular(p, st);
  }
  return { files: [...new Set(out)].sort(), warnings };
}

/** Lists `*.yaml|*.yml` files under each path, sorted (see scanTemplateFiles). */
export async function findTemplateFiles(paths: readonly string[]): Promise<string[]> {
  return (await scanTemplateFiles(paths)).files;
}

// Non-blocking open: a FIFO that appeared after the scan is refused at fstat instead of blocking
// the open (and a threadpool thread) until some writer comes along.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/**
 * Reads one template file, or undefined (with a warning) when it is not a regular file. Throws
 * TextDecodeError when it is not UTF-8 text, FileTooLargeError when it is larger than `maxBytes`
 * (by its size, before it is read; or, for one that grew meanwhile, after).
 */
async function readTemplateText(file: string, warnings: TemplateWarning[], maxBytes: number): Promise<string | undefined> {
  const fh = await open(file, OPEN_FLAGS);
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      warnings.push({ file, message: `skipped: not a regular file (${kindOf(st)})` });
      return undefined;
    }
    if (st.size > maxBytes) throw new FileTooLargeError(st.size, maxBytes);
    return decodeText(await readAtMost(fh, maxBytes, st.size));
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Reads and validates every template under `paths`. Never throws for bad content: see `issues`.
 * `signal`: a load given up (the reload deadline) stops at its next turn, with the signal's
 * reason, instead of parsing on in the background: each later reload would start another.
 */
export async function readTemplates(paths: readonly string[], limits: TemplateLimits = {}, signal?: AbortSignal): Promise<LoadedTemplates> {
  const { files: names, warnings } = await scanTemplateFiles(paths);
  const files: TemplateFile[] = [];
  const undecodable: TemplateIssue[] = [];
  const set = new TemplateSet();
  /** Bytes read so far: the set as a whole is held to MAX_TEMPLATE_TOTAL_BYTES. */
  let total = 0;
  for (const file of names) {
    let text: string | undefined;
    const left = MAX_TEMPLATE_TOTAL_BYTES - total;
    try {
      text = await readTemplateText(file, warnings, Math.min(MAX_TEMPLATE_FILE_BYTES, left));
    } catch (err) {
      // Content, not I/O: an issue like any other, so lint lists it with the rest.
      if (err instanceof TextDecodeError) {
        undecodable.push({ file, line: err.line, column: err.column, path: '', message: err.reason });
        continue;
      }
      if (err instanceof FileTooLargeError) {
        if (err.size > MAX_TEMPLATE_FILE_BYTES) {
          undecodable.push({ file, line: 1, column: 1, path: '', message: `the file is ${err.size} bytes; a template file may be at most 1 MiB (${MAX_TEMPLATE_FILE_BYTES} bytes)` });
          continue;
        }
        // The files before it fill the budget: the rest is not read (the set is refused anyway).
        undecodable.push({ file, line: 1, column: 1, path: '', message: `the template files read up to this one hold more than ${MAX_TEMPLATE_TOTAL_BYTES / MIB} MiB (${MAX_TEMPLATE_TOTAL_BYTES} bytes), the most all template files together may hold; this file and the ones after it were not read` });
        break;
      }
      throw new TemplatesUnreadableError(`cannot read template file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, file, err);
    }
    if (text !== undefined) {
      total += Buffer.byteLength(text);
      files.push({ file, text });
      // Parsed here, one file between two reads, not all at the end: the YAML parser takes about
      // 1.5 s of CPU per MiB of small documents, so a set near its 32 MiB cap parsed in one go
      // held a serving process's event loop for a minute on a hot reload (probes, requests and
      // the reload deadline all waited). Each read's await lets them run between files.
      set.add(file, await parseTemplateFileYielding(file, text, limits, signal));
    }
  }
  return { templates: set.templates, files, issues: [...undecodable, ...set.issues], warnings, revision: templatesRevision(files) };
}

/**
 * sha256 over the sorted per-file content hashes: the same set of files gives the same revision
 * wherever it is mounted (a ConfigMap path, a checkout), and any content change gives a new one.
 */
export function templatesRevision(files: readonly TemplateFile[]): string {
  const perFile = files.map((f) => createHash('sha256').update(f.text).digest('hex')).sort();
  const h = createHash('sha256');
  for (const d of perFile) h.update(d);
  return h.digest('hex');
}

/** The templates of the files parsed so far, in order, with id@version held unique across them. */
class TemplateSet {
  readonly templates: Template[] = [];
  readonly issues: TemplateIssue[] = [];
  private readonly seen = new Map<string, string>();

  add(file: string, r: ReturnType<typeof parseTemplateFile>): void {
    this.issues.push(...r.issues);
    for (const { template, idPos } of r.templates) {
      const key = `${template.id}@${template.version}`;
      const other = this.seen.get(key);
      if (other !== undefined) {
        this.issues.push({ file, ...idPos, path: 'id', message: `duplicate template ${key} (also defined in ${other})` });
        continue;
      }
      this.seen.set(key, file);
      this.templates.push(template);
    }
  }
}

/** Validates a set of files (pure: no I/O), including id@version uniqueness across files. */
export function parseTemplateFiles(files: readonly TemplateFile[], limits: TemplateLimits = {}): LoadedTemplates {
  const set = new TemplateSet();
  for (const f of files) set.add(f.file, parseTemplateFile(f.file, f.text, limits));
  return { templates: set.templates, files: [...files], issues: set.issues, warnings: [], revision: templatesRevision(files) };
}

interface Pos {
  line: number;
  column: number;
}

type ParsedTemplateFile = { templates: Array<{ template: Template; idPos: Pos }>; issues: TemplateIssue[] };

/** Parses one file (one or more YAML documents, one template each). */
export function parseTemplateFile(file: string, text: string, limits: TemplateLimits = {}): ParsedTemplateFile {
  return runSteps(templateFileSteps(file, text, limits));
}

/**
 * parseTemplateFile, giving the event loop a turn between documents every SLICE_MS
 * (time-slices.ts). The YAML parser takes about 1.5 s of CPU per MiB of small documents (a file
 * of thousands of short templates), and the checks as much again: a set near its 32 MiB cap
 * parsed in one go held a serving process's event loop for a minute or more on a hot reload, so
 * probes, requests and the reload's own deadline all waited.
 */
function parseTemplateFileYielding(file: string, text: string, limits: TemplateLimits, signal: AbortSignal | undefined): Promise<ParsedTemplateFile> {
  return runStepsYielding(templateFileSteps(file, text, limits), signal);
}

/**
 * `error.linePos` and the first line of `error.message` as the yaml library's `prettyErrors` makes
 * them (`… at line 8, column 16`, with a `:` where it would go on to quote the line): documents
 * are composed one at a time here (templateFileSteps), which parseAllDocuments' prettyErrors does
 * not do. The quoted line itself is never added: load messages repeat no text from the file.
 */
function placeYamlError(error: YAMLError, text: string, lc: LineCounter): void {
  if (error.pos[0] === -1) return;
  error.linePos = [lc.linePos(error.pos[0]), lc.linePos(error.pos[1])];
  const { line, col } = error.linePos[0];
  error.message += ` at line ${line}, column ${col}`;
  // The library's rule for whether a quote of the line follows (and so a ':'): the line, cut to
  // 80 characters around the column, with the line before it when the column is at its start.
  let ci = col - 1;
  let lineStr = text.substring(lc.lineStarts[line - 1]!, lc.lineStarts[line]).replace(/[\n\r]+$/, '');
  if (ci >= 60 && lineStr.length > 80) {
    const trimStart = Math.min(ci - 39, lineStr.length - 79);
    lineStr = `…${lineStr.substring(trimStart)}`;
    ci -= trimStart - 1;
  }
  if (lineStr.length > 80) lineStr = `${lineStr.substring(0, 79)}…`;
  if (line > 1 && /^ *$/.test(lineStr.substring(0, ci))) lineStr = text.substring(lc.lineStarts[line - 2]!, lc.lineStarts[line - 1]) + lineStr;
  if (/[^ ]/.test(lineStr)) error.message += ':';
}

/** The end placeYamlError gives a parser message: its location, and a colon when a quote followed. */
const YAML_AT_LINE = / at line \d+, column \d+:?$/;

/** parseTemplateFile's work, pausing (yield) after each document; returns what it found. */
function* templateFileSteps(file: string, text: string, limits: TemplateLimits): Generator<void, ParsedTemplateFile> {
  // The YAML parser cannot survive a few thousand levels (see pipeline/yaml-depth.ts).
  const deep = yamlDepthProblem(text);
  if (deep) return { templates: [], issues: [{ file, line: deep.line, column: deep.column, path: joinPath(deep.path), message: `nested deeper than ${MAX_YAML_DEPTH} levels` }] };
  const lineCounter = new LineCounter();
  // parseAllDocuments, one document at a time: the parser and composer are lazy generators.
  const composer = new Composer({ ...YAML_TAG_OPTIONS, ...NO_LIBRARY_UNIQUE_KEYS });
  const docs = composer.compose(new Parser(lineCounter.addNewLine).parse(text));
  const issues: TemplateIssue[] = [];
  const templates: Array<{ template: Template; idPos: Pos }> = [];
  /** Whether every document so far is empty (none at all included): then the file holds no template. */
  let allEmpty = true;
  for (const doc of docs) {
    for (const e of doc.errors) placeYamlError(e, text, lineCounter);
    for (const w of doc.warnings) placeYamlError(w, text, lineCounter);
    addDuplicateKeyErrors(doc, lineCounter);
    yield;
    if (doc.errors.length === 0 && isEmptyDocument(doc)) continue; // an empty document (e.g. a trailing `---`)
    allEmpty = false;
    const at = (offset: number): Pos => {
      const p = lineCounter.linePos(offset);
      return { line: p.line, column: p.col };
    };
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const lp = e.linePos?.[0];
        // The issue carries the location: the parser's own " at line L, column C" (and the colon
        // that led to a quote of the file, never printed) would only say it again.
        issues.push({ file, line: lp?.line ?? 1, column: lp?.col ?? 1, path: '', message: `YAML: ${yamlErrorLine(e).replace(YAML_AT_LINE, '')}` });
      }
      continue;
    }
    // A tag Warden does not implement (`!include`, `!vault`) would otherwise be dropped silently.
    const tagProblems = yamlTagProblems(doc);
    if (tagProblems.length > 0) {
      for (const p of tagProblems) issues.push({ file, ...at(p.offset), path: '', message: p.message });
      continue;
    }
    // `"\0"` and the like: a control character no template means (see pipeline/yaml-controls.ts).
    // ... and a key that is a list or a mapping (see pipeline/yaml-keys.ts).
    const keyAndValueProblems = [...yamlControlProblems(doc), ...yamlKeyProblems(doc)].sort((a, b) => a.offset - b.offset);
    if (keyAndValueProblems.length > 0) {
      for (const p of keyAndValueProblems) issues.push({ file, ...at(p.offset), path: joinPath(p.path), message: p.message });
      continue;
    }
    const r = validateDocument(file, doc, at, text, limits);
    issues.push(...r.issues);
    if (r.template) templates.push({ template: r.template, idPos: posOf(doc, ['id'], at) });
  }
  // An empty file too (no document at all): it is what a reload reads between an in-place save's
  // truncate and its write (`>`, cp, many editors), and loading it as "no templates" would swap in
  // a set without that file's templates.
  if (allEmpty) {
    issues.push({ file, line: 1, column: 1, path: '', message: 'file contains no template' });
  }
  return { templates, issues };
}

type PathKey = string | number;

/**
 * A document with nothing in it: no contents at all (a file of comments), or what the yaml library
 * makes of a `---` with nothing after it (a trailing one, two in a row): an empty plain scalar with
 * no tag or anchor. Skipped, not "a template document must be a mapping"; an explicit `~` or
 * `null`, a tag or an anchor is something written, and is held to the rule.
 */
function isEmptyDocument(doc: Document): boolean {
  const c = doc.contents;
  if (c === null) return true;
  return isScalar(c) && c.value === null && c.source === '' && c.tag === undefined && c.anchor === undefined && c.range?.[0] === c.range?.[1];
}

/** Position of the node at `path`, or of its closest existing ancestor (for missing keys). */
function posOf(doc: Document, path: readonly PathKey[], at: (o: number) => Pos, keyOnly?: string): Pos {
  for (let n = path.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)) as Node | null | undefined;
    if (!node || !('range' in node) || !node.range) continue;
    if (keyOnly !== undefined && n === path.length && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === keyOnly);
      const keyNode = pair?.key as Node | undefined;
      if (keyNode?.range) return at(keyNode.range[0]);
    }
    return at(node.range[0]);
  }
  return { line: 1, column: 1 };
}

/** A key path for messages; a key that may be a pasted value (not a short identifier) is not repeated. */
function joinPath(path: readonly PathKey[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${isQuotableName(k) ? k : '<key not shown>'}`)).join('');
}

/** `"name"`, or what stands in for a name a load error must not repeat (see isQuotableName). */
function quoted(name: string, open = '"', close = '"'): string {
  return isQuotableName(name) ? `${open}${name}${close}` : `(name not shown: ${unquotedReason(name)})`;
}

function validateDocument(
  file: string,
  doc: Document,
  at: (o: number) => Pos,
  text: string,
  limits: TemplateLimits,
): { template?: Template; issues: TemplateIssue[] } {
  const issues: TemplateIssue[] = [];
  const issue = (path: readonly PathKey[], message: string, key?: string) => {
    const full = key === undefined ? path : [...path, key];
    issues.push({ file, ...posOf(doc, path, at, key), path: joinPath(full), message });
  };

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (err) {
    // The yaml library throws (a ReferenceError, with no position) when aliases expand too much,
    // and when an alias has no anchor.
    if (!(err instanceof ReferenceError)) throw err;
    const missing = unresolvedAlias(doc);
    if (missing) {
      issues.push({ file, ...at(missing.offset), path: '', message: `YAML: ${missing.message}` });
      return { issues };
    }
    issues.push({ file, ...firstAliasPos(doc, at), path: '', message: `YAML: aliases expand too much (more than ${MAX_YAML_ALIAS_COUNT} alias expansions in this document); write the repeated values out, or use fewer nested anchors` });
    return { issues };
  }
  if (!isMap(doc.contents)) {
    issue([], 'a template document must be a mapping');
    return { issues };
  }
  // A `__proto__` key is an own key of yaml's output, but the schema's output object would take
  // it as its prototype and drop it: a variable so named would vanish without a word.
  for (const path of protoKeys(raw, [])) issue(path.slice(0, -1), 'the key "__proto__" is not allowed (it is a property of every JavaScript object)', '__proto__');
  if (issues.length > 0) return { issues };
  // In Warden's words, as the config file's problems are ("is required", not zod's "Invalid input: …").
  const parsed = TemplateSchema.safeParse(raw, { error: describeIssue });
  if (!parsed.success) {
    for (const zi of parsed.error.issues) {
      const path = zi.path.filter((k): k is PathKey => typeof k === 'string' || typeof k === 'number');
      if (zi.code === 'unrecognized_keys') {
        // YAML 1.1's merge key, which YAML 1.2 (what Warden reads) does not have: said as the config loader says it.
        for (const k of zi.keys) issue(path, k === '<<' ? MERGE_KEY_MESSAGE : `unknown key ${quoted(k)}`, k);
      } else if (zi.code === 'invalid_key') {
        issue(path.slice(0, -1), `invalid name: ${zi.issues[0]?.message ?? zi.message}`, String(path[path.length - 1]));
      } else {
        issue(path, zi.message);
      }
    }
    // The schema stops before checkSemantics, whose scan would have named an unknown key that
    // holds a credential as one: scan what was read, so such a key is reported as a secret.
    checkSecretLiterals(raw, [], issue, new Set());
    return { issues };
  }
  const d: TemplateDocument = parsed.data;
  checkVersionLiteral(doc, text, issue);
  const numbers = configNumberLiterals(d, doc, text, issue);
  checkSecretVariableKeys(raw, issue);
  checkSemantics(d, issue);
  checkVariableLimit(d, limits, issue);
  if (limits.secretAccess !== undefined) checkRefAccess(d, limits.secretAccess, issue);
  if (issues.length > 0) return { issues };
  return { template: toTemplate(d, file, numbers), issues };
}

const MERGE_KEY_MESSAGE = 'unknown key: YAML merge keys ("<<: *anchor") are YAML 1.1, not read here; write the keys out (an alias of a whole value, "key: *anchor", works)';

/** Paths of every `__proto__` key in yaml's output. */
function protoKeys(value: unknown, path: PathKey[], seen = new Set<unknown>()): PathKey[][] {
  if (typeof value !== 'object' || value === null || seen.has(value)) return [];
  seen.add(value);
  const out: PathKey[][] = [];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...protoKeys(v, [...path, i], seen)));
  else {
    for (const [k, v] of Object.entries(value)) {
      if (k === '__proto__') out.push([...path, k]);
      out.push(...protoKeys(v, [...path, k], seen));
    }
  }
  return out;
}

/** Position of the document's first alias (`*name`): where an alias-count problem starts. */
function firstAliasPos(doc: Document, at: (o: number) => Pos): Pos {
  let offset: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (isAlias(node) && node.range) offset = node.range[0];
      return visit.BREAK;
    },
  });
  return offset === undefined ? posOf(doc, [], at) : at(offset);
}

/**
 * `version` written as a plain decimal integer: YAML also reads `1.0` as 1 and `0x10` as 16, and
 * a reviewer reading `version: 0x10` would not expect to call `@16`.
 */
function checkVersionLiteral(doc: Document, text: string, issue: (path: readonly PathKey[], message: string) => void): void {
  let node = doc.get('version', true) as Node | undefined;
  // `version: *v` is read as the value its anchor marks (`&v 0x10`, on another key): that text is
  // the one held to the rule, or an alias would let any number form through.
  if (isAlias(node)) node = node.resolve(doc) as Node | undefined;
  if (!isScalar(node) || !node.range) return;
  const source = text.slice(node.range[0], node.range[1]).trim();
  if (!/^[1-9][0-9]*$/.test(source)) issue(['version'], 'must be written as a plain integer such as 2');
}

/** A number as a reviewer reads it: plain decimal digits, an optional sign and fraction. */
const PLAIN_DECIMAL = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/;

/**
 * The source text of each numeric `source: config` value, by variable name. The value is part of
 * the reviewed prompt, so it renders as written (`2.50` stays `2.50`, a 20-digit number keeps its
 * digits); a form YAML would rewrite (`0x10` is 16, `1e3`, `.inf`, `.nan`) is refused where it is.
 */
function configNumberLiterals(d: TemplateDocument, doc: Document, text: string, issue: (path: readonly PathKey[], message: string) => void): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, v] of Object.entries(d.variables)) {
    if (typeof v.value !== 'number') continue;
    const node = doc.getIn(['variables', name, 'value'], true) as Node | undefined;
    const source = isScalar(node) && node.range ? text.slice(node.range[0], node.range[1]).trim() : '';
    if (PLAIN_DECIMAL.test(source)) out.set(name, source);
    else issue(['variables', name, 'value'], 'must be written as a plain decimal number such as 10 or 2.5 (not 0x10, 0o17, 1e3, .inf or .nan), or quoted as a string');
  }
  return out;
}

/** `type` and `required` mean nothing for a secret (its value is text, and always there): refuse them rather than ignore them. */
function checkSecretVariableKeys(raw: unknown, issue: (path: readonly PathKey[], message: string) => void): void {
  const vars = (raw as { variables?: unknown }).variables;
  if (typeof vars !== 'object' || vars === null) return;
  for (const [name, v] of Object.entries(vars as Record<string, unknown>)) {
    if (typeof v !== 'object' || v === null || (v as { source?: unknown }).source !== 'secret') continue;
    for (const key of ['type', 'required']) {
      if (Object.hasOwn(v, key)) issue(['variables', name, key], `a source: secret variable does not take ${key} (a secret is always a string, and always resolved)`);
    }
  }
}

/** Hints for a secret-looking literal, by the field it was found in. */
function literalHint(path: readonly PathKey[]): string {
  if (path[0] === 'messages') return '; reference it with a source: secret variable instead';
  if (path[0] === 'variables' && path[2] === 'value') return '; use source: secret with a ref';
  return '';
}

/** Every string in the document (keys and values), with its path: secrets are written nowhere. */
function checkSecretLiterals(value: unknown, path: PathKey[], issue: (path: readonly PathKey[], message: string) => void, seen: Set<unknown>): void {
  if (typeof value === 'string') {
    const kind = findSecretLiteral(value);
    if (kind) issue(path, `looks like a literal secret (${kind})${literalHint(path)}`);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  // An alias gives the same object (or string) many places; scanning it once is enough.
  if (seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkSecretLiterals(v, [...path, i], issue, seen));
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const kind = findSecretLiteral(k);
    if (kind) issue(path, `a key looks like a literal secret (${kind})`);
    checkSecretLiterals(v, [...path, k], issue, seen);
  }
}

function checkSemantics(d: TemplateDocument, issue: (path: readonly PathKey[], message: string, key?: string) => void): void {
  // Placeholders: each must be declared; each declared variable must be used.
  const used = new Set<string>();
  d.messages.forEach((m, i) => {
    const p = parsePlaceholders(m.content);
    for (const prob of p.problems) issue(['messages', i, 'content'], prob.message);
    for (const name of p.variables) {
      used.add(name);
      // Own keys only: `{{constructor}}` is not declared just because every object has one.
      if (!Object.hasOwn(d.variables, name)) issue(['messages', i, 'content'], `placeholder ${quoted(name, '{{', '}}')} is not declared in variables`);
    }
  });
  for (const [name, v] of Object.entries(d.variables)) {
    const at = ['variables', name];
    if (!used.has(name)) issue(at, `variable ${quoted(name)} is declared but never used in messages`);
    if (v.source === 'secret') {
      if (v.ref === undefined) issue(at, 'a source: secret variable needs a ref (a secret URI)');
      else checkRef(v.ref, (msg) => issue([...at, 'ref'], msg));
      if (v.value !== undefined) issue([...at, 'value'], 'a source: secret variable may not carry a value');
    } else if (v.source === 'config') {
      if (v.value === undefined) issue(at, 'a source: config variable needs a value');
      else {
        if (typeof v.value !== (v.type === 'string' ? 'string' : v.type)) issue([...at, 'value'], `value must be a ${v.type}`);
      }
      if (v.ref !== undefined) issue([...at, 'ref'], 'only source: secret variables take a ref');
    } else {
      if (v.ref !== undefined) issue([...at, 'ref'], 'only source: secret variables take a ref');
      if (v.value !== undefined) issue([...at, 'value'], 'only source: config variables take a value');
    }
    if (v.max_length !== undefined && v.source !== 'request') issue([...at, 'max_length'], 'max_length applies to source: request variables only');
  }
  // README: "no secret-looking literal anywhere in the template". The approval ticket, owner,
  // models and allowed services included: the ticket is copied into every audit record.
  checkSecretLiterals(d, [], issue, new Set());
  if (d.sensitivity === 'restricted' && d.approvals.length === 0) {
    issue(['approvals'], 'a restricted template needs at least one approval (by, ticket)');
  }
}

/**
 * A template whose required request variables outnumber `limits.max_variables` can never be
 * called (sending them all is refused as too many, sending fewer is variable_missing): refused
 * at load, like any other template no request could use. Optional ones past the limit are
 * fine: a request sends the ones it needs.
 */
function checkVariableLimit(d: TemplateDocument, limits: TemplateLimits, issue: (path: readonly PathKey[], message: string) => void): void {
  if (limits.maxVariables === undefined) return;
  const required = Object.values(d.variables).filter((v) => v.source === 'request' && v.required).length;
  if (required > limits.maxVariables) {
    issue(['variables'], `${required} required request variables, more than one request may send (limits.max_variables: ${limits.maxVariables}): no request could call this template`);
  }
}

/**
 * Each secret ref points where the config lets templates read (secrets.file_roots, env_allow,
 * secrets.vault.allow, secrets.kubernetes.namespaces), and never at a secret the config's own refs
 * read: lexically, and for a file that exists now also through its symlinks. The providers check again
 * at each fetch (a file may appear, or a symlink change, after the load). The message names the
 * setting, never the ref: the error stands at the ref's line.
 */
function checkRefAccess(d: TemplateDocument, access: SecretRefAccess & { baseDir: string }, issue: (path: readonly PathKey[], message: string) => void): void {
  let realRoots: string[] | undefined;
  for (const [name, v] of Object.entries(d.variables)) {
    if (v.source !== 'secret' || v.ref === undefined) continue;
    let parsed;
    try {
      parsed = parseSecretRef(v.ref, { baseDir: access.baseDir });
    } catch {
      continue; // reported by checkRef
    }
    const at = ['variables', name, 'ref'];
    if (parsed.scheme === 'env') {
      if (access.reserved?.names.has(parsed.url.host)) issue(at, RESERVED_REF_REASON);
      else if (!envNameAllowed(parsed.url.host, access.envAllow)) issue(at, envNotAllowedReason(access.envAllow));
    } else if (parsed.scheme === 'vault') {
      // No Vault configured: nothing can be read, the fetch says "not configured" (and a config
      // written before the store existed loads as it did).
      if (access.vaultAllow === undefined) continue;
      const secret = vaultSecretName(parsed.url).secret;
      const allow = access.vaultAllow;
      if (access.reserved?.vault?.has(secret)) issue(at, RESERVED_REF_REASON);
      else if (!envNameAllowed(secret, allow)) issue(at, vaultNotAllowedReason(allow));
    } else if (parsed.scheme === 'k8s') {
      // No Kubernetes store configured: as for Vault, the fetch says "not configured".
      if (access.k8s === undefined) continue;
      if (access.reserved?.k8s?.has(k8sRefId(parsed.url))) issue(at, RESERVED_REF_REASON);
      else if (!access.k8s.namespaces.includes(parsed.url.host)) issue(at, k8sNamespaceNotAllowedReason(access.k8s));
    } else if (parsed.scheme === 'file') {
      const path = fileURLToPath(parsed.url);
      if (access.reserved !== undefined && namesReservedFile(path, access.reserved.paths)) {
        issue(at, RESERVED_REF_REASON);
        continue;
      }
      realRoots ??= access.fileRoots.map(realRootSync);
      if (!access.fileRoots.some((r) => isUnder(path, r)) && !realRoots.some((r) => isUnder(path, r))) {
        issue(at, outsideRootsReason(access.fileRoots, 'path'));
        continue;
      }
      let real: string;
      try {
        real = realpathSync(path);
      } catch {
        continue; // not there yet: the fetch checks it when it is
      }
      if (!realRoots.some((r) => isUnder(real, r))) issue(at, outsideRootsReason(access.fileRoots, 'symlink'));
    }
  }
}

/**
 * Whether `path` is, as written or as a file, one the config's own refs read: the same device and
 * inode, so a symlink to a key (followed by stat) and a hard link to one are both recognised.
 */
function namesReservedFile(path: string, reserved: ReadonlySet<string>): boolean {
  if (reserved.has(path)) return true;
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return false; // not there: not the key file (the fetch checks the file it opens again)
  }
  for (const p of reserved) {
    try {
      const other = statSync(p);
      if (sameFile(other, st)) return true;
    } catch {
      // a key file that is not there now
    }
  }
  return false;
}

/** The resolver's own parser: a ref that loads is a ref the fetch stage can parse. */
function checkRef(ref: string, report: (msg: string) => void): void {
  try {
    parseSecretRef(ref);
  } catch (err) {
    // `reason` never repeats the ref: a pasted literal must not reach a log line.
    report(err instanceof SecretRefError ? refProblem(err) : 'is not a valid secret ref');
  }
}

function refProblem(err: SecretRefError): string {
  switch (err.code) {
    case 'ref_empty':
    case 'ref_not_uri':
      return 'secret ref must be a URI such as file:secrets/key, env://NAME, vault://mount/path#key, k8s://ns/name#key';
    case 'ref_unknown_scheme':
      return 'unknown secret ref scheme (expected file, env, vault or k8s)';
    default:
      return err.reason;
  }
}

/** `numbers`: the source text of numeric config values (configNumberLiterals). */
function toTemplate(d: TemplateDocument, file: string, numbers: ReadonlyMap<string, string>): Template {
  // No prototype: a lookup by a placeholder name never finds an inherited property.
  const variables = Object.create(null) as Record<string, VariableSpec>;
  for (const [name, v] of Object.entries(d.variables)) {
    const spec: VariableSpec = { source: v.source, type: v.type, required: v.required, pii: v.pii };
    if (v.max_length !== undefined) spec.max_length = v.max_length;
    if (v.ref !== undefined) spec.ref = v.ref;
    if (v.value !== undefined) spec.value = numbers.get(name) ?? String(v.value);
    if (v.description !== undefined) spec.description = v.description;
    variables[name] = spec;
  }
  const t: Template = {
    id: d.id,
    version: d.version,
    owner: d.owner,
    sensitivity: d.sensitivity,
    description: d.description,
    approvals: d.approvals.map((a) => (a.at === undefined ? { by: a.by, ticket: a.ticket } : { by: a.by, ticket: a.ticket, at: a.at })),
    allowed_services: d.allowed_services,
    models: d.models,
    variables,
    messages: d.messages.map((m) => ({ role: m.role, content: m.content })),
    source: { file },
  };
  if (d.retire_after !== undefined) t.retire_after = d.retire_after;
  return t;
}
