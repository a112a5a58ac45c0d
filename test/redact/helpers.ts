/** Shared helpers for the redaction tests: decisions, SSE encoding/decoding of OpenAI chunks. */
import { isWardenError, type WardenError } from '../../src/pipeline/errors.js';
import type { CompletionChunk, RedactionDecision, RedactionMode } from '../../src/pipeline/types.js';

export function decision(over: Partial<RedactionDecision> & { mode?: RedactionMode } = {}): RedactionDecision {
  return { profile: 'standard', entities: [], modes: {}, reidentify: true, fail_open: false, ...over };
}

/** OpenAI `chat.completion.chunk` events for `pieces`, as the SSE bytes an upstream sends. */
export function openAiSse(pieces: string[], opts: { toolArgs?: string[] } = {}): Uint8Array {
  const base = { id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1764000000, model: 'gpt-4o-mini' };
  const events: unknown[] = [{ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }];
  for (const p of pieces) events.push({ ...base, choices: [{ index: 0, delta: { content: p }, finish_reason: null }] });
  if (opts.toolArgs) {
    events.push({
      ...base,
      choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'send', arguments: '' } }] }, finish_reason: null }],
    });
    for (const a of opts.toolArgs) {
      events.push({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: a } }] }, finish_reason: null }] });
    }
  }
  events.push({ ...base, choices: [{ index: 0, delta: {}, finish_reason: opts.toolArgs ? 'tool_calls' : 'stop' }] });
  const text = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
  return new TextEncoder().encode(text);
}

/** Decodes SSE bytes arriving in arbitrary pieces into chunks (streaming UTF-8 decoding). */
export async function* decodeSse(parts: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<CompletionChunk> {
  const decoder = new TextDecoder('utf-8');
  let buf = '';
  const drain = function* (): Generator<CompletionChunk> {
    let sep = buf.indexOf('\n\n');
    while (sep >= 0) {
      const event = buf.slice(0, sep);
      buf = buf.slice(sep + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') continue;
        yield JSON.parse(data) as CompletionChunk;
      }
      sep = buf.indexOf('\n\n');
    }
  };
  for await (const part of parts as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(part, { stream: true });
    yield* drain();
  }
  buf += decoder.decode();
  yield* drain();
}

export async function* fromArray<T>(xs: T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Concatenated content and tool-call arguments (choice 0) of a chunk list. */
export function joinChunks(chunks: CompletionChunk[]): { content: string; args: string } {
  let content = '';
  let args = '';
  for (const c of chunks) {
    for (const ch of c.choices) {
      if (typeof ch.delta.content === 'string') content += ch.delta.content;
      for (const tc of ch.delta.tool_calls ?? []) args += tc.function?.arguments ?? '';
    }
  }
  return { content, args };
}

/** The WardenError `f` throws (any other error is rethrown; no error fails the test). */
export function thrown(f: () => unknown): WardenError {
  try {
    f();
  } catch (err) {
    if (isWardenError(err)) return err;
    throw err;
  }
  throw new Error('expected a WardenError');
}
