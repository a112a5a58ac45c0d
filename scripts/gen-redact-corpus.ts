/**
 * Generates the redaction evaluation corpus deterministically (seeded PRNG): every entity's valid
 * forms in sentences with and without context, the obfuscations the normaliser must see through
 * (fullwidth digits, zero-width characters, spaced digits, groups split across lines), and
 * look-alikes that must never match (UUIDs, git SHAs, Unix timestamps in s and ms, order and
 * tracking numbers, versions, ISBNs, prices, dates, hex colours, base64 blobs).
 *
 *   npx tsx scripts/gen-redact-corpus.ts [out.jsonl]   (default: test/fixtures/redact/corpus.jsonl)
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keccak_256 } from '@noble/hashes/sha3';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
// The detectors' own alphabets and checksums: generated addresses are valid by the same definition.
import { B58_ALPHABET, BECH32_CHARSET, bech32Polymod } from '../src/redact/entities/crypto.js';
import { mod97 } from '../src/redact/entities/util.js';
import { mulberry32 } from './lib/prng.js';

export interface CorpusSpan {
  entity: string;
  start: number;
  end: number;
}

export interface CorpusRecord {
  /** `valid`, `obfuscated` or `lookalike`. */
  kind: 'valid' | 'obfuscated' | 'lookalike';
  /** What generated it (entity type or look-alike family). */
  family: string;
  text: string;
  spans: CorpusSpan[];
  /** `phone`: a sample of the phone context rule (a phone word before the value). */
  context?: 'phone';
}

class Gen {
  constructor(readonly rnd: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }
  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(this.int(0, 9));
    return s;
  }
  chars(alphabet: string, n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const HEX = '0123456789abcdef';

function luhnComplete(partial: string): string {
  let sum = 0;
  let double = true;
  for (let i = partial.length - 1; i >= 0; i--) {
    let d = partial.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return partial + String((10 - (sum % 10)) % 10);
}

function base58(buf: Buffer): string {
  let n = BigInt('0x' + (buf.toString('hex') || '0'));
  let s = '';
  while (n > 0n) {
    s = B58_ALPHABET[Number(n % 58n)] + s;
    n /= 58n;
  }
  for (const b of buf) {
    if (b === 0) s = '1' + s;
    else break;
  }
  return s;
}

function bech32Address(g: Gen): string {
  const hrp = 'bc';
  const data = [0];
  const prog = g.bytes(20);
  let acc = 0;
  let bits = 0;
  for (const b of prog) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      data.push((acc >> bits) & 31);
    }
  }
  if (bits > 0) data.push((acc << (5 - bits)) & 31);
  const exp = [...hrp].map((c) => c.charCodeAt(0) >> 5).concat([0], [...hrp].map((c) => c.charCodeAt(0) & 31));
  const pm = bech32Polymod(exp.concat(data, [0, 0, 0, 0, 0, 0])) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (pm >> (5 * (5 - i))) & 31);
  return hrp + '1' + data.concat(checksum).map((v) => BECH32_CHARSET[v]).join('');
}

function ethAddress(g: Gen): string {
  const hex = g.bytes(20).toString('hex');
  const hash = Buffer.from(keccak_256(hex)).toString('hex');
  let out = '';
  for (let i = 0; i < 40; i++) out += parseInt(hash[i]!, 16) >= 8 ? hex[i]!.toUpperCase() : hex[i]!;
  return '0x' + out;
}

function btcAddress(g: Gen): string {
  const payload = Buffer.concat([Buffer.from([g.pick([0, 5])]), g.bytes(20)]);
  const sum = createHash('sha256').update(createHash('sha256').update(payload).digest()).digest();
  return base58(Buffer.concat([payload, sum.subarray(0, 4)]));
}

// ----------------------------------------------------------------------------- valid values

type ValueGen = (g: Gen) => string;

const VALUES: Record<string, ValueGen> = {
  EMAIL_ADDRESS: (g) => {
    const first = g.pick(['john', 'maria', 'wei', 'fatima', 'olga', 'sam', 'li', 'noah', 'ana']);
    const last = g.pick(['smith', 'garcia', 'zhang', 'khan', 'ivanova', 'okafor', 'nguyen', 'berg']);
    const local = g.pick([`${first}.${last}`, `${first}${g.int(1, 99)}`, `${first}_${last}+news`, `${first[0]}${last}`]);
    const domain = g.pick(['example.com', 'mail.example.org', 'corp.co.uk', 'uni-berlin.de', 'startup.io']);
    return `${local}@${domain}`;
  },
  PHONE_NUMBER: (g) => {
    for (;;) {
      const region = g.pick(['US', 'GB', 'DE', 'FR', 'AU', 'CH', 'NL'] as CountryCode[]);
      const len = { US: 10, GB: 10, DE: 11, FR: 9, AU: 9, CH: 9, NL: 9 }[region as string]!;
      const nsn = String(g.int(1, 9)) + g.digits(len - 1);
      const p = parsePhoneNumberFromString(nsn, region);
      if (!p || !p.isValid()) continue;
      return g.rnd() < 0.5 ? p.formatInternational() : p.formatNational();
    }
  },
  CREDIT_CARD: (g) => {
    const [prefix, len] = g.pick([
      ['4', 16],
      ['4', 16],
      [String(g.int(51, 55)), 16],
      [String(g.int(2221, 2720)), 16],
      [g.pick(['34', '37']), 15],
      ['6011', 16],
      ['65', 16],
      ['36', 14],
    ] as Array<[string, number]>);
    const num = luhnComplete(prefix + g.digits(len - prefix.length - 1));
    const style = g.int(0, 2);
    if (style === 0) return num;
    const sep = style === 1 ? ' ' : '-';
    if (len === 15) return [num.slice(0, 4), num.slice(4, 10), num.slice(10)].join(sep);
    if (len === 14) return [num.slice(0, 4), num.slice(4, 10), num.slice(10)].join(sep);
    return num.match(/.{1,4}/g)!.join(sep);
  },
  US_SSN: (g) => {
    let area = g.int(1, 899);
    if (area === 666) area = 667;
    return `${String(area).padStart(3, '0')}-${String(g.int(1, 99)).padStart(2, '0')}-${String(g.int(1, 9999)).padStart(4, '0')}`;
  },
  IBAN_CODE: (g) => {
    const [cc, bban] = g.pick([
      ['DE', () => g.digits(18)],
      ['GB', () => g.chars(UPPER, 4) + g.digits(14)],
      ['FR', () => g.digits(10) + g.chars(UPPER + '0123456789', 11) + g.digits(2)],
      ['NL', () => g.chars(UPPER, 4) + g.digits(10)],
      ['ES', () => g.digits(20)],
      ['CH', () => g.digits(17)],
    ] as Array<[string, () => string]>);
    const b = bban();
    const check = String(98 - mod97(b + cc + '00')).padStart(2, '0');
    const iban = cc + check + b;
    return g.rnd() < 0.5 ? iban : iban.match(/.{1,4}/g)!.join(' ');
  },
  IP_ADDRESS: (g) => {
    if (g.rnd() < 0.6) return `${g.int(1, 223)}.${g.int(0, 255)}.${g.int(0, 255)}.${g.int(1, 254)}`;
    const groups = Array.from({ length: 8 }, () => g.int(0, 65535).toString(16));
    if (g.rnd() < 0.5) return groups.join(':');
    return `2001:db8:${groups[2]}::${groups[6]}:${groups[7]}`;
  },
  MAC_ADDRESS: (g) => {
    const parts = Array.from(g.bytes(6)).map((b) => b.toString(16).padStart(2, '0'));
    const s = parts.join(g.pick([':', '-']));
    return g.rnd() < 0.5 ? s.toUpperCase() : s;
  },
  URL: (g) =>
    `https://${g.pick(['www.example.com', 'shop.example.org', 'docs.acme.io'])}/${g.pick(['account', 'orders', 'u'])}/${g.chars(ALNUM, 8)}${g.pick(['', '?ref=mail', '#top'])}`,
  CRYPTO: (g) => g.pick([btcAddress, bech32Address, ethAddress])(g),
  DATE_OF_BIRTH: (g) => {
    const y = g.int(1940, 2005);
    const m = g.int(1, 12);
    const d = g.int(1, 28);
    const months = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
    return g.pick([
      `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`,
      `${String(m).padStart(2, '0')}/${String(d).padStart(2, '0')}/${y}`,
      `${d} ${months[m - 1]} ${y}`,
      `${months[m - 1]} ${d}, ${y}`,
    ]);
  },
  AWS_ACCESS_KEY_ID: (g) => 'AKIA' + g.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16),
  GITHUB_TOKEN: (g) => g.pick(['ghp_', 'gho_', 'ghs_']) + g.chars(ALNUM, 36),
  GITLAB_TOKEN: (g) => 'glpat-' + g.chars(ALNUM + '_-', 20),
  SLACK_TOKEN: (g) => `xoxb-${g.digits(11)}-${g.digits(12)}-${g.chars(ALNUM, 24)}`,
  STRIPE_SECRET_KEY: (g) => g.pick(['sk_live_', 'rk_live_', 'sk_test_']) + g.chars(ALNUM, 24),
  OPENAI_API_KEY: (g) => 'sk-proj-' + g.chars(ALNUM + '_-', 48),
  ANTHROPIC_API_KEY: (g) => 'sk-ant-api03-' + g.chars(ALNUM + '_-', 93) + 'AA',
  GOOGLE_API_KEY: (g) => 'AIza' + g.chars(ALNUM + '_-', 35),
  NPM_TOKEN: (g) => 'npm_' + g.chars(ALNUM, 36),
  JWT: (g) => {
    const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: g.digits(8), name: 'x', iat: g.int(1.6e9, 1.8e9) })}.${g.bytes(32).toString('base64url')}`;
  },
  PASSWORD: (g) => g.chars(ALNUM + '!#%&*?@^~', 10) + g.chars('0123456789', 2) + g.chars('!#%&*?', 1),
  AWS_SECRET_ACCESS_KEY: (g) => g.chars(UPPER, 4) + g.chars('abcdefghijklmnopqrstuvwxyz', 4) + g.chars('0123456789/+', 4) + g.chars(ALNUM + '/+', 28),
  URL_CREDENTIALS: (g) => `${g.pick(['admin', 'svc_app', 'deploy'])}:${g.chars(ALNUM, 12)}`,
  PRIVATE_KEY: (g) => {
    const body = g.bytes(180).toString('base64').match(/.{1,64}/g)!.join('\n');
    return `-----BEGIN ${g.pick(['RSA ', 'EC ', ''])}PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----`;
  },
};

/**
 * A phone number that is possible (right length) but not valid (unassigned range) in its region,
 * like Faker's `+1-984-182-…`: counted only after a phone context word.
 */
function possibleOnlyPhone(g: Gen): string {
  for (;;) {
    const region = g.pick(['US', 'GB', 'DE', 'FR', 'AU', 'CH', 'NL'] as CountryCode[]);
    const len = { US: 10, GB: 10, DE: 11, FR: 9, AU: 9, CH: 9, NL: 9 }[region as string]!;
    const nsn = String(g.int(1, 9)) + g.digits(len - 1);
    const p = parsePhoneNumberFromString(nsn, region);
    if (!p || p.isValid() || !p.isPossible()) continue;
    // An invalid number has no format of its own: international, grouped 3-3-rest by dashes
    // as Faker writes them (with spaces a window inside could be valid in another region, and
    // the sample would not need the context rule).
    const rest = String(p.nationalNumber);
    return `+${p.countryCallingCode}-${rest.slice(0, 3)}-${rest.slice(3, 6)}-${rest.slice(6)}`;
  }
}

const CONTEXT: Record<string, string[]> = {
  EMAIL_ADDRESS: ['Please email {} with the report.', 'Contact: {}', 'Send it to {} by Friday.', 'cc {} on the thread'],
  PHONE_NUMBER: ['Call me at {} after 5pm.', 'Phone: {}', 'my mobile is {}', 'Reach the desk on {} please.'],
  CREDIT_CARD: ['Card number {} expires 04/27.', 'Charge it to {} please', 'payment card: {}', 'I paid with {} yesterday'],
  US_SSN: ['SSN: {}', 'My social security number is {}.', 'ssn {} on file', 'Employee SSN {} (verified)'],
  IBAN_CODE: ['IBAN: {}', 'Please transfer to {} today.', 'account {} at the bank', 'Wire the funds to {}.'],
  IP_ADDRESS: ['Login from {} was blocked.', 'server ip {}', 'The client at {} timed out', 'host {} is down'],
  MAC_ADDRESS: ['Device MAC {} joined the network.', 'mac address: {}', 'NIC {} flapped'],
  URL: ['See {} for details.', 'Open this link: {}', 'website {}'],
  CRYPTO: ['Send 0.1 BTC to {} today.', 'wallet {}', 'My ETH address is {}.'],
  DATE_OF_BIRTH: ['Date of birth: {}', 'She was born on {}.', 'DOB {} (per passport)', 'patient born {}'],
  AWS_ACCESS_KEY_ID: ['aws_access_key_id = {}', 'use key {} for the bucket'],
  GITHUB_TOKEN: ['export GITHUB_TOKEN={}', 'token {} leaked in CI'],
  GITLAB_TOKEN: ['PRIVATE-TOKEN: {}', 'gitlab token {}'],
  SLACK_TOKEN: ['SLACK_BOT_TOKEN={}', 'bot token {}'],
  STRIPE_SECRET_KEY: ['stripe key {}', 'STRIPE_SECRET={}'],
  OPENAI_API_KEY: ['OPENAI_API_KEY={}', 'my key is {}'],
  ANTHROPIC_API_KEY: ['ANTHROPIC_API_KEY={}', 'claude key {}'],
  GOOGLE_API_KEY: ['maps key {}', 'GOOGLE_API_KEY={}'],
  NPM_TOKEN: ['//registry.npmjs.org/:_authToken={}', 'npm token {}'],
  JWT: ['Authorization: Bearer {}', 'session token {}'],
  PRIVATE_KEY: ['Here is the key:\n{}\nkeep it safe', '{}'],
  PASSWORD: ['db_password: {}', 'password={}', 'export API_KEY="{}"', 'client_secret => {}'],
  AWS_SECRET_ACCESS_KEY: ['aws_secret_access_key = {}', 'AWS secret key {} (rotate!)'],
  URL_CREDENTIALS: ['DATABASE_URL=postgres://{}@db.internal:5432/app', 'clone https://{}@git.example.com/repo.git', 'amqp via amqps://{}@mq.example.com'],
};

/** Entities with a context-free sentence too (detectable without context words). */
const NEUTRAL = ['The value {} was in the ticket.', 'Note: {} — see above.', '({})'];
const NEEDS_CONTEXT = new Set(['DATE_OF_BIRTH', 'PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'URL_CREDENTIALS']);

// ----------------------------------------------------------------------------- obfuscations

const ZW = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff'];

function fullwidth(s: string): string {
  return s.replace(/[0-9A-Za-z@.]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
}

const OBFUSCATE: Record<string, Array<(v: string, g: Gen) => string>> = {
  CREDIT_CARD: [
    (v) => fullwidth(v),
    (v, g) => v.replace(/\D/g, '').split('').join(g.pick(ZW)),
    (v) => v.replace(/\D/g, '').split('').join(' '),
    (v) => v.replace(/\D/g, '').match(/.{1,4}/g)!.join('\n'),
    (v) => v.replace(/\D/g, '').match(/.{1,4}/g)!.join('.'),
  ],
  US_SSN: [(v) => fullwidth(v), (v, g) => v.split('').join(g.pick(ZW))],
  PHONE_NUMBER: [(v) => fullwidth(v), (v, g) => v.split('').join(g.pick(ZW))],
  EMAIL_ADDRESS: [(v) => fullwidth(v), (v, g) => v.split('').join(g.pick(ZW))],
  IBAN_CODE: [(v) => fullwidth(v), (v) => v.replace(/ /g, '').match(/.{1,4}/g)!.join('\n')],
  IP_ADDRESS: [(v) => fullwidth(v)],
};

// ----------------------------------------------------------------------------- look-alikes

const LOOKALIKES: Record<string, ValueGen> = {
  uuid: (g) => [g.chars(HEX, 8), g.chars(HEX, 4), '4' + g.chars(HEX, 3), g.pick(['8', '9', 'a', 'b']) + g.chars(HEX, 3), g.chars(HEX, 12)].join('-'),
  git_sha: (g) => g.chars(HEX, 40),
  git_short_sha: (g) => g.chars(HEX, 7),
  unix_seconds: (g) => String(g.int(1_400_000_000, 1_900_000_000)),
  unix_millis: (g) => String(g.int(1_400_000_000, 1_900_000_000)) + g.digits(3),
  order_number: (g) =>
    g.pick([
      () => `#${g.int(100000, 99999999)}`,
      () => `${g.digits(3)}-${g.digits(7)}-${g.digits(7)}`,
      () => `ORD-${g.int(2019, 2026)}-${g.digits(6)}`,
      () => `PO${g.digits(8)}`,
      () => `order ${g.chars(UPPER, 2)}${g.digits(9)}`,
    ])(),
  tracking_number: (g) =>
    g.pick([
      () => `1Z${g.chars(UPPER + '0123456789', 16)}`,
      () => `9400 ${g.digits(4)} ${g.digits(4)} ${g.digits(4)} ${g.digits(4)} ${g.digits(2)}`,
      () => `${g.chars(UPPER, 2)}${g.digits(9)}${g.pick(['US', 'GB', 'DE', 'CN'])}`,
    ])(),
  version: (g) =>
    g.pick([
      () => `v${g.int(0, 20)}.${g.int(0, 40)}.${g.int(0, 99)}`,
      () => `${g.int(1, 20)}.${g.int(0, 40)}.${g.int(0, 20000)}.${g.int(0, 9)}`,
      () => `version ${g.int(1, 9)}.${g.int(0, 9)}.${g.int(0, 9)}-rc.${g.int(1, 5)}`,
      () => `${g.int(1, 9)}.${g.int(0, 99)}.${g.int(0, 99)}`,
    ])(),
  isbn: (g) => {
    const body = g.pick(['978', '979']) + g.digits(9);
    let sum = 0;
    for (let i = 0; i < 12; i++) sum += Number(body[i]) * (i % 2 === 0 ? 1 : 3);
    const full = body + String((10 - (sum % 10)) % 10);
    return g.rnd() < 0.5 ? `ISBN ${full}` : `${full.slice(0, 3)}-${full[3]}-${full.slice(4, 7)}-${full.slice(7, 12)}-${full[12]}`;
  },
  price: (g) =>
    g.pick([
      () => `$${g.int(1, 99)},${g.digits(3)}.${g.digits(2)}`,
      () => `€ ${g.int(1, 999)}.${g.digits(3)},${g.digits(2)}`,
      () => `USD ${g.int(1, 99)},${g.digits(3)},${g.digits(3)}.00`,
      () => `${g.int(1, 999)} ${g.digits(3)} kr`,
      () => `£${g.int(1, 9999)}.${g.digits(2)}`,
    ])(),
  date: (g) => {
    const y = g.int(1990, 2030);
    const m = String(g.int(1, 12)).padStart(2, '0');
    const d = String(g.int(1, 28)).padStart(2, '0');
    return g.pick([`${y}-${m}-${d}`, `${d}/${m}/${y}`, `${y}-${m}-${d}T${g.int(10, 23)}:${g.int(10, 59)}:00Z`, `${d}.${m}.${y}`, `March ${g.int(1, 28)}, ${y}`]);
  },
  ean_barcode: (g) => {
    const body = g.pick(['40', '41', '42', '43', '50', '76', '87']) + g.digits(10);
    let sum = 0;
    for (let i = 0; i < 12; i++) sum += Number(body[i]) * (i % 2 === 0 ? 1 : 3);
    return `${g.pick(['EAN', 'barcode', 'GTIN', 'EAN-13'])} ${body}${(10 - (sum % 10)) % 10}`;
  },
  hex_colour: (g) => g.pick([`#${g.chars(HEX, 6)}`, `#${g.chars(HEX, 3).toUpperCase()}`, `#${g.digits(6)}`]),
  base64_blob: (g) => g.bytes(g.int(24, 96)).toString('base64'),
};

const LOOKALIKE_SENTENCES = [
  'Reference {} in the changelog.',
  'Build {} passed all checks.',
  'The id is {}.',
  'see {} for more',
  'Value: {}',
];

/**
 * Look-alikes next to a phone word, but named by the identifier word right before them: the
 * phone context rule must not turn them into phone numbers ("Call reference 2024-0117-33").
 */
const LOOKALIKE_PHONE_CONTEXT_SENTENCES = [
  'Call reference {} for details.',
  'Please call about order {} today.',
  'Phone ticket {} was closed.',
  'Contact support with invoice {}.',
  'mobile build {} passed.',
  'Mobile app version {} released.',
];

function place(template: string, value: string): { text: string; start: number; end: number } {
  const i = template.indexOf('{}');
  return { text: template.slice(0, i) + value + template.slice(i + 2), start: i, end: i + value.length };
}

/**
 * `count` distinct sentences, each holding one valid value of a structured entity or secret in
 * context (for the benchmark's mixed text: distinct values, so no cache could flatter it).
 */
export function piiSentences(count: number, seed = 7): string[] {
  const g = new Gen(mulberry32(seed));
  const entities = Object.keys(VALUES).filter((e) => e !== 'PRIVATE_KEY');
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const entity = entities[i % entities.length]!;
    out.push(place(g.pick(CONTEXT[entity]!), VALUES[entity]!(g)).text);
  }
  return out;
}

export interface CorpusOptions {
  seed?: number;
  /** Valid samples per entity. */
  perEntity?: number;
  /** Look-alike samples per family. */
  perLookalike?: number;
  /** Extra look-alike samples per family next to a phone word (and a possible-only phone count). */
  perPhoneContext?: number;
}

export function generateRedactCorpus(opts: CorpusOptions = {}): CorpusRecord[] {
  const g = new Gen(mulberry32(opts.seed ?? 20261125));
  const perEntity = opts.perEntity ?? 60;
  const perLookalike = opts.perLookalike ?? 80;
  const out: CorpusRecord[] = [];
  for (const [entity, gen] of Object.entries(VALUES)) {
    for (let i = 0; i < perEntity; i++) {
      const value = gen(g);
      const templates = NEEDS_CONTEXT.has(entity) || i % 3 !== 0 ? CONTEXT[entity]! : NEUTRAL;
      const p = place(g.pick(templates), value);
      out.push({ kind: 'valid', family: entity, text: p.text, spans: [{ entity, start: p.start, end: p.end }] });
    }
    for (const ob of OBFUSCATE[entity] ?? []) {
      for (let i = 0; i < Math.ceil(perEntity / 6); i++) {
        const value = ob(gen(g), g);
        const p = place(g.pick(CONTEXT[entity]!), value);
        out.push({ kind: 'obfuscated', family: entity, text: p.text, spans: [{ entity, start: p.start, end: p.end }] });
      }
    }
  }
  for (const [family, gen] of Object.entries(LOOKALIKES)) {
    for (let i = 0; i < perLookalike; i++) {
      const p = place(g.pick(LOOKALIKE_SENTENCES), gen(g));
      out.push({ kind: 'lookalike', family, text: p.text, spans: [] });
    }
  }
  // The phone context rule, from a stream of its own so the samples above stay as they were:
  // possible-only numbers after a phone word must be found, look-alikes after a phone word and
  // an identifier word must not.
  const gc = new Gen(mulberry32((opts.seed ?? 20261125) + 1));
  const perPhoneContext = opts.perPhoneContext ?? 20;
  for (let i = 0; i < perPhoneContext * 2; i++) {
    const p = place(gc.pick(CONTEXT.PHONE_NUMBER!), possibleOnlyPhone(gc));
    out.push({ kind: 'valid', family: 'PHONE_NUMBER', context: 'phone', text: p.text, spans: [{ entity: 'PHONE_NUMBER', start: p.start, end: p.end }] });
  }
  for (const [family, gen] of Object.entries(LOOKALIKES)) {
    for (let i = 0; i < perPhoneContext; i++) {
      const p = place(gc.pick(LOOKALIKE_PHONE_CONTEXT_SENTENCES), gen(gc));
      out.push({ kind: 'lookalike', family, context: 'phone', text: p.text, spans: [] });
    }
  }
  return out;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const target = resolve(process.argv[2] ?? 'test/fixtures/redact/corpus.jsonl');
  const records = generateRedactCorpus();
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  process.stdout.write(`wrote ${records.length} records to ${target}\n`);
}
