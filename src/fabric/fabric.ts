/**
 * The one-sided access layer: what a KN thread can do to the DPM region. Every call is one network
 * round trip (RT) on a real fabric and is counted as one here, in every implementation, so reports
 * show the RTs an operation would cost on RDMA even when the region is local memory.
 *
 * Calls are synchronous. A KN thread is a dedicated worker whose event loop has nothing better to do
 * while its one outstanding operation completes, and the native providers measured here complete
 * an operation by spinning on the completion queue anyway (see docs/architecture.md).
 *
 * Offsets are region offsets. Implementations check bounds before touching memory (a bad remote
 * address kills or hangs a real connection) and throw DinomoError CORRUPT for an out-of-range access,
 * and FENCED when this caller's access right was revoked.
 */
export interface FabricCounters {
  rts: number;
  reads: number;
  writes: number;
  atomics: number;
  /** Calls of `persist`. */
  persists: number;
  /**
   * Persists that had to flush something to a more durable medium (a file-backed region with
   * `durability: 'sync'`); 0 where persist has nothing to reach.
   */
  flushes: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface Fabric {
  readonly regionBytes: number;
  readonly counters: FabricCounters;
  /** Copies `region[offset, offset + length)` into `dst[dstOffset, ...)`. */
  read(offset: number, length: number, dst: Uint8Array, dstOffset?: number): void;
  /** Copies `src[srcOffset, srcOffset + length)` to `region[offset, ...)`. */
  write(offset: number, src: Uint8Array, srcOffset?: number, length?: number): void;
  /** Reads one aligned 8-byte word atomically. */
  read64(offset: number): bigint;
  /** Writes one aligned 8-byte word atomically (the commit word, for example). */
  write64(offset: number, value: bigint): void;
  /** Compare-and-swap on an aligned 8-byte word; returns the previous value. */
  cas64(offset: number, expected: bigint, desired: bigint): bigint;
  /** Fetch-and-add on an aligned 8-byte word; returns the previous value. */
  faa64(offset: number, delta: bigint): bigint;
  /**
   * Makes every earlier write of this caller durable in the region's persistence domain (on RDMA a
   * flushing read or FLUSH; on a file-backed region msync). Writes are acknowledged to clients only
   * after it returns. A no-op for a region in plain memory, which has nothing more durable to reach.
   */
  persist(): void;
  /**
   * After an operation failed with UNAVAILABLE (the connection to the DPM broke, or the DPM
   * restarted), every later operation keeps failing until the caller has dealt with the loss (for a
   * KN thread: abandon its log block) and calls this. Throws (or rejects with) UNAVAILABLE while the
   * DPM is still down and FENCED when the caller was fenced. A fabric whose new access right comes
   * from another process (a grant asked for over the network) completes asynchronously.
   */
  reconnect(): void | Promise<void>;
}

export function newFabricCounters(): FabricCounters {
  return {
    rts: 0,
    reads: 0,
    writes: 0,
    atomics: 0,
    persists: 0,
    flushes: 0,
    bytesRead: 0,
    bytesWritten: 0,
  };
}
