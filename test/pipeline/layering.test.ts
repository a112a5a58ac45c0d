/**
 * DESIGN.md, "Layout": modules depend downwards (server → pipeline → stages → telemetry), never
 * sideways between stages except through the canonical types in pipeline/. Read from the source:
 * every relative import of every file under src/, checked against the folders it may reach.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** The stage modules of DESIGN.md's "One request, end to end". */
const STAGES = ['identity', 'templates', 'policy', 'secrets', 'redact', 'providers', 'audit'];

/** What each layer may import besides its own folder (npm packages and node: are not checked). */
function allowed(fromFile: string, toFolder: string): boolean {
  const from = fromFile.split('/')[0]!;
  if (from === toFolder) return true;
  if (STAGES.includes(from)) {
    // A stage sees the canonical types and ports, the telemetry below it, and its configuration;
    // its command-line tool (`warden policy`, `warden audit`, ...) sits in the CLI layer.
    if (['pipeline', 'telemetry', 'config'].includes(toFolder)) return true;
    return toFolder === 'cli' && fromFile === `${from}/cli.ts`;
  }
  if (from === 'pipeline') return toFolder === 'telemetry';
  // Telemetry names pipeline's canonical types and error codes (its metric labels), nothing else.
  if (from === 'telemetry') return toFolder === 'pipeline';
  // Ingress adapters translate protocols to the canonical request: no stage of their own.
  if (from === 'server') return ['pipeline', 'telemetry', 'config'].includes(toFolder);
  return true; // main.ts, cli/, runtime/ and config/ wire everything together
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative specifiers of `import … from`, `export … from`, `import '…'` and `import('…')`. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function imports(): Array<{ file: string; target: string }> {
  const out: Array<{ file: string; target: string }> = [];
  for (const abs of sourceFiles(SRC)) {
    const text = readFileSync(abs, 'utf8');
    for (const m of text.matchAll(SPECIFIER)) {
      out.push({ file: relative(SRC, abs).split(sep).join('/'), target: relative(SRC, resolve(dirname(abs), m[1]!)).split(sep).join('/') });
    }
  }
  return out;
}

describe('layering (DESIGN.md, Layout)', () => {
  const all = imports();

  it('reads the imports of every module', () => {
    // The scan sees the composition root and the stages' use of the canonical types.
    expect(all.some((i) => i.file === 'runtime/components.ts' && i.target.startsWith('pipeline/'))).toBe(true);
    for (const stage of STAGES) expect(all.some((i) => i.file.startsWith(`${stage}/`) && i.target.startsWith('pipeline/'))).toBe(true);
  });

  it('no stage imports another stage, and ingress and pipeline import no stage: only pipeline/ is shared', () => {
    const crossing = all.filter((i) => !i.target.startsWith('..') && i.target.includes('/') && !allowed(i.file, i.target.split('/')[0]!));
    expect(crossing.map((i) => `${i.file} -> ${i.target}`)).toEqual([]);
  });
});
