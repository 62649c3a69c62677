import { DinomoError } from '../errors/index.js';
import { pmemAddon } from '../util/native-addon.js';

/**
 * A barrier for DPM-side code on a file-backed region with `durability: 'sync'`: when it returns,
 * every store this thread made to the region before the call (and every store of another thread
 * that happened before it, through a lock or a message) is in the region's file. DPM code calls it
 * where something recovery relies on must reach the file before something else may depend on it
 * (docs/architecture.md, "Durability"). For a region in plain memory, or with `durability:
 * 'async'`, it is `noFlush`.
 *
 * It flushes the whole mapping rather than a tracked range: msync writes only the dirty pages, and
 * on this project's machine a whole-region msync with one dirty page cost about as much as one over
 * that page alone (tens to a few hundred microseconds, the device flush dominating), so a range
 * would save little and would make every caller prove which words it wrote.
 */
export type RegionFlush = () => void;

/** The barrier of a region that has nothing more durable to reach (plain memory, or 'async'). */
export const noFlush: RegionFlush = () => {};

/** Bytes of the shared flush counter (`newFlushCounter`): one 64-bit count of DPM-side flushes. */
const flushCounterBytes = 8;

/** A shared counter of DPM-side flushes: every thread that flushes adds to it, `Cluster.stats` reads it. */
export function newFlushCounter(): SharedArrayBuffer {
  return new SharedArrayBuffer(flushCounterBytes);
}

/** The count in a counter from `newFlushCounter`. */
export function readFlushCounter(counter: SharedArrayBuffer): number {
  return Number(Atomics.load(new BigInt64Array(counter), 0));
}

/**
 * msync of `[offset, offset + length)` of a region the pmem addon mapped. A failed msync throws
 * UNAVAILABLE: the file's storage failed, so whatever waited for the flush may or may not be
 * durable, and the step fails (and is retried, or fails its requests) like any other loss of the DPM.
 */
export function fileRangeFlush(
  region: SharedArrayBuffer,
): (offset: number, length: number) => void {
  const pmem = pmemAddon();
  return (offset, length) => {
    try {
      pmem.flush(region, offset, length);
    } catch (err) {
      throw new DinomoError(
        'UNAVAILABLE',
        `cannot flush the DPM region to its file (${err instanceof Error ? err.message : String(err)}); ` +
          'check the disk of dataDir',
      );
    }
  };
}

/**
 * The barrier of a file-backed region: an msync of the whole region, or of `[offset, offset +
 * length)` for a caller that knows the only words it wrote (the M-node's slot map and epoch),
 * counted in `counter` when one is given. Throws UNAVAILABLE like fileRangeFlush.
 */
export function fileRegionFlush(
  region: SharedArrayBuffer,
  counter: SharedArrayBuffer | null,
  offset = 0,
  length = region.byteLength - offset,
): RegionFlush {
  const flushRange = fileRangeFlush(region);
  const count = counter === null ? null : new BigInt64Array(counter, 0, 1);
  return () => {
    flushRange(offset, length);
    if (count !== null) Atomics.add(count, 0, 1n);
  };
}
