import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli as run } from './helpers.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-policy-print-'));
  writeFileSync(
    join(dir, 'p.rego'),
    `package p
import rego.v1
allow if {
	print("checking", input.user)
	input.user == "alice"
}
`,
  );
  writeFileSync(
    join(dir, 'p_test.rego'),
    `package p_test
import rego.v1
test_passes if {
	print("in passing test")
	data.p.allow with input as {"user": "alice"}
}
test_fails if {
	print("in failing test", {"user": "bob"})
	data.p.allow with input as {"user": "bob"}
}
`,
  );
});

describe('print in the policy CLI', () => {
  it('eval writes print lines to stderr and keeps stdout the JSON result', async () => {
    const input = join(dir, 'input.json');
    writeFileSync(input, JSON.stringify({ user: 'alice' }));
    const r = await run(['eval', '-d', join(dir, 'p.rego'), '-i', input, 'data.p.allow']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('checking alice\n');
    expect(JSON.parse(r.out)).toMatchObject({ result: [{ expressions: [{ value: true }] }] });
  });

  it('test shows what a failing test printed, indented under its result, and not a passing one', async () => {
    const r = await run(['test', dir]);
    expect(r.code).toBe(1);
    // the per-file listing (after SUMMARY) carries the output, as in opa test
    const failLine = r.out.lastIndexOf('data.p_test.test_fails: FAIL');
    expect(failLine).toBeGreaterThanOrEqual(0);
    const after = r.out.slice(failLine).split('\n');
    expect(after.slice(1, 5)).toEqual(['', '  in failing test {"user": "bob"}', '  checking bob', '']);
    expect(r.out).not.toContain('in passing test');
    expect(r.out).toContain('1 passed, 1 failed');
  });

  it('test -v shows what every test printed', async () => {
    const r = await run(['test', '-v', dir]);
    expect(r.code).toBe(1);
    const passLine = r.out.indexOf('data.p_test.test_passes: PASS');
    expect(passLine).toBeGreaterThanOrEqual(0);
    expect(r.out.slice(passLine).split('\n').slice(1, 5)).toEqual(['', '  in passing test', '  checking alice', '']);
    expect(r.out).toContain('  in failing test {"user": "bob"}');
  });
});
