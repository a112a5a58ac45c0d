/**
 * Reads a directory tree of YAML templates, validates every document, and reports every problem
 * with `file:line:col` and the key path, so a bad change can be fixed from the error alone.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isMap, isPair, isScalar, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import { WardenError } from '../pipeline/errors.js';
import type { Template, VariableSpec } from '../pipeline/types.js';
import { parsePlaceholders } from './placeholders.js';
import { TemplateSchema, type TemplateDocument } from './schema.js';
import { findSecretLiteral } from './secret-literals.js';

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

export interface TemplateFile {
  /** Path as given/discovered (used in messages). */
  file: string;
  text: string;
}

export interface LoadedTemplates {
  templates: Template[];
  files: TemplateFile[];
  issues: TemplateIssue[];
  /** sha256 over the files' paths and contents. */
  revision: string;
}

const SECRET_SCHEMES = ['file', 'env', 'vault', 'k8s'];

/** Lists `*.yaml|*.yml` files under each path (a directory, recursively, or a single file), sorted. */
export async function findTemplateFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  async function walk(p: string): Promise<void> {
    const s = await stat(p);
    if (s.isDirectory()) {
      const entries = await readdir(p, { withFileTypes: true });
      for (const e of entries) {
        if (e.name.startsWith('.')) continue; // editor swap files, ..data symlink dirs of mounted ConfigMaps
        const child = join(p, e.name);
        if (e.isDirectory()) await walk(child);
        else if (/\.ya?ml$/i.test(e.name)) out.push(child);
      }
    } else {
      out.push(p);
    }
  }
  for (const p of paths) {
    try {
      await walk(p);
    } catch (err) {
      throw new WardenError('template_invalid', `cannot read templates path ${p} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
        location: { file: p },
      });
    }
  }
  return [...new Set(out)].sort();
}

/** Reads and validates every template under `paths`. Never throws for bad content: see `issues`. */
export async function readTemplates(paths: readonly string[]): Promise<LoadedTemplates> {
  const names = await findTemplateFiles(paths);
  const files: TemplateFile[] = [];
  for (const file of names) files.push({ file, text: await readFile(file, 'utf8') });
  return parseTemplateFiles(files);
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

/** Validates a set of files (pure: no I/O), including id@version uniqueness across files. */
export function parseTemplateFiles(files: readonly TemplateFile[]): LoadedTemplates {
  const templates: Template[] = [];
  const issues: TemplateIssue[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const r = parseTemplateFile(f.file, f.text);
    issues.push(...r.issues);
    for (const { template, idPos } of r.templates) {
      const key = `${template.id}@${template.version}`;
      const other = seen.get(key);
      if (other !== undefined) {
        issues.push({ file: f.file, ...idPos, path: 'id', message: `duplicate template ${key} (also defined in ${other})` });
        continue;
      }
      seen.set(key, f.file);
      templates.push(template);
    }
  }
  return { templates, files: [...files], issues, revision: templatesRevision(files) };
}

interface Pos {
  line: number;
  column: number;
}

/** Parses one file (one or more YAML documents, one template each). */
export function parseTemplateFile(file: string, text: string): { templates: Array<{ template: Template; idPos: Pos }>; issues: TemplateIssue[] } {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const issues: TemplateIssue[] = [];
  const templates: Array<{ template: Template; idPos: Pos }> = [];
  const list = Array.isArray(docs) ? docs : [];
  if (!Array.isArray(docs)) {
    issues.push({ file, line: 1, column: 1, path: '', message: 'file contains no YAML document' });
  }
  for (const doc of list) {
    if (doc.contents === null) continue; // an empty document (e.g. a trailing `---`)
    const at = (offset: number): Pos => {
      const p = lineCounter.linePos(offset);
      return { line: p.line, column: p.col };
    };
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const lp = e.linePos?.[0];
        issues.push({ file, line: lp?.line ?? 1, column: lp?.col ?? 1, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
      }
      continue;
    }
    const r = validateDocument(file, doc, at);
    issues.push(...r.issues);
    if (r.template) templates.push({ template: r.template, idPos: posOf(doc, ['id'], at) });
  }
  if (list.length > 0 && list.every((d) => d.contents === null)) {
    issues.push({ file, line: 1, column: 1, path: '', message: 'file contains no template' });
  }
  return { templates, issues };
}

type PathKey = string | number;

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

function joinPath(path: readonly PathKey[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

function validateDocument(
  file: string,
  doc: Document,
  at: (o: number) => Pos,
): { template?: Template; issues: TemplateIssue[] } {
  const issues: TemplateIssue[] = [];
  const issue = (path: readonly PathKey[], message: string, key?: string) => {
    const full = key === undefined ? path : [...path, key];
    issues.push({ file, ...posOf(doc, path, at, key), path: joinPath(full), message });
  };

  const raw: unknown = doc.toJS({ maxAliasCount: 50 });
  if (!isMap(doc.contents)) {
    issue([], 'a template document must be a mapping');
    return { issues };
  }
  const parsed = TemplateSchema.safeParse(raw);
  if (!parsed.success) {
    for (const zi of parsed.error.issues) {
      const path = zi.path.filter((k): k is PathKey => typeof k === 'string' || typeof k === 'number');
      if (zi.code === 'unrecognized_keys') {
        for (const k of zi.keys) issue(path, `unknown key "${k}"`, k);
      } else if (zi.code === 'invalid_key') {
        issue(path.slice(0, -1), `invalid name: ${zi.issues[0]?.message ?? zi.message}`, String(path[path.length - 1]));
      } else {
        issue(path, zi.message);
      }
    }
    return { issues };
  }
  const d: TemplateDocument = parsed.data;
  checkSemantics(d, issue);
  if (issues.length > 0) return { issues };
  return { template: toTemplate(d, file), issues };
}

function checkSemantics(d: TemplateDocument, issue: (path: readonly PathKey[], message: string, key?: string) => void): void {
  // Placeholders: each must be declared; each declared variable must be used.
  const used = new Set<string>();
  d.messages.forEach((m, i) => {
    const p = parsePlaceholders(m.content);
    for (const prob of p.problems) issue(['messages', i, 'content'], prob.message);
    for (const name of p.variables) {
      used.add(name);
      if (!(name in d.variables)) issue(['messages', i, 'content'], `placeholder {{${name}}} is not declared in variables`);
    }
    const kind = findSecretLiteral(m.content);
    if (kind) issue(['messages', i, 'content'], `looks like a literal secret (${kind}); reference it with a source: secret variable instead`);
  });
  for (const [name, v] of Object.entries(d.variables)) {
    const at = ['variables', name];
    if (!used.has(name)) issue(at, `variable "${name}" is declared but never used in messages`);
    if (v.source === 'secret') {
      if (v.ref === undefined) issue(at, 'a source: secret variable needs a ref (a secret URI)');
      else checkRef(v.ref, (msg) => issue([...at, 'ref'], msg));
      if (v.value !== undefined) issue([...at, 'value'], 'a source: secret variable may not carry a value');
    } else if (v.source === 'config') {
      if (v.value === undefined) issue(at, 'a source: config variable needs a value');
      else {
        if (typeof v.value !== (v.type === 'string' ? 'string' : v.type)) issue([...at, 'value'], `value must be a ${v.type}`);
        const kind = typeof v.value === 'string' ? findSecretLiteral(v.value) : undefined;
        if (kind) issue([...at, 'value'], `looks like a literal secret (${kind}); use source: secret with a ref`);
      }
      if (v.ref !== undefined) issue([...at, 'ref'], 'only source: secret variables take a ref');
    } else {
      if (v.ref !== undefined) issue([...at, 'ref'], 'only source: secret variables take a ref');
      if (v.value !== undefined) issue([...at, 'value'], 'only source: config variables take a value');
    }
    if (v.max_length !== undefined && v.source !== 'request') issue([...at, 'max_length'], 'max_length applies to source: request variables only');
    if (v.description) {
      const kind = findSecretLiteral(v.description);
      if (kind) issue([...at, 'description'], `looks like a literal secret (${kind})`);
    }
  }
  const kind = findSecretLiteral(d.description);
  if (kind) issue(['description'], `looks like a literal secret (${kind})`);
  if (d.sensitivity === 'restricted' && d.approvals.length === 0) {
    issue(['approvals'], 'a restricted template needs at least one approval (by, ticket)');
  }
}

/** A light structural check: full parsing happens in the secrets stage, which owns ref syntax. */
function checkRef(ref: string, report: (msg: string) => void): void {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/.exec(ref);
  if (!m) return report('secret ref must be a URI such as file:secrets/key, env://NAME, vault://mount/path#key, k8s://ns/name#key');
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (!SECRET_SCHEMES.includes(scheme)) return report(`unknown secret ref scheme "${scheme}" (expected ${SECRET_SCHEMES.join(', ')})`);
  if (scheme === 'file' && (rest === '' || rest === '//' || /^\/\/[^/]/.test(rest))) return report('file ref must be file:///absolute/path or file:relative/path');
  if (scheme === 'env' && !/^\/\/[A-Za-z_][A-Za-z0-9_]*$/.test(rest)) return report('env ref must be env://NAME');
  if ((scheme === 'vault' || scheme === 'k8s') && !/^\/\/[^/#]+\/[^#]+#.+$/.test(rest)) return report(`${scheme} ref must be ${scheme}://…/…#key`);
}

function toTemplate(d: TemplateDocument, file: string): Template {
  const variables: Record<string, VariableSpec> = {};
  for (const [name, v] of Object.entries(d.variables)) {
    const spec: VariableSpec = { source: v.source, type: v.type, required: v.required, pii: v.pii };
    if (v.max_length !== undefined) spec.max_length = v.max_length;
    if (v.ref !== undefined) spec.ref = v.ref;
    if (v.value !== undefined) spec.value = String(v.value);
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
