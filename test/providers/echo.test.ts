import { describe, expect, it } from 'vitest';
import { createEchoProvider, renderPrompt } from '../../src/providers/index.js';
import type { ChatMessage, CompletionChunk, UpstreamRequest } from '../../src/pipeline/index.js';

const messages: ChatMessage[] = [
  { role: 'system', content: 'You summarise support tickets.' },
  { role: 'user', content: [{ type: 'text', text: 'Ticket 42: ' }, { type: 'image_url', image_url: { url: 'x' } }, { type: 'text', text: 'printer on fire' }] },
];

function req(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return { model: 'echo', messages, stream: false, params: {}, signal: new AbortController().signal, ...over };
}

describe('echo provider', () => {
  it('renders the prompt as role: content lines', () => {
    expect(renderPrompt(messages)).toBe('system: You summarise support tickets.\nuser: Ticket 42: [image_url]printer on fire');
  });

  it('answers non-streaming with one assistant message holding the prompt', async () => {
    const result = await createEchoProvider().complete(req());
    expect(result.model).toBe('echo');
    expect(result.choices).toEqual([{ index: 0, message: { role: 'assistant', content: renderPrompt(messages) }, finish_reason: 'stop' }]);
    expect(result.usage?.total_tokens).toBe(result.usage!.prompt_tokens + result.usage!.completion_tokens);
    expect(result.usage!.prompt_tokens).toBeGreaterThan(0);
  });

  it('streams several chunks that join to the prompt, then stop, then usage', async () => {
    const long: ChatMessage[] = [{ role: 'user', content: 'é😀'.repeat(100) }];
    const chunks: CompletionChunk[] = [];
    for await (const c of createEchoProvider().stream(req({ messages: long, stream: true }))) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(4);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(renderPrompt(long));
    // no chunk ends with half a surrogate pair
    for (const c of chunks) {
      const t = c.choices[0]?.delta.content ?? '';
      if (t) expect(/[\uD800-\uDBFF]$/.test(t)).toBe(false);
    }
    const stop = chunks[chunks.length - 2]!;
    expect(stop.choices[0]!.finish_reason).toBe('stop');
    const last = chunks[chunks.length - 1]!;
    expect(last.choices).toEqual([]);
    expect(last.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('stops with cancelled when the request is aborted mid-stream', async () => {
    const ac = new AbortController();
    const it = createEchoProvider().stream(req({ messages: [{ role: 'user', content: 'x'.repeat(1000) }], stream: true, signal: ac.signal }))[Symbol.asyncIterator]();
    await it.next();
    ac.abort();
    await expect(it.next()).rejects.toMatchObject({ code: 'cancelled' });
  });
});
