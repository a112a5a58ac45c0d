/**
 * A body that arrives in pieces (an upstream's answer, a caller's request), held as one buffer.
 *
 * Why not an array of the pieces joined at the end: each piece is a Buffer object of its own,
 * ~100 bytes of heap or more whatever its length, so a body sent in one-byte pieces (chunked
 * transfer coding with one byte per chunk, or a sender trickling it) held 100-150 times its size
 * until it ended: a size cap in bytes bounded nothing a process could afford (two 1 MB request
 * bodies so took 314 MB of heap; an 8 MB answer 835 MB).
 *
 * The first piece is kept as it came (the usual body is one piece: no copy). From the second on
 * the bytes are copied into one buffer, grown by doubling, never past the declared length (when
 * the body keeps to it) nor `max`.
 */

/** The least a body of several pieces is copied into (then doubled as it grows). */
const MIN_COPY_BYTES = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export class BytePieces {
  /** The body while it is one piece. */
  private first: Buffer | undefined;
  /** From the second piece on, every byte so far (`length` of them). */
  private acc: Buffer | undefined;
  /** Bytes held. */
  length = 0;

  /**
   * @param max       the most the caller will add (it refuses a body past its limit first)
   * @param declared  the body's declared length, when there is one (NaN or undefined: none)
   */
  constructor(
    private readonly max: number,
    private declared = Number.NaN,
  ) {}

  /** The declared length, once known (an answer's headers come after the collector is made). */
  declare(length: number): void {
    this.declared = length;
  }

  add(piece: Buffer): void {
    const at = this.length;
    const size = (this.length += piece.length);
    if (this.acc === undefined && this.first === undefined) {
      this.first = piece;
      return;
    }
    let acc = this.acc;
    if (acc === undefined || size > acc.length) {
      // Twice what is here, never past the declared length (so a body that keeps to it ends in a
      // buffer of its size) nor `max`. Not the declared length at once: a sender that declares the
      // limit and then sends two bytes would have that much allocated for it.
      const declared = this.declared;
      const ceiling = declared >= size ? declared : this.max;
      const capacity = Math.max(Math.min(Math.max(2 * size, MIN_COPY_BYTES), ceiling), size);
      const grown = Buffer.allocUnsafe(capacity);
      if (acc !== undefined) acc.copy(grown, 0, 0, at);
      else this.first!.copy(grown, 0);
      this.first = undefined;
      this.acc = acc = grown;
    }
    piece.copy(acc, at);
  }

  /** The body (a view, not a copy); nothing is held any more. */
  take(): Buffer {
    const body = this.acc !== undefined ? this.acc.subarray(0, this.length) : (this.first ?? EMPTY);
    this.clear();
    return body;
  }

  clear(): void {
    this.first = this.acc = undefined;
    this.length = 0;
  }
}
