/**
 * End to end: where a streamed answer breaks into events must not tell the caller anything about
 * a granted secret's value. The leak guard used to hold back a tail only when it could begin a
 * guarded value, so a caller who could make the model repeat a text of its choosing learned from
 * the SSE event boundaries whether that text began the secret (and so could guess the value a
 * few characters at a time). Two streams from a loopback upstream that differ only in whether
 * the repeated text is a beginning of the secret (placed by ops/incident-brief) must reach the
 * caller cut at the same places: in content, in tool-call arguments and in a tool call's labels.
 * That is the default (`redaction.stream_secret_hold: window`); `prefix` brings the earlier hold
 * back for an earlier first token, and with it the oracle (the last describe shows both).
 */
import { describe, expect, it } from 'vitest';
import { chunkBody } from './helpers/scripted-upstream.js';
import { useScriptedWarden, type ScriptedCaller } from './helpers/scripted-warden.js';
import { CANARY_SECRET } from './helpers/warden.js';

const governed = { model: 'gpt-4o-mini', messages: [], warden: { template: 'ops/incident-brief@1', variables: { service: 'billing-api' } } };

let chunks: Array<Record<string, unknown>> = [];
const scripted = useScriptedWarden(() => ({}), () => chunks, ['support', 'ticket-bot']);

/** The secret's first `n` characters with its last one changed: the same shape, no beginning of the secret. */
function notPrefix(n: number): string {
  const p = CANARY_SECRET.slice(0, n);
  return p.slice(0, -1) + (p.at(-1) === 'X' ? 'Y' : 'X');
}

/** Each SSE event of a streamed call as the caller sees it (of `via`: the default Warden): its content, tool call ids, names and arguments. */
async function events(via: ScriptedCaller = scripted): Promise<string[]> {
  const res = await fetch(`${via.w.addresses.http}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${via.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...governed, stream: true }),
  });
  const body = await res.text();
  expect(res.status, body).toBe(200);
  const out: string[] = [];
  for (const block of body.split('\n\n')) {
    if (!block.startsWith('data: {')) continue;
    const delta = JSON.parse(block.slice(6)).choices[0]?.delta ?? {};
    const calls = (delta.tool_calls ?? []) as Array<{ id?: string; function?: { name?: string; arguments?: string } }>;
    out.push(JSON.stringify([delta.content ?? null, ...calls.map((c) => [c.id ?? null, c.function?.name ?? null, c.function?.arguments ?? null])]));
  }
  return out;
}

/** Where each event's text breaks: the event's members with every letter and digit made `a`, so two runs compare by shape only. */
function shape(evs: readonly string[]): string[] {
  return evs.map((e) => e.replace(/[A-Za-z0-9]/g, 'a'));
}

describe('a streamed answer breaks at the same places whether or not it repeats a beginning of the secret', () => {
  for (const n of [6, 9, 13]) {
    it(`content repeating the secret's first ${n} characters`, async () => {
      const run = async (repeated: string): Promise<string[]> => {
        chunks = [
          chunkBody({ role: 'assistant', content: '' }),
          chunkBody({ content: 'You asked me to repeat: ' }),
          // A space after it: a word ends there, so only the leak guard could hold it.
          chunkBody({ content: `${repeated} ` }),
          chunkBody({ content: 'and then some more words' }),
          chunkBody({ content: ' to finish the answer off, as models do. ' }),
          chunkBody({ content: 'A last line.' }),
          chunkBody({}, 'stop'),
        ];
        return events();
      };
      const yes = await run(CANARY_SECRET.slice(0, n));
      const no = await run(notPrefix(n));
      expect(shape(yes)).toEqual(shape(no));
      expect(yes.join('')).not.toContain(CANARY_SECRET);
    });
  }

  // The forms read decoded (percent-escapes, named references, hex bytes after 0x over lines)
  // and ROT13: a beginning of the secret so written is held no differently from another text.
  const ENCODED: Record<string, (s: string) => string> = {
    'every byte percent-escaped': (s) => [...Buffer.from(s)].map((b) => `%${b.toString(16).toUpperCase()}`).join(''),
    'named HTML references (&hyphen;)': (s) => s.replace(/-/g, '&hyphen;'),
    'hex bytes after 0x, one a line': (s) => [...Buffer.from(s)].map((b) => `0x${b.toString(16)}`).join(',\n    '),
    'ROT13': (s) => s.replace(/[A-Za-z]/g, (c) => String.fromCharCode((c <= 'Z' ? 65 : 97) + ((c.charCodeAt(0) - (c <= 'Z' ? 65 : 97) + 13) % 26))),
    'chr() calls concatenated': (s) => [...s].map((c) => `chr(${c.charCodeAt(0)})`).join(' + '),
    'a list of one-character strings': (s) => `[${[...s].map((c) => `'${c}'`).join(', ')}]`,
    'octal escapes': (s) => [...Buffer.from(s)].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join(''),
    'binary octets': (s) => [...Buffer.from(s)].map((b) => b.toString(2).padStart(8, '0')).join(' '),
    'reversed': (s) => [...s].reverse().join(''),
  };
  for (const [name, encode] of Object.entries(ENCODED)) {
    it(`content repeating the secret's first 9 characters ${name}`, async () => {
      const run = async (repeated: string): Promise<string[]> => {
        chunks = [
          chunkBody({ role: 'assistant', content: '' }),
          chunkBody({ content: 'You asked me to repeat: ' }),
          chunkBody({ content: `${encode(repeated)} ` }),
          chunkBody({ content: 'and then some more words' }),
          chunkBody({ content: ' to finish the answer off, as models do. ' }),
          chunkBody({ content: 'A last line.' }),
          chunkBody({}, 'stop'),
        ];
        return events();
      };
      expect(shape(await run(CANARY_SECRET.slice(0, 9)))).toEqual(shape(await run(notPrefix(9))));
    });
  }

  it('the same in another case and spaced out (the loose match), and in tool-call arguments', async () => {
    const run = async (repeated: string): Promise<string[]> => {
      chunks = [
        chunkBody({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '' } }] }),
        chunkBody({ tool_calls: [{ index: 0, function: { arguments: '{"q": "say ' } }] }),
        chunkBody({ tool_calls: [{ index: 0, function: { arguments: repeated } }] }),
        chunkBody({ tool_calls: [{ index: 0, function: { arguments: ' then stop", "n": 1' } }] }),
        chunkBody({ tool_calls: [{ index: 0, function: { arguments: ', "more": "words and words"}' } }] }),
        chunkBody({}, 'tool_calls'),
      ];
      return events();
    };
    const spaced = (s: string): string => [...s.toLowerCase()].join(' ');
    const yes = await run(spaced(CANARY_SECRET.slice(0, 6)));
    const no = await run(spaced(notPrefix(6)));
    expect(shape(yes)).toEqual(shape(no));
  });

  it("a tool call's id sent with empty arguments goes on (or waits) the same either way", async () => {
    const run = async (id: string): Promise<string[]> => {
      chunks = [
        chunkBody({ role: 'assistant', tool_calls: [{ index: 0, id, type: 'function', function: { name: 'lookup', arguments: '' } }] }),
        chunkBody({ tool_calls: [{ index: 0, function: { arguments: '{"q": 1}' } }] }),
        chunkBody({}, 'tool_calls'),
      ];
      return events();
    };
    const yes = await run(`call_${CANARY_SECRET.slice(0, 6)}`);
    const no = await run(`call_${notPrefix(6)}`);
    expect(shape(yes)).toEqual(shape(no));
  });
});

describe('redaction.stream_secret_hold: prefix (an earlier first token, the oracle back)', () => {
  const prefix = useScriptedWarden(() => ({}), () => chunks, ['support', 'ticket-bot'], { extraConfig: 'redaction:\n  stream_secret_hold: prefix\n' });

  /** Content streamed as `pieces` (after a first piece of prose), through the prefix Warden. */
  const content = async (pieces: string[]): Promise<string[]> => {
    chunks = [chunkBody({ role: 'assistant', content: '' }), ...pieces.map((p) => chunkBody({ content: p })), chunkBody({}, 'stop')];
    return events(prefix);
  };
  const joined = (evs: readonly string[]): string => evs.map((e) => (JSON.parse(e) as [string | null])[0] ?? '').join('');

  it('the events break at other places when the repeated text begins the secret: the trade-off', async () => {
    const pieces = (repeated: string): string[] => ['You asked me to repeat: ', `${repeated} `, 'and then some more words', ' to finish the answer off. '];
    const yes = await content(pieces(CANARY_SECRET.slice(0, 9)));
    const no = await content(pieces(notPrefix(9)));
    expect(shape(yes)).not.toEqual(shape(no));
    expect(joined(yes)).toBe(`You asked me to repeat: ${CANARY_SECRET.slice(0, 9)} and then some more words to finish the answer off. `);
  });

  const b32 = (s: string): string => {
    const bits = [...Buffer.from(s)].map((b) => b.toString(2).padStart(8, '0')).join('');
    return (bits.match(/.{1,5}/g) ?? []).map((c) => 'abcdefghijklmnopqrstuvwxyz234567'[parseInt(c.padEnd(5, '0'), 2)]).join('');
  };
  const FORMS: Record<string, string> = {
    'as written': CANARY_SECRET,
    'spaced, lower case': [...CANARY_SECRET.toLowerCase()].join(' '),
    'base32, lower case': b32(CANARY_SECRET),
    'numeric HTML references': [...CANARY_SECRET].map((c) => `&#${c.charCodeAt(0)};`).join(''),
    'every byte percent-escaped': [...Buffer.from(CANARY_SECRET)].map((b) => `%${b.toString(16)}`).join(''),
    'named HTML references': CANARY_SECRET.replace(/-/g, '&hyphen;'),
    'hex bytes after 0x, one a line': [...Buffer.from(CANARY_SECRET)].map((b) => `0x${b.toString(16)}`).join(',\n    '),
    'ROT13, lower case': CANARY_SECRET.toLowerCase().replace(/[a-z]/g, (c) => String.fromCharCode(97 + ((c.charCodeAt(0) - 97 + 13) % 26))),
    'chr() calls concatenated': [...CANARY_SECRET].map((c) => `chr(${c.charCodeAt(0)})`).join('+'),
    'one-character strings, a list': [...CANARY_SECRET].map((c) => `"${c}"`).join(', '),
    'U+ notation': [...CANARY_SECRET].map((c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`).join(' '),
    'reversed': [...CANARY_SECRET].reverse().join(''),
  };
  for (const [name, form] of Object.entries(FORMS)) {
    it(`the secret is still masked whole, split across pieces: ${name}`, async () => {
      const text = `The value: ${form} done.`;
      for (const size of [3, 7]) {
        const pieces = text.match(new RegExp(`[^]{1,${size}}`, 'g'))!;
        const evs = await content(pieces);
        expect(joined(evs), `${name}, pieces of ${size}`).toBe('The value: [SECRET_VALUE] done.');
      }
    });
  }
});
