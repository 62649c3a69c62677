/**
 * Per-KN-thread counters in a SharedArrayBuffer: the KN thread writes them in place (plain stores on
 * its own 256-byte record), and the main thread or the monitor reads them at any time without a
 * message. Counters are cumulative since the thread started; readers compute deltas.
 */
export const ThreadStat = {
  gets: 0,
  puts: 1,
  deletes: 2,
  rts: 3,
  valueHits: 4,
  shortcutHits: 5,
  logHits: 6,
  misses: 7,
  notFound: 8,
  missRts: 9,
  commits: 10,
  committedEntries: 11,
  bytesRead: 12,
  bytesWritten: 13,
  errors: 14,
  cacheBytesUsed: 15,
  cacheCapacityBytes: 16,
  cacheValues: 17,
  cacheShortcuts: 18,
  missCostRts: 19,
  shortcutStale: 20,
  backpressureWaits: 21,
  blocksSwitched: 22,
  recentWrites: 23,
  /** Requests refused with TRYAGAIN because the thread's lease had run out. */
  leaseRefusals: 24,
  /** Microseconds spent handling request batches (the M-node's occupancy is its share of a period). */
  busyUs: 25,
  /** Fabric persists (one per group commit). */
  persists: 26,
  /** Persists that flushed the thread's writes to the region's file (`durability: 'sync'`). */
  flushes: 27,
  /** DINOMO-N mode: keys copied into this thread's partition when it acquired slots. */
  keysCopied: 28,
} as const;

export type ThreadStatName = keyof typeof ThreadStat;
export const threadStatSlots = 32;

export function threadStatsBytes(threadCount: number): number {
  return threadCount * threadStatSlots * 8;
}

export function threadStatsView(sab: SharedArrayBuffer, index: number): Float64Array {
  return new Float64Array(sab, index * threadStatSlots * 8, threadStatSlots);
}

/** Adds `by` to one counter (the record is a plain Float64Array: no atomics needed for a single writer). */
export function bump(view: Float64Array, index: number, by = 1): void {
  view[index] = (view[index] as number) + by;
}
