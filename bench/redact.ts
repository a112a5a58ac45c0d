/**
 * Redaction throughput and latency on mixed English text with every built-in entity enabled:
 * MB/s at 4 KB, 64 KB and 1 MB (growth must be linear), p50/p99 µs for a 4 KB prompt.
 *
 *   npx tsx bench/redact.ts
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILTIN_ENTITIES, createRedactor } from '../src/redact/index.js';
import type { RedactionDecision } from '../src/pipeline/types.js';
import { piiSentences } from '../scripts/gen-redact-corpus.js';

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

const DECISION: RedactionDecision = {
  profile: 'standard',
  entities: [...BUILTIN_ENTITIES],
  modes: {},
  mode: 'mask',
  reidentify: false,
  fail_open: false,
};

export async function runRedactBench(): Promise<Record<string, number>> {
  const redactor = createRedactor({});
  const results: Record<string, number> = {};
  const run = (text: string): void => {
    redactor.session(DECISION, []).redactMessages([{ role: 'user', content: text }]);
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
  // Distinct 4 KB prompts (different PII values), cycled.
  const prompts = Array.from({ length: 64 }, (_, k) => mixedText(4096, 100 + k));
  for (const p of prompts) run(p);
  const samples: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const text4k = prompts[i % prompts.length]!;
    const a = process.hrtime.bigint();
    run(text4k);
    samples.push(Number(process.hrtime.bigint() - a) / 1000);
  }
  samples.sort((a, b) => a - b);
  results['redact_4kb_p50_us'] = Math.round(samples[Math.floor(samples.length * 0.5)]! * 10) / 10;
  results['redact_4kb_p99_us'] = Math.round(samples[Math.floor(samples.length * 0.99)]! * 10) / 10;
  return results;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const r = await runRedactBench();
  for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(28)} ${v}\n`);
}
