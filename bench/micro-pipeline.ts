/**
 * Focused harness for Warden's per-request CPU: runs the bench's full pipeline in this process
 * (no HTTP ingress, no load generator here; the upstream is its own process) and prints CPU µs per
 * request, one request at a time, and the median time of each stage (as the pipeline reports it
 * to metrics). Run it under `node --cpu-prof` to see where the pipeline's own time goes without
 * the noise of the ingress socket and the load generator.
 *   npx tsx bench/micro-pipeline.ts [requests]
 *   ALLOC_PROFILE=/tmp/a.heapprofile npx tsx bench/micro-pipeline.ts   (what each request allocates)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { buildWarden, startChild, stopChild, wardenBody, writeWardenSetup } from './gateway.js';

// Like the gateway benchmark, run the compiled build (tsx's transform slows closure-heavy code);
// NO_BUILD=1 runs the sources through tsx instead.
const build = process.env.NO_BUILD ? undefined : buildWarden();
const load = (rel: string): Promise<any> => import(build ? pathToFileURL(join(build, 'src', rel)).href : `../src/${rel}`);
const { loadConfig } = await load('config/load.js');
const { createRuntime, ingressLimits } = await load('runtime/runtime.js');
const { toPromptRequest } = await load('server/request.js');
const { createLogger } = await load('telemetry/logger.js');

const count = Number(process.argv[2] ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), 'warden-micro-'));
const upstream = await startChild('upstream');
try {
  const file = writeWardenSetup(dir, upstream.port);
  const config = loadConfig(file, {});
  const runtime = await createRuntime(config, { logger: createLogger({ level: 'error' }), watch: false, configDir: dirname(file) });
  const limits = ingressLimits(config);
  const bodyText = wardenBody();
  const signal = new AbortController().signal;
  let n = 0;
  async function one(): Promise<void> {
    const body = JSON.parse(bodyText) as unknown;
    const req = toPromptRequest(
      body,
      { id: `r${n++}`, credentials: { bearer: 'app-token', peer: { address: '127.0.0.1', local: true, transport: 'tcp' } }, signal, receivedAt: performance.timeOrigin + performance.now() },
      limits,
    );
    const res = await runtime.pipeline.run(req);
    if (res.kind !== 'complete') throw new Error('expected a complete response');
  }
  // Per-stage wall time (one request at a time, so for every stage but forward this is CPU):
  // the pipeline reports each stage's duration to metrics; listen in on that call.
  const stageSamples = new Map<string, number[]>();
  const observeStage = runtime.metrics.observeStage.bind(runtime.metrics);
  let recording = false;
  runtime.metrics.observeStage = (stage: string, seconds: number) => {
    if (recording) {
      let list = stageSamples.get(stage);
      if (!list) stageSamples.set(stage, (list = []));
      list.push(seconds * 1e6);
    }
    observeStage(stage, seconds);
  };
  for (let i = 0; i < 3000; i++) await one();
  recording = true;
  // ALLOC_PROFILE=file.heapprofile samples what the measured requests allocate (collected objects
  // included) for Chrome DevTools' memory tab, and prints the bytes allocated per request.
  const allocProfile = process.env.ALLOC_PROFILE;
  const inspector = allocProfile ? new Session() : undefined;
  const post = (method: string, params?: object): Promise<any> =>
    new Promise((resolve, reject) => inspector!.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  if (inspector) {
    inspector.connect();
    await post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await one();
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  if (inspector) {
    const { profile } = await post('HeapProfiler.stopSampling');
    writeFileSync(allocProfile!, JSON.stringify(profile));
    let bytes = 0;
    const walk = (n: { selfSize: number; children: unknown[] }) => {
      bytes += n.selfSize;
      for (const c of n.children) walk(c as typeof n);
    };
    walk(profile.head);
    process.stdout.write(`allocated ~${(bytes / count / 1024).toFixed(1)} KB per request (sampled); profile in ${allocProfile}\n`);
  }
  process.stdout.write(
    `${count} requests: ${((cpu.user + cpu.system) / count).toFixed(1)} CPU µs/request (user ${(cpu.user / count).toFixed(1)}, sys ${(cpu.system / count).toFixed(1)}), ${(1000 * ms / count).toFixed(1)} wall µs/request\n`,
  );
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const parts = [...stageSamples].map(([stage, xs]) => `${stage} ${median(xs).toFixed(1)}`);
  process.stdout.write(`median µs per stage: ${parts.join(', ')}\n`);
} finally {
  // SHOW_AUDIT=1 prints the last audit line (to check what the audit stage serialises).
  if (process.env.SHOW_AUDIT) process.stdout.write(`${readFileSync(join(dir, 'audit.log'), 'utf8').split('\n').at(-2) ?? ''}\n`);
  await stopChild(upstream);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
