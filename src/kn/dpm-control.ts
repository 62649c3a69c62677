import type { PartitionScanPage } from '../dpm/dpm-manager-core.js';

/**
 * What a KN thread asks of the DPM manager (two-sided control requests, not one-sided data access):
 * a new log block linked at the tail of its chain, and a wait until the merge passed an LSN.
 */
export interface DpmControl {
  /** Allocates a block and links it as the chain's new tail; resolves to its region offset. */
  allocBlock(rank: number): Promise<number>;
  /**
   * Seals every block of the chain and links a fresh tail; resolves to its region offset. For a
   * thread that abandoned its blocks after losing its fabric connection (see LogWriter.reopen).
   */
  reopenChain(rank: number): Promise<number>;
  /** Resolves once every entry of the chain with lsn < `lsn` is in the index; to the merged LSN. */
  waitMerged(rank: number, lsn: number): Promise<number>;
  /**
   * Clover mode: indexes the committed linked entry at `entryOffset` as its key's first version,
   * unless the key has one; resolves to the indexed first version's offset (docs/baselines.md).
   */
  createLinked(rank: number, entryOffset: number): Promise<number>;
  /**
   * DINOMO-N mode: one page of the keys of `slots` stored in other threads' partitions, which a
   * thread acquiring those slots copies into its own (docs/baselines.md). Start with table version
   * and bucket 0; continue with the page's `tableVersion` and `nextBucket` until it is -1.
   */
  scanPartitions(
    rank: number,
    slots: readonly number[],
    tableVersion: number,
    fromBucket: number,
    keysMax: number,
  ): Promise<PartitionScanPage>;
}
