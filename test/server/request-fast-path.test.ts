/**
 * Ingress skips zod's walk for a governed call (isSimpleTemplateBody), on the promise that the
 * schema would hand the body back unchanged. Here that promise is checked on every combination
 * of the members the fast path lets through, and the shape the openai SDK sends for a templated
 * call (an empty `messages`, often a token limit) is shown to take it.
 */
import { describe, expect, it } from 'vitest';
import { chatBody, isSimpleTemplateBody } from '../../src/server/request.js';

const WARDEN = { template: 'support/ticket-summary@2', variables: { ticket_id: 'T-1', count: 3, urgent: true } };

function* bodies(): Generator<Record<string, unknown>> {
  const optional = <T>(values: T[]): Array<T | undefined> => [undefined, ...values];
  for (const messages of optional<unknown>([[], [{ role: 'user', content: 'hi' }], null]))
    for (const stream of optional<unknown>([true, false, null, 'yes']))
      for (const maxTokens of optional<unknown>([1, 256, null, 0, 2.5]))
        for (const maxCompletion of optional<unknown>([64, null]))
          for (const warden of optional<unknown>([WARDEN, { template: 'a/b' }, { template: '' }, { variables: { x: [1] } }]))
            for (const extra of [{}, { temperature: 0.2, user: 'u-1' }]) {
              const body: Record<string, unknown> = { model: 'gpt-4o-mini', ...extra };
              if (messages !== undefined) body.messages = messages;
              if (stream !== undefined) body.stream = stream;
              if (maxTokens !== undefined) body.max_tokens = maxTokens;
              if (maxCompletion !== undefined) body.max_completion_tokens = maxCompletion;
              if (warden !== undefined) body.warden = warden;
              yield body;
            }
}

/** What toPromptRequest checks before it asks isSimpleTemplateBody (checkParamRange on the token limits). */
function tokenLimitsInRange(body: Record<string, unknown>): boolean {
  const ok = (v: unknown) => v === undefined || v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 1);
  return ok(body.max_tokens) && ok(body.max_completion_tokens);
}

describe('the governed-call fast path', () => {
  it('accepts only bodies the schema hands back unchanged', () => {
    let fast = 0;
    for (const body of bodies()) {
      if (!tokenLimitsInRange(body) || !isSimpleTemplateBody(body)) continue;
      fast++;
      const parsed = chatBody.safeParse(body);
      expect(parsed.success, JSON.stringify(body)).toBe(true);
      expect(parsed.data, JSON.stringify(body)).toEqual(body);
    }
    // The combinations above hold both kinds: the check ran on a good share of them.
    expect(fast).toBeGreaterThan(100);
  });

  it("is taken by the SDK's templated call: an empty messages array and a token limit", () => {
    expect(isSimpleTemplateBody({ model: 'gpt-4o-mini', messages: [], max_tokens: 256, warden: WARDEN })).toBe(true);
    expect(isSimpleTemplateBody({ model: 'gpt-4o-mini', messages: [], max_completion_tokens: 64, stream: true, warden: WARDEN })).toBe(true);
    // Messages with content, or tools, still go through the schema.
    expect(isSimpleTemplateBody({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], warden: WARDEN })).toBe(false);
    expect(isSimpleTemplateBody({ model: 'gpt-4o-mini', tools: [], warden: WARDEN })).toBe(false);
  });
});
