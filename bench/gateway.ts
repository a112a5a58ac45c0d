/**
 * Gateway benchmark (DESIGN.md, "Performance targets"). In one run, on loopback, against a local
 * upstream that answers at once:
 *   (a) the upstream called directly,
 *   (b) through a bare pass-through proxy (undici),
 *   (c) through Warden with the full pipeline: dev auth, Rego policy, one cached secret, a 4 KB
 *       prompt rendered from a template, redaction, audit to a file sink, OpenAI provider.
 * Reports the latency each adds over direct at a fixed 500 requests/s (p50, p99), the maximum
 * throughput of each, and the ratios the targets are written in.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { fixedRateRaw, maxThroughput, summarize } from './stats.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const REPO = join(HERE, '..');

const RATE = 500;
/**
 * Requests in flight (one connection each) while measuring maximum throughput. Bounded and small:
 * on a 2-core host the load generator shares the CPU with the server under test and the
 * upstream, and more connections only make the generator and the kernel eat the server's share.
 */
const MAX_CONCURRENCY = 8;
/**
 * The targets are measured in interleaved slices (direct, proxy, Warden, direct, ...) rather than
 * one after the other, so a burst of load from elsewhere on the machine hits all three alike and
 * the ratios stay meaningful on a shared host.
 */
const SLICES = 8;
const RATE_SLICE_MS = 600;
const MAX_SLICE_COUNT = 4_000;
const MAX_SLICE_MS = 600;
const WARMUP = 2_000;

/** ~4 KB of policy prose: the size of a realistic governed system prompt. */
export function fourKbPrompt(): string {
  const para =
    'You are the support assistant of Example Corp. Answer in the customer language, stay factual, ' +
    'never promise refunds, never invent order numbers, and escalate legal threats to a human agent. ';
  let s = '';
  while (s.length < 4000) s += para;
  return s.slice(0, 4000);
}

const PROMPT = fourKbPrompt();
export const TICKET = 'My order T-4411 arrived broken, please call me back at jane.doe@example.com.';

/** What the app sends to the upstream directly (and through the bare proxy): the same final prompt. */
export function directBody(): string {
  return JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: `${PROMPT}\nEscalation code: ESC-0000` },
      { role: 'user', content: `Ticket T-4411:\n${TICKET}` },
    ],
  });
}

/** What the app sends to Warden: the template and its variables. */
export function wardenBody(): string {
  return JSON.stringify({
    model: 'gpt-4o-mini',
    warden: { template: 'bench/summary@1', variables: { ticket_id: 'T-4411', customer_message: TICKET } },
  });
}

/**
 * Writes the benchmark's Warden setup (template, secrets, config) into `dir` and returns the
 * config's path. `fileRoots: false` leaves out `secrets.file_roots` (the template's secret lives
 * under it), for a build older than that key, which would refuse it as unknown (ab-gateway.ts).
 */
export function writeWardenSetup(dir: string, upstreamPort: number, opts: { fileRoots?: boolean } = {}): string {
  mkdirSync(join(dir, 'templates'), { recursive: true });
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  writeFileSync(join(dir, 'secrets', 'escalation-code'), 'ESC-7731\n');
  writeFileSync(join(dir, 'secrets', 'upstream-key'), 'sk-bench-not-a-real-key\n');
  const indented = PROMPT.replace(/(.{1,100})(\s|$)/g, '      $1\n');
  writeFileSync(
    join(dir, 'templates', 'bench.yaml'),
    `id: bench/summary
version: 1
owner: bench@example.com
sensitivity: internal
description: Benchmark template with a 4 KB system prompt and one secret.
approvals:
  - { by: bench@example.com, ticket: BENCH-1 }
retire_after: 2099-12-31
allowed_services: ["dev/*"]
models: [gpt-4o-mini]
variables:
  ticket_id: { type: string, max_length: 32 }
  customer_message: { type: string, pii: true, max_length: 8000 }
  escalation_code: { source: secret, ref: "file:secrets/escalation-code" }
messages:
  - role: system
    content: >-
${indented}      Escalation code: {{escalation_code}}
  - role: user
    content: "Ticket {{ticket_id}}:\\n{{customer_message}}"
`,
  );
  const config = join(dir, 'warden.yaml');
  writeFileSync(
    config,
    `listen: { http: 127.0.0.1:0, grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }
environment: { name: development, cluster: bench }
identity: { methods: [dev], dev: { principal: { namespace: dev, service_account: local } } }
policy: { engine: rego, paths: [${JSON.stringify(join(REPO, 'policies'))}], entrypoint: warden/decision }
templates: { paths: [templates] }
providers:
  upstream: { kind: openai, base_url: "http://127.0.0.1:${upstreamPort}/v1", api_key: "file://${join(dir, 'secrets', 'upstream-key')}" }
models: { gpt-4o-mini: upstream }
audit: { sinks: [{ file: audit.log }], required: true }
log: { level: error }
reload: { watch: false }
${opts.fileRoots === false ? '' : 'secrets: { file_roots: [secrets] }\n'}`,
  );
  return config;
}

interface Child {
  proc: ChildProcess;
  port: number;
}

/**
 * Where the bench compiles Warden (under dist/, which git and eslint ignore): one directory per
 * benchmark process, so two benchmarks run at once never delete each other's build.
 */
const BUILD_DIR = join(REPO, 'dist', 'bench', String(process.pid));

/**
 * Compiles src/ with the build config into dist/bench, as `npm run build` does for dist/.
 * Type errors elsewhere in a shared working tree do not stop tsc from emitting, so success is
 * judged by the output. Returns the build directory, or undefined when there is no usable build.
 */
let built: { dir: string | undefined } | undefined;

export function buildWarden(): string | undefined {
  // Once per benchmark process: `npm run bench` runs several benchmarks on the same build.
  if (built) return built.dir;
  built = { dir: compileWarden() };
  return built.dir;
}

function compileWarden(): string | undefined {
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  rmSync(BUILD_DIR, { recursive: true, force: true });
  spawnSync(process.execPath, [tsc, '-p', join(REPO, 'tsconfig.build.json'), '--outDir', BUILD_DIR, '--rootDir', REPO], { cwd: REPO, stdio: 'ignore' });
  if (!existsSync(join(BUILD_DIR, 'src', 'runtime', 'runtime.js'))) return undefined;
  process.once('exit', () => rmSync(BUILD_DIR, { recursive: true, force: true }));
  // The server finds proto/ relative to its own files, as in dist/.
  symlinkSync(join(REPO, 'proto'), join(BUILD_DIR, 'proto'));
  return BUILD_DIR;
}

export async function startChild(role: string, arg?: string, nodeFlags: string[] = [], build?: string): Promise<Child> {
  const args =
    role === 'warden' && build
      ? [...nodeFlags, join(HERE, 'warden-server.mjs'), build]
      : [...nodeFlags, '--import', 'tsx', join(HERE, 'gateway-server.ts'), role];
  if (arg) args.push(arg);
  const proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit', 'ipc'], cwd: REPO });
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${role} exited with code ${String(code)} before listening`)));
    // Node flags such as --trace-gc also write to stdout: wait for the ready line itself.
    const onLine = (line: string) => {
      if (!line.startsWith('{"port":')) return;
      lines.off('line', onLine);
      resolve((JSON.parse(line) as { port: number }).port);
    };
    lines.on('line', onLine);
  });
  return { proc, port };
}

function cpuMicros(c: Child): Promise<number> {
  return new Promise((resolve) => {
    c.proc.once('message', (m) => {
      const u = m as NodeJS.CpuUsage;
      resolve(u.user + u.system);
    });
    c.proc.send('cpu');
  });
}

export function stopChild(c: Child): Promise<void> {
  return new Promise((resolve) => {
    if (c.proc.exitCode !== null) return resolve();
    c.proc.once('exit', () => resolve());
    c.proc.stdin?.end();
    setTimeout(() => c.proc.kill('SIGKILL'), 3_000).unref();
  });
}

export function sender(
  port: number,
  path: string,
  body: string,
  connections = 64,
): { send: () => Promise<boolean>; close: () => Promise<void> } {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections, pipelining: 1 });
  const headers = { 'content-type': 'application/json', authorization: 'Bearer app-token' };
  return {
    send: async () => {
      const res = await pool.request({ path, method: 'POST', headers, body });
      await res.body.arrayBuffer();
      return res.statusCode === 200;
    },
    close: () => pool.close(),
  };
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

export async function runGatewayBench(): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  const children: Child[] = [];
  try {
    const upstream = await startChild('upstream');
    children.push(upstream);
    const proxy = await startChild('proxy', String(upstream.port));
    children.push(proxy);
    // Warden runs from the compiled build when it can (as in production); else through tsx.
    const build = buildWarden();
    const warden = await startChild('warden', writeWardenSetup(dir, upstream.port), [], build);
    children.push(warden);

    const targets = {
      direct: sender(upstream.port, '/v1/chat/completions', directBody()),
      proxy: sender(proxy.port, '/v1/chat/completions', directBody()),
      warden: sender(warden.port, '/v1/chat/completions', wardenBody()),
    };
    // Closed-loop load uses its own pools with exactly MAX_CONCURRENCY connections.
    const saturate = {
      direct: sender(upstream.port, '/v1/chat/completions', directBody(), MAX_CONCURRENCY),
      proxy: sender(proxy.port, '/v1/chat/completions', directBody(), MAX_CONCURRENCY),
      warden: sender(warden.port, '/v1/chat/completions', wardenBody(), MAX_CONCURRENCY),
    };
    // Fail fast when the setup is wrong rather than measuring errors.
    for (const [name, t] of Object.entries(targets)) {
      if (!(await t.send())) throw new Error(`${name}: the first request did not return 200`);
    }
    for (const t of Object.values(saturate)) await maxThroughput(t.send, MAX_CONCURRENCY, WARMUP, 5_000);

    const names = Object.keys(targets) as Array<keyof typeof targets>;
    const raw = Object.fromEntries(names.map((n) => [n, { latencies: [] as number[], errors: 0, count: 0, cpuUs: 0 }]));
    const done = Object.fromEntries(names.map((n) => [n, { count: 0, seconds: 0, errors: 0, cpuUs: 0 }]));
    // The server process whose CPU each target costs (direct: the upstream itself).
    const serverOf = { direct: upstream, proxy, warden };
    for (let i = 0; i < SLICES; i++) {
      for (const name of names) {
        const cpu0 = await cpuMicros(serverOf[name]);
        const r = await fixedRateRaw(targets[name].send, RATE, RATE_SLICE_MS);
        raw[name]!.cpuUs += (await cpuMicros(serverOf[name])) - cpu0;
        raw[name]!.count += r.latencies.length + r.errors;
        raw[name]!.latencies.push(...r.latencies);
        raw[name]!.errors += r.errors;
      }
      for (const name of names) {
        const cpu0 = await cpuMicros(serverOf[name]);
        const t0 = performance.now();
        const r = await maxThroughput(saturate[name].send, MAX_CONCURRENCY, MAX_SLICE_COUNT, MAX_SLICE_MS);
        done[name]!.seconds += (performance.now() - t0) / 1000;
        done[name]!.cpuUs += (await cpuMicros(serverOf[name])) - cpu0;
        done[name]!.count += r.count;
        done[name]!.errors += r.errors;
      }
    }
    const lat = Object.fromEntries(names.map((n) => [n, summarize(raw[n]!.latencies, raw[n]!.errors)]));
    const tput = Object.fromEntries(names.map((n) => [n, { rps: done[n]!.count / done[n]!.seconds, errors: done[n]!.errors }]));
    for (const t of [...Object.values(targets), ...Object.values(saturate)]) await t.close();

    const d = lat.direct!;
    const p = lat.proxy!;
    const w = lat.warden!;
    const proxyAddedP50 = p.p50 - d.p50;
    const wardenAddedP50 = w.p50 - d.p50;
    const proxyAddedP99 = p.p99 - d.p99;
    const wardenAddedP99 = w.p99 - d.p99;
    const proxyCpu = done.proxy!.cpuUs / done.proxy!.count;
    const wardenCpu = done.warden!.cpuUs / done.warden!.count;
    return {
      'direct.p50_ms': round(d.p50),
      'direct.p99_ms': round(d.p99),
      'proxy.added_p50_ms': round(proxyAddedP50),
      'proxy.added_p99_ms': round(proxyAddedP99),
      'warden.added_p50_ms': round(wardenAddedP50),
      'warden.added_p99_ms': round(wardenAddedP99),
      'warden_over_proxy.overhead_ratio_p50': round(wardenAddedP50 / Math.max(proxyAddedP50, 0.001), 2),
      'direct.max_rps': Math.round(tput.direct!.rps),
      'proxy.max_rps': Math.round(tput.proxy!.rps),
      'warden.max_rps': Math.round(tput.warden!.rps),
      'warden_over_proxy.throughput_ratio': round(tput.warden!.rps / tput.proxy!.rps, 2),
      // CPU of the serving process per request (µs): what each hop costs, independent of how
      // much CPU the shared host leaves us.
      'warden_over_proxy.overhead_ratio_p99': round(wardenAddedP99 / Math.max(proxyAddedP99, 0.001), 2),
      // CPU of the serving process per request (µs), from its process.cpuUsage(): what each hop
      // costs, independent of how much CPU the shared host leaves us. At saturation (closed loop)
      // and at the fixed 500 requests/s of the latency figures.
      'proxy.cpu_us_per_request': Math.round(proxyCpu),
      'warden.cpu_us_per_request': Math.round(wardenCpu),
      'upstream.cpu_us_per_request': Math.round(done.direct!.cpuUs / done.direct!.count),
      'proxy.cpu_us_per_request_at_500rps': Math.round(raw.proxy!.cpuUs / raw.proxy!.count),
      'warden.cpu_us_per_request_at_500rps': Math.round(raw.warden!.cpuUs / raw.warden!.count),
      'warden_over_proxy.cpu_ratio': round(wardenCpu / proxyCpu, 2),
      // What one core could serve if the process had it to itself: 1 s / CPU per request. The
      // measured max_rps above depends on how the 2 shared cores are split with the generator.
      'proxy.cpu_capacity_rps_per_core': Math.round(1e6 / proxyCpu),
      'warden.cpu_capacity_rps_per_core': Math.round(1e6 / wardenCpu),
      'warden_over_proxy.cpu_capacity_ratio': round(proxyCpu / wardenCpu, 2),
      'warden.compiled': build ? 1 : 0,
      errors: d.errors + p.errors + w.errors + tput.direct!.errors + tput.proxy!.errors + tput.warden!.errors,
    };
  } finally {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  }
}
