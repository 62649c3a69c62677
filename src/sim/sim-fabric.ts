import { DinomoError } from '../errors/index.js';
import {
  currentIncarnation,
  newFabricCounters,
  type Fabric,
  type FabricCounters,
} from '../fabric/index.js';
import type { SimDpm } from './sim-dpm.js';

/**
 * A KN thread's fabric endpoint to the simulated DPM. It behaves like LocalFabric (bounds checks,
 * fencing by the rank's fence word, one RT per call) and adds what a network connection to a DPM
 * process has: when the DPM crashes or restarts, the connection breaks, every operation fails with
 * UNAVAILABLE until the thread reconnects, and reconnecting fails while the DPM is down. Writes are
 * volatile until `persist` (see SimDpm), and a crash armed for a KN operation strikes inside it.
 */
export class SimFabric implements Fabric {
  readonly regionBytes: number;
  readonly counters: FabricCounters = newFabricCounters();
  private readonly dpm: SimDpm;
  private readonly rank: number;
  private readonly fenceWordIndex: number;
  /** The KN thread's incarnation, which the fence word must still allow (src/fabric/fence.ts). */
  private readonly knIncarnation: number;
  /** The DPM incarnation this connection was opened to. */
  private incarnation: number;
  private broken = false;

  constructor(dpm: SimDpm, rank: number, fenceWordOffset: number, knIncarnation = 0) {
    this.dpm = dpm;
    this.rank = rank;
    this.regionBytes = dpm.region.bytes.length;
    this.fenceWordIndex = fenceWordOffset >> 2;
    this.knIncarnation = knIncarnation;
    this.incarnation = dpm.incarnation;
  }

  read(offset: number, length: number, dst: Uint8Array, dstOffset = 0): void {
    this.connected();
    this.check(offset, length);
    this.counters.rts++;
    this.counters.reads++;
    this.counters.bytesRead += length;
    dst.set(this.dpm.region.bytes.subarray(offset, offset + length), dstOffset);
  }

  write(offset: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    this.mutation('before-write');
    this.check(offset, length);
    this.checkFence();
    this.counters.rts++;
    this.counters.writes++;
    this.counters.bytesWritten += length;
    this.dpm.recordWrite(this.rank, offset, length);
    this.dpm.region.bytes.set(src.subarray(srcOffset, srcOffset + length), offset);
  }

  read64(offset: number): bigint {
    this.connected();
    this.checkWord(offset);
    this.counters.rts++;
    this.counters.reads++;
    return Atomics.load(this.dpm.region.i64, offset / 8);
  }

  write64(offset: number, value: bigint): void {
    this.wordMutation('before-commit-word', offset);
    this.counters.writes++;
    Atomics.store(this.dpm.region.i64, offset / 8, value);
  }

  cas64(offset: number, expected: bigint, desired: bigint): bigint {
    this.wordMutation('before-write', offset);
    this.counters.atomics++;
    return Atomics.compareExchange(this.dpm.region.i64, offset / 8, expected, desired);
  }

  faa64(offset: number, delta: bigint): bigint {
    this.wordMutation('before-write', offset);
    this.counters.atomics++;
    return Atomics.add(this.dpm.region.i64, offset / 8, delta);
  }

  /** The checks and bookkeeping of every 8-byte write or atomic, before it changes the word. */
  private wordMutation(kind: 'before-write' | 'before-commit-word', offset: number): void {
    this.mutation(kind);
    this.checkWord(offset);
    this.checkFence();
    this.counters.rts++;
    this.dpm.recordWrite(this.rank, offset, 8);
  }

  persist(): void {
    this.mutation('before-persist');
    this.counters.persists++;
    this.dpm.persist(this.rank);
  }

  reconnect(): void {
    if (!this.dpm.up) throw unavailable('the DPM is down');
    this.incarnation = this.dpm.incarnation;
    this.broken = false;
  }

  private mutation(kind: 'before-write' | 'before-commit-word' | 'before-persist'): void {
    this.connected();
    this.dpm.beforeMutation(kind);
    this.connected();
  }

  private connected(): void {
    if (!this.broken && this.dpm.up && this.dpm.incarnation === this.incarnation) return;
    this.broken = true;
    throw unavailable('the connection to the DPM broke');
  }

  private check(offset: number, length: number): void {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.regionBytes)) {
      throw new DinomoError(
        'CORRUPT',
        `fabric access [${offset}, ${offset + length}) is outside the region`,
      );
    }
  }

  private checkWord(offset: number): void {
    this.check(offset, 8);
    if (offset % 8 !== 0) throw new DinomoError('CORRUPT', `unaligned 8-byte access at ${offset}`);
  }

  private checkFence(): void {
    // One simulated thread runs at a time, so a plain check is atomic with the write that follows.
    if (currentIncarnation(this.dpm.region.i32, this.fenceWordIndex) !== this.knIncarnation) {
      throw new DinomoError(
        'FENCED',
        'this KN thread was fenced at the DPM; its writes are refused',
      );
    }
  }
}

function unavailable(why: string): DinomoError {
  return new DinomoError('UNAVAILABLE', `${why}; reconnect once it is back`);
}
