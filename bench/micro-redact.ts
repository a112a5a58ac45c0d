/**
 * Focused harness for the redact and respond stages of the gateway benchmark: the same prompt
 * (a 4 KB templated system message and a short user message) and the same answer, through a
 * Redactor built as the runtime builds it (default configuration, findings cache on) and the
 * `internal` decision of the default policy (tokenize, re-identify). Prints the median µs of each
 * stage as the pipeline would see it, and of the pieces inside it (the system prompt's findings
 * cache hit, which is mostly its SHA-256; the scans of the user message and of the answer).
 *
 *   npx tsx bench/micro-redact.ts [iterations]
 *   COLD=1 npx tsx bench/micro-redact.ts 20000   caches evicted before each timed piece
 *
 * Runs the compiled build like micro-pipeline (tsx's transform slows closure-heavy code);
 * NO_BUILD=1 runs the sources through tsx instead.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { ChatMessage, CompletionResult, RedactionDecision } from '../src/pipeline/types.js';
import type * as RedactModule from '../src/redact/index.js';
import { buildWarden, fourKbPrompt, TICKET } from './gateway.js';

const build = process.env.NO_BUILD ? undefined : buildWarden();
const redact = (await import(build ? pathToFileURL(join(build, 'src', 'redact', 'index.js')).href : '../src/redact/index.js')) as typeof RedactModule;

/** The bench's system prompt: the gateway bench's ~4 KB of policy prose, then the secret the template places there. */
function systemPrompt(): string {
  return `${fourKbPrompt()}\nEscalation code: ESC-7731`;
}

/**
 * The rendered messages, built anew for each request as the template renderer builds them
 * (appending segments): a fresh string every time, as the findings cache and detectors see it.
 */
const SYSTEM_SEGMENTS = systemPrompt().match(/[^\n]{1,100}\n?/g)!;
const USER_SEGMENTS = ['Ticket ', 'T-4411', ':\n', TICKET];
function render(segments: readonly string[]): string {
  let s = '';
  for (const seg of segments) s += seg;
  return s;
}
function messages(): ChatMessage[] {
  return [
    { role: 'system', content: render(SYSTEM_SEGMENTS) },
    { role: 'user', content: render(USER_SEGMENTS) },
  ];
}
const ANSWER: CompletionResult = {
  id: 'cmpl-1',
  model: 'gpt-4o-mini',
  created: 0,
  choices: [{ index: 0, message: { role: 'assistant', content: 'Three bullet points.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1000, completion_tokens: 4, total_tokens: 1004 },
};
/** The default policy's decision for an `internal` template. */
const DECISION: RedactionDecision = { profile: 'standard', entities: [], mode: 'tokenize', modes: {}, reidentify: true, fail_open: false };

const count = Number(process.argv[2] ?? 50_000);
const redactor = redact.createRedactor({});
const plan = redactor.plan(DECISION);
const cache = redactor.findingsCache!;

/**
 * COLD=1: between requests, touch 8 MB of memory, as the rest of a request does (HTTP, JSON,
 * policy, audit: ~250 µs of other code and data in the gateway bench), so the redactor's code
 * and data are no longer in the CPU caches when the next request comes: the pipeline's regime.
 */
const COLD = process.env.COLD ? new Float64Array(1 << 20) : null;
function evict(): void {
  if (!COLD) return;
  for (let i = 0; i < COLD.length; i += 8) COLD[i]! += 1;
}
const samples: Record<string, number[]> = { redact: [], respond: [], 'cache hit(system)': [], 'scan(user message)': [], 'scan(answer)': [] };
let sink = 0;
function once(record: boolean): void {
  const msgs = messages();
  const userText = msgs[1]!.content as string;
  evict();
  let t = performance.now();
  // The redact stage: a session per request, then the prompt.
  const session = redactor.session(DECISION, []);
  const out = session.redactMessages(msgs);
  let u = performance.now();
  if (record) samples['redact']!.push((u - t) * 1000);
  evict();
  t = performance.now();
  const res = session.processCompletion(ANSWER);
  u = performance.now();
  if (record) samples['respond']!.push((u - t) * 1000);
  sink += out.length + res.choices.length;
  // The pieces: the system prompt's cache hit, a scan of the user message, and of the answer.
  evict();
  t = performance.now();
  sink += cache.scanPrompt(msgs[0]!.content as string, plan).findings.length;
  u = performance.now();
  if (record) samples['cache hit(system)']!.push((u - t) * 1000);
  evict();
  t = performance.now();
  sink += redactor.scanner.scan(userText, plan.scan).findings.length;
  u = performance.now();
  if (record) samples['scan(user message)']!.push((u - t) * 1000);
  evict();
  t = performance.now();
  sink += redactor.scanner.scan('Three bullet points.', plan.scan).findings.length;
  u = performance.now();
  if (record) samples['scan(answer)']!.push((u - t) * 1000);
}

for (let i = 0; i < 5000; i++) once(false);
const cpu0 = process.cpuUsage();
for (let i = 0; i < count; i++) once(true);
const cpu = process.cpuUsage(cpu0);
const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const what = COLD ? 'both stages, the pieces and the evictions' : 'both stages and the pieces';
process.stdout.write(`${count} iterations: ${((cpu.user + cpu.system) / count).toFixed(1)} CPU µs each (${what})\n`);
process.stdout.write(`median µs: ${Object.entries(samples).map(([k, xs]) => `${k} ${median(xs).toFixed(2)}`).join(', ')}\n`);
if (sink < 0) process.stdout.write('unreachable\n');
process.exit(0);
