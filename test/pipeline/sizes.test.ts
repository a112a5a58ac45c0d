/**
 * The size caps are stated in MiB by the stages and the CLI alike (`at most 8 MiB (8388608
 * bytes)`): one definition of the unit, in pipeline/ (the layer all of them may import; see
 * layering.test.ts), not one per module that could drift apart. Read from the source, as the
 * layering test reads imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MIB } from '../../src/pipeline/sizes.js';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('MIB, the unit of the size caps', () => {
  it('is 1048576 bytes', () => {
    expect(MIB).toBe(1_048_576);
  });

  it('is defined once, in pipeline/sizes.ts: every module that states a cap in MiB imports it', () => {
    const defining = sourceFiles(SRC)
      .filter((f) => /\b(?:const|let|var)\s+MIB\b/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f).split(sep).join('/'));
    expect(defining).toEqual(['pipeline/sizes.ts']);
    // Nor written out as 1024 * 1024 beside it: a cap stated that way could drift from the others.
    const spelledOut = sourceFiles(SRC)
      .filter((f) => /\b1024\s*\*\s*1024\b/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f).split(sep).join('/'));
    expect(spelledOut).toEqual(['pipeline/sizes.ts']);
    const users = ['policy/rego/data.ts', 'policy/cli.ts', 'templates/loader.ts', 'cli/stdin.ts', 'config/load.ts', 'server/limits.ts', 'providers/openai.ts', 'audit/sinks.ts'];
    for (const u of users) expect(readFileSync(join(SRC, u), 'utf8')).toMatch(/import \{[^}]*\bMIB\b[^}]*\} from '(?:\.\.\/)+pipeline\/sizes\.js'/);
  });
});
