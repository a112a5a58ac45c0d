/**
 * Bounds on what a gRPC error puts in its trailers. An error's message and details may hold a
 * policy's words (its reasons, the models it allows), which are unbounded: an HTTP error body
 * keeps 64 KiB of them, but trailers are HTTP/2 headers, and clients refuse a large header list:
 * grpc-js (Node's default 64 KiB) never ends the call at all (the client waits until its deadline),
 * grpc-java's Netty transport and gRPC C-core (Python, Ruby, C++) refuse more than 8 KiB of
 * metadata. So the status message keeps MESSAGE_MAX_BYTES of UTF-8 and the ErrorInfo metadata
 * DETAILS_MAX_BYTES: with `grpc-message` percent-encoded (up to 3 bytes a byte) and
 * `grpc-status-details-bin` in base64 (the message once more, plus the metadata), the trailers
 * stay under 8 KiB whatever the text. A cut says what it left out.
 */

/** The status message's bound, in UTF-8 bytes. */
export const MESSAGE_MAX_BYTES = 1024;

/** The bound of ErrorInfo's metadata values together, in UTF-8 bytes. */
export const DETAILS_MAX_BYTES = 2048;

/** `text` cut to at most `max` UTF-8 bytes, on a character boundary. */
function cutToBytes(text: string, max: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return text;
  // A cut inside a character decodes to U+FFFD at the end: dropped.
  return bytes.subarray(0, Math.max(0, max)).toString('utf8').replace(/\uFFFD+$/, '');
}

/** The status message, whole when it fits, else its start and how much was left out. */
export function boundedStatusMessage(message: string): string {
  const size = Buffer.byteLength(message, 'utf8');
  if (size <= MESSAGE_MAX_BYTES) return message;
  const note = ` ... (${size} bytes; a gRPC status message keeps ${MESSAGE_MAX_BYTES})`;
  return cutToBytes(message, MESSAGE_MAX_BYTES - Buffer.byteLength(note, 'utf8')) + note;
}

/** A list of strings as JSON in at most `room` bytes: the items that fit, then one counting the rest. */
function boundedList(items: readonly string[], room: number, note: (what: string) => string): string {
  // Room for the brackets and the last item (a count of at most 10 digits).
  let left = room - 2 - Buffer.byteLength(JSON.stringify(note('9999999999 more item(s)')), 'utf8') - 1;
  const kept: string[] = [];
  for (const item of items) {
    const size = Buffer.byteLength(JSON.stringify(item), 'utf8') + 1;
    if (size > left) break;
    kept.push(item);
    left -= size;
  }
  kept.push(note(`${items.length - kept.length} more item(s)`));
  return JSON.stringify(kept);
}

/**
 * ErrorInfo's metadata (each value a string: the detail's own or its JSON) within
 * DETAILS_MAX_BYTES. The small values are kept first (a decision id is not lost to a long list);
 * a list of strings that does not fit keeps the items that do and a last one counting the rest
 * (the HTTP body's shape), any other value that does not fit is replaced by a note of its size.
 */
export function boundedErrorMetadata(details: Record<string, unknown> | undefined): Record<string, string> {
  const members: Array<{ key: string; value: unknown; text: string; size: number }> = [];
  for (const [key, value] of Object.entries(details ?? {})) {
    if (value === undefined) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    members.push({ key, value, text, size: Buffer.byteLength(text, 'utf8') });
  }
  let left = DETAILS_MAX_BYTES;
  const note = (what: string) => `(${what} not shown: gRPC error details keep ${DETAILS_MAX_BYTES} bytes)`;
  const bounded = new Map<string, string>();
  for (const m of [...members].sort((a, b) => a.size - b.size)) {
    let text = m.text;
    if (m.size > left) {
      const list = Array.isArray(m.value) && m.value.every((v) => typeof v === 'string');
      text = list ? boundedList(m.value as string[], left, note) : note(`${m.size} bytes`);
    }
    bounded.set(m.key, text);
    left = Math.max(0, left - Buffer.byteLength(text, 'utf8'));
  }
  // In the details' own order.
  const out: Record<string, string> = {};
  for (const m of members) out[m.key] = bounded.get(m.key)!;
  return out;
}
