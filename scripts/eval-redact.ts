/**
 * Redaction evaluation: precision / recall / F1 per entity on
 *  (a) the structured entities of ../shared/pii-eval/presidio-synth-v2.json (or $WARDEN_PII_EVAL; when present), and
 *  (b) the generated corpus (scripts/gen-redact-corpus.ts, seeded), plus the false-positive rate
 *      on its look-alike set.
 *
 *   npm run eval:redact                      print the report
 *   npm run eval:redact -- --json            print it as JSON
 *   npm run eval:redact -- --write-baseline  also write test/redact/eval-baseline.json
 *
 * A prediction counts as a true positive when it overlaps an unmatched gold span of the same
 * entity type; each gold span is matched at most once.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { createRedactor, DEFAULT_PHONE_REGIONS, type WardenRedactor } from '../src/redact/index.js';
import { generateRedactCorpus } from './gen-redact-corpus.js';

const HERE = dirname(fileURLToPath(import.meta.url));
// A git worktree outside the main checkout's parent has no ../shared beside it: WARDEN_PII_EVAL
// names the file there (else the Presidio part is skipped, and so are the tests that read it).
export const PRESIDIO_PATH =
  process.env['WARDEN_PII_EVAL'] ?? resolve(HERE, '../../shared/pii-eval/presidio-synth-v2.json');
export const BASELINE_PATH = resolve(HERE, '../test/redact/eval-baseline.json');
export const PRESIDIO_ENTITIES = ['CREDIT_CARD', 'PHONE_NUMBER', 'EMAIL_ADDRESS', 'IBAN_CODE', 'US_SSN', 'IP_ADDRESS'];

export interface Score {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
}

interface Span {
  entity: string;
  start: number;
  end: number;
}

interface Doc {
  text: string;
  spans: Span[];
}

function finish(c: { tp: number; fp: number; fn: number }): Score {
  const precision = c.tp + c.fp === 0 ? 1 : c.tp / (c.tp + c.fp);
  const recall = c.tp + c.fn === 0 ? 1 : c.tp / (c.tp + c.fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  const r = (x: number): number => Math.round(x * 10000) / 10000;
  return { tp: c.tp, fp: c.fp, fn: c.fn, precision: r(precision), recall: r(recall), f1: r(f1) };
}

export function scoreDocs(
  redactor: WardenRedactor,
  docs: Doc[],
  entities: readonly string[],
  enabledFor: (doc: Doc) => ReadonlySet<string> = () => new Set(redactor.known),
): Record<string, Score> {
  const wanted = new Set(entities);
  const counts = new Map<string, { tp: number; fp: number; fn: number }>();
  for (const e of entities) counts.set(e, { tp: 0, fp: 0, fn: 0 });
  for (const doc of docs) {
    const predicted = redactor.scanner.scan(doc.text, { entities: enabledFor(doc) }).findings.filter((f) => wanted.has(f.entity));
    const gold = doc.spans.filter((s) => wanted.has(s.entity));
    const used = new Array<boolean>(gold.length).fill(false);
    for (const p of predicted) {
      const c = counts.get(p.entity)!;
      let hit = -1;
      for (let i = 0; i < gold.length; i++) {
        const s = gold[i]!;
        if (!used[i] && s.entity === p.entity && p.start < s.end && s.start < p.end) {
          hit = i;
          break;
        }
      }
      if (hit >= 0) {
        used[hit] = true;
        c.tp++;
      } else c.fp++;
    }
    gold.forEach((s, i) => {
      if (!used[i]) counts.get(s.entity)!.fn++;
    });
  }
  const out: Record<string, Score> = {};
  for (const [e, c] of counts) out[e] = finish(c);
  return out;
}

export interface PresidioReport {
  scores: Record<string, Score>;
  /** Gold phone values a strict (isValid) libphonenumber check rejects in every default region. */
  phoneStrictRejected: number;
  phoneTotal: number;
  /**
   * Gold phone values the default finds only through its context rule (a possible, not valid,
   * number after a phone word): found by the default, missed by `phoneValidation: valid-only`.
   */
  phoneContextRecovered: number;
  /**
   * Strictly rejected gold values found without the context rule all the same: a window inside
   * them is valid on its own ("+41 (0)96 471 07 95": "096 471 07 95" is a valid French number).
   */
  phoneStrictRejectedFoundWithoutRule: number;
  /** Strictly rejected gold values the default still misses (no phone word before them, or not possible). */
  phoneStrictRejectedMissed: number;
  /** Phone scores with `phoneValidation: valid-only` (no context rule), for comparison. */
  phoneValidOnly: Score;
  /** The same scores with `phoneValidation: possible` (explicitly loosened), for comparison. */
  phonePossible: Score;
}

interface PresidioRecord {
  full_text: string;
  spans: Array<{ entity_type: string; start_position: number; end_position: number; entity_value: string }>;
}

export function loadPresidio(path = PRESIDIO_PATH): Doc[] | null {
  if (!existsSync(path)) return null;
  const raw = JSON.parse(readFileSync(path, 'utf8')) as PresidioRecord[];
  return raw.map((r) => ({
    text: r.full_text,
    spans: r.spans.map((s) => ({ entity: s.entity_type, start: s.start_position, end: s.end_position })),
  }));
}

function strictPhoneValid(value: string): boolean {
  const v = value.replace(/\s*(?:x|ext\.?)\s*\d+$/i, '');
  if (/^\s*(?:\+|00)/.test(v)) return parsePhoneNumberFromString(v.replace(/^\s*00/, '+'))?.isValid() === true;
  return DEFAULT_PHONE_REGIONS.some((r) => parsePhoneNumberFromString(v, r as CountryCode)?.isValid() === true);
}

/** For every gold phone span (in document order): does a phone finding of `redactor` overlap it? */
function phoneGoldFound(redactor: WardenRedactor, docs: Doc[]): boolean[] {
  const found: boolean[] = [];
  const phone = new Set(['PHONE_NUMBER']);
  for (const d of docs) {
    const gold = d.spans.filter((s) => s.entity === 'PHONE_NUMBER');
    if (gold.length === 0) continue;
    const predicted = redactor.scanner.scan(d.text, { entities: phone }).findings;
    for (const s of gold) found.push(predicted.some((p) => p.entity === 'PHONE_NUMBER' && p.start < s.end && s.start < p.end));
  }
  return found;
}

export function evalPresidio(path = PRESIDIO_PATH): PresidioReport | null {
  const docs = loadPresidio(path);
  if (!docs) return null;
  const byDefault = createRedactor({});
  const validOnly = createRedactor({}, { phoneValidation: 'valid-only' });
  const scores = scoreDocs(byDefault, docs, PRESIDIO_ENTITIES);
  const loose = scoreDocs(createRedactor({ phoneValidation: 'possible' }), docs, ['PHONE_NUMBER']);
  const strictOnly = scoreDocs(validOnly, docs, ['PHONE_NUMBER']);
  const foundByDefault = phoneGoldFound(byDefault, docs);
  const foundValidOnly = phoneGoldFound(validOnly, docs);
  let phoneTotal = 0;
  let phoneStrictRejected = 0;
  let phoneStrictRejectedMissed = 0;
  let phoneStrictRejectedFoundWithoutRule = 0;
  for (const d of docs) {
    for (const s of d.spans) {
      if (s.entity !== 'PHONE_NUMBER') continue;
      const i = phoneTotal++;
      if (!strictPhoneValid(d.text.slice(s.start, s.end))) {
        phoneStrictRejected++;
        if (!foundByDefault[i]) phoneStrictRejectedMissed++;
        if (foundValidOnly[i]) phoneStrictRejectedFoundWithoutRule++;
      }
    }
  }
  const phoneContextRecovered = foundByDefault.filter((f, i) => f && !foundValidOnly[i]).length;
  return {
    scores,
    phoneStrictRejected,
    phoneTotal,
    phoneContextRecovered,
    phoneStrictRejectedMissed,
    phoneStrictRejectedFoundWithoutRule,
    phoneValidOnly: strictOnly['PHONE_NUMBER']!,
    phonePossible: loose['PHONE_NUMBER']!,
  };
}

export interface CorpusReport {
  scores: Record<string, Score>;
  lookalikes: { total: number; withFindings: number; rate: number; byFamily: Record<string, number> };
  /**
   * The phone context rule's own samples: possible-only numbers after a phone word (found by the
   * default; by `valid-only` for comparison) and look-alikes after a phone word and an identifier
   * word (part of `lookalikes` too).
   */
  phoneContext: { possibleTotal: number; possibleFound: number; possibleFoundValidOnly: number; lookalikeTotal: number; lookalikeWithFindings: number };
}

export function evalCorpus(): CorpusReport {
  const records = generateRedactCorpus();
  const redactor = createRedactor({});
  const entities = [...new Set(records.flatMap((r) => r.spans.map((s) => s.entity)))].sort();
  const positives = records.filter((r) => r.kind !== 'lookalike');
  const all = new Set(redactor.known);
  // URL is a container (a URL masks what it holds, credentials included), so URL is enabled
  // only for the URL samples: every other entity is scored as the standard profile sees it.
  const withoutUrl = new Set([...all].filter((e) => e !== 'URL'));
  const scores = scoreDocs(redactor, positives, entities, (d) => (d.spans.some((s) => s.entity === 'URL') ? all : withoutUrl));
  const byFamily: Record<string, number> = {};
  let withFindings = 0;
  const look = records.filter((r) => r.kind === 'lookalike');
  for (const r of look) {
    const f = redactor.scanner.scan(r.text, { entities: all }).findings;
    if (f.length > 0) {
      withFindings++;
      byFamily[r.family] = (byFamily[r.family] ?? 0) + 1;
    }
  }
  const phone = new Set(['PHONE_NUMBER']);
  const validOnly = createRedactor({}, { phoneValidation: 'valid-only' });
  const possibleSamples = positives.filter((r) => r.context === 'phone');
  const foundBy = (red: WardenRedactor): number =>
    possibleSamples.filter((r) => {
      const s = r.spans[0]!;
      return red.scanner.scan(r.text, { entities: phone }).findings.some((f) => f.start < s.end && s.start < f.end);
    }).length;
  const phoneLook = look.filter((r) => r.context === 'phone');
  const phoneContext = {
    possibleTotal: possibleSamples.length,
    possibleFound: foundBy(redactor),
    possibleFoundValidOnly: foundBy(validOnly),
    lookalikeTotal: phoneLook.length,
    lookalikeWithFindings: phoneLook.filter((r) => redactor.scanner.scan(r.text, { entities: all }).findings.length > 0).length,
  };
  return {
    scores,
    phoneContext,
    lookalikes: { total: look.length, withFindings, rate: Math.round((withFindings / look.length) * 10000) / 10000, byFamily },
  };
}

export interface EvalBaseline {
  presidio: Record<string, { precision: number; recall: number; f1: number }> | null;
  corpus: Record<string, { precision: number; recall: number; f1: number }>;
  lookalikeFalsePositiveRate: number;
}

export function toBaseline(p: PresidioReport | null, c: CorpusReport): EvalBaseline {
  const strip = (s: Record<string, Score>): EvalBaseline['corpus'] =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, { precision: v.precision, recall: v.recall, f1: v.f1 }]));
  return { presidio: p ? strip(p.scores) : null, corpus: strip(c.scores), lookalikeFalsePositiveRate: c.lookalikes.rate };
}

function table(scores: Record<string, Score>): string {
  const rows = Object.entries(scores).map(
    ([e, s]) => `  ${e.padEnd(22)} P ${s.precision.toFixed(3)}  R ${s.recall.toFixed(3)}  F1 ${s.f1.toFixed(3)}  (tp ${s.tp}, fp ${s.fp}, fn ${s.fn})`,
  );
  return rows.join('\n');
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const p = evalPresidio();
  const c = evalCorpus();
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify({ presidio: p, corpus: c }, null, 2) + '\n');
  else {
    if (p) {
      process.stdout.write(`(a) presidio-synth-v2 (structured entities)\n${table(p.scores)}\n`);
      process.stdout.write(
        `  phone: ${p.phoneStrictRejected} of ${p.phoneTotal} gold values are rejected by strict validation (isValid) in every default region; ` +
          `${p.phoneStrictRejectedFoundWithoutRule} of them are found without the context rule (a valid number inside them), ` +
          `the context rule (possible number after a phone word) recovers ${p.phoneContextRecovered}, ${p.phoneStrictRejectedMissed} stay missed\n` +
          `  phone with phoneValidation=valid-only (no context rule): P ${p.phoneValidOnly.precision.toFixed(3)} R ${p.phoneValidOnly.recall.toFixed(3)} F1 ${p.phoneValidOnly.f1.toFixed(3)}\n` +
          `  phone with phoneValidation=possible (opt-in, looser): P ${p.phonePossible.precision.toFixed(3)} R ${p.phonePossible.recall.toFixed(3)} F1 ${p.phonePossible.f1.toFixed(3)}\n`,
      );
    } else process.stdout.write(`(a) ${PRESIDIO_PATH} not found: skipped\n`);
    process.stdout.write(`(b) generated corpus\n${table(c.scores)}\n`);
    process.stdout.write(
      `  look-alikes: ${c.lookalikes.withFindings} of ${c.lookalikes.total} with a finding (${(c.lookalikes.rate * 100).toFixed(2)}%) ${JSON.stringify(c.lookalikes.byFamily)}\n`,
    );
    const pc = c.phoneContext;
    process.stdout.write(
      `  phone context rule: ${pc.possibleFound} of ${pc.possibleTotal} possible-only numbers after a phone word found (valid-only: ${pc.possibleFoundValidOnly}); ` +
        `${pc.lookalikeWithFindings} of ${pc.lookalikeTotal} look-alikes after a phone word and an identifier word with a finding\n`,
    );
  }
  if (process.argv.includes('--write-baseline')) {
    writeFileSync(BASELINE_PATH, JSON.stringify(toBaseline(p, c), null, 2) + '\n');
    process.stdout.write(`baseline written to ${BASELINE_PATH}\n`);
  }
}
