import { DinomoError } from '../errors/index.js';
import { newFabricCounters, type Fabric, type FabricCounters } from './fabric.js';
import { enterFenced, leaveFenced } from './fence.js';

/** Options of a LocalFabric endpoint. */
export interface LocalFabricOptions {
  /**
   * Makes `region[offset, offset + length)` durable in the region's persistence domain (for a
   * file-backed region with `durability: 'sync'`: msync of that range). Given, `persist` calls it
   * once with the range this endpoint wrote since the last persist; absent, `persist` only counts.
   * It is injected rather than imported so that this module stays free of the native addon and
   * tests can pass a spy.
   */
  persistRange?: (offset: number, length: number) => void;
}

/**
 * The in-process fabric: the region is a SharedArrayBuffer and every operation is a direct memory
 * access (tens of millions per second), still counted as the RT it would be on RDMA. Fencing uses a
 * per-rank fence word inside the region (fence.ts): a write by a fenced incarnation throws FENCED and
 * changes nothing. Reads stay allowed, as with a revoked write-only registration.
 */
export class LocalFabric implements Fabric {
  readonly regionBytes: number;
  readonly counters: FabricCounters = newFabricCounters();
  private readonly bytes: Uint8Array;
  private readonly words: BigInt64Array;
  private readonly fenceWords: Int32Array | null;
  private readonly fenceIndex: number;
  private readonly incarnation: number;
  private readonly persistRange: ((offset: number, length: number) => void) | null;
  /**
   * The range `[dirtyFrom, dirtyTo)` written since the last persist; empty while dirtyFrom >=
   * dirtyTo. Two numbers rather than a list: a commit writes the batch and its block's commit word,
   * so one range covers both, and tracking it allocates nothing.
   */
  private dirtyFrom: number;
  private dirtyTo = 0;

  /**
   * @param fenceWordOffset region offset of this caller's u32 fence word, or -1 for a caller that
   *   cannot be fenced (DPM-side code).
   * @param incarnation the incarnation of the rank this endpoint writes as (fence.ts).
   */
  constructor(
    region: SharedArrayBuffer,
    fenceWordOffset = -1,
    incarnation = 0,
    options: LocalFabricOptions = {},
  ) {
    this.regionBytes = region.byteLength;
    this.dirtyFrom = region.byteLength;
    this.persistRange = options.persistRange ?? null;
    this.bytes = new Uint8Array(region);
    this.words = new BigInt64Array(region, 0, Math.floor(region.byteLength / 8));
    this.fenceWords = fenceWordOffset >= 0 ? new Int32Array(region) : null;
    this.fenceIndex = fenceWordOffset >> 2;
    this.incarnation = incarnation;
  }

  read(offset: number, length: number, dst: Uint8Array, dstOffset = 0): void {
    this.check(offset, length);
    this.counters.rts++;
    this.counters.reads++;
    this.counters.bytesRead += length;
    dst.set(this.bytes.subarray(offset, offset + length), dstOffset);
  }

  write(offset: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    this.check(offset, length);
    this.enter();
    try {
      this.bytes.set(src.subarray(srcOffset, srcOffset + length), offset);
    } finally {
      this.leave();
    }
    this.markDirty(offset, offset + length);
    this.counters.rts++;
    this.counters.writes++;
    this.counters.bytesWritten += length;
  }

  read64(offset: number): bigint {
    this.checkWord(offset);
    this.counters.rts++;
    this.counters.reads++;
    this.counters.bytesRead += 8;
    return Atomics.load(this.words, offset / 8);
  }

  write64(offset: number, value: bigint): void {
    this.checkWord(offset);
    this.enter();
    Atomics.store(this.words, offset / 8, value);
    this.leave();
    this.markDirty(offset, offset + 8);
    this.counters.rts++;
    this.counters.writes++;
    this.counters.bytesWritten += 8;
  }

  cas64(offset: number, expected: bigint, desired: bigint): bigint {
    this.checkWord(offset);
    this.enter();
    const previous = Atomics.compareExchange(this.words, offset / 8, expected, desired);
    this.leave();
    // A failed compare-and-swap changed nothing, so there is nothing of it to flush.
    if (previous === expected) this.markDirty(offset, offset + 8);
    this.counters.rts++;
    this.counters.atomics++;
    return previous;
  }

  faa64(offset: number, delta: bigint): bigint {
    this.checkWord(offset);
    this.enter();
    const previous = Atomics.add(this.words, offset / 8, delta);
    this.leave();
    this.markDirty(offset, offset + 8);
    this.counters.rts++;
    this.counters.atomics++;
    return previous;
  }

  /**
   * Without `persistRange` (plain memory, or `durability: 'async'`) there is nothing more durable to
   * reach: counted, but no RT and no effect. With it, flushes the range written since the last
   * persist, if any, and forgets it only once the flush succeeded (a failed flush leaves it to the
   * next persist).
   */
  persist(): void {
    this.counters.persists++;
    if (this.persistRange === null || this.dirtyFrom >= this.dirtyTo) return;
    this.persistRange(this.dirtyFrom, this.dirtyTo - this.dirtyFrom);
    this.counters.flushes++;
    this.dirtyFrom = this.regionBytes;
    this.dirtyTo = 0;
  }

  /** An in-process region never disconnects. */
  reconnect(): void {}

  /** Widens the range the next persist flushes; nothing to track without `persistRange`. */
  private markDirty(from: number, to: number): void {
    if (this.persistRange === null || to <= from) return;
    if (from < this.dirtyFrom) this.dirtyFrom = from;
    if (to > this.dirtyTo) this.dirtyTo = to;
  }

  private check(offset: number, length: number): void {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.regionBytes)) {
      throw new DinomoError(
        'CORRUPT',
        `fabric access [${offset}, ${offset + length}) is outside the ${this.regionBytes}-byte region`,
      );
    }
  }

  private checkWord(offset: number): void {
    this.check(offset, 8);
    if (offset % 8 !== 0)
      throw new DinomoError('CORRUPT', `8-byte access at unaligned offset ${offset}`);
  }

  /** Holds the fence word busy for one write (fence.ts), or throws FENCED having changed nothing. */
  private enter(): void {
    if (this.fenceWords === null) return;
    if (!enterFenced(this.fenceWords, this.fenceIndex, this.incarnation)) {
      throw new DinomoError(
        'FENCED',
        'this KN thread was fenced at the DPM; its writes are refused',
      );
    }
  }

  private leave(): void {
    if (this.fenceWords !== null) leaveFenced(this.fenceWords, this.fenceIndex, this.incarnation);
  }
}
