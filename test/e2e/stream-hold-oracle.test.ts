/**
 * End to end: where a streamed answer breaks into events must not tell the caller anything about
 * a granted secret's value. The leak guard used to hold back a tail only when it could begin a
 * guarded value, so a caller who could make the model repeat a text of its choosing learned from
 * the SSE event boundaries whether that text began the secret (and so could guess the value a
 * few characters at a time). Two streams from a loopback upstream that differ only in whether
 * the repeated text is a beginning of the secret (placed by ops/incident-brief) must reach the
 * caller cut at the same places: in content, in tool-call arguments and in a tool call's labels.
 */
import { describe, expect, it } from 'vitest';
import { chunkBody } from './helpers/scripted-upstream.js';
import { useScriptedWarden } from './helpers/scripted-warden.js';
import { CANARY_SECRET } from './helpers/warden.js';

const governed = { model: 'gpt-4o-mini', messages: [], warden: { template: 'ops/incident-brief@1', variables: { service: 'billing-api' } } };

let chunks: Array<Record<string, unknown>> = [];
const scripted = useScriptedWarden(() => ({}), () => chunks, ['support', 'ticket-bot']);

/** The secret's first `n` characters with its last one changed: the same shape, no beginning of the secret. */
function notPrefix(n: number): string {
  const p = CANARY_SECRET.slice(0, n);
  return p.slice(0, -1) + (p.at(-1) === 'X' ? 'Y' : 'X');
}

/** Each SSE event of a streamed call as the caller sees it: its content, tool call ids, names and arguments. */
async function events(): Promise<string[]> {
  const res = await fetch(`${scripted.w.addresses.http}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${scripted.token}`, 'content-type': 'application/json' },
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
