/**
 * Streaming benchmark (DESIGN.md, "Performance targets": time to first token adds ≤ 1 ms; memory
 * per open stream ≤ 64 KB). On loopback, against an upstream that streams OpenAI
 * `chat.completion.chunk` SSE events (bench/streaming-upstream.ts: the first event at once, then
 * 50 small events 5 ms apart, then `[DONE]`), with Warden run from the compiled build in its own
 * process and the gateway benchmark's config (dev auth, default Rego policy, governed template
 * with a 4 KB prompt and one secret, redaction with its streaming hold-back, audit to a file):
 *
 * 1. TTFT added: time from sending the request to the first *content* byte the client sees,
 *    directly from the upstream and through Warden, interleaved, over a few hundred streams each
 *    started after the previous one's first content (and at a fixed pace, so the tails of ~5
 *    earlier streams still run, as on a live sidecar). The first upstream event ends at a word
 *    boundary, so the PII hold-back alone would release it at once; but the template places a
 *    secret, and a stream that guards one holds back a window (32 units here) whatever the text,
 *    so the first content comes a few events later. A second, smaller run starts the stream in
 *    the middle of a word ("Summ"). Both figures are mostly the hold-back's wait, not CPU. Then
 *    both again through a second Warden with `redaction.stream_secret_hold: prefix` (the hold
 *    before the window: only a tail that could begin the secret), labelled `_prefix_hold`.
 * 2. Memory per open stream: N streams held open through a fresh Warden (the upstream sends its
 *    first events, past the leak guard's window, then waits), the Warden process's RSS
 *    (/proc/<pid>/status VmRSS) and V8 heap (after a full GC) before and with the streams open,
 *    divided by N; then the streams are released and every one is checked to have finished with
 *    the whole content and `[DONE]`.
 *
 * Bounded: fixed stream counts, a timeout on every stream, about 50 s in all.
 *   npx tsx bench/streaming.ts
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { SseParser } from '../src/providers/sse.js';
import { buildWarden, directBody, startChild, stopChild, wardenBody, writeWardenSetup } from './gateway.js';
import { maxThroughput, percentile } from './stats.js';
import { EVENTS, EVERY_MS, expectedContent } from './streaming-upstream.js';

type Child = Awaited<ReturnType<typeof startChild>>;

/** Measured stream pairs (direct + Warden) for the TTFT, after WARMUP pairs not counted. */
const TTFT_PAIRS = 300;
const MIDWORD_PAIRS = 80;
const WARMUP_PAIRS = 40;
const WARMUP_STREAMS = 1_000;
const WARMUP_CONCURRENCY = 8;
/** Pairs of the same requests without `stream: true`, at the same pace, for comparison. */
const COMPLETE_PAIRS = 150;
/**
 * One pair started every PACE_MS: each stream lasts EVENTS × EVERY_MS (~250 ms), so about five
 * earlier streams per target are still running when the next one starts. Waiting for each
 * stream to end would take 300 × 250 ms per target, too long for one `npm run bench`.
 */
const PACE_MS = 50;
/** Concurrent open streams for the memory figure, each through a fresh Warden. */
const OPEN_COUNTS = [200, 1000];
/** Streams run to the end before the baseline, so connection pools and code paths are warm. */
const MEMORY_WARMUP = 50;
/** No stream, held or not, may take longer than this. */
const STREAM_TIMEOUT_MS = 20_000;

const PATH = '/v1/chat/completions';
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer app-token' };
const EXPECTED = expectedContent();

interface StreamResult {
  status: number;
  /** ms from the send to the first event with non-empty delta content; NaN when none came. */
  ttftMs: number;
  /** The text of that first content delta. */
  first: string;
  content: string;
  done: boolean;
  error?: string;
}

/**
 * Sends one streaming request and reads its SSE events. `first` settles with the TTFT as soon
 * as the first content arrives (NaN if the stream ends or fails without any); `done` with the
 * whole result. Neither rejects.
 */
function openStream(pool: Pool, body: string): { first: Promise<number>; done: Promise<StreamResult> } {
  let onFirst!: (ms: number) => void;
  const first = new Promise<number>((r) => (onFirst = r));
  const out: StreamResult = { status: 0, ttftMs: NaN, first: '', content: '', done: false };
  const t0 = performance.now();
  const done = (async () => {
    try {
      const res = await pool.request({ path: PATH, method: 'POST', headers: HEADERS, body, signal: AbortSignal.timeout(STREAM_TIMEOUT_MS) });
      out.status = res.statusCode;
      const decoder = new TextDecoder();
      const parser = new SseParser();
      for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
        for (const ev of parser.push(decoder.decode(bytes, { stream: true }))) {
          if (ev.data === '[DONE]') {
            out.done = true;
            continue;
          }
          const chunk = JSON.parse(ev.data) as { choices?: Array<{ delta?: { content?: string | null } }> };
          const c = chunk.choices?.[0]?.delta?.content;
          if (typeof c !== 'string' || c.length === 0) continue;
          if (out.content.length === 0) {
            out.ttftMs = performance.now() - t0;
            out.first = c;
            onFirst(out.ttftMs);
          }
          out.content += c;
        }
      }
    } catch (err) {
      out.error = err instanceof Error ? err.message : String(err);
    }
    onFirst(out.ttftMs);
    return out;
  })();
  return { first, done };
}

/**
 * The same request without `stream: true`: `first` settles with the time to the whole answer,
 * the figure the pipeline's own cost is read from (as in the gateway benchmark).
 */
function oneShot(pool: Pool, body: string): { first: Promise<number>; done: Promise<StreamResult> } {
  const t0 = performance.now();
  const done = (async () => {
    const out: StreamResult = { status: 0, ttftMs: NaN, first: '', content: '', done: false };
    try {
      const res = await pool.request({ path: PATH, method: 'POST', headers: HEADERS, body, signal: AbortSignal.timeout(STREAM_TIMEOUT_MS) });
      out.status = res.statusCode;
      const json = (await res.body.json()) as { choices?: Array<{ message?: { content?: string } }> };
      out.ttftMs = performance.now() - t0;
      out.content = out.first = json.choices?.[0]?.message?.content ?? '';
      out.done = true;
    } catch (err) {
      out.error = err instanceof Error ? err.message : String(err);
    }
    return out;
  })();
  return { first: done.then((r) => r.ttftMs), done };
}

function complete(r: StreamResult): boolean {
  return r.status === 200 && r.done && r.content === EXPECTED && r.error === undefined;
}

async function control(upstream: Child, what: string): Promise<string> {
  const res = await request(`http://127.0.0.1:${upstream.port}/control/${what}`, { method: 'POST' });
  return res.body.text();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TtftRun {
  direct: number[];
  warden: number[];
  firstDirect: string;
  firstWarden: string;
  streams: number;
  incomplete: number;
}

/** Interleaved pairs, alternating which target goes first; every stream is checked at the end. */
async function ttftRun(
  direct: { pool: Pool; body: string },
  warden: { pool: Pool; body: string },
  pairs: number,
  open = openStream,
): Promise<TtftRun> {
  const run: TtftRun = { direct: [], warden: [], firstDirect: '', firstWarden: '', streams: 0, incomplete: 0 };
  const all: Array<{ name: 'direct' | 'warden'; measured: boolean; done: Promise<StreamResult> }> = [];
  const targets = [
    { t: direct, into: run.direct, name: 'direct' as const },
    { t: warden, into: run.warden, name: 'warden' as const },
  ];
  for (let i = 0; i < WARMUP_PAIRS + pairs; i++) {
    const start = performance.now();
    const order = i % 2 === 0 ? targets : [targets[1]!, targets[0]!];
    for (const { t, into, name } of order) {
      const s = open(t.pool, t.body);
      all.push({ name, measured: i >= WARMUP_PAIRS, done: s.done });
      const ms = await s.first;
      if (i >= WARMUP_PAIRS && Number.isFinite(ms)) into.push(ms);
    }
    const wait = start + PACE_MS - performance.now();
    if (wait > 0) await sleep(wait);
  }
  for (const { name, measured, done } of all) {
    const r = await done;
    run.streams++;
    if (!complete(r)) run.incomplete++;
    // What the client saw first, from the first measured stream of each target.
    if (measured && name === 'direct' && run.firstDirect === '') run.firstDirect = r.first;
    if (measured && name === 'warden' && run.firstWarden === '') run.firstWarden = r.first;
  }
  run.direct.sort((a, b) => a - b);
  run.warden.sort((a, b) => a - b);
  return run;
}

interface Memory {
  rssKb: number;
  heapKb: number;
}

/** A full GC in the Warden child (run with --expose-gc), its heap, then its RSS from /proc. */
async function wardenMemory(warden: Child): Promise<Memory> {
  const usage = await new Promise<Partial<NodeJS.MemoryUsage>>((resolveUsage) => {
    warden.proc.once('message', (m) => resolveUsage(m as Partial<NodeJS.MemoryUsage>));
    warden.proc.send('mem');
  });
  const status = readFileSync(`/proc/${String(warden.proc.pid)}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return {
    rssKb: rss ? Number(rss[1]) : NaN,
    // The tsx fallback's server answers with CPU usage only: no heap figure then.
    heapKb: typeof usage.heapUsed === 'number' ? usage.heapUsed / 1024 : NaN,
  };
}

interface MemoryRun {
  n: number;
  rssPerStreamKb: number;
  heapPerStreamKb: number;
  rssBeforeKb: number;
  opened: number;
  completed: number;
}

async function memoryRun(n: number, upstream: Child, config: string, build: string | undefined): Promise<MemoryRun> {
  const warden = await startChild('warden', config, ['--expose-gc'], build);
  const pool = new Pool(`http://127.0.0.1:${warden.port}`, { connections: n, pipelining: 1 });
  const body = streamingBody(wardenBody());
  try {
    await control(upstream, 'mode/paced');
    const warm = await Promise.all(Array.from({ length: MEMORY_WARMUP }, () => openStream(pool, body).done));
    if (!warm.every(complete)) throw new Error(`streaming bench: warm-up streams through Warden did not complete (${warm.find((r) => !complete(r))?.error ?? 'bad content'})`);
    await control(upstream, 'mode/hold');
    await sleep(200);
    const before = await wardenMemory(warden);
    const streams = Array.from({ length: n }, () => openStream(pool, body));
    const firsts = await Promise.all(streams.map((s) => s.first));
    const opened = firsts.filter(Number.isFinite).length;
    const open = await wardenMemory(warden);
    await control(upstream, 'release');
    const results = await Promise.all(streams.map((s) => s.done));
    return {
      n,
      rssPerStreamKb: (open.rssKb - before.rssKb) / n,
      heapPerStreamKb: (open.heapKb - before.heapKb) / n,
      rssBeforeKb: before.rssKb,
      opened,
      completed: results.filter(complete).length,
    };
  } finally {
    await control(upstream, 'release').catch(() => undefined);
    await control(upstream, 'mode/paced').catch(() => undefined);
    await pool.close();
    await stopChild(warden);
  }
}

/** The same request as the gateway benchmark's, with `stream: true`. */
function streamingBody(json: string): string {
  return JSON.stringify({ ...(JSON.parse(json) as object), stream: true });
}

/**
 * The gateway benchmark's config, with a provider pool large enough for every held stream to
 * have its own upstream connection (the default is 64; held streams beyond it would queue).
 */
function withLargePool(config: string): string {
  const text = readFileSync(config, 'utf8');
  const patched = text.replace(/kind: openai, /, `kind: openai, pool: { connections: ${Math.max(...OPEN_COUNTS)} }, `);
  if (patched === text) throw new Error('streaming bench: the gateway config has no openai provider line to size the pool on');
  writeFileSync(config, patched);
  return config;
}

/**
 * A sidecar that has served for a while has its hot paths compiled by V8: before measuring,
 * WARMUP_STREAMS streams whose events all come at once and as many plain requests go through
 * each target, WARMUP_CONCURRENCY at a time (about a second or two).
 */
async function warmUp(upstream: Child, targets: Array<{ pool: Pool; body: string }>): Promise<void> {
  await control(upstream, 'mode/burst');
  for (const t of targets) {
    const plain = JSON.stringify({ ...(JSON.parse(t.body) as object), stream: false });
    const streams = await maxThroughput(async () => complete(await openStream(t.pool, t.body).done), WARMUP_CONCURRENCY, WARMUP_STREAMS, 10_000);
    const whole = await maxThroughput(async () => complete(await oneShot(t.pool, plain).done), WARMUP_CONCURRENCY, WARMUP_STREAMS, 10_000);
    if (streams.errors + whole.errors > 0) throw new Error(`streaming bench: ${streams.errors + whole.errors} warm-up requests failed`);
  }
  await control(upstream, 'mode/paced');
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

/** The same setup with `redaction.stream_secret_hold: prefix` (and its own audit file), beside `config`. */
function withPrefixHold(config: string): string {
  const text = readFileSync(config, 'utf8');
  const patched = text.replace('{ file: audit.log }', '{ file: audit-prefix.log }');
  if (patched === text || /^redaction:/m.test(text)) throw new Error('streaming bench: the gateway config changed shape (audit sink, or a redaction section of its own)');
  const out = config.replace(/\.yaml$/, '-prefix.yaml');
  writeFileSync(out, `${patched}redaction: { stream_secret_hold: prefix }\n`);
  return out;
}

export async function runStreamingBench(): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-stream-'));
  const children: Child[] = [];
  const pools: Pool[] = [];
  try {
    const upstream = await startChild('stream-upstream');
    children.push(upstream);
    const config = withLargePool(writeWardenSetup(dir, upstream.port));
    const build = buildWarden();
    const warden = await startChild('warden', config, [], build);
    children.push(warden);

    const direct = { pool: new Pool(`http://127.0.0.1:${upstream.port}`, { connections: 32, pipelining: 1 }), body: streamingBody(directBody()) };
    const through = { pool: new Pool(`http://127.0.0.1:${warden.port}`, { connections: 32, pipelining: 1 }), body: streamingBody(wardenBody()) };
    pools.push(direct.pool, through.pool);
    for (const [name, t] of Object.entries({ direct, warden: through })) {
      const r = await openStream(t.pool, t.body).done;
      if (!complete(r)) throw new Error(`streaming bench: the first ${name} stream did not complete (status ${r.status}, ${r.error ?? 'bad content'})`);
    }

    await warmUp(upstream, [direct, through]);
    const ttft = await ttftRun(direct, through, TTFT_PAIRS);
    await control(upstream, 'mode/midword');
    const midword = await ttftRun(direct, through, MIDWORD_PAIRS);
    await control(upstream, 'mode/paced');
    const whole = await ttftRun(
      { pool: direct.pool, body: directBody() },
      { pool: through.pool, body: wardenBody() },
      COMPLETE_PAIRS,
      oneShot,
    );

    // The same two TTFT runs through a Warden that holds back only a tail that could begin the
    // secret (nothing here: the bench's text never begins it), for the trade-off's other side.
    const prefixWarden = await startChild('warden', withPrefixHold(config), [], build);
    children.push(prefixWarden);
    const throughPrefix = { pool: new Pool(`http://127.0.0.1:${prefixWarden.port}`, { connections: 32, pipelining: 1 }), body: through.body };
    pools.push(throughPrefix.pool);
    await warmUp(upstream, [throughPrefix]);
    const ttftPrefix = await ttftRun(direct, throughPrefix, TTFT_PAIRS);
    await control(upstream, 'mode/midword');
    const midwordPrefix = await ttftRun(direct, throughPrefix, MIDWORD_PAIRS);
    await control(upstream, 'mode/paced');
    await stopChild(prefixWarden);
    children.pop();

    await Promise.all(pools.map((p) => p.close()));
    pools.length = 0;
    await stopChild(warden);
    children.pop();

    const memory: MemoryRun[] = [];
    for (const n of OPEN_COUNTS) memory.push(await memoryRun(n, upstream, config, build));

    const p = (xs: number[], q: number) => percentile(xs, q);
    const out: Record<string, number> = {
      'ttft.direct_p50_ms': round(p(ttft.direct, 50)),
      'ttft.warden_p50_ms': round(p(ttft.warden, 50)),
      ttft_added_p50_ms: round(p(ttft.warden, 50) - p(ttft.direct, 50)),
      ttft_added_p99_ms: round(p(ttft.warden, 99) - p(ttft.direct, 99)),
      // The first delta the client sees: the upstream's first event, whole (see the note printed).
      'ttft.first_delta_chars_direct': ttft.firstDirect.length,
      'ttft.first_delta_chars_warden': ttft.firstWarden.length,
      ttft_streams_measured: ttft.direct.length + ttft.warden.length,
      // First event ending mid-word: the hold-back waits for the next event (EVERY_MS later).
      ttft_added_midword_p50_ms: round(p(midword.warden, 50) - p(midword.direct, 50)),
      ttft_added_midword_p99_ms: round(p(midword.warden, 99) - p(midword.direct, 99)),
      'ttft.first_delta_chars_warden_midword': midword.firstWarden.length,
      // The same through `stream_secret_hold: prefix`.
      ttft_added_p50_ms_prefix_hold: round(p(ttftPrefix.warden, 50) - p(ttftPrefix.direct, 50)),
      ttft_added_p99_ms_prefix_hold: round(p(ttftPrefix.warden, 99) - p(ttftPrefix.direct, 99)),
      'ttft.first_delta_chars_warden_prefix_hold': ttftPrefix.firstWarden.length,
      ttft_added_midword_p50_ms_prefix_hold: round(p(midwordPrefix.warden, 50) - p(midwordPrefix.direct, 50)),
      ttft_added_midword_p99_ms_prefix_hold: round(p(midwordPrefix.warden, 99) - p(midwordPrefix.direct, 99)),
      'ttft.first_delta_chars_warden_midword_prefix_hold': midwordPrefix.firstWarden.length,
      // The same requests without streaming, same pace: latency Warden adds to a whole answer.
      // TTFT added minus this is what the streaming path itself costs before the first byte.
      'nonstream.added_p50_ms': round(p(whole.warden, 50) - p(whole.direct, 50)),
      'nonstream.added_p99_ms': round(p(whole.warden, 99) - p(whole.direct, 99)),
    };
    for (const m of memory) {
      out[`memory_per_stream_kb_n${m.n}`] = round(m.rssPerStreamKb, 1);
      out[`heap_per_stream_kb_n${m.n}`] = round(m.heapPerStreamKb, 1);
      out[`memory.rss_before_mb_n${m.n}`] = round(m.rssBeforeKb / 1024, 1);
      out[`memory.streams_completed_n${m.n}`] = m.completed;
    }
    out.incomplete_streams =
      ttft.incomplete + midword.incomplete + whole.incomplete + ttftPrefix.incomplete + midwordPrefix.incomplete + memory.reduce((s, m) => s + (m.n - m.opened) + (m.n - m.completed), 0);
    out['warden.compiled'] = build ? 1 : 0;
    process.stdout.write(
      `streaming: upstream sends ${EVENTS} events ${EVERY_MS} ms apart; first content delta seen ` +
        `directly ${JSON.stringify(ttft.firstDirect)}, through Warden ${JSON.stringify(ttft.firstWarden)} ` +
        `(the upstream's first event ends at a word boundary; the leak guard's window holds it back); when the first ` +
        `event ends mid-word, Warden's first delta is ${JSON.stringify(midword.firstWarden)} ` +
        `(held back likewise), directly ${JSON.stringify(midword.firstDirect)}; with stream_secret_hold: prefix, ` +
        `${JSON.stringify(ttftPrefix.firstWarden)} and ${JSON.stringify(midwordPrefix.firstWarden)}\n`,
    );
    return out;
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const started = Date.now();
  const r = await runStreamingBench();
  for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(40)} ${v}\n`);
  process.stdout.write(`(${Math.round((Date.now() - started) / 1000)} s)\n`);
}
