/**
 * A/B of Warden's gateway cost between a git revision and the working tree, in one run against
 * one upstream: the two Wardens take turns (fixed-rate slices at 500 requests/s for latency,
 * closed-loop slices at 8 in flight for throughput and CPU), so load from elsewhere on a shared
 * machine hits both alike. Use it to check that a change is a gain before keeping it; single
 * `npm run bench` runs vary by ±10–20 % here.
 *   npx tsx bench/ab-gateway.ts <git revision> [slices]
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { buildWarden, directBody, sender, startChild, stopChild, wardenBody, writeWardenSetup } from './gateway.js';
import { fixedRateRaw, maxThroughput, summarize } from './stats.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const [rev, slicesArg] = process.argv.slice(2);
if (!rev || rev === '--help') {
  process.stdout.write('usage: npx tsx bench/ab-gateway.ts <git revision> [slices, default 10]\n');
  process.exit(rev ? 0 : 2);
}
const slices = Number(slicesArg ?? 10);

/** Checks `rev` out in a temporary worktree and compiles it as the bench compiles the working tree. */
function buildRevision(revision: string): { dir: string; cleanup: () => void } {
  const tmp = mkdtempSync(join(tmpdir(), 'warden-ab-'));
  const tree = join(tmp, 'tree');
  const dist = join(tmp, 'dist');
  const git = (...args: string[]) => {
    const r = spawnSync('git', ['-C', REPO, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  git('worktree', 'add', '--detach', tree, revision);
  const cleanup = () => {
    spawnSync('git', ['-C', REPO, 'worktree', 'remove', '--force', tree]);
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  symlinkSync(join(REPO, 'node_modules'), join(tree, 'node_modules'));
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  spawnSync(process.execPath, [tsc, '-p', join(tree, 'tsconfig.build.json'), '--outDir', dist, '--rootDir', tree], { cwd: tree, stdio: 'ignore' });
  // The build resolves packages and `"type": "module"` from where it sits, and proto/ beside src/.
  symlinkSync(join(REPO, 'node_modules'), join(dist, 'node_modules'));
  copyFileSync(join(tree, 'package.json'), join(dist, 'package.json'));
  symlinkSync(join(tree, 'proto'), join(dist, 'proto'));
  return { dir: dist, cleanup };
}

const base = buildRevision(rev);
const head = buildWarden();
if (!head) throw new Error('the working tree does not build');
const upstream = await startChild('upstream');
/** Whether a build knows `secrets.file_roots` (added in the fifteenth session; older ones refuse it). */
const knowsFileRoots = (build: string) => readFileSync(join(build, 'src', 'config', 'schema.js'), 'utf8').includes('file_roots');
const start = (build: string) =>
  startChild('warden', writeWardenSetup(mkdtempSync(join(tmpdir(), 'warden-ab-cfg-')), upstream.port, { fileRoots: knowsFileRoots(build) }), [], build);
const wardens = { [rev]: await start(base.dir), 'working tree': await start(head) };
const names = Object.keys(wardens);
const cpuMicros = (name: string) =>
  new Promise<number>((resolve) => {
    const proc = wardens[name]!.proc;
    proc.once('message', (m) => resolve((m as NodeJS.CpuUsage).user + (m as NodeJS.CpuUsage).system));
    proc.send('cpu');
  });
const direct = sender(upstream.port, '/v1/chat/completions', directBody());
const paced = Object.fromEntries(names.map((n) => [n, sender(wardens[n]!.port, '/v1/chat/completions', wardenBody())]));
const closed = Object.fromEntries(names.map((n) => [n, sender(wardens[n]!.port, '/v1/chat/completions', wardenBody(), 8)]));
for (const n of names) await maxThroughput(closed[n]!.send, 8, 4_000, 8_000);

const directLatencies: number[] = [];
const acc = Object.fromEntries(names.map((n) => [n, { latencies: [] as number[], errors: 0, count: 0, seconds: 0, cpuUs: 0 }]));
for (let i = 0; i < slices; i++) {
  directLatencies.push(...(await fixedRateRaw(direct.send, 500, 500)).latencies);
  // Alternate who goes first, so neither always follows the other's load.
  for (const n of i % 2 === 0 ? names : [...names].reverse()) {
    const a = acc[n]!;
    const r = await fixedRateRaw(paced[n]!.send, 500, 800);
    a.latencies.push(...r.latencies);
    a.errors += r.errors;
    const cpu0 = await cpuMicros(n);
    const t0 = performance.now();
    const m = await maxThroughput(closed[n]!.send, 8, 4_000, 700);
    a.seconds += (performance.now() - t0) / 1000;
    a.count += m.count;
    a.errors += m.errors;
    a.cpuUs += (await cpuMicros(n)) - cpu0;
  }
}
const d = summarize(directLatencies, 0);
for (const n of names) {
  const a = acc[n]!;
  const s = summarize(a.latencies, a.errors);
  process.stdout.write(
    `${n.padEnd(14)} added p50 ${(s.p50 - d.p50).toFixed(3)} ms, p99 ${(s.p99 - d.p99).toFixed(3)} ms; ` +
      `${Math.round(a.count / a.seconds)} req/s at 8 in flight, ${(a.cpuUs / a.count).toFixed(1)} CPU µs/request; ${a.errors} errors\n`,
  );
}
for (const s of [direct, ...Object.values(paced), ...Object.values(closed)]) await s!.close();
await Promise.all([...Object.values(wardens), upstream].map(stopChild));
base.cleanup();
