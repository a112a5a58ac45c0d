/**
 * An incremental parser for Server-Sent Events (the `text/event-stream` format as the HTML
 * standard defines it): text arrives in arbitrary pieces; complete events come out. Handles
 * LF / CRLF / CR line ends (a CRLF may be split across pieces), comments (`:` lines), multi-line
 * `data:` (joined with `\n`), `event:` and `id:` fields, and an optional space after the colon.
 * An event larger than `maxEventChars` is an error: a stream that never ends a line must not
 * grow memory without bound.
 */

export interface SseEvent {
  /** The `event:` field; undefined for the default `message` type. */
  event?: string;
  data: string;
  id?: string;
}

export class SseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SseError';
  }
}

/** A `data: [DONE]` line (the space after the colon is optional, as for any field). */
const DONE_LINE = /^data: ?\[DONE\]$/;

/**
 * Pieces of one unterminated line joined by `+=` (the usual case: a line cut at a read or two).
 * Each `+=` leaves a rope node (~32 bytes) that lives until the line ends: a 1 MB line sent a byte
 * at a time (chunked, one byte per chunk) held 33 MB. Later pieces are kept in arrays instead and
 * joined in blocks of HELD_BLOCK, so a line costs about its own length however it arrives.
 */
const CONCAT_PIECES = 8;
const HELD_BLOCK = 1024;

export class SseParser {
  /** The unterminated line: its first CONCAT_PIECES pieces... */
  private buffer = '';
  /** ...then blocks of HELD_BLOCK later pieces, joined... */
  private blocks: string[] | undefined;
  /** ...and the later pieces not in a block yet. */
  private pieces: string[] | undefined;
  /** How many pieces the unterminated line has (0: none), and its length. */
  private held = 0;
  private heldChars = 0;
  private data: string[] = [];
  private eventType: string | undefined;
  private lastId: string | undefined;
  private size = 0;
  /** The previous piece ended with CR: a leading LF in the next piece belongs to it. */
  private pendingCR = false;

  constructor(private readonly maxEventChars = 1 << 20) {}

  /** Feeds a piece of decoded text; returns the events it completed (often none or one). */
  push(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    let start = 0;
    if (this.pendingCR && text.startsWith('\n')) start = 1;
    this.pendingCR = false;
    const len = text.length;
    for (let i = start; i < len; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.held > 0 ? this.takeLine(text.slice(start, i)) : text.slice(start, i), out);
      if (c === 13) {
        if (i + 1 < len) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCR = true;
        }
      }
      start = i + 1;
    }
    if (start < len) {
      this.hold(text.slice(start));
      if (this.heldChars + this.size > this.maxEventChars) throw new SseError('event exceeds the size limit');
    }
    return out;
  }

  /** Keeps a piece of the unterminated line (see CONCAT_PIECES). */
  private hold(piece: string): void {
    this.heldChars += piece.length;
    if (++this.held <= CONCAT_PIECES) {
      this.buffer += piece;
      return;
    }
    const pieces = (this.pieces ??= []);
    pieces.push(piece);
    if (pieces.length >= HELD_BLOCK) {
      (this.blocks ??= []).push(pieces.join(''));
      this.pieces = undefined;
    }
  }

  /** The unterminated line with `tail` (its end), and nothing held any more. */
  private takeLine(tail: string): string {
    let line = this.buffer;
    if (this.held > CONCAT_PIECES) line += (this.blocks?.join('') ?? '') + (this.pieces?.join('') ?? '');
    this.buffer = '';
    this.blocks = this.pieces = undefined;
    this.held = this.heldChars = 0;
    return line + tail;
  }

  /**
   * The stream ended. Per the standard an event not terminated by a blank line is discarded;
   * returns whether such an incomplete event was pending (a truncated stream), or, as `done`,
   * that the incomplete event was only `data: [DONE]` (a server that ends its stream there
   * without the blank line, or without any line end): the end marker, not a cut event.
   */
  end(): { truncated: boolean; done?: true } {
    const { data } = this;
    const pending = this.held > 0 ? this.takeLine('') : '';
    // The pending event is `data: [DONE]`, its line ended (data) or not (pending).
    const done = pending.length > 0 ? data.length === 0 && DONE_LINE.test(pending) : data.length === 1 && data[0] === '[DONE]';
    const truncated = pending.length > 0 || data.length > 0;
    this.data = [];
    this.eventType = undefined;
    this.size = 0;
    return done ? { truncated: false, done } : { truncated };
  }

  private line(line: string, out: SseEvent[]): void {
    if (line.length === 0) {
      if (this.data.length > 0) {
        const event: SseEvent = { data: this.data.join('\n') };
        if (this.eventType !== undefined) event.event = this.eventType;
        if (this.lastId !== undefined) event.id = this.lastId;
        out.push(event);
      }
      this.data = [];
      this.eventType = undefined;
      this.size = 0;
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) return; // comment, e.g. keep-alive `: ping`
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.size += value.length + 1;
        if (this.size > this.maxEventChars) throw new SseError('event exceeds the size limit');
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastId = value;
        break;
      default:
        // `retry` and unknown fields do not concern a one-shot client.
        break;
    }
  }
}
