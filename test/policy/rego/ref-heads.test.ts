/**
 * Rules whose ref heads overlap: a general ref head (`p[q].r := …`, `p[q] contains …`) next to
 * rules at constant paths below it (`p.a.r := …`, `p.b contains …`) make one document, as in OPA
 * (its cases `v1/refheads/test-generic-refs.yaml`, which the shared compliance set lacks). The
 * engine used to let the rules below win silently, or drop them, so a deny-list written this way
 * (`blocked[team] contains m` plus `blocked.contractors contains "x"`) lost entries.
 */
import { describe, expect, it } from 'vitest';
import { RegoError } from '../../../src/policy/rego/index.js';
import { policy } from './helpers.js';

function value(src: string, ref = 'data.test.p', input: unknown = {}): unknown {
  return policy(`package test\nimport rego.v1\n${src}`).evaluate(ref, input);
}

function conflictOf(src: string, ref = 'data.test.p'): RegoError {
  try {
    value(src, ref);
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    return e as RegoError;
  }
  throw new Error('expected an evaluation error');
}

describe('overlapping ref heads (OPA refheads/general cases)', () => {
  it('merge where they add keys, and agree where they repeat a leaf', () => {
    expect(value('p[q].r := i if q := ["a", "b", "c"][i]\np.a.r := 0')).toEqual({ a: { r: 0 }, b: { r: 1 }, c: { r: 2 } });
    expect(value('p[q].r.s := i if q := ["a", "b", "c"][i]\np.d.r := 3\np.e := 4')).toEqual({
      a: { r: { s: 0 } },
      b: { r: { s: 1 } },
      c: { r: { s: 2 } },
      d: { r: 3 },
      e: 4,
    });
    // Keys below a general head's key: both rules' keys are kept (the constant one won alone).
    expect(value('p[x].y := 1 if some x in ["a", "b"]\np.a.z := 2')).toEqual({ a: { y: 1, z: 2 }, b: { y: 1 } });
    expect(value('p[x].y := 1 if some x in ["a", "b"]\np.a.z := 2', 'data.test.p.a')).toEqual({ y: 1, z: 2 });
  });

  it('unite multi-value leaves, however the document is read', () => {
    const shallow = 'p[q] contains r if {\n x := ["a", "b", "c"]\n q := x[_]\n r := x[_]\n q != r\n}\np.b contains "foo"';
    expect(value(shallow)).toEqual({ a: ['b', 'c'], b: ['a', 'c', 'foo'], c: ['a', 'b'] });
    const deep = 'p[q].r contains s if {\n x := ["a", "b", "c"]\n q := x[_]\n s := x[_]\n q != s\n}\np.b.r contains "foo"';
    expect(value(deep)).toEqual({ a: { r: ['b', 'c'] }, b: { r: ['a', 'c', 'foo'] }, c: { r: ['a', 'b'] } });
    expect(value(deep, 'data.test.p.b.r.c')).toBe('c');
    expect(value(deep, 'data.test.p.b.r')).toEqual(['a', 'c', 'foo']);
    // Read through a rule with a constant path, and with a variable key.
    expect(value(`${deep}\nx := p.b.r`, 'data.test.x')).toEqual(['a', 'c', 'foo']);
    expect(value(`${deep}\nx := {k | some k in p[input.k].r}`, 'data.test.x', { k: 'b' })).toEqual(['a', 'c', 'foo']);
  });

  it('conflict where a rule changes or reaches into another rule\'s leaf', () => {
    for (const [src, ref] of [
      ['p[q].r.s := i if q := ["a", "b", "c"][i]\np.a.r := 42', 'data.test.p'],
      ['p[q].r.s := i if q := ["a", "b", "c"][i]\np.a.r := 42', 'data.test.p.a'],
      ['p[q].r.s := i if q := ["a", "b", "c"][i]\np.a.r := 42', 'data.test.p.a.r'],
      ['p[q].r := v if {\n q := "q"\n v := {"s": {"t": 1}}\n}\np.q.r.s.t := 42', 'data.test.p'],
      ['p[q].r := v if {\n q := "q"\n v := {"s": {"t": 1}}\n}\np.q.r.s.u := 42', 'data.test.p'],
      ['p[x] := 1 if some x in ["a"]\np.a := 2', 'data.test.p'],
      ['p[x] := 1 if some x in ["a"]\np.a := 2', 'data.test.p.a'],
    ] as const) {
      const e = conflictOf(src, ref);
      expect(e.code, `${src} (${ref})`).toBe('eval_conflict_error');
      expect(e.location?.row).toBe(3);
    }
  });

  it('a rule below a general head may read the other keys of the head (no recursion through the sub-tree)', () => {
    // Reading p.x evaluated every rule under p, p.e itself included: rego_recursion_error.
    expect(value('p[q] := 1 if q := "x"\np.e := 4 if p.x == 1')).toEqual({ x: 1, e: 4 });
    expect(value('p[q] := 1 if q := "x"\np.e := 4 if p.x == 1', 'data.test.p.e')).toBe(4);
    // Base data at a key the rules do not define is still found.
    const withData = policy('package test\nimport rego.v1\np[q] := 1 if q := "x"\np.e := v if v := data.test.p.z', { test: { p: { z: 7 } } });
    expect(withData.evaluate('data.test.p.e', {})).toBe(7);
  });

  it('a deny-list split between a general head and a constant one blocks every entry', () => {
    const src = `
package warden
import rego.v1

blocked[team] contains model if {
  some team in ["contractors", "interns"]
  some model in ["o1-pro"]
}
blocked.contractors contains "gpt-4o"

default allow := false
allow if not input.model in blocked[input.team]
`;
    const p = policy(src);
    expect(p.evaluate('data.warden.allow', { team: 'contractors', model: 'o1-pro' })).toBe(false);
    expect(p.evaluate('data.warden.allow', { team: 'contractors', model: 'gpt-4o' })).toBe(false);
    expect(p.evaluate('data.warden.allow', { team: 'interns', model: 'gpt-4o' })).toBe(true);
  });
});
