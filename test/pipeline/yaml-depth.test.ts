/**
 * The YAML depth bound (pipeline/yaml-depth.ts) must never be below a document's real depth
 * (the parser dies a few thousand levels down), and must not mistake prose for nesting.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { MAX_YAML_DEPTH, yamlDepthBound } from '../../src/pipeline/yaml-depth.js';
import { parseTemplateFile } from '../../src/templates/loader.js';

function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v as object);
  return 1 + children.reduce((m: number, c) => Math.max(m, depthOf(c)), 0);
}

/** Documents nesting `d` levels, in the shapes YAML allows. */
const SHAPES: Record<string, (d: number) => string> = {
  flow: (d) => '['.repeat(d) + ']'.repeat(d),
  flowMaps: (d) => '{a: '.repeat(d) + '1' + '}'.repeat(d),
  compactSequences: (d) => '- '.repeat(d) + 'x',
  indentedMaps: (d) => Array.from({ length: d }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' x',
  // A key's sequence may sit at the key's own indentation: two levels per two columns.
  sequencesOfMaps: (d) => Array.from({ length: Math.ceil(d / 2) }, (_, i) => `${'  '.repeat(i)}- k:`).join('\n') + ' x',
  mixed: (d) => Array.from({ length: Math.ceil(d / 3) }, (_, i) => `${' '.repeat(5 * i)}- - k:`).join('\n') + ' x',
};

describe('yamlDepthBound', () => {
  for (const [name, make] of Object.entries(SHAPES)) {
    it(`is at least the real depth: ${name}`, () => {
      for (const d of [1, 2, 5, 17, 60, 150]) {
        const text = make(d);
        const real = depthOf(parse(text));
        expect(yamlDepthBound(text), `${name} at ${d}`).toBeGreaterThanOrEqual(real);
      }
      expect(yamlDepthBound(make(5000))).toBeGreaterThan(MAX_YAML_DEPTH);
    });
  }

  it('does not count prose: dashes, colons and balanced brackets inside a line', () => {
    const prose = `description: ${'a - b: c [d] {e} '.repeat(500)}\n`;
    expect(yamlDepthBound(prose)).toBeLessThan(5);
  });
});

describe('YAML too deep to parse is refused before the parser sees it', () => {
  const deep = `a: ${'['.repeat(20000)}${']'.repeat(20000)}\n`;

  it('a template file: a located issue, no crash', () => {
    const { templates, issues } = parseTemplateFile('t.yaml', deep);
    expect(templates).toEqual([]);
    // Where the bound goes past the limit (the 256th '[' after `a: `), and the key it is under.
    expect(issues).toEqual([{ file: 't.yaml', line: 1, column: 259, path: 'a', message: `nested deeper than ${MAX_YAML_DEPTH} levels` }]);
  });

  it('the config file: a config error naming the file', () => {
    expect(() => parseConfig(deep, 'w.yaml')).toThrow(`w.yaml:1:259: a: nested deeper than ${MAX_YAML_DEPTH} levels`);
    // Under a few keys, on a later line: the position and the key path down to the deep value.
    const nested = `log: { level: info }\nproviders:\n  up:\n    kind: openai\n    base_url: ${'['.repeat(300)}${']'.repeat(300)}\n`;
    expect(() => parseConfig(nested, 'w.yaml')).toThrow(`w.yaml:5:266: providers.up.base_url: nested deeper than ${MAX_YAML_DEPTH} levels`);
    // Block nesting: the line whose indentation goes past the limit, under the keys above it.
    const blocks = Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' x\n';
    expect(() => parseConfig(blocks, 'w.yaml')).toThrow(/^[^]*w\.yaml:258:257: k0\.k1\.k2\.[\w.]+: nested deeper than 256 levels/);
  });

  it('a policy data file', async () => {
    const { parseDataFile } = await import('../../src/policy/rego/data.js');
    const dir = mkdtempSync(join(tmpdir(), 'warden-yaml-depth-'));
    try {
      writeFileSync(join(dir, 'data.yaml'), deep);
      await expect(parseDataFile(join(dir, 'data.yaml'))).rejects.toMatchObject({
        message: 'data nested deeper than 256 levels',
        location: { file: join(dir, 'data.yaml'), row: 1, col: 259 },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
