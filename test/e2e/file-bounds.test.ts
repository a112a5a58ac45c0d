/**
 * Template and policy files are held to size and count caps (README, "Templates" and "Policies
 * with the built-in Rego engine": Limits), checked by size before a file is read, at start, at
 * reload and in the CLI tools alike; each refusal names the file and the cap.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMain as cli } from './helpers/cli.js';
import { loadTemplateStore } from '../../src/templates/index.js';
import { loadRegoPolicy } from '../../src/policy/rego/index.js';

const MIB = 1024 * 1024;

const TEMPLATE = `id: demo/big
version: 1
owner: team@example.com
sensitivity: internal
description: "PAD"
retire_after: 2099-12-31
models: [echo]
messages:
  - role: user
    content: "Hello"
`;

/** A valid template of exactly `bytes` bytes (the description padded). */
function templateOf(bytes: number, id = 'demo/big'): string {
  const base = TEMPLATE.replace('demo/big', id);
  return base.replace('PAD', 'a'.repeat(bytes - (base.length - 3)));
}

/** A valid template of exactly `bytes` bytes, padded with a comment (quicker to parse). */
function commentedTemplateOf(bytes: number, id: string): string {
  const base = TEMPLATE.replace('demo/big', id).replace('PAD', 'd');
  return `# ${'c'.repeat(bytes - base.length - 3)}\n${base}`;
}

/** A valid policy module of exactly `bytes` bytes (a trailing comment padded). */
function regoOf(bytes: number, pkg = 'big'): string {
  const head = `package ${pkg}\nallow := true\n# `;
  return `${head}${'x'.repeat(bytes - head.length - 1)}\n`;
}

/** A data file of exactly `bytes` bytes. */
function dataOf(bytes: number): string {
  const head = '{"pad": "';
  return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-bounds-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * 10,001 empty `*.yaml` files, one past both file-count caps, made once: to the template loader
 * they are templates, to the policy loader data files.
 */
let many: string | undefined;
function manyFiles(): string {
  if (many) return many;
  many = join(dir, 'many');
  mkdirSync(many);
  for (let i = 0; i <= 10_000; i++) writeFileSync(join(many, `f${i}.yaml`), '');
  return many;
}

const fresh = (name: string): string => {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
};

describe('template files', () => {
  it('a file of exactly 1 MiB loads; one byte more is refused by its size, naming the file and the cap, in serve and in lint alike', async () => {
    const d = fresh('t-size');
    const file = join(d, 'big.yaml');
    writeFileSync(file, templateOf(MIB));
    expect((await loadTemplateStore([d])).list()).toHaveLength(1);
    const ok = await cli(['templates', 'lint', d]);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/^ok: 1 template/)]);

    writeFileSync(file, templateOf(MIB + 1));
    const message = `${file}:1:1: the file is 1048577 bytes; a template file may be at most 1 MiB (1048576 bytes)`;
    await expect(loadTemplateStore([d])).rejects.toThrow(message);
    const lint = await cli(['templates', 'lint', d]);
    expect(lint.code).toBe(1);
    expect(lint.stdout).toBe(`${message}\n1 problem(s)\n`);
  });

  it('the files together are held to 32 MiB: the file that passes it is named, and the rest is not read', async () => {
    const d = fresh('t-total');
    // 33 files just under 1 MiB each: 32 fit, the 33rd passes the total.
    for (let i = 0; i < 33; i++) writeFileSync(join(d, `f${String(i).padStart(2, '0')}.yaml`), commentedTemplateOf(MIB - 1024, `demo/f${i}`));
    const lint = await cli(['templates', 'lint', d]);
    expect(lint.code).toBe(1);
    expect(lint.stdout).toBe(
      `${join(d, 'f32.yaml')}:1:1: the template files read up to this one hold more than 32 MiB (33554432 bytes), the most all template files together may hold; this file and the ones after it were not read\n1 problem(s)\n`,
    );
    await expect(loadTemplateStore([d])).rejects.toThrow('f32.yaml:1:1: the template files read up to this one hold more than 32 MiB');
  });

  it('more than 10,000 template files are refused while the tree is listed, before any is read', async () => {
    // Empty files: had any been read, each would be a problem of its own ("contains no template").
    const d = manyFiles();
    const lint = await cli(['templates', 'lint', d]);
    expect([lint.code, lint.stdout]).toEqual([1, '']);
    expect(lint.stderr).toBe(`${d}: template_invalid: more than 10000 template files: Warden reads at most 10000 under templates.paths together\n`);
    await expect(loadTemplateStore([d])).rejects.toThrow('more than 10000 template files');
  }, 60_000);
});

describe('policy and data files', () => {
  it('a .rego file of exactly 1 MiB loads; one byte more is refused by its size, in eval, check, test and serve\'s loader alike', async () => {
    const d = fresh('p-size');
    const file = join(d, 'big.rego');
    writeFileSync(file, regoOf(MIB));
    expect((await loadRegoPolicy([d])).evaluate('data.big.allow', undefined)).toBe(true);
    const ok = await cli(['policy', 'eval', '-d', d, 'data.big.allow']);
    expect(ok.code, ok.stderr).toBe(0);

    writeFileSync(file, regoOf(MIB + 1));
    const message = `${file}: rego_compile_error: the file is 1048577 bytes; a policy (.rego) file may be at most 1 MiB (1048576 bytes)`;
    await expect(loadRegoPolicy([d])).rejects.toThrow('the file is 1048577 bytes; a policy (.rego) file may be at most 1 MiB (1048576 bytes)');
    for (const args of [['policy', 'eval', '-d', d, 'data.big.allow'], ['policy', 'check', d], ['policy', 'test', d]]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toBe(`${message}\n`);
    }
  });

  it('a data file may have 8 MiB; one byte more is refused by its size', async () => {
    const d = fresh('p-data');
    const file = join(d, 'data.json');
    writeFileSync(file, dataOf(8 * MIB));
    expect(((await loadRegoPolicy([d])).evaluate('data.pad', undefined) as string).length).toBe(8 * MIB - 11);
    writeFileSync(file, dataOf(8 * MIB + 1));
    const r = await cli(['policy', 'check', d]);
    expect([r.code, r.stderr]).toEqual([1, `${file}: rego_compile_error: the file is 8388609 bytes; a data file may be at most 8 MiB (8388608 bytes)\n`]);
  });

  it('the files together are held to 32 MiB: the file that passes it is named', async () => {
    const d = fresh('p-total');
    for (let i = 0; i < 5; i++) {
      mkdirSync(join(d, `d${i}`));
      writeFileSync(join(d, `d${i}`, 'data.json'), dataOf(7 * MIB));
    }
    const r = await cli(['policy', 'check', d]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${join(d, 'd4', 'data.json')}: rego_compile_error: the policy and data files read up to this one hold more than 32 MiB (33554432 bytes), the most all of them together may hold\n`);
  });

  it('more than 10,000 policy files are refused while the tree is listed, naming the directory', async () => {
    const d = fresh('p-count');
    // Under a sub-directory: the directory where the count passes the cap is named.
    symlinkSync(manyFiles(), join(d, 'sub'));
    const r = await cli(['policy', 'check', d]);
    expect([r.code, r.stderr]).toEqual([1, `${join(d, 'sub')}: rego_compile_error: more than 10000 policy and data files: Warden reads at most 10000 under its policy paths together\n`]);
    await expect(loadRegoPolicy([d])).rejects.toThrow('more than 10000 policy and data files');
  }, 60_000);

  it('a policy eval input of more than 8 MiB is refused by its size, naming the file', async () => {
    const d = fresh('p-input');
    writeFileSync(join(d, 'p.rego'), 'package p\nallow := true\n');
    const input = join(dir, 'input.json');
    writeFileSync(input, dataOf(8 * MIB + 1));
    const r = await cli(['policy', 'eval', '-d', d, '-i', input, 'data.p.allow']);
    expect([r.code, r.stdout, r.stderr]).toEqual([1, '', `${input}: payload_too_large: the input is 8388609 bytes; an input document may be at most 8 MiB (8388608 bytes)\n`]);
  });
});
