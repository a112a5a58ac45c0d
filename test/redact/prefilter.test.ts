/**
 * The prefilter may only skip a detector that could not have found anything: each built-in
 * detector's condition (`mayMatch`) must hold on every text where the detector, called directly,
 * finds something; and a scan gives the same findings with and without the prefilter, on the
 * evaluation corpora, on hand-picked cases at each condition's threshold, and on seeded random
 * texts built around those thresholds.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BUILTIN_ENTITIES, createRedactor } from '../../src/redact/index.js';
import { BECH32_CHARSET, bech32Polymod } from '../../src/redact/entities/crypto.js';
import { scanDigits } from '../../src/redact/entities/digit-runs.js';
import { builtinDetectors } from '../../src/redact/entities/index.js';
import { fold } from '../../src/redact/normalize.js';
import { PREFILTER_MAX_CHARS, textTraits, type TextTraits } from '../../src/redact/prefilter.js';
import { DEFAULT_PHONE_REGIONS } from '../../src/redact/redactor.js';
import type { DetectContext, Detector, Finding } from '../../src/redact/types.js';
import { generateRedactCorpus } from '../../scripts/gen-redact-corpus.js';
import { loadPresidio, PRESIDIO_PATH } from '../../scripts/eval-redact.js';
import { mulberry32 } from '../../scripts/lib/prng.js';

const ALL = new Set(BUILTIN_ENTITIES);
/** Without URL, a container that would win over what it holds (credentials, emails). */
const NO_URL = new Set(BUILTIN_ENTITIES.filter((e) => e !== 'URL'));
const redactor = createRedactor({});
const detectors = builtinDetectors();

/** What a detector finds in `text` (folded, as the scanner gives it), called directly. */
function detect(d: Detector, text: string, traits: TextTraits | null): Finding[] {
  let digits: ReturnType<typeof scanDigits> | null = null;
  const ctx: DetectContext = {
    wants: () => true,
    phoneRegions: DEFAULT_PHONE_REGIONS,
    digitChunks: () => (digits ??= scanDigits(text)).chunks,
    digitScan: () => (digits ??= scanDigits(text)),
    // Every context word present: the phone detector's context rule runs wherever it can.
    contextBefore: () => true,
    phoneValidations: () => new Map(),
    traits,
  };
  const out: Finding[] = [];
  d.detect(text, ctx, out);
  return out;
}

/** A scan's result in comparable form. */
function scanBothWays(text: string, from?: number, entities: ReadonlySet<string> = ALL): [unknown, unknown] {
  const opts = from === undefined ? { entities } : { entities, from };
  const on = redactor.scanner.scan(text, opts);
  const off = redactor.scanner.scan(text, { ...opts, prefilter: false });
  const form = (r: typeof on): unknown => ({ findings: r.findings, seen: [...r.seen].sort(), failures: r.failures });
  return [form(on), form(off)];
}

/** Per detector: texts where it found something, and where its condition failed. */
interface Tally {
  found: number;
  skipped: number;
}

/**
 * Checks every detector on `texts`: where it finds something (called directly, with the traits
 * in its context or without), its condition holds, and both calls find the same.
 */
function checkDetectors(texts: readonly string[], tally: Map<string, Tally>): void {
  for (const raw of texts) {
    const text = fold(raw).text;
    const traits = textTraits(text);
    for (const d of detectors) {
      const t = tally.get(d.name) ?? { found: 0, skipped: 0 };
      tally.set(d.name, t);
      const without = detect(d, text, null);
      const may = d.mayMatch ? d.mayMatch(traits) : true;
      if (!may) t.skipped++;
      if (without.length === 0) continue;
      t.found++;
      expect(may, `${d.name} skipped on ${JSON.stringify(raw)}`).toBe(true);
      expect(detect(d, text, traits), `${d.name} with traits on ${JSON.stringify(raw)}`).toEqual(without);
    }
  }
}

const corpus = generateRedactCorpus().map((c) => c.text);
const presidio = existsSync(PRESIDIO_PATH) ? (loadPresidio() ?? []).map((d) => d.text) : [];

/** A bech32 address ("bc1", the data, its checksum) for 5-bit `data` values. */
function bech32Address(data: number[]): string {
  const hrp = [...'bc'].map((c) => c.charCodeAt(0));
  const values = [...hrp.map((c) => c >> 5), 0, ...hrp.map((c) => c & 31), ...data, 0, 0, 0, 0, 0, 0];
  const pm = bech32Polymod(values) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (pm >> (5 * (5 - i))) & 31);
  return `bc1${[...data, ...checksum].map((v) => BECH32_CHARSET[v]).join('')}`;
}

/** Each detector's shortest or least likely positives, right at its condition's threshold. */
const THRESHOLD_CASES: Array<[string, string]> = [
  ['EMAIL_ADDRESS', 'a@b.co'],
  ['EMAIL_ADDRESS', 'ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ'],
  ['PHONE_NUMBER', 'call 030 1234567'], // a national number of 7+ digits
  ['PHONE_NUMBER', 'phone (415) 555-2671'],
  ['PHONE_NUMBER', 'tel +44 20 7946 0958'],
  ['PHONE_NUMBER', 'fax 415.555.2671 x12'],
  ['PHONE_NUMBER', 'call (４１５) ５５５-２６７１'],
  ['CREDIT_CARD', 'card 5018 0000 0009'], // Maestro, 12 digits
  ['CREDIT_CARD', 'visa 4111\n1111\n1111\n1111'],
  ['CREDIT_CARD', 'card ٤١١١١١١١١١١١١١١١'],
  ['US_SSN', 'ssn 536904399'],
  ['US_SSN', 'SSN 536-90-4399'],
  ['IBAN_CODE', 'NO9386011117947'], // 15 characters, the shortest IBAN
  ['IBAN_CODE', 'iban gb82west12345698765432'],
  ['IBAN_CODE', 'x,DE89 3704 0044 0532 0130 00'],
  ['IP_ADDRESS', '1.2.3.4'],
  ['IP_ADDRESS', 'host 2001:db8::1'],
  ['IP_ADDRESS', 'gw fe80::1 up'], // two colons
  ['IP_ADDRESS', 'ip ::ffff:10.0.0.1'],
  ['MAC_ADDRESS', '3C:22:FB:7A:01:9E'],
  ['MAC_ADDRESS', '3c-22-fb-7a-01-9e'],
  ['MAC_ADDRESS', 'nic 0000.0c12.3a4f'],
  ['URL', 'http://a.bc'],
  ['URL', 'www.example.org'],
  ['URL_CREDENTIALS', 'ftp://u:pw@host'],
  ['CRYPTO', 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq'],
  ['CRYPTO', `to ${bech32Address([0, 1, 2, 3, 4])}`], // 14 characters, the shortest
  ['CRYPTO', '3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy'],
  ['CRYPTO', '0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359'],
  ['DATE_OF_BIRTH', 'born 1.2.84'],
  ['DATE_OF_BIRTH', 'DOB: March 4, 1990'],
  ['SLACK_TOKEN', 'xoxb-1234567890'], // the shortest shaped token: 15 characters
  ['AWS_ACCESS_KEY_ID', 'AKIAIOSFODNN7EXAMPLE'],
  ['AWS_SECRET_ACCESS_KEY', 'aws wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
  ['AWS_SECRET_ACCESS_KEY', 'aws secret aB3/cD5+eF7/gH9+iJ2/kL4+mN6/pQ8+rS1/tU0x'],
  ['JWT', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
  ['PRIVATE_KEY', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC'],
  ['PASSWORD', 'pwd=Xk9#mQ2$vL7p'],
  ['PASSWORD', 'PASSWORD   : "Xk9#mQ2$vL7p"'],
  ['PASSWORD', "db_credentials' = Xk9#mQ2$vL7p"],
  ['PASSWORD', 'api-key := Xk9#mQ2$vL7p'],
  ['PASSWORD', 'Token => Xk9#mQ2$vL7p'],
  ['PASSWORD', 'passphrase:\tXk9#mQ2$vL7p'],
  ['PASSWORD', 'credential = Xk9#mQ2$vL7p'],
  // Percent-encoded: the decoded text's traits open the condition the text as written does not.
  ['EMAIL_ADDRESS', 'a%40b.co'],
  ['PHONE_NUMBER', 'tel=%2B44%2020%207946%200958'],
  ['CREDIT_CARD', 'card=5018%200000%200009'],
];

describe('textTraits', () => {
  it('counts what the conditions read', () => {
    const t = textTraits('Ticket T-4411:\nMy order T-4411 arrived, call 415-555 2671 or mail a@b.co.');
    expect(t).toMatchObject({ nonAscii: false, digits: 18, chunkDigits: 10, at: 1, colons: 1, keyAssignments: 0, digitDots: 0 });
    expect(textTraits('10.0.0.1 and 2.3')).toMatchObject({ digitDots: 4, chunkDigits: 5, digits: 7 });
    expect(textTraits('see https://x.org or www.y.org')).toMatchObject({ urlStarts: 2 });
    expect(textTraits('0000.0c12.3a4f')).toMatchObject({ quadDots: 1 });
    expect(textTraits('GB82 WEST and xGB82')).toMatchObject({ ibanStarts: 1 });
    expect(textTraits('my password = x, ratio 3:2')).toMatchObject({ keyAssignments: 1, colons: 1 });
    expect(textTraits('a_b+c/d-efgh ij')).toMatchObject({ longestRun: 12, dashes: 1 });
    expect(textTraits('４ é')).toMatchObject({ nonAscii: true, digits: 0 });
    // The characters next to the letters in ASCII ('@', '[', '`', '{') are not letters.
    expect(textTraits('ab@Z[z`A{yx')).toMatchObject({ at: 1, longestRun: 2 });
    expect(textTraits('AZaz09_+/-')).toMatchObject({ longestRun: 10, digits: 2, dashes: 1 });
  });
});

describe('prefilter conditions hold wherever a detector finds something', () => {
  it('on hand-picked cases at each threshold, each found with and without the prefilter', () => {
    const tally = new Map<string, Tally>();
    checkDetectors(THRESHOLD_CASES.map(([, text]) => text), tally);
    for (const [entity, text] of THRESHOLD_CASES) {
      const [on, off] = scanBothWays(text, undefined, entity === 'URL' ? ALL : NO_URL);
      expect(on, text).toEqual(off);
      const entities = (on as { findings: Finding[] }).findings.map((f) => f.entity);
      expect(entities, `${entity} in ${JSON.stringify(text)}`).toContain(entity);
    }
  });

  it('on the generated corpus and the Presidio set (when present), and skips detectors there', () => {
    const tally = new Map<string, Tally>();
    checkDetectors([...corpus, ...presidio], tally);
    for (const d of detectors) {
      const t = tally.get(d.name)!;
      // Meaningful on both sides: the detector finds things, and its condition does fail.
      expect(t.found, `${d.name} finds something`).toBeGreaterThan(10);
      expect(t.skipped, `${d.name} is skipped somewhere`).toBeGreaterThan(10);
    }
  });

  it('and scans give the same findings with and without the prefilter (corpora, every offset mode)', () => {
    for (const text of [...corpus, ...presidio]) {
      const [on, off] = scanBothWays(text);
      expect(on, text).toEqual(off);
    }
    for (const text of corpus.slice(0, 200)) {
      const from = Math.floor(text.length / 2);
      const [on, off] = scanBothWays(text, from);
      expect(on, text).toEqual(off);
    }
  });
});

/**
 * Random texts made of what the conditions count, next to real entity values: digit groups and
 * separators, key words and operators, hex, base58 and base64 runs, '@', "://", "www.", dots,
 * fullwidth digits and zero-width characters.
 */
function randomTexts(count: number, seed: number): string[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const values = generateRedactCorpus({ perEntity: 6, perLookalike: 3, perPhoneContext: 2 }).flatMap((c) =>
    c.spans.map((s) => c.text.slice(s.start, s.end)),
  );
  const words = [
    'password', 'pwd', 'token', 'api_key', 'secret', 'credentials', 'aws', 'born', 'dob', 'call', 'phone', 'card',
    'iban', 'www', 'http', 'https', 'bc1', '0x', 'GB', 'DE', 'NO', 'sk', 'ghp_', 'xoxb', 'AKIA', 'eyJ', 'order', 'a', 'bc',
    '-----BEGIN', 'PRIVATE', 'KEY', 'version', 'ticket',
  ];
  const seps = [' ', '', '', '\n', ', ', '-', '.', ':', '=', '@', '/', '//', '(', ')', '"', "'", '\t', '  ', '_', '+', ' : ', '://', '\u200b'];
  const run = (alphabet: string, lo: number, hi: number): string => {
    let s = '';
    const n = lo + Math.floor(rnd() * (hi - lo + 1));
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)]!;
    return s;
  };
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    let s = '';
    const parts = 1 + Math.floor(rnd() * 8);
    for (let p = 0; p < parts; p++) {
      const r = rnd();
      if (r < 0.3) s += run('0123456789', 1, 6);
      else if (r < 0.45) s += pick(words);
      else if (r < 0.6) s += pick(values);
      else if (r < 0.67) s += run('0123456789abcdefABCDEF', 2, 4);
      else if (r < 0.74) s += run('123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz', 10, 45);
      else if (r < 0.8) s += run('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 12, 44);
      else if (r < 0.86) s += run('０１２３４５６７８９', 1, 4);
      else s += run('abcdefghij', 1, 8);
      s += pick(seps);
    }
    out.push(s);
  }
  return out;
}

describe('prefilter on random texts around the thresholds', () => {
  const texts = randomTexts(4000, 20261125);

  it('never skips a detector that finds something', () => {
    const tally = new Map<string, Tally>();
    checkDetectors(texts, tally);
    // The generator reaches every detector (so the check above tested each of them).
    for (const d of detectors) expect(tally.get(d.name)!.found, d.name).toBeGreaterThan(0);
  });

  it('never changes a scan, short or past the length prefiltered', () => {
    expect(texts.slice(0, 30).join(' ').length).toBeGreaterThan(PREFILTER_MAX_CHARS + 16);
    // Random texts joined into ones around PREFILTER_MAX_CHARS, prefiltered or not by length.
    for (let i = 0; i + 30 < texts.length && i < 1500; i += 30) {
      const long = texts.slice(i, i + 30).join(' ').slice(0, PREFILTER_MAX_CHARS - 15 + (i % 31));
      const [on, off] = scanBothWays(long);
      expect(on, JSON.stringify(long)).toEqual(off);
    }
    for (const text of texts) {
      for (const entities of [ALL, NO_URL]) {
        const [on, off] = scanBothWays(text, undefined, entities);
        expect(on, JSON.stringify(text)).toEqual(off);
      }
    }
  });
});
