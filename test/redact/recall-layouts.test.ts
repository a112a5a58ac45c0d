/**
 * Recall in the layouts numbers come in outside prose: lists (one per line, or several on one
 * line), CSV rows, `key:value` logs, `tel:` URIs and labels glued with a dash; and the Unicode
 * that hides digits or dots from the detectors. Each recall case sits next to the false
 * positives the old, stricter rules were there to prevent, which must stay out.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_ENTITIES, createRedactor } from '../../src/redact/index.js';
import { fold, percentDecodedWindows } from '../../src/redact/normalize.js';
import { resolveOverlaps } from '../../src/redact/scanner.js';
import { mulberry32 } from '../../scripts/lib/prng.js';
import { cuts, decision, streamedDeltas, wholeAnswer } from './helpers.js';

const redactor = createRedactor({});
/** The standard set (URL, a container that would win over what it holds, is strict-only). */
const STANDARD = new Set(BUILTIN_ENTITIES.filter((e) => e !== 'URL'));

function found(text: string): Array<[string, string]> {
  return redactor.scanner.scan(text, { entities: STANDARD }).findings.map((f) => [f.entity, text.slice(f.start, f.end)]);
}

function masked(text: string): string {
  return redactor.session(decision({ mode: 'mask' }), []).redactText(text);
}

describe('lists of SSNs: each one is found', () => {
  const cases: Array<[string, string[]]> = [
    ['536-22-1234\n536-22-1235\n536-22-1236', ['536-22-1234', '536-22-1235', '536-22-1236']],
    ['ssns 536-22-1234 536-22-1235', ['536-22-1234', '536-22-1235']],
    ['ssns: 536-22-1234, 536-22-1235', ['536-22-1234', '536-22-1235']],
    ['536-22-1234\t536-22-1235', ['536-22-1234', '536-22-1235']],
    ['SSN 536 22 1234\n536 22 1235', ['536 22 1234', '536 22 1235']],
    // A phone reading of the SSN and the year loses to the SSN: the year is masked with it.
    ['ssn 536-22-1234 2020', ['536-22-1234 2020']],
    ['(536-22-1234) (536-22-1235)', ['536-22-1234', '536-22-1235']],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want.map((v) => ['US_SSN', v]));
    });
  }

  it('an SSN after a card in a tab-separated row', () => {
    expect(found('x\t4111111111111111\t536-22-1234')).toEqual([
      ['CREDIT_CARD', '4111111111111111'],
      ['US_SSN', '536-22-1234'],
    ]);
  });

  it('the list is masked whole', () => {
    expect(masked('536-22-1234\n536-22-1235\n536-22-1236')).toBe('[US_SSN]\n[US_SSN]\n[US_SSN]');
  });

  // A 3-2-4 run glued to more digits by its own separator is part of a longer number.
  const longer = ['ref 1-536-22-1234', 'ref 536-22-1234-5', 'ref 12 536 22 1234', 'ref 536 22 1234 5678', 'ref 536.22.1234.1'];
  for (const text of longer) {
    it(`not an SSN inside a longer number: ${JSON.stringify(text)}`, () => {
      expect(found(text).filter(([e]) => e === 'US_SSN')).toEqual([]);
    });
  }
});

describe('numbers after a field separator or a label', () => {
  const cases: Array<[string, Array<[string, string]>]> = [
    [
      'alice,4111111111111111,536-22-1234,+14155552671',
      [['CREDIT_CARD', '4111111111111111'], ['US_SSN', '536-22-1234'], ['PHONE_NUMBER', '+14155552671']],
    ],
    ['alice,4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['4111111111111111,100', [['CREDIT_CARD', '4111111111111111']]],
    ['4111111111111111,12,2027', [['CREDIT_CARD', '4111111111111111']]],
    ['100,4111111111111111,536-22-1234', [['CREDIT_CARD', '4111111111111111'], ['US_SSN', '536-22-1234']]],
    ['card:4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['card_number:5555555555554444', [['CREDIT_CARD', '5555555555554444']]],
    ['SSN:536-22-1234', [['US_SSN', '536-22-1234']]],
    ['Phone:+14155552671', [['PHONE_NUMBER', '+14155552671']]],
    ['<a href="tel:+14155552671">call</a>', [['PHONE_NUMBER', '+14155552671']]],
    ['Host:192.168.10.20', [['IP_ADDRESS', '192.168.10.20']]],
    ['allow 10.0.0.1,192.168.1.1', [['IP_ADDRESS', '10.0.0.1'], ['IP_ADDRESS', '192.168.1.1']]],
    ['X-Forwarded-For: 203.0.113.7,198.51.100.2', [['IP_ADDRESS', '203.0.113.7'], ['IP_ADDRESS', '198.51.100.2']]],
    ['ip:2001:db8::8a2e:370:7334', [['IP_ADDRESS', '2001:db8::8a2e:370:7334']]],
    ['id:2001:db8::1', [['IP_ADDRESS', '2001:db8::1']]],
    ['alice,06 30 51 03 21,100', [['PHONE_NUMBER', '06 30 51 03 21']]],
    ['card-4111 1111 1111 1111', [['CREDIT_CARD', '4111 1111 1111 1111']]],
    ['SSN-536-22-1234', [['US_SSN', '536-22-1234']]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }

  it('a CSV export is masked field by field', () => {
    const csv = 'name,card,ssn,phone\nalice,4111111111111111,536-22-1234,+14155552671\nbob,5555555555554444,536-22-1235,+14155552672';
    expect(masked(csv)).toBe(
      'name,card,ssn,phone\nalice,[CREDIT_CARD],[US_SSN],[PHONE_NUMBER]\nbob,[CREDIT_CARD],[US_SSN],[PHONE_NUMBER]',
    );
  });

  // What the old rules were for: digits glued by ',', '.', ':' or '-' that are one number
  // (thousands, decimals, times, versions) or an identifier (a prefix glued with a dash).
  const oneNumberOrId = [
    'totals 1,234,567 and 12,345,678,901 and 123,456,789,012,345,678',
    'prices USD 12,345,678.00, € 4.500,00, 1.234.567,89 EUR and 4.111.111.111.111,11',
    'amounts 1234567,89 and 0,75 and 3,5% and 1 234 567,89 € and 12 345 678,90',
    // A thousands group then a long fraction: its digits after the dot pass Luhn as a Maestro card.
    'ratio 1,234.567890123456',
    'times 10:30:45 and 2024-01-15T10:30:00Z and 4111111111111111:30',
    'ids ORD-4111111111111111, INV-5555555555554444, case-536-22-1234, PROJ-4155552671',
    'uuid 550e8400-e29b-41d4-a716-446655440000 and sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'versions v1.2.3, rc.1, build.20240115.1234567, node:20.18.1',
    'coordinates 52.520008,13.404954 and 48.856613,2.352222',
    'groups 1:2:3:4:5:6:7:8:9 and Error:dead::beef',
  ];
  for (const text of oneNumberOrId) {
    it(`no finding: ${JSON.stringify(text.slice(0, 60))}`, () => {
      expect(found(text)).toEqual([]);
    });
  }

  it('an IPv4 tail inside an IPv6 address stays one finding', () => {
    expect(found('from ::ffff:192.168.10.20 today')).toEqual([['IP_ADDRESS', '::ffff:192.168.10.20']]);
  });
});

describe('a key ending in a digit, then a colon', () => {
  // "card1:", "ipv4:", "eth0:": a key that begins with a letter names the value after its colon,
  // whatever its last character. A colon after a number (a time, a ratio, a port) still glues.
  const cases: Array<[string, Array<[string, string]>]> = [
    ['card1:4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['cc2:5555555555554444 ssn_2:536-22-1234', [['CREDIT_CARD', '5555555555554444'], ['US_SSN', '536-22-1234']]],
    ['line2:+14155552671', [['PHONE_NUMBER', '+14155552671']]],
    ['ipv4:192.168.10.20', [['IP_ADDRESS', '192.168.10.20']]],
    ['mac:00:1A:2B:3C:4D:5E', [['MAC_ADDRESS', '00:1A:2B:3C:4D:5E']]],
    ['HWaddr:00:1a:2b:3c:4d:5e eth0:3C:22:FB:7A:01:9E', [['MAC_ADDRESS', '00:1a:2b:3c:4d:5e'], ['MAC_ADDRESS', '3C:22:FB:7A:01:9E']]],
    // Hex pairs after hex groups are the rest of an IPv6 address, not a MAC after a key.
    ['from 2001:db8:00:1a:2b:3c:4d:5e', [['IP_ADDRESS', '2001:db8:00:1a:2b:3c:4d:5e']]],
    ['gw fe80::21a:2bff:fe3c:4d5e', [['IP_ADDRESS', 'fe80::21a:2bff:fe3c:4d5e']]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }

  const noFinding = [
    'times 12:30:45, 23:59:59.4111111111111111, 2024-01-15T10:30:00Z, 16:9 and 1:2:3:4',
    'at 10:4111111111111111 and 4111:1111:1111:1111',
    'sha256:4155552671abcdef0123456789abcdef and md5:41111111111111119e3',
    'ports host1:8080 db2:5432 redis0:6379',
    'ab:00:1a:2b:3c:4d:5e and dead:00:1a:2b:3c:4d:5e',
  ];
  for (const text of noFinding) {
    it(`no finding: ${JSON.stringify(text)}`, () => {
      expect(found(text)).toEqual([]);
    });
  }
});

describe('numbers after a key and an equals sign (key=value text, URL query strings)', () => {
  const cases: Array<[string, Array<[string, string]>]> = [
    ['card=4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['card_number=5555555555554444', [['CREDIT_CARD', '5555555555554444']]],
    ['card1=4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['ssn=536-22-1234', [['US_SSN', '536-22-1234']]],
    ['ssn=536221234', [['US_SSN', '536221234']]],
    ['phone=+14155552671', [['PHONE_NUMBER', '+14155552671']]],
    ['phone=(415) 555-2671', [['PHONE_NUMBER', '(415) 555-2671']]],
    ['host=192.168.10.20', [['IP_ADDRESS', '192.168.10.20']]],
    ['btc=1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2', [['CRYPTO', '1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2']]],
    ['?card=4111111111111111&x=1', [['CREDIT_CARD', '4111111111111111']]],
    [
      '/pay?ssn=536-22-1234&card=4111111111111111&phone=+14155552671',
      [['US_SSN', '536-22-1234'], ['CREDIT_CARD', '4111111111111111'], ['PHONE_NUMBER', '+14155552671']],
    ],
    ['CARD="4111111111111111"', [['CREDIT_CARD', '4111111111111111']]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }

  it('a query string is masked value by value', () => {
    expect(masked('GET /pay?card=4111111111111111&ssn=536-22-1234&n=1')).toBe('GET /pay?card=[CREDIT_CARD]&ssn=[US_SSN]&n=1');
  });

  // Values that an equals sign now lets through to the detectors and that are still no entity:
  // ids named by their key, timestamps, versions, short numbers.
  const notPii = [
    '?id=4155552671&ref=415-555-2671&order=2024-0117-33',
    'ts=1700000000000&since=1699999999999',
    'version=20.18.1 build=20240115.1234567',
    'page=2&per_page=100&total=1234567',
    'ean=4006381333931 and upc=036000291452',
  ];
  for (const text of notPii) {
    it(`no finding: ${JSON.stringify(text)}`, () => {
      expect(found(text)).toEqual([]);
    });
  }
});

describe('percent-encoded values (URL query strings, form bodies, pasted logs)', () => {
  // %2B, %40, %20, %2D and %2E stand for '+', '@', ' ', '-' and '.': an encoded phone's plus,
  // an address's '@', a card's spaces. The finding covers the value as written, escapes and all.
  const cases: Array<[string, Array<[string, string]>]> = [
    ['phone=%2B14155552671', [['PHONE_NUMBER', '%2B14155552671']]],
    ['phone=%2b1%20415%20555%202671', [['PHONE_NUMBER', '%2b1%20415%20555%202671']]],
    ['email=jane.doe%40example.com', [['EMAIL_ADDRESS', 'jane.doe%40example.com']]],
    ['?card=4111%201111%201111%201111', [['CREDIT_CARD', '4111%201111%201111%201111']]],
    ['ssn=536%2D22%2D1234&tel=415%2E555%2E2671', [['US_SSN', '536%2D22%2D1234'], ['PHONE_NUMBER', '415%2E555%2E2671']]],
    ['q=%22card%204111%201111%201111%201111%22', [['CREDIT_CARD', '4111%201111%201111%201111']]],
    // Escapes next to characters the fold maps (fullwidth digits, an accent before): both maps
    // compose, and the finding still covers the value as written.
    ['card=４１１１%20１１１１%20１１１１%20１１１１', [['CREDIT_CARD', '４１１１%20１１１１%20１１１１%20１１１１']]],
    ['café téléphone=%2B33%20612345678', [['PHONE_NUMBER', '%2B33%20612345678']]],
    // Outside an escape nothing changes: the same values written plainly, next to encoded ones.
    ['card=4111111111111111&email=jane.doe%40example.com', [['CREDIT_CARD', '4111111111111111'], ['EMAIL_ADDRESS', 'jane.doe%40example.com']]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }

  it('a query string is masked value by value', () => {
    expect(masked('GET /pay?card=4111%201111%201111%201111&email=jane.doe%40example.com&n=1%202')).toBe(
      'GET /pay?card=[CREDIT_CARD]&email=[EMAIL_ADDRESS]&n=1%202',
    );
  });

  // Values that hold an escape and were found whole before stay whole: a decoded space would end
  // a URL or a password value, so the decoded text only adds findings.
  it('a URL holding an encoded card stays one URL (strict)', () => {
    const text = 'see https://shop.example/pay?card=4111%201111%201111%201111&n=1 now';
    const all = new Set(BUILTIN_ENTITIES);
    const got = redactor.scanner.scan(text, { entities: all }).findings.map((f) => [f.entity, text.slice(f.start, f.end)]);
    expect(got).toEqual([['URL', 'https://shop.example/pay?card=4111%201111%201111%201111&n=1']]);
  });

  it('a password holding escapes stays whole', () => {
    expect(found('password=Xk9%2012%2034qZ!')).toEqual([['PASSWORD', 'Xk9%2012%2034qZ!']]);
  });

  it('an allow-listed value is allowed encoded too', () => {
    const allowing = createRedactor({ allow: { literals: ['support@corp.example.com'] } });
    const text = 'mailto=support%40corp.example.com&from=jane.doe%40example.com';
    const got = allowing.scanner.scan(text, { entities: STANDARD }).findings.map((f) => [f.entity, text.slice(f.start, f.end)]);
    expect(got).toEqual([['EMAIL_ADDRESS', 'jane.doe%40example.com']]);
  });

  // Only the text around escapes is read decoded (windows of ~512 characters either side), so
  // one escape in a long text does not double its cost; escapes far apart get a window each.
  it('escapes deep inside a long text, far apart, are each found', () => {
    const filler = 'lorem ipsum dolor sit amet '.repeat(2000); // ~54 KB
    const text = `${filler}phone=%2B14155552671 ${filler}email=jane.doe%40example.com ${filler}`;
    expect(found(text)).toEqual([
      ['PHONE_NUMBER', '%2B14155552671'],
      ['EMAIL_ADDRESS', 'jane.doe%40example.com'],
    ]);
  });

  it('a window edge that cuts a word adds nothing there: the digits glued to letters stay glued', () => {
    // No whitespace anywhere, so the window around the escape cuts the text 576 characters
    // before it, right where the digits start: read from there, "4111111111111111," would be a
    // card. In the text as written the digits are glued to the q's, and are no card.
    const head = `${'q'.repeat(100)}4111111111111111,`;
    const text = `${head}${'z'.repeat(576 - 17)}%20${'z'.repeat(100)}`;
    expect(text.indexOf('%20') - 576).toBe(100);
    expect(found(text)).toEqual([]);
  });

  it('a finding of the decoded text needs an escape near it: far from one, the plain scan decides', () => {
    // The window around the escape starts just after "order": read alone, the number would be a
    // phone; with its context word, it is an order number, as the plain scan says.
    for (const [context, value] of [['order ', '415-555-2671'], ['tracking ', '415 555 2671']]) {
      // The escape 514 units after the value's start: the window's reach (512) ends inside the
      // value, and its edge moves back to the space after the context word.
      const text = `${context}${value} ${'w'.repeat(514 - 1 - value.length)}%20 tail`;
      expect(text.indexOf('%20') - context.length).toBe(514);
      expect(found(text)).toEqual([]);
    }
    // Just before a value, an escape counts: its decoded ':' makes "ssn" a key.
    expect(found('ssn%3A536-22-1234')).toEqual([['US_SSN', '536-22-1234']]);
  });

  // Escapes that decode to no entity: short numbers, percentages, other escapes.
  const notPii = ['n=1%202&page=3%2D4', 'rate=50%25&x=%41%42', 'v=1%2E2%2E3', 'path=%2Fhome%2Fjane', 'a%40b'];
  for (const text of notPii) {
    it(`no finding: ${JSON.stringify(text)}`, () => {
      expect(found(text)).toEqual([]);
    });
  }
});

describe("a form body's '+' between digit groups reads as a space", () => {
  // application/x-www-form-urlencoded writes a space as '+': "card=4111+1111+1111+1111". Only a
  // '+' with a digit on both sides is read so; "+1 415 ..." keeps its plus (a phone's prefix).
  const cases: Array<[string, string]> = [
    ['card=4111+1111+1111+1111&x=1', 'card=[CREDIT_CARD]&x=1'],
    ['phone=%2B1+415+555+2671&x=1', 'phone=[PHONE_NUMBER]&x=1'],
    ['phone=+1+415+555+2671', 'phone=[PHONE_NUMBER]'],
    ['ssn=536+22+1234', 'ssn=[US_SSN]'],
    ['iban=DE89+3704+0044+0532+0130+00', 'iban=[IBAN_CODE]'],
    ['call +1 415 555 2671 or +14155552671', 'call [PHONE_NUMBER] or [PHONE_NUMBER]'],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(masked(text)).toBe(want);
    });
  }
  // A form reading that could take the head of the phone after it ("241 92 5521 (212)") must
  // leave none of either in clear: the form reading splits into two numbers (the split that
  // covers the most digits), or one that partly overlaps the phone as written is masked with it.
  const joined: Array<[string, string]> = [
    ['x=241+92+5521 (212) 555 9015', 'x=[PHONE_NUMBER] [PHONE_NUMBER]'],
    ['q=+44+982+209+32 (212) 555-8428', 'q=+44+[PHONE_NUMBER] [PHONE_NUMBER]'],
    ['+44=982+209+32 (212) 555-8428', '+44=[PHONE_NUMBER] [PHONE_NUMBER]'],
  ];
  for (const [text, want] of joined) {
    it(`joined with an overlapping phone: ${JSON.stringify(text)}`, () => {
      expect(masked(text)).toBe(want);
    });
  }
  // A '+' number after another number in one form value: the form writes the space before it as
  // '+' and its own '+' as an escape ("0612345678 +33 6 …" is "0612345678+%2B33+6+…"). The
  // chain of groups goes on across the escape, or the second number's '+' stayed glued to its
  // groups and the whole international number went out in clear.
  const afterAnother: Array<[string, string, Array<[string, string]>]> = [
    ['tel=0612345678+%2B33+6+12+34+56+78', 'tel=[PHONE_NUMBER]+[PHONE_NUMBER]', [['PHONE_NUMBER', '0612345678'], ['PHONE_NUMBER', '%2B33+6+12+34+56+78']]],
    ['q=415+555+0199+%2B33+6+12+34+56+78&x=1', 'q=[PHONE_NUMBER]+[PHONE_NUMBER]&x=1', [['PHONE_NUMBER', '415+555+0199'], ['PHONE_NUMBER', '%2B33+6+12+34+56+78']]],
    ['phone=%2B1+415+555+0199+%2B33+6+12+34+56+78', 'phone=[PHONE_NUMBER]+[PHONE_NUMBER]', [['PHONE_NUMBER', '%2B1+415+555+0199'], ['PHONE_NUMBER', '%2B33+6+12+34+56+78']]],
  ];
  for (const [text, want, spans] of afterAnother) {
    it(`a '+' number after another: ${JSON.stringify(text)}`, () => {
      expect(masked(text)).toBe(want);
      expect(found(text)).toEqual(spans);
    });
  }
  // The twelve-group bound is each number's: every number of a value gets its own count, or the
  // third '+' number of one value (its groups the 13th on) stayed in clear. And a number written
  // with its area code in parentheses ("(415) 555 0134", escaped "%28415%29+555+0134") or after
  // a comma ("%2C+") goes on past the escape.
  const manyInOne: Array<[string, string]> = [
    ['tel=%2B33+6+12+34+56+78+%2B33+6+12+34+56+79+%2B33+6+12+34+56+80', 'tel=[PHONE_NUMBER]+[PHONE_NUMBER]+[PHONE_NUMBER]'],
    [
      'tel=0612345678+%2B33+6+12+34+56+78+%2B33+6+12+34+56+79+%2B33+6+12+34+56+80+%2B33+6+12+34+56+81',
      'tel=[PHONE_NUMBER]+[PHONE_NUMBER]+[PHONE_NUMBER]+[PHONE_NUMBER]+[PHONE_NUMBER]',
    ],
    // Read as "415 555 2671 (415) 555 0134" is: the first reading takes the "(415"; no digit is left.
    ['tel=415+555+2671+%28415%29+555+0134', 'tel=[PHONE_NUMBER]%29+[PHONE_NUMBER]'],
    ['phones=%2B33+6+12+34+56+78%2C+%2B33+6+12+34+56+79', 'phones=[PHONE_NUMBER]%2C+[PHONE_NUMBER]'],
  ];
  for (const [text, want] of manyInOne) {
    it(`several numbers in one value: ${JSON.stringify(text)}`, () => {
      expect(masked(text)).toBe(want);
    });
  }
  it('the finding covers the value as written, pluses and escapes included', () => {
    expect(found('card=4111+1111+1111+1111')).toEqual([['CREDIT_CARD', '4111+1111+1111+1111']]);
    expect(found('phone=%2B1+415+555+2671')).toEqual([['PHONE_NUMBER', '%2B1+415+555+2671']]);
  });
  const notPii = ['2+2=4 and 10+20+30', 'x=1+2&y=3+4', '2024-01-15T10:30:00+01:00', 'a+b=c+1234567'];
  for (const text of notPii) {
    it(`no finding: ${JSON.stringify(text)}`, () => {
      expect(found(text)).toEqual([]);
    });
  }
  // Only a form value (after '=') is read so: base64 ('+' after digits glued to letters), sums
  // and prose get no second, decoded reading (a text of "9+9+9+9 " would be scanned twice).
  it("a '+' outside a form value is not decoded", () => {
    expect(percentDecodedWindows('data:image/png;base64,iVBORw0KGgo4111+1111+1111+1111AAAA')).toBeNull();
    expect(percentDecodedWindows('x=Go4111+1111+1111+1111')).toBeNull();
    expect(percentDecodedWindows('x 4111+1111 and 9+9+9+9 9+9+9+9')).toBeNull();
    expect(percentDecodedWindows('x=4111+1111')).not.toBeNull();
    expect(percentDecodedWindows('a=1&tel=%2B1+415')).not.toBeNull();
  });
  const decodedText = (text: string): string | undefined => percentDecodedWindows(text)?.map((w) => w.view.text).join('|');
  it("a chain's '+' are decoded up to its twelfth group, from a form value's start only", () => {
    expect(decodedText('x=' + '9+'.repeat(13) + '9')).toBe('x=' + '9 '.repeat(12) + '9+9');
    expect(decodedText('x=' + '9+'.repeat(12) + '9')).toBe('x=' + '9 '.repeat(12) + '9');
    expect(decodedText('iban=DE89+3704+0044 and tel=+1+415+555 and a=1&b=%2B1+415')).toBe('iban=DE89 3704 0044 and tel=+1 415 555 and a=1&b=+1 415');
    expect(decodedText('x=' + '1'.repeat(35) + '+1+2')).toBeUndefined();
    expect(decodedText('x=12+34 y 56+78+9 z=5+6')).toBe('x=12 34 y 56+78+9 z=5 6');
  });
  // Each '+' of a long chain used to read the chain back to its start (up to twelve groups):
  // a body of "x=9+9+…" cost a dozen reads per character. Reads are counted, not timed.
  it('finding the form pluses reads each character a bounded number of times', () => {
    const text = 'x=9+9+9+9+9+9+9+9+9+9+9+9+9 '.repeat(400);
    let reads = 0;
    const counted = new String(text);
    counted.charCodeAt = (k: number): number => {
      reads++;
      return text.charCodeAt(k);
    };
    expect(percentDecodedWindows(counted as unknown as string)).not.toBeNull();
    expect(reads).toBeLessThan(6 * text.length);
  });
});

describe('a separator written as a percent escape matches the separators written plainly', () => {
  // "4111 1111 1111%2d1111": a card's separators are uniform, but an escaped one says nothing
  // about the writer's layout (an encoder or a hand hiding it); it takes the kind of the others.
  const cases: Array<[string, string]> = [
    ['pay 4111 1111 1111%2d1111 ok', 'pay [CREDIT_CARD] ok'],
    ['pay 4111%201111 1111 1111 ok', 'pay [CREDIT_CARD] ok'],
    ['pay 4111-1111-1111%201111 ok', 'pay [CREDIT_CARD] ok'],
    ['pay 4111%2d1111 1111%2e1111 ok', 'pay [CREDIT_CARD] ok'],
    ['card=4111+1111+1111%2D1111', 'card=[CREDIT_CARD]'],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(masked(text)).toBe(want);
    });
  }
});

describe('a secret value is masked whole, whatever it holds', () => {
  // A password or token that holds a phone, an address or a card: the inner finding scores
  // higher, and winning would leave the rest of the secret in clear.
  const cases: Array<[string, string]> = [
    ['token=Hq7xTz9pL2:+14155552671:moreSecretStuffZ', 'Hq7xTz9pL2:+14155552671:moreSecretStuffZ'],
    ['token=Hq7xTz9pL2%3A%2B14155552671%3AmoreSecretStuffZ', 'Hq7xTz9pL2%3A%2B14155552671%3AmoreSecretStuffZ'],
    ['secret=Kd83%2Fjane.doe%40example.com%2Fx8Jq2LmZpQ', 'Kd83%2Fjane.doe%40example.com%2Fx8Jq2LmZpQ'],
    ['secret=Kd83/jane.doe@example.com/x8Jq2LmZpQ', 'Kd83/jane.doe@example.com/x8Jq2LmZpQ'],
    ['client_secret=Wx4=536-22-1234=Qp7zLm', 'Wx4=536-22-1234=Qp7zLm'],
    // Values of low entropy (a long run of repeated digits) that hold a finding: the entropy rule
    // keeps words out, and a value holding a card is no word.
    ['password=Zq9kW:4111111111111111', 'Zq9kW:4111111111111111'],
    ['token=Zq9kW:4111111111111111', 'Zq9kW:4111111111111111'],
    ['pwd=aa:+14155552671', 'aa:+14155552671'],
    ['secret=Kd%3A4111%201111%201111%201111', 'Kd%3A4111%201111%201111%201111'],
  ];
  for (const [text, secret] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual([['PASSWORD', secret]]);
    });
  }

  it('masked whole through a session', () => {
    expect(masked('login password=Zq9kW:4111111111111111 ok')).toBe('login password=[PASSWORD] ok');
  });

  // A low-entropy value that is only the finding is labelled by it; one holding none is no secret.
  it('a value that is the card itself stays a card; a word stays as it is', () => {
    expect(found('password=4111111111111111')).toEqual([['CREDIT_CARD', '4111111111111111']]);
    expect(found('password: required, token=expired1')).toEqual([]);
  });
});

describe('decimal numbers', () => {
  // The digits after a decimal point (or before one) are a number's fraction (or integer part),
  // though twelve of them can pass Luhn as a Maestro card or validate as a phone number.
  const decimals = [
    '0.567890123456',
    'ratio 0.567890123456 and 567890123456.0 and 1.5555555555554444',
    'amount 4111111111111111.00 and 4111111111111111.5 and 3.4111111111111111',
    'p 0.5678-9012-3456 and 4111-1111-1111-1111.99',
    'x 0.415-555-2671 and 415 555 2671.25 and 415-555-2671.5',
    'x 12.536-22-1234 and 0.536-22-1234 and 0.536 22 1234',
    'ssn 0.536221234 and 536221234.5 and 536-22-1234.5',
  ];
  for (const text of decimals) {
    it(`no finding: ${JSON.stringify(text)}`, () => {
      expect(found(text)).toEqual([]);
    });
  }

  // Dots that are no decimal point: every group joined by one (a dotted card, phone or SSN), a
  // full stop, or a decimal number next to the entity but apart from it.
  const cases: Array<[string, Array<[string, string]>]> = [
    ['card 4111.1111.1111.1111', [['CREDIT_CARD', '4111.1111.1111.1111']]],
    ['card 4111.1111.1111.1111 and 5555.5555.5555.4444', [['CREDIT_CARD', '4111.1111.1111.1111'], ['CREDIT_CARD', '5555.5555.5555.4444']]],
    ['tel 415.555.2671', [['PHONE_NUMBER', '415.555.2671']]],
    ['tel 1.415.555.2671', [['PHONE_NUMBER', '1.415.555.2671']]],
    ['+1 415.555.2671', [['PHONE_NUMBER', '+1 415.555.2671']]],
    ['ssn 536.22.1234', [['US_SSN', '536.22.1234']]],
    ['card 4111111111111111. ssn 536-22-1234.', [['CREDIT_CARD', '4111111111111111'], ['US_SSN', '536-22-1234']]],
    ['total 12.50 card 4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['pi 3.14 415 555 2671', [['PHONE_NUMBER', '415 555 2671']]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }
});

describe('an amount written with a decimal comma', () => {
  // European amounts ("1 234 567,89 EUR", "1.234.567,89"): the groups of three before the decimal
  // comma are an amount's integer part, not a phone's end, where the groups before them are
  // phones or nothing. A phone reading over them masked the integer part and left the fraction
  // (",89") in clear.
  const cases: Array<[string, Array<[string, string]>]> = [
    // Digits before the amount that are no phone of their own: a phone reading over them and
    // the amount is as likely as not a phone ("0170 123 456,78"), so it is masked.
    ['en 2024 1 234 567,89 EUR', [['PHONE_NUMBER', '2024 1 234 567']]],
    ['total 3 1 234 567,89', [['PHONE_NUMBER', '3 1 234 567']]],
    ['06 12 34 56 78 1 234 567,89 EUR', [['PHONE_NUMBER', '06 12 34 56 78']]],
    ['415 555 2671 415 555 0134 1 234 567,89 EUR', [['PHONE_NUMBER', '415 555 2671'], ['PHONE_NUMBER', '415 555 0134']]],
    ['tel 06 12 34 56 78 1.234.567,89 EUR', [['PHONE_NUMBER', '06 12 34 56 78']]],
    ['tel 06 12 34 56 78 234 567,5 EUR', [['PHONE_NUMBER', '06 12 34 56 78']]],
    ['1 234 567,89 EUR and 12,50 \u20ac and 12 345 678,90', []],
    // The next amount's digits start right after a fraction: the fraction is no phone's head.
    ['1 234 567,89 1 234 567,89 EUR', []],
    // A comma after a phone's own last group, or before a field that is no fraction: a CSV row.
    ['alice,06 30 51 03 21,100', [['PHONE_NUMBER', '06 30 51 03 21']]],
    ['alice,415 555 2671,12', [['PHONE_NUMBER', '415 555 2671']]],
    ['+34 610 721 399,50', [['PHONE_NUMBER', '+34 610 721 399']]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }
  it('masked: no piece of the amount is masked or left beside a mask', () => {
    expect(masked('Betrag 06 12 34 56 78 1 234 567,89 EUR')).toBe('Betrag [PHONE_NUMBER] 1 234 567,89 EUR');
    expect(masked('tel 07911 123 456 1 234,56 EUR')).toBe('tel [PHONE_NUMBER] 1 234,56 EUR');
    expect(masked('tel 06 12 34 56 78 100,00 EUR')).toBe('tel [PHONE_NUMBER] 100,00 EUR');
    expect(masked('tel +44 7911 123 456 100,00 EUR')).toBe('tel [PHONE_NUMBER] 100,00 EUR');
  });

  // A phone whose last groups are threes, before a CSV field or an amount: those groups are the
  // phone's, unless the groups before them read as a whole phone. Masking an amount's digits too
  // is the lesser harm; a phone in clear is not.
  const csvPhones = [
    '+44 7911 123 456', '+49 30 123 456', '+49 1512 345 678', '+49 170 123 456', '0049 1512 345 678',
    '01512 345 678', '0170 123 456', '+420 601 123 456', '+351 912 345 678', '+48 512 345 678',
    '+34 612 345 678', '+61 412 345 678', '0412 345 678', '+1 415 555 267', '020 7946 095',
    '+43 664 123 456', '0664 123 456', '+41 79 123 456', '+33 612 345 678', '+39 333 123 456',
    '+39 02 123 456', '+353 87 123 456', '+46 70 123 456', '+45 12 345 678', '+47 412 345 678',
    '+358 40 123 456', '+36 30 123 456', '+91 98765 432 101', '+64 21 123 456', '+55 11 912 345 678',
    '+81 90 123 456', '+52 55 123 456',
  ];
  /** `out` masks a phone and leaves none of `phone`'s national groups of three digits or more. */
  const expectPhoneMasked = (out: string, phone: string): void => {
    expect(out).toContain('[PHONE_NUMBER]');
    for (const g of phone.split(' ').slice(1).filter((g) => g.length >= 3)) expect(out).not.toContain(g);
  };
  for (const phone of csvPhones) {
    it(`a CSV field after the phone: ${JSON.stringify(`Jane,${phone},12`)}`, () => {
      expectPhoneMasked(masked(`Jane,${phone},12`), phone);
    });
  }
  const beforeComma: Array<[string, string]> = [
    ['Tel: +49 30 123 456,78', '+49 30 123 456'],
    ['tel 07911 123 456,78', '07911 123 456'],
    ['tel 0612 345 678,90', '0612 345 678'],
    ['tel 0800 123 456,50', '0800 123 456'],
    ['tel 030 12 345 678,12', '030 12 345 678'],
    ['Kontakt 0170 123 456,78', '0170 123 456'],
    ['Ruf an: +49 30 123 456,78 Euro offen', '+49 30 123 456'],
    ['+44 7911 123 456,12', '+44 7911 123 456'],
    ['tel 415 555 2671 100,00 EUR', '415 555 2671'],
  ];
  for (const [text, phone] of beforeComma) {
    it(`a phone before a comma: ${JSON.stringify(text)}`, () => {
      expectPhoneMasked(masked(text), phone);
    });
  }
  it('a phone that goes on in threes into the amount: the phone and the amount are masked as one', () => {
    // "07911 123 456 100" is a valid number as well: its "100" may be the phone's.
    expect(masked('tel 07911 123 456 100,00 EUR')).toBe('tel [PHONE_NUMBER],00 EUR');
    // "04" opens a phone: "04 123 456" is one, not an amount's lead.
    expect(masked('tel 06 12 34 56 78 04 123 456,78')).toBe('tel [PHONE_NUMBER] [PHONE_NUMBER],78');
  });
});

describe('a fraction written without its leading zero', () => {
  // A '.' with no number before it, after a space, a line start, an operator or an opening
  // bracket, opens a decimal fraction: its twelve digits may pass Luhn as a Maestro card.
  const fractions = [
    '.567890123456',
    'ratio .567890123456 and x=.5555555555554444 and y:.4111111111111111',
    'x (.567890123456) and -.4111111111111111 and $.4155552671 and [.5555555555554444]',
    'p .5678-9012-3456 and .415-555-2671 and .536-22-1234',
    '| .567890123456 |.567890123456|\n.567890123456,.4111111111111111;.4155552671',
  ];
  for (const text of fractions) {
    it(`no finding: ${JSON.stringify(text)}`, () => {
      expect(found(text)).toEqual([]);
    });
  }

  // A '.' that can end a sentence (after a closing bracket or quote) or is part of an ellipsis
  // stays a full stop; dots joining every group make one dotted number, as between digits.
  const cases: Array<[string, Array<[string, string]>]> = [
    ['card (Visa).4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['card "Visa".4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['my card is...4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['tel .415.555.2671', [['PHONE_NUMBER', '415.555.2671']]],
    ['.567890123456 then 4111111111111111', [['CREDIT_CARD', '4111111111111111']]],
    ['ratio .5 card 4111 1111 1111 1111', [['CREDIT_CARD', '4111 1111 1111 1111']]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }

  // A '.' right after a letter ends that word ("x.", "No.", "Visa.") and the digits after it are
  // read on their own; after a digit it is inside one number or version ("v1.4111…",
  // "build.20240115.1234567": the dot between its two digit runs is a decimal point).
  const afterWord: Array<[string, string]> = [
    ['ref x.4111111111111111 end', 'ref x.[CREDIT_CARD] end'],
    ['card No.5555555555554444', 'card No.[CREDIT_CARD]'],
    ['ssn x.536-22-1234', 'ssn x.[US_SSN]'],
  ];
  for (const [text, want] of afterWord) {
    it(`after a letter and a dot: ${JSON.stringify(text)}`, () => {
      expect(masked(text)).toBe(want);
    });
  }
  it('no finding: a dot after a digit ("v1.4111111111111111", "build.20240115.1234567")', () => {
    expect(found('v1.4111111111111111 and build.20240115.1234567 and rc.1 and 2.4111111111111111')).toEqual([]);
  });
});

describe('a compact card next to a year', () => {
  it('card 4111111111111111 2026', () => {
    expect(found('card 4111111111111111 2026')).toEqual([['CREDIT_CARD', '4111111111111111']]);
  });
  it('runs of 4-digit blocks stay whole (no card inside a tracking number)', () => {
    expect(found('USPS 9400 1000 0000 0000 0000 00')).toEqual([]);
    expect(found('ref 4111 1111 1111 1111 1111')).toEqual([]);
  });
});

describe('two cards side by side', () => {
  // Two card numbers written one after the other are one run of 4-digit blocks; a run that splits
  // into whole cards, each passing Luhn in an issuer's range, is those cards, not a tracking number.
  const cases: Array<[string, string[]]> = [
    ['4111 1111 1111 1111 5500 0000 0000 0004', ['4111 1111 1111 1111', '5500 0000 0000 0004']],
    ['cards 4111-1111-1111-1111-5500-0000-0000-0004 ok', ['4111-1111-1111-1111', '5500-0000-0000-0004']],
    ['cards 4111 1111 1111 1111 5500 0000 0000 0004 4012 8888 8888 1881', ['4111 1111 1111 1111', '5500 0000 0000 0004', '4012 8888 8888 1881']],
    // A Maestro of three blocks and a Visa of four.
    ['cards 5018 0000 0009 4111 1111 1111 1111 ok', ['5018 0000 0009', '4111 1111 1111 1111']],
    ['4111 1111 1111 1111, 5500 0000 0000 0004', ['4111 1111 1111 1111', '5500 0000 0000 0004']],
    ['4111 1111 1111 1111 / 5500 0000 0000 0004', ['4111 1111 1111 1111', '5500 0000 0000 0004']],
    ['4111111111111111 5500000000000004', ['4111111111111111', '5500000000000004']],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want.map((v) => ['CREDIT_CARD', v]));
    });
  }
  it('masked: no digit of either card goes out', () => {
    expect(masked('pay 4111 1111 1111 1111 5500 0000 0000 0004 ok')).toBe('pay [CREDIT_CARD] [CREDIT_CARD] ok');
  });
  // A run that does not split into whole valid cards stays what it was: a tracking or account
  // number (one card and a leftover block, or a second window that fails Luhn).
  const runs = ['ref 4111 1111 1111 1111 1111', 'ref 4111 1111 1111 1111 5500 0000 0000 0005', 'ref 4111 1111 1111 1111 5500 0000 0000', 'USPS 9400 1000 0000 0000 0000 00'];
  for (const text of runs) {
    it(`no card: ${JSON.stringify(text)}`, () => {
      expect(found(text).filter(([e]) => e === 'CREDIT_CARD')).toEqual([]);
    });
  }
});

describe('a card after another number on the same line', () => {
  // Digit groups separated by spaces are one chunk; a number before the card (an order number, a
  // year, a phone) must not hide it. The identifier word names the number right after it, not
  // the card after that number.
  const cases: Array<[string, Array<[string, string]>]> = [
    ['order 12345 4111 1111 1111 1111', [['CREDIT_CARD', '4111 1111 1111 1111']]],
    ['ref 2024 4111 1111 1111 1111', [['CREDIT_CARD', '4111 1111 1111 1111']]],
    ['card 4111 1111 1111 1111 2026', [['CREDIT_CARD', '4111 1111 1111 1111']]],
    [
      'tel +1 415 555 0134 4111 1111 1111 1111',
      [
        ['PHONE_NUMBER', '+1 415 555 0134'],
        ['CREDIT_CARD', '4111 1111 1111 1111'],
      ],
    ],
    // A national phone number whose last group (or two) are 4-digit blocks: the blocks before
    // the card end the phone, they are no longer run of blocks (and the UK number's "0958" was
    // left in clear, the block run keeping every phone window out of it).
    [
      '415 555 0199 4111 1111 1111 1111',
      [
        ['PHONE_NUMBER', '415 555 0199'],
        ['CREDIT_CARD', '4111 1111 1111 1111'],
      ],
    ],
    [
      '(415) 555-0199 4111 1111 1111 1111',
      [
        ['PHONE_NUMBER', '(415) 555-0199'],
        ['CREDIT_CARD', '4111 1111 1111 1111'],
      ],
    ],
    [
      'call 020 7946 0958 4111 1111 1111 1111 ok',
      [
        ['PHONE_NUMBER', '020 7946 0958'],
        ['CREDIT_CARD', '4111 1111 1111 1111'],
      ],
    ],
    // An Amex layout after such a phone (its first group went out as the phone's end, the rest
    // in clear), and a 12-digit card after one (neither was found, the phone included).
    [
      '415 555 0199 3782 822463 10005',
      [
        ['PHONE_NUMBER', '415 555 0199'],
        ['CREDIT_CARD', '3782 822463 10005'],
      ],
    ],
    [
      'x 415 555 2671 5678 9012 3456 ok',
      [
        ['PHONE_NUMBER', '415 555 2671'],
        ['CREDIT_CARD', '5678 9012 3456'],
      ],
    ],
    [
      '415 555 0199 4111 1111 1111 1111 123',
      [
        ['PHONE_NUMBER', '415 555 0199'],
        ['CREDIT_CARD', '4111 1111 1111 1111'],
      ],
    ],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }
  it('a phone is not read shorter to make room for a card: no digit of either is left in clear', () => {
    // A '+' number's country code is no national digits ("44207946" is valid somewhere); a window
    // that only starts with a block is no card's layout; a two-group reading the next group
    // continues ("020 7946" / "020 7946 6221") is too short. Each once left digits in clear.
    const texts = [
      '+44 20 7946 5744 4604 4243 5018 4',
      'tel +44 20 7680 4622 4591 3641 8918 7',
      '+61 2 6453 6754 3735 330028 42176',
      '020 7946 3577  031 496 10 56  5318-8791-0213-3181',
      'or 020 7946 6221 4391 9042 7021 1 x',
    ];
    for (const text of texts) expect(redactor.session(decision({ mode: 'mask' }), []).redactText(text), text).not.toMatch(/\d/);
  });

  it('still no card right after an identifier word, nor inside a run of 4-digit blocks', () => {
    expect(found('order 4111 1111 1111 1111')).toEqual([]);
    expect(found('EAN 4111111111116 and tracking 4111111111111111')).toEqual([]);
    expect(found('ref 1234 4111 1111 1111 1111')).toEqual([]);
    expect(found('ref 4111 1111 1111 1111 1234')).toEqual([]);
    expect(found('2024 4111 1111 1111 1111 2026')).toEqual([]);
    // In a list of phones, a Luhn-valid window over the next number and the head of the one
    // after ("415 555 4503 415") begins with no block: it stays the phones it reads as.
    expect(found('list: 415 555 6077 415 555 4503 415 555 4800 ok')).toEqual([
      ['PHONE_NUMBER', '415 555 6077'],
      ['PHONE_NUMBER', '415 555 4503'],
      ['PHONE_NUMBER', '415 555 4800'],
    ]);
    // Blocks before the card that read as no phone number on their own shape stay a block run.
    expect(found('1234 5678 4111 1111 1111 1111')).toEqual([]);
    expect(found('ref 12 1234 4111 1111 1111 1111')).toEqual([]);
  });
});

describe('a phone whose digits hold a card-shaped window that is not reported', () => {
  // The phone detector cuts card numbers out of a chunk ("tel +1 415 555 0134 4111 1111 1111
  // 1111"); the cut only adds readings, so a phone stays found where the card is not wanted,
  // named by "order", or not a card at all.
  const session = (over: Parameters<typeof decision>[0]) => redactor.session(decision({ mode: 'mask', ...over }), []);
  it('two phones with cards allowed', () => {
    expect(session({ modes: { CREDIT_CARD: 'allow' } }).redactText('Reach Ann at 415 555 2009 415 555 0134 today')).toBe('Reach Ann at [PHONE_NUMBER] [PHONE_NUMBER] today');
  });
  it('two phones in block mode are refused', () => {
    expect(() => session({ modes: { PHONE_NUMBER: 'block', CREDIT_CARD: 'allow' } }).redactText('Reach Ann at 415 555 2009 415 555 0134 today')).toThrow(
      expect.objectContaining({ details: { reason: 'blocked_entities', entities: ['PHONE_NUMBER'] } }),
    );
  });
  const cases: Array<[string, string]> = [
    ['my order #12 shipped. tel:415 555 2671 123', 'my order #12 shipped. tel:[PHONE_NUMBER] 123'],
    ['EAN +1 415 555 2671 123', 'EAN +1 [PHONE_NUMBER] 123'],
    ['4539148803436467-1 -06 12 34 56 78', '[CREDIT_CARD]-[PHONE_NUMBER]'],
    // The national digits after a '+' and a country code are the phone's, not a card's.
    ['+1 415 555 2671 123', '[PHONE_NUMBER] 123'],
    ['card +44 20 7946 0958 4111 1111 1111 1111', 'card [PHONE_NUMBER] [CREDIT_CARD]'],
    ['+14155552671 4111 1111 1111 1111', '[PHONE_NUMBER] [CREDIT_CARD]'],
    ['+1 4111 1111 1111 1111', '+1 [CREDIT_CARD]'],
    ['+1 415 555 2671\n4111 1111 1111 1111', '[PHONE_NUMBER]\n[CREDIT_CARD]'],
  ];
  it('a national phone ending in two 4-digit blocks before a card: none of it goes out with cards allowed or phones only', () => {
    // The block run kept every phone window out of "0958"; the card cut out, the phone is read.
    const text = 'call 020 7946 0958 4111 1111 1111 1111 ok';
    expect(session({ modes: { CREDIT_CARD: 'allow' } }).redactText(text)).toBe('call [PHONE_NUMBER] 4111 1111 1111 1111 ok');
    expect(session({ entities: ['PHONE_NUMBER'] }).redactText(text)).toBe('call [PHONE_NUMBER] 4111 1111 1111 1111 ok');
  });
  it('a card wrapped at a line end is still one card', () => {
    expect(masked('card 4111 1111\n1111 1111 ok')).toBe('card [CREDIT_CARD] ok');
    expect(masked('card 4111\n1111 1111 1111 ok')).toBe('card [CREDIT_CARD] ok');
  });
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(masked(text)).toBe(want);
    });
  }
});

describe('two phone numbers side by side', () => {
  // The longest valid window from the first number's start can take the head of the second
  // ("4155552671415" is a valid number where lengths vary) and leave its tail, too short to be a
  // number, in clear. The split that covers the most digits wins.
  const cases: Array<[string, string]> = [
    ['415 555 2671 415 555 0134', '[PHONE_NUMBER] [PHONE_NUMBER]'],
    ['06 12 34 56 78 06 12 34 56 79', '[PHONE_NUMBER] [PHONE_NUMBER]'],
    ['call 06 12 34 56 78 07 98 76 54 32 ok', 'call [PHONE_NUMBER] [PHONE_NUMBER] ok'],
    // A list longer than the longest window: none of its digits is left in clear (two 13-digit
    // windows are valid numbers where lengths vary, so five numbers read as four).
    ['call 415 555 2671 415 555 0134 415 555 2672 415 555 0135 415 555 2673 ok', 'call [PHONE_NUMBER] [PHONE_NUMBER] [PHONE_NUMBER] [PHONE_NUMBER] ok'],
    // The first search leaves only the last number's tail ("44", "90"; a middle "98"): searched
    // again, since two digits in clear are a phone number's.
    ['call 06 12 34 56 78 06 12 34 56 79 06 11 22 33 44 ok', 'call [PHONE_NUMBER] [PHONE_NUMBER] [PHONE_NUMBER] ok'],
    ['415 555 3381 415 555 3682 01 53 96 03 90', '[PHONE_NUMBER] [PHONE_NUMBER] [PHONE_NUMBER]'],
    ['tel 030 71663058 07 74 98 87 60 07423 084293', 'tel [PHONE_NUMBER] [PHONE_NUMBER] [PHONE_NUMBER]'],
    ['list: 303 348 1476 (415) 555-6024 610 721 399 ok', 'list: [PHONE_NUMBER] [PHONE_NUMBER] [PHONE_NUMBER] ok'],
    // A number read by the phone word before it may fill the gap where the first search read as
    // many numbers by their shape alone.
    ['call 645 781 928 415 5556949 610 069 616 ok', 'call [PHONE_NUMBER] [PHONE_NUMBER] [PHONE_NUMBER] ok'],
    // A run of 4-digit blocks (a tracking number) is no phone's; the phone beside it is read.
    ['1234 5678 9012 3456 415 555 2671', '1234 5678 9012 3456 [PHONE_NUMBER]'],
    ['tracking 1234 5678 9012 3456 7890 ok', 'tracking 1234 5678 9012 3456 7890 ok'],
    // Before such a run too: the phone's own last group is four digits, the run's first block.
    ['415 555 2671 1234 5678 9012 3456', '[PHONE_NUMBER] 1234 5678 9012 3456'],
    // A short number after a phone stays: it is no phone's part.
    ['call 415-555-2671 2 times', 'call [PHONE_NUMBER] 2 times'],
    ['+1 415 555 2671 123', '[PHONE_NUMBER] 123'],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(masked(text)).toBe(want);
    });
  }
  // Beside a card: the reading beside the card finds the real numbers, and one the uncut reading
  // took part of ("7946 0344 415 555") is kept too, or its tail ("2009") would go out.
  const besideCards: Array<[string, string]> = [
    ['3782 822463 10005 020 7946 0344 415 555 2009', '[CREDIT_CARD] [PHONE_NUMBER]'],
    ['+1 415 555 0134 4273 415 555 0199 4111 1111 1111 1111', '[PHONE_NUMBER] [PHONE_NUMBER] [CREDIT_CARD]'],
  ];
  for (const [text, want] of besideCards) {
    it(`beside a card: ${JSON.stringify(text)}`, () => {
      expect(masked(text)).toBe(want);
    });
  }
  it('a seeded list of numbers that read as phones on their own: none is left partly in clear', () => {
    // Each number is valid and masked whole on its own; side by side (with single spaces) no
    // digit of any of them may go out. Before, about one list in twenty left a tail in clear.
    const rnd = mulberry32(20261126);
    const d = (n: number): string => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join('');
    const shapes: Array<() => string> = [
      () => `0${6 + Math.floor(rnd() * 2)} ${d(2)} ${d(2)} ${d(2)} ${d(2)}`,
      () => `01 ${d(2)} ${d(2)} ${d(2)} ${d(2)}`,
      () => `415 555 ${d(4)}`,
      () => `${2 + Math.floor(rnd() * 8)}${d(2)} ${2 + Math.floor(rnd() * 8)}${d(2)} ${d(4)}`,
      () => `(415) 555-${d(4)}`,
      () => `020 7946 ${d(4)}`,
      () => `07${d(3)} ${d(6)}`,
      () => `030 ${d(8)}`,
      () => `3${d(2)} ${d(3)} ${d(4)}`,
      () => `6${d(2)} ${d(3)} ${d(3)}`,
      () => `+33 6 ${d(2)} ${d(2)} ${d(2)} ${d(2)}`,
    ];
    const session = redactor.session(decision({ mode: 'mask' }), []);
    const phone = (): string => {
      for (;;) {
        const n = shapes[Math.floor(rnd() * shapes.length)]!();
        if (session.redactText(`list: ${n} ok`) === 'list: [PHONE_NUMBER] ok') return n;
      }
    };
    const leaks: string[] = [];
    for (let iter = 0; iter < 300; iter++) {
      const text = `list: ${Array.from({ length: 2 + Math.floor(rnd() * 3) }, phone).join(' ')} ok`;
      const out = session.redactText(text);
      if (/\d/.test(out)) leaks.push(`${text} => ${out}`);
    }
    expect(leaks).toEqual([]);
  });
  it('with phones only (no card reading to join them), none of the second goes out', () => {
    const phonesOnly = redactor.session(decision({ mode: 'mask', entities: ['PHONE_NUMBER'] }), []);
    expect(phonesOnly.redactText('06 12 34 56 78 06 12 34 56 78')).toBe('[PHONE_NUMBER] [PHONE_NUMBER]');
    expect(phonesOnly.redactText('06 12 34 56 78 07 98 76 54 32')).toBe('[PHONE_NUMBER] [PHONE_NUMBER]');
  });
});

describe('a phone reading and a card reading that partly overlap', () => {
  // Whichever reading wins an overlap, what the other would have masked must not go out: a phone
  // beside a reported card stays masked, and a phone reading over part of a card takes the card
  // with it (the union is masked).
  const cases: Array<[string, string]> = [
    // The standard Amex 4-6-5 layout, then a phone: the card is reported and the phone is found.
    ['Amex 3782 822463 10005 (415) 555 2671', 'Amex [CREDIT_CARD] [PHONE_NUMBER]'],
    // A phone word before an Amex number: a phone reading of its first 12 digits would leave the
    // last 3 in clear.
    ['call me at 3782 8224 6310 005', 'call me at [PHONE_NUMBER]'],
    ['reach me at 3714 4963 5398 431', 'reach me at [PHONE_NUMBER]'],
    ['call 3727 5497 3761 069', 'call [PHONE_NUMBER]'],
    // Two phones on a line whose first 13 digits read as a Visa: the card outscores the phones,
    // and the second phone's tail, which the card leaves out, is masked with it.
    ['Reach Ann at 415 555 2009 415 555 0134 today', 'Reach Ann at [CREDIT_CARD] today'],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(masked(text)).toBe(want);
    });
  }
  it('with cards allowed the phone reading is what is masked', () => {
    const session = redactor.session(decision({ mode: 'mask', modes: { CREDIT_CARD: 'allow' } }), []);
    expect(session.redactText('call me at 3782 8224 6310 005')).toBe('call me at [PHONE_NUMBER] 005');
    expect(session.redactText('Reach Ann at 415 555 2009 415 555 0134 today')).toBe('Reach Ann at [PHONE_NUMBER] [PHONE_NUMBER] today');
  });
  // No card reported (allowed, or not in the profile): the uncut reading takes '822463 10005
  // (415' for a phone, and the phone beside the card must still be read, or '555 2671' goes out.
  // The two phone readings overlap and are masked as one span.
  it('with no card reported, the phone after an Amex number is masked whole', () => {
    const text = 'Amex 3782 822463 10005 (415) 555 2671';
    const allowed = redactor.session(decision({ mode: 'mask', modes: { CREDIT_CARD: 'allow' } }), []);
    expect(allowed.redactText(text)).toBe('Amex 3782 [PHONE_NUMBER]');
    const phonesOnly = redactor.session(decision({ mode: 'mask', entities: ['PHONE_NUMBER'] }), []);
    expect(phonesOnly.redactText(text)).toBe('Amex 3782 [PHONE_NUMBER]');
    // After a phone word more windows read as phones; none of the phone's digits goes out.
    expect(phonesOnly.redactText(`call ${text.slice(5)} now`)).not.toMatch(/415|555|2671/);
  });
  it('overlaps: a loser the winners leave partly uncovered is joined with them; one they cover is dropped', () => {
    const text = 'x 3782 822463 10005 (415) 555 2671';
    const at = (v: string): [number, number] => [text.indexOf(v), text.indexOf(v) + v.length];
    const f = (entity: string, v: string, score: number) => ({ entity, start: at(v)[0], end: at(v)[1], score });
    const card = f('CREDIT_CARD', '3782 822463 10005', 1);
    const across = f('PHONE_NUMBER', '10005 (415) 555', 0.75);
    const beside = f('PHONE_NUMBER', '(415) 555 2671', 0.75);
    // Only the space between the card and the phone beside it is outside the winners.
    expect(resolveOverlaps([card, across, beside], text)).toEqual([card, beside]);
    // Without the phone beside, '(415) 555' would go out: masked with the card, as a card.
    expect(resolveOverlaps([card, across], text)).toEqual([{ entity: 'CREDIT_CARD', start: card.start, end: across.end, score: 1 }]);
  });
  // After a '+' and a short country code, a short group begins the phone only when the digits
  // read as a valid phone number; otherwise the card the rest holds is masked.
  it('"+1 415 5550623266": a card, not nothing', () => {
    expect(masked('+1 415 5550623266')).toBe('+1 [CREDIT_CARD]');
    expect(masked('+1 415 555 2671 123')).toBe('[PHONE_NUMBER] 123');
  });
});

describe('Unicode that hides digits or dots', () => {
  const cases: Array<[string, string]> = [
    ['CREDIT_CARD', '4\ufe0f111 1111 1111 1111'],
    ['CREDIT_CARD', '4\u{e0100}111 1111 1111 1111'],
    ['CREDIT_CARD', '4\u0301111 1111 1111 1111'],
    ['CREDIT_CARD', '4\u0301\u0302\u20e3111 1111 1111 1111'],
    ['CREDIT_CARD', '4111\u28001111\u28001111\u28001111'],
    ['US_SSN', '5\ufe0e36-22-1234'],
    ['EMAIL_ADDRESS', 'alice.smith@example\u3002org'],
    ['EMAIL_ADDRESS', 'alice.smith@example\uff61org'],
    ['EMAIL_ADDRESS', 'alice.smith@mail\u3002example\uff0eorg'],
  ];
  for (const [entity, value] of cases) {
    it(`${entity}: ${JSON.stringify(value)}`, () => {
      const text = `Here: ${value} (ok)`;
      const f = redactor.scanner.scan(text, { entities: STANDARD }).findings;
      expect(f.map((x) => [x.entity, text.slice(x.start, x.end)])).toEqual([[entity, value]]);
    });
  }

  it('combining marks are dropped only after digits: letters keep their accents', () => {
    expect(fold('caf\u0065\u0301 4\u0301 x\u0301').text).toBe('caf\u0065\u0301 4 x\u0301');
    expect(fold('re\u0301sume\u0301 na\u0303o').text).toBe('re\u0301sume\u0301 na\u0303o');
  });

  it('an ideographic full stop ends a sentence, not an address', () => {
    expect(found('mail alice@example\u3002')).toEqual([]);
    expect(found('\u7535\u8bdd\u3002alice@example\u3002org\u3002')).toEqual([['EMAIL_ADDRESS', 'alice@example\u3002org']]);
  });
});

/**
 * ASCII control characters between digit groups: a vertical tab (Word's manual line break), a
 * form feed (the page break of a PDF's extracted text), the file/group/record/unit separators and
 * NUL are no glue for the model, which reads the digits on either side. They went through as the
 * glue they are to a detector: `4111\v1111\v1111\v1111` and `536\f22\f1234` reached the upstream
 * whole. They are folded as a model reads them (line breaks, a space, or dropped), prompt and
 * answer, streamed or not, and masked over the value as written.
 */
describe('ASCII control characters between digit groups', () => {
  const CONTROLS: Array<[string, string]> = [
    ['VT', '\v'],
    ['FF', '\f'],
    ['FS', '\x1c'],
    ['GS', '\x1d'],
    ['RS', '\x1e'],
    ['US', '\x1f'],
    ['NUL', '\0'],
    ['ESC', '\x1b'],
    ['DEL', '\x7f'],
    ['C1', '\x9b'],
  ];
  const values = (c: string): Array<[string, string]> => [
    ['CREDIT_CARD', `4111${c}1111${c}1111${c}1111`],
    ['CREDIT_CARD', `4111 1111${c}1111 1111`],
    ['US_SSN', `536${c}22${c}1234`],
    ['IBAN_CODE', `DE89${c}3704${c}0044${c}0532${c}0130${c}00`],
  ];
  for (const [name, c] of CONTROLS) {
    for (const [entity, value] of values(c)) {
      it(`${name}: ${entity} ${JSON.stringify(value)} is found and masked over the value as written`, async () => {
        const text = `card ssn iban ${value} (ok)`;
        expect(found(text)).toEqual([[entity, value]]);
        expect(masked(text)).toBe(`card ssn iban [${entity}] (ok)`);
        const s = () => redactor.session(decision({ mode: 'mask' }), []);
        expect(wholeAnswer(s(), text, false)).toBe(`card ssn iban [${entity}] (ok)`);
        for (const { how, pieces } of cuts(text, 3)) expect((await streamedDeltas(s(), pieces, false)).join(''), how).toBe(`card ssn iban [${entity}] (ok)`);
      });
    }
  }

  it('a control between words still ends the word: a number after it is read', () => {
    expect(found('paid with\x004111 1111 1111 1111')).toEqual([['CREDIT_CARD', '4111 1111 1111 1111']]);
    // As after a zero-width space: the address is masked with the word the control glued on.
    expect(masked('mail\x1bjane.doe@example.com now')).toBe('[EMAIL_ADDRESS] now');
  });

  it('text with only tab, CR and LF among the controls is not folded (no copy)', () => {
    expect(fold('a\tb\r\nc 4111').starts).toBeNull();
    expect(fold('a\vb').text).toBe('a\nb');
  });
});

describe('HTML character references (web pages, HTML e-mail, an address obfuscated against spam)', () => {
  // A model reads `&#64;` as '@' and `&nbsp;` as a space, as a browser does: the value is found,
  // and the finding covers it as written, references and all.
  const enc = (s: string): string => [...s].map((c) => `&#${c.charCodeAt(0)};`).join('');
  const cases: Array<[string, Array<[string, string]>]> = [
    ['write to jane.doe&#64;example.com', [['EMAIL_ADDRESS', 'jane.doe&#64;example.com']]],
    ['jane.doe&#x40;example.com', [['EMAIL_ADDRESS', 'jane.doe&#x40;example.com']]],
    ['jane.doe&commat;example&period;com', [['EMAIL_ADDRESS', 'jane.doe&commat;example&period;com']]],
    // Without the ';', as HTML still reads a numeric reference and `&nbsp`.
    ['jane.doe&#64example.com', [['EMAIL_ADDRESS', 'jane.doe&#64example.com']]],
    [`mailto:${enc('jane.doe@example.com')}`, [['EMAIL_ADDRESS', enc('jane.doe@example.com')]]],
    ['card 4111&nbsp;1111&nbsp;1111&nbsp;1111', [['CREDIT_CARD', '4111&nbsp;1111&nbsp;1111&nbsp;1111']]],
    ['card 4111&nbsp1111&nbsp1111&nbsp1111', [['CREDIT_CARD', '4111&nbsp1111&nbsp1111&nbsp1111']]],
    ['card 4111&#32;1111&#32;1111&#32;1111', [['CREDIT_CARD', '4111&#32;1111&#32;1111&#32;1111']]],
    [`card ${enc('4111111111111111')}`, [['CREDIT_CARD', enc('4111111111111111')]]],
    // A reference to a space or dash outside ASCII, and windows-1252's en dash (`&#150;`).
    ['4111&#x2011;1111&#x2011;1111&#x2011;1111', [['CREDIT_CARD', '4111&#x2011;1111&#x2011;1111&#x2011;1111']]],
    ['4111&#150;1111&#150;1111&#150;1111', [['CREDIT_CARD', '4111&#150;1111&#150;1111&#150;1111']]],
    // A zero-width space as a reference, inside the number and between a word and it.
    ['paid with&#8203;4111&#8203;1111&#8203;1111&#8203;1111', [['CREDIT_CARD', '4111&#8203;1111&#8203;1111&#8203;1111']]],
    ['ssn 536&#45;22&#45;1234', [['US_SSN', '536&#45;22&#45;1234']]],
    ['tel &#43;1 415 555 2671', [['PHONE_NUMBER', '&#43;1 415 555 2671']]],
    ['phone&colon;415&#32;555&#32;2671', [['PHONE_NUMBER', '415&#32;555&#32;2671']]],
    [`ip ${enc('192.168.10.20')}`, [['IP_ADDRESS', enc('192.168.10.20')]]],
    ['iban DE89&nbsp;3704&nbsp;0044&nbsp;0532&nbsp;0130&nbsp;00', [['IBAN_CODE', 'DE89&nbsp;3704&nbsp;0044&nbsp;0532&nbsp;0130&nbsp;00']]],
    // Mixed with percent escapes in one value.
    ['jane.doe&#64;example%2Ecom', [['EMAIL_ADDRESS', 'jane.doe&#64;example%2Ecom']]],
    // Leading zeros, as many as HTML reads (any): past eight digits they hid the value.
    ['jane.doe&#000000064;example.com', [['EMAIL_ADDRESS', 'jane.doe&#000000064;example.com']]],
    ['jane.doe&#x0000000040;example.com', [['EMAIL_ADDRESS', 'jane.doe&#x0000000040;example.com']]],
    ['ssn 536&#00000000000045;22&#00000000000045;1234', [['US_SSN', '536&#00000000000045;22&#00000000000045;1234']]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }

  // What is no reference, or no value once decoded, stays as it is.
  const none = [
    'R&D spent 4111 dollars &amp; AT&T 2024',
    'see ?a=1&amp;b=2&amp;c=4111',
    '&#4111;&#1111;&#1111;&#1111;', // code points, not digits
    'jane.doe&amp;#64;example.com', // one decoding pass, as for %2540
    'price &#36;4111.11',
    'version 1&#46;2&#46;3&#46;4',
    'Tom &amp; Jerry &#0; &#xD800; &#99999999; &unknownname; &#',
  ];
  for (const text of none) {
    it(`no finding: ${JSON.stringify(text)}`, () => {
      expect(found(text)).toEqual([]);
    });
  }

  it('the rest of the text keeps its references: only the value is masked', () => {
    expect(masked('<p>Card:&nbsp;4111&nbsp;1111&nbsp;1111&nbsp;1111 &amp; jane.doe&#64;example.com</p>')).toBe(
      '<p>Card:&nbsp;[CREDIT_CARD] &amp; [EMAIL_ADDRESS]</p>',
    );
  });
});

describe('Unicode tag characters ("ASCII smuggling")', () => {
  // U+E0021-U+E007E mirror printable ASCII and render as nothing, but a model reads them as the
  // ASCII they mirror: a value written in them was dropped as invisible and went out whole.
  const tag = (s: string): string => [...s].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
  const cases: Array<[string, Array<[string, string]>]> = [
    [`card ${tag('4111 1111 1111 1111')}`, [['CREDIT_CARD', tag('4111 1111 1111 1111')]]],
    [`mail ${tag('jane.doe@example.com')}`, [['EMAIL_ADDRESS', tag('jane.doe@example.com')]]],
    // One tag character among plain ones: the '@' of an address, the last groups of a card.
    [`mail jane.doe${tag('@')}example.com`, [['EMAIL_ADDRESS', `jane.doe${tag('@')}example.com`]]],
    [`card 4111 1111 ${tag('1111 1111')}`, [['CREDIT_CARD', `4111 1111 ${tag('1111 1111')}`]]],
    [`ssn ${tag('536-22-1234')}`, [['US_SSN', tag('536-22-1234')]]],
    [`tel ${tag('+1 415 555 2671')}`, [['PHONE_NUMBER', tag('+1 415 555 2671')]]],
    // The tag space is read both ways, as nothing and as a space, as before.
    [`card 4111${tag(' ')}1111${tag(' ')}1111${tag(' ')}1111`, [['CREDIT_CARD', `4111${tag(' ')}1111${tag(' ')}1111${tag(' ')}1111`]]],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => {
      expect(found(text)).toEqual(want);
    });
  }

  it("an emoji flag's tags stay a flag: the text after it is read as before", () => {
    const flag = `\u{1F3F4}${tag('gbeng')}\u{E007F}`;
    expect(found(`${flag} ok 4111 1111 1111 1111`)).toEqual([['CREDIT_CARD', '4111 1111 1111 1111']]);
    expect(found(`${flag} team`)).toEqual([]);
  });
});
