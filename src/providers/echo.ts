/**
 * The `echo` provider: the embedded default. It answers with the final outbound prompt — after
 * rendering and redaction — so a developer sees exactly what a model would receive, with no
 * network and no keys. The answer is the prompt as `role: content` lines; token usage is the
 * usual rough estimate of one token per four characters.
 */
import type { CancelSignal } from '../pipeline/cancel.js';
import { WardenError } from '../pipeline/errors.js';
import type { ModelProvider } from '../pipeline/ports.js';
import type { ChatMessage, CompletionChunk, CompletionResult, UpstreamRequest, Usage } from '../pipeline/types.js';

/** Characters per streamed chunk: small enough that a stream has several chunks. */
const CHUNK_CHARS = 64;

function contentText(content: ChatMessage['content']): string {
  if (content === null) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => (part.type === 'text' && typeof part.text === 'string' ? part.text : `[${part.type}]`)).join('');
}

/** The prompt as the echo provider answers it: one `role: content` line per message. */
export function renderPrompt(messages: readonly ChatMessage[]): string {
  return messages
    .map((m) => {
      let line = `${m.role}: ${contentText(m.content)}`;
      if (m.tool_calls) for (const call of m.tool_calls) line += ` [tool call ${call.function.name}(${call.function.arguments})]`;
      return line;
    })
    .join('\n');
}

function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function usageFor(prompt: string): Usage {
  const n = estimateTokens(prompt);
  return { prompt_tokens: n, completion_tokens: n, total_tokens: 2 * n };
}

/** Splits without cutting a UTF-16 surrogate pair in two. */
function pieces(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(i + CHUNK_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}

function checkAborted(signal: CancelSignal): void {
  if (signal.aborted) throw new WardenError('cancelled', 'the request was cancelled');
}

export function createEchoProvider(name = 'echo'): ModelProvider {
  let seq = 0;
  const nextId = () => `chatcmpl-echo-${Date.now().toString(36)}-${(seq++).toString(36)}`;

  return {
    name,
    async complete(request: UpstreamRequest): Promise<CompletionResult> {
      checkAborted(request.signal);
      const prompt = renderPrompt(request.messages);
      return {
        id: nextId(),
        model: request.model,
        created: Math.floor(Date.now() / 1000),
        choices: [{ index: 0, message: { role: 'assistant', content: prompt }, finish_reason: 'stop' }],
        usage: usageFor(prompt),
      };
    },

    async *stream(request: UpstreamRequest): AsyncIterable<CompletionChunk> {
      checkAborted(request.signal);
      const prompt = renderPrompt(request.messages);
      const base = { id: nextId(), model: request.model, created: Math.floor(Date.now() / 1000) };
      // Same event sequence as OpenAI with stream_options.include_usage: role, content pieces,
      // a finish chunk, then a usage chunk with no choices.
      yield { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] };
      for (const piece of pieces(prompt)) {
        checkAborted(request.signal);
        yield { ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] };
      }
      checkAborted(request.signal);
      yield { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] };
      yield { ...base, choices: [], usage: usageFor(prompt) };
    },

    async close() {},
  };
}
