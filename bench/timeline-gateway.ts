/**
 * Where the gateway's added latency goes, side by side for the bare proxy and Warden: both run
 * with the same preload (bench/timeline-preload.mjs), which times each request from Node's and
 * undici's diagnostics channels, at the benchmark's fixed 500 requests/s, one request at a time.
 * Neither server's code is changed for it. Prints the median time of each mark from the request's
 * arrival, the segments between marks, and what Warden adds to each.
 *   npx tsx bench/timeline-gateway.ts [slices, default 6]
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWarden, directBody, sender, startChild, stopChild, wardenBody, writeWardenSetup } from './gateway.js';
import { fixedRateRaw, maxThroughput, summarize } from './stats.js';

const arg = process.argv[2];
if (arg === '--help') {
  process.stdout.write('usage: npx tsx bench/timeline-gateway.ts [slices, default 6]\n');
  process.exit(0);
}
const slices = Number(arg ?? 6);
if (!Number.isInteger(slices) || slices < 1) {
  process.stderr.write(`slices must be a positive integer, got ${String(arg)}\n`);
  process.exit(2);
}
const SLICE_MS = 2_000;

const PRELOAD = ['--import', fileURLToPath(new URL('./timeline-preload.mjs', import.meta.url))];
const SEGMENTS: Array<[string, string, string]> = [
  ['in', 'u_create', 'request read; for Warden also parsed and run through the stages'],
  ['u_create', 'u_write', 'undici: request queued until written'],
  ['u_write', 'u_sent', 'upstream request written (one writev)'],
  ['u_sent', 'u_headers', 'upstream works; wake-ups'],
  ['u_headers', 'u_end', 'answer body read'],
  ['u_end', 'finish', 'answer decoded, respond and audit (Warden); response written'],
];

interface Timeline {
  count: number;
  marks: Record<string, number>;
}

function ask(proc: ChildProcess, message: string): Promise<Timeline | undefined> {
  return new Promise((resolve) => {
    // The servers also answer every message with their CPU usage: wait for the timeline itself.
    const onMessage = (m: unknown) => {
      if (m === null || typeof m !== 'object' || !('timeline' in m)) return;
      proc.off('message', onMessage);
      resolve((m as { timeline: Timeline }).timeline);
    };
    if (message === 'timeline') proc.on('message', onMessage);
    proc.send(message);
    if (message !== 'timeline') resolve(undefined);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'warden-timeline-'));
const build = buildWarden();
const upstream = await startChild('upstream');
const proxy = await startChild('proxy', String(upstream.port), PRELOAD);
const warden = await startChild('warden', writeWardenSetup(dir, upstream.port), PRELOAD, build);
try {
  const direct = sender(upstream.port, '/v1/chat/completions', directBody());
  const paced = { proxy: sender(proxy.port, '/v1/chat/completions', directBody()), warden: sender(warden.port, '/v1/chat/completions', wardenBody()) };
  for (const s of Object.values(paced)) await maxThroughput(s.send, 8, 3_000, 5_000);
  for (const c of [proxy, warden]) await ask(c.proc, 'timeline-reset');

  const latencies = { direct: [] as number[], proxy: [] as number[], warden: [] as number[] };
  for (let i = 0; i < slices; i++) {
    latencies.direct.push(...(await fixedRateRaw(direct.send, 500, SLICE_MS / 2)).latencies);
    // Alternate who goes first, so neither always follows the other.
    for (const name of i % 2 === 0 ? (['proxy', 'warden'] as const) : (['warden', 'proxy'] as const)) {
      latencies[name].push(...(await fixedRateRaw(paced[name].send, 500, SLICE_MS)).latencies);
    }
  }
  const d = summarize(latencies.direct, 0).p50;
  const t = { proxy: (await ask(proxy.proc, 'timeline'))!, warden: (await ask(warden.proc, 'timeline'))! };
  const us = (ms: number) => `${Math.round(ms * 1000)} µs`;
  process.stdout.write(
    `added p50 measured by the client: proxy ${us(summarize(latencies.proxy, 0).p50 - d)}, Warden ${us(summarize(latencies.warden, 0).p50 - d)}\n` +
      `requests timed alone: proxy ${t.proxy.count}, Warden ${t.warden.count}\n\n` +
      'median µs from the request\'s arrival\n' +
      `${'mark'.padEnd(10)} ${'proxy'.padStart(6)} ${'Warden'.padStart(7)}\n`,
  );
  for (const k of Object.keys(t.proxy.marks)) {
    process.stdout.write(`${k.padEnd(10)} ${t.proxy.marks[k]!.toFixed(0).padStart(6)} ${t.warden.marks[k]!.toFixed(0).padStart(7)}\n`);
  }
  process.stdout.write(`\nsegment (µs, difference of medians)   proxy  Warden  added\n`);
  for (const [a, b, what] of SEGMENTS) {
    const p = t.proxy.marks[b]! - t.proxy.marks[a]!;
    const w = t.warden.marks[b]! - t.warden.marks[a]!;
    process.stdout.write(`${`${a} → ${b}`.padEnd(22)} ${p.toFixed(0).padStart(14)} ${w.toFixed(0).padStart(7)} ${(w - p).toFixed(0).padStart(6)}  ${what}\n`);
  }
  for (const s of [direct, ...Object.values(paced)]) await s.close();
} finally {
  await Promise.all([warden, proxy, upstream].map(stopChild));
  rmSync(dir, { recursive: true, force: true });
}
