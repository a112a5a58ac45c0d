/**
 * Runs the `warden` CLI: as a child process (through tsx, as `npm run` would run the sources) where
 * signals, exit codes and real stdio matter, or in this process (fast) for help and usage checks.
 */
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { onTestFinished } from 'vitest';

export const REPO = join(import.meta.dirname, '..', '..', '..');
const MAIN = join(REPO, 'src', 'main.ts');

export function spawnWarden(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runWarden(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const child = spawnWarden(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

export interface ServeOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** It printed its `warden listening` line (and was then stopped with SIGTERM). */
  started: boolean;
}

/**
 * Runs `warden serve` until it stops by itself or prints its `warden listening` line, which it is
 * then stopped with SIGTERM after: its exit code, signal and stderr, and whether it started. No
 * wall-clock bound: a serve that hangs before either (a start stalled on a blocking read) is what
 * the test's timeout catches, and it is killed once the test has finished, however that ended.
 * Call it inside a test.
 */
export async function runServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeOutcome> {
  const child = spawnWarden(args, env);
  onTestFinished(() => void child.kill('SIGKILL')); // a no-op once it has exited
  let stderr = '';
  let stdout = '';
  let started = false;
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!started && stdout.includes('warden listening')) {
      started = true;
      child.kill('SIGTERM');
    }
  });
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stderr, started };
}

/**
 * Runs the CLI entry in this process, capturing what it writes. Loaded on first use so that tests
 * which only spawn children do not import the whole server.
 */
export async function runMain(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { main } = await import('../../../src/main.js');
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (t) => void (stdout += t), err: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

/** Collects a serving child's JSON log lines; resolves the bound addresses once it listens. */
export function watchServe(child: ChildProcess): { lines: string[]; listening: Promise<{ http: string; grpc: string; admin: string }>; exited: Promise<number | null> } {
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const listening = new Promise<{ http: string; grpc: string; admin: string }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line.includes('"warden listening"')) resolve(JSON.parse(line) as { http: string; grpc: string; admin: string });
    });
    void exited.then((code) => reject(new Error(`warden exited (${String(code)}) before listening: ${stderr.slice(-800)}`)));
  });
  return { lines, listening, exited };
}
