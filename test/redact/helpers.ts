/** Shared helpers for the redaction tests: decisions, SSE encoding/decoding of OpenAI chunks. */
import { isWardenError, type WardenError } from '../../src/pipeline/errors.js';
import type { CompletionChunk, RedactionDecision, RedactionMode } from '../../src/pipeline/types.js';
import type { Session } from '../../src/redact/session.js';

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

/** One streamed piece of answer text: as content, or as tool call 0's arguments. */
export function pieceChunk(asArgs: boolean, piece: string): CompletionChunk {
  const delta = asArgs ? { tool_calls: [{ index: 0, function: { arguments: piece } }] } : { content: piece };
  return { id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta, finish_reason: null }] };
}

/** The non-streamed answer: `text` as content, or as one tool call's arguments, after the session. */
export function wholeAnswer(s: Session, text: string, asArgs: boolean): string {
  const message = asArgs
    ? { role: 'assistant' as const, content: null, tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'f', arguments: text } }] }
    : { role: 'assistant' as const, content: text };
  const out = s.processCompletion({ id: 'x', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'stop', message }] }).choices[0]!.message;
  return asArgs ? out.tool_calls![0]!.function.arguments : (out.content as string);
}

/** Streams `pieces` (then a finish) through the session and returns every emitted delta of the channel, in order. */
export async function streamedDeltas(s: Session, pieces: string[], asArgs: boolean): Promise<string[]> {
  const chunks = pieces.map((p) => pieceChunk(asArgs, p));
  chunks.push({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  const deltas: string[] = [];
  for (const c of await collect(s.processStream(fromArray(chunks)))) {
    const d = c.choices[0]?.delta;
    if (!d) continue;
    if (asArgs) for (const t of d.tool_calls ?? []) deltas.push(t.function?.arguments ?? '');
    else if (typeof d.content === 'string') deltas.push(d.content);
  }
  return deltas;
}

export function bySize(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** Every way to cut `text` in two, and every piece size 1..maxSize. */
export function cuts(text: string, maxSize: number): Array<{ how: string; pieces: string[] }> {
  const out: Array<{ how: string; pieces: string[] }> = [];
  for (let i = 1; i < text.length; i++) out.push({ how: `split at ${i}`, pieces: [text.slice(0, i), text.slice(i)] });
  for (let size = 1; size <= maxSize; size++) out.push({ how: `pieces of ${size}`, pieces: bySize(text, size) });
  return out;
}
