/**
 * Log lines and `stdout` audit records share one stdout. When its reader is slow (the pipe is
 * often full), neither may be written in part with the other's bytes inside it: a record torn by a
 * log line breaks the captured chain. A child process writes both while this test reads its
 * stdout a little at a time; `warden audit verify --skip-non-records` must find the chain whole.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { runAuditCli } from '../../src/audit/index.js';

const CHILD = fileURLToPath(new URL('./fixtures/stdout-writers.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warden-stdout-shared-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('a slow reader of stdout gets every record and every log line whole', async () => {
  const records = 1500;
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(records)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = child.stdout;
  out.pause();
  let text = '';
  // Start late: the pipe fills before anything is read.
  await new Promise((r) => setTimeout(r, 400));
  // What the stream holds (up to 64 KB) every 20 ms, so the pipe is full most of the time, until
  // the last record and the last log line are in. (`read(n)` would leave a last piece shorter
  // than n unread until the stream ends, and this child does not end by itself.)
  const count = (what: string): number => text.split(what).length - 1;
  const complete = (): boolean => count('"prev_hash"') >= records && count('request served') >= records && text.endsWith('\n');
  const deadline = Date.now() + 40_000;
  while (!complete() && Date.now() < deadline) {
    const c = out.read() as Buffer | null;
    if (c) text += c.toString('latin1');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill();
  const file = join(dir, 'captured.log');
  writeFileSync(file, text);
  let said = '';
  const io = { stdout: { write: (s: string) => (said += s) }, stderr: { write: (s: string) => (said += s) } };
  const code = await runAuditCli(['verify', '--skip-non-records', file], io as never);
  expect({ code, said }).toMatchObject({ code: 0, said: expect.stringMatching(new RegExp(`${records} record\\(s\\), chain intact`)) });
  // Every log line arrived whole too: each is a JSON object of its own.
  const logs = text.split('\n').filter((l) => l.includes('request served'));
  expect(logs).toHaveLength(records);
  for (const l of logs) expect(() => JSON.parse(l) as unknown).not.toThrow();
}, 60_000);
