/**
 * The template registry's compile runs a slice at a time on a load (compileTemplatesSteps): a set
 * of many small templates compiled in one go held a serving process's event loop on a reload.
 * Other callbacks run between templates, and the first bad template named is the one the
 * registry itself names (its order: id, then version).
 */
import { describe, expect, it } from 'vitest';
import type { Template } from '../../src/pipeline/types.js';
import { runStepsYielding } from '../../src/pipeline/time-slices.js';
import { compileTemplatesSteps, TemplateRegistry } from '../../src/templates/registry.js';
import { makeTemplate } from '../stage-context.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function many(n: number): Template[] {
  return Array.from({ length: n }, (_, i) => makeTemplate({ id: `bulk/t${n - i}`, messages: [{ role: 'user', content: `hello ${i}` }] }));
}

describe('compiling a template set a slice at a time', () => {
  it('gives the event loop a turn between templates (0 ms slices: after each)', async () => {
    const templates = many(200);
    let done = false;
    const compiling = runStepsYielding(compileTemplatesSteps(templates), undefined, 0).finally(() => (done = true));
    let turns = 0;
    while (!done) {
      await turn();
      if (!done) turns++;
    }
    await compiling;
    expect(turns).toBeGreaterThanOrEqual(templates.length - 1);
    expect(new TemplateRegistry(templates, 'r').list().map((t) => t.id)[0]).toBe('bulk/t1');
  });

  it('names the first bad template in the registry order, as the registry does', async () => {
    const bad = (id: string): Template => makeTemplate({ id, messages: [{ role: 'user', content: 'hi {{undeclared}}' }] });
    const templates = [...many(50), bad('z/last'), bad('a/first')];
    const sliced = await runStepsYielding(compileTemplatesSteps(templates), undefined, 0).catch((e: unknown) => e as Error);
    expect(sliced).toBeInstanceOf(Error);
    expect((sliced as Error).message).toContain('template a/first@1');
    expect(() => new TemplateRegistry([...many(50), bad('z/last'), bad('a/first')], 'r')).toThrow((sliced as Error).message);
  });
});
