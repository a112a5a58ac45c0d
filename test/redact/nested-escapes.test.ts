/**
 * JSON inside a JSON string escapes its values twice (a tool result that wraps an HTTP body, a
 * structured output whose field holds serialised JSON): `+1\\u00a0415\\u00a0555\\u00a02671` is
 * a phone number once JSON.parse has run twice. The prompt and the answer read every level of
 * escapes (up to MAX_ESCAPE_LEVELS), map what they find back over the escapes as written, and
 * keep the JSON valid at every level. Before, one level was read: such values went through.
 * Streaming holds an escape still arriving at any level (`\\u00`, a trailing `\\`), and the
 * streamed output equals the whole one (a seeded, bounded fuzz).
 */
import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/redact/index.js';
import { jsonEscapeReadings, LeakGuard, MAX_ESCAPE_LEVELS } from '../../src/redact/leak-guard.js';
import type { ChatMessage } from '../../src/pipeline/types.js';
import { mulberry32 } from '../../scripts/lib/prng.js';
import { bySize, cuts, decision, streamedDeltas, thrown, wholeAnswer } from './helpers.js';

const redactor = createRedactor({ hashKey: Buffer.from('tenant-key-0123456789') });
const CANARY = 'CANARY-SECRET-7f3a';
const MAIL = 'jane.doe@example.com';

/** `value` as JSON.stringify writes it, non-ASCII escaped as json.dumps does, without the quotes. */
function escapeOnce(value: string): string {
  return JSON.stringify(value)
    .slice(1, -1)
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `inner` (a JSON text) as the body of a JSON string `levels - 1` times over, in `{"body": …}`. */
function wrapped(inner: string, levels: number): string {
  let text = inner;
  for (let l = 1; l < levels; l++) text = `{"body": "${escapeOnce(text)}"}`;
  return text;
}

/** Every reading of `text` an app gets by parsing it, then the string it holds, down to the bottom. */
function readings(text: string): string[] {
  const out = [text];
  let cur: unknown = text;
  for (let l = 0; l < 6 && typeof cur === 'string'; l++) {
    try {
      cur = JSON.parse(cur);
    } catch {
      break;
    }
    if (cur !== null && typeof cur === 'object' && 'body' in cur) cur = (cur as { body: unknown }).body;
    out.push(typeof cur === 'string' ? cur : JSON.stringify(cur));
  }
  return out;
}

/** The PII and the secret, in any reading. */
const LEAK = /jane\.doe|example\.com|415.555.2671|4111.1111|CANARY|ANARY-SECRET/;

function expectClean(text: string): void {
  for (const r of readings(text)) expect(r).not.toMatch(LEAK);
}

/** Parses `text` `levels` times (each level's `body`): throws if any level is not valid JSON. */
function parseDown(text: string, levels: number): Record<string, string> {
  let cur = JSON.parse(text) as Record<string, string>;
  for (let l = 1; l < levels; l++) cur = JSON.parse(cur['body']!) as Record<string, string>;
  return cur;
}

const INNER = `{"phone": "${escapeOnce('+1\u00a0415\u00a0555\u00a02671')}", "email": "jane.doe\\u0040example.com", "note": "line\\nok"}`;

describe('jsonEscapeReadings', () => {
  it('reads every level, each mapped to the text as written, and stops at MAX_ESCAPE_LEVELS', () => {
    expect(jsonEscapeReadings('no escape here')).toEqual([]);
    expect(jsonEscapeReadings('C:\\u00zz stays')).toEqual([]);
    const two = wrapped(INNER, 2);
    const r = jsonEscapeReadings(two);
    expect(r).toHaveLength(2);
    expect(r[0]!.text).toBe(`{"body": "${INNER}"}`);
    expect(r[1]!.text).toContain('"email": "jane.doe@example.com"');
    // The deepest reading holds the phone decoded; its span maps over the escapes as written.
    const at = r[1]!.text.indexOf('+1\u00a0415');
    expect(at).toBeGreaterThan(0);
    const end = at + '+1\u00a0415\u00a0555\u00a02671'.length;
    expect(two.slice(r[1]!.starts![at]!, r[1]!.ends![end - 1]!)).toBe('+1\\\\u00a0415\\\\u00a0555\\\\u00a02671');
    // One level of escapes: one reading, no second pass.
    expect(jsonEscapeReadings(INNER)).toHaveLength(1);
    // Six levels of backslashes: read to the bound, no further.
    expect(jsonEscapeReadings(wrapped(INNER, 6))).toHaveLength(MAX_ESCAPE_LEVELS);
  });
});

describe('the prompt: values escaped at the second and third level', () => {
  const history = (content: string): ChatMessage[] => [
    { role: 'user', content: 'look it up' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'fetch', arguments: '{"id": 7}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content },
  ];

  for (const levels of [2, 3]) {
    it(`mask: a tool result ${levels} levels deep goes up with the phone and address masked, valid JSON at every level`, () => {
      const s = redactor.session(decision(), []);
      const out = s.redactMessages(history(wrapped(INNER, levels)))[2]!.content as string;
      expectClean(out);
      expect(parseDown(out, levels)).toEqual({ phone: '[PHONE_NUMBER]', email: '[EMAIL_ADDRESS]', note: 'line\nok' });
      expect(s.report().counts).toEqual({ EMAIL_ADDRESS: 1, PHONE_NUMBER: 1 });
    });
  }

  it('a value right after an escape of the second level is replaced after the whole escape: both levels stay valid', () => {
    const text = wrapped(`{"a": "line\\n${MAIL}"}`, 2);
    const out = redactor.session(decision(), []).redactText(text);
    expect(parseDown(out, 2)).toEqual({ a: 'line\n[EMAIL_ADDRESS]' });
  });

  it('tokenize: the placeholder sits inside the inner JSON and the answer restores the value as the caller wrote it', () => {
    const s = redactor.session(decision({ mode: 'tokenize' }), []);
    const text = wrapped(`{"email": "jane.doe\\u0040example.com"}`, 2);
    const out = s.redactText(text);
    const inner = parseDown(out, 2);
    expect(inner['email']).toMatch(/^<EMAIL_ADDRESS_\d+>$/);
    const answer = s.processCompletion({ id: 'x', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: `mail ${inner['email']}` } }] });
    expect(answer.choices[0]!.message.content).toBe('mail jane.doe\\\\u0040example.com');
  });

  it('a placeholder escaped at the second level is reserved (never minted for another value)', () => {
    const s = redactor.session(decision({ mode: 'tokenize' }), []);
    const out = s.redactMessages([
      { role: 'user', content: wrapped('{"x": "\\u003cEMAIL_ADDRESS_1>"}', 2) },
      { role: 'user', content: `mail ${MAIL}` },
    ]);
    expect(out[1]!.content).not.toBe('mail <EMAIL_ADDRESS_1>');
    expect(out[1]!.content).toMatch(/^mail <EMAIL_ADDRESS_\d+>$/);
  });

  it('a granted secret escaped at the second or third level refuses the request, counted once', () => {
    for (const levels of [2, 3]) {
      const text = wrapped(`{"code": "\\u0043\\u0041${CANARY.slice(2)}"}`, levels);
      const e = thrown(() => redactor.session(decision(), [CANARY]).redactMessages(history(text)));
      expect(e.details, `levels ${levels}`).toEqual({ reason: 'secret_leak', entities: ['SECRET_VALUE'], leaks: 1 });
      expect(`${e.message} ${JSON.stringify(e.details)}`).not.toMatch(/CANARY|ANARY|u0043/);
    }
    // Plain inside escaped JSON: found at every level, at one place: one leak.
    const plain = wrapped(`{"note": "a\\nb", "code": "${CANARY}"}`, 3);
    expect(thrown(() => redactor.session(decision(), [CANARY]).redactText(plain)).details).toMatchObject({ leaks: 1 });
  });
});

describe('the prompt keeps its rule for a value right after an escape (README Status and limits)', () => {
  it('tokenize restores exactly the value after the escape; widened over it, the answer would get `\\n` back with it', () => {
    const s = redactor.session(decision({ mode: 'tokenize' }), []);
    const out = s.redactText(`{"a": "line\\n${MAIL}"}`);
    expect(out).toMatch(/^\{"a": "line\\n<EMAIL_ADDRESS_\d+>"\}$/);
    const token = /<EMAIL_ADDRESS_\d+>/.exec(out)![0];
    const answer = s.processCompletion({ id: 'x', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: `mail ${token}` } }] });
    expect(answer.choices[0]!.message.content).toBe(`mail ${MAIL}`);
    // Mask: the same place, so the prompt's replacement does not depend on the mode.
    expect(redactor.session(decision(), []).redactText(`C:\\n${'n' + MAIL.slice(1)}`)).toBe('C:\\n[EMAIL_ADDRESS]');
  });
});

describe('the answer: values escaped at the second level, whole and streamed', () => {
  const answerInner = `{"phone": "${escapeOnce('+1\u00a0415\u00a0555\u00a02671')}", "email": "jane.doe\\u0040example.com", "card": "4111\\u00201111\\u00201111\\u00201111", "code": "\\u0043\\u0041${CANARY.slice(2)}", "note": "line\\nok"}`;
  const expected = { phone: '[PHONE_NUMBER]', email: '[EMAIL_ADDRESS]', card: '[CREDIT_CARD]', code: '[SECRET_VALUE]', note: 'line\nok' };

  for (const asArgs of [false, true]) {
    it(`${asArgs ? 'tool-call arguments' : 'content'}: whole, and streamed at every cut, the inner JSON parses to the masks`, async () => {
      const text = wrapped(answerInner, 2);
      const whole = wholeAnswer(redactor.session(decision(), [CANARY]), text, asArgs);
      expect(parseDown(whole, 2)).toEqual(expected);
      const bad: string[] = [];
      for (const { how, pieces } of cuts(text, 9)) {
        const got = (await streamedDeltas(redactor.session(decision(), [CANARY]), pieces, asArgs)).join('');
        if (got !== whole) bad.push(`${how}: ${got}`);
      }
      expect(bad.slice(0, 3)).toEqual([]);
    });
  }

  it('a streamed escape cut at the second level (`\\\\u00`, a trailing `\\\\`) is held until it is whole', async () => {
    for (const asArgs of [false, true]) {
      const text = wrapped(`{"code": "\\u0043\\u0041${CANARY.slice(2)}"}`, 2);
      const i = text.indexOf('\\\\u0041') + 4; // after `\\u0`
      for (const cut of [i, text.indexOf('\\\\u0041') + 1, text.indexOf('\\\\u0041') + 2]) {
        const deltas = await streamedDeltas(redactor.session(decision(), [CANARY]), [text.slice(0, cut), text.slice(cut)], asArgs);
        expectClean(deltas.join(''));
        for (const d of deltas) expect(d).not.toMatch(/\\u0043\\*$/);
      }
    }
  });
});

describe('the hold-back: a value still arriving at the second level', () => {
  const PHRASE = `open sesame ${CANARY}`;
  it('is held from its start while an escape of the second level is cut (`\\\\u00`, `\\\\`, `\\\\\\`)', () => {
    const guard = new LeakGuard([PHRASE]);
    const head = '{"body": "{\\"x\\": \\"say open sesame \\\\u0043';
    for (const tail of ['\\\\u00', '\\\\u0', '\\\\u', '\\\\', '\\', '\\\\\\']) {
      // From the value's start or before it (a loose match may begin earlier), never after.
      expect(guard.heldFrom(head + tail, true), JSON.stringify(tail)).toBeLessThanOrEqual(head.indexOf('open'));
    }
    // Where the hold starts depends on the text, not on whether it begins the value: the same
    // for another value of the same length, and for a text that begins no value.
    const other = new LeakGuard([PHRASE.replace('open', 'shut')]);
    for (const text of [head, '{"body": "{\\"x\\": \\"say shut sesame \\\\u0043']) {
      for (const tail of ['\\\\u00', '\\\\', '']) expect(guard.heldFrom(text + tail, true), JSON.stringify(text + tail)).toBe(other.heldFrom(text + tail, true));
    }
  });

  it('streamed in two pieces cut inside such an escape, the secret never leaves in part', async () => {
    const text = wrapped(`{"x": "say open sesame \\u0043\\u0041${CANARY.slice(2)} ok"}`, 2);
    const whole = wholeAnswer(redactor.session(decision(), [PHRASE]), text, true);
    expect(parseDown(whole, 2)).toEqual({ x: 'say [SECRET_VALUE] ok' });
    for (const { how, pieces } of cuts(text, 0)) {
      const deltas = await streamedDeltas(redactor.session(decision(), [PHRASE]), pieces, true);
      expect(deltas.join(''), how).toBe(whole);
    }
  });
});

describe('seeded fuzz: values escaped one to three levels deep, streamed in random pieces, equal the whole answer', () => {
  const values = [
    ['phone', '+1\u00a0415\u00a0555\u00a02671'],
    ['email', MAIL],
    ['card', '4111 1111 1111 1111'],
    ['code', CANARY],
    ['note', 'line\nok "quoted" C:\\path'],
    ['word', 'Customer-record:\nCard-number:'],
  ] as const;

  it('120 texts (content and arguments), pieces of 1 to 12 units', async () => {
    const rnd = mulberry32(190019);
    const failures: string[] = [];
    for (let iter = 0; iter < 120; iter++) {
      const fields: string[] = [];
      const count = 2 + Math.floor(rnd() * 4);
      for (let k = 0; k < count; k++) {
        const [name, value] = values[Math.floor(rnd() * values.length)]!;
        // Some values escaped by the app itself (`@` as \u0040, a space as \u0020).
        let v = escapeOnce(value);
        if (rnd() < 0.5) v = v.replace('@', '\\u0040').replace(' ', '\\u0020');
        fields.push(`"${name}${k}": "${v}"`);
      }
      const levels = 1 + Math.floor(rnd() * 3);
      const text = wrapped(`{${fields.join(', ')}}`, levels);
      const asArgs = rnd() < 0.5;
      const whole = wholeAnswer(redactor.session(decision(), [CANARY]), text, asArgs);
      expectClean(whole);
      parseDown(whole, levels); // valid at every level
      const pieces: string[] = [];
      for (let i = 0; i < text.length; ) {
        const size = 1 + Math.floor(rnd() * 12);
        pieces.push(text.slice(i, i + size));
        i += size;
      }
      const got = (await streamedDeltas(redactor.session(decision(), [CANARY]), pieces, asArgs)).join('');
      if (got !== whole) failures.push(JSON.stringify({ iter, levels, asArgs, text, whole, got }));
    }
    expect(failures.slice(0, 2)).toEqual([]);
  });
});


describe('review: the stream at deeper levels and an argument escape of the first level', () => {
  // A spaced granted secret whose letters a serialiser escaped two, three or four levels down
  // (its spaces as written): the hold-back window was as wide as `need` units of the first
  // reading only, which holds a few letters of the value at the third level. The start of the
  // value fell out of the window, nothing was held, and the whole phrase left in clear in parts.
  const PHRASE = `open sesame ${CANARY}`;
  for (const levels of [2, 3, 4]) {
    it(`a spaced secret escaped ${levels} levels down is held whole, content and arguments`, async () => {
      const bs = '\\'.repeat(2 ** (levels - 1));
      const value = [...PHRASE].map((c) => (c === ' ' ? ' ' : `${bs}u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`)).join('');
      const open = [...'open'].map((c) => `${bs}u00${c.charCodeAt(0).toString(16)}`).join('');
      for (const asArgs of [false, true]) {
        const text = asArgs ? `{"a": "say ${value} now"}` : `say ${value} now`;
        const whole = wholeAnswer(redactor.session(decision(), [PHRASE]), text, asArgs);
        expect(whole).toBe(asArgs ? '{"a": "say [SECRET_VALUE] now"}' : 'say [SECRET_VALUE] now');
        for (const size of [1, 5, 12]) {
          const got = (await streamedDeltas(redactor.session(decision(), [PHRASE]), bySize(text, size), asArgs)).join('');
          expect(got, `${asArgs ? 'arguments' : 'content'}, pieces of ${size}`).not.toContain(open);
          expect(got).toBe(whole);
        }
      }
    });
  }

  it('an argument keeps its own `\\n` before a value when a deeper escape is elsewhere in it, whole and streamed', async () => {
    // `C:\\new` reads `C:<LF>ew` two levels down: the whole answer then widened the email over the
    // first level's `\n` (the newline lost), the stream (which had not seen the path yet) did not.
    const text = `{"body": "x \\n${MAIL} \\nC:\\\\new \\nz"}`;
    const whole = wholeAnswer(redactor.session(decision(), []), text, true);
    expect(whole).toBe('{"body": "x \\n[EMAIL_ADDRESS] \\nC:\\\\new \\nz"}');
    const bad: string[] = [];
    for (const { how, pieces } of cuts(text, 12)) {
      const got = (await streamedDeltas(redactor.session(decision(), []), pieces, true)).join('');
      if (got !== whole) bad.push(`${how}: ${got}`);
    }
    expect(bad.slice(0, 3)).toEqual([]);
  });
});
