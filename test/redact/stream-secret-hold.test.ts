/**
 * `redaction.stream_secret_hold`: what a stream that guards a secret holds back for the leak
 * guard. `window` (default) holds a fixed tail whatever it holds; `prefix` only a tail that could
 * begin a guarded value (in every reading the guard searches: folded, spaced, JSON escapes at every
 * level, encoded characters decoded), so its first words go on at once, and its chunk boundaries
 * tell whether a text begins a secret. Both mask a secret whole however the stream is cut.
 */
import { describe, expect, it } from 'vitest';
import type { CompletionChunk } from '../../src/pipeline/types.js';
import { createRedactor } from '../../src/redact/index.js';
import { LeakGuard } from '../../src/redact/leak-guard.js';
import { collect, cuts, decision, fromArray, streamedDeltas, wholeAnswer } from './helpers.js';

const SECRET = 'Zq7pLm2Xw9-CANARY';
const PHRASE = 'open sesame CANARY-SECRET-7f3a';
const guard = new LeakGuard([SECRET]);
const phrase = new LeakGuard([PHRASE]);
const prefixRedactor = createRedactor({ streamSecretHold: 'prefix' });
const PROSE = 'We will meet at the station and then walk on to the old market square. ';

describe('heldFrom, window (the default): a fixed tail, whatever it holds', () => {
  it('the same start whether or not the tail begins a value', () => {
    const a = `${PROSE}open ses`;
    const b = `${PROSE}opex ses`;
    expect(phrase.heldFrom(a)).toBe(phrase.heldFrom(b));
    expect(phrase.heldFrom(a)).toBeLessThan(a.indexOf('open'));
    expect(phrase.heldFrom(a, false, 'window')).toBe(phrase.heldFrom(a));
  });

  it('an inactive guard holds nothing in either mode', () => {
    const none = LeakGuard.for([]);
    for (const hold of ['window', 'prefix'] as const) expect(none.heldFrom(`${PROSE}open`, false, hold)).toBe(PROSE.length + 4);
  });
});

describe('heldFrom, prefix: only a tail that could begin a value', () => {
  const held = (g: LeakGuard, text: string, json = false, label = false): string => text.slice(g.heldFrom(text, json, 'prefix', label));

  it('as written, in another case, spaced out; nothing when no tail begins one', () => {
    expect(held(phrase, `${PROSE}open ses`)).toBe('open ses');
    expect(held(phrase, `${PROSE}opex ses`)).toBe('');
    expect(held(guard, `${PROSE}the code is zq7p`)).toBe('zq7p');
    expect(held(guard, `${PROSE}the code is Z q 7 p L`)).toBe('Z q 7 p L');
    expect(held(guard, `${PROSE}the code is zq8`)).toBe('');
  });

  it('an encoding of the value: hex, lower-case base32', () => {
    const bytes = Buffer.from(SECRET);
    expect(held(guard, `${PROSE}hex ${bytes.toString('hex').slice(0, 10)}`)).toBe(bytes.toString('hex').slice(0, 10));
    const b32 = 'ljyto4cmnuzfq5zzfvbuctsbkjmq';
    expect(held(guard, `${PROSE}b32 ${b32.slice(0, 9)}`)).toBe(b32.slice(0, 9));
  });

  it('characters written as HTML references or prefixed hex bytes, judged decoded, a cut one held with them', () => {
    const refs = [...SECRET].map((c) => `&#${c.charCodeAt(0)};`).join('');
    expect(held(guard, `${PROSE}${refs.slice(0, 15)}`)).toBe(refs.slice(0, 15)); // `&#90;&#113;&#55` : Zq and a cut 7
    expect(held(guard, `${PROSE}${refs.slice(0, 10)}`)).toBe(refs.slice(0, 10));
    const bytes = Buffer.from(SECRET).toString('hex').match(/../g)!.map((b) => `0x${b}`).join(', ');
    for (const n of [4, 5, 6, 10, 12, 13]) expect(held(guard, `${PROSE}{ ${bytes.slice(0, n)}`), String(n)).toBe(bytes.slice(0, n));
    // A cut reference or byte is held whatever it begins (it says nothing of the value); a whole
    // one that does not begin a value is not.
    expect(held(guard, `${PROSE}&#6`)).toBe('&#6');
    // Named references, percent-escapes (a UTF-8 lead byte waiting for the rest) and the gap
    // after a whole byte before the next line's: cut, held the same way.
    expect(held(guard, `${PROSE}&hyph`)).toBe('&hyph');
    expect(held(guard, `${PROSE}%4`)).toBe('%4');
    expect(held(guard, `${PROSE}%C3`)).toBe('%C3');
    expect(held(guard, `${PROSE}0x41,\n        0x`)).toBe(',\n        0x');
    // A number that may be a decimal code still arriving (or the first of a pair), with its gap.
    expect(held(guard, `${PROSE}[90, 11`)).toBe('11');
    expect(held(guard, `${PROSE}[90, `)).toBe('90, ');
    expect(held(guard, `${PROSE}in 2024 `)).toBe('');
    expect(held(guard, `${PROSE}&#65; and 0x41`)).toBe('');
    // Character tokens: a cut one, and the first whole one of a run (read once a second follows)
    // with its gap; after a whole one decoded, only the gap and what is cut.
    expect(held(guard, `${PROSE}x = chr(90) + chr(11`)).toBe('chr(90) + chr(11');
    expect(held(guard, `${PROSE}x = ['Z', `)).toBe("'Z', ");
    expect(held(guard, `${PROSE}x = ['Z', 'q', '`)).toBe("'Z', 'q', '");
    expect(held(guard, `${PROSE}x = ['a', 'b', '`)).toBe(", '");
    expect(held(guard, `${PROSE}\\132\\16`)).toBe('\\132\\16');
    expect(held(guard, `${PROSE}01011010 0111`)).toBe('01011010 0111');
    expect(held(guard, `${PROSE}it's 'a' and (b) done`)).toBe('');
  });

  it('JSON escapes, and an escape of a deeper level cut at the end', () => {
    expect(held(guard, `{"a":"${PROSE}\\u005aq7p`, true)).toBe('\\u005aq7p');
    expect(held(guard, `{"a":"${PROSE}\\\\u005aq7`, true)).toBe('\\\\u005aq7');
    expect(held(guard, `{"a":"${PROSE}\\\\u00`, true)).toBe('\\\\u00');
  });

  it('a label is held for a value in another case or spaced only from two of its characters on', () => {
    const lower = new LeakGuard(['CANARY-SECRET-7f3a']);
    expect(held(lower, 'call_abc', false, true)).toBe('');
    expect(held(lower, 'call_abca', false, true)).toBe('ca');
    expect(held(lower, 'call_abC', false, true)).toBe('C');
    expect(held(lower, 'call_abc')).toBe('c');
  });
});

describe('a stream under prefix', () => {
  it('prose that begins no value goes on word by word; where it breaks differs when it does', async () => {
    const release = async (text: string): Promise<string[]> => {
      const s = prefixRedactor.session(decision(), [PHRASE]);
      const chunks = text.split(/(?<= )/).map((p): CompletionChunk => ({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { content: p }, finish_reason: null }] }));
      const out: string[] = [];
      let n = 0;
      for await (const c of s.processStream(fromArray(chunks))) if (++n < chunks.length) out.push(c.choices[0]?.delta.content ?? '');
      return out;
    };
    const prose = 'We open the door and go';
    expect((await release(prose)).join('')).toBe('We open the door and ');
    expect((await release(prose.replace('open', 'opex'))).map((d) => d.length)).toEqual([3, 5, 4, 5, 4]);
    // "open " is held until "the" shows the phrase does not go on: the oracle `window` closes.
    expect((await release(prose)).map((d) => d.length)).toEqual([3, 0, 9, 5, 4]);
  });

  const bytes = Buffer.from(SECRET);
  const FORMS: Record<string, string> = {
    'as written': SECRET,
    'spaced, lower case': [...SECRET.toLowerCase()].join(' '),
    hex: bytes.toString('hex'),
    'base32, lower case': 'ljyto4cmnuzfq5zzfvbuctsbkjmq',
    'numeric HTML references': [...SECRET].map((c) => `&#x${c.charCodeAt(0).toString(16)};`).join(''),
    'hex bytes after 0x': bytes.toString('hex').match(/../g)!.map((b) => `0x${b}`).join(', '),
    'hex bytes after 0x, four a line': bytes.toString('hex').match(/.{1,8}/g)!.map((l) => l.match(/../g)!.map((b) => `0x${b}`).join(', ')).join(',\n        '),
    'every byte percent-escaped': bytes.toString('hex').replace(/../g, '%$&'),
    'named HTML references': SECRET.replace(/-/g, '&hyphen;'),
    'character codes in decimal': `[${[...bytes].join(', ')}]`,
    'chr() calls concatenated': [...SECRET].map((c) => `chr(${c.charCodeAt(0)})`).join(' + '),
    'String.fromCharCode() calls concatenated': [...SECRET].map((c) => `String.fromCharCode(${c.charCodeAt(0)})`).join('+'),
    'a list of one-character strings': `[${[...SECRET].map((c) => `'${c}'`).join(', ')}]`,
    'octal escapes': [...bytes].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join(''),
    'U+ notation': [...SECRET].map((c) => `U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(' '),
    'binary octets': [...bytes].map((b) => b.toString(2).padStart(8, '0')).join(' '),
    'reversed': [...SECRET].reverse().join(''),
    'ROT13': SECRET.replace(/[A-Za-z]/g, (c) => String.fromCharCode((c <= 'Z' ? 65 : 97) + ((c.charCodeAt(0) - (c <= 'Z' ? 65 : 97) + 13) % 26))),
  };
  for (const [name, form] of Object.entries(FORMS)) {
    it(`${name}: masked whole at every split and piece size, in content and tool arguments`, async () => {
      for (const asArgs of [false, true]) {
        const text = asArgs ? JSON.stringify({ code: `is ${form} ok` }) : `the code is ${form}, ok`;
        const expected = wholeAnswer(prefixRedactor.session(decision(), [SECRET]), text, asArgs);
        expect(expected).toContain('[SECRET_VALUE]');
        const failures: string[] = [];
        for (const { how, pieces } of cuts(text, 9)) {
          const out = (await streamedDeltas(prefixRedactor.session(decision(), [SECRET]), pieces, asArgs)).join('');
          if (out !== expected) failures.push(`${how}: ${out}`);
        }
        expect(failures.slice(0, 3)).toEqual([]);
      }
    });
  }

  it('an OpenAI first tool piece goes on at once with `arguments: ""` unless its id could begin a value', async () => {
    for (const [id, atOnce] of [['call_abz', true], ['call_Zq7', false]] as const) {
      const first = { id, type: 'function' as const, function: { name: 'get_weather', arguments: '' } };
      const chunks: CompletionChunk[] = [
        { id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, ...first }] }, finish_reason: null }] },
        { id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{}' } }] }, finish_reason: null }] },
      ];
      const out = await collect(prefixRedactor.session(decision(), [SECRET]).processStream(fromArray(chunks)));
      const call = out[0]!.choices[0]!.delta.tool_calls?.[0];
      if (atOnce) expect(call, id).toEqual({ index: 0, ...first });
      else expect(call, id).not.toHaveProperty('id');
    }
  });
});
