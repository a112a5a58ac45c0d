/**
 * Tool-call arguments in answers stay valid JSON after redaction: a finding in a JSON number (or
 * any value outside a string) becomes a JSON string of its redaction, a finding inside a string
 * never leaves half an escape behind, restored values are escaped, and arguments without findings
 * stay byte for byte. Streamed arguments, cut into pieces of every size, equal the non-streamed
 * ones.
 */
import { describe, expect, it } from 'vitest';
import type { CompletionChunk, CompletionResult } from '../../src/pipeline/types.js';
import { createRedactor } from '../../src/redact/index.js';
import { hashOf } from '../../src/redact/modes.js';
import type { Session } from '../../src/redact/session.js';
import { anthropicMessageBody } from '../../src/server/anthropic.js';
import { mulberry32 } from '../../scripts/lib/prng.js';
import { collect, decision, fromArray, joinChunks } from './helpers.js';

const HASH_KEY = Buffer.from('tenant-key-0123456789');
const SECRET = '5550001234';
/** A nickname with a quote and a backslash, and a PEM key (line breaks): values JSON must escape. */
const NICK = 'Bobby "Tables" O\\Brien';
const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
const redactor = createRedactor({ hashKey: HASH_KEY, customEntities: [{ name: 'NICKNAME', dictionary: [NICK] }] });

function result(args: string): CompletionResult {
  return {
    id: 'x',
    model: 'm',
    created: 1,
    choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: args } }] } }],
  };
}

/** The arguments as the non-streamed answer hands them back. */
function whole(s: Session, args: string): string {
  return s.processCompletion(result(args)).choices[0]!.message.tool_calls![0]!.function.arguments;
}

const toolChunk = (args: string | undefined, finish: string | null = null): CompletionChunk => ({
  id: 'c',
  model: 'm',
  created: 1,
  choices: [{ index: 0, delta: args === undefined ? {} : { tool_calls: [{ index: 0, function: { arguments: args } }] }, finish_reason: finish }],
});

/** The arguments as the streamed answer hands them back, the model's text sent in pieces of `size`. */
async function streamed(s: Session, args: string, size: number): Promise<string> {
  const chunks: CompletionChunk[] = [];
  for (let i = 0; i < args.length; i += size) chunks.push(toolChunk(args.slice(i, i + size)));
  chunks.push(toolChunk(undefined, 'tool_calls'));
  return joinChunks(await collect(s.processStream(fromArray(chunks)))).args;
}

const session = (over: Parameters<typeof decision>[0] = {}, secrets: string[] = []): Session => redactor.session(decision(over), secrets);

/** A session that tokenized the nickname, the key, and an e-mail address in the prompt. */
function tokenizing(): Session {
  const s = session({ mode: 'tokenize', entities: ['NICKNAME', 'EMAIL_ADDRESS', 'CREDIT_CARD', 'PRIVATE_KEY'] });
  const [m] = s.redactMessages([{ role: 'user', content: `Nick ${NICK}, mail jo@corp.example.com, key ${PEM} end` }]);
  expect(m!.content).toBe('Nick <NICKNAME_1>, mail <EMAIL_ADDRESS_1>, key <PRIVATE_KEY_1> end');
  return s;
}

const hashed = (entity: string, value: string): string => hashOf(HASH_KEY, entity, value);

/** [arguments the model wrote, what the caller gets back, the session]. */
const CASES: Array<[string, string, () => Session]> = [
  ['{"card": 4111111111111111, "n": 3}', '{"card": "[CREDIT_CARD]", "n": 3}', () => session()],
  ['{"card":4111111111111111}', '{"card":"[CREDIT_CARD]"}', () => session()],
  ['{"card":-4111111111111111,"ok":true}', '{"card":"-[CREDIT_CARD]","ok":true}', () => session()],
  ['{"ssn": 536221234, "ids": [4111111111111111, 7, 4111111111111111], "f": 1.10}', '{"ssn": "[US_SSN]", "ids": ["[CREDIT_CARD]", 7, "[CREDIT_CARD]"], "f": 1.10}', () => session()],
  ['{"card": 4111111111111111}', `{"card": "${hashed('CREDIT_CARD', '4111111111111111')}"}`, () => session({ mode: 'hash' })],
  // Numbers inside a string stay in it, also when a streamed piece begins inside that string.
  ['{"note": "card 4111111111111111 or 536221234 ok", "n": 4111111111111111}', '{"note": "card [CREDIT_CARD] or 536221234 ok", "n": "[CREDIT_CARD]"}', () => session()],
  // A finding the detector starts on an escape's letter (`\nbob@…` read as `nbob@…`).
  ['{"a":"line\\nbob@corp.example.com","b":"tab\\tjo@corp.example.com\\n"}', '{"a":"line\\n[EMAIL_ADDRESS]","b":"tab\\t[EMAIL_ADDRESS]\\n"}', () => session()],
  // A guarded secret value written as a number, and inside a longer one.
  ['{"pin": 5550001234, "x": 95550001234, "s": "5550001234"}', '{"pin": "[SECRET_VALUE]", "x": "9[SECRET_VALUE]", "s": "[SECRET_VALUE]"}', () => session({}, [SECRET])],
  // Tokens restored into strings are escaped (quote, backslash, line breaks); a number beside them is quoted.
  [
    '{"who":"<NICKNAME_1>","to":"<EMAIL_ADDRESS_1>","key":"<PRIVATE_KEY_1>","card":4111111111111111}',
    `{"who":${JSON.stringify(NICK)},"to":"jo@corp.example.com","key":${JSON.stringify(PEM)},"card":"[CREDIT_CARD]"}`,
    tokenizing,
  ],
  // Go's encoding/json (an OpenAI-compatible server written in Go, such as Ollama's) writes '<' and
  // '>' as \u003c and \u003e: the arguments parse to the placeholder, so it is restored as one.
  [
    '{"who":"\\u003cNICKNAME_1\\u003e","to":"\\u003cEMAIL_ADDRESS_1\\u003e","key":"\\u003CPRIVATE_KEY_1\\u003E"}',
    `{"who":${JSON.stringify(NICK)},"to":"jo@corp.example.com","key":${JSON.stringify(PEM)}}`,
    tokenizing,
  ],
  // An escaped backslash before `u003c` is the text `\u003c`, not a '<': left as written.
  ['{"lit":"\\\\u003cEMAIL_ADDRESS_1\\u003e","to":"\\u003cEMAIL_ADDRESS_1>"}', '{"lit":"\\\\u003cEMAIL_ADDRESS_1\\u003e","to":"jo@corp.example.com"}', tokenizing],
];

describe('answer tool-call arguments stay valid JSON (non-streamed)', () => {
  for (const [args, expected, make] of CASES) {
    it(`${args.slice(0, 60)}`, () => {
      const out = whole(make(), args);
      expect(out).toBe(expected);
      expect(() => JSON.parse(out) as unknown).not.toThrow();
    });
  }

  it('arguments without findings stay byte for byte (precision, escapes and spacing kept)', () => {
    const args = '{ "big": 12345678901234567890, "f": 1.10, "e": 1E+2, "s": "caf\\u00e9 \\/ ok \\"q\\" \\\\", "a": [ -0, 2 ], "t": true, "z": null }';
    expect(whole(session(), args)).toBe(args);
    expect(whole(tokenizing(), args)).toBe(args);
  });

  it('the restored values parse back to what the prompt held', () => {
    const out = whole(tokenizing(), '{"who":"<NICKNAME_1>","key":"<PRIVATE_KEY_1>"}');
    expect(JSON.parse(out)).toEqual({ who: NICK, key: PEM });
    const go = whole(tokenizing(), '{"who":"\\u003cNICKNAME_1\\u003e","lit":"\\\\u003cEMAIL_ADDRESS_1\\u003e"}');
    expect(JSON.parse(go)).toEqual({ who: NICK, lit: '\\u003cEMAIL_ADDRESS_1>' });
  });

  it('counts each finding once, and allow leaves a number as it is', () => {
    const s = session();
    whole(s, '{"ssn": 536221234, "ids": [4111111111111111, 4111111111111111]}');
    expect(s.report().responseCounts).toEqual({ CREDIT_CARD: 2, US_SSN: 1 });
    expect(whole(session({ modes: { CREDIT_CARD: 'allow' } }), '{"card": 4111111111111111}')).toBe('{"card": 4111111111111111}');
  });

  it('the Anthropic tool_use.input built from them holds the redaction, not an empty object', () => {
    const body = JSON.parse(anthropicMessageBody(session().processCompletion(result('{"card": 4111111111111111, "n": 3}')))) as { content: unknown[] };
    expect(body.content).toEqual([{ type: 'tool_use', id: 'call_1', name: 'f', input: { card: '[CREDIT_CARD]', n: 3 } }]);
  });
});

describe('streamed tool-call arguments equal the non-streamed ones', () => {
  for (const [args, expected, make] of CASES) {
    it(`${args.slice(0, 60)}: pieces of every size 1..${args.length}`, async () => {
      for (let size = 1; size <= args.length; size++) {
        const got = await streamed(make(), args, size);
        if (got !== expected) expect({ size, got }).toEqual({ size, got: expected });
      }
    });
  }

  it('every two-piece split of Go-escaped placeholders, with spaces that let the hold-back release early', async () => {
    const args = '{"to": "mail \\u003cEMAIL_ADDRESS_1\\u003e now", "who": "\\u003cNICKNAME_1\\u003e", "n": 1}';
    const expected = whole(tokenizing(), args);
    expect(JSON.parse(expected)).toEqual({ to: 'mail jo@corp.example.com now', who: NICK, n: 1 });
    for (let i = 1; i < args.length; i++) {
      const chunks = [toolChunk(args.slice(0, i)), toolChunk(args.slice(i)), toolChunk(undefined, 'tool_calls')];
      const got = joinChunks(await collect(tokenizing().processStream(fromArray(chunks)))).args;
      if (got !== expected) expect({ i, got }).toEqual({ i, got: expected });
    }
  });

  it('every two-piece split, with spaces that let the hold-back release early', async () => {
    const args = '{"a": 1, "card": -4111111111111111 , "x": 95550001234, "s": "line\\nbob@corp.example.com and more", "ssn": [536221234, 2]}';
    const expected = whole(session({}, [SECRET]), args);
    expect(JSON.parse(expected)).toEqual({ a: 1, card: '-[CREDIT_CARD]', x: '9[SECRET_VALUE]', s: 'line\n[EMAIL_ADDRESS] and more', ssn: ['[US_SSN]', 2] });
    for (let i = 1; i < args.length; i++) {
      const s = session({}, [SECRET]);
      const chunks = [toolChunk(args.slice(0, i)), toolChunk(args.slice(i)), toolChunk(undefined, 'tool_calls')];
      const got = joinChunks(await collect(s.processStream(fromArray(chunks)))).args;
      if (got !== expected) expect({ i, got }).toEqual({ i, got: expected });
    }
  });

  it('200 random argument objects (numbers with PII, escapes, plain values), random pieces: equal, and valid JSON', async () => {
    const rnd = mulberry32(8675309);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const values = [
      '4111111111111111', '-4111111111111111', '536221234', '4155552671', '5550001234', '95550001234', '12345678901234567890', '1.10', '3', '-0', '1E+2',
      'true', 'null', '"plain"', '"mail bob@corp.example.com"', '"line\\nbob@corp.example.com"', '"q\\"4111111111111111\\""', '"caf\\u00e9"',
      '"call 415-555-2671 now"', '"<EMAIL_ADDRESS_1>"', '"<NICKNAME_1>"',
    ];
    const keys = ['"card"', '"ssn"', '"phone"', '"n"', '"note"', '"x\\"y"'];
    const spaces = ['', ' ', '\n  '];
    const failures: string[] = [];
    for (let iter = 0; iter < 200; iter++) {
      const sp = pick(spaces);
      const members: string[] = [];
      for (let k = 1 + Math.floor(rnd() * 5); k > 0; k--) {
        const v = rnd() < 0.2 ? `[${pick(values)},${sp}${pick(values)}]` : pick(values);
        members.push(`${pick(keys)}:${sp}${v}`);
      }
      const args = `{${sp}${members.join(`,${sp}`)}${sp}}`;
      // Half restore tokens, half guard a secret: the same kind of session for both answers.
      const make = rnd() < 0.5 ? tokenizing : (): Session => session({}, [SECRET]);
      const s1 = make();
      const s2 = make();
      const expected = whole(s1, args);
      try {
        JSON.parse(expected);
      } catch {
        failures.push(JSON.stringify({ iter, args, expected, invalid: true }));
        continue;
      }
      const chunks: CompletionChunk[] = [];
      for (let i = 0; i < args.length; ) {
        const size = 1 + Math.floor(rnd() * 9);
        chunks.push(toolChunk(args.slice(i, i + size)));
        i += size;
      }
      chunks.push(toolChunk(undefined, 'tool_calls'));
      const got = joinChunks(await collect(s2.processStream(fromArray(chunks)))).args;
      if (got !== expected) failures.push(JSON.stringify({ iter, args, expected, got }));
    }
    expect(failures.slice(0, 3)).toEqual([]);
  });
});
