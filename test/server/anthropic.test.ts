import { describe, expect, it } from 'vitest';
import { anthropicMessageBody } from '../../src/server/anthropic.js';

describe('anthropicMessageBody', () => {
  const answer = (finish: string) =>
    JSON.parse(
      anthropicMessageBody({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: finish }] }),
    ) as { stop_reason: unknown };

  it('maps finish_reason to stop_reason, and anything unknown to end_turn, including names every object has', () => {
    expect(answer('length').stop_reason).toBe('max_tokens');
    expect(answer('content_filter').stop_reason).toBe('refusal');
    for (const finish of ['whatever', 'constructor', 'toString', '__proto__']) expect(answer(finish).stop_reason, finish).toBe('end_turn');
  });
});
