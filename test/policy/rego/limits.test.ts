/**
 * Runaway evaluation must end in a RegoError (which Warden turns into a deny), never in a hung
 * or crashed process: step budget, deadline, nesting depth, input size, huge collections.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy, RegoError } from '../../../src/policy/rego/index.js';

function policy(source: string) {
  return compilePolicy([{ path: 'limits.rego', source }]);
}

function budgetError(fn: () => unknown): RegoError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    return e as RegoError;
  }
  throw new Error('expected a budget error');
}

const cross = policy(`package t
import rego.v1
# n^3 combinations: far more work than any decision should need
p := count([1 | some a in input.xs; some b in input.xs; some c in input.xs])
`);

describe('evaluation limits', () => {
  it('stops at the step budget', () => {
    const xs = Array.from({ length: 200 }, (_, i) => i);
    const e = budgetError(() => cross.evaluate('data.t.p', { xs }, { maxSteps: 10_000 }));
    expect(e.code).toBe('eval_budget_exceeded');
    expect(e.message).toContain('10000 steps');
  });

  it('names the rule or function that was running when the budget ran out (for the operator log)', () => {
    const xs = Array.from({ length: 200 }, (_, i) => i);
    // The rule p (line 4 of the module), not a location-less error.
    const e = budgetError(() => cross.evaluate('data.t.p', { xs }, { maxSteps: 10_000 }));
    expect(e.location).toEqual({ file: 'limits.rego', row: 4, col: 1 });
    // The innermost one: the function the decision calls, not the decision.
    const p = policy('package t\nimport rego.v1\ndecision := {"allow": f(input.xs) > 0}\nf(xs) := count([1 | some a in xs; some b in xs])\n');
    const f = budgetError(() => p.evaluate('data.t.decision', { xs }, { maxSteps: 10_000 }));
    expect([f.code, f.location]).toEqual(['eval_budget_exceeded', { file: 'limits.rego', row: 4, col: 1 }]);
    // So does the nesting limit.
    const lines = ['package t', 'import rego.v1', 'f0(x) := x'];
    for (let i = 1; i <= 50; i++) lines.push(`f${i}(x) := f${i - 1}(x + 1)`);
    lines.push('v := f50(0)');
    const d = budgetError(() => policy(lines.join('\n')).evaluate('data.t.v', {}, { maxDepth: 10 }));
    expect(d.location?.file).toBe('limits.rego');
  });

  it('stops at the deadline', () => {
    const xs = Array.from({ length: 400 }, (_, i) => i);
    const e = budgetError(() => cross.evaluate('data.t.p', { xs }, { maxSteps: Number.MAX_SAFE_INTEGER, deadlineMs: 20 }));
    expect(e.code).toBe('eval_budget_exceeded');
    expect(e.message).toContain('deadline');
  });

  it('evaluates within the budget when the work fits', () => {
    expect(cross.evaluate('data.t.p', { xs: [1, 2, 3] })).toBe(27);
  });

  it('handles 100k-element arrays without hanging, and refuses them under a small budget', () => {
    const p = policy(`package t
import rego.v1
n := count([x | some x in input.xs; x % 2 == 0])
`);
    const xs = Array.from({ length: 100_000 }, (_, i) => i);
    expect(p.evaluate('data.t.n', { xs }, { maxSteps: 10_000_000, deadlineMs: 30_000 })).toBe(50_000);
    const e = budgetError(() => p.evaluate('data.t.n', { xs }, { maxSteps: 50_000 }));
    expect(e.code).toBe('eval_budget_exceeded');
  });

  it('refuses inputs over 10 MB', () => {
    const p = policy('package t\nimport rego.v1\nok := true\n');
    const big = { blob: 'x'.repeat(11 * 1024 * 1024) };
    const e = budgetError(() => p.evaluate('data.t.ok', big));
    expect(e.code).toBe('eval_budget_exceeded');
    expect(e.message).toContain('input larger than');
    // the message never echoes the input
    expect(e.message).not.toContain('xxxx');
  });

  it('survives deeply nested input', () => {
    const p = policy('package t\nimport rego.v1\nv := input\n');
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const e = budgetError(() => p.evaluate('data.t.v', deep));
    expect(e.code).toBe('eval_budget_exceeded');
    // Named for what it is: a small input that is deep, not a large one.
    expect(e.message).toBe('evaluation budget exceeded: input nested deeper than 1000 levels');
    let fits: unknown = 'leaf';
    for (let i = 0; i < 999; i++) fits = [fits];
    expect(p.evaluate('data.t.v', fits)).toEqual(fits);
  });

  it('limits nesting depth of rule and function evaluation', () => {
    // Recursion is a compile error in Rego, so nest functions through a chain instead.
    const lines = ['package t', 'import rego.v1', 'f0(x) := x'];
    for (let i = 1; i <= 50; i++) lines.push(`f${i}(x) := f${i - 1}(x + 1)`);
    lines.push('v := f50(0)');
    const p = policy(lines.join('\n'));
    expect(p.evaluate('data.t.v', {})).toBe(50);
    const e = budgetError(() => p.evaluate('data.t.v', {}, { maxDepth: 10 }));
    expect(e.code).toBe('eval_budget_exceeded');
    expect(e.message).toContain('nesting');
  });

  it('puts no secret-looking input values into error messages', () => {
    const p = policy(`package t
import rego.v1
q := 1 / input.d
`);
    const e = budgetError(() => p.evaluate('data.t.q', { d: 0, token: 'CANARY-SECRET-9f8e7d' }, { strictBuiltinErrors: true }));
    expect(String(e)).not.toContain('CANARY-SECRET-9f8e7d');
  });

  it('refuses long operator chains with a located parse error instead of a stack overflow', () => {
    const chain = (n: number) => `package t\nimport rego.v1\nx := 1${' + 1'.repeat(n)}\n`;
    expect(policy(chain(900)).evaluate('data.t.x', {})).toBe(901);
    let e: RegoError | undefined;
    try {
      policy(chain(2000));
    } catch (err) {
      e = err as RegoError;
    }
    expect(e).toBeInstanceOf(RegoError);
    expect(e!.code).toBe('rego_parse_error');
    expect(e!.message).toContain('expression too long');
    expect(e!.location).toMatchObject({ file: 'limits.rego', row: 3 });
  });

  it('refuses bodies of more than 1000 expressions at compile time, so check and evaluation agree', () => {
    const body = (n: number) =>
      `package t\nimport rego.v1\nx if {\n${Array.from({ length: n }, (_, i) => `input.a${i} == ${i}`).join('\n')}\n}\n`;
    const input = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`a${i}`, i]));
    // The longest body accepted evaluates, even from a deep stack.
    const ok = policy(body(1000));
    const deep = (n: number): unknown => (n === 0 ? ok.evaluate('data.t.x', input) : deep(n - 1));
    expect(deep(500)).toBe(true);
    for (const n of [1001, 3000, 10_000]) {
      let e: RegoError | undefined;
      try {
        policy(body(n));
      } catch (err) {
        e = err as RegoError;
      }
      expect(e).toBeInstanceOf(RegoError);
      expect(e!.code).toBe('rego_parse_error');
      expect(e!.message).toContain('more than 1000 expressions');
      // At the first expression past the limit.
      expect(e!.location).toMatchObject({ file: 'limits.rego', row: 1004, col: 1 });
    }
  });
});
