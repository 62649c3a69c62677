import { DinomoError } from '../errors/index.js';
import { newFabricCounters, type Fabric, type FabricCounters } from './fabric.js';

/**
 * The in-process fabric: the region is a SharedArrayBuffer and every operation is a direct memory
 * access (tens of millions per second), still counted as the RT it would be on RDMA. Fencing uses a
 * per-rank fence word inside the region (0 = allowed): a write by a fenced rank throws FENCED and
 * changes nothing. Reads stay allowed, as with a revoked write-only registration.
 */
export class LocalFabric implements Fabric {
  readonly regionBytes: number;
  readonly counters: FabricCounters = newFabricCounters();
  private readonly bytes: Uint8Array;
  private readonly words: BigInt64Array;
  private readonly fenceWords: Int32Array | null;
  private readonly fenceIndex: number;

  /**
   * @param fenceWordOffset region offset of this caller's u32 fence word, or -1 for a caller that
   *   cannot be fenced (DPM-side code).
   */
  constructor(region: SharedArrayBuffer, fenceWordOffset = -1) {
    this.regionBytes = region.byteLength;
    this.bytes = new Uint8Array(region);
    this.words = new BigInt64Array(region, 0, Math.floor(region.byteLength / 8));
    this.fenceWords = fenceWordOffset >= 0 ? new Int32Array(region) : null;
    this.fenceIndex = fenceWordOffset >> 2;
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
    this.checkFence();
    this.counters.rts++;
    this.counters.writes++;
    this.counters.bytesWritten += length;
    this.bytes.set(src.subarray(srcOffset, srcOffset + length), offset);
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
    this.checkFence();
    this.counters.rts++;
    this.counters.writes++;
    this.counters.bytesWritten += 8;
    Atomics.store(this.words, offset / 8, value);
  }

  cas64(offset: number, expected: bigint, desired: bigint): bigint {
    this.checkWord(offset);
    this.checkFence();
    this.counters.rts++;
    this.counters.atomics++;
    return Atomics.compareExchange(this.words, offset / 8, expected, desired);
  }

  faa64(offset: number, delta: bigint): bigint {
    this.checkWord(offset);
    this.checkFence();
    this.counters.rts++;
    this.counters.atomics++;
    return Atomics.add(this.words, offset / 8, delta);
  }

  /** Plain memory has no persistence domain beyond itself: counted, but no RT and no effect. */
  persist(): void {
    this.counters.persists++;
  }

  /** An in-process region never disconnects. */
  reconnect(): void {}

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

  private checkFence(): void {
    if (this.fenceWords !== null && Atomics.load(this.fenceWords, this.fenceIndex) !== 0) {
      throw new DinomoError(
        'FENCED',
        'this KN thread was fenced at the DPM; its writes are refused',
      );
    }
  }
}
