/**
 * The non-text parts of a call's messages, by kind, for the policy input (`request.attachments`):
 * Warden passes them upstream untouched (it cannot read a PDF or an audio clip), so the policy is
 * told how many the call carries and may refuse them. Ingress counts them on the walk that
 * already checks every part (server/request.ts, server/grpc.ts) and sets
 * PromptRequest.attachments; `countAttachments` is the same count for a request built elsewhere.
 */
import type { Attachments, ChatMessage, ContentPart } from './types.js';

export type { Attachments };

export type AttachmentKind = keyof Attachments;

/** What a call without non-text parts carries: shared, frozen. */
export const NO_ATTACHMENTS: Readonly<Attachments> = Object.freeze({ image: 0, audio: 0, file: 0 });

/**
 * The kind a part of this type counts as, or undefined for a part the redactor reads as text.
 * A type ingress does not know (it refuses those) counts as a file: it is at least as opaque.
 * `tool_result` is a container (its parts are counted by `countAttachments`), `tool_use` a call.
 */
export function attachmentKind(type: string): AttachmentKind | undefined {
  switch (type) {
    case 'text':
    case 'input_text':
    case 'output_text':
    case 'refusal':
    case 'tool_use':
    case 'tool_result':
      return undefined;
    case 'image_url':
      return 'image';
    case 'input_audio':
      return 'audio';
    default:
      return 'file';
  }
}

/**
 * `counts` with one more part of `type` when it is an attachment (made on the first one: a call
 * with none allocates nothing). Undefined until then.
 */
export function addAttachment(counts: Attachments | undefined, type: string): Attachments | undefined {
  const kind = attachmentKind(type);
  if (kind === undefined) return counts;
  const out = counts ?? { image: 0, audio: 0, file: 0 };
  out[kind]++;
  return out;
}

function countParts(parts: readonly ContentPart[], counts: Attachments | undefined): Attachments | undefined {
  for (const p of parts) {
    if (p.type === 'tool_result' && Array.isArray(p['content'])) counts = countParts(p['content'] as ContentPart[], counts);
    else counts = addAttachment(counts, p.type);
  }
  return counts;
}

/** The attachments of `messages` (tool results included): NO_ATTACHMENTS when there are none. */
export function countAttachments(messages: readonly ChatMessage[] | undefined): Readonly<Attachments> {
  let counts: Attachments | undefined;
  if (messages) for (const m of messages) if (Array.isArray(m.content)) counts = countParts(m.content, counts);
  return counts ?? NO_ATTACHMENTS;
}
