/**
 * Redaction throughput and latency on mixed English text with every built-in entity enabled:
 * MB/s at 4 KB, 64 KB and 1 MB (growth must be linear), p50/p99 µs for a 4 KB prompt, and the
 * slowest of a few adversarial shapes (64 KB of a short unit repeated), and the CPU a streamed
 * answer costs per KB (mixed text, and a table of numbers).
 *
 * Throughput runs the same text again and again, so it is measured without the findings cache
 * (it is the scan's speed). The 4 KB latency uses the production redactor (cache on) with a
 * fresh text every time: the cost of a miss (digest + scan + insert). `redact_template_*` is a
 * template request (a fixed 4 KB system prompt and a fresh ~300-char user message), with and
 * without the cache.
 *
 * The redactor is the compiled build's, as Warden runs it (and as the gateway bench measures it):
 * through tsx, every closure a call makes also pays for tsx's naming wrapper, which put about 7 %
 * on mixed text and more on the worst shapes. Without a build it falls back to the sources.
 *
 *   npx tsx bench/redact.ts
 */
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUILTIN_ENTITIES } from '../src/redact/index.js';
import { buildWarden } from './gateway.js';
import type { CompletionChunk, RedactionDecision } from '../src/pipeline/types.js';
import { piiSentences } from '../scripts/gen-redact-corpus.js';
import { mulberry32 } from '../scripts/lib/prng.js';

const SENTENCES = [
  'The quarterly review covered revenue, churn and the hiring plan for the next two quarters.',
  'Please make sure the deployment checklist is complete before Friday afternoon.',
  'We discussed the migration of the billing service to the new cluster in detail.',
  'Customer feedback was mostly positive, although some users reported slow page loads.',
  'The team agreed to revisit the onboarding flow after the holidays, around January 12.',
  'Our support queue had 42 open tickets this morning and 7 of them were escalated.',
  'Version 3 of the API adds pagination, filtering and better error messages.',
  'She summarised the incident: a misconfigured load balancer dropped 3% of requests for 20 minutes.',
  'Remember to rotate the staging credentials and update the runbook accordingly.',
  'The design doc proposes caching user preferences at the edge to cut latency.',
];

/**
 * Deterministic mixed text: prose with one PII sentence in eight (every structured entity and
 * secret type in turn, each value distinct), sentences joined by spaces and line breaks.
 */
export function mixedText(bytes: number, seed = 7): string {
  const pii = piiSentences(Math.ceil(bytes / 80 / 8) + 8, seed);
  let out = '';
  let i = 0;
  let p = 0;
  while (out.length < bytes) {
    const s = i % 8 === 7 ? pii[p++ % pii.length]! : SENTENCES[(i * 7) % SENTENCES.length]!;
    out += s + (i % 5 === 4 ? '\n' : ' ');
    i++;
  }
  return out.slice(0, bytes);
}

/**
 * Short units that, repeated, make the slowest text for the detectors (see runRedactBench): runs
 * of digits, IBAN and IPv6 candidates, form values (`x=`, '+' read as a space), and lists of
 * phone-shaped numbers, each of which is validated (the slowest: a list of phone numbers is PII
 * through and through).
 */
const WORST_SHAPES = [
  '1 ',
  '1 2-',
  '(1) ',
  '12 ',
  '(555) 555-',
  '4111 ',
  'SSN 1',
  'fe80::',
  'DE89 ',
  'Jane Doe 555-0132 ',
  '1:',
  '::',
  'x=9 9 9 9 ',
  '9+9+9+9 ',
  'x=9+9+9+9 ',
  'a 415-555-2671 ',
  'a 12 34 56 78 ',
  // Numbers side by side with only spaces between: one long segment, each number read (a list of
  // any length is searched window by window, and a split that leaves a tail is searched again).
  '415 555 2671 415 555 0134 ',
  '06 12 34 56 78 ',
  // A finding in each reading of a format character (the spaced view), and a weak password
  // holding another finding: the merges of the readings must stay linear in the findings.
  'a@b.co\u200bx ',
  'password=a1:10.0.0.1 ',
  // A long form '+' chain: each '+' is judged once, not by reading the chain back again.
  'x=9+9+9+9+9+9+9+9+9+9+9+9+9 ',
  // The same run with spaces: 13 short groups, the most windows the phone detector reads in one
  // run (as slow at the session's start; the shorter shapes above never showed it).
  'x=9 9 9 9 9 9 9 9 9 9 9 9 9 ',
];

/**
 * Lists of distinct numbers with only spaces between, seeded: a contact list or a table of
 * numbers, every number of it read (group: one number's digit groups, `d` a random digit).
 */
const DISTINCT_LISTS: Array<[string, string]> = [
  ['a list of distinct "06 dd dd dd dd"', '06 dd dd dd dd'],
  ['a list of distinct "415 555 dddd"', '415 555 dddd'],
  ['a list of distinct "dd" groups', 'dd'],
];

function distinctList(group: string, bytes: number): string {
  const rnd = mulberry32(11);
  let out = '';
  while (out.length < bytes) out += `${group.replace(/d/g, () => String(Math.floor(rnd() * 10)))} `;
  return out.slice(0, bytes);
}

const DECISION: RedactionDecision = {
  profile: 'standard',
  entities: [...BUILTIN_ENTITIES],
  modes: {},
  mode: 'mask',
  reidentify: false,
  fail_open: false,
};

function medianP99(samples: number[]): [number, number] {
  samples.sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 10) / 10;
  return [round(samples[Math.floor(samples.length * 0.5)]!), round(samples[Math.floor(samples.length * 0.99)]!)];
}

/** The redaction module of the compiled build (see the header), or of the sources without one. */
async function redactModule(): Promise<{ module: typeof import('../src/redact/index.js'); compiled: boolean }> {
  const build = buildWarden();
  if (build === undefined) return { module: await import('../src/redact/index.js'), compiled: false };
  return { module: (await import(pathToFileURL(join(build, 'src', 'redact', 'index.js')).href)) as typeof import('../src/redact/index.js'), compiled: true };
}

export async function runRedactBench(): Promise<Record<string, number>> {
  const { module, compiled } = await redactModule();
  const { createRedactor } = module;
  const uncached = createRedactor({}, { findingsCache: false });
  const redactor = createRedactor({});
  const results: Record<string, number> = {};
  results['compiled'] = compiled ? 1 : 0;
  const run = (text: string, r = uncached): void => {
    r.session(DECISION, []).redactMessages([{ role: 'user', content: text }]);
  };
  for (const [name, size, minMs] of [
    ['4kb', 4096, 1500],
    ['64kb', 65536, 1500],
    ['1mb', 1 << 20, 2500],
  ] as Array<[string, number, number]>) {
    const text = mixedText(size);
    for (let i = 0; i < 20; i++) run(text); // warm up (JIT)
    let iters = 0;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    let t = t0;
    while (t - t0 < minMs) {
      run(text);
      iters++;
      t = performance.now();
    }
    const cpu = process.cpuUsage(c0);
    results[`redact_${name}_mb_per_s`] = Math.round(((size * iters) / ((t - t0) / 1000) / 1e6) * 10) / 10;
    // Per core: bytes per second of this process's CPU time (wall time suffers when the machine
    // is shared; CPU time is what one core delivers).
    results[`redact_${name}_mb_per_cpu_s`] = Math.round(((size * iters) / ((cpu.user + cpu.system) / 1e6) / 1e6) * 10) / 10;
  }
  // Worst cases: 64 KB of one short shape repeated, the shapes that keep the digit, phone, card,
  // IP and IBAN detectors busiest (tables of numbers, CSV, logs look like these). The figure is
  // the slowest shape's; a run of single digits was 0.4 MB per CPU-second before the card
  // detector read each window's issuer once.
  let worst = Number.POSITIVE_INFINITY;
  let worstUnit = '';
  // The shapes repeated, and lists of distinct phone-shaped numbers: repeated units would let the
  // phone detector's per-text validation cache answer every window after the first.
  const texts: Array<[string, string]> = WORST_SHAPES.map((unit) => [`${JSON.stringify(unit)} repeated`, unit.repeat(Math.ceil(65536 / unit.length)).slice(0, 65536)]);
  for (const [name, group] of DISTINCT_LISTS) texts.push([name, distinctList(group, 65536)]);
  for (const [name, text] of texts) {
    for (let i = 0; i < 3; i++) run(text);
    let iters = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < 200) {
      run(text);
      iters++;
    }
    const cpu = process.cpuUsage(c0);
    const rate = (65536 * iters) / ((cpu.user + cpu.system) / 1e6) / 1e6;
    if (rate < worst) {
      worst = rate;
      worstUnit = name;
    }
  }
  results['redact_worst_shape_mb_per_cpu_s'] = Math.round(worst * 10) / 10;
  process.stdout.write(`redact: the slowest shape is ${worstUnit}\n`);

  // Distinct 4 KB prompts (different PII values), cycled; a serial number in front makes every
  // text new to the findings cache, so each request pays a miss.
  const prompts = Array.from({ length: 64 }, (_, k) => mixedText(4096, 100 + k));
  const fresh = (i: number): string => `#${i} ${prompts[i % prompts.length]!}`;
  for (let i = 0; i < 500; i++) run(fresh(i), redactor);
  const samples: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const text4k = fresh(1000 + i);
    const a = process.hrtime.bigint();
    run(text4k, redactor);
    samples.push(Number(process.hrtime.bigint() - a) / 1000);
  }
  [results['redact_4kb_p50_us'], results['redact_4kb_p99_us']] = medianP99(samples);

  // A template request: the system prompt is the same 4 KB every time, the user message is new.
  const system = mixedText(4096, 99);
  const users = Array.from({ length: 64 }, (_, k) => mixedText(320, 500 + k));
  for (const [name, r] of [['nocache', uncached], ['cached', redactor]] as const) {
    const request = (i: number): void => {
      r.session(DECISION, []).redactMessages([
        { role: 'system', content: system },
        { role: 'user', content: `#${i} ${users[i % users.length]!}` },
      ]);
    };
    for (let i = 0; i < 500; i++) request(i);
    const xs: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const a = process.hrtime.bigint();
      request(1000 + i);
      xs.push(Number(process.hrtime.bigint() - a) / 1000);
    }
    [results[`redact_template_${name}_p50_us`], results[`redact_template_${name}_p99_us`]] = medianP99(xs);
  }

  // Streamed answers: 4 KB arriving in 3-character pieces (a token each), CPU ms per KB. Each
  // piece released is scanned with the window before it, so text the detectors find costly
  // (a table of numbers) costs far more streamed than whole; mixed text is the common case.
  const streamed: Array<[string, string]> = [
    ['mixed', mixedText(4096, 3)],
    ['numbers', distinctList('dd', 4096)],
  ];
  for (const [name, text] of streamed) {
    const pieces: CompletionChunk[] = [];
    for (let i = 0; i < text.length; i += 3) pieces.push(streamChunk(text.slice(i, i + 3), null));
    pieces.push(streamChunk('', 'stop'));
    const once = async (): Promise<void> => {
      const session = redactor.session({ ...DECISION, reidentify: true }, []);
      for await (const _ of session.processStream(fromList(pieces)));
    };
    for (let i = 0; i < 3; i++) await once();
    let iters = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < 1000 || iters < 3) {
      await once();
      iters++;
    }
    const cpu = process.cpuUsage(c0);
    results[`redact_stream_${name}_cpu_ms_per_kb`] = Math.round(((cpu.user + cpu.system) / 1000 / iters / 4) * 100) / 100;
  }
  return results;
}

function streamChunk(content: string, finish: 'stop' | null): CompletionChunk {
  return { id: 'chatcmpl-bench', model: 'gpt-4o-mini', created: 1, choices: [{ index: 0, delta: { content }, finish_reason: finish }] };
}

async function* fromList<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const r = await runRedactBench();
  for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(28)} ${v}\n`);
}
