/**
 * The answer-side leak guard against what a caller can still read back: secrets with whitespace
 * streamed in pieces, values crossing the `max_hold_back` release, and secrets hidden by
 * invisible characters, fullwidth forms or JSON escapes. Every case compares the streamed output
 * with the non-streamed one and checks that no emitted piece holds a part of the canary.
 */
import { describe, expect, it } from 'vitest';
import type { CompletionChunk } from '../../src/pipeline/types.js';
import { createRedactor } from '../../src/redact/index.js';
import { LeakGuard } from '../../src/redact/leak-guard.js';
import type { Session } from '../../src/redact/session.js';
import { bySize, collect, cuts, decision, fromArray, pieceChunk, streamedDeltas, thrown, wholeAnswer } from './helpers.js';

const CANARY = 'CANARY-SECRET-7f3a';
const PHRASE = `open sesame ${CANARY}`;

const redactor = createRedactor({});

describe('streaming: a guarded secret with whitespace', () => {
  const TEXTS = [
    `The passphrase is ${PHRASE} ok`,
    `${PHRASE}`,
    `say "${PHRASE}", twice: ${PHRASE}.`,
    // A prefix of the secret that does not go on is released as it is, not masked.
    'open sesame street is open, open sesame CANARY-SECRET is not the whole value',
  ];
  for (const asArgs of [false, true]) {
    for (const text of TEXTS) {
      it(`${asArgs ? 'tool arguments' : 'content'} ${JSON.stringify(text.slice(0, 30))}…: every split and piece size 1..13 equals the whole answer`, async () => {
        const expected = wholeAnswer(redactor.session(decision(), [PHRASE]), text, asArgs);
        expect(expected).not.toContain('sesame CANARY-SECRET-7f3a');
        const failures: string[] = [];
        for (const { how, pieces } of cuts(text, 13)) {
          const deltas = await streamedDeltas(redactor.session(decision(), [PHRASE]), pieces, asArgs);
          if (deltas.join('') !== expected) failures.push(`${how}: ${JSON.stringify(deltas.join(''))}`);
        }
        expect(failures.slice(0, 3)).toEqual([]);
      });
    }
  }

  it('the secret is masked whole: no delta holds any word of it, and the leak is counted once', async () => {
    for (let size = 1; size <= 13; size++) {
      const s = redactor.session(decision(), [PHRASE]);
      const deltas = await streamedDeltas(s, bySize(`The passphrase is ${PHRASE} ok`, size), false);
      expect(deltas.join(''), `size ${size}`).toBe('The passphrase is [SECRET_VALUE] ok');
      for (const d of deltas) expect(d, `size ${size}`).not.toMatch(/sesame|CANARY/);
      expect(s.report().leaks).toBe(1);
    }
  });

  it('a multi-line credential is held whole too', async () => {
    const secret = 'user=svc-batch\npass=Tr0ub4dor&3 horse';
    const text = `Here:\n${secret}\nend`;
    const expected = wholeAnswer(redactor.session(decision(), [secret]), text, false);
    expect(expected).toBe('Here:\n[SECRET_VALUE]\nend');
    for (const { how, pieces } of cuts(text, 9)) {
      const deltas = await streamedDeltas(redactor.session(decision(), [secret]), pieces, false);
      expect(deltas.join(''), how).toBe(expected);
      for (const d of deltas) expect(d, how).not.toMatch(/svc-batch|Tr0ub4dor/);
    }
  });

  /** What a stream of `text` in word pieces releases before its last piece, each piece's output. */
  const releasedBefore = async (secrets: string[], text: string): Promise<string[]> => {
    const s = redactor.session(decision(), secrets);
    const chunks = text.split(/(?<= )/).map((p) => pieceChunk(false, p));
    const out: string[] = [];
    let n = 0;
    for await (const c of s.processStream(fromArray(chunks))) if (++n < chunks.length) out.push(c.choices[0]?.delta.content ?? '');
    return out;
  };

  it('without a guarded secret, prose is released word by word', async () => {
    expect((await releasedBefore([], 'We open the door and go')).join('')).toBe('We open the door and ');
  });

  it('with one, where the stream breaks does not depend on whether the text begins the secret', async () => {
    // "open " could begin the phrase, "opex " could not: held back only in the first, the pieces
    // told a caller which text begins a secret. A fixed window is held back in both.
    const prose = 'We open the door and then we go on to the next room and the one after that, and so on and on. '.repeat(3);
    const other = prose.replace(/open /g, 'opex ');
    const a = await releasedBefore([PHRASE], prose);
    const b = await releasedBefore([PHRASE], other);
    expect(a.map((d) => d.length)).toEqual(b.map((d) => d.length));
    expect(a.join('').length).toBeGreaterThan(0);
  });
});

describe('streaming: a value crossing the max_hold_back release', () => {
  const CAP = 512;
  const capped = createRedactor({ maxHoldBack: CAP });
  const VALUES = { secret: CANARY, card: '4111111111111111', email: 'bob@example.org', phrase: PHRASE };
  // A whitespace-free answer (minified JSON) with the value placed at every offset around the cap.
  const head = '{"k":"';
  const mid = '","v":"';
  for (const [name, value] of Object.entries(VALUES)) {
    it(`${name}: at every offset around the cap and the release after it, pieces of 1, 7 and 64, streamed equals whole`, async () => {
      const failures: string[] = [];
      for (let at = CAP - 280; at <= CAP + 300; at++) {
        const padLength = at - head.length - mid.length;
        const text = `${head}${'y,'.repeat(padLength >> 1)}${padLength & 1 ? 'y' : ''}${mid}${value}"}`;
        const expected = wholeAnswer(capped.session(decision(), [CANARY, PHRASE]), text, false);
        expect(expected).not.toContain(value);
        for (const size of [1, 7, 64]) {
          const deltas = await streamedDeltas(capped.session(decision(), [CANARY, PHRASE]), bySize(text, size), false);
          if (deltas.join('') !== expected) failures.push(`at ${at}, size ${size}: ${JSON.stringify(deltas.join('').slice(-60))}`);
        }
      }
      expect(failures.slice(0, 3)).toEqual([]);
    });
  }

  it('memory stays bounded: an endless run is still released while it streams', async () => {
    const s = capped.session(decision(), [CANARY]);
    const pieces = Array.from({ length: 400 }, () => 'x,'.repeat(5));
    const chunks = pieces.map((p) => pieceChunk(false, p));
    let before = 0;
    let n = 0;
    for await (const c of s.processStream(fromArray(chunks))) {
      if (++n < chunks.length) before += (c.choices[0]?.delta.content ?? '').length;
    }
    // Never more than twice the cap (plus a piece) is held.
    expect(before).toBeGreaterThanOrEqual(4000 - 2 * CAP - 10);
  });

  it('memory stays bounded when one finding grows past the cap (an endless URL): it goes at twice the cap', async () => {
    const s = capped.session(decision({ profile: 'strict' }), [CANARY]);
    const chunks = ['see https://example.com/', ...Array.from({ length: 400 }, () => 'abcdefghij')].map((p) => pieceChunk(false, p));
    let before = 0;
    let n = 0;
    for await (const c of s.processStream(fromArray(chunks))) {
      if (++n < chunks.length) before += (c.choices[0]?.delta.content ?? '').length;
    }
    // Held whole up to twice the cap, then released (masked as far as it came) while the
    // stream goes on; before, all of it waited for the end.
    expect(before).toBeGreaterThan(1000);
  });
});

describe('leak guard: obfuscated and escaped secrets', () => {
  const FORMS: Record<string, string> = {
    'a zero-width space inside': 'CANARY\u200b-SECRET-7f3a',
    'a soft hyphen inside': 'CANARY-SEC\u00adRET-7f3a',
    'fullwidth forms': 'ＣＡＮＡＲＹ－ＳＥＣＲＥＴ－７ｆ３ａ',
    'a joiner between every letter': [...CANARY].join('\u200d'),
  };
  for (const [name, form] of Object.entries(FORMS)) {
    it(`masks the secret with ${name}, whole and streamed at every split`, async () => {
      const text = `code ${form} ok`;
      const s = redactor.session(decision(), [CANARY]);
      expect(wholeAnswer(s, text, false)).toBe('code [SECRET_VALUE] ok');
      expect(s.report().leaks).toBe(1);
      for (const { how, pieces } of cuts(text, 9)) {
        const deltas = await streamedDeltas(redactor.session(decision(), [CANARY]), pieces, false);
        expect(deltas.join(''), how).toBe('code [SECRET_VALUE] ok');
      }
    });

    it(`refuses a prompt holding the secret with ${name}`, () => {
      const e = thrown(() => redactor.session(decision(), [CANARY]).redactMessages([{ role: 'user', content: `data: ${form} end` }]));
      expect(e.code).toBe('redaction_blocked');
      expect(e.details?.['reason']).toBe('secret_leak');
      expect(e.message + JSON.stringify(e.details)).not.toMatch(/CANARY|ＣＡＮＡＲＹ/);
    });
  }

  const ESCAPED: Record<string, [string, string]> = {
    'a \\u escape': ['{"x":"\\u0043ANARY-SECRET-7f3a"}', '{"x":"[SECRET_VALUE]"}'],
    'every character \\u-escaped': [`{"x":"${[...CANARY].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"}`, '{"x":"[SECRET_VALUE]"}'],
    'an escaped quote inside the secret': ['{"x":"pass \\"quoted\\" word!"}', '{"x":"[SECRET_VALUE]"}'],
    'the phrase with an escaped line break before it': [`{"x":"line\\n${PHRASE.replace(' ', '\\u0020')}"}`, '{"x":"line\\n[SECRET_VALUE]"}'],
  };
  for (const [name, [args, expected]] of Object.entries(ESCAPED)) {
    it(`tool-call arguments with ${name} decode to the secret: masked whole and streamed`, async () => {
      const secrets = [CANARY, PHRASE, 'pass "quoted" word!'];
      const s = redactor.session(decision(), secrets);
      const out = wholeAnswer(s, args, true);
      expect(out).toBe(expected);
      expect(JSON.parse(out)).toBeTypeOf('object');
      for (const { how, pieces } of cuts(args, 9)) {
        const deltas = await streamedDeltas(redactor.session(decision(), secrets), pieces, true);
        expect(deltas.join(''), how).toBe(expected);
      }
    });
  }

  it('an escaped backslash before "u0043…" is an escape of the second level: JSON.parse twice reads the secret, masked', () => {
    // Once parsed, the value is the text `\u0043ANARY…`; parsed again (JSON inside a JSON string),
    // the secret. Escapes are read at every level (MAX_ESCAPE_LEVELS), so it is masked whole.
    const args = '{"x":"\\\\u0043ANARY-SECRET-7f3a"}';
    expect(wholeAnswer(redactor.session(decision(), [CANARY]), args, true)).toBe('{"x":"[SECRET_VALUE]"}');
    // Not an escape at any level: stays.
    const plain = '{"x":"\\\\x0043ANARY-SECRET-7f3a"}';
    expect(wholeAnswer(redactor.session(decision(), [CANARY]), plain, true)).toBe(plain);
  });

  describe('a long run of escaped backslashes before a \\u-escaped secret (longer than the stream context)', () => {
    // 37+ pairs put the hold-back's window start (and the stream context's) inside the run: read
    // from there, the pairs flip and the last backslash eats the `\\` of `\\u006F`.
    const PAIRS = [37, 38, 45, 46, 80, 81];
    /** `pairs` escaped backslashes, then `\\u006Fpen sesame …` (escaped: the secret) or `u006Fpen…` (not). */
    const argsWith = (pairs: number, escaped: boolean): string => `{"x":"a ${'\\\\'.repeat(pairs)}${escaped ? '\\' : ''}u006F${PHRASE.slice(1)}"}`;

    it('the hold-back starts at or before the escape that begins the secret, never inside an escaped pair, whatever the run length', () => {
      const guard = new LeakGuard([PHRASE]);
      const wrong: string[] = [];
      for (let pairs = 0; pairs < 140; pairs++) {
        for (const tail of ['pen sesame CA', 'pen sesame CAN', 'pen sesame CANA', 'pen sesame CANAR']) {
          const head = `{"x":"a ${'\\\\'.repeat(pairs)}\\u006F${tail}`;
          const held = guard.heldFrom(head, true);
          const run = head.indexOf('\\');
          const at = head.indexOf('\\u006F');
          if (held > at || (held > run && held < at && (held - run) % 2 !== 0)) wrong.push(`${pairs} pairs, ${tail}: held from ${held}`);
        }
      }
      expect(wrong.slice(0, 3)).toEqual([]);
    });

    for (const pairs of PAIRS) {
      for (const escaped of [true, false]) {
        it(`${pairs} pairs, ${escaped ? 'an escape (the secret)' : 'a literal "u006F" (not the secret)'}: streamed at every piece size equals whole`, async () => {
          const args = argsWith(pairs, escaped);
          const expected = wholeAnswer(redactor.session(decision(), [PHRASE]), args, true);
          // Both parities decode as JSON.parse reads them.
          const value = (JSON.parse(args) as { x: string }).x;
          expect(value.endsWith(PHRASE)).toBe(escaped);
          const masked = `{"x":"a ${'\\\\'.repeat(pairs)}[SECRET_VALUE]"}`;
          // Masked at a deeper level: the mask covers that level's escape, escaped backslashes of
          // the run before it (pairs at every level, so each level stays valid JSON).
          const maskedDeeper = /^\{"x":"a (\\\\)*\[SECRET_VALUE\]"\}$/;
          // A literal `u006F` after the run is still an escape at a deeper level when the run,
          // halved level by level, is odd there within MAX_ESCAPE_LEVELS (37 pairs: the second
          // level reads `\u006F`): masked then. 80 pairs stay even for four levels.
          if (escaped) expect(expected).toBe(masked);
          else if (pairs === 80) expect(expected).toBe(args);
          else expect(expected).toMatch(maskedDeeper);
          // A stream piece that begins inside a run longer than its context pairs the deeper
          // levels another way: it may mask what the whole answer keeps (never the reverse).
          const ok = (out: string): boolean => out === expected || (!escaped && maskedDeeper.test(out));
          const failures: string[] = [];
          for (let size = 1; size <= args.length; size++) {
            const deltas = await streamedDeltas(redactor.session(decision(), [PHRASE]), bySize(args, size), true);
            if (!ok(deltas.join(''))) failures.push(`pieces of ${size}: ${JSON.stringify(deltas.join('').slice(-50))}`);
          }
          for (const { how, pieces } of cuts(args, 0)) {
            const deltas = await streamedDeltas(redactor.session(decision(), [PHRASE]), pieces, true);
            if (!ok(deltas.join(''))) failures.push(`${how}: ${JSON.stringify(deltas.join('').slice(-50))}`);
          }
          expect(failures.slice(0, 3)).toEqual([]);
        });
      }
    }
  });

  describe('decomposed (NFD) and composed (NFC) forms of an accented secret', () => {
    const NFC = 'café-Geheimnis-42x mot de passe éé';
    const NFD = NFC.normalize('NFD');
    for (const [name, secret, written] of [
      ['an NFD answer, NFC secret', NFC, NFD],
      ['an NFC answer, NFD secret', NFD, NFC],
      ['an NFD answer, NFD secret', NFD, NFD],
    ] as const) {
      it(`${name}: masked whole, and streamed at every split and piece size`, async () => {
        const text = `pw ${written} ok`;
        const s = redactor.session(decision(), [secret]);
        expect(wholeAnswer(s, text, false)).toBe('pw [SECRET_VALUE] ok');
        const failures: string[] = [];
        for (const { how, pieces } of cuts(text, 9)) {
          const deltas = await streamedDeltas(redactor.session(decision(), [secret]), pieces, false);
          if (deltas.join('') !== 'pw [SECRET_VALUE] ok') failures.push(`${how}: ${JSON.stringify(deltas)}`);
          // No word of it goes out before the guard sees it whole.
          for (const d of deltas) if (/Geheimnis|passe/.test(d)) failures.push(`${how}: released ${JSON.stringify(d)}`);
        }
        expect(failures.slice(0, 3)).toEqual([]);
      });

      it(`${name}: refused in a prompt`, () => {
        const e = thrown(() => redactor.session(decision(), [secret]).redactMessages([{ role: 'user', content: `data: ${written} end` }]));
        expect(e.details?.['reason']).toBe('secret_leak');
      });
    }

    it('an accent added after the value does not hide it (the value is still there, letter for letter)', () => {
      const s = redactor.session(decision(), [CANARY]);
      expect(wholeAnswer(s, `code ${CANARY}\u0301 ok`, false)).toBe('code [SECRET_VALUE]\u0301 ok');
    });

    it('a different accent is a different value: not masked', () => {
      const text = `pw ${'cafè-Geheimnis-42x'.normalize('NFD')} ok`;
      expect(wholeAnswer(redactor.session(decision(), ['café-Geheimnis-42x']), text, false)).toBe(text);
    });
  });

  // Content may be JSON the app parses (a structured output: the openai SDK's parse() does), where
  // the escape is the secret: it is masked as in tool-call arguments, and so is a passphrase whose
  // escapes arrive cut between pieces.
  it('content with "\\u0043ANARY…" (JSON a structured output parses) is masked like the value', () => {
    const text = 'write \\u0043ANARY-SECRET-7f3a in C';
    expect(wholeAnswer(redactor.session(decision(), [CANARY]), text, false)).toBe('write [SECRET_VALUE] in C');
  });

  it('content with an escaped passphrase, streamed cut anywhere, never lets a piece of it out', async () => {
    const text = '{"code": "open\\u0020sesame \\u0043ANARY-SECRET-7f3a", "ok": 1}';
    const expected = '{"code": "[SECRET_VALUE]", "ok": 1}';
    expect(wholeAnswer(redactor.session(decision(), [PHRASE]), text, false)).toBe(expected);
    for (const { how, pieces } of cuts(text, 7)) {
      const deltas = await streamedDeltas(redactor.session(decision(), [PHRASE]), pieces, false);
      expect(deltas.join(''), how).toBe(expected);
    }
  });

  describe('a secret value as a member name (JSON key) in the prompt is refused like a value', () => {
    const call = (args: string) => [{ role: 'assistant' as const, content: null, tool_calls: [{ id: 'c1', type: 'function' as const, function: { name: 'f', arguments: args } }] }];
    const CASES: Record<string, (s: Session) => unknown> = {
      'tool-call arguments': (s) => s.redactMessages(call(`{"${CANARY}": 1}`)),
      'tool-call arguments, nested and \\u-escaped': (s) => s.redactMessages(call('{"a": [{"\\u0043ANARY-SECRET-7f3a": "x"}]}')),
      'Anthropic tool_use.input': (s) => s.redactMessages([{ role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: { [CANARY]: true } }] }]),
      'a tool schema': (s) => s.redactTools([{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { [CANARY]: { type: 'string' } } } } }]),
      'pass-through parameters': (s) => s.redactParams({ metadata: { [`k ${CANARY}`]: 'v' } }),
    };
    for (const [name, run] of Object.entries(CASES)) {
      it(name, () => {
        const s = redactor.session(decision(), [CANARY, PHRASE]);
        const e = thrown(() => run(s));
        expect(e.code).toBe('redaction_blocked');
        expect(e.details).toEqual({ reason: 'secret_leak', entities: ['SECRET_VALUE'], leaks: 1 });
        expect(e.message + JSON.stringify(e.details)).not.toContain('CANARY');
      });
    }

    it('ordinary member names pass unchanged; PII in one is rewritten in arguments and in parameters alike', () => {
      const s = redactor.session(decision(), [CANARY]);
      const args = '{"bob@example.org": "mail bob@example.org", "n": 1}';
      expect(s.redactMessages(call(args))[0]!.tool_calls![0]!.function.arguments).toBe('{"[EMAIL_ADDRESS]": "mail [EMAIL_ADDRESS]", "n": 1}');
      expect(s.redactParams({ metadata: { 'bob@example.org': 'x', tier: 'gold' } })).toEqual({ metadata: { '[EMAIL_ADDRESS]': 'x', tier: 'gold' } });
      expect(s.report().leaks).toBe(0);
    });
  });

  it('prompt tool-call arguments with a \\u-escaped secret are refused', () => {
    const e = thrown(() =>
      redactor.session(decision(), [CANARY]).redactMessages([
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x":"\\u0043ANARY-SECRET-7f3a"}' } }] },
      ]),
    );
    expect(e.details?.['reason']).toBe('secret_leak');
  });
});

/**
 * DeepSeek, Qwen and Fireworks send a tool call's id and name whole with every piece. The OpenAI
 * route passes each piece on, so a client that appends them assembles the label repeated: a
 * secret spanning two copies must not come out whole, and the repeats must not count towards
 * the label's length limit.
 */
describe('streaming: a tool call label repeated whole in every piece', () => {
  const half = CANARY.length >> 1;
  /** The secret's second half, then its first: whole only across two copies. */
  const LABEL = `${CANARY.slice(half)}_${CANARY.slice(0, half)}`;
  const piece = (args: string): CompletionChunk => ({
    id: 'c',
    model: 'm',
    created: 1,
    choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: LABEL, type: 'function', function: { name: LABEL, arguments: args } }] }, finish_reason: null }],
  });

  for (const sequential of [false, true]) {
    it(`the caller appending every piece never assembles the secret (${sequential ? 'sequential' : 'OpenAI'} stream)`, async () => {
      const s = redactor.session(decision(), [], [CANARY]);
      const chunks = [piece(''), ...Array.from({ length: 40 }, (_, k) => piece(k === 0 ? '{"a":"' : k === 39 ? 'x"}' : 'x'))];
      chunks.push({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
      let ids = '';
      let names = '';
      for (const c of await collect(s.processStream(fromArray(chunks), sequential))) {
        for (const t of c.choices[0]?.delta.tool_calls ?? []) {
          ids += t.id ?? '';
          names += t.function?.name ?? '';
        }
      }
      // 40 pieces of a label of 19 characters: past the 256 a label may have, were they joined.
      expect(ids.length).toBeGreaterThan(256);
      for (const joined of [ids, names]) {
        expect(joined.startsWith(LABEL)).toBe(true);
        expect(joined).not.toContain(CANARY);
        expect(joined).toContain('[SECRET_VALUE]');
      }
    });
  }
});

/**
 * A value the model repeats in another case or spelled out with separators (the README's Leak
 * guard): masked as the value is, streamed as whole, counted as a leak; ordinary text, a shorter
 * skeleton and the prompt check stay as they were.
 */
describe('leak guard: a value repeated in another case or spaced out', () => {
  const SECRET = 'Zq7pLm2Xw9';
  /** No emitted piece may hold three characters of the value in a row (any case, separators between). */
  const PART = /z[\s\-_.]{0,3}q[\s\-_.]{0,3}7|7[\s\-_.]{0,3}p[\s\-_.]{0,3}l|l[\s\-_.]{0,3}m[\s\-_.]{0,3}2|2[\s\-_.]{0,3}x[\s\-_.]{0,3}w|x[\s\-_.]{0,3}w[\s\-_.]{0,3}9/i;
  const FORMS: Record<string, string> = {
    'lower case': 'zq7plm2xw9',
    'upper case': 'ZQ7PLM2XW9',
    'a space between every character': 'Z q 7 p L m 2 X w 9',
    'dashes between groups': 'Zq7p-Lm2X-w9',
    'dots and lower case': 'zq7p.lm2x.w9',
    'space-dash-space between every character, upper case': 'Z - Q - 7 - P - L - M - 2 - X - W - 9',
    'a zero-width space between every character, lower case': [...'zq7plm2xw9'].join('\u200b'),
    'one character per line': [...SECRET].join('\n'),
    'fullwidth, lower case': 'ｚｑ７ｐｌｍ２ｘｗ９',
  };
  for (const [name, form] of Object.entries(FORMS)) {
    it(`${name}: masked whole and counted, in content and tool arguments, streamed at every split as whole`, async () => {
      for (const asArgs of [false, true]) {
        const text = asArgs ? JSON.stringify({ code: form }) : `the code is ${form}, ok`;
        const expected = asArgs ? '{"code":"[SECRET_VALUE]"}' : 'the code is [SECRET_VALUE], ok';
        const s = redactor.session(decision(), [SECRET]);
        expect(wholeAnswer(s, text, asArgs)).toBe(expected);
        expect(s.report()).toMatchObject({ leaks: 1, responseCounts: { SECRET_VALUE: 1 } });
        for (const { how, pieces } of cuts(text, 9)) {
          const deltas = await streamedDeltas(redactor.session(decision(), [SECRET]), pieces, asArgs);
          expect(deltas.join(''), how).toBe(expected);
          for (const d of deltas) expect(d, how).not.toMatch(PART);
        }
      }
    });
  }

  it("the value's own separators may be left out or changed: a passphrase run together, in upper case", () => {
    const s = redactor.session(decision(), [PHRASE]);
    expect(wholeAnswer(s, 'say OPENSESAME_CANARY_SECRET_7F3A now', false)).toBe('say [SECRET_VALUE] now');
  });

  it('the exact value still counts once, not once per way of finding it', () => {
    const s = redactor.session(decision(), [SECRET]);
    expect(wholeAnswer(s, `a ${SECRET} b ${SECRET.toLowerCase()} c`, false)).toBe('a [SECRET_VALUE] b [SECRET_VALUE] c');
    expect(s.report().leaks).toBe(2);
  });

  it('a tool call name or id repeating the value in lower case is masked, streamed in pieces too', async () => {
    const name = `get_${SECRET.toLowerCase()}`;
    const s = redactor.session(decision(), [SECRET]);
    const message = { role: 'assistant' as const, content: null, tool_calls: [{ id: `call_${SECRET.toUpperCase()}`, type: 'function' as const, function: { name, arguments: '{}' } }] };
    const out = s.processCompletion({ id: 'x', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'tool_calls', message }] }).choices[0]!.message.tool_calls![0]!;
    expect([out.id, out.function.name]).toEqual(['call_[SECRET_VALUE]', 'get_[SECRET_VALUE]']);
    const chunk = (t: object): CompletionChunk => ({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, ...t }] }, finish_reason: null }] });
    const chunks = [chunk({ id: 'call_1', type: 'function', function: { name: name.slice(0, 6), arguments: '' } }), chunk({ function: { name: name.slice(6) } }), chunk({ function: { arguments: '{}' } })];
    chunks.push({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
    let names = '';
    for (const c of await collect(redactor.session(decision(), [SECRET]).processStream(fromArray(chunks)))) {
      for (const t of c.choices[0]?.delta.tool_calls ?? []) names += t.function?.name ?? '';
    }
    expect(names).toBe('get_[SECRET_VALUE]');
  });

  it('an OpenAI first tool piece waits for the arguments whatever its id ends in (one letter of the value in another case or not)', async () => {
    for (const id of ['call_abz', 'call_abq']) {
      const first = { id, type: 'function' as const, function: { name: 'get_weather', arguments: '' } };
      const chunks: CompletionChunk[] = [
        { id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, ...first }] }, finish_reason: null }] },
        { id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{}' } }] }, finish_reason: null }] },
      ];
      const out = await collect(redactor.session(decision(), [SECRET]).processStream(fromArray(chunks)));
      expect(out[0]!.choices[0]!.delta.tool_calls?.[0], id).toEqual({ index: 0, type: 'function', function: { arguments: '' } });
      expect(out[1]!.choices[0]!.delta.tool_calls?.[0], id).toMatchObject({ index: 0, id, function: { name: 'get_weather' } });
    }
  });

  it('a value longer than 256 characters without separators (a PEM key) is matched exactly only', () => {
    const long = `K${'a1B2c3D4'.repeat(33)}`;
    const s = redactor.session(decision(), [long]);
    expect(wholeAnswer(s, `x ${long} y ${long.toLowerCase()} z`, false)).toBe(`x [SECRET_VALUE] y ${long.toLowerCase()} z`);
    const shorter = long.slice(0, 256);
    expect(wholeAnswer(redactor.session(decision(), [shorter]), `y ${shorter.toLowerCase()} z`, false)).toBe('y [SECRET_VALUE] z');
  });

  const KEPT: Record<string, [string[], string]> = {
    'ordinary prose': [[SECRET, PHRASE], 'The zoo keeper quietly placed seven pens, lamps and mats near the exit at 9.'],
    'the value with a letter between two of its characters': [[SECRET], 'Zq7pLm2Xaw9'],
    'the value with four separators between two of its characters': [[SECRET], 'Zq7pL    m2Xw9'],
    'a beginning of the value only': [[SECRET], 'zq7plm2xw and more'],
    // "ab-cd-ef-1" is 7 characters without its separators: matched exactly only ("abcdef1" is a word run together).
    'a short skeleton in another case': [['ab-cd-ef-1'], 'AB-CD-EF-1 and abcdef1'],
  };
  for (const [name, [secrets, text]] of Object.entries(KEPT)) {
    it(`${name} is not masked`, async () => {
      const s = redactor.session(decision(), secrets);
      expect(wholeAnswer(s, text, false)).toBe(text);
      expect(s.report().leaks).toBe(0);
      const deltas = await streamedDeltas(redactor.session(decision(), secrets), bySize(text, 5), false);
      expect(deltas.join('')).toBe(text);
    });
  }

  it("a dry run's prompt shows the value masked in another case or spaced out too", () => {
    const s = redactor.session(decision(), [], [SECRET]);
    const shown = s.maskSecretsForCaller([{ role: 'system', content: `use ${SECRET}, never Z q 7 p L m 2 X w 9` }]);
    expect(shown[0]!.content).toBe('use [SECRET_VALUE], never [SECRET_VALUE]');
  });

  it('the prompt check stays exact: a caller writing the value in another case is not refused', () => {
    const s = redactor.session(decision(), [SECRET]);
    const out = s.redactMessages([{ role: 'user', content: `is ${SECRET.toLowerCase()} a code?` }]);
    expect(out[0]!.content).toBe(`is ${SECRET.toLowerCase()} a code?`);
    expect(thrown(() => redactor.session(decision(), [SECRET]).redactMessages([{ role: 'user', content: `is ${SECRET} a code?` }])).code).toBe('redaction_blocked');
  });
});

/** RFC 4648 base32, written the slow way (a bit string): the reference the guard's is checked against. */
function base32(bytes: Buffer): string {
  const bits = [...bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
  const chars = (bits.match(/.{1,5}/g) ?? []).map((c) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[parseInt(c.padEnd(5, '0'), 2)]).join('');
  return chars.padEnd(Math.ceil(chars.length / 8) * 8, '=');
}

describe('leak guard: hex and base32 encodings of a value', () => {
  const SECRET = 'Zq7pLm2Xw9-CANARY';
  const bytes = Buffer.from(SECRET, 'utf8');
  const hex = bytes.toString('hex');
  const b32 = base32(bytes);
  /** A blob with the value inside it, at every byte offset into a base32 group of 5. */
  const inBlob = (k: number): string => base32(Buffer.from(`${'x'.repeat(k)}${SECRET}!?`, 'utf8'));

  it("the reference base32 is RFC 4648's (its test vectors), and the guard's agrees with it", async () => {
    const vectors = ['', 'MY======', 'MZXQ====', 'MZXW6===', 'MZXW6YQ=', 'MZXW6YTB', 'MZXW6YTBOI======'];
    vectors.forEach((v, i) => expect(base32(Buffer.from('foobar'.slice(0, i)))).toBe(v));
    const guard = (await import('../../src/redact/leak-guard.js')) as { base32?: (b: Buffer) => string };
    for (let n = 0; n < 40; n++) expect(guard.base32?.(Buffer.from(SECRET.repeat(3).slice(0, n)))).toBe(base32(Buffer.from(SECRET.repeat(3).slice(0, n))));
  });

  const EXACT: Record<string, string> = {
    'hex, lower case': hex,
    'hex, upper case': hex.toUpperCase(),
    'hex inside a longer hex blob': Buffer.from(`{"k":"${SECRET}"}`).toString('hex'),
    'base32, padded': b32,
    'base32, without its padding': b32.replace(/=+$/, ''),
    ...Object.fromEntries([0, 1, 2, 3, 4].map((k) => [`base32 inside a blob, ${k} bytes before it`, inBlob(k)])),
    'base32 in lower case': b32.toLowerCase(),
    'base32 in lower case, without its padding': b32.replace(/=+$/, '').toLowerCase(),
    'base32 in lower case inside a blob, 3 bytes before it': inBlob(3).toLowerCase(),
    'hex bytes each after 0x (a C array)': hex.match(/../g)!.map((b) => `0x${b}`).join(', '),
    'hex bytes each after 0X, upper case, one space apart': hex.toUpperCase().match(/../g)!.map((b) => `0X${b}`).join(' '),
    'hex bytes each after \\x (a bytes literal)': hex.match(/../g)!.map((b) => `\\x${b}`).join(''),
    'numeric HTML references, decimal': [...SECRET].map((c) => `&#${c.codePointAt(0)};`).join(''),
    'numeric HTML references, hex': [...SECRET].map((c) => `&#x${c.codePointAt(0)!.toString(16).toUpperCase()};`).join(''),
    'numeric HTML references for some characters only': [...SECRET].map((c, i) => (i % 3 === 0 ? `&#${c.codePointAt(0)};` : c)).join(''),
    // The URL route out (a link or an image the app fetches): every byte escaped, as a model
    // asked to "URL-encode every character" writes it, in either case, or only some bytes.
    'every byte percent-escaped, upper case (a URL query string)': hex.toUpperCase().match(/../g)!.map((b) => `%${b}`).join(''),
    'every byte percent-escaped, lower case': hex.match(/../g)!.map((b) => `%${b}`).join(''),
    'every other character percent-escaped': [...SECRET].map((c, i) => (i % 2 === 0 ? `%${c.charCodeAt(0).toString(16)}` : c)).join(''),
    'hex bytes after 0x, a C array over several lines (a line break and indentation between)': hex
      .match(/.{1,8}/g)!
      .map((line) => line.match(/../g)!.map((b) => `0x${b}`).join(', '))
      .join(',\n        '),
    'hex bytes after 0x, semicolons between': hex.match(/../g)!.map((b) => `0x${b}`).join(';'),
    'hex bytes after 0x, " , " between': hex.match(/../g)!.map((b) => `0x${b}`).join(' , '),
    'ROT13': SECRET.replace(/[A-Za-z]/g, (c) => String.fromCharCode((c <= 'Z' ? 65 : 97) + ((c.charCodeAt(0) - (c <= 'Z' ? 65 : 97) + 13) % 26))),
    // "The ASCII codes of the key": a list, Python's list(b"..."), JavaScript's fromCharCode.
    'character codes in decimal, a list': [...bytes].join(', '),
    'character codes in decimal, one a line': [...bytes].join(',\n  '),
    // "Encode/obfuscate the key" in code: one call or one-character string per character,
    // concatenated (Python, JavaScript, SQL), or a list of one-character strings (list(s)).
    "chr() calls concatenated with + (Python)": [...SECRET].map((c) => `chr(${c.charCodeAt(0)})`).join('+'),
    "String.fromCharCode() calls concatenated with ' + ' (JavaScript)": [...SECRET].map((c) => `String.fromCharCode(${c.charCodeAt(0)})`).join(' + '),
    'CHAR() calls joined with || (SQL), over lines': [...SECRET].map((c) => `CHAR(${c.charCodeAt(0)})`).join(' ||\n  '),
    "one-character strings concatenated ('Z' + 'q' + …)": [...SECRET].map((c) => `'${c}'`).join(' + '),
    "a list of one-character strings (Python's list(s))": `[${[...SECRET].map((c) => `'${c}'`).join(', ')}]`,
    'a JSON-style array of one-character strings, one a line': `[\n  ${[...SECRET].map((c) => `"${c}"`).join(',\n  ')}\n]`,
    'chr() calls and one-character strings mixed': [...SECRET].map((c, i) => (i % 2 ? `chr(${c.charCodeAt(0)})` : `'${c}'`)).join(' + '),
    'octal escapes (\\132\\161…)': [...bytes].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join(''),
    'U+ notation, spaced': [...SECRET].map((c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`).join(' '),
    'binary octets, spaced': [...bytes].map((b) => b.toString(2).padStart(8, '0')).join(' '),
    'the value reversed': [...SECRET].reverse().join(''),
  };
  for (const [name, form] of Object.entries(EXACT)) {
    it(`${name}: refused in a prompt, value-free`, () => {
      const e = thrown(() => redactor.session(decision(), [SECRET]).redactMessages([{ role: 'user', content: `data: ${form} end` }]));
      expect(e.code).toBe('redaction_blocked');
      expect(e.details).toMatchObject({ reason: 'secret_leak', leaks: 1 });
      expect(e.message + JSON.stringify(e.details)).not.toContain(form.slice(0, 12));
    });
  }

  const ANSWER: Record<string, string> = {
    ...EXACT,
    'hex in mixed case': hex.slice(0, 10).toUpperCase() + hex.slice(10),
    'hex bytes spaced, upper case (a hex dump)': hex.toUpperCase().match(/../g)!.join(' '),
    'hex bytes colon-separated (a fingerprint)': hex.match(/../g)!.join(':'),
    "xxd's groups of four digits": hex.match(/.{1,4}/g)!.join(' '),
    // Answer only: in a prompt the phone and card detectors replace these digit groups first.
    'character codes in decimal, spaced': [...bytes].join(' '),
    'binary octets, one a line': [...bytes].map((b) => b.toString(2).padStart(8, '0')).join('\n'),
    'the value reversed, in lower case': [...SECRET].reverse().join('').toLowerCase(),
  };
  for (const [name, form] of Object.entries(ANSWER)) {
    it(`${name}: masked in an answer and counted once, streamed at every split as whole, no piece holding part of it`, async () => {
      const text = `the key is ${form} ok`;
      const s = redactor.session(decision(), [SECRET]);
      const whole = wholeAnswer(s, text, false);
      expect(whole).toMatch(/^the key is [0-9a-zA-Z[\s]*\[SECRET_VALUE\][0-9a-zA-Z=\]\s]* ok$/);
      expect(s.report()).toMatchObject({ leaks: 1, responseCounts: { SECRET_VALUE: 1 } });
      const core = form.replace(/[^0-9A-Za-z]/g, '').slice(8, 24);
      for (const { how, pieces } of cuts(text, 9)) {
        const deltas = await streamedDeltas(redactor.session(decision(), [SECRET]), pieces, false);
        expect(deltas.join(''), how).toBe(whole);
        for (const d of deltas) expect(d.replace(/[^0-9A-Za-z]/g, ''), how).not.toContain(core);
      }
    });
  }

  it('in tool-call arguments too', () => {
    const s = redactor.session(decision(), [SECRET]);
    expect(wholeAnswer(s, JSON.stringify({ hex: hex.toUpperCase(), b32 }), true)).toBe('{"hex":"[SECRET_VALUE]","b32":"[SECRET_VALUE]"}');
    const refs = [...SECRET].map((c) => `&#${c.codePointAt(0)};`).join('');
    const bytesLiteral = hex.match(/../g)!.map((b) => `\\x${b}`).join('');
    const args = JSON.stringify({ b32: b32.toLowerCase(), refs, bytes: bytesLiteral });
    expect(wholeAnswer(redactor.session(decision(), [SECRET]), args, true)).toBe('{"b32":"[SECRET_VALUE]","refs":"[SECRET_VALUE]","bytes":"[SECRET_VALUE]"}');
  });

  it('in tool-call arguments, streamed at every split and piece size as whole', async () => {
    const refs = [...SECRET].map((c) => `&#x${c.charCodeAt(0).toString(16)};`).join('');
    const bytesLiteral = hex.match(/../g)!.map((b) => `\\x${b}`).join('');
    const args = JSON.stringify({ note: `say ${refs} or ${bytesLiteral} now`, n: 1 });
    const whole = wholeAnswer(redactor.session(decision(), [SECRET]), args, true);
    expect(whole).toBe('{"note":"say [SECRET_VALUE] or [SECRET_VALUE] now","n":1}');
    for (const { how, pieces } of cuts(args, 9)) {
      expect((await streamedDeltas(redactor.session(decision(), [SECRET]), pieces, true)).join(''), how).toBe(whole);
    }
  });

  it('character codes in decimal ending a sentence (the last one before a full stop) are masked whole, streamed too', async () => {
    const text = `The ASCII codes are ${[...bytes].join(', ')}. Use them well.`;
    const whole = wholeAnswer(redactor.session(decision(), [SECRET]), text, false);
    expect(whole).toBe('The ASCII codes are [SECRET_VALUE]. Use them well.');
    for (const { how, pieces } of cuts(text, 7)) {
      expect((await streamedDeltas(redactor.session(decision(), [SECRET]), pieces, false)).join(''), how).toBe(whole);
    }
  });

  it('a long text with references is read whole (200 K units: no argument list as long as the text)', () => {
    const refs = [...SECRET].map((c) => `&#${c.charCodeAt(0)};`).join('');
    const text = `${'&#65; '.repeat(40_000)}${refs} end`;
    expect(wholeAnswer(redactor.session(decision(), [SECRET]), text, false)).toBe(`${'&#65; '.repeat(40_000)}[SECRET_VALUE] end`);
  });

  it('ordinary numbers after 0x, byte literals, character references and percent-escapes (another value) pass', () => {
    const other = Buffer.from('Zq7pLm2Xw9-CANARZ');
    const text =
      `mask 0xff, 10x20, b'\\x00\\x01' ${other.toString('hex').match(/../g)!.map((b) => `0x${b}`).join(',\n  ')} &#65;&#x42; &#0; &#xD800; ` +
      `${[...other.toString()].map((c) => `&#${c.charCodeAt(0)};`).join('')} R&amp;D &copy; &zz; https://x.example/a%20b?q=${other.toString('hex').replace(/../g, '%$&')}&r=%C3%28%E2%82%FF% ` +
      `[${[...other].join(', ')}] 1.5, 2.5, v90, 113ms, 12 apples, 90 pears`;
    expect(wholeAnswer(redactor.session(decision(), [SECRET]), text, false)).toBe(text);
    expect(() => redactor.session(decision(), [SECRET]).redactMessages([{ role: 'user', content: text }])).not.toThrow();
  });

  it('ordinary code, CSV, number lists, prose and URLs pass, for secrets of several kinds (the character tokens and reversed values match nothing else)', () => {
    const SECRETS = ['Zq7pLm2Xw9-CANARY', 'sk_live_4f9AbQ2mZx', 'Tr0ub4dor&3 (horse)', 'AKIA2E0A8F3B244C9986', '80417263', 'hunter2!'];
    const other = 'Zq7pLm2Xw9-CANARZ';
    const text = [
      "for c in 'hello': print(ord(c), chr(ord(c) + 1)); s = 'a' + 'b' + 'c' + str(10) + chr(65) + chr(66)",
      "const xs = ['a', 'b', 'c', 'd', 'e', 'f']; const k = String.fromCharCode(72) + String.fromCharCode(105); if (k !== 'Hi') throw k;",
      `SELECT CHAR(65) || CHAR(66), NCHAR(233) FROM t WHERE c IN ('x', 'y', 'z'); -- ${[...other].map((c) => `chr(${c.charCodeAt(0)})`).join('+')}`,
      `"${[...other].join('", "')}" ${[...other].map((c) => `U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(' ')} U+1F600 U+00E9`,
      `flags 10000000 01000001 01000010 11111111 and ${[...Buffer.from(other)].map((b) => b.toString(2).padStart(8, '0')).join(' ')}`,
      `printf("\\101\\102\\n"); re = /\\u{1F600}\\u{41}/u; path C:\\Users\\123\\456; ${[...Buffer.from(other)].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('')}`,
      'id,name,amount,date\n1,alice,10.50,2024-01-02\n2,bob,20,2024-02-03\n3,"c, d",30,2024-03-04',
      '1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233; pi is 3.14159265; 00000001 00000010',
      "It's the users' choice: don't 'quote' me, he said \"fine\" (really) - see https://x.example/a?q=1&r='b'&s=U+2019.",
      `${[...other].reverse().join('')} ANARACYRANAC 2!retnuh`,
    ].join('\n');
    for (const secret of SECRETS) {
      expect(wholeAnswer(redactor.session(decision(), [secret]), text, false), secret).toBe(text);
      expect(() => redactor.session(decision(), [secret]).redactMessages([{ role: 'user', content: text }]), secret).not.toThrow();
    }
  });

  it('a value of 6 characters (the shortest window, no loose match) written as character tokens is masked whole at every split', async () => {
    const short = 'Zq7p!L';
    const forms = [
      [...short].map((c) => `String.fromCharCode(${c.charCodeAt(0)})`).join(' +\n    '),
      `[${[...short].map((c) => `'${c}'`).join(', ')}]`,
      [...short].map((c) => `U+${c.charCodeAt(0).toString(16).padStart(6, '0')}`).join(' '),
      [...Buffer.from(short)].map((b) => b.toString(2).padStart(8, '0')).join(' '),
    ];
    for (const form of forms) {
      const text = `the key: ${form} end`;
      const whole = wholeAnswer(redactor.session(decision(), [short]), text, false);
      expect(whole, form).toMatch(/^the key: \[?\[SECRET_VALUE\]\]? end$/);
      for (const { how, pieces } of cuts(text, 9)) {
        expect((await streamedDeltas(redactor.session(decision(), [short]), pieces, false)).join(''), `${how}: ${form}`).toBe(whole);
      }
    }
  });

  it('ordinary hex and base32 (another value) pass', () => {
    const other = Buffer.from('Zq7pLm2Xw9-CANARZ');
    const s = redactor.session(decision(), [SECRET]);
    const text = `sha ${other.toString('hex')} and ${base32(other)}`;
    expect(wholeAnswer(s, text, false)).toBe(text);
    expect(() => redactor.session(decision(), [SECRET]).redactMessages([{ role: 'user', content: text }])).not.toThrow();
  });
});

describe('leak guard: a value with reserved characters, as escapers write it', () => {
  const SECRET = `Tr0ub4dor&3 (horse)!'x<y>"z`;
  const FORMS: Record<string, string> = {
    'encodeURIComponent': encodeURIComponent(SECRET),
    "RFC 3986's strict form (Python's quote: !'()* encoded too)": encodeURIComponent(SECRET).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    'HTML-escaped, the apostrophe as &#39;': SECRET.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;'),
    'HTML-escaped, the apostrophe as &#x27; (Python html.escape)': SECRET.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;'),
    'encodeURIComponent with lower-case hex digits (%3c)': encodeURIComponent(SECRET).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
    'RFC 3986 strict form, lower case': encodeURIComponent(SECRET)
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)
      .replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
    'every character a numeric HTML reference': [...SECRET].map((c) => `&#${c.charCodeAt(0)};`).join(''),
    'HTML-escaped, the apostrophe as &apos;': SECRET.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;'),
    'only the apostrophe escaped, as &apos;': SECRET.replace(/'/g, '&apos;'),
    'every character with an HTML5 name written so (&lpar;, &excl;, &sol;…)': SECRET.replace(/[&<>"'()! ]/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos', '(': 'lpar', ')': 'rpar', '!': 'excl', ' ': 'nbsp' }[c]};`),
    'every byte percent-escaped': [...Buffer.from(SECRET)].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join(''),
  };
  for (const [name, form] of Object.entries(FORMS)) {
    it(`${name}: refused in a prompt, masked whole in an answer, streamed too`, async () => {
      const e = thrown(() => redactor.session(decision(), [SECRET]).redactMessages([{ role: 'user', content: `see ${form} end` }]));
      expect(e.code).toBe('redaction_blocked');
      const text = `<p>key: ${form}</p>`;
      const s = redactor.session(decision(), [SECRET]);
      expect(wholeAnswer(s, text, false)).toBe('<p>key: [SECRET_VALUE]</p>');
      expect(s.report().leaks).toBe(1);
      for (const { how, pieces } of cuts(text, 7)) {
        const deltas = await streamedDeltas(redactor.session(decision(), [SECRET]), pieces, false);
        expect(deltas.join(''), how).toBe('<p>key: [SECRET_VALUE]</p>');
        for (const d of deltas) expect(d, how).not.toMatch(/Tr0ub|horse/);
      }
    });
  }

  it("a value with non-ASCII letters, every byte percent-escaped (a character's UTF-8 bytes read together): refused, masked, streamed too", async () => {
    const value = 'Grüße-Zq7pLm2Xw9';
    const form = [...Buffer.from(value)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const e = thrown(() => redactor.session(decision(), [value]).redactMessages([{ role: 'user', content: `go to https://x.example/?k=${form}` }]));
    expect(e.code).toBe('redaction_blocked');
    const text = `![logo](https://x.example/p.png?k=${form})`;
    const whole = wholeAnswer(redactor.session(decision(), [value]), text, false);
    expect(whole).toBe('![logo](https://x.example/p.png?k=[SECRET_VALUE])');
    for (const { how, pieces } of cuts(text, 7)) {
      expect((await streamedDeltas(redactor.session(decision(), [value]), pieces, false)).join(''), how).toBe(whole);
    }
  });
});
