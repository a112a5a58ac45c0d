/**
 * Shapes of OpenAI Chat Completions responses, checked before anything reaches the caller: a
 * proxy or a misbehaving upstream must produce `upstream_error`, not a crash or a malformed
 * answer. Unknown fields are dropped (z.object strips them), so only the fields Warden's types
 * declare ever flow on.
 */
import { z } from 'zod';

const Role = z.enum(['system', 'developer', 'user', 'assistant', 'tool']);

const UsageSchema = z.object({
  prompt_tokens: z.int().nonnegative(),
  completion_tokens: z.int().nonnegative(),
  total_tokens: z.int().nonnegative(),
});

const ToolCallSchema = z.object({
  id: z.string(),
  type: z.literal('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

const ContentSchema = z.union([z.string(), z.null(), z.array(z.looseObject({ type: z.string() }))]);

const MessageSchema = z.object({
  role: Role,
  content: ContentSchema.optional().transform((c) => c ?? null),
  tool_calls: z.array(ToolCallSchema).optional(),
});

export const CompletionSchema = z.object({
  id: z.string(),
  model: z.string(),
  created: z.number(),
  choices: z
    .array(
      z.object({
        index: z.int().nonnegative(),
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
  tool_calls: z
    .array(
      z.object({
        index: z.int().nonnegative(),
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
      index: z.int().nonnegative(),
      delta: DeltaSchema,
      finish_reason: z.string().nullish().transform((f) => f ?? null),
    }),
  ),
  usage: UsageSchema.nullish(),
});
