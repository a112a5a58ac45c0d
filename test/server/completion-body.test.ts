/**
 * A non-streamed answer's JSON is written by hand for the common shape (completionBody's fast
 * path). It must be the very text JSON.stringify gives for the answer object: checked here on
 * every combination of the members the fast path writes and the ones that send it back to
 * JSON.stringify (other key orders, extra members, odd values, text that needs escapes).
 */
import { describe, expect, it } from 'vitest';
import type { CompletionResult } from '../../src/pipeline/types.js';
import { completionBody } from '../../src/server/openai.js';

/** The answer object as the route always wrote it, through JSON.stringify. */
function reference(result: CompletionResult): string {
  return JSON.stringify({
    id: result.id,
    object: 'chat.completion',
    created: result.created,
    model: result.model,
    choices: result.choices.map((c) => ({ index: c.index, message: c.message, logprobs: null, finish_reason: c.finish_reason })),
    usage: result.usage,
  });
}

const TEXTS = ['Three bullet points.', '', 'say "hi"\\n', 'line\nbreak\ttab', 'café ☕ 😀', 'lone \ud800 surrogate', '\u2028\u0000\u007f', '</script>'];

function* messages(): Generator<unknown> {
  for (const content of [...TEXTS, null]) {
    yield { role: 'assistant', content };
    yield { content, role: 'assistant' };
  }
  yield { role: 'assistant', content: 'x', refusal: 'no' };
  yield { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] };
  yield { role: 'assistant', content: [{ type: 'text', text: 'part' }] };
  yield { role: 'assistant' };
  yield { role: 'assistant', content: undefined };
  yield { role: 'tool\u0001', content: 'x' };
  yield Object.assign(Object.create({ inherited: 1 }) as object, { role: 'assistant', content: 'x' });
}

function* usages(): Generator<unknown> {
  yield undefined;
  yield { prompt_tokens: 1000, completion_tokens: 5, total_tokens: 1005 };
  yield { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  yield { completion_tokens: 5, prompt_tokens: 1000, total_tokens: 1005 };
  yield { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, prompt_tokens_details: { cached_tokens: 0 } };
  yield { prompt_tokens: 1, completion_tokens: 2 };
  yield { prompt_tokens: 1.5, completion_tokens: -0, total_tokens: 1e21 };
  yield { prompt_tokens: Number.NaN, completion_tokens: 2, total_tokens: 3 };
  yield null;
}

function* results(): Generator<CompletionResult> {
  const heads: Array<Pick<CompletionResult, 'id' | 'model' | 'created'>> = [
    { id: 'chatcmpl-bench', model: 'gpt-4o-mini', created: 1_700_000_000 },
    { id: 'id "quoted" \\ é', model: 'm\n', created: 0 },
    { id: '', model: '', created: -0 },
    { id: 'x', model: 'y', created: Number.POSITIVE_INFINITY },
    { id: 'x', model: 'y', created: 1.5 },
  ];
  for (const head of heads)
    for (const message of messages())
      for (const usage of usages())
        for (const finish of ['stop', 'length', 'content_filter', null, 'stop\u00e9', undefined]) {
          const choice = { index: 0, message, finish_reason: finish } as unknown as CompletionResult['choices'][number];
          const result: CompletionResult = { ...head, choices: [choice] };
          if (usage !== undefined) result.usage = usage as CompletionResult['usage'];
          yield result;
          // Several choices, and one carrying a member the answer does not write.
          yield { ...result, choices: [choice, { ...choice, index: 1, stop_sequence: 'END' } as CompletionResult['choices'][number]] };
        }
  const base = { id: 'a', model: 'b', created: 1 };
  yield { ...base, choices: [] };
  yield { ...base, choices: [{ index: 2.5, message: { role: 'assistant', content: 'x' }, finish_reason: 'stop' }] };
  yield { ...base, choices: [{ index: Number.NaN, message: { role: 'assistant', content: 'x' }, finish_reason: 'stop' }] };
  yield { ...base, usage: undefined, choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'stop' }] };
}

describe('completionBody', () => {
  it('writes the same text as JSON.stringify of the answer object, whatever its shape', () => {
    let count = 0;
    for (const result of results()) {
      expect(completionBody(result)).toBe(reference(result));
      count++;
    }
    expect(count).toBeGreaterThan(1000);
  });

  it('writes the common answer as JSON.stringify does', () => {
    // The shape parseSimpleCompletion gives (see providers/validate.ts), as the bench's upstream sends it.
    const result: CompletionResult = {
      id: 'chatcmpl-bench',
      model: 'gpt-4o-mini',
      created: 1_700_000_000,
      choices: [{ index: 0, message: { role: 'assistant', content: 'Three bullet points.' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1000, completion_tokens: 5, total_tokens: 1005 },
    };
    const text = completionBody(result);
    expect(text).toBe(reference(result));
    expect(JSON.parse(text)).toEqual({ object: 'chat.completion', ...result, choices: [{ ...result.choices[0], logprobs: null }] });
  });
});
