import { DinomoError } from '../errors/index.js';

/**
 * Length-prefixed framing for byte streams: each frame is a 4-byte big-endian payload length and
 * then the payload. A stream delivers frames in arbitrary chunks, so the reader keeps the chunks
 * it was given and copies each byte at most once: a frame that lies inside one chunk is returned as
 * a view on it, and only a frame that spans chunks is assembled into a buffer of its own size.
 */

export const frameHeaderBytes = 4;

/** The largest payload a TCP actor transport sends or accepts: an envelope above it is refused. */
export const maxFrameBytes = 4 * 1024 * 1024;

/** Prefixes `payload` with its length; throws INTERNAL if it is larger than `limit`. */
export function encodeFrame(payload: Uint8Array, limit = maxFrameBytes): Buffer {
  if (payload.length > limit) {
    throw new DinomoError(
      'INTERNAL',
      `a frame of ${payload.length} bytes exceeds the ${limit}-byte limit; send smaller messages`,
    );
  }
  const frame = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, frameHeaderBytes);
  return frame;
}

/**
 * Reassembles frames from chunks: `push` each chunk, then call `next` until it returns undefined.
 * `limit` may be raised between frames (the handshake uses a small one, the transport a large one),
 * and a length above it throws before any of the frame is buffered for it.
 */
export class FrameReader {
  /** The largest payload `next` accepts. */
  limit: number;
  private chunks: Buffer[] = [];
  /** Index of the first chunk still holding unread bytes. */
  private head = 0;
  /** Bytes of `chunks[head]` already read. */
  private offset = 0;
  private buffered = 0;
  /** The length of the frame being waited for, once its header has been read. */
  private pending: number | undefined;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes received but not yet returned in a frame (headers included). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next complete payload, or undefined until more bytes arrive. Throws INTERNAL if a header
   * announces more than `limit` bytes; the stream is then out of step and must be closed.
   */
  next(): Buffer | undefined {
    if (this.pending === undefined) {
      if (this.buffered < frameHeaderBytes) return undefined;
      const length = this.take(frameHeaderBytes).readUInt32BE(0);
      if (length > this.limit) {
        throw new DinomoError(
          'INTERNAL',
          `the peer announced a frame of ${length} bytes, above the ${this.limit}-byte limit`,
        );
      }
      this.pending = length;
    }
    if (this.buffered < this.pending) return undefined;
    const frame = this.take(this.pending);
    this.pending = undefined;
    return frame;
  }

  /** Removes `n` buffered bytes (n <= buffered): a view if they lie in one chunk, else a copy. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[this.head];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length - this.offset >= n) {
      const view = first.subarray(this.offset, this.offset + n);
      this.advance(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head];
      if (chunk === undefined) break;
      const count = Math.min(chunk.length - this.offset, n - filled);
      chunk.copy(out, filled, this.offset, this.offset + count);
      filled += count;
      this.advance(count);
    }
    return out;
  }

  /** Moves past `n` bytes of the head chunk, dropping it once it is used up. */
  private advance(n: number): void {
    this.offset += n;
    const chunk = this.chunks[this.head];
    if (chunk === undefined || this.offset < chunk.length) return;
    this.head++;
    this.offset = 0;
    // Used chunks are dropped once they are half of the list, so each drop costs O(1) amortised
    // (shift() would move every remaining chunk each time).
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 64 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
