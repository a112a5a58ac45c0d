/** TemplateStore: id → versions, loaded once per revision and swapped whole on reload. */
import { TEMPLATE_VERSION } from '../pipeline/identifiers.js';
import type { TemplateStore } from '../pipeline/ports.js';
import type { Template } from '../pipeline/types.js';
import { readTemplates, TemplateLoadError, type TemplateLimits, type TemplateWarning } from './loader.js';
import { compileTemplate } from './renderer.js';
import { runStepsYielding, type Steps } from '../pipeline/time-slices.js';

/** The registry's order: by id, then version. */
const byIdAndVersion = (a: Template, b: Template): number => (a.id === b.id ? a.version - b.version : a.id < b.id ? -1 : 1);

/**
 * Compiles each template (in the registry's order, so the first bad one is the one the registry
 * would name), pausing after each: compileTemplate keeps what it compiled, so the registry built
 * next only looks it up. About 15 µs a template, so a set of 100,000 small ones compiled in one
 * go held a serving process's event loop for a second or more on a hot reload.
 */
export function* compileTemplatesSteps(templates: readonly Template[]): Steps<void> {
  for (const t of [...templates].sort(byIdAndVersion)) {
    compileTemplate(t);
    yield;
  }
}

export class TemplateRegistry implements TemplateStore {
  readonly revision: string;
  /** What the load skipped (non-regular files, symlink loops, an empty directory): for the log. */
  readonly warnings: readonly TemplateWarning[];
  private readonly byId = new Map<string, { latest: Template; versions: Map<number, Template> }>();
  private readonly all: Template[];

  constructor(templates: readonly Template[], revision: string, warnings: readonly TemplateWarning[] = []) {
    this.revision = revision;
    this.warnings = warnings;
    this.all = [...templates].sort(byIdAndVersion);
    for (const t of this.all) {
      // Compile at load so the hot path only concatenates and a bad template fails the load.
      compileTemplate(t);
      let e = this.byId.get(t.id);
      if (!e) this.byId.set(t.id, (e = { latest: t, versions: new Map() }));
      e.versions.set(t.version, t);
      if (t.version > e.latest.version) e.latest = t;
    }
  }

  get(id: string, version?: number): Template | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    return version === undefined ? e.latest : e.versions.get(version);
  }

  list(): Template[] {
    return this.all.slice();
  }
}

/** Loads every template under `paths`; throws TemplateLoadError (every issue, file:line:col) on any problem. */
export async function loadTemplateStore(paths: readonly string[], limits: TemplateLimits = {}, signal?: AbortSignal): Promise<TemplateRegistry> {
  const loaded = await readTemplates(paths, limits, signal);
  if (loaded.issues.length > 0) throw new TemplateLoadError(loaded.issues);
  await runStepsYielding(compileTemplatesSteps(loaded.templates), signal);
  return new TemplateRegistry(loaded.templates, loaded.revision, loaded.warnings);
}

/** Parses a `template` reference string: `id` or `id@version`. Returns undefined when malformed. */
export function parseTemplateRef(ref: string): { id: string; version?: number } | undefined {
  const at = ref.lastIndexOf('@');
  if (at < 0) return ref === '' ? undefined : { id: ref };
  const id = ref.slice(0, at);
  const v = ref.slice(at + 1);
  if (id === '' || !TEMPLATE_VERSION.test(v)) return undefined;
  return { id, version: Number(v) };
}
