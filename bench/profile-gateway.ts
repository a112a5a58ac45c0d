/**
 * Profiles Warden's hot path: runs the gateway benchmark's Warden under `node --cpu-prof` with
 * closed-loop load, and leaves the .cpuprofile in bench/results/ (open it in Chrome DevTools).
 *   npx tsx bench/profile-gateway.ts [requests] [concurrency]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWarden, sender, startChild, stopChild, wardenBody, writeWardenSetup } from './gateway.js';
import { maxThroughput } from './stats.js';

const out = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(out, { recursive: true });
const count = Number(process.argv[2] ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), 'warden-profile-'));
const upstream = await startChild('upstream');
// Profile the compiled build, as the benchmark measures it (function names survive tsc).
const warden = await startChild('warden', writeWardenSetup(dir, upstream.port), ['--cpu-prof', `--cpu-prof-dir=${out}`], buildWarden());
const t = sender(warden.port, '/v1/chat/completions', wardenBody());
const r = await maxThroughput(t.send, Number(process.argv[3] ?? 8), count, 60_000);
process.stdout.write(`${Math.round(r.rps)} requests/s, ${r.errors} errors; profile written to ${out}\n`);
await t.close();
await stopChild(warden);
await stopChild(upstream);
rmSync(dir, { recursive: true, force: true });
