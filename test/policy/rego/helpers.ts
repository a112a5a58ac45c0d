/** Helpers the Rego engine and policy CLI tests share. */
import { PassThrough, Readable } from 'node:stream';
import { expect } from 'vitest';
import { runPolicyCli } from '../../../src/policy/cli.js';
import { compilePolicy, RegoError } from '../../../src/policy/rego/index.js';

/** Compiles one module, named `policy.rego` (error locations say so), over optional data. */
export function policy(source: string, data?: unknown) {
  return compilePolicy([{ path: 'policy.rego', source }], data);
}

/** The RegoError compiling `source` raises (fails the test when it compiles). */
export function compileError(source: string): RegoError {
  try {
    policy(source);
  } catch (e) {
    expect(e).toBeInstanceOf(RegoError);
    return e as RegoError;
  }
  throw new Error('expected a compile error');
}

/**
 * Runs `warden policy ARGV…` in process, with `stdin` (bytes or text; none: an empty stream) on its
 * stdin, and collects its exit code, stdout and stderr.
 */
export async function runCli(argv: string[], stdin: string | Uint8Array = ''): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runPolicyCli(argv, { stdout, stderr, stdin: () => Readable.from([Buffer.from(stdin)]) });
  return { code, out, err };
}
