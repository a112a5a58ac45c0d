/**
 * Differential check of two builds' redactors: the same findings (entity, span, score), masked
 * text and streamed output on many random inputs, for a change that must not change any result
 * (a speed-up of the detectors). Inputs: tables of short digit groups with assorted separators,
 * words and decimal amounts; lists of phone numbers in national and international formats;
 * mixed text (the PII corpus's sentences, the bench's prose, both of the above). Each is
 * scanned in seven configurations (default regions; `possible`; `valid-only`; a few region
 * lists, an unknown region among them), and about one in seven streamed in random small pieces.
 *
 * Build each tree as the bench does, then compare (exit status 1 on any difference):
 *
 *   npx tsc -p tsconfig.build.json --outDir /tmp/a --rootDir . && cp package.json /tmp/a/
 *   (the same for the other tree, into /tmp/b; link a node_modules beside or above both)
 *   npx tsx scripts/redact-diff.ts /tmp/a /tmp/b [cases=2000] [seed=1]
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mixedText } from '../bench/redact.js';
import type { CompletionChunk, RedactionDecision } from '../src/pipeline/types.js';
import type { RedactionConfig } from '../src/redact/types.js';
import type { RedactorOptions, WardenRedactor } from '../src/redact/index.js';
import { piiSentences } from './gen-redact-corpus.js';
import { mulberry32 } from './lib/prng.js';

type RedactModule = typeof import('../src/redact/index.js');
const load = async (build: string): Promise<RedactModule> => (await import(pathToFileURL(join(build, 'src', 'redact', 'index.js')).href)) as RedactModule;

if (process.argv.length < 4) {
  process.stderr.write('usage: npx tsx scripts/redact-diff.ts BUILD_A BUILD_B [cases] [seed]\n');
  process.exit(2);
}
const A = await load(process.argv[2]!);
const B = await load(process.argv[3]!);
const CASES = Number(process.argv[4] ?? 2000);
const rnd = mulberry32(Number(process.argv[5] ?? 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const int = (a: number, b: number): number => a + Math.floor(rnd() * (b - a + 1));
const dig = (n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += String(int(0, 9));
  return s;
};

const DECISION: RedactionDecision = { profile: 'standard', entities: [...A.BUILTIN_ENTITIES], modes: {}, mode: 'mask', reidentify: false, fail_open: false };
const CONFIGS: Array<[string, RedactionConfig, RedactorOptions]> = [
  ['default', {}, {}],
  ['possible', { phoneValidation: 'possible' }, {}],
  ['valid-only', {}, { phoneValidation: 'valid-only' }],
  ['FR', { phoneRegions: ['FR'] }, {}],
  ['US', { phoneRegions: ['US'] }, {}],
  ['GB-IN-BR', { phoneRegions: ['gb', 'IN', 'BR'] }, {}],
  ['DE-AT-CH-JP', { phoneRegions: ['DE', 'AT', 'CH', 'JP', 'XX'] }, {}],
];
const redactors = CONFIGS.map(([name, config, opts]) => ({
  name,
  a: A.createRedactor(config, { ...opts, findingsCache: false }),
  b: B.createRedactor(config, { ...opts, findingsCache: false }),
}));

const SEPS = [' ', ' ', ' ', '  ', '-', '.', '\n', ' | ', ', ', '\t', ' - ', '/', '(', ') ', ',', ' \n'];
const WORDS = ['call', 'tel:', 'phone', 'fax', 'order', 'ref', 'invoice no.', 'EUR', 'x', 'ext.', 'card', 'SSN', 'id', 'amount', ''];

/** A table of numbers: short digit groups, mostly spaces between, a word or an amount now and then. */
function table(): string {
  let s = '';
  const n = int(1, 120);
  const maxLen = pick([1, 2, 2, 3, 4, 5]);
  for (let i = 0; i < n; i++) {
    s += dig(int(1, maxLen));
    s += rnd() < 0.85 ? ' ' : pick(SEPS);
    if (rnd() < 0.03) s += pick(WORDS) + ' ';
    if (rnd() < 0.02) s += dig(int(1, 3)) + ',' + dig(2) + ' ';
  }
  return s;
}

function phone(): string {
  switch (int(0, 14)) {
    case 0: return `${dig(3)} ${dig(3)} ${dig(4)}`;
    case 1: return `(${int(2, 9)}${dig(2)}) ${int(2, 9)}${dig(2)}-${dig(4)}`;
    case 2: return `+1 ${int(2, 9)}${dig(2)} ${dig(3)} ${dig(4)}`;
    case 3: return `0${int(1, 9)} ${dig(2)} ${dig(2)} ${dig(2)} ${dig(2)}`;
    case 4: return `+33 ${int(1, 9)} ${dig(2)} ${dig(2)} ${dig(2)} ${dig(2)}`;
    case 5: return `0${int(1, 9)}${dig(int(1, 4))} ${dig(int(3, 8))}`;
    case 6: return `+49 ${dig(int(2, 4))} ${dig(int(4, 8))}`;
    case 7: return `00${int(1, 9)}${dig(int(0, 2))} ${dig(int(6, 11))}`;
    case 8: return `07${dig(3)} ${dig(6)}`;
    case 9: return `+44 ${int(1, 9)}${dig(3)} ${dig(6)}`;
    case 10: return `${int(6, 9)}${dig(9)}`;
    case 11: return `+91 ${int(6, 9)}${dig(4)} ${dig(5)}`;
    case 12: return `0${dig(int(1, 3))}-${dig(int(3, 4))}-${dig(4)}`;
    case 13: return `+${dig(int(1, 3))} ${dig(int(1, 4))} ${dig(int(3, 5))} ${dig(int(2, 5))}`;
    default: return `${dig(int(2, 4))} ${dig(int(2, 4))} ${dig(int(2, 4))} ${dig(int(2, 4))}`;
  }
}

function phoneList(): string {
  let s = '';
  const n = int(1, 25);
  for (let i = 0; i < n; i++) {
    s += phone();
    s += pick([' ', ' ', ' ', '\n', ', ', '; ', ' / ', ' x' + dig(int(1, 4)) + ' ', ',' + dig(2) + ' ', ' ' + dig(int(1, 3)) + ' ', ' call ', ' a ']);
  }
  return s;
}

function mixed(): string {
  const parts: string[] = [];
  const n = int(1, 12);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    parts.push(r < 0.3 ? pick(piiSentences(20, int(1, 1000))) : r < 0.55 ? phoneList() : r < 0.75 ? table() : mixedText(int(50, 600), int(1, 1e6)));
  }
  return parts.join(pick([' ', '\n', '. ', ' and ']));
}

const chunk = (content: string, finish: 'stop' | null): CompletionChunk => ({
  id: 'diff',
  model: 'm',
  created: 1,
  choices: [{ index: 0, delta: { content }, finish_reason: finish }],
});

async function* fromList<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

/** `text` streamed in pieces of the lengths in `pieces` (cycled); the text the client gets. */
async function streamed(r: WardenRedactor, text: string, pieces: readonly number[]): Promise<string> {
  const list: CompletionChunk[] = [];
  for (let i = 0, k = 0; i < text.length; k++) {
    const n = pieces[k % pieces.length]!;
    list.push(chunk(text.slice(i, i + n), null));
    i += n;
  }
  list.push(chunk('', 'stop'));
  let out = '';
  for await (const c of r.session(DECISION, []).processStream(fromList(list))) out += c.choices[0]?.delta.content ?? '';
  return out;
}

let diffs = 0;
let scans = 0;
let streams = 0;
let phones = 0;
const report = (what: string, name: string, text: string, a: string, b: string): void => {
  diffs++;
  if (diffs <= 5) process.stdout.write(`${what} differs (${name}): ${JSON.stringify(text).slice(0, 400)}\n  A ${a.slice(0, 300)}\n  B ${b.slice(0, 300)}\n`);
};
for (let c = 0; c < CASES; c++) {
  const kind = pick(['table', 'table', 'list', 'mixed']);
  const text = kind === 'table' ? table() : kind === 'list' ? phoneList() : mixed();
  for (const { name, a, b } of redactors) {
    if (name !== 'default' && rnd() < 0.6) continue;
    const fa = JSON.stringify(a.scanner.scan(text, a.plan(DECISION).scan).findings);
    const fb = JSON.stringify(b.scanner.scan(text, b.plan(DECISION).scan).findings);
    if (fa !== fb) report('findings', name, text, fa, fb);
    const ma = a.session(DECISION, []).redactText(text);
    const mb = b.session(DECISION, []).redactText(text);
    if (ma !== mb) report('masked text', name, text, ma, mb);
    scans++;
    phones += (ma.match(/PHONE_NUMBER/g) ?? []).length;
    if (rnd() < 0.15) {
      const pieces = Array.from({ length: 5 }, () => int(1, 7));
      const sa = await streamed(a, text, pieces);
      const sb = await streamed(b, text, pieces);
      if (sa !== sb) report('stream', name, text, sa, sb);
      streams++;
    }
  }
}
process.stdout.write(`${scans} scans (${phones} phone numbers masked), ${streams} streams: ${diffs} differences\n`);
process.exit(diffs === 0 ? 0 : 1);
