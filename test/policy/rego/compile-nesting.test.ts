/**
 * Compiling nested terms is linear in their size: planning a term looked at its parts twice and
 * safety analyzed both sides of a unification twice, so 40 levels of arrays, objects,
 * comprehensions or template strings around a reference never finished compiling (2^40 steps);
 * `warden policy check` and a policy load hung on a few lines.
 */
import { describe, expect, it } from 'vitest';
import { policy } from './helpers.js';

const DEPTH = 40;

function nest(open: string, inner: string, close: string): string {
  return open.repeat(DEPTH) + inner + close.repeat(DEPTH);
}

describe('nested terms compile in time linear in their size', () => {
  it('arrays and objects around a reference', () => {
    const p = policy(`package t\na := ${nest('[', 'input.x', ']')}\no := ${nest('{"k": ', 'input.x', '}')}\n`);
    let a = p.evaluate('data.t.a', { x: 7 });
    let o = p.evaluate('data.t.o', { x: 7 });
    for (let i = 0; i < DEPTH; i++) {
      a = (a as unknown[])[0];
      o = (o as Record<string, unknown>).k;
    }
    expect([a, o]).toEqual([7, 7]);
  });

  it('comprehensions', () => {
    let t = 'input.x';
    for (let i = 0; i < DEPTH; i++) t = `count({v${i} | v${i} = [${t}]})`;
    expect(policy(`package t\nr := ${t}\n`).evaluate('data.t.r', { x: 1 })).toBe(1);
  });

  it('template strings', () => {
    const p = policy(`package t\nr := ${nest('$"<{', 'input.x', '}>"')}\n`);
    expect(p.evaluate('data.t.r', { x: 'x' })).toBe('<'.repeat(DEPTH) + 'x' + '>'.repeat(DEPTH));
  });
});
