/**
 * `policy.entrypoint` is checked where the policy set is loaded: a path that names no rule,
 * package or data (a typo, OPA's `data/…` prefix) fails the load with the key, the data path and
 * what the loaded set does define, instead of denying every call as "entrypoint undefined". A
 * rule that exists but is undefined for some input still loads (it denies at request time).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/pipeline/errors.js';
import type { PolicyInput } from '../../src/pipeline/types.js';
import { createRegoPolicyEngine } from '../../src/policy/rego-engine.js';

const WARDEN = 'package warden\nimport rego.v1\ndecision := {"allow": true, "models": ["*"]} if input.ok\nhelper := 1\n';

/** A policy directory holding `files` (relative path → text). */
function policyDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-entrypoint-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

async function loadError(files: Record<string, string>, entrypoint: string): Promise<WardenError> {
  const err = await createRegoPolicyEngine({ paths: [policyDir(files)], entrypoint }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WardenError);
  return err as WardenError;
}

const input = (ok: boolean) => ({ ok, time: { now_ns: 0n } }) as unknown as PolicyInput;

describe('an entrypoint that names nothing in the loaded policies', () => {
  it('a typo fails the load, naming the key, the data path and the rules of the package it reached', async () => {
    const err = await loadError({ 'w.rego': WARDEN }, 'warden/decison');
    expect(err.code).toBe('policy_error');
    expect(err.location).toEqual({ path: 'policy.entrypoint' });
    expect(err.details).toMatchObject({ code: 'entrypoint_undefined', entrypoint: 'warden/decison' });
    expect(err.message).toBe('"warden/decison" names no rule: data.warden.decison is not defined by the loaded policies; data.warden holds decision, helper');
  });

  it('a package that was not loaded fails the load, listing the packages that were', async () => {
    const files = { 'w.rego': WARDEN, 'sub/o.rego': 'package other.rules\nx := 1\n' };
    const err = await loadError(files, 'authz/decision');
    expect(err.message).toBe('"authz/decision" names no rule: data.authz.decision is not defined by the loaded policies; the loaded packages are other.rules, warden');
    // Part of the path there: what the last existing part holds.
    expect((await loadError(files, 'other/decision')).message).toBe(
      '"other/decision" names no rule: data.other.decision is not defined by the loaded policies; data.other holds rules',
    );
  });

  it("OPA's data/ prefix is refused with the form to write instead", async () => {
    const err = await loadError({ 'w.rego': WARDEN }, 'data/warden/decision');
    expect(err.location).toEqual({ path: 'policy.entrypoint' });
    expect(err.message).toBe(
      '"data/warden/decision" names no rule: data.data.warden.decision is not defined by the loaded policies; the path is relative to data: write warden/decision',
    );
  });

  it('policy files that define no rule at all (only tests) fail the load', async () => {
    const err = await loadError({ 'w_test.rego': 'package warden\ntest_x if true\n' }, 'warden/decision');
    expect(err.message).toBe('"warden/decision" names no rule: data.warden.decision is not defined by the loaded policies; they define no package (files named *_test.rego are left out)');
  });

  it('a function is not a decision rule', async () => {
    const err = await loadError({ 'w.rego': 'package warden\ndecision(x) := x\n' }, 'warden/decision');
    expect(err.message).toBe('"warden/decision" names a function (data.warden.decision), not a rule: a function has no value without arguments');
  });
});

describe('an entrypoint that names something', () => {
  it('a rule undefined for this input loads, and is undefined at request time (denied there)', async () => {
    const e = await createRegoPolicyEngine({ paths: [policyDir({ 'w.rego': WARDEN })], entrypoint: 'warden/decision' });
    expect(e.evaluate(input(false))).toBeUndefined();
    expect(e.evaluate(input(true))).toEqual({ allow: true, models: ['*'] });
  });

  it("OPA's dotted data.warden.decision names the same rule", async () => {
    const e = await createRegoPolicyEngine({ paths: [policyDir({ 'w.rego': WARDEN })], entrypoint: 'data.warden.decision' });
    expect(e.evaluate(input(true))).toEqual({ allow: true, models: ['*'] });
  });

  it('a path into a rule, a package and base data all load', async () => {
    const dir = policyDir({ 'w.rego': WARDEN, 'static/data.json': '{"decision": {"allow": false}}' });
    await expect(createRegoPolicyEngine({ paths: [dir], entrypoint: 'warden/decision/allow' })).resolves.toBeDefined();
    await expect(createRegoPolicyEngine({ paths: [dir], entrypoint: 'warden' })).resolves.toBeDefined();
    const data = await createRegoPolicyEngine({ paths: [dir], entrypoint: 'static/decision' });
    expect(data.evaluate(input(true))).toEqual({ allow: false });
  });

  it('a package literally named data is reached by data/…', async () => {
    const dir = policyDir({ 'w.rego': 'package data.warden\ndecision := {"allow": false}\n' });
    const e = await createRegoPolicyEngine({ paths: [dir], entrypoint: 'data/warden/decision' });
    expect(e.evaluate(input(true))).toEqual({ allow: false });
  });

  it('no policy paths at all still loads (every call is denied, as documented)', async () => {
    const e = await createRegoPolicyEngine({ paths: [], entrypoint: 'warden/decision' });
    expect(e.evaluate(input(true))).toBeUndefined();
  });
});

describe('rules in *_test.rego files (left out of the policy set, as by opa test)', () => {
  it('a non-test rule in a package the policy set defines is reported once per file, with its line', async () => {
    const dir = policyDir({
      'w.rego': WARDEN,
      'w_test.rego': 'package warden\nimport rego.v1\n\ntest_allows if decision.allow with input as {"ok": true}\nextra_allow if true\nmore := 2\n',
      'sub/other_test.rego': 'package other\nhelper := 1\n',
      'tests_test.rego': 'package warden_test\nimport rego.v1\nbase := {"ok": true}\ntest_x if data.warden.decision with input as base\ntodo_test_y if true\n',
    });
    const e = await createRegoPolicyEngine({ paths: [dir], entrypoint: 'warden/decision' });
    expect(e.warnings).toEqual([
      {
        file: join(dir, 'w_test.rego'),
        line: 5,
        column: 1,
        message:
          'rule "extra_allow" (and 1 more) of package warden is left out: files named *_test.rego are not part of the policy set (OPA bundles and opa eval include them); move it to a file not named *_test.rego, or name it test_…',
      },
    ]);
    // Left out indeed: the policy set does not see it.
    expect(e.evaluate(input(true))).toEqual({ allow: true, models: ['*'] });
  });

  it('test files holding only test rules, or helpers in their own package, give no warning; a test file that does not parse neither', async () => {
    const dir = policyDir({
      'w.rego': WARDEN,
      'w_test.rego': 'package warden\nimport rego.v1\ntest_a if true\ntodo_test_b if true\n',
      'x_test.rego': 'package warden\ndecision := {\n',
    });
    expect((await createRegoPolicyEngine({ paths: [dir], entrypoint: 'warden/decision' })).warnings).toEqual([]);
  });
});
