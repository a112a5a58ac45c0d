/**
 * Runs the `warden` CLI: as a child process (through tsx, as `npm run` would run the sources) where
 * signals, exit codes and real stdio matter, or in this process (fast) for help and usage checks.
 */
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

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

/**
 * Runs a `warden serve` expected to stop at start: its exit code, signal and stderr. One that
 * starts after all (the behaviour under test gone) would serve for good: it is killed after
 * `killAfterMs`, and the signal says so.
 */
export async function runFailingServe(args: string[], killAfterMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawnWarden(args);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const started = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(started);
  return { code, signal, stderr };
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
