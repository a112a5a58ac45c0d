/**
 * Shapes of OpenAI Chat Completions responses, checked before anything reaches the caller: a
 * proxy or a misbehaving upstream must produce `upstream_error`, not a crash or a malformed
 * answer. Unknown fields are dropped (z.object strips them), so only the fields Warden's types
 * declare ever flow on.
 */
import { z } from 'zod';
import type { CompletionChunk } from '../pipeline/types.js';

const Role = z.enum(['system', 'developer', 'user', 'assistant', 'tool']);

/**
 * Indexes and token counts are `uint32` on the gRPC wire (gateway.proto): a larger number would
 * arrive there silently wrapped (a tool call 2^40 as call 0), so it is refused for every ingress.
 */
export const UINT32_MAX = 0xffff_ffff;
const Count = z.int().nonnegative().max(UINT32_MAX);

const UsageSchema = z.object({
  prompt_tokens: Count,
  completion_tokens: Count,
  total_tokens: Count,
});

const ToolCallSchema = z.object({
  id: z.string(),
  type: z.literal('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

const ContentSchema = z.union([z.string(), z.null(), z.array(z.looseObject({ type: z.string() }))]);

const MessageSchema = z
  .object({
    role: Role,
    content: ContentSchema.optional().transform((c) => c ?? null),
    tool_calls: z.array(ToolCallSchema).optional(),
    // OpenAI sends `refusal: null` on every message; only a refusal text is kept.
    refusal: z.string().nullish(),
  })
  .transform(({ refusal, ...m }) => (typeof refusal === 'string' ? { ...m, refusal } : m));

export const CompletionSchema = z.object({
  id: z.string(),
  model: z.string(),
  created: z.number(),
  choices: z
    .array(
      z.object({
        index: Count,
        message: MessageSchema,
        finish_reason: z.string().nullable(),
      }),
    )
    .min(1),
  usage: UsageSchema.nullish().transform((u) => u ?? undefined),
});

const DeltaSchema = z.object({
  role: Role.optional(),
  content: z.string().nullish(),
  refusal: z.string().nullish(),
  tool_calls: z
    .array(
      z.object({
        index: Count,
        id: z.string().optional(),
        type: z.literal('function').optional(),
        function: z.object({ name: z.string().optional(), arguments: z.string().optional() }).optional(),
      }),
    )
    .optional(),
});

export const ChunkSchema = z.object({
  id: z.string(),
  model: z.string(),
  created: z.number(),
  choices: z.array(
    z.object({
      index: Count,
      delta: DeltaSchema,
      finish_reason: z.string().nullish().transform((f) => f ?? null),
    }),
  ),
  usage: UsageSchema.nullish(),
});

type Completion = z.infer<typeof CompletionSchema>;

const ROLES: ReadonlySet<unknown> = new Set(Role.options);

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= UINT32_MAX;
}

/**
 * The common non-streamed completion (text answers, no tool calls, no content parts), checked and
 * copied by hand: the same result `CompletionSchema.parse` gives (unknown fields dropped,
 * `content` and `usage` normalised), without zod's generic walk on every request. Returns
 * undefined for anything else; the caller then runs the schema, which has the final word.
 */
export function parseSimpleCompletion(json: unknown): Completion | undefined {
  if (!isRecord(json)) return undefined;
  const { id, model, created, choices, usage } = json;
  if (typeof id !== 'string' || typeof model !== 'string' || typeof created !== 'number' || !Number.isFinite(created)) return undefined;
  if (!Array.isArray(choices) || choices.length === 0) return undefined;
  const outChoices: Completion['choices'] = [];
  for (const c of choices as unknown[]) {
    if (!isRecord(c) || !isCount(c.index)) return undefined;
    const m = c.message;
    if (!isRecord(m) || !ROLES.has(m.role) || m.tool_calls !== undefined) return undefined;
    // A refusal text goes through the schema (the common `refusal: null` is dropped, as there).
    if (m.refusal !== undefined && m.refusal !== null) return undefined;
    const content = m.content;
    if (content !== undefined && content !== null && typeof content !== 'string') return undefined;
    const finish = c.finish_reason;
    if (finish !== null && typeof finish !== 'string') return undefined;
    outChoices.push({
      index: c.index,
      message: { role: m.role as Completion['choices'][number]['message']['role'], content: content ?? null },
      finish_reason: finish,
    });
  }
  let outUsage: Completion['usage'];
  if (usage !== undefined && usage !== null) {
    if (!isRecord(usage) || !isCount(usage.prompt_tokens) || !isCount(usage.completion_tokens) || !isCount(usage.total_tokens)) return undefined;
    outUsage = { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens };
  }
  const out = { id, model, created, choices: outChoices } as Completion;
  // As zod: a `usage` member absent from the input is absent from the output.
  if ('usage' in json) out.usage = outUsage;
  return out;
}

/** Most distinct choices one stream may carry (OpenAI's `n` is at most 128). */
export const MAX_STREAM_CHOICES = 128;
/** Most distinct tool calls one stream may carry, all its choices together. */
export const MAX_STREAM_TOOL_CALLS = 256;

/**
 * What a stream must hold across its chunks, which no one chunk's schema can say. Each choice and
 * each tool call gets a text channel downstream (redaction holds back a little of each), so their
 * number is bounded: a stream of ever new indexes would otherwise grow memory without end. And a
 * choice is over at its finish_reason: its held-back text is released there, so text arriving
 * for it afterwards would be redacted apart from that tail (half an entity on each side) — such a
 * stream is refused rather than guessed at. A repeated finish_reason, a role or an empty piece
 * carries nothing and passes.
 */
export class StreamCheck {
  private readonly choices = new Set<number>();
  private readonly finished = new Set<number>();
  /** Tool-call indexes seen, per choice. */
  private readonly tools = new Map<number, Set<number>>();
  private toolCount = 0;
  /** A chunk with a choice was seen: `[DONE]` before one is a stream with no answer. */
  answered = false;

  /** Checks the next chunk; returns what is wrong with the stream (for `upstream_error`), or undefined. */
  check(chunk: CompletionChunk): string | undefined {
    for (const c of chunk.choices) {
      this.answered = true;
      const i = c.index;
      if (!this.choices.has(i)) {
        if (this.choices.size >= MAX_STREAM_CHOICES) return `a stream with more than ${MAX_STREAM_CHOICES} choices`;
        this.choices.add(i);
      }
      const d = c.delta;
      const calls = d.tool_calls ?? [];
      if (this.finished.has(i) && (!!d.content || !!d.refusal || calls.length > 0)) return 'a stream with content after its finish_reason';
      if (calls.length > 0) {
        let seen = this.tools.get(i);
        if (!seen) this.tools.set(i, (seen = new Set()));
        for (const t of calls) {
          if (seen.has(t.index)) continue;
          if (this.toolCount >= MAX_STREAM_TOOL_CALLS) return `a stream with more than ${MAX_STREAM_TOOL_CALLS} tool calls`;
          seen.add(t.index);
          this.toolCount++;
        }
      }
      if (c.finish_reason !== null) this.finished.add(i);
    }
    return undefined;
  }
}
