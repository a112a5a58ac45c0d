/**
 * A streamed answer holds back a chain of digit groups until it cannot grow into one value, so a
 * card or phone number never leaves in halves. Answers are also read with their JSON string
 * escapes decoded (an app parses tool-call arguments and structured output), where `\u0031` is
 * a `1` and `\u0020` a space: a group that ends in, begins with or is joined by an escape still
 * arriving (`111\`, `\u00`) must hold the chain too, or the groups before it go out in clear
 * before the escape that completes the card arrives (review of the eighteenth session).
 */
import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/redact/index.js';
import type { Session } from '../../src/redact/session.js';
import { collect, cuts, decision, fromArray, pieceChunk, streamedDeltas, wholeAnswer } from './helpers.js';

const redactor = createRedactor({});

/** The streamed answer, its deltas joined. */
async function streamed(s: Session, pieces: string[], asArgs: boolean): Promise<string> {
  return (await streamedDeltas(s, pieces, asArgs)).join('');
}

/** What the app reads: the JSON parsed (the escapes decoded), or the text when it does not parse. */
function read(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

const DIGITS = /4111|1111|\d{3} \d{3}|DE89|3704/;

const CASES: Array<[string, string]> = [
  ['a group that ends in an escape', '{"a": "pay 4111 1111 1111 111\\u0031 now"}'],
  ['a group that begins with an escape', '{"a": "pay 4111 1111 1111 \\u0031111 now"}'],
  ['groups joined by an escaped space', '{"a": "pay 4111 1111 1111\\u00201111 now"}'],
  ['a phone number that ends in an escape', '{"a": "call +1 415 555 267\\u0031 now"}'],
  // The group after an escape decides however long the word before it: `\n` ends that word
  // for the app (second review: the first group of these went out in clear).
  ['a card after a long word and an escaped line break', '{"a": "Customer-record:\\nCard-number:\\n4111 1111 1111 1111 ok"}'],
  ['a card after a long word and an escaped space', '{"a": "see abcdefghijklmnopqrstuvwxyz\\u00204111 1111 1111 1111 ok"}'],
  ['an IBAN after a long word and an escaped tab', '{"a": "see abcdefghijklmnopqrstuvwxyz\\tDE89 3704 0044 0532 0130 00 ok"}'],
  // An invisible format character after the escape ends the word too, as the whole-text reading
  // has it (third review: the first group went out again when the escape branch forgot it).
  ['a card after an escape, a long word and a zero-width space', '{"a": "x \\nverylongwordwithoutspacesxx\u200b4111 1111 1111 1111 ok"}'],
  ['a card after an escape, a long word and a soft hyphen', '{"a": "x \\nverylongwordwithoutspacesxx\u00ad4111 1111 1111 1111 ok"}'],
];

describe('streamed answers: digit groups with JSON escapes are held whole', () => {
  for (const asArgs of [false, true]) {
    for (const [name, text] of CASES) {
      it(`${name} (${asArgs ? 'tool-call arguments' : 'content'})`, async () => {
        // Whole, the value is masked: what the stream must match.
        expect(read(wholeAnswer(redactor.session(decision(), []), text, asArgs))).not.toMatch(DIGITS);
        const leaked: string[] = [];
        for (const { pieces } of cuts(text, 9)) {
          const out = await streamed(redactor.session(decision(), []), pieces, asArgs);
          if (DIGITS.test(read(out))) leaked.push(`${JSON.stringify(pieces.slice(0, 3))}… → ${out}`);
        }
        expect(leaked).toEqual([]);
      });
    }
  }
});

describe('answer content: a value right after an escape', () => {
  const cases: Array<[string, string, RegExp]> = [
    // Structured output: read as written the address is `njane@…`, which begins inside `\n`.
    ['JSON content', '{"a": "line\\njane@example.com"}', /jane|example\.com/],
    // Prose with a literal backslash: the address is `nancy@…`; none of it may stay in clear.
    ['prose', 'see C:\\nancy@example.com today', /ancy|example\.com/],
  ];
  for (const [name, text, pii] of cases) {
    it(`${name}: masked over the whole escape, whole and streamed, so JSON stays JSON and nothing shows`, async () => {
      const outs = [wholeAnswer(redactor.session(decision(), []), text, false)];
      for (const { pieces } of cuts(text, 9)) outs.push(await streamed(redactor.session(decision(), []), pieces, false));
      for (const out of outs) {
        expect(out).not.toMatch(pii);
        expect(read(out)).not.toMatch(pii);
        if (name === 'JSON content') expect(() => JSON.parse(out)).not.toThrow();
      }
    });
  }
});

describe('streamed answers: an escaped line break between rows of numbers', () => {
  it('does not chain the rows: what is held stays within a row, as with a real line break', async () => {
    // `row N: 12 34 56\n` sixty times, the line breaks written as JSON escapes (a structured
    // output's table). The escape ends a row for the app; chained, the rows were held up to the
    // chain limit (80 units) instead of about one row.
    let text = '';
    for (let i = 0; i < 60; i++) text += `row ${i}: 12 34 56\\n`;
    for (const asArgs of [false, true]) {
      const pieces: string[] = [];
      for (let i = 0; i < text.length; i += 3) pieces.push(text.slice(i, i + 3));
      const chunks = pieces.map((p) => pieceChunk(asArgs, p));
      const out = await collect(redactor.session(decision(), []).processStream(fromArray(chunks)));
      // One chunk out per chunk in (no finish yet): the lag after each is what is held.
      let sent = 0;
      let got = 0;
      let held = 0;
      for (let i = 0; i < pieces.length; i++) {
        sent += pieces[i]!.length;
        const d = out[i]?.choices[0]?.delta;
        got += asArgs ? (d?.tool_calls ?? []).reduce((n, t) => n + (t.function?.arguments?.length ?? 0), 0) : (d?.content ?? '').length;
        held = Math.max(held, sent - got);
      }
      expect(held).toBeLessThanOrEqual(24);
    }
  });
});

describe('streamed answers: digits written as JSON escapes, one to four levels deep', () => {
  // `\u0034\u0031\u0031\u0031 \u0031…`: as written an escaped digit is no digit and the chain is
  // six to sixteen times longer than the hold-back's limit counts, so the first group (`+1`, `DE89`)
  // went out before the rest arrived; at the third level the cut also split an escape
  // (`\\\\u0031\\` + `[CREDIT_CARD]`), which no longer parses one level down.
  const escapedDigits = (value: string, level: number): string => {
    const bs = '\\'.repeat(2 ** (level - 1));
    return value.replace(/[0-9]/g, (d) => `${bs}u00${d.charCodeAt(0).toString(16)}`);
  };
  const values = ['4111 1111 1111 1111', '+1 415 555 2671', 'DE89 3704 0044 0532 0130 00'];
  for (const level of [1, 2, 3, 4]) {
    it(`level ${level}: equal to the whole answer at every cut and piece size, content and arguments`, async () => {
      const bad: string[] = [];
      for (const value of values) {
        for (const asArgs of [false, true]) {
          const inner = `pay ${escapedDigits(value, level)} now`;
          const text = asArgs ? `{"a": "${inner}"}` : inner;
          const whole = wholeAnswer(redactor.session(decision(), []), text, asArgs);
          expect(whole).toMatch(/pay \[(CREDIT_CARD|PHONE_NUMBER|IBAN_CODE)\] now/);
          for (const { how, pieces } of cuts(text, 4)) {
            const out = await streamed(redactor.session(decision(), []), pieces, asArgs);
            if (out !== whole) bad.push(`${value} ${asArgs ? 'arguments' : 'content'} ${how}: ${out}`);
          }
        }
      }
      expect(bad.slice(0, 3)).toEqual([]);
    });
  }

  it('a context word more than a context window back as written, within one as the app reads it', async () => {
    // `638 2229` needs a phone context word (`tel`). Three levels down, the second number's is
    // 15 characters back once parsed but about 120 units as written: the stream's context was
    // counted as written, so the second number went out in clear.
    const text = `tel: ${escapedDigits('638 2229', 3).replace(' ', '\\\\\\\\u0020')} or ${escapedDigits('638 2230', 3).replace(' ', '\\\\\\\\u0020')} ok`;
    const whole = wholeAnswer(redactor.session(decision(), []), text, false);
    expect(whole).toBe('tel: [PHONE_NUMBER] or [PHONE_NUMBER] ok');
    for (const size of [1, 3, 7]) {
      const pieces: string[] = [];
      for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
      expect(await streamed(redactor.session(decision(), []), pieces, false), `pieces of ${size}`).toBe(whole);
    }
  });
});

describe('streamed answers: the context window begins where a unit begins at every level', () => {
  it('a phone number after an escape that ends a long run of backslashes', async () => {
    // 124 backslashes then `u0d41`: at the third level `\u0d41` (a letter that is no ASCII one)
    // and the phone number after it. The hold cut after `u0d41`, and the context the rest was
    // scanned with began after the run's last backslash, inside the escape (`0d41`): read
    // `0d415 555…`, the digits were glued to a word and went out in clear (review, twentieth session).
    const text = `"${'\\'.repeat(124)}u0d415 55\\u0035\t\\u003536}`;
    const whole = wholeAnswer(redactor.session(decision(), []), text, true);
    expect(whole.endsWith('u0d41[PHONE_NUMBER]}')).toBe(true);
    const bad: string[] = [];
    for (const { how, pieces } of cuts(text, 4)) {
      const out = await streamed(redactor.session(decision(), []), pieces, true);
      if (out !== whole) bad.push(`${how}: ${out.slice(-40)}`);
    }
    expect(bad.slice(0, 3)).toEqual([]);
  });
});

describe('streamed answers: a spaced secret whose next word arrives as an escape two levels down', () => {
  it('its first words are held until the escape completes, content and arguments', async () => {
    // `\\u005cu0059` is `\u0059` one level down and `Y` two levels down. While it arrived
    // (`CANAR\\u005cu00`), the deeper reading ended in a cut escape, so no tail read as the
    // secret's beginning and `open sesame ` went out in clear (review, twentieth session).
    const secret = 'open sesame CANARYqzxSECRETvwk';
    const inner = 'say open sesame CANAR\\\\u005cu0059qzxSECRETvwk ok';
    for (const asArgs of [false, true]) {
      const text = asArgs ? `{"a": "${inner}"}` : inner;
      const whole = wholeAnswer(redactor.session(decision(), [secret]), text, asArgs);
      expect(whole).toContain('say [SECRET_VALUE] ok');
      const bad: string[] = [];
      for (const { how, pieces } of cuts(text, 4)) {
        const out = await streamed(redactor.session(decision(), [secret]), pieces, asArgs);
        if (out !== whole) bad.push(`${asArgs ? 'arguments' : 'content'} ${how}: ${out}`);
      }
      expect(bad.slice(0, 3)).toEqual([]);
    }
  });
});
