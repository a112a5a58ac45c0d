/**
 * Shapes of OpenAI Chat Completions responses, checked before anything reaches the caller: a
 * proxy or a misbehaving upstream must produce `upstream_error`, not a crash or a malformed
 * answer. Unknown fields are dropped (z.object strips them), so only the fields Warden's types
 * declare ever flow on.
 */
import { z } from 'zod';
import { isDocumentedFinishReason, MAX_LABEL_LENGTH, type CompletionChunk } from '../pipeline/types.js';

/**
 * An answer is the assistant's: a message, or a delta, in another role (system, user, tool) is not
 * an answer to pass on under the assistant's name, and a stream that switches role mid-way is not
 * one answer. Both are refused as `upstream_error`.
 */
const AnswerRole = z.literal('assistant');

/**
 * Indexes and token counts are `uint32` on the gRPC wire (gateway.proto): a larger number would
 * arrive there silently wrapped (a tool call 2^40 as call 0), so it is refused for every ingress.
 */
export const UINT32_MAX = 0xffff_ffff;
const Count = z.int().nonnegative().max(UINT32_MAX);

/**
 * Some compatible servers leave `total_tokens` out; it is then prompt + completion, and refused
 * like any other count when that sum does not fit uint32.
 */
const UsageSchema = z
  .object({
    prompt_tokens: Count,
    completion_tokens: Count,
    total_tokens: Count.optional(),
  })
  .transform((u, ctx) => {
    const total = u.total_tokens ?? u.prompt_tokens + u.completion_tokens;
    if (total > UINT32_MAX) {
      ctx.issues.push({ code: 'custom', message: 'total_tokens beyond uint32', input: u });
      return z.NEVER;
    }
    return { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: total };
  });

/**
 * `created`: Unix seconds, an `int64` on the gRPC wire. A fraction, a negative number or one past
 * 2^53 - 1 (where a double no longer holds every integer) would arrive there truncated or
 * saturated, so it is refused for every ingress, as an index beyond uint32 is.
 */
const Created = z.int().nonnegative().max(Number.MAX_SAFE_INTEGER);

function isCreated(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

const Label = z.string().max(MAX_LABEL_LENGTH);

/**
 * A finish_reason: one OpenAI documents (FINISH_REASONS, pipeline/types.ts), or a compatible
 * server's own (TGI's `eos_token` and `stop_sequence`, Mistral's `model_length`, vLLM's `abort`)
 * when it is a short identifier. Those are passed on too, leak-guarded like a label, and read as
 * `stop` where a reason must be mapped (Anthropic's stop_reason), but for a failed generation's
 * (`error`, `abort`: see failure.ts isFailedFinish), which that format cannot carry. Anything else (text, a long
 * string) is refused: a finish_reason is passed on unread, so it must look like a reason, not
 * like model output.
 */
export const FINISH_REASON_RE = /^[a-z][a-z0-9_]{0,31}$/;
/** A finish_reason or none: `""` is none too, as older Ollama, SGLang and LocalAI send it where OpenAI sends null. */
const FinishReason = z.preprocess((v) => (v === '' ? null : v), z.string().regex(FINISH_REASON_RE).nullish());

/**
 * vLLM's `stop_reason` on a choice: the stop string that ended it, a stop token's id, or null (the
 * model's end of sequence). Kept as the choice's `stop_sequence` when a string (see
 * pipeline/types.ts StopSequence); a token id says no sequence.
 */
const StopReason = z.union([z.string(), z.number()]).nullish();

const ToolCallSchema = z.object({
  id: Label,
  type: z.literal('function'),
  function: z.object({ name: Label, arguments: z.string() }),
});

/** Part types whose `text` is the answer's prose. */
export const ANSWER_TEXT_PART_TYPES = ['text', 'input_text', 'output_text'] as const;

/**
 * The content parts an answer may hold, each to the members Warden redacts: a text part's
 * `text`, a refusal part's `refusal` (z.object drops the rest: `annotations`, `logprobs`, ...).
 * A part of any other type (reasoning, image_url, audio) is refused as `upstream_error`: it is
 * not Chat Completions output Warden knows how to redact (masking inside an image's base64 would
 * corrupt it, and every string of an unknown shape is a guess), so passing it would hand the
 * caller model output that neither redaction nor the leak guard read.
 */
const AnswerPartSchema = z.discriminatedUnion('type', [
  z.object({ type: z.enum(ANSWER_TEXT_PART_TYPES), text: z.string() }),
  z.object({ type: z.literal('refusal'), refusal: z.string() }),
]);

const ContentSchema = z.union([z.string(), z.null(), z.array(AnswerPartSchema)]);

const MessageSchema = z
  .object({
    role: AnswerRole,
    content: ContentSchema.optional().transform((c) => c ?? null),
    // Some compatible servers and proxies send `tool_calls: null`: no tool calls, as when absent.
    tool_calls: z.array(ToolCallSchema).nullish(),
    // OpenAI sends `refusal: null` on every message; only a refusal text is kept.
    refusal: z.string().nullish(),
  })
  .transform(({ refusal, tool_calls, ...m }) => ({
    ...m,
    ...(tool_calls ? { tool_calls } : {}),
    ...(typeof refusal === 'string' ? { refusal } : {}),
  }));

/** Whether no two choices share an index (each is one answer; a second 0 would be read as the first). */
function distinctIndexes(choices: readonly unknown[]): boolean {
  if (choices.length < 2) return true;
  // A choice that is not an object has no index: the per-choice checks refuse it (never a TypeError here).
  return new Set(choices.map((c) => (isRecord(c) ? c.index : c))).size === choices.length;
}

export const CompletionSchema = z.object({
  id: Label,
  model: Label,
  created: Created,
  choices: z
    .array(
      z
        .object({
          index: Count,
          message: MessageSchema,
          finish_reason: FinishReason.transform((f) => f ?? null),
          stop_reason: StopReason,
        })
        .transform(({ stop_reason, ...c }) => (typeof stop_reason === 'string' ? { ...c, stop_sequence: stop_reason } : c)),
    )
    .min(1)
    .refine(distinctIndexes),
  usage: UsageSchema.nullish().transform((u) => u ?? undefined),
});

/**
 * A chunk's shape, checked by zod as cheaply as it can be (every streamed event goes through it):
 * plain strings and numbers, no transform below the chunk. What else a chunk must be (labels
 * within MAX_LABEL_LENGTH, `created` a safe integer, explicit nulls read as absent) is checked
 * and normalised by hand afterwards, in settleChunk.
 */
const ToolCallDeltaShape = z.object({
  index: Count,
  id: z.string().nullish(),
  type: z.literal('function').nullish(),
  function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
});

const DeltaShape = z.object({
  role: AnswerRole.nullish(),
  content: z.string().nullish(),
  refusal: z.string().nullish(),
  tool_calls: z.array(ToolCallDeltaShape).nullish(),
});

const ChunkShape = z.object({
  id: z.string(),
  model: z.string(),
  created: z.number(),
  choices: z.array(
    z.object({
      index: Count,
      // Absent or null on Azure OpenAI's asynchronous content filter annotations (a choice's
      // content_filter_results and offsets, nothing of the answer): an empty delta, see settleChunk.
      delta: DeltaShape.nullish(),
      // Checked by hand in settleChunk (`""` and absent are none; else a short identifier).
      finish_reason: z.string().nullish(),
      // Kept as `stop_sequence` by settleChunk when a string.
      stop_reason: StopReason,
    }),
  ),
  usage: UsageSchema.nullish(),
});

type ChunkShaped = z.infer<typeof ChunkShape>;

/**
 * The rules of a chunk its shape does not say, on zod's output (fresh objects, so changed in
 * place): false when one fails. A choice without a delta (or with `delta: null`) gets an empty
 * one. Some compatible servers send `"role": null`, `"tool_calls":
 * null`, a tool call's `"id": null`, `"type": null`, `"name": null` where OpenAI leaves a member
 * out; null means "none" there, so the member is dropped (and a finish_reason of `""` is none,
 * as older Ollama, SGLang and LocalAI send it). A null content or refusal is passed on
 * as it came (OpenAI's own). OpenAI's own chunks have no such null and cost a few compares.
 */
function settleChunk(c: ChunkShaped): boolean {
  if (!isCreated(c.created) || !isLabel(c.id) || !isLabel(c.model)) return false;
  for (const choice of c.choices) {
    if (choice.stop_reason !== undefined) {
      const matched = choice.stop_reason;
      delete choice.stop_reason;
      if (typeof matched === 'string') (choice as { stop_sequence?: string }).stop_sequence = matched;
    }
    const finish = choice.finish_reason;
    if (finish === undefined || finish === '') choice.finish_reason = null;
    else if (finish !== null && !FINISH_REASON_RE.test(finish)) return false;
    let d = choice.delta;
    // A choice with no delta carries nothing of the answer (Azure's filter annotations, which
    // come with id "", model "" and created 0): an empty delta, as a chunk OpenAI sends with
    // only a finish_reason has.
    if (d == null) d = choice.delta = {};
    if (d.role === null) delete d.role;
    if (d.tool_calls === null) delete d.tool_calls;
    if (d.tool_calls === undefined) continue;
    for (const t of d.tool_calls) {
      if (t.id === null) delete t.id;
      else if (t.id !== undefined && !isLabel(t.id)) return false;
      if (t.type === null) delete t.type;
      const fn = t.function;
      if (fn === null) delete t.function;
      if (!fn) continue;
      if (fn.name === null) delete fn.name;
      else if (fn.name !== undefined && !isLabel(fn.name)) return false;
      if (fn.arguments === null) delete fn.arguments;
    }
  }
  return true;
}

/**
 * A streamed event's JSON as a checked chunk (unknown members dropped, nulls read as absent), or
 * undefined when it is not one. Its shape is zod's, the rest settleChunk's: a transform on the
 * schema would cost each chunk another ~0.1 µs of zod's machinery.
 */
export function parseChunk(json: unknown): CompletionChunk | undefined {
  const parsed = ChunkShape.safeParse(json);
  if (!parsed.success || !settleChunk(parsed.data)) return undefined;
  return parsed.data as CompletionChunk;
}

type Completion = z.infer<typeof CompletionSchema>;

const PART_TYPES: ReadonlySet<unknown> = new Set([...ANSWER_TEXT_PART_TYPES, 'refusal']);

function isLabel(v: unknown): v is string {
  return typeof v === 'string' && v.length <= MAX_LABEL_LENGTH;
}

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
  if (!isLabel(id) || !isLabel(model) || !isCreated(created)) return undefined;
  if (!Array.isArray(choices) || choices.length === 0 || !distinctIndexes(choices as unknown[])) return undefined;
  const outChoices: Completion['choices'] = [];
  for (const c of choices as unknown[]) {
    if (!isRecord(c) || !isCount(c.index)) return undefined;
    const m = c.message;
    if (!isRecord(m) || m.role !== 'assistant' || (m.tool_calls !== undefined && m.tool_calls !== null)) return undefined;
    // A refusal text goes through the schema (the common `refusal: null` is dropped, as there).
    if (m.refusal !== undefined && m.refusal !== null) return undefined;
    const content = m.content;
    if (content !== undefined && content !== null && typeof content !== 'string') return undefined;
    const finish = c.finish_reason;
    if (finish !== null && !(typeof finish === 'string' && isDocumentedFinishReason(finish))) return undefined;
    // A matched stop string (vLLM) goes through the schema, which keeps it.
    if (typeof c.stop_reason === 'string') return undefined;
    outChoices.push({
      index: c.index,
      message: { role: 'assistant', content: content ?? null },
      finish_reason: finish as Completion['choices'][number]['finish_reason'],
    });
  }
  let outUsage: Completion['usage'];
  if (usage !== undefined && usage !== null) {
    if (!isRecord(usage) || !isCount(usage.prompt_tokens) || !isCount(usage.completion_tokens)) return undefined;
    // As the schema: a missing total is prompt + completion.
    const total = usage.total_tokens === undefined ? usage.prompt_tokens + usage.completion_tokens : usage.total_tokens;
    if (!isCount(total)) return undefined;
    outUsage = { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: total };
  }
  const out = { id, model, created, choices: outChoices } as Completion;
  // As zod: a `usage` member absent from the input is absent from the output.
  if ('usage' in json) out.usage = outUsage;
  return out;
}

/**
 * What is wrong with an answer (a completion, or with `streamed` a chunk) that the schema refused,
 * when it is one of the rules callers may meet with an otherwise well-formed upstream: a part
 * type, a finish_reason or a label length. Never quotes the upstream's text (it is model output).
 * Undefined for any other fault. Only called once the schema has refused the answer.
 */
export function answerFault(json: unknown, streamed: boolean): string | undefined {
  if (!isRecord(json)) return undefined;
  if (!labelFits(json.id) || !labelFits(json.model)) return `an id or model longer than ${MAX_LABEL_LENGTH} characters`;
  if (typeof json.created === 'number' && !isCreated(json.created)) return 'a created that is not a whole number of seconds from 0 to 2^53 - 1';
  if (!Array.isArray(json.choices)) return undefined;
  if (!streamed && json.choices.every(isRecord) && !distinctIndexes(json.choices as Array<{ index: unknown }>)) return 'two choices with the same index';
  for (const c of json.choices as unknown[]) {
    if (!isRecord(c)) continue;
    const finish = c.finish_reason;
    if (finish !== null && finish !== undefined && finish !== '' && !(typeof finish === 'string' && FINISH_REASON_RE.test(finish))) return 'a finish_reason that is not a short identifier (lowercase letters, digits, _; at most 32)';
    const m = streamed ? c.delta : c.message;
    if (!isRecord(m)) continue;
    if (typeof m.role === 'string' && m.role !== 'assistant') return `a ${streamed ? 'delta' : 'message'} with a role other than assistant`;
    const content = m.content;
    if (Array.isArray(content) && content.some((p) => !isRecord(p) || !PART_TYPES.has(p.type))) {
      return `a content part of a type other than ${ANSWER_TEXT_PART_TYPES.join(', ')} or refusal`;
    }
    if (!Array.isArray(m.tool_calls)) continue;
    for (const t of m.tool_calls as unknown[]) {
      if (!isRecord(t)) continue;
      const fn = t.function;
      if (!labelFits(t.id) || (isRecord(fn) && !labelFits(fn.name))) return `a tool call id or function name longer than ${MAX_LABEL_LENGTH} characters`;
    }
  }
  return undefined;
}

/** A label within MAX_LABEL_LENGTH, or not a string at all (the schema's other rules judge that). */
function labelFits(v: unknown): boolean {
  return typeof v !== 'string' || v.length <= MAX_LABEL_LENGTH;
}

/**
 * How many choices the request asked for: its `n` (a pass-through parameter on the OpenAI route
 * and gRPC's params_json; /v1/messages has none), 1 when unset. An upstream may not add more: each
 * choice is redacted on its own, and a caller that asked for one answer reads one (the
 * /v1/messages encoder writes every delta into one message, which would join, past redaction, a
 * value an upstream split across choices). An `n` that is not a positive integer is the
 * upstream's to refuse; meanwhile it asks for one.
 */
export function askedChoices(params: Readonly<Record<string, unknown>>): number {
  const n = params['n'];
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 ? n : 1;
}

/**
 * What is wrong with a choice index the request did not ask for (see askedChoices), or undefined.
 * The index is not repeated: it is the upstream's number, up to 2^32 - 1, which holds a phone
 * number (4155552671) or a social security number's digits as well as an index.
 */
export function unaskedChoice(index: number, asked: number): string | undefined {
  return index < asked ? undefined : `a choice the request did not ask for (an index at or past ${asked}: it asked for ${asked})`;
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

  /** `asked`: how many choices the request asked for (askedChoices). */
  constructor(private readonly asked = 1) {}

  /** Checks the next chunk; returns what is wrong with the stream (for `upstream_error`), or undefined. */
  check(chunk: CompletionChunk): string | undefined {
    for (const c of chunk.choices) {
      this.answered = true;
      const i = c.index;
      const unasked = unaskedChoice(i, this.asked);
      if (unasked !== undefined) return unasked;
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

  /**
   * Every choice the request asked for began and reached its finish_reason: a body that ends here
   * without `[DONE]` is whole. With `n` > 1 one finished choice is not enough: another may have
   * been cut, before its first chunk as well as within it. (An upstream that ignores `n` and
   * omits `[DONE]` is then refused: the closed side.)
   */
  get whole(): boolean {
    return this.answered && this.choices.size >= this.asked && this.finished.size === this.choices.size;
  }
}
