/**
 * parseChunk checks a streamed chunk's shape with zod and its other rules by hand (labels within
 * 256, `created` a safe integer, explicit nulls read as absent): both halves must hold.
 */
import { describe, expect, it } from 'vitest';
import { parseChunk } from '../../src/providers/validate.js';

const chunk = (over: Record<string, unknown> = {}, delta: Record<string, unknown> = { content: 'hi' }) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1_700_000_000,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, delta, logprobs: null, finish_reason: null }],
  ...over,
});
const long = 'a'.repeat(257);
const accepts = (json: unknown): boolean => parseChunk(json) !== undefined;
const ok = 'a'.repeat(256);

describe('parseChunk', () => {
  it("passes OpenAI's chunk on with its unknown members dropped", () => {
    expect(parseChunk(chunk({ system_fingerprint: 'fp', obfuscation: 'x' }))).toEqual({
      id: 'chatcmpl-1',
      created: 1_700_000_000,
      model: 'gpt-4o-mini',
      choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }],
    });
  });

  it('refuses an id, model, tool call id or function name over 256 characters, and takes 256', () => {
    const call = (id: string, name: string) => ({ tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: '' } }] });
    for (const bad of [chunk({ id: long }), chunk({ model: long }), chunk({}, call(long, 'f')), chunk({}, call('c', long))]) {
      expect(accepts(bad)).toBe(false);
    }
    for (const good of [chunk({ id: ok, model: ok }), chunk({}, call(ok, ok))]) expect(accepts(good)).toBe(true);
  });

  it('refuses a created that is no safe integer from 0 on', () => {
    for (const created of [1.5, -1, 2 ** 53, '1', null]) expect(accepts(chunk({ created })), String(created)).toBe(false);
    for (const created of [0, Number.MAX_SAFE_INTEGER]) expect(accepts(chunk({ created }))).toBe(true);
  });

  it('reads a null role, tool_calls, tool call id, type, function, name or arguments as absent; keeps a null content', () => {
    const out = parseChunk(
      chunk({}, { role: null, content: null, tool_calls: [{ index: 0, id: null, type: null, function: { name: null, arguments: null } }, { index: 1, function: null }] }),
    );
    expect(out!.choices[0]!.delta).toEqual({ content: null, tool_calls: [{ index: 0, function: {} }, { index: 1 }] });
    expect(parseChunk(chunk({}, { role: 'assistant', tool_calls: null }))!.choices[0]!.delta).toEqual({ role: 'assistant' });
    expect(accepts(chunk({}, { role: 'user', content: 'x' }))).toBe(false);
  });
});
